//! Evaluating `x-rules` against a row.
//!
//! The row is bound to `row` as a CEL map of its non-NULL columns (see
//! [`super::cel_row`]): a column is converted when a rule selects it, and its
//! strings are borrowed, not copied. A NULL column is absent from the map, so
//! `row.amount` fails on it and `has(row.amount)` is the way to test for NULL.
//!
//! Numbers become `int` when they fit in 64 bits, else `uint`, else `double`
//! (so an exact numeric loses digits past double precision inside a rule; the
//! JSON Schema keywords compare them exactly).
//!
//! A rule that cannot be evaluated is reported, not passed, with one exception:
//! on an update, a rule that needs a column the server left out because its
//! TOASTed value did not change is skipped, as `required` skips such a column.
//!
//! A rule with a `when` is checked only where `when` is true. A transition
//! rule (naming `old`) sees the previous row bound to `old`, with the same
//! shape as `row`. Under REPLICA IDENTITY DEFAULT the server sends at most the
//! old key columns, so `old` then holds only those: a transition rule that
//! still comes out true passes, any other verdict is unknown (the missing
//! columns could have decided it) and never a finding.
//! Evaluation errors are described by type names only, since cel's own messages
//! quote operand values, which may be pii.

use std::sync::Arc;

use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, ExecutionError};

use super::cel_row::CelRow;
use super::{Finding, OldRow, Operation, Outcome};
use crate::row::Row;
use crate::schema::{Rule, TableSchema, cel_env};

/// The verdict of one rule on one row.
enum Verdict {
    Pass,
    Fail(String),
    Skipped,
    Unknown,
}

/// Evaluates each rule of `schema` and reports those that are false or fail.
pub(super) fn check_rules(
    schema: &TableSchema,
    op: Operation,
    row: &Row,
    old: Option<OldRow<'_>>,
    outcome: &mut Outcome,
) {
    if schema.rules().is_empty() {
        return;
    }
    let binding = RowBinding {
        row: CelRow::new(&row.values),
        old: old.filter(|_| op == Operation::Update).map(|old| CelRow::new(&old.row.values)),
    };
    let old_complete = old.is_some_and(|old| old.complete);
    let mut context = Context::with_env(Arc::clone(cel_env()));
    context.set_variable_resolver(&binding);

    for (index, rule) in schema.rules().iter().enumerate() {
        let verdict = if rule.uses_old() && binding.old.is_none() {
            Verdict::Skipped
        } else {
            let verdict = evaluate(rule, &context, row);
            match verdict {
                Verdict::Fail(_) if rule.uses_old() && !old_complete => Verdict::Unknown,
                verdict => verdict,
            }
        };
        match verdict {
            Verdict::Pass => {}
            Verdict::Skipped => outcome.skipped.push(rule.name().to_owned()),
            Verdict::Unknown => {
                outcome.unknown.push(index);
                outcome.skipped.push(rule.name().to_owned());
            }
            Verdict::Fail(message) => outcome.findings.push(Finding {
                rule: rule.name().to_owned(),
                column: None,
                severity: rule.severity().unwrap_or(schema.severity()),
                message,
                value: None,
            }),
        }
    }
}

/// Runs `when`, then `expr`; a failure to evaluate either is a failure of the
/// rule, unless it comes from an unchanged TOAST column.
fn evaluate(rule: &Rule, context: &Context<'_, '_>, row: &Row) -> Verdict {
    let run = |program: &cel::Program, what: &str| match program.execute(context) {
        Ok(cel::Value::Bool(value)) => Ok(value),
        Ok(other) => Err(Verdict::Fail(format!(
            "rule {} could not be evaluated: {what} returned a {} instead of a bool",
            rule.name(),
            other.type_of()
        ))),
        Err(ExecutionError::NoSuchKey(key))
            if row.unchanged.iter().any(|column| column == key.as_str()) =>
        {
            Err(Verdict::Skipped)
        }
        Err(err) => Err(Verdict::Fail(format!(
            "rule {} could not be evaluated: {}",
            rule.name(),
            describe_error(&err)
        ))),
    };
    if let Some(when) = rule.when() {
        match run(when, "its when condition") {
            Ok(true) => {}
            Ok(false) => return Verdict::Pass,
            Err(verdict) => return verdict,
        }
    }
    match run(rule.program(), "it") {
        Ok(true) => Verdict::Pass,
        Ok(false) => Verdict::Fail(
            rule.message().map_or_else(|| format!("rule {} failed", rule.name()), str::to_owned),
        ),
        Err(verdict) => verdict,
    }
}

/// Answers the variable `row` with the row's map, and `old` with the
/// previous row's on an update.
struct RowBinding<'r> {
    row: CelRow<'r>,
    old: Option<CelRow<'r>>,
}

impl VariableResolver for RowBinding<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        match variable {
            "row" => Some(CowVal::Borrowed(&self.row)),
            "old" => self.old.as_ref().map(|old| CowVal::Borrowed(old as &dyn Val)),
            _ => None,
        }
    }
}

/// Why evaluation failed, naming keys, functions and types but no values.
fn describe_error(err: &ExecutionError) -> String {
    match err {
        ExecutionError::NoSuchKey(key) => {
            format!("the row has no {key} (NULL columns are absent; test with has(row.{key}))")
        }
        ExecutionError::UndeclaredReference(name) => {
            format!(
                "unknown name {name}; the row is bound to `row`, an update's previous row to `old`"
            )
        }
        ExecutionError::NoSuchOverload(overload) => overload.to_string(),
        ExecutionError::UnexpectedType { got, want } => format!("expected {want}, got {got}"),
        ExecutionError::InvalidArgumentCount { expected, actual } => {
            format!("expected {expected} arguments, got {actual}")
        }
        ExecutionError::ValuesNotComparable(left, right) => {
            format!("a {} cannot be compared with a {}", left.type_of(), right.type_of())
        }
        ExecutionError::UnsupportedBinaryOperator(operator, left, right) => {
            format!("{operator} does not apply to {} and {}", left.type_of(), right.type_of())
        }
        ExecutionError::NotSupportedAsMethod { method, target } => {
            format!("{method} is not a method of {}", target.type_of())
        }
        ExecutionError::FunctionError { function, .. } => format!("{function} failed"),
        ExecutionError::DivisionByZero(_) | ExecutionError::RemainderByZero(_) => {
            "division by zero".to_owned()
        }
        ExecutionError::Overflow(operator, ..) => format!("{operator} overflowed"),
        ExecutionError::IndexOutOfBounds(_) => "index out of bounds".to_owned(),
        _ => "evaluation error".to_owned(),
    }
}
