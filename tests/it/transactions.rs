//! Transactions end to end: only committed rows are validated, each once;
//! rows replicated from another node follow `source.origins`; many tables and
//! interleaved sessions keep each violation with its own table and row.

use serde_json::json;

use walguard::throwaway::ThrowawayPostgres;

use crate::fixture::{Fixture, Found};
use crate::harness::chain;

const DDL: &str = "CREATE TABLE t (id int PRIMARY KEY, v int)";
const SCHEMA: &str = "x-table: public.t\nproperties:\n  v: {type: integer, maximum: 10}\n";

fn t(id: i64) -> Found {
    Found::new("public.t", "insert", "maximum", Some("v"), json!({ "id": id }))
}

#[tokio::test]
async fn rolled_back_savepoints_and_aborted_transactions_produce_no_violation() {
    let fixture = Fixture::new("rollbacks", DDL, &[("public.t.yaml", SCHEMA)]).await;
    fixture.setup().await;
    fixture
        .db
        .execute(
            "BEGIN;
             INSERT INTO t VALUES (1, 11);
             SAVEPOINT a;
             INSERT INTO t VALUES (2, 12);
             SAVEPOINT b;
             INSERT INTO t VALUES (3, 13);
             ROLLBACK TO SAVEPOINT a;
             INSERT INTO t VALUES (4, 14);
             SAVEPOINT c;
             INSERT INTO t VALUES (5, 15);
             RELEASE SAVEPOINT c;
             COMMIT;
             BEGIN;
             INSERT INTO t VALUES (6, 16);
             ROLLBACK",
        )
        .await;
    // A transaction that fails after writing aborts too.
    let failed =
        fixture.db.client.batch_execute("BEGIN; INSERT INTO t VALUES (7, 17); SELECT 1/0").await;
    assert!(failed.is_err(), "the division by zero aborts the transaction");
    fixture.db.execute("ROLLBACK").await;
    fixture.run_to_current().await;

    assert_eq!(fixture.violations().await, vec![t(1), t(4), t(5)]);
}

#[tokio::test]
async fn prepared_transactions_are_validated_once_at_commit_prepared() {
    // A prepared transaction holds back the creation of every replication
    // slot on its server, so this test has a server of its own.
    let server = tokio::task::spawn_blocking(ThrowawayPostgres::start)
        .await
        .expect("the server thread")
        .unwrap_or_else(|err| panic!("the throwaway server did not start: {}", chain(&err)));
    let fixture = Fixture::on(&server, "two_phase", DDL, &[("public.t.yaml", SCHEMA)]).await;
    fixture.setup().await;
    fixture
        .db
        .execute(
            "BEGIN; INSERT INTO t VALUES (1, 11); PREPARE TRANSACTION 'commit_me';
             BEGIN; INSERT INTO t VALUES (2, 12); PREPARE TRANSACTION 'roll_me_back';
             INSERT INTO t VALUES (3, 13)",
        )
        .await;

    // While prepared, a transaction is not committed: nothing of it yet.
    fixture.run_to_current().await;
    assert_eq!(fixture.violations().await, vec![t(3)]);

    fixture.db.execute("COMMIT PREPARED 'commit_me'").await;
    fixture.db.execute("ROLLBACK PREPARED 'roll_me_back'").await;
    fixture.run_to_current().await;
    assert_eq!(fixture.violations().await, vec![t(1), t(3)]);
}

/// Writes one bad row as if replicated from another node, and one locally.
/// Replication origins belong to the whole server, so each test names its own.
async fn write_replicated_and_local_rows(fixture: &Fixture) {
    let origin = format!("upstream_{}", fixture.db.name);
    // Each statement on its own: a transaction takes the session's origin
    // when it commits.
    for sql in [
        format!("SELECT pg_replication_origin_create('{origin}')"),
        format!("SELECT pg_replication_origin_session_setup('{origin}')"),
        "INSERT INTO t VALUES (1, 11)".to_owned(),
        "SELECT pg_replication_origin_session_reset()".to_owned(),
        "INSERT INTO t VALUES (2, 12)".to_owned(),
    ] {
        fixture.db.execute(&sql).await;
    }
}

#[tokio::test]
async fn rows_from_other_nodes_are_validated_by_default() {
    let fixture = Fixture::new("origins_all", DDL, &[("public.t.yaml", SCHEMA)]).await;
    fixture.setup().await;
    write_replicated_and_local_rows(&fixture).await;
    fixture.run_to_current().await;
    assert_eq!(fixture.violations().await, vec![t(1), t(2)]);
}

#[tokio::test]
async fn rows_from_other_nodes_are_skipped_when_origins_is_local() {
    let mut fixture = Fixture::new("origins_local", DDL, &[("public.t.yaml", SCHEMA)]).await;
    fixture.configure("origins = \"local\"\n");
    fixture.setup().await;
    write_replicated_and_local_rows(&fixture).await;
    fixture.run_to_current().await;
    assert_eq!(fixture.violations().await, vec![t(2)]);
}

#[tokio::test]
async fn one_transaction_over_many_tables_keeps_each_row_with_its_table() {
    const TABLES: usize = 24;
    let ddl: String =
        (0..TABLES).map(|i| format!("CREATE TABLE m{i} (id int PRIMARY KEY, v int);")).collect();
    let fixture = Fixture::new("many_tables", &ddl, &[]).await;
    for i in 0..TABLES {
        let schema = format!("x-table: public.m{i}\nproperties:\n  v: {{maximum: {i}}}\n");
        fixture.write_schema(&format!("public.m{i}.yaml"), &schema);
    }
    fixture.setup().await;

    // Row `i` of table `m{j}` has v = i + j: bad exactly when i > 0.
    let mut sql = String::from("BEGIN;");
    for i in 0..3 {
        for j in 0..TABLES {
            sql.push_str(&format!("INSERT INTO m{j} (id, v) VALUES ({i}, {});", i + j));
        }
    }
    sql.push_str("COMMIT");
    fixture.db.execute(&sql).await;
    fixture.run_to_current().await;

    let mut expected: Vec<Found> = (1..3)
        .flat_map(|i| {
            (0..TABLES).map(move |j| {
                Found::new(
                    &format!("public.m{j}"),
                    "insert",
                    "maximum",
                    Some("v"),
                    json!({"id": i}),
                )
            })
        })
        .collect();
    expected.sort();
    assert_eq!(fixture.violations().await, expected);
}

#[tokio::test]
async fn interleaved_concurrent_transactions_are_read_whole_in_commit_order() {
    let fixture = Fixture::new("interleaved", DDL, &[("public.t.yaml", SCHEMA)]).await;
    fixture.setup().await;
    let first = fixture.db.connect().await;
    let second = fixture.db.connect().await;
    for (client, sql) in [
        (&first, "BEGIN; INSERT INTO t VALUES (1, 11)"),
        (&second, "BEGIN; INSERT INTO t VALUES (2, 12)"),
        (&first, "INSERT INTO t VALUES (3, 13)"),
        (&second, "INSERT INTO t VALUES (4, 4); INSERT INTO t VALUES (5, 15)"),
        (&second, "COMMIT"),
        (&first, "INSERT INTO t VALUES (6, 16); COMMIT"),
    ] {
        client.batch_execute(sql).await.unwrap_or_else(|err| panic!("`{sql}` failed: {err}"));
    }
    fixture.run_to_current().await;

    assert_eq!(fixture.violations().await, vec![t(1), t(2), t(3), t(5), t(6)]);
    // Each transaction's violations carry its own xid, the later commit's
    // the larger lsn.
    let rows = fixture
        .db
        .client
        .query(
            "SELECT array_agg((row_key->>'id')::int ORDER BY (row_key->>'id')::int)::text
             FROM walguard.violations GROUP BY xid, commit_lsn ORDER BY commit_lsn",
            &[],
        )
        .await
        .expect("violations by transaction");
    let groups: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    assert_eq!(groups, ["{2,5}", "{1,3,6}"]);
}
