//! `walguard init`: starter schema files written from the live catalog.
//!
//! Each table gets `<schema>.<table>.yaml` describing what the catalog already
//! knows, so that the file passes `walguard check --against-db` as written and
//! passes every row the database accepts (bar `NaN` in a numeric or float
//! column, which `type: number` reports by design):
//!
//! | catalog | schema file |
//! | --- | --- |
//! | NOT NULL | `required` |
//! | `varchar(n)`, `char(n)` | `maxLength: n` |
//! | enum type | `enum:` its labels (`items: {enum: ...}` for an array of one) |
//! | `numeric(p, s)` | `exclusiveMinimum` and `exclusiveMaximum` of ±10^(p−s) |
//! | integer, numeric, float, bool, array | `type` |
//! | `timestamptz`, `uuid` | `type: string` with `format: date-time`, `uuid` |
//! | single-column foreign key | `x-references: schema.table.column` |
//! | CHECK constraint, foreign key over several columns | a comment |
//! | generated column | a comment: the stream never carries it |
//!
//! Each column line ends with the column's SQL type as a comment. Existing
//! files are never replaced unless `force` is set; then nothing is written
//! until every table has been read.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::catalog::{self, CatalogColumn, CatalogError, CatalogTable};
use crate::config::Settings;
use crate::postgres::{self, ConnectError};
use crate::row::{ScalarKind, ValueKind};
use crate::schema::{NameError, QualifiedName};

/// Why `init` wrote nothing (or, for a write error, stopped).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("--table {text}: {source}")]
    Name { text: String, source: NameError },
    #[error("table {table} does not exist")]
    NoSuchTable { table: QualifiedName },
    #[error("no tables to describe: the database has none outside the system schemas and {own}")]
    NoTables { own: String },
    #[error(
        "{} already exists: pass --force to replace it",
        paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Exists { paths: Vec<PathBuf> },
    #[error("failed to write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// What to describe and where.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// `schema.table` or, for `public`, `table`; every table when empty.
    pub tables: Vec<String>,
    /// The folder to write to (created when missing).
    pub out: PathBuf,
    /// Replace existing files.
    pub force: bool,
}

/// Writes the starter files and returns their paths.
pub async fn init(settings: &Settings, options: &InitOptions) -> Result<Vec<PathBuf>, InitError> {
    // Work out the tables.
    let client = postgres::connect(&settings.source.connection, "walguard init").await?;
    let names = if options.tables.is_empty() {
        let names = catalog::list_tables(&client, &settings.sink.schema).await?;
        if names.is_empty() {
            return Err(InitError::NoTables { own: settings.sink.schema.clone() });
        }
        names
    } else {
        options.tables.iter().map(|text| parse_table(text)).collect::<Result<_, _>>()?
    };

    // Read every table before writing anything.
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let Some(table) = catalog::read_table(&client, &name).await? else {
            return Err(InitError::NoSuchTable { table: name });
        };
        files.push((options.out.join(file_name(&name)), render(&table)));
    }
    let existing: Vec<PathBuf> =
        files.iter().map(|(path, _)| path.clone()).filter(|path| path.exists()).collect();
    if !existing.is_empty() && !options.force {
        return Err(InitError::Exists { paths: existing });
    }

    // Write them.
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| InitError::Write { path, source }
    };
    std::fs::create_dir_all(&options.out).map_err(write_error(&options.out))?;
    for (path, text) in &files {
        std::fs::write(path, text).map_err(write_error(path))?;
    }
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

/// `schema.table`, or a bare table name in `public`.
fn parse_table(text: &str) -> Result<QualifiedName, InitError> {
    let qualified = if text.contains('.') { text.to_owned() } else { format!("public.{text}") };
    qualified.parse().map_err(|source| InitError::Name { text: text.to_owned(), source })
}

/// `schema.table.yaml`, with path separators replaced.
fn file_name(name: &QualifiedName) -> String {
    let safe = |part: &str| part.replace(['/', '\\', '\0'], "_");
    format!("{}.{}.yaml", safe(&name.schema), safe(&name.name))
}

/// The schema file for `table`.
pub fn render(table: &CatalogTable) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "# Starter schema for {}, written by `walguard init` from the", table.name);
    let _ = writeln!(out, "# catalog. It restates what PostgreSQL enforces: tighten it with the");
    let _ = writeln!(out, "# formats, patterns, ranges and x-rules your data should follow.");
    let _ = writeln!(out, "x-table: {}", scalar(&table.name.written()));
    let _ = writeln!(out, "type: object");

    let sent: Vec<&CatalogColumn> = table.columns.iter().filter(|c| !c.generated).collect();
    let required: Vec<String> =
        sent.iter().filter(|c| c.not_null).map(|c| scalar(&c.name)).collect();
    if !required.is_empty() {
        let _ = writeln!(out, "required: [{}]", required.join(", "));
    }
    let _ = writeln!(out, "properties:");
    if sent.is_empty() {
        let _ = writeln!(out, "  {{}}");
    }
    for column in &sent {
        let _ = writeln!(
            out,
            "  {}: {{{}}}  # {}",
            scalar(&column.name),
            keywords(column).join(", "),
            column.declared.replace('\n', " ")
        );
    }
    for column in table.columns.iter().filter(|c| c.generated) {
        let _ = writeln!(
            out,
            "  # {} ({}) is a generated column: the replication stream never carries it",
            column.name, column.declared
        );
    }

    if !table.checks.is_empty() || !table.composite_keys.is_empty() {
        let _ = writeln!(out, "# Enforced by PostgreSQL; restate any you also want reported:");
        for (name, definition) in table.checks.iter().chain(&table.composite_keys) {
            let _ = writeln!(out, "#   {name}: {}", definition.replace('\n', " "));
        }
    }
    out
}

/// The keywords describing one column, in flow-mapping form.
fn keywords(column: &CatalogColumn) -> Vec<String> {
    let mut keywords = Vec::new();
    let labels = column.labels.as_ref().map(|labels| {
        format!("[{}]", labels.iter().map(|label| scalar(label)).collect::<Vec<_>>().join(", "))
    });
    match (column.kind, labels) {
        (ValueKind::Scalar(_), Some(labels)) => keywords.push(format!("enum: {labels}")),
        (ValueKind::Array { .. } | ValueKind::UserArray, Some(labels)) => {
            keywords.push("type: array".into());
            keywords.push(format!("items: {{enum: {labels}}}"));
        }
        (ValueKind::Scalar(ScalarKind::Number), None) => {
            let integer = matches!(column.base_type.as_str(), "int2" | "int4" | "int8" | "oid");
            keywords.push(format!("type: {}", if integer { "integer" } else { "number" }));
            if let Some((precision, scale)) = column.numeric {
                let digits = i64::from(precision) - i64::from(scale);
                if (0..=15).contains(&digits) {
                    let bound = 10_i64.pow(digits as u32);
                    keywords.push(format!("exclusiveMinimum: -{bound}"));
                    keywords.push(format!("exclusiveMaximum: {bound}"));
                }
            }
        }
        (ValueKind::Scalar(ScalarKind::Boolean), None) => keywords.push("type: boolean".into()),
        (ValueKind::Scalar(ScalarKind::Json), None) => {}
        (ValueKind::Scalar(ScalarKind::Timestamptz | ScalarKind::Timestamp), None) => {
            keywords.push("type: string".into());
            keywords.push("format: date-time".into());
        }
        (ValueKind::Scalar(ScalarKind::Time | ScalarKind::Timetz), None) => {
            keywords.push("type: string".into());
            keywords.push("format: time".into());
        }
        (ValueKind::Scalar(ScalarKind::Text), None) => {
            keywords.push("type: string".into());
            if column.base_type == "uuid" {
                keywords.push("format: uuid".into());
            }
            if let Some(length) = column.max_length {
                keywords.push(format!("maxLength: {length}"));
            }
        }
        (ValueKind::Array { .. }, None) => keywords.push("type: array".into()),
        // An array of a user-defined type other than an enum: elements stay text.
        (ValueKind::UserArray, None) => keywords.push("type: array".into()),
    }
    if let Some(target) = &column.references {
        keywords.push(format!("x-references: {}", scalar(&target.written())));
    }
    keywords
}

/// A YAML scalar for flow context: plain when it is a simple word YAML would
/// not read as something else, else double-quoted (JSON's quoting is YAML's).
fn scalar(text: &str) -> String {
    let simple = text.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    let special = matches!(
        text.to_ascii_lowercase().as_str(),
        "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "nan" | "inf"
    );
    if simple && !special {
        text.to_owned()
    } else {
        serde_json::Value::String(text.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_quoted_only_when_yaml_would_misread_them() {
        assert_eq!(scalar("public.orders"), "public.orders");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("a, b"), "\"a, b\"");
        assert_eq!(scalar("public.\"Order Items\""), r#""public.\"Order Items\"""#);
        assert_eq!(scalar("1st"), "\"1st\"");
    }

    #[test]
    fn bare_table_names_are_in_public() {
        assert_eq!(parse_table("orders").unwrap(), QualifiedName::new("public", "orders"));
        assert_eq!(parse_table("shop.orders").unwrap(), QualifiedName::new("shop", "orders"));
        assert!(parse_table("Orders").is_err());
    }
}
