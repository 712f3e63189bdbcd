//! The row view: a tuple's text values as a JSON object, the shape that schemas
//! and rules validate.
//!
//! Each column becomes a property named after the column, converted by the kind
//! the relation cache chose for its type (see [`ValueKind`]). Two kinds of
//! column are left out of the object, each for its own reason:
//! - a NULL column is absent, so that `required` treats NULL and a missing
//!   column alike;
//! - an unchanged TOAST column (an update that did not touch a large value) was
//!   not sent at all; it is listed in [`Row::unchanged`] so that validation
//!   never reports it missing.
//!
//! A row borrows from the replication message it came from: texts and
//! integers stay there as [`Cell`]s and are validated in place (see the
//! `json` module); other kinds are converted into `serde_json` values.
//!
//! walguard asks for text values. A value in binary format is reported as
//! [`ValueError::Binary`] rather than guessed at.
//!
//! Assumes the tuple's values are in the order of the relation's columns, which
//! the pgoutput module guarantees for the Relation message most recently
//! applied to the cache.

mod array;
mod json;
mod kind;
#[cfg(test)]
mod properties;
mod value;
mod values;

use std::sync::Arc;

use serde_json::Value;

pub use array::ArrayError;
pub use json::{Cell, RowJson};
pub use kind::{ScalarKind, ValueKind};
pub use value::ValueError;
use values::Held;
pub use values::Values;

use crate::pgoutput::{self, Tuple};
use crate::relation::CachedRelation;

/// A row as JSON, ready for validation; `'t` is the tuple it borrows from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row<'t> {
    /// Every column with a non-NULL value, in column order.
    pub values: Values<'t>,
    /// The columns sent as unchanged TOAST: absent from `values`, but present
    /// in the table row.
    pub unchanged: Vec<String>,
}

/// Why a tuple could not be turned into a [`Row`]. Both are definite: the same
/// bytes fail the same way on replay, so the row cannot be validated.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("tuple for table {table} has {actual} values but the relation has {expected} columns")]
    ColumnCount { table: String, expected: usize, actual: usize },
    #[error("failed to read column {column} of table {table}")]
    Value {
        table: String,
        column: String,
        #[source]
        source: ValueError,
    },
}

/// The longest key value kept whole in a [`row_key`].
pub const MAX_KEY_VALUE_BYTES: usize = 256;

/// Builds the JSON view of `tuple`, a row of `relation`.
pub fn row_from_tuple<'t>(
    relation: &CachedRelation,
    tuple: &'t Tuple,
) -> Result<Row<'t>, RowError> {
    let columns = &relation.relation.columns;
    if tuple.len() != columns.len() {
        return Err(RowError::ColumnCount {
            table: relation.qualified_name.clone(),
            expected: columns.len(),
            actual: tuple.len(),
        });
    }

    let mut row = Row { values: Values::with_capacity(columns.len()), unchanged: Vec::new() };
    let named = columns.iter().zip(&relation.names).zip(&relation.kinds);
    for (((column, name), &kind), value) in named.zip(tuple) {
        let held = match value {
            pgoutput::Value::Null => continue,
            pgoutput::Value::UnchangedToast => {
                row.unchanged.push(column.name.clone());
                continue;
            }
            pgoutput::Value::Text(bytes) => std::str::from_utf8(bytes)
                .map_err(ValueError::Utf8)
                .and_then(|text| value::text_to_held(kind, text)),
            pgoutput::Value::Binary(_) => Err(ValueError::Binary),
        };
        let held = held.map_err(|source| RowError::Value {
            table: relation.qualified_name.clone(),
            column: column.name.clone(),
            source,
        })?;
        // A hand-made Relation message may repeat a name; as in a JSON object,
        // the last value then stands.
        if relation.unique_names {
            row.values.push(Arc::clone(name), held);
        } else {
            row.values.set(Arc::clone(name), held);
        }
    }
    Ok(row)
}

/// The key of `tuple` as a JSON object of its key columns (the replica
/// identity, [`Column::is_key`](crate::pgoutput::Column::is_key)): every key
/// column is present, null when NULL, unchanged TOAST, binary or missing from a
/// short tuple.
///
/// Never fails, since a key is needed precisely when reporting a bad row: a
/// value that does not convert is kept as its text, with invalid UTF-8
/// replaced. A relation without key columns (REPLICA IDENTITY NOTHING, or
/// DEFAULT without a primary key) gives an empty object.
///
/// Under REPLICA IDENTITY FULL every column is a key column, large ones too,
/// so there a key value whose text is longer than [`MAX_KEY_VALUE_BYTES`] is
/// cut to that length and marked with a trailing `…`: a key of a few hundred
/// bytes still finds the row, and a violation never carries a whole document.
/// A primary key or replica identity index is kept whole, since two rows
/// whose long keys share a beginning are still two rows.
pub fn row_key(relation: &CachedRelation, tuple: &Tuple) -> Value {
    Value::Object(key_values(relation, tuple).to_object())
}

/// The columns of [`row_key`], held as a row's are: what the open-row set
/// hashes without building the JSON object.
pub fn key_values<'t>(relation: &CachedRelation, tuple: &'t Tuple) -> Values<'t> {
    let cut = relation.relation.replica_identity == b'f';
    let mut key = Values::with_capacity(relation.key_columns.len());
    for &index in &relation.key_columns {
        let (Some(name), Some(&kind)) = (relation.names.get(index), relation.kinds.get(index))
        else {
            continue;
        };
        let held = match tuple.get(index) {
            Some(pgoutput::Value::Text(bytes)) if cut && bytes.len() > MAX_KEY_VALUE_BYTES => {
                let text = String::from_utf8_lossy(&bytes[..MAX_KEY_VALUE_BYTES]);
                Held::Value(Value::String(format!("{}…", text.trim_end_matches('\u{fffd}'))))
            }
            Some(pgoutput::Value::Text(bytes)) => match std::str::from_utf8(bytes) {
                Ok(text) => value::text_to_held(kind, text)
                    .unwrap_or_else(|_| Held::Value(Value::String(text.to_owned()))),
                Err(_) => Held::Value(Value::String(String::from_utf8_lossy(bytes).into_owned())),
            },
            _ => Held::Value(Value::Null),
        };
        if relation.unique_names {
            key.push(Arc::clone(name), held);
        } else {
            key.set(Arc::clone(name), held);
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgoutput::{Column, Relation, Type, Value as PgValue};
    use crate::relation::RelationCache;
    use bytes::Bytes;
    use serde_json::json;

    const KEY: u8 = 1;

    fn column(name: &str, type_oid: u32, flags: u8) -> Column {
        Column { flags, name: name.to_owned(), type_oid, type_modifier: -1 }
    }

    /// `public.orders (id int8 key, email text, amount numeric, tags text[], doc jsonb)`.
    fn orders() -> RelationCache {
        let mut cache = RelationCache::new();
        cache.apply_relation(Relation {
            oid: 16384,
            namespace: "public".to_owned(),
            name: "orders".to_owned(),
            replica_identity: b'd',
            columns: vec![
                column("id", 20, KEY),
                column("email", 25, 0),
                column("amount", 1700, 0),
                column("tags", 1009, 0),
                column("doc", 3802, 0),
            ],
        });
        cache
    }

    fn text(s: &str) -> PgValue {
        PgValue::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn columns_become_typed_properties_in_column_order() {
        let cache = orders();
        let tuple =
            vec![text("7"), text("a@b.c"), text("12.50"), text(r#"{x,"y z"}"#), text(r#"{"k":1}"#)];
        let row = row_from_tuple(cache.get(16384).unwrap(), &tuple).unwrap();
        assert_eq!(
            Value::Object(row.values.to_object()).to_string(),
            r#"{"id":7,"email":"a@b.c","amount":12.50,"tags":["x","y z"],"doc":{"k":1}}"#
        );
        assert!(row.unchanged.is_empty());
    }

    #[test]
    fn null_columns_are_absent() {
        let cache = orders();
        let tuple = vec![text("7"), PgValue::Null, PgValue::Null, PgValue::Null, PgValue::Null];
        let row = row_from_tuple(cache.get(16384).unwrap(), &tuple).unwrap();
        assert_eq!(Value::Object(row.values.to_object()), json!({"id": 7}));
    }

    #[test]
    fn a_repeated_column_name_keeps_the_last_value() {
        let mut cache = RelationCache::new();
        cache.apply_relation(Relation {
            oid: 1,
            namespace: "public".to_owned(),
            name: "t".to_owned(),
            replica_identity: b'd',
            columns: vec![column("a", 25, 0), column("b", 20, 0), column("a", 25, 0)],
        });
        let tuple = vec![text("first"), text("2"), text("last")];
        let row = row_from_tuple(cache.get(1).unwrap(), &tuple).unwrap();
        assert_eq!(Value::Object(row.values.to_object()), json!({"a": "last", "b": 2}));
        assert!(matches!(row.values.cell("a"), Some(Cell::Text("last"))));
    }

    #[test]
    fn unchanged_toast_column_is_listed_and_not_a_value() {
        let cache = orders();
        let tuple =
            vec![text("7"), text("a@b.c"), PgValue::Null, PgValue::UnchangedToast, text("1")];
        let row = row_from_tuple(cache.get(16384).unwrap(), &tuple).unwrap();
        assert_eq!(row.unchanged, vec!["tags".to_owned()]);
        assert!(!row.values.contains_key("tags"));
        assert!(!row.values.contains_key("amount"));
    }

    #[test]
    fn column_count_mismatch_names_the_table() {
        let cache = orders();
        let err = row_from_tuple(cache.get(16384).unwrap(), &vec![text("7")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tuple for table public.orders has 1 values but the relation has 5 columns"
        );
    }

    #[test]
    fn invalid_utf8_names_table_and_column() {
        let cache = orders();
        let bad = PgValue::Text(Bytes::from_static(b"caf\xe9"));
        let tuple = vec![text("7"), bad, PgValue::Null, PgValue::Null, PgValue::Null];
        let err = row_from_tuple(cache.get(16384).unwrap(), &tuple).unwrap_err();
        assert_eq!(err.to_string(), "failed to read column email of table public.orders");
        assert!(matches!(err, RowError::Value { source: ValueError::Utf8(_), .. }));
    }

    #[test]
    fn unparseable_json_names_table_and_column() {
        let cache = orders();
        let tuple = vec![text("7"), PgValue::Null, PgValue::Null, PgValue::Null, text("{")];
        let err = row_from_tuple(cache.get(16384).unwrap(), &tuple).unwrap_err();
        assert_eq!(err.to_string(), "failed to read column doc of table public.orders");
        assert!(matches!(err, RowError::Value { source: ValueError::Json(_), .. }));
    }

    #[test]
    fn binary_value_is_an_error() {
        let cache = orders();
        let binary = PgValue::Binary(Bytes::from_static(&[0, 0, 0, 7]));
        let tuple = vec![binary, PgValue::Null, PgValue::Null, PgValue::Null, PgValue::Null];
        let err = row_from_tuple(cache.get(16384).unwrap(), &tuple).unwrap_err();
        assert!(matches!(err, RowError::Value { source: ValueError::Binary, .. }));
    }

    #[test]
    fn user_enum_arrays_from_type_messages_are_string_arrays() {
        let mut cache = RelationCache::new();
        let named = |oid, name: &str| Type { oid, namespace: "public".into(), name: name.into() };
        cache.apply_type(named(16385, "mood"));
        cache.apply_type(named(16384, "_mood"));
        cache.apply_relation(Relation {
            oid: 16401,
            namespace: "public".to_owned(),
            name: "people".to_owned(),
            replica_identity: b'd',
            columns: vec![column("m", 16385, 0), column("ms", 16384, 0)],
        });
        let tuple = vec![text("ok"), text("{sad,happy,NULL}")];
        let row = row_from_tuple(cache.get(16401).unwrap(), &tuple).unwrap();
        assert_eq!(
            Value::Object(row.values.to_object()),
            json!({"m": "ok", "ms": ["sad", "happy", null]})
        );
    }

    #[test]
    fn captured_row_with_enums_and_domains_maps_by_type_message() {
        // Type, Relation and Insert as PostgreSQL 15 sent them for
        // `t (id int8 primary key, m mood, ms mood[], p posint, pa posint[],
        // ia intarr, n numeric, j jsonb[])`, where posint is a domain over int4
        // and intarr a domain over int4[]: a domain's Type message names its base
        // type, with pg_catalog sent as the empty namespace.
        let mut cache = RelationCache::new();
        for (oid, namespace, name) in [
            (16385, "public", "mood"),
            (16384, "public", "_mood"),
            (16392, "", "int4"),
            (16391, "public", "_posint"),
            (16395, "", "_int4"),
        ] {
            cache.apply_type(Type { oid, namespace: namespace.into(), name: name.into() });
        }
        let columns = [
            ("id", 20),
            ("m", 16385),
            ("ms", 16384),
            ("p", 16392),
            ("pa", 16391),
            ("ia", 16395),
            ("n", 1700),
            ("j", 3807),
        ];
        cache.apply_relation(Relation {
            oid: 16401,
            namespace: "public".to_owned(),
            name: "t".to_owned(),
            replica_identity: b'd',
            columns: columns.iter().map(|&(n, oid)| column(n, oid, (n == "id").into())).collect(),
        });
        let values = ["1", "ok", "{sad,happy}", "5", "{1,2}", "{3,4}", "1.5", r#"{"{\"x\": 1}"}"#];
        let tuple: Tuple = values.into_iter().map(text).collect();
        let row = row_from_tuple(cache.get(16401).unwrap(), &tuple).unwrap();
        // Elements of an array of a user type stay strings: see ValueKind::UserArray.
        let expected = json!({
            "id": 1, "m": "ok", "ms": ["sad", "happy"], "p": 5, "pa": ["1", "2"], "ia": [3, 4],
            "n": 1.5, "j": [{"x": 1}],
        });
        assert_eq!(Value::Object(row.values.to_object()), expected);
        assert_eq!(row_key(cache.get(16401).unwrap(), &tuple), json!({"id": 1}));
    }

    #[test]
    fn row_key_holds_the_key_columns() {
        let cache = orders();
        let tuple = vec![text("9223372036854775807"), text("a@b.c"), PgValue::Null];
        let key = row_key(cache.get(16384).unwrap(), &tuple);
        assert_eq!(key.to_string(), r#"{"id":9223372036854775807}"#);
    }

    #[test]
    fn row_key_is_null_for_missing_or_unsent_key_values() {
        let cache = orders();
        let relation = cache.get(16384).unwrap();
        assert_eq!(row_key(relation, &vec![PgValue::Null]), json!({"id": null}));
        assert_eq!(row_key(relation, &vec![PgValue::UnchangedToast]), json!({"id": null}));
        assert_eq!(row_key(relation, &Vec::new()), json!({"id": null}));
    }

    #[test]
    fn row_key_keeps_unconvertible_key_values_as_text() {
        let cache = orders();
        let relation = cache.get(16384).unwrap();
        assert_eq!(row_key(relation, &vec![text("x1")]), json!({"id": "x1"}));
        let bad = PgValue::Text(Bytes::from_static(b"\xff1"));
        assert_eq!(row_key(relation, &vec![bad]), json!({"id": "\u{fffd}1"}));
    }

    #[test]
    fn long_key_values_are_cut_and_marked_under_replica_identity_full_only() {
        let mut cache = RelationCache::new();
        cache.apply_relation(Relation {
            oid: 1,
            namespace: "public".to_owned(),
            name: "docs".to_owned(),
            replica_identity: b'f',
            columns: vec![column("body", 25, KEY)],
        });
        let relation = cache.get(1).unwrap();
        let long = "é".repeat(MAX_KEY_VALUE_BYTES);
        let key = row_key(relation, &vec![text(&long)]);
        let expected = format!("{}…", "é".repeat(MAX_KEY_VALUE_BYTES / 2));
        assert_eq!(key, json!({ "body": expected }));
        let exact = "7".repeat(MAX_KEY_VALUE_BYTES);
        let key = row_key(relation, &vec![text(&exact)]);
        assert_eq!(key["body"].as_str(), Some(exact.as_str()), "a value at the limit is whole");

        // A primary key is never cut: rows that differ only past the limit
        // are different rows.
        let cache = orders();
        let relation = cache.get(16384).unwrap();
        let key = row_key(relation, &vec![text(&long)]);
        assert_eq!(key, json!({ "id": long }));
    }

    #[test]
    fn row_key_of_relation_without_key_columns_is_empty() {
        let mut cache = RelationCache::new();
        cache.apply_relation(Relation {
            oid: 1,
            namespace: "public".to_owned(),
            name: "log".to_owned(),
            replica_identity: b'n',
            columns: vec![column("line", 25, 0)],
        });
        assert_eq!(row_key(cache.get(1).unwrap(), &vec![text("x")]), json!({}));
    }
}
