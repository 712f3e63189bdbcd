//! Validation: a row and its table's compiled schema in, findings out.
//!
//! Pure and synchronous: no I/O, no logging, no clock. A finding is a result,
//! not an error; the caller turns findings into violation records.
//!
//! The rules follow the violations contract (DESIGN.md, "Reviewer interface"):
//!
//! - each JSON Schema error is one [`Finding`] whose `rule` is the failing
//!   keyword and whose `column` is the top-level property it is about;
//! - NULL is absence, as in a CHECK constraint: the row view leaves NULL
//!   columns out, so `required` reports them and no other keyword sees them;
//! - on an update, a column the server did not send because its TOASTed value
//!   did not change is neither missing nor checked;
//! - a delete has no row to check;
//! - the value of an `x-pii` column never appears in a finding, neither in
//!   `value` nor in `message`;
//! - each `x-rules` rule that is false, or that cannot be evaluated, is one
//!   finding about the whole row (`column` is `None`);
//! - a transition rule (one that names `old`) is checked on updates only; when
//!   the server did not send the whole previous row (the table's replica
//!   identity is not FULL), a verdict other than true is "unknown": listed in
//!   [`Outcome::unknown`], never a finding.
//!
//! Per-row cost: no schema is compiled or parsed here. Tables whose top level
//! only has `properties` and `required` are checked column by column, each
//! column's cell validated where it lies; others need the row as one JSON
//! object, which costs a copy of the row. CEL rules see the row through
//! borrowed views of its cells, and the simplest are evaluated without the CEL
//! interpreter. A column's value is copied only into a finding.

mod cel_row;
mod message;
mod rules;
#[cfg(test)]
mod tests;

use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use serde_json::{Map, Value};

use crate::row::{Row, Values};
use crate::schema::TableSchema;

/// The kind of change a row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A new row.
    Insert,
    /// The new version of an updated row.
    Update,
    /// A deleted row: never checked.
    Delete,
}

impl Operation {
    /// The name used in the violations table.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }

    /// The operation with this name in the violations table.
    pub fn from_name(name: &str) -> Option<Operation> {
        [Operation::Insert, Operation::Update, Operation::Delete]
            .into_iter()
            .find(|operation| operation.as_str() == name)
    }
}

/// One way a row breaks its schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The JSON Schema keyword (`minimum`, `required`, ...) or the rule's name.
    pub rule: String,
    /// The top-level column the finding is about; `None` for a rule about the
    /// whole row.
    pub column: Option<String>,
    /// The column's or rule's severity, else the file's.
    pub severity: crate::schema::Severity,
    /// What is wrong, for a reviewer; never contains a pii value.
    pub message: String,
    /// The offending column's value, `"[redacted]"` for a pii column.
    pub value: Option<Value>,
}

/// What a pii column's value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// The previous version of an updated row, as far as the server sent it.
#[derive(Debug, Clone, Copy)]
pub struct OldRow<'r> {
    /// The columns known from the previous version.
    pub row: &'r Row<'r>,
    /// Whether `row` is the whole previous row (REPLICA IDENTITY FULL) rather
    /// than only its key columns.
    pub complete: bool,
}

/// Everything validation learned about one row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The ways the row breaks its schema.
    pub findings: Vec<Finding>,
    /// Indexes (into [`TableSchema::rules`]) of transition rules whose verdict
    /// is unknown because the server did not send the whole previous row.
    pub unknown: Vec<usize>,
    /// Names of rules that were not evaluated for this row (transition rules
    /// on an insert, rules needing an unchanged TOAST column, unknown ones):
    /// the row neither passes nor fails them.
    pub skipped: Vec<String>,
}

/// Checks one row of `schema`'s table.
pub fn validate(schema: &TableSchema, op: Operation, row: &Row) -> Vec<Finding> {
    validate_change(schema, op, row, None).findings
}

/// Checks one row of `schema`'s table, with the previous version of an
/// updated row for transition rules.
pub fn validate_change(
    schema: &TableSchema,
    op: Operation,
    row: &Row,
    old: Option<OldRow<'_>>,
) -> Outcome {
    let mut outcome = Outcome::default();
    if op == Operation::Delete {
        return outcome;
    }

    // Columns: `required`, then each column's keywords.
    if schema.validates_per_column() {
        check_required(schema, op, row, &mut outcome.findings);
        check_columns(schema, row, &mut outcome.findings);
    } else {
        check_whole_row(schema, op, row, &mut outcome.findings);
    }

    // Rules about the row as a whole.
    rules::check_rules(schema, op, row, old, &mut outcome);
    outcome
}

/// Reports each `required` column that is NULL, unless the server did not send
/// it on an update because its value did not change.
fn check_required(schema: &TableSchema, op: Operation, row: &Row, findings: &mut Vec<Finding>) {
    for column in schema.required() {
        if is_present(&row.values, column) || is_unchanged(op, row, column) {
            continue;
        }
        findings.push(required_finding(schema, column));
    }
}

/// Runs each present column through its own validator.
fn check_columns(schema: &TableSchema, row: &Row, findings: &mut Vec<Finding>) {
    for column in schema.columns() {
        let (Some(validator), Some(cell)) = (column.validator(), row.values.cell(column.name()))
        else {
            continue;
        };
        // Most values pass: `is_valid` answers without building errors.
        if cell.is_null() || validator.is_valid(cell) {
            continue;
        }
        let value = cell.to_json();
        for error in validator.iter_errors(cell) {
            let path: Vec<_> = error.instance_path().segments().collect();
            findings.push(column_finding(schema, column.name(), &value, &path, &error));
        }
    }
}

/// Runs the row, as one JSON object without its NULLs, through the table's
/// validator.
fn check_whole_row(schema: &TableSchema, op: Operation, row: &Row, findings: &mut Vec<Finding>) {
    let object: Map<String, Value> = row
        .values
        .iter()
        .filter(|(_, cell)| !cell.is_null())
        .map(|(name, cell)| (name.to_owned(), cell.to_json()))
        .collect();
    let object = Value::Object(object);

    for error in schema.validator().iter_errors(&object) {
        let path: Vec<_> = error.instance_path().segments().collect();
        match (path.split_first(), error.kind()) {
            (Some((LocationSegment::Property(column), rest)), _) => {
                let value = row.values.value(column.as_ref()).unwrap_or(Value::Null);
                findings.push(column_finding(schema, column, &value, rest, &error));
            }
            (None, ValidationErrorKind::Required { property }) => {
                let column = property.as_str().unwrap_or_default();
                if !is_unchanged(op, row, column) {
                    findings.push(required_finding(schema, column));
                }
            }
            (None, ValidationErrorKind::AdditionalProperties { unexpected }) => {
                for column in unexpected {
                    findings.push(Finding {
                        rule: error.kind().keyword().to_owned(),
                        column: Some(column.clone()),
                        severity: schema.severity(),
                        message: format!("{column} is not a column the schema allows"),
                        value: None,
                    });
                }
            }
            _ => findings.push(Finding {
                rule: error.kind().keyword().to_owned(),
                column: None,
                severity: schema.severity(),
                message: error.masked_with("the row").to_string(),
                value: None,
            }),
        }
    }
}

/// A JSON Schema error about `column`, at `path` inside its value.
fn column_finding(
    schema: &TableSchema,
    column: &str,
    value: &Value,
    path: &[LocationSegment<'_>],
    error: &ValidationError<'_>,
) -> Finding {
    let pii = schema.is_pii(column);
    Finding {
        rule: error.kind().keyword().to_owned(),
        column: Some(column.to_owned()),
        severity: schema.column_severity(column),
        message: message::describe(&message::subject(column, path), error, pii),
        value: Some(if pii { Value::from(REDACTED) } else { value.clone() }),
    }
}

/// A `required` column that is NULL.
fn required_finding(schema: &TableSchema, column: &str) -> Finding {
    Finding {
        rule: "required".to_owned(),
        column: Some(column.to_owned()),
        severity: schema.column_severity(column),
        message: format!("{column} is required but was NULL"),
        value: None,
    }
}

/// Whether the row has a non-NULL value for `column`.
fn is_present(values: &Values<'_>, column: &str) -> bool {
    values.cell(column).is_some_and(|cell| !cell.is_null())
}

/// Whether `column` was left out of an update because its TOASTed value did
/// not change.
fn is_unchanged(op: Operation, row: &Row, column: &str) -> bool {
    op == Operation::Update && row.unchanged.iter().any(|unchanged| unchanged == column)
}
