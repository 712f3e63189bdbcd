//! Value types end to end: each PostgreSQL type's text form, as pgoutput sends
//! it, is validated as DESIGN.md maps it, with no false alarm on good rows and
//! exactly the expected violation on each bad one.

use serde_json::{Value, json};

use crate::fixture::{Fixture, Found};

/// A violation of table `public.<table>` on insert, keyed by `id`.
fn insert(table: &str, rule: &str, column: &str, id: i64) -> Found {
    Found::new(&format!("public.{table}"), "insert", rule, Some(column), json!({ "id": id }))
}

fn sorted(mut found: Vec<Found>) -> Vec<Found> {
    found.sort();
    found
}

/// Runs `ddl`, `setup`, then `rows`, then streams everything and returns the
/// violations.
async fn stream(name: &str, ddl: &str, schema: (&str, &str), rows: &str) -> Vec<Found> {
    let fixture = Fixture::new(name, ddl, &[schema]).await;
    fixture.setup().await;
    fixture.db.execute(rows).await;
    fixture.run_to_current().await;
    fixture.violations().await
}

#[tokio::test]
async fn numbers_compare_exactly_and_nan_and_infinity_are_type_violations() {
    let ddl = "CREATE TABLE nums (id int8 PRIMARY KEY, n numeric, m numeric, i int8, f8 float8,
               f4 float4, s numeric)";
    // Each bad value differs from a good one only past the 17th significant
    // digit, so a float comparison could not tell them apart.
    let schema = "
x-table: public.nums
properties:
  n:  {type: number}
  s:  {type: number, maximum: 0.1}
  m:  {type: number, multipleOf: 0.01, minimum: 0.000000000000000000000000000001}
  i:  {type: integer, minimum: -9223372036854775808, maximum: 9223372036854775806}
  f8: {type: number}
  f4: {type: number, maximum: 3.5e38}
";
    let rows = "
INSERT INTO nums VALUES (1, 12345678901234567890123456789012345.678, 123456789012345678901234567890.01,
                         -9223372036854775808, 1e308, 3.4028235e38, 0.1);
INSERT INTO nums (id, s) VALUES (2, 0.10000000000000000001);
INSERT INTO nums (id, m) VALUES (3, 123456789012345678901234567890.011);
INSERT INTO nums (id, m) VALUES (4, 0.000000000000000000000000000000);
INSERT INTO nums (id, i) VALUES (5, 9223372036854775807);
INSERT INTO nums (id, n, m) VALUES (6, 'NaN', 'Infinity');
INSERT INTO nums (id, n) VALUES (7, '-Infinity');
INSERT INTO nums (id, f8, f4) VALUES (8, 'NaN', 'Infinity');
INSERT INTO nums (id, f8, f4) VALUES (9, '-Infinity', -3.4028235e38);
INSERT INTO nums (id, f8) VALUES (10, 4.9e-324);
";
    let found = stream("numbers", ddl, ("public.nums.yaml", schema), rows).await;
    let expected = vec![
        insert("nums", "maximum", "s", 2),
        insert("nums", "multipleOf", "m", 3),
        insert("nums", "minimum", "m", 4),
        insert("nums", "maximum", "i", 5),
        insert("nums", "type", "n", 6),
        insert("nums", "type", "m", 6),
        insert("nums", "type", "n", 7),
        insert("nums", "type", "f8", 8),
        insert("nums", "type", "f4", 8),
        insert("nums", "type", "f8", 9),
    ];
    assert_eq!(found, sorted(expected));
}

#[tokio::test]
async fn dates_and_times_pass_their_formats_whatever_the_database_defaults() {
    // Defaults that would change every value's text form if the replication
    // session did not pin its own.
    let ddl = "
CREATE TABLE times (id int8 PRIMARY KEY, tz timestamptz, ts timestamp, d date, t time,
                    ttz timetz, iv interval);
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET DateStyle = %L', current_database(),
    'SQL, DMY'); EXECUTE format('ALTER DATABASE %I SET TimeZone = %L', current_database(),
    'America/New_York'); EXECUTE format('ALTER DATABASE %I SET IntervalStyle = %L',
    current_database(), 'iso_8601'); EXECUTE format('ALTER DATABASE %I SET
    extra_float_digits = 0', current_database()); END $$;
";
    let schema = r"
x-table: public.times
properties:
  tz:  {type: string, format: date-time}
  ts:  {type: string, format: date-time}
  d:   {type: string, format: date}
  t:   {type: string, format: time}
  ttz: {type: string, format: time}
  iv:  {type: string, pattern: '^([0-9]+ days? )?[0-9]{2}:[0-9]{2}:[0-9]{2}$'}
";
    let rows = "
INSERT INTO times VALUES (1, '2024-02-29 12:00:00.123456+05:30', '2024-02-29 12:00:00.5',
                          '2024-02-29', '23:59:59.999999', '12:00:00-03:30', '1 day 2 hours');
INSERT INTO times VALUES (2, '1999-12-31 23:59:59 America/Los_Angeles', '0001-01-01 00:00:00',
                          '0001-01-01', '00:00:00', '00:00:00+14', '00:00:01');
INSERT INTO times (id, tz, d) VALUES (3, 'infinity', 'infinity');
INSERT INTO times (id, tz, ts) VALUES (4, '-infinity', '-infinity');
INSERT INTO times (id, tz, d) VALUES (5, '0044-03-15 12:00:00+00 BC', '0044-03-15 BC');
INSERT INTO times (id, ts) VALUES (6, '12024-01-01 00:00:00');
INSERT INTO times (id, iv) VALUES (7, '1 mon 3 hours');
";
    let found = stream("times", ddl, ("public.times.yaml", schema), rows).await;
    let expected = vec![
        insert("times", "format", "tz", 3),
        insert("times", "format", "d", 3),
        insert("times", "format", "tz", 4),
        insert("times", "format", "ts", 4),
        insert("times", "format", "tz", 5),
        insert("times", "format", "d", 5),
        insert("times", "format", "ts", 6),
        insert("times", "pattern", "iv", 7),
    ];
    assert_eq!(found, sorted(expected));
}

#[tokio::test]
async fn arrays_keep_nulls_nesting_and_elements_that_need_quotes() {
    let ddl = "
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE arrs (id int8 PRIMARY KEY, tags text[], grid int4[], nums numeric[], moods mood[],
                   flags bool[]);
";
    let schema = r#"
x-table: public.arrs
properties:
  tags:  {type: array, minItems: 1, items: {type: string, enum: ['a,b', 'c"d', 'e\f', '{g}',
          'h i', 'NULL', '', plain]}}
  grid:  {type: array, items: {type: array, items: {type: integer, maximum: 9}}}
  nums:  {type: array, items: {type: number, minimum: 0}}
  moods: {type: array, items: {enum: [ok, happy]}}
  flags: {type: array, items: {type: boolean}}
"#;
    let rows = r#"
INSERT INTO arrs VALUES (1, ARRAY['a,b', 'c"d', 'e\f', '{g}', 'h i', 'NULL', '', 'plain'],
                         '{{1,2},{3,9}}', ARRAY[0, 12345678901234567890.123456789],
                         '{ok,happy}', '{t,f}');
INSERT INTO arrs (id, tags) VALUES (2, '{}');
INSERT INTO arrs (id, tags) VALUES (3, ARRAY['plain', NULL]);
INSERT INTO arrs (id, tags) VALUES (4, ARRAY['a, b']);
INSERT INTO arrs (id, grid) VALUES (5, '{{1,2},{3,10}}');
INSERT INTO arrs (id, grid) VALUES (6, '[0:1][0:0]={{1},{NULL}}');
INSERT INTO arrs (id, nums) VALUES (7, ARRAY['NaN', 1]::numeric[]);
INSERT INTO arrs (id, nums) VALUES (8, ARRAY[-0.000000000000000000000000000001]);
INSERT INTO arrs (id, moods) VALUES (9, ARRAY['ok', 'sad']::mood[]);
INSERT INTO arrs (id, moods, flags) VALUES (10, '{}', '{NULL}');
"#;
    let found = stream("arrays", ddl, ("public.arrs.yaml", schema), rows).await;
    let expected = vec![
        insert("arrs", "minItems", "tags", 2),
        insert("arrs", "type", "tags", 3),
        insert("arrs", "enum", "tags", 3),
        insert("arrs", "enum", "tags", 4),
        insert("arrs", "maximum", "grid", 5),
        insert("arrs", "type", "grid", 6),
        insert("arrs", "type", "nums", 7),
        insert("arrs", "minimum", "nums", 8),
        insert("arrs", "enum", "moods", 9),
        insert("arrs", "type", "flags", 10),
    ];
    assert_eq!(found, sorted(expected));
}

#[tokio::test]
async fn enums_domains_and_other_types_validate_as_their_text_or_base_type() {
    let ddl = r"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN mail AS text;
CREATE TYPE pair AS (a int, b text);
CREATE TYPE _odd AS ENUM ('{a}', 'b');
CREATE TABLE misc (id int8 PRIMARY KEY, m mood, p posint, e mail, pr pair, r int4range,
                   b bytea, mo money, u uuid, ip inet, net cidr, bits bit(4), vb varbit,
                   x xml, j json, jb jsonb, ok bool, ch char(3), ps posint[], odd _odd);
";
    let schema = r#"
x-table: public.misc
properties:
  m:    {enum: [ok, happy]}
  p:    {type: integer, maximum: 100}
  e:    {type: string, format: email}
  pr:   {type: string, pattern: '^\(-?[0-9]+,.*\)$'}
  r:    {type: string, pattern: '^\[[0-9]+,[0-9]+\)$'}
  b:    {type: string, pattern: '^\\x([0-9a-f]{2})*$', maxLength: 6}
  mo:   {type: string, pattern: '^\$[0-9,]+\.[0-9]{2}$'}
  u:    {type: string, format: uuid}
  ip:   {type: string, format: ipv4}
  net:  {type: string, pattern: '/8$'}
  bits: {type: string, pattern: '^1'}
  vb:   {type: string, maxLength: 3}
  x:    {type: string, pattern: '^<note>'}
  j:    {type: object, required: [name], properties: {name: {const: "é😀"}}}
  jb:   {type: array, items: {type: number}}
  ok:   {const: true}
  ch:   {type: string, maxLength: 3}
  ps:   {type: array, items: {type: integer, maximum: 100}}
  odd:  {enum: ['{a}']}
"#;
    let rows = r#"
INSERT INTO misc VALUES (1, 'ok', 7, 'a@b.example', '(1,"x, y")', '[1,5)', '\xdead', 12.5,
                         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1', '10.0.0.0/8',
                         B'1010', B'101', '<note>hi</note>',
                         '{"name": "\u00e9\ud83d\ude00"}', '[1, 2.50, 1e400]', true, 'ab',
                         '{1,100}', '{a}');
INSERT INTO misc (id, ps, odd) VALUES (8, '{1,101}', 'b');
INSERT INTO misc (id, m, p) VALUES (2, 'sad', 500);
INSERT INTO misc (id, e, pr) VALUES (3, 'not-an-email', '(,x)');
INSERT INTO misc (id, r, b) VALUES (4, 'empty', '\xdeadbeef');
INSERT INTO misc (id, u, ip, net) VALUES (5, '00000000-0000-0000-0000-000000000000', '::1',
                                          '192.168.0.0/16');
INSERT INTO misc (id, bits, vb, x) VALUES (6, B'0101', B'1111', '<other/>');
INSERT INTO misc (id, j, jb, ok) VALUES (7, '{"name": "e"}', '[1, "2"]', false);
"#;
    let found = stream("misc", ddl, ("public.misc.yaml", schema), rows).await;
    let expected = vec![
        insert("misc", "enum", "m", 2),
        insert("misc", "maximum", "p", 2),
        insert("misc", "format", "e", 3),
        insert("misc", "pattern", "pr", 3),
        insert("misc", "pattern", "r", 4),
        insert("misc", "maxLength", "b", 4),
        insert("misc", "format", "ip", 5),
        insert("misc", "pattern", "net", 5),
        insert("misc", "pattern", "bits", 6),
        insert("misc", "maxLength", "vb", 6),
        insert("misc", "pattern", "x", 6),
        insert("misc", "const", "j", 7),
        insert("misc", "type", "jb", 7),
        insert("misc", "const", "ok", 7),
        insert("misc", "maximum", "ps", 8),
        insert("misc", "enum", "odd", 8),
    ];
    assert_eq!(found, sorted(expected));
}

#[tokio::test]
async fn unchanged_toast_values_are_never_missing_under_default_and_full_identity() {
    let ddl = "
CREATE TABLE docs_default (id int8 PRIMARY KEY, body text, doc jsonb, blob bytea, n int);
CREATE TABLE docs_full (id int8 PRIMARY KEY, body text, doc jsonb, blob bytea, n int);
ALTER TABLE docs_full REPLICA IDENTITY FULL;
";
    let schema = |table: &str| {
        format!(
            "x-table: public.{table}\nrequired: [body, doc, blob]\n\
             properties:\n  n: {{type: integer, maximum: 10}}\n"
        )
    };
    let fixture = Fixture::new("toast", ddl, &[]).await;
    fixture.write_schema("public.docs_default.yaml", &schema("docs_default"));
    fixture.write_schema("public.docs_full.yaml", &schema("docs_full"));
    fixture.setup().await;

    // Values far past the TOAST threshold, random so they do not compress
    // back under it; then updates that leave them alone.
    for table in ["docs_default", "docs_full"] {
        fixture
            .db
            .execute(&format!(
                "INSERT INTO {table}
                 SELECT 1, string_agg(md5(random()::text), ''),
                        jsonb_build_object('k', string_agg(md5(random()::text), '')),
                        decode(string_agg(md5(random()::text), ''), 'hex'), 1
                 FROM generate_series(1, 4000);
                 UPDATE {table} SET n = 2 WHERE id = 1;
                 UPDATE {table} SET n = 11 WHERE id = 1;
                 UPDATE {table} SET doc = NULL WHERE id = 1"
            ))
            .await;
    }
    fixture.run_to_current().await;

    let update = |table: &str, rule: &str, column: &str, key: Value| {
        Found::new(&format!("public.{table}"), "update", rule, Some(column), key)
    };
    let full_key = |found: &Found| found.row_key.contains("\"body\"");
    let found = fixture.violations().await;
    let (full, default): (Vec<_>, Vec<_>) = found.into_iter().partition(full_key);
    assert_eq!(
        default,
        vec![
            update("docs_default", "maximum", "n", json!({"id": 1})),
            update("docs_default", "maximum", "n", json!({"id": 1})),
            update("docs_default", "required", "doc", json!({"id": 1})),
        ]
    );
    // Under FULL the key is the whole old row, TOASTed values included.
    let rules: Vec<_> = full.iter().map(|f| (f.rule.as_str(), f.column.as_deref())).collect();
    assert_eq!(rules, [("maximum", Some("n")), ("maximum", Some("n")), ("required", Some("doc"))]);
    assert!(full.iter().all(|f| f.table == "public.docs_full" && f.operation == "update"));
}
