//! One test per keyword and edge case of row validation.

use std::fs;

use serde_json::json;

use super::*;
use crate::schema::{SchemaSet, Severity};

/// Compiles a schema file for table `public.t` from the YAML after `x-table`.
fn table(yaml: &str) -> SchemaSet {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.yaml"), format!("x-table: public.t\n{yaml}")).unwrap();
    SchemaSet::load(dir.path()).unwrap()
}

/// A row from JSON text, parsed with exact numbers as the row view does.
fn row(json: &str) -> Row<'static> {
    Row { values: serde_json::from_str(json).unwrap(), unchanged: Vec::new() }
}

/// The findings for inserting `json` into the table of `set`.
fn insert(set: &SchemaSet, json: &str) -> Vec<Finding> {
    validate(set.get("public", "t").unwrap(), Operation::Insert, &row(json))
}

/// The only finding for inserting `json`.
fn only(set: &SchemaSet, json: &str) -> Finding {
    let findings = insert(set, json);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    findings.into_iter().next().unwrap()
}

const ORDERS: &str = "
type: object
required: [account_id]
properties:
  account_id: {type: integer}
  email: {type: string, format: email, x-pii: true}
  amount: {type: number, minimum: 0, maximum: 100}
  status: {enum: [new, paid, shipped, cancelled]}
  note: {type: string, maxLength: 5, x-severity: info}
  country: {type: string, pattern: '^[A-Z]{2}$'}
";

#[test]
fn valid_row_has_no_findings() {
    let set = table(ORDERS);
    let json = r#"{"account_id": 1, "email": "a@example.com", "amount": 12.50, "status": "paid"}"#;
    assert_eq!(insert(&set, json), []);
}

#[test]
fn type_mismatch_names_expected_and_actual_type() {
    let finding = only(&table(ORDERS), r#"{"account_id": "seven"}"#);
    assert_eq!(finding.rule, "type");
    assert_eq!(finding.column.as_deref(), Some("account_id"));
    assert_eq!(finding.message, "account_id must be of type integer, got string");
    assert_eq!(finding.value, Some(json!("seven")));
}

#[test]
fn nan_text_from_a_numeric_column_is_not_a_number() {
    let finding = only(&table(ORDERS), r#"{"account_id": 1, "amount": "NaN"}"#);
    assert_eq!(
        (finding.rule.as_str(), finding.message.as_str()),
        ("type", "amount must be of type number, got string")
    );
}

#[test]
fn required_column_that_is_null_is_reported() {
    let finding = only(&table(ORDERS), r#"{"status": "new"}"#);
    assert_eq!(finding.rule, "required");
    assert_eq!(finding.column.as_deref(), Some("account_id"));
    assert_eq!(finding.message, "account_id is required but was NULL");
    assert_eq!(finding.value, None);
}

#[test]
fn explicit_null_counts_as_absent() {
    let set = table(ORDERS);
    let finding = only(&set, r#"{"account_id": null, "amount": null}"#);
    assert_eq!(finding.rule, "required");
}

#[test]
fn unchanged_toast_column_is_not_reported_missing() {
    let set = table(ORDERS);
    let schema = set.get("public", "t").unwrap();
    let mut update = row(r#"{"status": "paid"}"#);
    update.unchanged.push("account_id".to_owned());
    assert_eq!(validate(schema, Operation::Update, &update), []);

    // The same columns on insert, or NULL on update, are missing.
    assert_eq!(validate(schema, Operation::Insert, &update).len(), 1);
    let null_on_update = row(r#"{"status": "paid"}"#);
    assert_eq!(validate(schema, Operation::Update, &null_on_update).len(), 1);
}

#[test]
fn delete_is_never_checked() {
    let set = table(ORDERS);
    let schema = set.get("public", "t").unwrap();
    assert_eq!(validate(schema, Operation::Delete, &row(r#"{"amount": -1}"#)), []);
    assert_eq!(Operation::Delete.as_str(), "delete");
}

#[test]
fn minimum_reports_bound_and_value() {
    let finding = only(&table(ORDERS), r#"{"account_id": 1, "amount": -5}"#);
    assert_eq!(finding.rule, "minimum");
    assert_eq!(finding.message, "amount must be at least 0, got -5");
    assert_eq!(finding.value, Some(json!(-5)));
}

#[test]
fn maximum_compares_big_numerics_exactly() {
    let set = table(ORDERS);
    let finding = only(&set, r#"{"account_id": 1, "amount": 100.000000000000000000001}"#);
    assert_eq!(finding.rule, "maximum");
    assert_eq!(finding.message, "amount must be at most 100, got 100.000000000000000000001");
    assert_eq!(finding.value.unwrap().to_string(), "100.000000000000000000001");
    assert_eq!(insert(&set, r#"{"account_id": 1, "amount": 100.000000000000000000000}"#), []);
    let tiny_negative = r#"{"account_id": 1, "amount": -0.000000000000000000000000001}"#;
    assert_eq!(only(&set, tiny_negative).rule, "minimum");
}

#[test]
fn enum_lists_the_allowed_values() {
    let finding = only(&table(ORDERS), r#"{"account_id": 1, "status": "lost"}"#);
    assert_eq!(finding.rule, "enum");
    assert_eq!(finding.message, "status must be one of new, paid, shipped, cancelled");
    assert_eq!(finding.value, Some(json!("lost")));
}

#[test]
fn formats_are_asserted() {
    let set = table(
        "properties:
  email: {format: email}
  at: {format: date-time}
  id: {format: uuid}
  day: {format: date}",
    );
    let good = r#"{"email": "a.b@example.com", "at": "2024-05-01T12:00:00.123456+00:00",
                   "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "day": "2024-02-29"}"#;
    assert_eq!(insert(&set, good), []);

    let bad = r#"{"email": "alice", "at": "2024-05-01 12:00:00", "id": "a0eebc99",
                  "day": "2023-02-29"}"#;
    let messages: Vec<(String, String)> =
        insert(&set, bad).into_iter().map(|finding| (finding.rule, finding.message)).collect();
    let expected = [
        "email is not a valid email",
        "at is not a valid date-time",
        "id is not a valid uuid",
        "day is not a valid date",
    ];
    assert_eq!(messages, expected.map(|message| ("format".to_owned(), message.to_owned())));
}

#[test]
fn pattern_names_the_pattern() {
    let finding = only(&table(ORDERS), r#"{"account_id": 1, "country": "France"}"#);
    assert_eq!(finding.rule, "pattern");
    assert_eq!(finding.message, "country does not match the pattern ^[A-Z]{2}$");
}

#[test]
fn max_length_counts_characters() {
    let set = table(ORDERS);
    assert_eq!(insert(&set, r#"{"account_id": 1, "note": "héllo"}"#), []);
    let finding = only(&set, r#"{"account_id": 1, "note": "hello!"}"#);
    assert_eq!(finding.rule, "maxLength");
    assert_eq!(finding.message, "note must be at most 5 characters long");
}

#[test]
fn pii_value_is_redacted_in_value_and_message() {
    let set = table(
        "properties:
  email: {type: string, format: email, x-pii: true}
  code: {type: string, pattern: '^[0-9]+$', minLength: 3, x-pii: true}
  pin: {type: integer, maximum: 9, x-pii: true}",
    );
    let findings = insert(&set, r#"{"email": "alice.secret", "code": "ab", "pin": 1234}"#);
    assert_eq!(findings.len(), 4, "{findings:#?}");
    for finding in findings {
        assert_eq!(finding.value, Some(json!(REDACTED)));
        for secret in ["alice.secret", "ab", "1234"] {
            assert!(!finding.message.contains(secret), "{}", finding.message);
        }
    }
}

#[test]
fn column_severity_overrides_the_file_default() {
    let set = table(&format!("x-severity: warn\n{ORDERS}"));
    let findings = insert(&set, r#"{"account_id": 1, "note": "too long", "status": "x"}"#);
    let severities: Vec<_> = findings.iter().map(|f| (f.rule.as_str(), f.severity)).collect();
    assert_eq!(severities, [("enum", Severity::Warn), ("maxLength", Severity::Info)]);
}

#[test]
fn error_inside_a_json_column_names_the_path() {
    let set = table(
        "properties:
  address:
    type: object
    properties:
      lines: {type: array, items: {type: string}}",
    );
    let finding = only(&set, r#"{"address": {"lines": ["1 Main St", 42]}}"#);
    assert_eq!(finding.column.as_deref(), Some("address"));
    assert_eq!(finding.message, "address.lines[1] must be of type string, got integer");
    assert_eq!(finding.value, Some(json!({"lines": ["1 Main St", 42]})));
}

#[test]
fn refs_to_defs_resolve_per_column() {
    let set = table(
        "$defs:
  money: {type: number, minimum: 0}
properties:
  price: {$ref: '#/$defs/money'}",
    );
    assert!(set.get("public", "t").unwrap().validates_per_column());
    let finding = only(&set, r#"{"price": -1}"#);
    assert_eq!((finding.rule.as_str(), finding.column.as_deref()), ("minimum", Some("price")));
}

#[test]
fn whole_row_schemas_give_the_same_findings() {
    let set = table(&format!("additionalProperties: false\n{ORDERS}"));
    let schema = set.get("public", "t").unwrap();
    assert!(!schema.validates_per_column());

    let findings = insert(&set, r#"{"amount": -5, "email": "nope", "extra": 1, "note": null}"#);
    let mut summary: Vec<_> =
        findings.iter().map(|f| (f.rule.as_str(), f.column.as_deref().unwrap())).collect();
    summary.sort();
    let expected = [
        ("additionalProperties", "extra"),
        ("format", "email"),
        ("minimum", "amount"),
        ("required", "account_id"),
    ];
    assert_eq!(summary, expected);
    let by_rule = |rule: &str| findings.iter().find(|f| f.rule == rule).unwrap();
    assert_eq!(by_rule("format").value, Some(json!(REDACTED)));
    assert_eq!(by_rule("minimum").message, "amount must be at least 0, got -5");

    let mut update = row(r#"{"status": "new"}"#);
    update.unchanged.push("account_id".to_owned());
    assert_eq!(validate(schema, Operation::Update, &update), []);
}

#[test]
fn conditional_required_at_the_top_is_reported_per_column() {
    let set = table(
        "if: {properties: {status: {const: paid}}, required: [status]}
then: {required: [amount]}",
    );
    let finding = only(&set, r#"{"status": "paid"}"#);
    assert_eq!((finding.rule.as_str(), finding.column.as_deref()), ("required", Some("amount")));
    assert_eq!(insert(&set, r#"{"status": "paid", "amount": 3}"#), []);
}

const RULES: &str = "
properties:
  status: {type: string}
  amount: {type: number}
  email: {type: string, x-pii: true}
x-rules:
  - name: paid_needs_amount
    expr: \"row.status != 'paid' || row.amount > 0\"
    message: paid orders need a positive amount
  - name: short_email
    expr: size(row.email) < 10
    severity: warn
";

#[test]
fn rule_that_holds_has_no_finding() {
    let set = table(RULES);
    assert_eq!(insert(&set, r#"{"status": "paid", "amount": 12.50, "email": "a@b.c"}"#), []);
    assert_eq!(insert(&set, r#"{"status": "new", "email": "a@b.c"}"#), []);
}

#[test]
fn rule_that_fails_is_one_row_finding() {
    let set = table(RULES);
    let findings = insert(&set, r#"{"status": "paid", "amount": 0, "email": "alice@example.com"}"#);
    let expected = [
        ("paid_needs_amount", "paid orders need a positive amount", Severity::Error),
        ("short_email", "rule short_email failed", Severity::Warn),
    ];
    let actual: Vec<_> =
        findings.iter().map(|f| (f.rule.as_str(), f.message.as_str(), f.severity)).collect();
    assert_eq!(actual, expected);
    assert!(findings.iter().all(|f| f.column.is_none() && f.value.is_none()));
}

#[test]
fn rule_that_cannot_be_evaluated_is_reported() {
    let set = table(RULES);
    let findings = insert(&set, r#"{"status": "paid", "email": "a@b.c"}"#);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].rule, "paid_needs_amount");
    assert_eq!(
        findings[0].message,
        "rule paid_needs_amount could not be evaluated: the row has no amount (NULL columns are \
         absent; test with has(row.amount))"
    );

    // A type error names the types, not the pii value.
    let findings = insert(&set, r#"{"status": "new", "email": 12345678}"#);
    let message = &findings.iter().find(|f| f.rule == "short_email").unwrap().message;
    assert!(message.starts_with("rule short_email could not be evaluated: "), "{message}");
    assert!(!message.contains("12345678"), "{message}");
}

#[test]
fn rule_returning_a_non_bool_is_reported() {
    let set = table("x-rules:\n  - {name: count, expr: '1 + 1'}\n");
    let finding = only(&set, "{}");
    assert_eq!(
        finding.message,
        "rule count could not be evaluated: it returned a int instead of a bool"
    );
}

#[test]
fn rule_needing_an_unchanged_toast_column_is_skipped_on_update() {
    let set = table(RULES);
    let schema = set.get("public", "t").unwrap();
    let mut update = row(r#"{"status": "new", "amount": 1}"#);
    update.unchanged.push("email".to_owned());
    assert_eq!(validate(schema, Operation::Update, &update), []);
}

const TRANSITIONS: &str = "
properties:
  status: {type: string}
  amount: {type: number}
x-rules:
  - name: no_reopen
    expr: \"old.status != 'shipped' || row.status == 'shipped'\"
  - name: paid_amount
    when: \"has(row.status) && row.status == 'paid'\"
    expr: 'has(row.amount) && row.amount > 0'
";

/// The outcome of updating a row from `old` to `new`.
fn update(set: &SchemaSet, old: &str, complete: bool, new: &str) -> Outcome {
    let old = row(old);
    let old = OldRow { row: &old, complete };
    validate_change(set.get("public", "t").unwrap(), Operation::Update, &row(new), Some(old))
}

#[test]
fn when_scopes_a_rule_to_the_rows_it_is_true_for() {
    let set = table(TRANSITIONS);
    assert_eq!(insert(&set, r#"{"status": "new"}"#), []);
    assert_eq!(insert(&set, r#"{"status": "paid", "amount": 5}"#), []);
    assert_eq!(only(&set, r#"{"status": "paid"}"#).rule, "paid_amount");
}

#[test]
fn transition_rule_is_checked_against_the_whole_previous_row() {
    let set = table(TRANSITIONS);
    let fine = update(&set, r#"{"status": "paid"}"#, true, r#"{"status": "shipped"}"#);
    assert_eq!(fine, Outcome::default());
    let back = update(&set, r#"{"status": "shipped"}"#, true, r#"{"status": "new"}"#);
    let rules: Vec<&str> = back.findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, ["no_reopen"]);
    assert_eq!(back.unknown, Vec::<usize>::new());
}

#[test]
fn transition_rule_without_the_previous_row_is_unknown_not_a_finding() {
    let set = table(TRANSITIONS);
    let outcome = update(&set, r#"{"id": 1}"#, false, r#"{"status": "new"}"#);
    assert_eq!(outcome.findings, []);
    assert_eq!(outcome.unknown, [0]);
    assert_eq!(outcome.skipped, ["no_reopen"]);
}

#[test]
fn transition_rule_is_not_checked_on_insert() {
    let set = table(TRANSITIONS);
    let outcome = validate_change(
        set.get("public", "t").unwrap(),
        Operation::Insert,
        &row(r#"{"status": "new"}"#),
        None,
    );
    assert_eq!(outcome.findings, []);
    assert_eq!(outcome.skipped, ["no_reopen"]);
}
