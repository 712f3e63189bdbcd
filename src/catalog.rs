//! What the live database says about a table: its columns with their types,
//! nullability and length limits, its foreign keys and CHECK constraints.
//! `walguard init` writes schema files from it and `walguard check
//! --against-db` compares schema files with it.
//!
//! Each column's JSON shape is the one the row view gives its values
//! ([`ValueKind`]), worked out the way the stream does: a built-in type by its
//! oid, any other by its name, and a domain as its base type, since pgoutput's
//! Type message names a domain's base type.

use tokio_postgres::Client;

use crate::row::ValueKind;
use crate::schema::{ColumnRef, QualifiedName};

/// The first oid of objects that are not built in (`FirstNormalObjectId` is
/// higher, but nothing between the two is a type a table can use).
const FIRST_USER_OID: i64 = 10_000;

/// A catalog query that failed.
#[derive(Debug, thiserror::Error)]
#[error("failed to {action} in the database catalog: {source}")]
pub struct CatalogError {
    action: &'static str,
    source: tokio_postgres::Error,
}

fn failed(action: &'static str) -> impl FnOnce(tokio_postgres::Error) -> CatalogError {
    move |source| CatalogError { action, source }
}

/// A table as the catalog describes it.
#[derive(Debug, Clone)]
pub struct CatalogTable {
    pub name: QualifiedName,
    /// In column order; dropped columns left out.
    pub columns: Vec<CatalogColumn>,
    /// `(name, definition)` of each CHECK constraint, such as
    /// `CHECK ((amount >= (0)::numeric))`.
    pub checks: Vec<(String, String)>,
    /// `(name, definition)` of each foreign key over several columns, which no
    /// single column's `x-references` can express.
    pub composite_keys: Vec<(String, String)>,
}

impl CatalogTable {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&CatalogColumn> {
        self.columns.iter().find(|column| column.name == name)
    }
}

/// One column of a [`CatalogTable`].
#[derive(Debug, Clone)]
pub struct CatalogColumn {
    pub name: String,
    /// The type as SQL writes it, such as `character varying(40)`.
    pub declared: String,
    /// The type name after resolving a domain, such as `varchar`.
    pub base_type: String,
    /// NOT NULL on the column or on its domain.
    pub not_null: bool,
    /// A generated column, which pgoutput does not send.
    pub generated: bool,
    /// The JSON shape of its values in the row view.
    pub kind: ValueKind,
    /// `n` of `varchar(n)` or `char(n)`.
    pub max_length: Option<u32>,
    /// Precision and scale of `numeric(p, s)`.
    pub numeric: Option<(u32, i32)>,
    /// The labels of an enum type, or of an array's enum element type.
    pub labels: Option<Vec<String>>,
    /// Whether the values are arrays.
    pub array: bool,
    /// The target of a single-column foreign key.
    pub references: Option<ColumnRef>,
}

/// The ordinary and partitioned tables outside the system schemas and
/// `own_schema`, partitions left out (their rows arrive under the parent).
pub async fn list_tables(
    client: &Client,
    own_schema: &str,
) -> Result<Vec<QualifiedName>, CatalogError> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname <> $1 AND n.nspname <> 'information_schema'
               AND n.nspname NOT LIKE 'pg\\_%'
             ORDER BY 1, 2",
            &[&own_schema],
        )
        .await
        .map_err(failed("list the tables"))?;
    Ok(rows
        .iter()
        .map(|row| QualifiedName::new(row.get::<_, String>(0), row.get::<_, String>(1)))
        .collect())
}

/// Reads a table, or `None` when there is no table of that name.
pub async fn read_table(
    client: &Client,
    name: &QualifiedName,
) -> Result<Option<CatalogTable>, CatalogError> {
    let oid: Option<i64> = client
        .query_one("SELECT to_regclass($1)::oid::int8", &[&name.quoted()])
        .await
        .map_err(failed("look up a table"))?
        .get(0);
    let Some(oid) = oid else {
        return Ok(None);
    };

    // Columns, with domains resolved to their base types.
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod),
                    a.attnotnull OR t.typnotnull, a.attgenerated <> '',
                    b.oid::int8, bn.nspname::text, b.typname::text,
                    CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
                    CASE WHEN b.typtype = 'e' THEN b.oid WHEN el.typtype = 'e' THEN el.oid END
                        AS enum_oid,
                    b.typcategory = 'A'
             FROM pg_attribute a
             JOIN pg_type t ON t.oid = a.atttypid
             JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
             JOIN pg_namespace bn ON bn.oid = b.typnamespace
             LEFT JOIN pg_type el ON el.oid = b.typelem AND b.typcategory = 'A'
             WHERE a.attrelid = $1::int8::oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(failed("read a table's columns"))?;
    let mut columns = Vec::with_capacity(rows.len());
    for row in &rows {
        let base_oid: i64 = row.get(4);
        let (namespace, base_type): (String, String) = (row.get(5), row.get(6));
        let typmod: i32 = row.get(7);
        let enum_oid: Option<u32> = row.get(8);
        let kind = match u32::try_from(base_oid) {
            Ok(oid) if base_oid < FIRST_USER_OID => ValueKind::of_builtin(oid),
            _ => ValueKind::of_named(&namespace, &base_type),
        };
        let labels = match enum_oid {
            Some(enum_oid) => Some(enum_labels(client, enum_oid).await?),
            None => None,
        };
        columns.push(CatalogColumn {
            name: row.get(0),
            declared: row.get(1),
            not_null: row.get(2),
            generated: row.get(3),
            kind,
            max_length: max_length(&base_type, typmod),
            numeric: numeric(&base_type, typmod),
            labels,
            array: row.get(9),
            references: None,
            base_type,
        });
    }

    // Foreign keys: single-column ones on their column, the rest as text.
    let mut composite_keys = Vec::new();
    let keys = client
        .query(
            "SELECT c.conname::text, pg_get_constraintdef(c.oid), array_length(c.conkey, 1) = 1,
                    a.attname::text, fn.nspname::text, fc.relname::text, fa.attname::text
             FROM pg_constraint c
             JOIN pg_class fc ON fc.oid = c.confrelid
             JOIN pg_namespace fn ON fn.oid = fc.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
             JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]
             WHERE c.conrelid = $1::int8::oid AND c.contype = 'f'
             ORDER BY c.conname",
            &[&oid],
        )
        .await
        .map_err(failed("read a table's foreign keys"))?;
    for key in &keys {
        if !key.get::<_, bool>(2) {
            composite_keys.push((key.get(0), key.get(1)));
            continue;
        }
        let column: String = key.get(3);
        let target = ColumnRef {
            table: QualifiedName::new(key.get::<_, String>(4), key.get::<_, String>(5)),
            column: key.get(6),
        };
        if let Some(column) = columns.iter_mut().find(|c| c.name == column) {
            column.references.get_or_insert(target);
        }
    }

    let checks = client
        .query(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
             WHERE conrelid = $1::int8::oid AND contype = 'c' ORDER BY conname",
            &[&oid],
        )
        .await
        .map_err(failed("read a table's check constraints"))?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    Ok(Some(CatalogTable { name: name.clone(), columns, checks, composite_keys }))
}

async fn enum_labels(client: &Client, enum_oid: u32) -> Result<Vec<String>, CatalogError> {
    let rows = client
        .query(
            "SELECT enumlabel::text FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder",
            &[&enum_oid],
        )
        .await
        .map_err(failed("read an enum type's labels"))?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// `n` of `varchar(n)` and `char(n)`, whose type modifier is `n + 4`.
fn max_length(base_type: &str, typmod: i32) -> Option<u32> {
    let limited = matches!(base_type, "varchar" | "bpchar");
    (limited && typmod >= 4).then(|| (typmod - 4) as u32)
}

/// Precision and scale of `numeric(p, s)`: the modifier less 4 holds the
/// precision in its upper 16 bits and the scale, an 11-bit signed number since
/// PostgreSQL 15, in the lower ones.
fn numeric(base_type: &str, typmod: i32) -> Option<(u32, i32)> {
    if base_type != "numeric" || typmod < 4 {
        return None;
    }
    let packed = typmod - 4;
    let precision = ((packed >> 16) & 0xFFFF) as u32;
    let scale = ((packed & 0x7FF) ^ 1024) - 1024;
    Some((precision, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_modifiers_decode_lengths_and_numeric_precision() {
        assert_eq!(max_length("varchar", 44), Some(40));
        assert_eq!(max_length("varchar", -1), None);
        assert_eq!(max_length("text", 44), None);
        // numeric(10, 2) and numeric(5, -2).
        assert_eq!(numeric("numeric", ((10 << 16) | 2) + 4), Some((10, 2)));
        assert_eq!(numeric("numeric", ((5 << 16) | (-2i32 & 0x7FF)) + 4), Some((5, -2)));
        assert_eq!(numeric("numeric", -1), None);
    }
}
