//! Loading schema folders: the examples shipped in `schemas/`, and each way a
//! file can be refused, with the message it gets.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::*;

/// A folder holding `files` (name, content).
fn folder(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}

/// The error of loading a folder that holds `files`, as text.
fn load_error(files: &[(&str, &str)]) -> (TempDir, String) {
    let dir = folder(files);
    let err = SchemaSet::load(dir.path()).unwrap_err();
    (dir, err.to_string())
}

fn file(dir: &TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

const MINIMAL: &str = "x-table: public.t\ntype: object\nproperties:\n  a: {type: integer}\n";

#[test]
fn example_schemas_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let set = SchemaSet::load(&dir).unwrap();
    let names: Vec<String> = set.tables().map(|table| table.table().to_string()).collect();
    assert_eq!(names, ["public.accounts", "public.order_items", "public.orders"]);

    let orders = set.get("public", "orders").unwrap();
    assert_eq!(orders.pii_columns().collect::<Vec<_>>(), ["email"]);
    assert_eq!(orders.required(), ["account_id"]);
    assert_eq!(orders.rules()[0].name(), "paid_needs_amount");
    assert_eq!(orders.rules()[0].severity(), Some(Severity::Critical));
    let (column, target) = orders.references().next().unwrap();
    assert_eq!((column, target.to_string().as_str()), ("account_id", "public.accounts.id"));
    assert_eq!(orders.monitors().freshness, Some(std::time::Duration::from_secs(15 * 60)));
    assert!(orders.validates_per_column());

    let accounts = set.get("public", "accounts").unwrap();
    assert_eq!(accounts.column_severity("country"), Severity::Warn);
    assert_eq!(accounts.column_severity("email"), Severity::Error);
    assert!(set.get("public", "missing").is_none());
}

#[test]
fn files_other_than_yaml_are_ignored_and_yml_counts() {
    let dir = folder(&[("t.yml", MINIMAL), ("README.md", "# no"), (".#t.yaml", "junk: [")]);
    let set = SchemaSet::load(dir.path()).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set.get("public", "t").unwrap().path(), file(&dir, "t.yml"));
}

#[test]
fn quoted_table_name_keeps_case_and_spaces() {
    let yaml = "x-table: '\"Sales\".\"Order Items\"'\ntype: object\n";
    let dir = folder(&[("sales.yaml", yaml)]);
    let set = SchemaSet::load(dir.path()).unwrap();
    assert!(set.get("Sales", "Order Items").is_some());
}

#[test]
fn empty_folder_is_an_error() {
    let dir = folder(&[("notes.txt", "")]);
    let err = SchemaSet::load(dir.path()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("no schema files (*.yaml, *.yml) were found in {}", dir.path().display())
    );
}

#[test]
fn missing_folder_is_an_error_naming_it() {
    let dir = folder(&[]);
    let missing = dir.path().join("nope");
    let err = SchemaSet::load(&missing).unwrap_err();
    assert!(matches!(err, SchemaError::ReadDir { .. }));
    assert_eq!(err.path(), missing);
}

#[test]
fn bad_yaml_names_file_line_and_column() {
    let yaml = "x-table: public.t\ntype: object\nproperties:\n  a: {type: integer\n  b: 1\n";
    let (dir, err) = load_error(&[("t.yaml", yaml)]);
    let prefix = format!("{}:5:4: ", file(&dir, "t.yaml").display());
    assert!(err.starts_with(&prefix), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn duplicate_yaml_key_is_a_yaml_error() {
    let (dir, err) = load_error(&[("t.yaml", "x-table: public.t\nx-table: public.u\n")]);
    assert!(err.starts_with(&format!("{}:2:1: ", file(&dir, "t.yaml").display())), "{err}");
}

#[test]
fn missing_x_table_is_an_error() {
    let (dir, err) = load_error(&[("t.yaml", "type: object\n")]);
    assert!(err.starts_with(&format!("{}: missing x-table", file(&dir, "t.yaml").display())));
}

#[test]
fn empty_file_and_non_mapping_are_errors() {
    let (_dir, err) = load_error(&[("t.yaml", "")]);
    assert!(err.ends_with("t.yaml: the file is empty"), "{err}");
    let (_dir, err) = load_error(&[("t.yaml", "- x-table\n")]);
    assert!(err.contains("must be a mapping"), "{err}");
}

#[test]
fn unqualified_x_table_is_an_error() {
    let (_dir, err) = load_error(&[("t.yaml", "x-table: orders\n")]);
    assert!(err.contains("t.yaml: /x-table: `orders` is not a table name"), "{err}");
}

#[test]
fn duplicate_tables_name_both_files() {
    let (dir, err) = load_error(&[("a.yaml", MINIMAL), ("b.yaml", MINIMAL)]);
    let expected = format!(
        "{}: table public.t is already described by {}",
        file(&dir, "b.yaml").display(),
        file(&dir, "a.yaml").display()
    );
    assert_eq!(err, expected);
}

#[test]
fn invalid_json_schema_names_the_keyword_path() {
    let (dir, err) = load_error(&[("t.yaml", "x-table: public.t\ntype: 5\n")]);
    let prefix = format!("{}: /type: invalid JSON Schema: ", file(&dir, "t.yaml").display());
    assert!(err.starts_with(&prefix), "{err}");

    let yaml = "x-table: public.t\nproperties:\n  a: {minimum: ten}\n";
    let (_dir, err) = load_error(&[("t.yaml", yaml)]);
    assert!(err.contains("t.yaml: /properties/a/minimum: invalid JSON Schema"), "{err}");
}

#[test]
fn unknown_format_and_unresolvable_ref_are_errors() {
    let yaml = "x-table: public.t\nproperties:\n  a: {format: emial}\n";
    let (_dir, err) = load_error(&[("t.yaml", yaml)]);
    assert!(err.contains("/properties/a/format") && err.contains("emial"), "{err}");

    let yaml = "x-table: public.t\nproperties:\n  a: {$ref: 'https://example.com/a.json'}\n";
    let (_dir, err) = load_error(&[("t.yaml", yaml)]);
    assert!(err.contains("invalid JSON Schema"), "{err}");
}

#[test]
fn unknown_x_keyword_is_an_error() {
    let yaml = "x-table: public.t\nproperties:\n  a: {type: integer, x-pi: true}\n";
    let (_dir, err) = load_error(&[("t.yaml", yaml)]);
    assert!(err.contains("t.yaml: /properties/a/x-pi: unknown keyword x-pi"), "{err}");
}

#[test]
fn pii_and_references_outside_a_column_are_errors() {
    let yaml = "x-table: public.t\nx-pii: true\n";
    let (_dir, err) = load_error(&[("t.yaml", yaml)]);
    assert!(err.contains("/x-pii: x-pii applies to a column"), "{err}");

    let yaml = "x-table: public.t\nproperties:\n  a:\n    type: object\n    properties:\n      \
                b: {x-references: public.u.id}\n";
    let (_dir, err) = load_error(&[("t.yaml", yaml)]);
    assert!(err.contains("/properties/a/properties/b/x-references: x-references applies"), "{err}");

    let yaml = "x-table: public.t\nproperties:\n  a:\n    x-table: public.u\n";
    let (_dir, err) = load_error(&[("t.yaml", yaml)]);
    assert!(err.contains("/properties/a/x-table: x-table belongs at the top"), "{err}");
}

#[test]
fn x_names_in_data_and_property_names_are_not_keywords() {
    let yaml = "x-table: public.t\nproperties:\n  x-size: {enum: [x-large], default: {x-no: 1}}\n";
    let dir = folder(&[("t.yaml", yaml)]);
    assert!(SchemaSet::load(dir.path()).is_ok());
}

#[test]
fn malformed_values_of_our_keywords_are_errors() {
    let cases = [
        ("x-severity: fatal\n", "/x-severity: expected a severity"),
        ("properties:\n  a: {x-pii: 1}\n", "/properties/a/x-pii: x-pii must be true or false"),
        ("properties:\n  a: {x-severity: high}\n", "/properties/a/x-severity: expected"),
        ("properties:\n  a: {x-references: accounts}\n", "/properties/a/x-references: "),
        ("x-on-unknown-columns: drop\n", "/x-on-unknown-columns: x-on-unknown-columns must"),
        ("x-monitors: 15m\n", "/x-monitors: x-monitors must be a mapping"),
        ("x-rules: {name: a}\n", "/x-rules: x-rules must be a list"),
        ("x-rules: [{name: a}]\n", "/x-rules/0: a rule needs a name and an expr"),
        ("x-rules: [{name: a, expr: 'true', when: x}]\n", "/x-rules/0: a rule needs"),
    ];
    for (extra, expected) in cases {
        let yaml = format!("x-table: public.t\n{extra}");
        let (_dir, err) = load_error(&[("t.yaml", &yaml)]);
        assert!(err.contains(expected), "{extra}: {err}");
    }
}

#[test]
fn duplicate_rule_names_are_an_error() {
    let yaml =
        "x-table: public.t\nx-rules:\n  - {name: a, expr: 'true'}\n  - {name: a, expr: 'false'}\n";
    let (_dir, err) = load_error(&[("t.yaml", yaml)]);
    assert!(err.contains("/x-rules/1: another rule is already named a"), "{err}");
}

#[test]
fn cel_that_does_not_compile_names_file_and_rule() {
    let yaml = "x-table: public.t\nx-rules:\n  - name: positive\n    expr: 'row.amount >'\n";
    let (dir, err) = load_error(&[("t.yaml", yaml)]);
    let prefix = format!(
        "{}: /x-rules/0/expr: rule positive does not compile: ",
        file(&dir, "t.yaml").display()
    );
    assert!(err.starts_with(&prefix), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn required_column_not_in_properties_is_fine() {
    let yaml = "x-table: public.t\ntype: object\nrequired: [a, b]\nproperties:\n  a: {}\n";
    let dir = folder(&[("t.yaml", yaml)]);
    let set = SchemaSet::load(dir.path()).unwrap();
    assert_eq!(set.get("public", "t").unwrap().required(), ["a", "b"]);
}

#[test]
fn top_level_constraints_switch_to_whole_row_validation() {
    let yaml = "x-table: public.t\ntype: object\nadditionalProperties: false\n";
    let dir = folder(&[("t.yaml", yaml)]);
    let set = SchemaSet::load(dir.path()).unwrap();
    assert!(!set.get("public", "t").unwrap().validates_per_column());

    let dir = folder(&[("t.yaml", MINIMAL)]);
    let set = SchemaSet::load(dir.path()).unwrap();
    let table = set.get("public", "t").unwrap();
    assert!(table.validates_per_column());
    assert_eq!(table.on_unknown_columns(), UnknownColumns::Ignore);
    assert_eq!(table.severity(), Severity::Error);
}
