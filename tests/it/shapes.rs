//! Table shapes end to end: names that need quoting, every replica identity,
//! partitions, columns changed while streaming, generated columns and
//! TRUNCATE. The application's own writes must keep working beside walguard.

use serde_json::{Value, json};

use crate::fixture::{Fixture, Found};

fn found(table: &str, operation: &str, rule: &str, column: &str, key: Value) -> Found {
    Found::new(table, operation, rule, Some(column), key)
}

fn sorted(mut found: Vec<Found>) -> Vec<Found> {
    found.sort();
    found
}

/// A schema file for `table` whose only rule is `v <= 10`.
fn v_at_most_ten(table: &str) -> String {
    format!("x-table: {table}\nproperties:\n  v: {{type: integer, maximum: 10}}\n")
}

#[tokio::test]
async fn quoted_mixed_case_and_non_ascii_names_are_matched_exactly() {
    let ddl = r#"
CREATE SCHEMA "Sales";
CREATE TABLE "Sales"."Order ""Items""" ("Id" int PRIMARY KEY, "Ünïcode Name" text, "a.b c" int);
CREATE SCHEMA inventory;
CREATE TABLE inventory.café (id int PRIMARY KEY, qty int);
CREATE TABLE public."Sales" (id int PRIMARY KEY, qty int);
"#;
    let items = r#"
x-table: '"Sales"."Order ""Items"""'
required: ["Ünïcode Name"]
properties:
  "Ünïcode Name": {type: string, maxLength: 3}
  "a.b c":        {type: integer, minimum: 0}
"#;
    let cafe = "x-table: inventory.café\nproperties:\n  qty: {minimum: 0}\n";
    let schemas = [("sales.items.yaml", items), ("inventory.cafe.yaml", cafe)];
    let fixture = Fixture::new("identifiers", ddl, &schemas).await;
    fixture.setup().await;
    fixture
        .db
        .execute(
            r#"INSERT INTO "Sales"."Order ""Items""" VALUES (1, 'abc', 0), (2, 'abcd', -1),
                                                            (3, NULL, 1);
               INSERT INTO inventory.café VALUES (1, 1), (2, -1);
               INSERT INTO public."Sales" VALUES (1, -1)"#,
        )
        .await;
    fixture.run_to_current().await;

    let items = r#"Sales.Order "Items""#;
    let expected = vec![
        found(items, "insert", "maxLength", "Ünïcode Name", json!({"Id": 2})),
        found(items, "insert", "minimum", "a.b c", json!({"Id": 2})),
        found(items, "insert", "required", "Ünïcode Name", json!({"Id": 3})),
        found("inventory.café", "insert", "minimum", "qty", json!({"id": 2})),
    ];
    assert_eq!(fixture.violations().await, sorted(expected));
}

#[tokio::test]
async fn every_replica_identity_keeps_the_applications_updates_and_deletes_working() {
    let ddl = "
CREATE TABLE ri_pk (id int PRIMARY KEY, v int);
CREATE TABLE ri_nopk (id int, v int);
CREATE TABLE ri_nothing (id int PRIMARY KEY, v int);
ALTER TABLE ri_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE ri_full (id int, v int);
ALTER TABLE ri_full REPLICA IDENTITY FULL;
CREATE TABLE ri_index (id int NOT NULL, v int);
CREATE UNIQUE INDEX ri_index_id ON ri_index (id);
ALTER TABLE ri_index REPLICA IDENTITY USING INDEX ri_index_id;
CREATE TABLE ri_lost (id int PRIMARY KEY, v int);
";
    let tables = ["ri_pk", "ri_nopk", "ri_nothing", "ri_full", "ri_index", "ri_lost"];
    let fixture = Fixture::new("replica_identity", ddl, &[]).await;
    for table in tables {
        fixture.write_schema(
            &format!("public.{table}.yaml"),
            &v_at_most_ten(&format!("public.{table}")),
        );
    }
    let setup = fixture.output(&["setup"]).await;
    crate::fixture::assert_success(&setup, "walguard setup");
    let log = String::from_utf8_lossy(&setup.stderr);
    for table in ["ri_nopk", "ri_nothing"] {
        assert!(
            log.contains(&format!("public.{table}")) && log.contains("inserts only"),
            "setup explains why {table} is validated on insert only:\n{log}"
        );
    }

    // A table that loses its identity after setup would make the
    // application's updates fail: `run` must notice and stop publishing them.
    fixture.db.execute("ALTER TABLE ri_lost DROP CONSTRAINT ri_lost_pkey").await;
    let lsn = fixture.current_lsn().await;
    let run = fixture.output(&["run", "--until-lsn", &lsn]).await;
    crate::fixture::assert_success(&run, "walguard run");
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(log.contains("public.ri_lost"), "run names the table that lost its identity:\n{log}");

    // The application inserts, updates and deletes in every table: none of
    // its statements may fail.
    for table in tables {
        fixture
            .db
            .execute(&format!(
                "INSERT INTO {table} VALUES (1, 11), (2, 1);
                 UPDATE {table} SET v = 12 WHERE id = 2;
                 DELETE FROM {table} WHERE id = 1"
            ))
            .await;
    }
    fixture.run_to_current().await;

    let table = |name: &str| format!("public.{name}");
    let expected = vec![
        found(&table("ri_pk"), "insert", "maximum", "v", json!({"id": 1})),
        found(&table("ri_pk"), "update", "maximum", "v", json!({"id": 2})),
        found(&table("ri_index"), "insert", "maximum", "v", json!({"id": 1})),
        found(&table("ri_index"), "update", "maximum", "v", json!({"id": 2})),
        // FULL: the key is the whole row, as the change left it.
        found(&table("ri_full"), "insert", "maximum", "v", json!({"v": 11, "id": 1})),
        found(&table("ri_full"), "update", "maximum", "v", json!({"v": 12, "id": 2})),
        // No identity: inserts only, with an empty key.
        found(&table("ri_nopk"), "insert", "maximum", "v", json!({})),
        found(&table("ri_nothing"), "insert", "maximum", "v", json!({})),
        found(&table("ri_lost"), "insert", "maximum", "v", json!({})),
    ];
    assert_eq!(fixture.violations().await, sorted(expected));
}

#[tokio::test]
async fn partitions_created_or_attached_later_are_validated_under_the_parent() {
    let ddl = "
CREATE TABLE events (id int, at date, v int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE logs (id int, at date, v int) PARTITION BY RANGE (at);
ALTER TABLE logs REPLICA IDENTITY FULL;
CREATE TABLE logs_2024 PARTITION OF logs FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
ALTER TABLE logs_2024 REPLICA IDENTITY FULL;
";
    let schemas = [
        ("public.events.yaml", v_at_most_ten("public.events")),
        ("public.logs.yaml", v_at_most_ten("public.logs")),
    ];
    let schemas: Vec<_> = schemas.iter().map(|(f, s)| (*f, s.as_str())).collect();
    let fixture = Fixture::new("partitions", ddl, &schemas).await;
    fixture.setup().await;

    // One partition existed at setup; one is created and one attached while
    // the stream runs. `logs` has REPLICA IDENTITY FULL but no key a new
    // partition would inherit, so its updates must not be published.
    fixture
        .db
        .execute(
            "INSERT INTO events VALUES (1, '2024-05-01', 11);
             CREATE TABLE events_2025 PARTITION OF events
                 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
             INSERT INTO events VALUES (2, '2025-05-01', 12);
             CREATE TABLE events_2026 (LIKE events INCLUDING ALL);
             ALTER TABLE events ATTACH PARTITION events_2026
                 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
             INSERT INTO events_2026 VALUES (3, '2026-05-01', 1);
             UPDATE events SET v = 13 WHERE id = 3;
             INSERT INTO logs VALUES (1, '2024-05-01', 11);
             CREATE TABLE logs_2025 PARTITION OF logs
                 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
             INSERT INTO logs VALUES (2, '2025-05-01', 12);
             UPDATE logs SET v = 14;
             DELETE FROM logs",
        )
        .await;
    fixture.run_to_current().await;

    let events =
        |op, at: &str, id| found("public.events", op, "maximum", "v", json!({"at": at, "id": id}));
    let expected = vec![
        events("insert", "2024-05-01", 1),
        events("insert", "2025-05-01", 2),
        events("update", "2026-05-01", 3),
        // REPLICA IDENTITY FULL on the parent: the key is the whole row.
        found(
            "public.logs",
            "insert",
            "maximum",
            "v",
            json!({"v": 11, "at": "2024-05-01", "id": 1}),
        ),
        found(
            "public.logs",
            "insert",
            "maximum",
            "v",
            json!({"v": 12, "at": "2025-05-01", "id": 2}),
        ),
    ];
    assert_eq!(fixture.violations().await, sorted(expected));
}

#[tokio::test]
async fn columns_added_dropped_renamed_and_retyped_mid_stream_keep_values_in_place() {
    let ddl = "CREATE TABLE t (id int PRIMARY KEY, a int, b text)";
    let schema = "
x-table: public.t
required: [b]
properties:
  a:    {type: integer, maximum: 10}
  b:    {type: string, maxLength: 3}
  c:    {type: integer, maximum: 10}
  d:    {type: integer, maximum: 10}
  name: {type: string, maxLength: 3}
";
    let fixture = Fixture::new("alter", ddl, &[("public.t.yaml", schema)]).await;
    fixture.setup().await;
    fixture
        .db
        .execute(
            "INSERT INTO t VALUES (1, 1, 'ok');
             ALTER TABLE t ADD COLUMN c int;
             INSERT INTO t VALUES (2, 1, 'ok', 11);
             ALTER TABLE t ADD COLUMN d int NOT NULL DEFAULT 50;
             INSERT INTO t (id, a, b) VALUES (3, 1, 'ok');
             ALTER TABLE t DROP COLUMN a;
             INSERT INTO t (id, b, c, d) VALUES (4, 'long', 1, 1);
             ALTER TABLE t RENAME COLUMN b TO name;
             INSERT INTO t (id, name, c, d) VALUES (5, 'long', 1, 1);
             ALTER TABLE t ALTER COLUMN c TYPE text;
             INSERT INTO t (id, name, c, d) VALUES (6, 'ok', '1', 1)",
        )
        .await;
    fixture.run_to_current().await;

    let t = |rule, column, id| found("public.t", "insert", rule, column, json!({ "id": id }));
    let drift = |column| found("public.t", "-", "schema_drift", column, json!({}));
    let expected = vec![
        t("maximum", "c", 2),
        t("maximum", "d", 3),
        // After the drop, `b` is the second value sent: were the old
        // relation kept, `long` would be read as `a`.
        t("maxLength", "b", 4),
        t("maxLength", "name", 5),
        t("type", "c", 6),
        // The file describes c, d and name before they exist, then a is
        // dropped, b renamed away and c retyped: each is drift, once.
        drift("c"),
        drift("d"),
        drift("name"),
        drift("a"),
        drift("b"),
        drift("c"),
    ];
    assert_eq!(fixture.violations().await, sorted(expected));
}

#[tokio::test]
async fn generated_columns_are_not_reported_missing() {
    let ddl = "CREATE TABLE lines (id int PRIMARY KEY, qty int, price numeric,
               total numeric GENERATED ALWAYS AS (qty * price) STORED)";
    let schema = "
x-table: public.lines
required: [qty, total]
properties:
  qty:   {type: integer, minimum: 1}
  total: {type: number, maximum: 100}
";
    let fixture = Fixture::new("generated", ddl, &[("public.lines.yaml", schema)]).await;
    fixture.setup().await;
    fixture
        .db
        .execute(
            "INSERT INTO lines (id, qty, price) VALUES (1, 2, 3), (2, NULL, 3), (3, 0, 1000);
             UPDATE lines SET price = 4 WHERE id = 1",
        )
        .await;
    fixture.run_to_current().await;

    let lines =
        |rule, column, id| found("public.lines", "insert", rule, column, json!({ "id": id }));
    let expected = vec![lines("required", "qty", 2), lines("minimum", "qty", 3)];
    assert_eq!(fixture.violations().await, sorted(expected));
}

#[tokio::test]
async fn truncate_with_cascade_and_restart_identity_does_not_disturb_the_stream() {
    let ddl = "
CREATE TABLE parents (id serial PRIMARY KEY, v int);
CREATE TABLE kids (id serial PRIMARY KEY, parent int REFERENCES parents, v int);
";
    let schemas = [
        ("public.parents.yaml", v_at_most_ten("public.parents")),
        ("public.kids.yaml", v_at_most_ten("public.kids")),
    ];
    let schemas: Vec<_> = schemas.iter().map(|(f, s)| (*f, s.as_str())).collect();
    let fixture = Fixture::new("truncate", ddl, &schemas).await;
    fixture.setup().await;
    fixture
        .db
        .execute(
            "INSERT INTO parents (v) VALUES (11);
             INSERT INTO kids (parent, v) VALUES (1, 11);
             TRUNCATE parents CASCADE;
             BEGIN;
             INSERT INTO parents (v) VALUES (12);
             TRUNCATE kids, parents RESTART IDENTITY;
             INSERT INTO parents (v) VALUES (13);
             INSERT INTO kids (parent, v) VALUES (1, 14);
             COMMIT",
        )
        .await;
    fixture.run_to_current().await;

    let parents = |id| found("public.parents", "insert", "maximum", "v", json!({ "id": id }));
    let kids = |id| found("public.kids", "insert", "maximum", "v", json!({ "id": id }));
    // 12 was written and then truncated in the same transaction: it was a
    // real row for a moment, and the stream carries it.
    let expected = vec![parents(1), kids(1), parents(2), parents(1), kids(1)];
    assert_eq!(fixture.violations().await, sorted(expected));
}
