//! Schema drift: a Relation message that no longer matches the schema file.
//!
//! Checked on every Relation message, the first of a session and each one the
//! server sends after `ALTER TABLE`. Each finding is a `schema_drift`
//! violation about the table (no operation, empty row key):
//!
//! - a column the file describes (`properties`) or requires is gone: dropped,
//!   or renamed, which the protocol cannot tell apart from a drop;
//! - a described column changed type (or type modifier, such as a varchar
//!   length) since the previous Relation message of the session;
//! - under `x-on-unknown-columns: <severity>`, a column the file does not
//!   describe, with that severity (nothing under the default `ignore`).
//!
//! A finding's dedup key names the table, the column and what changed
//! (with both types for a type change), not the position of the Relation
//! message: the server resends a relation at the start of every session, so
//! the same drift seen again after a restart or a replay is the same
//! violation. The cost is that the very same change made twice (a column
//! dropped, added back, dropped again) is recorded once.

use crate::pgoutput::Relation;
use crate::schema::{Severity, TableSchema, UnknownColumns};

/// One way a table drifted from its schema file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub column: String,
    pub severity: Severity,
    pub message: String,
    /// Stable key of this drift (see the module documentation).
    pub dedup_key: String,
}

/// Compares the relation with its schema file and with the relation's
/// previous shape in this session, if any. `generated` tells the columns the
/// stream never sends (generated ones), whose absence is no drift.
pub fn check(
    schema: &TableSchema,
    old: Option<&Relation>,
    new: &Relation,
    generated: &dyn Fn(&str) -> bool,
) -> Vec<Drift> {
    let table = format!("{}.{}", new.namespace, new.name);
    let column = |name: &str| new.columns.iter().find(|column| column.name == name);
    let mut drifts = Vec::new();

    // Columns the file describes or requires that the table lost.
    let described = schema.property_names().chain(schema.required().iter().map(String::as_str));
    let mut gone: Vec<&str> =
        described.filter(|name| column(name).is_none() && !generated(name)).collect();
    gone.sort_unstable();
    gone.dedup();
    for name in gone {
        drifts.push(Drift {
            column: name.to_owned(),
            severity: schema.column_severity(name),
            message: format!(
                "column {name}, which the schema file describes, is gone from {table} \
                 (dropped or renamed)"
            ),
            dedup_key: format!("schema_drift/{table}/{name}/gone"),
        });
    }

    // Described columns whose type changed since the previous message.
    for before in old.iter().flat_map(|old| &old.columns) {
        let Some(after) = column(&before.name) else { continue };
        let changed =
            (before.type_oid, before.type_modifier) != (after.type_oid, after.type_modifier);
        if !changed || schema.column(&before.name).is_none() {
            continue;
        }
        let name = &before.name;
        drifts.push(Drift {
            column: name.clone(),
            severity: schema.column_severity(name),
            message: format!(
                "column {name} of {table} changed type from {} to {}",
                type_name(before.type_oid, before.type_modifier),
                type_name(after.type_oid, after.type_modifier)
            ),
            dedup_key: format!(
                "schema_drift/{table}/{name}/type/{}.{}/{}.{}",
                before.type_oid, before.type_modifier, after.type_oid, after.type_modifier
            ),
        });
    }

    // Columns the file does not describe, if the file asks to hear of them.
    if let UnknownColumns::Report(severity) = schema.on_unknown_columns() {
        for unknown in new.columns.iter().filter(|c| schema.column(&c.name).is_none()) {
            let name = &unknown.name;
            drifts.push(Drift {
                column: name.clone(),
                severity,
                message: format!(
                    "{table} has a column {name} that the schema file does not describe"
                ),
                dedup_key: format!("schema_drift/{table}/{name}/unknown"),
            });
        }
    }
    drifts
}

/// A readable name for a built-in type oid, else the oid itself.
fn type_name(oid: u32, modifier: i32) -> String {
    let name = match oid {
        16 => "boolean",
        20 => "bigint",
        21 => "smallint",
        23 => "integer",
        25 => "text",
        114 => "json",
        700 => "real",
        701 => "double precision",
        1042 => "character",
        1043 => "character varying",
        1082 => "date",
        1114 => "timestamp",
        1184 => "timestamptz",
        1700 => "numeric",
        2950 => "uuid",
        3802 => "jsonb",
        _ => return format!("type {oid}"),
    };
    match (oid, modifier) {
        (1042 | 1043, modifier) if modifier > 4 => format!("{name}({})", modifier - 4),
        _ => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgoutput::Column;
    use crate::schema::SchemaSet;

    fn schema(extra: &str) -> SchemaSet {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "x-table: public.t\nrequired: [id]\nproperties:\n  id: {{type: integer}}\n  \
             note: {{type: string}}\n{extra}"
        );
        std::fs::write(dir.path().join("t.yaml"), text).unwrap();
        SchemaSet::load(dir.path()).unwrap()
    }

    fn relation(columns: &[(&str, u32)]) -> Relation {
        Relation {
            oid: 1,
            namespace: "public".into(),
            name: "t".into(),
            replica_identity: b'd',
            columns: columns
                .iter()
                .map(|(name, oid)| Column {
                    flags: 0,
                    name: (*name).into(),
                    type_oid: *oid,
                    type_modifier: -1,
                })
                .collect(),
        }
    }

    #[test]
    fn matching_relation_has_no_drift() {
        let set = schema("");
        let table = set.get("public", "t").unwrap();
        let relation = relation(&[("id", 23), ("note", 25), ("x", 25)]);
        assert_eq!(check(table, None, &relation, &|_| false), []);
    }

    #[test]
    fn generated_column_absent_from_the_relation_is_no_drift() {
        let set = schema("");
        let table = set.get("public", "t").unwrap();
        let relation = relation(&[("id", 23)]);
        let drifts = check(table, None, &relation, &|column| column == "note");
        assert_eq!(drifts, []);
        let drifts = check(table, None, &relation, &|_| false);
        assert_eq!(drifts.len(), 1, "without the catalog's word, a missing column is drift");
    }

    #[test]
    fn dropped_column_retyped_column_and_unknown_column_are_drift() {
        let set = schema("x-on-unknown-columns: warn\n");
        let table = set.get("public", "t").unwrap();
        let old = relation(&[("id", 23), ("note", 25)]);
        let new = relation(&[("id", 20), ("extra", 25)]);
        let drifts = check(table, Some(&old), &new, &|_| false);
        let keys: Vec<&str> = drifts.iter().map(|d| d.dedup_key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "schema_drift/public.t/note/gone",
                "schema_drift/public.t/id/type/23.-1/20.-1",
                "schema_drift/public.t/extra/unknown",
            ]
        );
        assert_eq!(drifts[1].message, "column id of public.t changed type from integer to bigint");
        assert_eq!(drifts[2].severity, Severity::Warn);
    }
}
