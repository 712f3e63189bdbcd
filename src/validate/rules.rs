//! Evaluating `x-rules` against a row.
//!
//! The row is bound to `row` as a CEL map of its non-NULL columns, built from
//! borrowed views: strings are not copied, only one small box per value is
//! allocated. A NULL column is absent from the map, so `row.amount` fails on it
//! and `has(row.amount)` is the way to test for NULL.
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

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, ExecutionError};
use serde_json::{Map, Number, Value};

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
        row: cel_map(&row.values),
        old: old.filter(|_| op == Operation::Update).map(|old| cel_map(&old.row.values)),
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
    row: CelMap<'r>,
    old: Option<CelMap<'r>>,
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

/// A CEL map borrowing from a JSON object, NULL members left out.
fn cel_map(values: &Map<String, Value>) -> CelMap<'_> {
    let mut map: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> = HashMap::with_capacity(values.len());
    for (name, value) in values {
        if !value.is_null() {
            map.insert(CelMapKey::from(name.as_str()), cel_value(value));
        }
    }
    CelMap::from(map)
}

/// A CEL value borrowing from a JSON value.
fn cel_value(value: &Value) -> Box<dyn Val + '_> {
    match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(flag) => Box::new(CelBool::from(*flag)),
        Value::Number(number) => cel_number(number),
        Value::String(text) => Box::new(CelString::from(text.as_str())),
        Value::Array(items) => {
            Box::new(CelList::from(items.iter().map(cel_value).collect::<Vec<_>>()))
        }
        Value::Object(members) => Box::new(cel_map(members)),
    }
}

/// `int` if it fits, else `uint`, else `double`.
fn cel_number(number: &Number) -> Box<dyn Val> {
    if let Some(int) = number.as_i64() {
        Box::new(CelInt::from(int))
    } else if let Some(uint) = number.as_u64() {
        Box::new(CelUInt::from(uint))
    } else {
        Box::new(CelDouble::from(number.as_f64().unwrap_or(f64::NAN)))
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
