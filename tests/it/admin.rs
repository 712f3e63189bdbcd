//! The admin listener: health, readiness and Prometheus metrics of a real
//! `walguard run`.

use std::time::Duration;

use crate::fixture::Fixture;
use crate::harness::{http_client, wait_until};
use crate::running::Running;
use crate::webhook_receiver::free_port;

const WAIT: Duration = Duration::from_secs(30);

/// The value of an unlabelled metric in a Prometheus text page.
fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn admin_listener_reports_health_readiness_and_counts() {
    let ddl = "CREATE TABLE items (id integer PRIMARY KEY, quantity integer)";
    let schema = "x-table: public.items\nproperties:\n  quantity: {minimum: 1}\n";
    let mut fixture = Fixture::new("admin", ddl, &[("public.items.yaml", schema)]).await;
    let address = free_port();
    fixture.configure(&format!("[admin]\nlisten = \"{address}\"\n"));
    fixture.setup().await;
    let http = http_client();
    let get = async |path: &str| {
        let response = http.get(format!("http://{address}{path}")).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    };

    // Ready once streaming.
    let mut walguard = Running::start(&fixture);
    wait_until(WAIT, "/readyz answers 200", async || {
        get("/readyz").await.is_some_and(|(status, _)| status == 200)
    })
    .await;
    assert_eq!(get("/healthz").await.map(|(status, _)| status), Some(200));

    // Two bad rows of three are counted once written.
    fixture.db.execute("INSERT INTO items VALUES (1, 0), (2, 5), (3, -1)").await;
    wait_until(WAIT, "the metrics count two violations", async || {
        let page = get("/metrics").await.map(|(_, body)| body).unwrap_or_default();
        metric(&page, "walguard_violations_total") == Some(2.0)
    })
    .await;
    let page = get("/metrics").await.expect("a metrics page").1;
    assert_eq!(metric(&page, "walguard_streaming"), Some(1.0), "{page}");
    assert!(metric(&page, "walguard_transactions_total").is_some_and(|n| n >= 1.0), "{page}");
    assert!(metric(&page, "walguard_acknowledged_lsn").is_some_and(|lsn| lsn > 0.0), "{page}");
    assert_eq!(fixture.violations().await.len(), 2);

    let status = walguard.terminate(WAIT).await;
    assert!(status.success(), "walguard exited with {status}");
}

#[tokio::test]
async fn admin_address_in_use_fails_the_start_naming_the_key() {
    let ddl = "CREATE TABLE items (id integer PRIMARY KEY)";
    let schema = "x-table: public.items\nproperties:\n  id: {type: integer}\n";
    let mut fixture = Fixture::new("admin_busy", ddl, &[("public.items.yaml", schema)]).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to occupy");
    let address = taken.local_addr().expect("its address");
    fixture.configure(&format!("[admin]\nlisten = \"{address}\"\n"));
    fixture.setup().await;

    let output = fixture.output(&["run"]).await;

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("admin.listen"), "the message names the key: {stderr}");
}
