//! The demo's shop: its tables, the sample traffic (a few percent of it bad,
//! orphan orders among them), and the live view of violations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::RngExt;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// The demo's tables, matching the shipped schema files.
pub const SHOP_DDL: &str = "
CREATE TABLE accounts (
    id         bigserial PRIMARY KEY,
    email      text,
    name       text,
    country    text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id         bigserial PRIMARY KEY,
    account_id bigint,
    email      text,
    amount     numeric(12, 2),
    status     text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE order_items (
    id         bigserial PRIMARY KEY,
    order_id   bigint,
    sku        text,
    quantity   integer,
    unit_price numeric(12, 2)
);
CREATE TABLE page_views (id bigserial PRIMARY KEY, path text);
";

/// Counts of what the traffic wrote.
#[derive(Debug, Default)]
pub struct Stats {
    pub rows: AtomicU64,
    pub bad_rows: AtomicU64,
}

/// Writes sample rows at about `rate` per second until `stop`.
pub async fn write(
    client: Client,
    rate: u32,
    stats: std::sync::Arc<Stats>,
    stop: CancellationToken,
) {
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut ticker = tokio::time::interval(period);
    let mut accounts: i64 = 0;
    let mut orders: i64 = 0;
    while !stop.is_cancelled() {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let (sql, bad) = next_statement(&mut rand::rng(), &mut accounts, &mut orders);
        // The page_views table has no schema file: walguard never sees it.
        let result = client.batch_execute(&sql).await;
        if let Err(err) = result {
            eprintln!("demo traffic failed: {err}");
            break;
        }
        stats.rows.fetch_add(1, Ordering::Relaxed);
        if bad {
            stats.bad_rows.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One statement of sample traffic, and whether it writes a bad row.
fn next_statement(
    rng: &mut impl rand::Rng,
    accounts: &mut i64,
    orders: &mut i64,
) -> (String, bool) {
    let bad = rng.random_ratio(1, 20);
    let pick = rng.random_range(0..10);
    if *accounts == 0 || pick < 2 {
        *accounts += 1;
        let n = *accounts;
        let (email, country) = match (bad, rng.random_range(0..2)) {
            (true, 0) => (format!("customer{n}.example.com"), "DE"),
            (true, _) => (format!("customer{n}@example.com"), "Germany"),
            (false, _) => (format!("customer{n}@example.com"), "DE"),
        };
        let sql = format!(
            "INSERT INTO accounts (email, name, country) VALUES ('{email}', 'Customer {n}', '{country}')"
        );
        return (sql, bad);
    }
    if pick < 7 || *orders == 0 {
        *orders += 1;
        let account = rng.random_range(1..=*accounts);
        // An orphan order names an account that was never created: only the
        // reference check catches it, since the table has no foreign key.
        let (account_id, amount, status) = match (bad, rng.random_range(0..4)) {
            (true, 0) => ("NULL".to_string(), "19.90", "new"),
            (true, 1) => (account.to_string(), "-5.00", "new"),
            (true, 2) => ((*accounts + 1_000_000).to_string(), "42.00", "new"),
            (true, _) => (account.to_string(), "42.00", "lost"),
            (false, _) => (account.to_string(), "42.00", "new"),
        };
        let sql = format!(
            "INSERT INTO orders (account_id, email, amount, status)
             VALUES ({account_id}, 'customer{account}@example.com', {amount}, '{status}');
             INSERT INTO page_views (path) VALUES ('/checkout')"
        );
        return (sql, bad);
    }
    if pick < 9 {
        let order = rng.random_range(1..=*orders);
        let quantity = if bad { 0 } else { rng.random_range(1..5) };
        let sql = format!(
            "INSERT INTO order_items (order_id, sku, quantity, unit_price)
             VALUES ({order}, 'SKU-{:05}', {quantity}, 9.95)",
            rng.random_range(0..100_000)
        );
        return (sql, bad);
    }
    // Pay an order; a bad one is marked paid with no amount.
    let order = rng.random_range(1..=*orders);
    let amount = if bad { "0" } else { "amount" };
    let sql = format!("UPDATE orders SET status = 'paid', amount = {amount} WHERE id = {order}");
    (sql, bad)
}

/// Prints new violations once a second until `stop`.
pub async fn show_violations(url: String, stop: CancellationToken) {
    let Ok(settings) = crate::config::ConnectionSettings::resolve(Some(&url), "demo") else {
        return;
    };
    let Ok(client) = crate::postgres::connect(&settings, "walguard demo viewer").await else {
        return;
    };
    let mut last_id: i64 = 0;
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = ticker.tick() => false,
        };
        let rows = client
            .query(
                "SELECT id, table_name, operation, rule, coalesce(column_name, '-'), severity,
                        message, row_key::text
                 FROM walguard.violations WHERE id > $1 ORDER BY id",
                &[&last_id],
            )
            .await
            .unwrap_or_default();
        for row in rows {
            last_id = row.get(0);
            let (table, op, rule, column, severity, message, key): (
                String,
                String,
                String,
                String,
                String,
                String,
                String,
            ) = (
                row.get(1),
                row.get(2),
                row.get(3),
                row.get(4),
                row.get(5),
                row.get(6),
                row.get(7),
            );
            println!(
                "violation  {severity:<8} {table:<12} {op:<6} {key:<12} {rule:<18} {column:<11} {message}"
            );
        }
        if stopping {
            return;
        }
    }
}

/// Prints what happened.
pub async fn summary(url: &str, stats: &Stats, alerts: u64) {
    println!();
    println!(
        "wrote {} rows, {} of them bad; {} webhook alerts received",
        stats.rows.load(Ordering::Relaxed),
        stats.bad_rows.load(Ordering::Relaxed),
        alerts
    );
    let Ok(settings) = crate::config::ConnectionSettings::resolve(Some(url), "demo") else {
        return;
    };
    let Ok(client) = crate::postgres::connect(&settings, "walguard demo summary").await else {
        return;
    };
    let rows = client
        .query(
            "SELECT table_name, rule, count(*) FROM walguard.violations GROUP BY 1, 2 ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap_or_default();
    println!("violations by table and rule:");
    for row in rows {
        let (table, rule, count): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
        println!("  {table:<12} {rule:<18} {count}");
    }
}
