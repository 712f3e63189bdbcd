//! The rule language end to end: cross-field and transition rules,
//! references with and without a grace window, schema drift, and the
//! lifecycle of a violation, each against a real PostgreSQL with the exact
//! violation rows expected.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fixture::{Fixture, Found, wait_for_exit};
use crate::harness::wait_until;
use crate::pipeline::nix_terminate;

/// How long a spawned walguard gets to reach a condition.
const PATIENCE: Duration = Duration::from_secs(30);

fn found(table: &str, operation: &str, rule: &str, column: Option<&str>, key: Value) -> Found {
    Found::new(table, operation, rule, column, key)
}

fn sorted(mut found: Vec<Found>) -> Vec<Found> {
    found.sort();
    found
}

/// (row key, rule, severity, message) of every violation, sorted.
async fn details(fixture: &Fixture) -> Vec<(String, String, String, String)> {
    let rows = fixture
        .db
        .client
        .query(
            "SELECT row_key::text, rule, severity, message FROM walguard.violations ORDER BY 1, 2",
            &[],
        )
        .await
        .expect("violations");
    rows.iter().map(|row| (row.get(0), row.get(1), row.get(2), row.get(3))).collect()
}

#[tokio::test]
async fn cross_field_rules_flag_bad_rows_and_report_rules_that_cannot_be_evaluated() {
    let ddl = "CREATE TABLE orders (id integer PRIMARY KEY, status text, amount numeric,
                                    discount numeric)";
    let schema = "
x-table: public.orders
x-severity: warn
properties:
  status: {type: string}
x-rules:
  - name: paid_needs_amount
    when: \"row.status == 'paid'\"
    expr: 'has(row.amount) && row.amount > 0'
    message: paid orders need a positive amount
    severity: critical
  - name: discount_within_amount
    expr: '!has(row.discount) || row.discount <= row.amount'
";
    let fixture = Fixture::new("cel_rules", ddl, &[("public.orders.yaml", schema)]).await;
    fixture.setup().await;
    fixture
        .db
        .execute(
            "INSERT INTO orders VALUES (1, 'new', NULL, NULL);
             INSERT INTO orders VALUES (2, 'paid', 10, 2);
             INSERT INTO orders VALUES (3, 'paid', 0, NULL);
             INSERT INTO orders VALUES (4, 'new', 5, 6);
             INSERT INTO orders VALUES (5, 'new', NULL, 1)",
        )
        .await;
    fixture.run_to_current().await;

    let orders = |rule, id: i64| found("public.orders", "insert", rule, None, json!({ "id": id }));
    let expected = sorted(vec![
        orders("paid_needs_amount", 3),
        orders("discount_within_amount", 4),
        orders("discount_within_amount", 5),
    ]);
    assert_eq!(fixture.violations().await, expected);

    // Severity per rule, else the file's; a rule that cannot be evaluated
    // says so and names no value.
    let details = details(&fixture).await;
    assert_eq!(details[0].2, "critical");
    assert_eq!(details[0].3, "paid orders need a positive amount");
    assert_eq!(details[1].2, "warn");
    assert_eq!(details[1].3, "rule discount_within_amount failed");
    assert_eq!(details[2].2, "warn");
    assert!(
        details[2].3.starts_with("rule discount_within_amount could not be evaluated: "),
        "{}",
        details[2].3
    );
}

#[tokio::test]
async fn transition_rule_is_flagged_under_full_identity_and_unknown_under_default() {
    let ddl = "CREATE TABLE full_t (id integer PRIMARY KEY, status text);
               ALTER TABLE full_t REPLICA IDENTITY FULL;
               CREATE TABLE default_t (id integer PRIMARY KEY, status text)";
    let rule = "
properties:
  status: {type: string}
x-rules:
  - name: never_unship
    expr: \"old.status != 'shipped' || row.status == 'shipped'\"
";
    let full = format!("x-table: public.full_t\n{rule}");
    let default = format!("x-table: public.default_t\n{rule}");
    let files =
        [("public.full_t.yaml", full.as_str()), ("public.default_t.yaml", default.as_str())];
    let fixture = Fixture::new("transition", ddl, &files).await;
    fixture.setup().await;
    for table in ["full_t", "default_t"] {
        fixture
            .db
            .execute(&format!(
                "INSERT INTO {table} VALUES (1, 'new');
                 UPDATE {table} SET status = 'shipped' WHERE id = 1;
                 UPDATE {table} SET status = 'new' WHERE id = 1;
                 INSERT INTO {table} VALUES (2, 'shipped');
                 UPDATE {table} SET status = 'new' WHERE id = 2"
            ))
            .await;
    }
    fixture.run_to_current().await;

    // Under FULL the row key is the whole row, as the update left it.
    let expected = sorted(vec![
        found("public.full_t", "update", "never_unship", None, json!({"id": 1, "status": "new"})),
        found("public.full_t", "update", "never_unship", None, json!({"id": 2, "status": "new"})),
        found("public.default_t", "-", "never_unship", None, json!({})),
    ]);
    assert_eq!(fixture.violations().await, expected);
    let message = fixture
        .db
        .client
        .query_one(
            "SELECT severity, message FROM walguard.violations WHERE table_name = 'default_t'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(message.get::<_, &str>(0), "warn");
    assert!(message.get::<_, &str>(1).contains("REPLICA IDENTITY FULL"));
}

const SHOP_DDL: &str = "
CREATE TABLE accounts (id bigint PRIMARY KEY, name text);
CREATE TABLE orders (id bigint PRIMARY KEY, account_id bigint);
INSERT INTO accounts VALUES (1, 'before the slot'), (2, 'before the slot')";

const ACCOUNTS: &str = "x-table: public.accounts\nproperties:\n  name: {type: string}\n";

#[tokio::test]
async fn orphan_orders_are_flagged_only_when_the_account_never_existed() {
    let orders = "
x-table: public.orders
properties:
  account_id: {type: integer, x-references: public.accounts.id}
";
    let files = [("public.accounts.yaml", ACCOUNTS), ("public.orders.yaml", orders)];
    let mut fixture = Fixture::new("orphans", SHOP_DDL, &files).await;
    // Tiny batches: checks are also settled in the middle of a transaction.
    fixture.configure("[sink]\nbatch_max_violations = 2\n");
    fixture.setup().await;
    fixture
        .db
        .execute(
            "INSERT INTO orders VALUES (10, 1), (11, 2), (12, NULL);
             BEGIN;
             INSERT INTO orders VALUES (13, 3);
             INSERT INTO accounts VALUES (3, 'same transaction, after its order');
             INSERT INTO orders VALUES (14, 3);
             COMMIT;
             INSERT INTO orders VALUES (15, 99);
             INSERT INTO orders SELECT 100 + g, 1 + g % 3 FROM generate_series(1, 1000) g",
        )
        .await;
    let output = fixture.run_to_current().await;

    let expected =
        vec![found("public.orders", "insert", "reference", Some("account_id"), json!({"id": 15}))];
    assert_eq!(fixture.violations().await, expected);
    let details = details(&fixture).await;
    assert_eq!(details[0].3, "account_id 99 has no matching row in public.accounts.id");

    // 1 005 checked values cost a handful of queries, not one per row.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let queries =
        field(&stderr, " queries=").unwrap_or_else(|| panic!("no look-up load: {stderr}"));
    let checks = field(&stderr, " checks=").expect("the run logs its look-up load");
    assert_eq!(checks, 1005, "{stderr}");
    eprintln!("reference look-ups: {queries} queries for {checks} values");
    assert!(queries <= 10, "{queries} look-up queries for {checks} values");

    // Pointing the orphan at an existing account resolves its state.
    fixture.db.execute("UPDATE orders SET account_id = 1 WHERE id = 15").await;
    fixture.run_to_current().await;
    let status = "SELECT count(*) FROM walguard.violation_state
                  WHERE rule = 'reference' AND row_key = '{\"id\": 15}' AND status = 'resolved'";
    assert_eq!(fixture.db.query_count(status).await, 1);
}

#[tokio::test]
async fn an_orphan_fixed_or_deleted_in_the_same_batch_ends_resolved() {
    // The accounts table has no schema file: the checks ask the source.
    let orders = "
x-table: public.orders
properties:
  account_id: {type: integer, x-references: public.accounts.id}
";
    let fixture =
        Fixture::new("orphan_fixed_at_once", SHOP_DDL, &[("public.orders.yaml", orders)]).await;
    fixture.setup().await;

    // Each orphan's check is settled when its batch is written, after the
    // change that fixes or deletes the row was read into the same batch.
    fixture
        .db
        .execute(
            "BEGIN;
             INSERT INTO orders VALUES (1, 9991);
             UPDATE orders SET account_id = 1 WHERE id = 1;
             COMMIT;
             INSERT INTO orders VALUES (2, 9992);
             UPDATE orders SET account_id = 2 WHERE id = 2;
             INSERT INTO orders VALUES (3, 9993);
             DELETE FROM orders WHERE id = 3;
             INSERT INTO orders VALUES (4, 9994)",
        )
        .await;
    fixture.run_to_current().await;

    let states = fixture
        .db
        .client
        .query(
            "SELECT row_key::text, status FROM walguard.violation_state
             WHERE rule = 'reference' ORDER BY 1",
            &[],
        )
        .await
        .expect("violation states");
    let states: Vec<(String, String)> = states.iter().map(|row| (row.get(0), row.get(1))).collect();
    let expected = [
        ("{\"id\": 1}", "resolved"),
        ("{\"id\": 2}", "resolved"),
        ("{\"id\": 3}", "resolved"),
        ("{\"id\": 4}", "open"),
    ];
    let expected: Vec<(String, String)> =
        expected.iter().map(|(key, status)| (key.to_string(), status.to_string())).collect();
    assert_eq!(states, expected);
}

#[tokio::test]
async fn reference_value_that_is_not_of_the_target_type_is_missing_not_an_error() {
    let ddl = "CREATE TABLE accounts (id bigint PRIMARY KEY);
               CREATE TABLE notes (id integer PRIMARY KEY, account_ref text);
               INSERT INTO accounts VALUES (1)";
    let notes = "
x-table: public.notes
properties:
  account_ref: {type: string, x-references: public.accounts.id}
";
    let fixture = Fixture::new("ref_types", ddl, &[("public.notes.yaml", notes)]).await;
    fixture.setup().await;
    fixture.db.execute("INSERT INTO notes VALUES (1, '1'), (2, 'abc'), (3, '2')").await;
    fixture.run_to_current().await;

    let note = |id: i64| {
        found("public.notes", "insert", "reference", Some("account_ref"), json!({ "id": id }))
    };
    assert_eq!(fixture.violations().await, [note(2), note(3)]);
}

/// The number after `name` in the log, colours removed.
fn field(log: &str, name: &str) -> Option<u64> {
    let mut plain = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            plain.push(c);
        }
    }
    let start = plain.rfind(name)? + name.len();
    plain[start..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[tokio::test]
async fn grace_window_waits_for_the_parent_and_survives_a_restart() {
    let orders = "
x-table: public.orders
properties:
  account_id: {type: integer, x-references: {to: public.accounts.id, within: 3s}}
";
    let files = [("public.accounts.yaml", ACCOUNTS), ("public.orders.yaml", orders)];
    let fixture = Fixture::new("grace", SHOP_DDL, &files).await;
    fixture.setup().await;
    let pending = "SELECT count(*) FROM walguard.pending_references";

    // Two orders whose accounts do not exist yet wait in the sink.
    let mut child = fixture.command(&["run"]).spawn().expect("walguard starts");
    fixture.db.execute("INSERT INTO orders VALUES (20, 5), (21, 6)").await;
    wait_until(PATIENCE, "both checks are pending", async || {
        fixture.db.query_count(pending).await == 2
    })
    .await;

    // One parent arrives within the window, while walguard restarts.
    fixture.db.execute("INSERT INTO accounts VALUES (5, 'late')").await;
    nix_terminate(child.id());
    let status = wait_for_exit(&mut child, PATIENCE).await;
    assert!(status.success(), "walguard exited with {status}");
    assert!(fixture.violations().await.is_empty(), "nothing is reported within the window");
    let mut child = fixture.command(&["run"]).spawn().expect("walguard starts again");

    // The order whose account never comes is reported after the window.
    wait_until(PATIENCE, "the orphan is reported", async || {
        fixture.db.query_count(pending).await == 0
    })
    .await;
    nix_terminate(child.id());
    wait_for_exit(&mut child, PATIENCE).await;
    let expected =
        vec![found("public.orders", "insert", "reference", Some("account_id"), json!({"id": 21}))];
    assert_eq!(fixture.violations().await, expected);
}

#[tokio::test]
async fn drift_is_recorded_once_per_change_of_the_table() {
    let ddl = "CREATE TABLE t (id integer PRIMARY KEY, a integer, b text, c integer)";
    let schema = "
x-table: public.t
x-on-unknown-columns: warn
required: [a]
properties:
  id: {type: integer}
  a: {type: integer}
  b: {type: string}
  c: {type: integer}
";
    let fixture = Fixture::new("drift", ddl, &[("public.t.yaml", schema)]).await;
    fixture.setup().await;
    fixture
        .db
        .execute(
            "INSERT INTO t VALUES (1, 1, 'x', 1);
             ALTER TABLE t DROP COLUMN b;
             INSERT INTO t VALUES (2, 2, 2);
             ALTER TABLE t ADD COLUMN d text;
             INSERT INTO t VALUES (3, 3, 3, 'y');
             ALTER TABLE t ALTER COLUMN c TYPE bigint;
             INSERT INTO t VALUES (4, 4, 4, 'z')",
        )
        .await;
    fixture.run_to_current().await;

    let drift = |column| found("public.t", "-", "schema_drift", Some(column), json!({}));
    let expected = sorted(vec![drift("b"), drift("c"), drift("d")]);
    assert_eq!(fixture.violations().await, expected);
    let messages: Vec<String> = details(&fixture).await.into_iter().map(|d| d.3).collect();
    assert!(messages.contains(&"column c of public.t changed type from integer to bigint".into()));

    // A new session sees the same shape again: nothing new is recorded.
    fixture.db.execute("INSERT INTO t VALUES (5, 5, 5, 'w')").await;
    fixture.run_to_current().await;
    assert_eq!(fixture.violations().await, expected);
}

#[tokio::test]
async fn an_update_that_changes_the_key_moves_the_row_to_its_new_key() {
    let ddl = "CREATE TABLE items (id integer PRIMARY KEY, quantity integer);
               CREATE TABLE pairs (region text, id integer, quantity integer,
                                   PRIMARY KEY (region, id))";
    let items = "x-table: public.items\nproperties:\n  quantity: {minimum: 1}\n";
    let pairs = "x-table: public.pairs\nproperties:\n  quantity: {minimum: 1}\n";
    let files = [("public.items.yaml", items), ("public.pairs.yaml", pairs)];
    let fixture = Fixture::new("key_moves", ddl, &files).await;
    fixture.setup().await;
    fixture
        .db
        .execute(
            "INSERT INTO items VALUES (1, 0);
             UPDATE items SET id = 101 WHERE id = 1;
             UPDATE items SET quantity = 5 WHERE id = 101;
             INSERT INTO items VALUES (2, 5);
             UPDATE items SET id = 102, quantity = 0 WHERE id = 2;
             INSERT INTO pairs VALUES ('zz', 1, 0);
             UPDATE pairs SET region = 'yy' WHERE region = 'zz' AND id = 1;
             UPDATE pairs SET quantity = 3 WHERE region = 'yy' AND id = 1",
        )
        .await;
    fixture.run_to_current().await;

    let listed = async |sql: &str| -> Vec<String> {
        let rows = fixture.db.client.query(sql, &[]).await.expect("the sink's rows");
        rows.iter().map(|row| row.get::<_, String>(0)).collect()
    };
    let sorted = |mut lines: Vec<String>| {
        lines.sort();
        lines
    };
    // Each violation names the row by the key it has after the change.
    let violations = listed(
        "SELECT operation || ' ' || row_key::text FROM walguard.violations ORDER BY commit_lsn",
    )
    .await;
    assert_eq!(
        violations,
        [
            "insert {\"id\": 1}",
            "update {\"id\": 101}",
            "update {\"id\": 102}",
            "insert {\"id\": 1, \"region\": \"zz\"}",
            "update {\"id\": 1, \"region\": \"yy\"}",
        ]
    );
    // Only the row that is still bad, under its key, is open.
    let states = listed(
        "SELECT row_key::text || ' ' || status || ' ' || occurrences
         FROM walguard.violation_state",
    )
    .await;
    assert_eq!(
        sorted(states),
        [
            "{\"id\": 1, \"region\": \"yy\"} resolved 1",
            "{\"id\": 1, \"region\": \"zz\"} resolved 1",
            "{\"id\": 101} resolved 1",
            "{\"id\": 102} open 1",
            "{\"id\": 1} resolved 1",
        ]
    );
}

#[tokio::test]
async fn violation_states_resolve_when_fixed_or_deleted_and_can_be_acknowledged() {
    let ddl = "CREATE TABLE items (id integer PRIMARY KEY, quantity integer, note text)";
    let schema = "x-table: public.items\nproperties:\n  quantity: {minimum: 1}\n";
    let fixture = Fixture::new("lifecycle", ddl, &[("public.items.yaml", schema)]).await;
    fixture.setup().await;
    fixture
        .db
        .execute(
            "INSERT INTO items VALUES (1, 0, NULL), (2, 0, NULL), (3, 0, NULL), (4, 5, NULL);
             UPDATE items SET quantity = 5 WHERE id = 1;
             DELETE FROM items WHERE id = 2;
             UPDATE items SET note = 'still bad' WHERE id = 3;
             DELETE FROM items WHERE id = 4",
        )
        .await;
    fixture.run_to_current().await;

    let states = async || {
        let rows = fixture
            .db
            .client
            .query(
                "SELECT row_key->>'id', rule, column_name, status, occurrences,
                        resolved_lsn IS NOT NULL AND resolved_at IS NOT NULL, note
                 FROM walguard.violation_state ORDER BY 1",
                &[],
            )
            .await
            .expect("violation states");
        rows.iter()
            .map(|row| {
                let note: Option<String> = row.get(6);
                format!(
                    "{} {} {} {} {} {} {}",
                    row.get::<_, &str>(0),
                    row.get::<_, &str>(1),
                    row.get::<_, &str>(2),
                    row.get::<_, &str>(3),
                    row.get::<_, i64>(4),
                    row.get::<_, bool>(5),
                    note.unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        states().await,
        [
            "1 minimum quantity resolved 1 true ",
            "2 minimum quantity resolved 1 true ",
            "3 minimum quantity open 2 false ",
        ]
    );
    assert_eq!(fixture.violations().await.len(), 4, "the log keeps every violation");

    // A reviewer acknowledges the open one; a later fix still resolves it, in
    // a run that starts with the table's states already open.
    fixture
        .db
        .execute(
            "SELECT walguard.acknowledge(id, 'supplier fixes it') FROM walguard.violation_state
             WHERE status = 'open'",
        )
        .await;
    assert_eq!(states().await[2], "3 minimum quantity acknowledged 2 false supplier fixes it");
    fixture.db.execute("UPDATE items SET quantity = 2 WHERE id = 3").await;
    fixture.run_to_current().await;
    assert_eq!(states().await[2], "3 minimum quantity resolved 2 true supplier fixes it");
}

#[tokio::test]
async fn a_later_run_resolves_states_whose_keys_jsonb_reordered_and_rewrote() {
    // jsonb sorts an object's keys by length: the key read back from the
    // state table is not the text the stream's key was written as.
    let ddl = "CREATE TABLE lines (region_name text, id numeric, qty integer,
                                   PRIMARY KEY (region_name, id))";
    let schema = "x-table: public.lines\nproperties:\n  qty: {minimum: 1}\n";
    let fixture = Fixture::new("reordered_keys", ddl, &[("public.lines.yaml", schema)]).await;
    fixture.setup().await;
    fixture.db.execute("INSERT INTO lines VALUES ('north', 1.50, 0), ('south', 2, 0)").await;
    fixture.run_to_current().await;

    fixture.db.execute("UPDATE lines SET qty = 3 WHERE region_name = 'north'").await;
    fixture.db.execute("DELETE FROM lines WHERE region_name = 'south'").await;
    fixture.run_to_current().await;
    let rows = fixture
        .db
        .client
        .query("SELECT row_key::text, status FROM walguard.violation_state ORDER BY 1", &[])
        .await
        .expect("violation states");
    let states: Vec<String> = rows
        .iter()
        .map(|row| format!("{} {}", row.get::<_, &str>(0), row.get::<_, &str>(1)))
        .collect();
    assert_eq!(
        states,
        [
            r#"{"id": 1.50, "region_name": "north"} resolved"#,
            r#"{"id": 2, "region_name": "south"} resolved"#
        ]
    );
}

/// `row_key->>'id'`, status and occurrences of every state, by id.
async fn state_counts(fixture: &Fixture) -> Vec<String> {
    let rows = fixture
        .db
        .client
        .query(
            "SELECT row_key->>'id' || ' ' || status || ' ' || occurrences
             FROM walguard.violation_state ORDER BY (row_key->>'id')::int",
            &[],
        )
        .await
        .expect("violation states");
    rows.iter().map(|row| row.get(0)).collect()
}

#[tokio::test]
async fn a_row_failing_again_in_a_later_run_counts_on_its_state_and_reopens_it() {
    let ddl = "CREATE TABLE items (id integer PRIMARY KEY, quantity integer)";
    let schema = "x-table: public.items\nproperties:\n  quantity: {minimum: 1}\n";
    let fixture = Fixture::new("refail", ddl, &[("public.items.yaml", schema)]).await;
    fixture.setup().await;
    fixture
        .db
        .execute(
            "INSERT INTO items VALUES (1, 0), (2, 0); UPDATE items SET quantity = 5 WHERE id = 2",
        )
        .await;
    fixture.run_to_current().await;
    assert_eq!(state_counts(&fixture).await, ["1 open 1", "2 resolved 1"]);

    // One batch with a state that is open, one that is resolved, and a new
    // one: the states that exist take the new occurrence, the resolved one
    // reopens, and the new one is recorded beside them.
    fixture
        .db
        .execute(
            "UPDATE items SET quantity = -1 WHERE id = 1;
             UPDATE items SET quantity = 0 WHERE id = 2;
             INSERT INTO items VALUES (3, 0)",
        )
        .await;
    fixture.run_to_current().await;
    assert_eq!(state_counts(&fixture).await, ["1 open 2", "2 open 2", "3 open 1"]);

    // A batch with only new states after that.
    fixture.db.execute("INSERT INTO items VALUES (4, 0)").await;
    fixture.run_to_current().await;
    assert_eq!(state_counts(&fixture).await, ["1 open 2", "2 open 2", "3 open 1", "4 open 1"]);
    assert_eq!(fixture.violations().await.len(), 6, "the log keeps every violation");
}

#[tokio::test]
async fn a_keyword_failing_twice_in_one_column_is_one_violation_counted_once() {
    let ddl = "CREATE TABLE items (id integer PRIMARY KEY, quantity integer, meta jsonb)";
    let schema = "x-table: public.items\nproperties:\n  \
                  quantity: {minimum: 1, allOf: [{minimum: 2}, {maximum: 100}]}\n  \
                  meta: {items: {type: integer}}\n";
    let fixture = Fixture::new("twice", ddl, &[("public.items.yaml", schema)]).await;
    fixture.setup().await;
    let many_strings: Vec<String> = (0..12).map(|i| format!("\"s{i}\"")).collect();
    fixture
        .db
        .execute(&format!("INSERT INTO items VALUES (1, 0, '[1, {}]')", many_strings.join(", ")))
        .await;
    let log = fixture.run_to_current().await.stderr;
    let log = String::from_utf8_lossy(&log);
    assert!(log.contains("violations=14 fresh=2"), "two of 14 findings are new:\n{log}");

    // The first finding of each rule and column stands.
    let found: Vec<(String, String)> =
        details(&fixture).await.into_iter().map(|(_, rule, _, message)| (rule, message)).collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0], ("minimum".to_owned(), "quantity must be at least 1, got 0".to_owned()));
    assert_eq!(found[1].0, "type");
    assert!(found[1].1.contains("[1]"), "the first bad item: {}", found[1].1);
    assert_eq!(state_counts(&fixture).await, ["1 open 1", "1 open 1"]);
}
