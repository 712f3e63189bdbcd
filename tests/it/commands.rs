//! `walguard check` and `walguard init` against a real database: every
//! problem of a broken folder reported at its place, and starter files from
//! the catalog that pass `check --against-db` and validate real rows.

use serde_json::json;

use crate::fixture::{Fixture, Found, assert_success};

/// The command's stdout, with the fixture's folder taken out.
fn stdout(fixture: &Fixture, output: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.replace(&format!("{}/", fixture.dir.path().display()), "")
}

#[tokio::test]
async fn check_reports_every_problem_of_every_file_with_its_line_and_column() {
    let schemas = [
        ("public.a_yaml.yaml", "x-table: public.a\nproperties:\n  id: {type: integer\n"),
        (
            "public.b_keywords.yaml",
            "x-table: public.b\nx-colour: red\nproperties:\n  qty: {type: intger, x-pii: 1}\n  \
             sku: {type: string, x-refs: public.x.y, x-severity: high}\nx-monitors:\n  freshness: soon\n  \
             volume: {min: 0, per: 1h}\n",
        ),
        (
            "public.c_rules.yaml",
            "x-table: public.c\nproperties:\n  qty: {type: integer}\nx-rules:\n  \
             - {name: typo, expr: 'row.qtty > 0'}\n  - {name: broken, expr: 'row.qty >'}\n  \
             - {name: scoped, expr: 'true', when: 'has(row.kind)'}\n  - {name: typo, expr: 'true'}\n  \
             - {name: nameless}\n",
        ),
        ("public.d_duplicate.yaml", "x-table: public.c\n"),
        ("public.e_fine.yaml", "x-table: public.e\nproperties:\n  id: {type: integer}\n"),
    ];
    let fixture = Fixture::new("check_broken", "SELECT 1", &schemas).await;

    let output = fixture.output(&["check"]).await;
    assert_eq!(output.status.code(), Some(1), "check exits 1 when anything is wrong");
    insta::assert_snapshot!(stdout(&fixture, &output));

    // The same problems as JSON, each with its position.
    let output = fixture.output(&["check", "--format", "json"]).await;
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json output");
    let problems = report["problems"].as_array().expect("a list of problems");
    assert_eq!(report["files"], 5);
    assert_eq!(problems.len(), 14, "{report:#}");
    assert!(problems.iter().all(|p| p["line"].is_u64() && p["column"].is_u64()), "{report:#}");
}

#[tokio::test]
async fn check_against_db_reports_what_the_catalog_contradicts() {
    let ddl = "CREATE TYPE mood AS ENUM ('happy', 'sad');
               CREATE TABLE people (id integer PRIMARY KEY, name text, mood mood,
                   total numeric GENERATED ALWAYS AS (id * 2) STORED)";
    let schema = "x-table: public.people
required: [id, total]
properties:
  id: {type: string}
  name: {type: [string, 'null']}
  mood: {enum: [happy, angry]}
  nickname: {type: string}
  friend: {type: integer, x-references: public.people.friend_id}
x-rules:
  - {name: named, expr: 'has(row.name)'}
";
    let missing = "x-table: public.ghosts\nproperties:\n  id: {x-references: public.nowhere.id}\n";
    let schemas = [("public.people.yaml", schema), ("public.ghosts.yaml", missing)];
    let fixture = Fixture::new("check_db", ddl, &schemas).await;

    // Without the database the files are fine.
    let output = fixture.output(&["check"]).await;
    assert_success(&output, "check without the database");

    let output = fixture.output(&["check", "--against-db"]).await;
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!(stdout(&fixture, &output));
}

const SHOP_DDL: &str = "
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped', 'needs review');
CREATE TABLE accounts (
    id      bigint PRIMARY KEY,
    email   varchar(120) NOT NULL,
    country char(2),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    status     order_status NOT NULL DEFAULT 'new',
    amount     numeric(8, 2) CHECK (amount >= 0),
    ref        uuid,
    tags       text[],
    meta       jsonb,
    paid       boolean,
    note       varchar(20),
    placed_on  date,
    cents      numeric GENERATED ALWAYS AS (amount * 100) STORED
);
CREATE TABLE \"Audit Log\" (\"Id\" integer NOT NULL, status order_status[])";

#[tokio::test]
async fn init_writes_files_that_pass_check_against_db_and_validate_real_rows() {
    let fixture = Fixture::new("init", SHOP_DDL, &[]).await;

    // Write the files, and the orders file reads as a reviewer would expect.
    let output = fixture.output(&["init"]).await;
    assert_success(&output, "walguard init");
    let schemas = fixture.dir.path().join("schemas");
    let mut names: Vec<String> = std::fs::read_dir(&schemas)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["public.Audit Log.yaml", "public.accounts.yaml", "public.orders.yaml"]);
    let orders = std::fs::read_to_string(schemas.join("public.orders.yaml")).unwrap();
    insta::assert_snapshot!(orders);

    // They pass check against the database untouched.
    let output = fixture.output(&["check", "--against-db"]).await;
    assert_success(&output, "check --against-db of the files init wrote");

    // A second init does not replace them; --force does.
    std::fs::write(schemas.join("public.orders.yaml"), "x-table: public.orders\n").unwrap();
    let output = fixture.output(&["init", "--table", "orders"]).await;
    assert!(!output.status.success(), "init must not overwrite without --force");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(schemas.join("public.orders.yaml")).unwrap(),
        "x-table: public.orders\n"
    );
    let output = fixture.output(&["init", "--table", "public.orders", "--force"]).await;
    assert_success(&output, "init --force");
    assert_eq!(std::fs::read_to_string(schemas.join("public.orders.yaml")).unwrap(), orders);

    // Rows the database accepts pass, except a NaN amount, which
    // `type: number` reports by design.
    fixture.setup().await;
    fixture
        .db
        .execute(
            "INSERT INTO accounts VALUES (1, 'ada@example.com', 'GB', now()), (2, 'b@x', NULL, DEFAULT);
             INSERT INTO orders (account_id, status, amount, ref, tags, meta, paid, note, placed_on)
             VALUES (1, 'paid', 999999.99, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
                     '{a,\"b c\"}', '{\"k\": [1]}', true, 'twenty characters!!!', '2024-02-29'),
                    (2, 'needs review', 0, NULL, NULL, NULL, NULL, NULL, NULL),
                    (1, 'new', 'NaN', NULL, '{}', '[]', false, '', NULL);
             INSERT INTO \"Audit Log\" VALUES (1, '{new,\"needs review\"}'), (2, NULL)",
        )
        .await;
    fixture.run_to_current().await;
    let expected =
        vec![Found::new("public.orders", "insert", "type", Some("amount"), json!({ "id": 3 }))];
    assert_eq!(fixture.violations().await, expected);
    crate::reload::drop_slot(&fixture).await;
}
