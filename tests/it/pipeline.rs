//! The core pipeline end to end: rows written to a real PostgreSQL come out
//! as exactly the expected violation rows, and alerts reach a real receiver.

use std::time::Duration;

use serde_json::json;

use crate::fixture::{Fixture, Found, assert_success, wait_for_exit};
use crate::harness::wait_until;
use crate::webhook_receiver::WebhookReceiver;

const PEOPLE_DDL: &str = "
CREATE TABLE people (
    id         integer PRIMARY KEY,
    name       text,
    age        integer,
    status     text,
    email      text,
    due        text,
    created_at timestamptz NOT NULL DEFAULT now(),
    ref_id     text,
    sku        text,
    note       text,
    meta       jsonb,
    code       text
)";

const PEOPLE_SCHEMA: &str = "
x-table: public.people
type: object
required: [name]
properties:
  id:         {type: integer}
  name:       {type: string}
  age:        {type: integer, minimum: 0, maximum: 150}
  status:     {enum: [active, banned]}
  email:      {type: string, format: email}
  due:        {type: string, format: date-time}
  created_at: {type: string, format: date-time}
  ref_id:     {type: string, format: uuid}
  sku:        {type: string, pattern: '^[A-Z]{3}-[0-9]{4}$'}
  note:       {type: string, maxLength: 10}
  meta:       {type: object}
  code:       {type: integer}
";

fn people(rule: &str, column: &str, id: i64) -> Found {
    Found::new("public.people", "insert", rule, Some(column), json!({ "id": id }))
}

#[tokio::test]
async fn each_keyword_flags_exactly_the_bad_rows() {
    let fixture =
        Fixture::new("keywords", PEOPLE_DDL, &[("public.people.yaml", PEOPLE_SCHEMA)]).await;
    fixture.setup().await;

    // Two good rows (one with every optional column NULL), then one bad row
    // per keyword.
    fixture
        .db
        .execute(
            "INSERT INTO people (id, name, age, status, email, due, ref_id, sku, note, meta)
             VALUES (1, 'Ada', 36, 'active', 'ada@example.com', '2024-02-29T12:00:00Z',
                     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ABC-1234', 'short', '{\"a\": 1}');
             INSERT INTO people (id, name) VALUES (2, 'Grace');
             INSERT INTO people (id, name) VALUES (3, NULL);
             INSERT INTO people (id, name, age) VALUES (4, 'Low', -1);
             INSERT INTO people (id, name, age) VALUES (5, 'High', 151);
             INSERT INTO people (id, name, status) VALUES (6, 'Enum', 'deleted');
             INSERT INTO people (id, name, email) VALUES (7, 'Mail', 'not-an-email');
             INSERT INTO people (id, name, due) VALUES (8, 'Due', 'tomorrow at noon');
             INSERT INTO people (id, name, ref_id) VALUES (9, 'Uuid', 'a0eebc99-9c0b');
             INSERT INTO people (id, name, sku) VALUES (10, 'Sku', 'abc-1234');
             INSERT INTO people (id, name, note) VALUES (11, 'Note', 'eleven chars');
             INSERT INTO people (id, name, meta) VALUES (12, 'Meta', '[1, 2]');
             INSERT INTO people (id, name, code) VALUES (13, 'Code', '12a')",
        )
        .await;
    fixture.run_to_current().await;

    let mut expected = vec![
        people("required", "name", 3),
        people("minimum", "age", 4),
        people("maximum", "age", 5),
        people("enum", "status", 6),
        people("format", "email", 7),
        people("format", "due", 8),
        people("format", "ref_id", 9),
        people("pattern", "sku", 10),
        people("maxLength", "note", 11),
        people("type", "meta", 12),
        people("type", "code", 13),
    ];
    expected.sort();
    assert_eq!(fixture.violations().await, expected);
}

#[tokio::test]
async fn updates_are_validated_without_reporting_unchanged_toast_and_deletes_are_not() {
    let ddl = "CREATE TABLE docs (id integer PRIMARY KEY, title text, body text, n integer)";
    let schema = "
x-table: public.docs
required: [title, body]
properties:
  title: {type: string, maxLength: 20}
  body:  {type: string}
  n:     {type: integer, minimum: 0}
";
    let fixture = Fixture::new("updates", ddl, &[("public.docs.yaml", schema)]).await;
    fixture.setup().await;

    // A body far past the TOAST threshold, random so it does not compress
    // back under it.
    fixture
        .db
        .execute(
            "INSERT INTO docs SELECT 1, 'Report', string_agg(md5(random()::text), ''), 1
                 FROM generate_series(1, 4000)",
        )
        .await;
    let toasted = fixture
        .db
        .query_count(
            "SELECT count(*) FROM docs
             WHERE pg_column_size(body) > current_setting('block_size')::int / 4",
        )
        .await;
    assert_eq!(toasted, 1, "the body is stored out of line, so updates send it as unchanged");

    // Every UPDATE validates the whole row it leaves behind: n stays -1 after
    // the third, so it is reported again there.
    fixture
        .db
        .execute(
            "UPDATE docs SET n = 2 WHERE id = 1;
             UPDATE docs SET n = -1 WHERE id = 1;
             UPDATE docs SET title = NULL WHERE id = 1;
             DELETE FROM docs WHERE id = 1",
        )
        .await;
    fixture.run_to_current().await;

    let key = json!({ "id": 1 });
    let mut expected = vec![
        Found::new("public.docs", "update", "minimum", Some("n"), key.clone()),
        Found::new("public.docs", "update", "minimum", Some("n"), key.clone()),
        Found::new("public.docs", "update", "required", Some("title"), key),
    ];
    expected.sort();
    assert_eq!(fixture.violations().await, expected);
}

#[tokio::test]
async fn tables_without_schema_and_walguards_own_tables_are_never_streamed() {
    let ddl = "CREATE TABLE orders (id integer PRIMARY KEY, amount numeric);
               CREATE TABLE audit (id integer PRIMARY KEY, amount numeric)";
    let schema = "x-table: public.orders\nproperties:\n  amount: {minimum: 0}\n";
    let fixture = Fixture::new("unpublished", ddl, &[("public.orders.yaml", schema)]).await;
    fixture.setup().await;

    fixture
        .db
        .execute(
            "INSERT INTO orders VALUES (1, -1), (2, 5);
             INSERT INTO audit VALUES (1, -1), (2, -2)",
        )
        .await;
    fixture.run_to_current().await;
    // A second pass streams walguard's own writes of the first, if any were published.
    fixture.db.execute("INSERT INTO orders VALUES (3, 1)").await;
    fixture.run_to_current().await;

    let expected =
        vec![Found::new("public.orders", "insert", "minimum", Some("amount"), json!({ "id": 1 }))];
    assert_eq!(fixture.violations().await, expected);
    let published = fixture
        .db
        .query_count(
            "SELECT count(*) FROM pg_publication_tables
             WHERE tablename = 'audit' OR schemaname = 'walguard'",
        )
        .await;
    assert_eq!(published, 0, "only tables with a schema file are published");
}

#[tokio::test]
async fn alert_reaches_the_receiver_with_a_verifiable_signature() {
    let receiver = WebhookReceiver::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let ddl = "CREATE TABLE orders (id integer PRIMARY KEY, status text)";
    let schema = "x-table: public.orders\nproperties:\n  status: {enum: [new, paid]}\n";
    let mut fixture = Fixture::new("webhook", ddl, &[("public.orders.yaml", schema)]).await;
    fixture
        .configure(&format!("[[webhooks]]\nurl = \"{}\"\nsecret = \"{secret}\"\n", receiver.url()));
    fixture.setup().await;

    let mut child = fixture.command(&["run"]).spawn().expect("walguard starts");
    fixture.db.execute("INSERT INTO orders VALUES (7, 'lost')").await;
    let requests = receiver.wait_for_requests(1, Duration::from_secs(30)).await;

    // The official verifier accepts the signature.
    let request = &requests[0];
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let value = request.header(name).unwrap_or_else(|| panic!("missing header {name}"));
        headers.insert(name, value.parse().unwrap());
    }
    let verifier = standardwebhooks::Webhook::new(secret).expect("a valid secret");
    verifier.verify(request.body.as_ref(), &headers).expect("the signature verifies");

    let payload: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(payload["type"], "violation.detected");
    assert_eq!(payload["data"]["count"], 1);
    let violation = &payload["data"];
    assert_eq!(violation["table"], "public.orders");
    assert_eq!(violation["rule"], "enum");
    assert_eq!(violation["column"], "status");
    assert_eq!(violation["row_key"], json!({ "id": 7 }));

    // SIGTERM stops it cleanly.
    nix_terminate(child.id());
    let status = wait_for_exit(&mut child, Duration::from_secs(15)).await;
    assert!(status.success(), "walguard exited with {status} after SIGTERM");
}

/// A set-up fixture of `items` (quantity at least 1) with a second slot at
/// the same position, which sees the same WAL again later; returns its name.
async fn items_with_replay_slot(name: &str) -> (Fixture, String) {
    let ddl = "CREATE TABLE items (id integer PRIMARY KEY, quantity integer)";
    let schema = "x-table: public.items\nproperties:\n  quantity: {minimum: 1}\n";
    let fixture = Fixture::new(name, ddl, &[("public.items.yaml", schema)]).await;
    fixture.setup().await;
    let replay_slot = format!("{}_replay", fixture.db.name);
    fixture
        .db
        .execute(&format!("SELECT pg_create_logical_replication_slot('{replay_slot}', 'pgoutput')"))
        .await;
    (fixture, replay_slot)
}

#[tokio::test]
async fn until_lsn_exits_zero_and_a_replay_of_the_same_wal_adds_nothing() {
    let (mut fixture, replay_slot) = items_with_replay_slot("replay").await;

    fixture
        .db
        .execute(
            "INSERT INTO items SELECT g, CASE WHEN g % 10 = 0 THEN 0 ELSE g END
             FROM generate_series(1, 500) g",
        )
        .await;
    let until = fixture.current_lsn().await;
    let output = fixture.output(&["run", "--until-lsn", &until]).await;
    assert_success(&output, "the first run");
    assert_eq!(fixture.violations().await.len(), 50);

    // The slot was acknowledged up to the position.
    let behind = fixture
        .db
        .query_count(&format!(
            "SELECT count(*) FROM pg_replication_slots
             WHERE slot_name = '{}' AND confirmed_flush_lsn < '{until}'",
            fixture.db.name
        ))
        .await;
    assert_eq!(behind, 0, "the slot's confirmed position reached --until-lsn");

    // The same WAL read again through the second slot adds nothing.
    fixture.use_slot(&replay_slot);
    let output = fixture.output(&["run", "--until-lsn", &until]).await;
    assert_success(&output, "the replay");
    assert_eq!(fixture.violations().await.len(), 50, "a replay must not duplicate violations");
    let unique = fixture
        .db
        .query_count("SELECT count(DISTINCT (commit_lsn, row_key, rule)) FROM walguard.violations")
        .await;
    assert_eq!(unique, 50);
}

#[tokio::test]
async fn a_replay_that_runs_on_into_new_changes_writes_only_the_new_ones_once() {
    let (mut fixture, replay_slot) = items_with_replay_slot("replaynew").await;
    let bad_rows = |from: u32, to: u32| {
        format!("INSERT INTO items SELECT g, 0 FROM generate_series({from}, {to}) g")
    };

    // The first slot writes the first 30 bad rows.
    fixture.db.execute(&bad_rows(1, 30)).await;
    assert_success(&fixture.run_to_current().await, "the first run");

    // The second slot reads those again, then 20 new ones, in one batch: a
    // batch may wait an hour, but reaching --until-lsn writes it at once.
    fixture.db.execute(&bad_rows(31, 50)).await;
    fixture.use_slot(&replay_slot);
    fixture.configure("[sink]\nbatch_max_delay_ms = 3600000\n");
    let until = fixture.current_lsn().await;
    let log_path = fixture.dir.path().join("replay.log");
    let log_file = std::fs::File::create(&log_path).expect("a log file");
    let mut child = fixture
        .command(&["run", "--until-lsn", &until])
        .stderr(log_file)
        .spawn()
        .expect("walguard starts");
    let status = wait_for_exit(&mut child, Duration::from_secs(60)).await;
    let log = std::fs::read_to_string(&log_path).expect("the log");
    assert!(status.success(), "the replay exited with {status}:\n{log}");
    assert!(log.contains("violations=50 fresh=20"), "one batch, 20 of it new:\n{log}");

    let counted = |sql: &'static str| fixture.db.query_count(sql);
    assert_eq!(counted("SELECT count(*) FROM walguard.violations").await, 50);
    assert_eq!(counted("SELECT count(DISTINCT row_key) FROM walguard.violations").await, 50);
    let states = "SELECT count(*) FROM walguard.violation_state WHERE occurrences = 1";
    assert_eq!(counted(states).await, 50, "no occurrence is counted twice");
}

#[tokio::test]
async fn malformed_schema_file_fails_setup_and_run_naming_file_and_line() {
    let ddl = "CREATE TABLE orders (id integer PRIMARY KEY)";
    let broken =
        "x-table: public.orders\nproperties:\n  id: {type: integer}\n  amount: [minimum: 0\n";
    let fixture = Fixture::new("broken", ddl, &[("public.orders.yaml", broken)]).await;

    for command in ["setup", "run"] {
        let output = fixture.output(&[command]).await;
        assert!(!output.status.success(), "{command} must fail on a malformed schema file");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("public.orders.yaml:4") || stderr.contains("public.orders.yaml:5"),
            "{command}: the message names the file and line: {stderr}"
        );
    }
}

#[tokio::test]
async fn run_before_setup_says_to_run_setup() {
    let ddl = "CREATE TABLE orders (id integer PRIMARY KEY)";
    let schema = "x-table: public.orders\nproperties:\n  id: {type: integer}\n";
    let fixture = Fixture::new("nosetup", ddl, &[("public.orders.yaml", schema)]).await;
    let output = fixture.output(&["run"]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("walguard setup"), "the message says what to run: {stderr}");
}

#[tokio::test]
async fn wait_until_gives_up_with_the_reason() {
    let result = tokio::spawn(async {
        wait_until(Duration::from_millis(50), "never", async || false).await;
    })
    .await;
    let panic = result.expect_err("wait_until panics at its deadline");
    let message = panic.into_panic();
    let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("never"), "{text}");
}

/// Sends SIGTERM, as an orchestrator stopping the service would.
pub fn nix_terminate(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test]
async fn setup_warns_of_a_required_column_the_table_does_not_have() {
    let ddl = "CREATE TABLE customers (id integer PRIMARY KEY, name text)";
    let schema =
        "x-table: public.customers\nrequired: [nmae]\nproperties:\n  id: {type: integer}\n";
    let fixture = Fixture::new("misspelt", ddl, &[("public.customers.yaml", schema)]).await;

    let output = fixture.output(&["setup"]).await;

    assert_success(&output, "walguard setup");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("warning") && stderr.contains("nmae"), "{stderr}");
    assert!(stderr.contains("public.customers.yaml"), "the warning names the file: {stderr}");
}
