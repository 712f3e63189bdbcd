//! Proof that the harness works: throwaway databases are isolated and ready
//! for logical replication, the server survives restarts, and the webhook
//! receiver records requests and answers as configured.

use std::time::Duration;

use walguard::throwaway::{StopMode, ThrowawayPostgres};

use crate::harness::{TestDb, chain, http_client, server, wait_until};
use crate::webhook_receiver::WebhookReceiver;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn test_databases_are_isolated() {
    let a = TestDb::new("isolated_a").await;
    let b = TestDb::new("isolated_b").await;

    a.execute("CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)").await;

    assert_ne!(a.url, b.url);
    assert_eq!(a.query_count("SELECT count(*) FROM orders").await, 1);
    let tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'orders'";
    assert_eq!(b.query_count(tables).await, 0);
}

#[tokio::test]
async fn server_runs_with_logical_wal_level() {
    let db = TestDb::new("wal_level").await;

    let row = db.client.query_one("SHOW wal_level", &[]).await.expect("SHOW wal_level");

    assert_eq!(row.get::<_, String>(0), "logical");
    assert!(db.url.contains(&format!("127.0.0.1:{}", server().port())));
}

#[tokio::test]
async fn logical_slot_with_pgoutput_can_be_created() {
    let db = TestDb::new("slot").await;
    let slot = format!("{}_slot", db.name);

    db.execute(&format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")).await;

    let created = format!(
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}' \
         AND plugin = 'pgoutput' AND database = current_database()"
    );
    assert_eq!(db.query_count(&created).await, 1);
    db.execute(&format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}

#[tokio::test]
async fn wait_until_sees_a_row_committed_by_another_session() {
    let db = TestDb::new("wait_until").await;
    db.execute("CREATE TABLE events (id int)").await;
    let writer = db.connect().await;

    tokio::spawn(async move { writer.batch_execute("INSERT INTO events VALUES (1)").await });

    let count = async || db.query_count("SELECT count(*) FROM events").await == 1;
    wait_until(WAIT, "the other session's row is visible", count).await;
}

#[tokio::test]
async fn restart_keeps_the_port_and_committed_rows() {
    let mut own = ThrowawayPostgres::start().unwrap_or_else(|err| panic!("{}", chain(&err)));
    let port = own.port();
    let url = own.create_database("restart").await.expect("create database restart");
    let count_rows = async |url: &str| {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client.batch_execute("CREATE TABLE IF NOT EXISTS kept (id int)").await?;
        client.batch_execute("INSERT INTO kept VALUES (1)").await?;
        let row = client.query_one("SELECT count(*) FROM kept", &[]).await?;
        Ok::<i64, tokio_postgres::Error>(row.get(0))
    };
    assert_eq!(count_rows(&url).await.expect("first session"), 1);

    own.restart(StopMode::Immediate).expect("immediate restart");
    assert_eq!(count_rows(&url).await.expect("after immediate restart"), 2);
    own.stop().expect("stop");
    assert!(count_rows(&url).await.is_err(), "a stopped server accepts no connection");
    own.restart(StopMode::Fast).expect("start after stop");
    assert_eq!(count_rows(&url).await.expect("after stop and start"), 3);
    assert_eq!(own.port(), port);

    let data_dir = own.data_dir().to_owned();
    drop(own);
    assert!(!data_dir.exists(), "drop deletes {}", data_dir.display());
}

#[tokio::test]
async fn webhook_receiver_records_a_post_and_answers_the_configured_status() {
    let receiver = WebhookReceiver::start().await;
    receiver.respond_with([500]);
    let client = http_client();
    let post = || {
        let request = client.post(receiver.url()).header("webhook-id", "msg_1");
        request.header("content-type", "application/json").body(r#"{"rule":"minimum"}"#).send()
    };

    let statuses = [post().await, post().await].map(|response| response.expect("post").status());
    receiver.set_default_status(503);
    let third = post().await.expect("third post").status();

    assert_eq!(statuses.map(|status| status.as_u16()), [500, 200]);
    assert_eq!(third.as_u16(), 503);
    let requests = receiver.wait_for_requests(3, WAIT).await;
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/webhook");
    assert_eq!(requests[0].header("webhook-id"), Some("msg_1"));
    assert_eq!(requests[0].body_text(), r#"{"rule":"minimum"}"#);
}

#[tokio::test]
async fn webhook_receiver_delays_its_answer_but_records_at_once() {
    let receiver = WebhookReceiver::start().await;
    receiver.set_delay(Duration::from_secs(30));

    let request = http_client().post(receiver.url()).timeout(Duration::from_millis(300));
    let answered = request.body("slow").send().await;

    assert!(answered.is_err_and(|err| err.is_timeout()), "the answer should be delayed");
    assert_eq!(receiver.wait_for_requests(1, WAIT).await[0].body_text(), "slow");
}
