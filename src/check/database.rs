//! `walguard check --against-db`: each schema file compared with the catalog.
//!
//! - the table exists;
//! - every column under `properties` and in `required` exists, and a required
//!   column is not a generated one, which pgoutput never sends;
//! - a column's `type` admits the JSON shape the row view gives its values
//!   (an `integer` column described as `string` could never pass);
//! - an `enum` on a column of an enum type lists only the type's labels;
//! - every `x-references` target table and column exists.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;
use tokio_postgres::Client;

use super::SourceFile;
use crate::catalog::{self, CatalogError, CatalogTable};
use crate::row::{ScalarKind, ValueKind};
use crate::schema::{QualifiedName, SchemaSet, TableSchema};

/// `(file, pointer, message)` for each mismatch.
pub(super) async fn check(
    client: &Client,
    set: &SchemaSet,
    files: &HashMap<PathBuf, SourceFile>,
) -> Result<Vec<(PathBuf, String, String)>, CatalogError> {
    let mut catalog: HashMap<QualifiedName, Option<CatalogTable>> = HashMap::new();
    let mut found = Vec::new();
    for schema in set.tables() {
        let mut problem = |pointer: String, message: String| {
            found.push((schema.path().to_owned(), pointer, message));
        };
        let table = lookup(client, &mut catalog, schema.table()).await?;
        let Some(table) = table else {
            problem("/x-table".into(), format!("table {} does not exist", schema.table()));
            continue;
        };
        let document = files.get(schema.path()).and_then(|file| file.document.as_ref());
        check_columns(schema, document, &table, &mut problem);

        for (column, target) in schema.references() {
            let pointer = format!("/properties/{}/x-references", escape(column));
            match lookup(client, &mut catalog, &target.table).await? {
                None => problem(pointer, format!("table {} does not exist", target.table)),
                Some(referenced) if referenced.column(&target.column).is_none() => problem(
                    pointer,
                    format!("table {} has no column {}", target.table, target.column),
                ),
                Some(_) => {}
            }
        }
    }
    Ok(found)
}

async fn lookup(
    client: &Client,
    catalog: &mut HashMap<QualifiedName, Option<CatalogTable>>,
    name: &QualifiedName,
) -> Result<Option<CatalogTable>, CatalogError> {
    if let Some(table) = catalog.get(name) {
        return Ok(table.clone());
    }
    let table = catalog::read_table(client, name).await?;
    catalog.insert(name.clone(), table.clone());
    Ok(table)
}

fn check_columns(
    schema: &TableSchema,
    document: Option<&Value>,
    table: &CatalogTable,
    problem: &mut impl FnMut(String, String),
) {
    let properties = document.and_then(|root| root.get("properties")).and_then(Value::as_object);
    for (name, property) in properties.into_iter().flatten() {
        let pointer = format!("/properties/{}", escape(name));
        let Some(column) = table.column(name) else {
            problem(pointer, format!("table {} has no column {name}", table.name));
            continue;
        };
        if let Some(declared) = declared_types(property)
            && !fits(column.kind, &declared)
        {
            let message = format!(
                "column {name} is {}, whose values are never of type {}",
                column.declared,
                declared.join(" or ")
            );
            problem(format!("{pointer}/type"), message);
        }
        if let (Some(labels), Some(Value::Array(values)), false) =
            (&column.labels, property.get("enum"), column.array)
        {
            for value in values {
                if !value.as_str().is_some_and(|text| labels.iter().any(|label| label == text)) {
                    let message = format!(
                        "{value} is not a label of {} ({})",
                        column.declared,
                        labels.join(", ")
                    );
                    problem(format!("{pointer}/enum"), message);
                }
            }
        }
    }
    for (index, name) in schema.required().iter().enumerate() {
        let pointer = format!("/required/{index}");
        match table.column(name) {
            None => problem(pointer, format!("table {} has no column {name}", table.name)),
            Some(column) if column.generated => problem(
                pointer,
                format!(
                    "column {name} is generated, and the replication stream never carries \
                     generated columns: every row would be reported"
                ),
            ),
            Some(_) => {}
        }
    }
}

/// The JSON types a property's `type` allows, leaving out `null` (a NULL is
/// an absent column); `None` when it does not say.
fn declared_types(property: &Value) -> Option<Vec<&str>> {
    let types: Vec<&str> = match property.get("type")? {
        Value::String(single) => vec![single.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    let types: Vec<&str> = types.into_iter().filter(|kind| *kind != "null").collect();
    (!types.is_empty()).then_some(types)
}

/// Whether a column whose values take the shape `kind` can ever match one of
/// the `declared` types.
fn fits(kind: ValueKind, declared: &[&str]) -> bool {
    let possible: &[&str] = match kind {
        ValueKind::Scalar(ScalarKind::Number) => &["number", "integer"],
        ValueKind::Scalar(ScalarKind::Boolean) => &["boolean"],
        ValueKind::Scalar(ScalarKind::Json) => return true,
        ValueKind::Scalar(
            ScalarKind::Timestamptz
            | ScalarKind::Timestamp
            | ScalarKind::Time
            | ScalarKind::Timetz
            | ScalarKind::Text,
        ) => &["string"],
        ValueKind::Array { .. } => &["array"],
        ValueKind::UserArray => &["array", "string"],
    };
    declared.iter().any(|kind| possible.contains(kind))
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_fit_the_row_views_shapes() {
        let number = ValueKind::Scalar(ScalarKind::Number);
        assert!(fits(number, &["integer"]));
        assert!(!fits(number, &["string"]));
        assert!(fits(ValueKind::Scalar(ScalarKind::Json), &["string"]));
        assert!(fits(ValueKind::Scalar(ScalarKind::Timestamptz), &["string", "number"]));
        assert!(!fits(ValueKind::Scalar(ScalarKind::Boolean), &["string"]));
        let property = serde_json::json!({"type": ["null", "string"]});
        assert_eq!(declared_types(&property), Some(vec!["string"]));
        assert_eq!(declared_types(&serde_json::json!({"type": "null"})), None);
    }
}
