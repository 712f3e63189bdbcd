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

use super::Finding;
use crate::row::Row;
use crate::schema::{TableSchema, cel_env};

/// Evaluates each rule of `schema` and reports those that are false or fail.
pub(super) fn check_rules(schema: &TableSchema, row: &Row, findings: &mut Vec<Finding>) {
    if schema.rules().is_empty() {
        return;
    }
    let binding = RowBinding { row: cel_map(&row.values) };
    let mut context = Context::with_env(Arc::clone(cel_env()));
    context.set_variable_resolver(&binding);

    for rule in schema.rules() {
        let message = match rule.program().execute(&context) {
            Ok(cel::Value::Bool(true)) => continue,
            Ok(cel::Value::Bool(false)) => {
                rule.message().map_or_else(|| format!("rule {} failed", rule.name()), str::to_owned)
            }
            Ok(other) => format!(
                "rule {} could not be evaluated: it returned a {} instead of a bool",
                rule.name(),
                other.type_of()
            ),
            Err(ExecutionError::NoSuchKey(key))
                if row.unchanged.iter().any(|column| column == key.as_str()) =>
            {
                continue;
            }
            Err(err) => {
                format!("rule {} could not be evaluated: {}", rule.name(), describe_error(&err))
            }
        };
        findings.push(Finding {
            rule: rule.name().to_owned(),
            column: None,
            severity: rule.severity().unwrap_or(schema.severity()),
            message,
            value: None,
        });
    }
}

/// Answers the variable `row` with the row's map.
struct RowBinding<'r> {
    row: CelMap<'r>,
}

impl VariableResolver for RowBinding<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        (variable == "row").then_some(CowVal::Borrowed(&self.row))
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
            format!("unknown name {name}; the row is bound to `row`")
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
