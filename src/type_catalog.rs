//! What the stream does not say about user-defined types, read from `pg_type`
//! once when `walguard run` starts.
//!
//! pgoutput's Type message gives a type's schema and name only (PostgreSQL 15
//! documentation, section 55.9 "Logical Replication Message Formats"). For an
//! array of a user-defined type, such as `posint[]` for a domain over
//! `integer`, that name is `_posint`: nothing says the elements are numbers,
//! and a non-array type may also be named with a leading underscore. So the
//! catalog is asked, for every user-defined type whose name starts with `_`,
//! whether it is an array and what its elements' base type and delimiter are.
//!
//! The answer is a snapshot: a type created after start is read by its Type
//! message alone (see [`ValueKind::UserArray`]) until walguard restarts.

use std::collections::{HashMap, HashSet};

use tokio_postgres::Client;

use crate::pgoutput::Oid;
use crate::row::{ScalarKind, ValueKind};

/// The first oid that is not a built-in object (`FirstNormalObjectId`).
const FIRST_USER_OID: Oid = 16384;

/// How many domains over domains are followed before giving up.
const MAX_DOMAIN_DEPTH: usize = 32;

/// Kinds of user-defined types, by oid, that override what their Type
/// messages would suggest.
pub type TypeKinds = HashMap<Oid, ValueKind>;

/// Generated columns as (schema, table, column): pgoutput in PostgreSQL 15
/// leaves them out of Relation messages and rows, so their absence is no
/// drift.
pub type GeneratedColumns = HashSet<(String, String, String)>;

/// Reads every generated column of the database.
pub async fn load_generated(client: &Client) -> Result<GeneratedColumns, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, a.attname::text
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE a.attgenerated <> '' AND NOT a.attisdropped",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect())
}

/// Reads the kinds of the user-defined types named like arrays.
pub async fn load(client: &Client) -> Result<TypeKinds, tokio_postgres::Error> {
    let domains: HashMap<Oid, Oid> = client
        .query("SELECT oid, typbasetype FROM pg_type WHERE typtype = 'd'", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let rows = client
        .query(
            "SELECT t.oid, t.typsubscript = 'array_subscript_handler'::regproc, t.typelem,
                    coalesce(e.typdelim, ',')::text
             FROM pg_type t LEFT JOIN pg_type e ON e.oid = t.typelem
             WHERE t.oid >= $1 AND t.typname LIKE '\\_%'",
            &[&FIRST_USER_OID],
        )
        .await?;
    let mut kinds = TypeKinds::new();
    for row in rows {
        let (oid, is_array, element): (Oid, bool, Oid) = (row.get(0), row.get(1), row.get(2));
        let delimiter: String = row.get(3);
        let kind = if is_array {
            let base = base_type(&domains, element);
            let element = match base {
                Some(base) if base < FIRST_USER_OID => ValueKind::of_builtin(base),
                _ => ValueKind::Scalar(ScalarKind::Text),
            };
            let element = match element {
                ValueKind::Scalar(scalar) => scalar,
                // An array of a domain over an array is still one array.
                _ => ScalarKind::Text,
            };
            ValueKind::Array { element, delimiter: delimiter.bytes().next().unwrap_or(b',') }
        } else {
            ValueKind::Scalar(ScalarKind::Text)
        };
        kinds.insert(oid, kind);
    }
    Ok(kinds)
}

/// The type a domain (or a domain over a domain) is based on; the type
/// itself when it is no domain.
fn base_type(domains: &HashMap<Oid, Oid>, mut oid: Oid) -> Option<Oid> {
    for _ in 0..MAX_DOMAIN_DEPTH {
        match domains.get(&oid) {
            Some(&base) => oid = base,
            None => return Some(oid),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_resolve_to_their_innermost_base() {
        let domains = HashMap::from([(20000, 20001), (20001, 23)]);
        assert_eq!(base_type(&domains, 20000), Some(23));
        assert_eq!(base_type(&domains, 25), Some(25));
        let cycle = HashMap::from([(1, 2), (2, 1)]);
        assert_eq!(base_type(&cycle, 1), None);
    }
}
