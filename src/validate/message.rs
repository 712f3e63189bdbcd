//! Messages for reviewers, one per JSON Schema error.
//!
//! A message names its subject, the column or a path inside a json column
//! (`address.lines[0]`), then says what the schema asked for. The offending
//! value is quoted only for columns that are not pii; the bounds, patterns and
//! enum options quoted come from the schema file, never from the row.

use std::fmt::Write;

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use serde_json::Value;

/// The column, followed by the path inside its value, if any.
pub(super) fn subject(column: &str, path: &[LocationSegment<'_>]) -> String {
    let mut subject = column.to_owned();
    for segment in path {
        match segment {
            LocationSegment::Property(name) => {
                subject.push('.');
                subject.push_str(name);
            }
            LocationSegment::Index(index) => {
                let _ = write!(subject, "[{index}]");
            }
        }
    }
    subject
}

/// A one-line message for `error` about `subject`; `pii` leaves the value out.
pub(super) fn describe(subject: &str, error: &ValidationError<'_>, pii: bool) -> String {
    let instance = error.instance();
    let got = |text: String| if pii { text } else { format!("{text}, got {instance}") };
    match error.kind() {
        ValidationErrorKind::Minimum { limit } => {
            got(format!("{subject} must be at least {limit}"))
        }
        ValidationErrorKind::Maximum { limit } => got(format!("{subject} must be at most {limit}")),
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            got(format!("{subject} must be greater than {limit}"))
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            got(format!("{subject} must be less than {limit}"))
        }
        ValidationErrorKind::MultipleOf { multiple_of } => {
            got(format!("{subject} must be a multiple of {multiple_of}"))
        }
        ValidationErrorKind::Enum { options } => {
            format!("{subject} must be one of {}", list(options.as_array().map(Vec::as_slice)))
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!("{subject} must be {}", plain(expected_value))
        }
        ValidationErrorKind::Format { format } => format!("{subject} is not a valid {format}"),
        ValidationErrorKind::Pattern { pattern } => {
            format!("{subject} does not match the pattern {pattern}")
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(kind) => kind.to_string(),
                TypeKind::Multiple(kinds) => {
                    kinds.iter().map(|kind| kind.to_string()).collect::<Vec<_>>().join(" or ")
                }
            };
            format!("{subject} must be of type {expected}, got {}", type_name(instance))
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("{subject} must be at most {limit} characters long")
        }
        ValidationErrorKind::MinLength { limit } => {
            format!("{subject} must be at least {limit} characters long")
        }
        ValidationErrorKind::MaxItems { limit } => {
            format!("{subject} must have at most {limit} items")
        }
        ValidationErrorKind::MinItems { limit } => {
            format!("{subject} must have at least {limit} items")
        }
        ValidationErrorKind::UniqueItems => format!("{subject} must not repeat an item"),
        ValidationErrorKind::Required { property } => {
            format!("{subject} must have {}", plain(property))
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            format!("{subject} has keys the schema does not allow: {}", unexpected.join(", "))
        }
        _ => error.masked_with(subject).to_string(),
    }
}

/// A JSON value as a reviewer reads it: strings without quotes.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `a, b, c` from a list of JSON values.
fn list(values: Option<&[Value]>) -> String {
    values.unwrap_or_default().iter().map(plain).collect::<Vec<_>>().join(", ")
}

/// The JSON type of a value, as JSON Schema names it.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
