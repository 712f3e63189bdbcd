//! Reading one schema file into a [`TableSchema`]: YAML, our keywords, the
//! JSON Schema compiled once, the CEL rules compiled once.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jsonschema::json::{Json, SerdeJson};
use jsonschema::{Draft, Retrieve, ValidationOptions, Validator};

use crate::row::RowJson;
use serde_json::{Map, Value};
use serde_saphyr::{DefaultMessageFormatter, MessageFormatter};

use super::email;
use super::keywords::{self, push_segment};
use super::monitors::{self, Monitors};
use super::rules::compile_rules;
use super::{Column, ColumnRef, QualifiedName, SchemaError, Severity, TableSchema};

/// Top-level keywords that leave each column's check independent of the other
/// columns, so that checking column by column equals checking the whole row.
const PER_COLUMN_KEYWORDS: [&str; 13] = [
    "type",
    "properties",
    "required",
    "$schema",
    "$defs",
    "definitions",
    "title",
    "description",
    "$comment",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// The `*.yaml` and `*.yml` files directly in `dir`, sorted by name; hidden
/// files (editor backups such as `.#orders.yaml`) are skipped.
pub(super) fn schema_files(dir: &Path) -> Result<Vec<PathBuf>, SchemaError> {
    let read_dir_error = |source| SchemaError::ReadDir { dir: dir.to_owned(), source };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_dir_error)? {
        let path = entry.map_err(read_dir_error)?.path();
        let hidden = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_none_or(|name| name.starts_with('.'));
        let yaml = path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml");
        if yaml && !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads and compiles one schema file, or returns every problem found in it.
///
/// Sections that do not depend on each other (the table name, the placement
/// of our keywords, the JSON Schema, each of our keywords' values, the rules)
/// are all checked, so that `walguard check` can list every problem at once;
/// a file whose YAML does not parse has just that one.
pub(super) fn load_file(path: &Path) -> Result<TableSchema, Vec<SchemaError>> {
    // Parse the YAML into a JSON document whose top level is a mapping.
    let text = fs::read_to_string(path)
        .map_err(|source| vec![SchemaError::ReadFile { path: path.to_owned(), source }])?;
    let document = parse_yaml(path, &text).map_err(|err| vec![err])?;
    let root = match &document {
        Value::Object(root) => root,
        Value::Null => return Err(vec![SchemaError::invalid(path, "", "the file is empty")]),
        _ => {
            let message = "the file must be a mapping of JSON Schema keywords, with x-table";
            return Err(vec![SchemaError::invalid(path, "", message)]);
        }
    };
    let mut problems = Vec::new();

    // Check our keywords before compiling: the table first, then their places.
    let table = read_table(path, root).map_err(|err| problems.push(err)).ok();
    problems.extend(
        keywords::check(&document)
            .into_iter()
            .map(|misplaced| SchemaError::invalid(path, &misplaced.pointer, misplaced.message)),
    );

    // Compile the JSON Schema, which also validates it against the meta-schema,
    // so the reads below can trust its shape.
    let validator = compile_document(path, &document).map_err(|err| problems.extend(err)).ok();
    let mut columns = read_columns(path, root, &mut problems);

    // Read the remaining top-level keywords of ours.
    let severity = match root.get("x-severity") {
        Some(value) => read_severity(path, "/x-severity", value)
            .map_err(|err| problems.push(err))
            .unwrap_or_default(),
        None => Severity::default(),
    };
    let on_unknown_columns = match root.get("x-on-unknown-columns") {
        Some(value) => value.as_str().and_then(|text| text.parse().ok()).unwrap_or_else(|| {
            let message = "x-on-unknown-columns must be ignore, info, warn, error or critical";
            problems.push(SchemaError::invalid(path, "/x-on-unknown-columns", message));
            Default::default()
        }),
        None => Default::default(),
    };
    let monitors = match root.get("x-monitors") {
        Some(value) => monitors::read(path, value, &mut problems),
        None => Monitors::default(),
    };
    let rules = compile_rules(path, root.get("x-rules")).map_err(|err| problems.push(err)).ok();

    let (Some(table), Some(validator), Some(rules), true) =
        (table, validator, rules, problems.is_empty())
    else {
        return Err(problems);
    };
    let per_column = validates_per_column(root) && compile_columns(&document, &mut columns);
    let required = root
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(|name| name.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let column_index =
        columns.iter().enumerate().map(|(index, column)| (column.name.clone(), index)).collect();
    Ok(TableSchema {
        table,
        path: path.to_owned(),
        severity,
        validator,
        columns,
        column_index,
        required,
        per_column,
        rules,
        on_unknown_columns,
        monitors,
    })
}

/// Compiles the whole document. A document that breaks the meta-schema gets
/// one problem per broken keyword; one that passes it can still fail to
/// compile (an unknown format, a `$ref` that does not resolve, a bad regex).
fn compile_document(path: &Path, document: &Value) -> Result<Validator, Vec<SchemaError>> {
    let invalid = |err: &jsonschema::ValidationError| {
        let message = format!("invalid JSON Schema: {err}");
        SchemaError::invalid(path, err.instance_path().as_str(), message)
    };
    let meta = jsonschema::draft202012::meta::validator();
    let broken: Vec<SchemaError> = meta.iter_errors(document).map(|err| invalid(&err)).collect();
    if !broken.is_empty() {
        return Err(broken);
    }
    jsonschema_options::<SerdeJson>().build(document).map_err(|err| vec![invalid(&err)])
}

/// The options every schema compiles with, for `serde_json` values or for
/// the row view's cells: draft 2020-12, formats asserted rather than
/// annotations, an unknown format name an error, and `email` answered
/// quickly for plain addresses (with jsonschema's verdict).
fn jsonschema_options<F: Json>() -> ValidationOptions<'static, Arc<dyn Retrieve>, F> {
    jsonschema::options_for::<F>()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        .with_format("email", email::is_email)
}

/// Gives each column the validator of its own subschema, compiled in the
/// context of the whole document so that `$ref`s resolve. Returns false, and
/// leaves the columns without validators, if any column has none.
fn compile_columns(document: &Value, columns: &mut [Column]) -> bool {
    // `build_map` leaves out a subschema that fails to compile rather than
    // failing; `build` has vouched for the document, and any gap falls back to
    // whole-row validation.
    let Ok(validators) = jsonschema_options::<RowJson>().build_map(document) else {
        return false;
    };
    let mut found = Vec::with_capacity(columns.len());
    for column in columns.iter() {
        let mut pointer = String::from("#/properties");
        push_segment(&mut pointer, &column.name);
        match validators.get(&pointer) {
            Some(validator) => found.push(validator.clone()),
            None => return false,
        }
    }
    for (column, validator) in columns.iter_mut().zip(found) {
        column.validator = Some(validator);
    }
    true
}

/// Parses YAML into JSON, turning a syntax error into one line with its
/// position.
fn parse_yaml(path: &Path, text: &str) -> Result<Value, SchemaError> {
    serde_saphyr::from_str(text).map_err(|err| {
        let location = err.location().map(|location| (location.line(), location.column()));
        let message = DefaultMessageFormatter.format_message(err.without_snippet());
        let message = message.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        SchemaError::Yaml { path: path.to_owned(), location, message }
    })
}

/// Reads `x-table`, which every file must have.
fn read_table(path: &Path, root: &Map<String, Value>) -> Result<QualifiedName, SchemaError> {
    let Some(value) = root.get("x-table") else {
        let message = "missing x-table: name the table this file describes, e.g. \
                       x-table: public.orders";
        return Err(SchemaError::invalid(path, "", message));
    };
    let Some(text) = value.as_str() else {
        return Err(SchemaError::invalid(path, "/x-table", "x-table must be a string"));
    };
    text.parse().map_err(|err| SchemaError::invalid(path, "/x-table", format!("{err}")))
}

/// Reads a severity name.
fn read_severity(path: &Path, pointer: &str, value: &Value) -> Result<Severity, SchemaError> {
    let text = value.as_str().unwrap_or_default();
    text.parse().map_err(|_| {
        let message = "expected a severity: info, warn, error or critical";
        SchemaError::invalid(path, pointer, message)
    })
}

/// Reads the columns under the top-level `properties` with our keywords on
/// them; a column with a malformed keyword is left out and each problem
/// pushed to `problems`.
fn read_columns(
    path: &Path,
    root: &Map<String, Value>,
    problems: &mut Vec<SchemaError>,
) -> Vec<Column> {
    let Some(properties) = root.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut columns = Vec::with_capacity(properties.len());
    for (name, property) in properties {
        let mut pointer = String::from("/properties");
        push_segment(&mut pointer, name);
        let keyword = |keyword: &str| {
            property.get(keyword).map(|value| (value, pointer.clone() + "/" + keyword))
        };
        let found = problems.len();

        let pii = match keyword("x-pii") {
            Some((Value::Bool(pii), _)) => *pii,
            Some((_, pointer)) => {
                problems.push(SchemaError::invalid(path, &pointer, "x-pii must be true or false"));
                false
            }
            None => false,
        };
        let severity = match keyword("x-severity") {
            Some((value, pointer)) => {
                read_severity(path, &pointer, value).map_err(|err| problems.push(err)).ok()
            }
            None => None,
        };
        let (references, reference_window) = match keyword("x-references") {
            Some((value, pointer)) => match read_reference(path, &pointer, value) {
                Ok((target, window)) => (Some(target), window),
                Err(err) => {
                    problems.push(err);
                    (None, None)
                }
            },
            None => (None, None),
        };
        if problems.len() == found {
            columns.push(Column {
                name: name.clone(),
                pii,
                severity,
                references,
                reference_window,
                validator: None,
            });
        }
    }
    columns
}

/// Reads `x-references: schema.table.column`, or the mapping form
/// `{to: schema.table.column, within: 10m}` with a grace window.
fn read_reference(
    path: &Path,
    pointer: &str,
    value: &Value,
) -> Result<(ColumnRef, Option<Duration>), SchemaError> {
    let parse_target = |text: &str, pointer: &str| {
        text.parse::<ColumnRef>()
            .map_err(|err| SchemaError::invalid(path, pointer, format!("x-references: {err}")))
    };
    let Value::Object(map) = value else {
        return Ok((parse_target(value.as_str().unwrap_or_default(), pointer)?, None));
    };
    if let Some(key) = map.keys().find(|key| !matches!(key.as_str(), "to" | "within")) {
        let message = format!("x-references has no option {key}: expected to and within");
        return Err(SchemaError::invalid(path, pointer, message));
    }
    let Some(to) = map.get("to").and_then(Value::as_str) else {
        let message = "x-references needs `to: schema.table.column`";
        return Err(SchemaError::invalid(path, pointer, message));
    };
    let target = parse_target(to, &format!("{pointer}/to"))?;
    let window = match map.get("within") {
        None => None,
        Some(within) => {
            let within_pointer = format!("{pointer}/within");
            let parsed = within.as_str().and_then(|text| humantime::parse_duration(text).ok());
            match parsed {
                Some(window) if !window.is_zero() => Some(window),
                _ => {
                    let message = "within must be a positive duration such as 30s or 10m";
                    return Err(SchemaError::invalid(path, &within_pointer, message));
                }
            }
        }
    };
    Ok((target, window))
}

/// Whether the top level leaves columns independent (see [`PER_COLUMN_KEYWORDS`]);
/// `type` must then be `object`, which every row is.
fn validates_per_column(root: &Map<String, Value>) -> bool {
    let plain_keywords = root.keys().all(|keyword| {
        keyword.starts_with("x-") || PER_COLUMN_KEYWORDS.contains(&keyword.as_str())
    });
    let object_type = root.get("type").is_none_or(|kind| kind == "object");
    plain_keywords && object_type
}
