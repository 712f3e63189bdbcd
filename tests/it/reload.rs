//! Reloading schema files while `walguard run` streams: a table added to the
//! folder is validated without a restart, a bad file keeps the previous
//! version running, and files changed while walguard was stopped update the
//! publications at the next start.

use std::time::Duration;

use serde_json::json;

use crate::fixture::{Fixture, Found};
use crate::harness::wait_until;
use crate::running::{Running, signal};

const DDL: &str = "CREATE TABLE orders (id integer PRIMARY KEY, amount numeric);
                   CREATE TABLE items (id integer PRIMARY KEY, qty integer)";
const ORDERS: &str = "x-table: public.orders\nproperties:\n  amount: {minimum: 0}\n";
const ITEMS: &str = "x-table: public.items\nproperties:\n  qty: {minimum: 1}\n";

/// Stops `running` with SIGTERM and expects a clean exit.
pub async fn stop(mut running: Running) {
    let status = running.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "walguard exited with {status}:\n{}", running.log_text());
}

/// Drops the fixture's slot once its last walguard has stopped: slots are
/// cluster-wide and the test server has a limited number.
pub async fn drop_slot(fixture: &Fixture) {
    let slot = &fixture.db.name;
    fixture.db.execute(&format!("SELECT pg_drop_replication_slot('{slot}')")).await;
}

fn order(id: i64) -> Found {
    Found::new("public.orders", "insert", "minimum", Some("amount"), json!({ "id": id }))
}

fn item(id: i64) -> Found {
    Found::new("public.items", "insert", "minimum", Some("qty"), json!({ "id": id }))
}

async fn wait_for_violations(fixture: &Fixture, running: &Running, expected: &[Found]) {
    let mut expected = expected.to_vec();
    expected.sort();
    let what = format!("the violations are {expected:?}");
    wait_until(Duration::from_secs(30), &what, async || fixture.violations().await == expected)
        .await;
    assert!(running.lines_with("panicked").is_empty(), "{}", running.log_text());
}

async fn published(fixture: &Fixture, table: &str) -> bool {
    let sql = format!("SELECT count(*) FROM pg_publication_tables WHERE tablename = '{table}'");
    fixture.db.query_count(&sql).await > 0
}

#[tokio::test]
async fn a_table_added_to_the_folder_is_validated_without_a_restart() {
    let fixture = Fixture::new("reload_add", DDL, &[("public.orders.yaml", ORDERS)]).await;
    fixture.setup().await;
    let running = Running::start(&fixture);

    // Streaming, and items not validated yet.
    fixture.db.execute("INSERT INTO items VALUES (1, 0); INSERT INTO orders VALUES (1, -1)").await;
    wait_for_violations(&fixture, &running, &[order(1)]).await;

    // A new file: published and validated from then on.
    fixture.write_schema("public.items.yaml", ITEMS);
    wait_until(Duration::from_secs(30), "items is published", async || {
        published(&fixture, "items").await
    })
    .await;
    fixture.db.execute("INSERT INTO items VALUES (2, 0); INSERT INTO orders VALUES (2, -1)").await;
    wait_for_violations(&fixture, &running, &[order(1), item(2), order(2)]).await;

    // Removing it stops validating it and unpublishes it.
    std::fs::remove_file(fixture.dir.path().join("schemas/public.items.yaml")).unwrap();
    wait_until(Duration::from_secs(30), "items is no longer published", async || {
        !published(&fixture, "items").await
    })
    .await;
    fixture.db.execute("INSERT INTO items VALUES (3, 0); INSERT INTO orders VALUES (3, -1)").await;
    wait_for_violations(&fixture, &running, &[order(1), item(2), order(2), order(3)]).await;
    assert!(running.lines_with("schemas reloaded").len() >= 2, "{}", running.log_text());
    stop(running).await;
    drop_slot(&fixture).await;
}

#[tokio::test]
async fn a_bad_file_on_reload_keeps_the_previous_version_running() {
    let fixture = Fixture::new("reload_bad", DDL, &[("public.orders.yaml", ORDERS)]).await;
    fixture.setup().await;
    let running = Running::start(&fixture);
    fixture.db.execute("INSERT INTO orders VALUES (1, -1)").await;
    wait_for_violations(&fixture, &running, &[order(1)]).await;

    // A file that does not parse, announced by SIGHUP: logged, and ignored.
    fixture.write_schema("public.items.yaml", "x-table: public.items\nproperties: [qty\n");
    signal(running.child.id(), "-HUP");
    running.wait_for_log("schema reload failed", 1, Duration::from_secs(30)).await;
    assert!(!running.lines_with("public.items.yaml:2").is_empty(), "{}", running.log_text());

    // A file naming a table that does not exist is refused too.
    fixture.write_schema("public.items.yaml", "x-table: public.nothing\n");
    running.wait_for_log("public.nothing", 1, Duration::from_secs(30)).await;

    // The old version still runs: orders validated, items not published.
    fixture.db.execute("INSERT INTO items VALUES (2, 0); INSERT INTO orders VALUES (2, -1)").await;
    wait_for_violations(&fixture, &running, &[order(1), order(2)]).await;
    assert!(!published(&fixture, "items").await);

    // A stricter orders file applies to the next transaction.
    let stricter = "x-table: public.orders\nproperties:\n  amount: {minimum: 10}\n";
    std::fs::remove_file(fixture.dir.path().join("schemas/public.items.yaml")).unwrap();
    fixture.write_schema("public.orders.yaml", stricter);
    signal(running.child.id(), "-HUP");
    running.wait_for_log("schemas reloaded", 1, Duration::from_secs(30)).await;
    fixture.db.execute("INSERT INTO orders VALUES (3, 5)").await;
    wait_for_violations(&fixture, &running, &[order(1), order(2), order(3)]).await;
    stop(running).await;
    drop_slot(&fixture).await;
}

#[tokio::test]
async fn a_file_added_while_walguard_was_stopped_is_published_at_the_next_start() {
    let fixture = Fixture::new("reload_start", DDL, &[("public.orders.yaml", ORDERS)]).await;
    fixture.setup().await;
    fixture.write_schema("public.items.yaml", ITEMS);

    let running = Running::start(&fixture);
    wait_until(Duration::from_secs(30), "items is published", async || {
        published(&fixture, "items").await
    })
    .await;
    fixture.db.execute("INSERT INTO items VALUES (1, 0)").await;
    wait_for_violations(&fixture, &running, &[item(1)]).await;
    stop(running).await;
    drop_slot(&fixture).await;
}
