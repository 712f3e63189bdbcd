//! Which rows have violation states not yet resolved, so that only changes to
//! those rows carry a [`crate::sink::Resolution`] to the sink.
//!
//! A row is named by a 64-bit hash of its table and row key, in a canonical
//! form that ignores what storing the key as `jsonb` changes (the order of an
//! object's keys, how a number is written). Two rows that share a hash only
//! cost a resolution that matches nothing; a row with open states is never
//! missed, because every key the sink holds open is read at the start of each
//! session, and every row with a new row-level violation, or with a reference
//! check that may still fail when the batch is written, adds its key before
//! the next change is handled. A row whose check then passes stays in the set
//! until the next session reads the set back: its changes only carry
//! resolutions that match nothing.
//!
//! The hash is foldhash, seeded at random for each run: cheaper than the
//! standard library's SipHash, which cost as much as validating a column, and
//! still unknown to whoever writes the rows. It needs to agree only within one
//! process, since the set is rebuilt from the sink at each start.
//!
//! Past [`KEY_LIMIT`] keys the set stops growing and the table of the key that
//! did not fit counts as open as a whole: every one of its rows carries a
//! resolution again, which is slower, never wrong.

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};

use foldhash::fast::RandomState;
use foldhash::quality::RandomState as KeyState;

use serde_json::Value;

use crate::row::{Cell, Values};

/// The most row keys kept: about 20 MB of memory at the limit.
pub const KEY_LIMIT: usize = 1_000_000;

/// The rows, and the whole tables, that may have open violation states.
#[derive(Debug)]
pub struct OpenStates {
    keys: HashSet<u64, RandomState>,
    /// Hashes of the tables any key was added for.
    tables: HashSet<u64, RandomState>,
    /// Hashes of the tables whose open rows are not all in `keys`.
    whole: HashSet<u64, RandomState>,
    limit: usize,
    /// Makes the hashes of tables and keys.
    hashes: KeyState,
}

impl Default for OpenStates {
    fn default() -> Self {
        OpenStates::with_limit(KEY_LIMIT)
    }
}

impl OpenStates {
    /// A set that keeps at most `limit` row keys.
    pub fn with_limit(limit: usize) -> Self {
        OpenStates {
            keys: HashSet::default(),
            tables: HashSet::default(),
            whole: HashSet::default(),
            limit,
            hashes: KeyState::default(),
        }
    }

    /// Forgets everything, before the sink's open states are read again.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.tables.clear();
        self.whole.clear();
    }

    /// Notes that the row `key` of `schema.table` may have open states.
    pub fn insert(&mut self, schema: &str, table: &str, key: &impl RowKey) {
        let table_hash = self.table_hash(schema, table);
        if self.whole.contains(&table_hash) {
            return;
        }
        if self.keys.len() >= self.limit {
            self.whole.insert(table_hash);
            return;
        }
        self.tables.insert(table_hash);
        self.keys.insert(self.key_hash(schema, table, key));
    }

    /// Notes that any row of `schema.table` may have open states.
    pub fn mark_table(&mut self, schema: &str, table: &str) {
        self.whole.insert(self.table_hash(schema, table));
    }

    /// Notes that the row `key` has no open state left.
    pub fn remove(&mut self, schema: &str, table: &str, key: &impl RowKey) {
        self.keys.remove(&self.key_hash(schema, table, key));
    }

    /// Whether the row `key` of `schema.table` may have open states.
    pub fn contains(&self, schema: &str, table: &str, key: &impl RowKey) -> bool {
        self.keys.contains(&self.key_hash(schema, table, key))
            || (!self.whole.is_empty() && self.whole.contains(&self.table_hash(schema, table)))
    }

    /// Whether any row of `schema.table` may have open states.
    pub fn may_have(&self, schema: &str, table: &str) -> bool {
        let table_hash = self.table_hash(schema, table);
        self.tables.contains(&table_hash) || self.whole.contains(&table_hash)
    }

    /// How many row keys are kept.
    pub fn row_count(&self) -> usize {
        self.keys.len()
    }

    /// The hash of a table.
    fn table_hash(&self, schema: &str, table: &str) -> u64 {
        self.hashes.hash_one((schema, table))
    }

    /// The hash of a row: its table and the canonical form of its key.
    fn key_hash(&self, schema: &str, table: &str, key: &impl RowKey) -> u64 {
        let mut hasher = self.hashes.build_hasher();
        (schema, table).hash(&mut hasher);
        key.feed(&mut hasher);
        hasher.finish()
    }
}

/// A row key the set hashes: the JSON object a violation carries or the sink
/// gives back, or the key columns of a change, which hash as the object made
/// of them would.
pub trait RowKey {
    /// Feeds the key's canonical form to `hasher`.
    fn feed(&self, hasher: &mut impl Hasher);
}

impl RowKey for Value {
    fn feed(&self, hasher: &mut impl Hasher) {
        hash_cell(Cell::Value(self), hasher);
    }
}

impl RowKey for Values<'_> {
    fn feed(&self, hasher: &mut impl Hasher) {
        hash_members(self.iter(), hasher);
    }
}

/// Feeds a JSON value to `hasher` the same way whatever order its objects'
/// keys are in and however its numbers are written; a text or integer cell
/// as the string or number it stands for.
fn hash_cell(cell: Cell<'_>, hasher: &mut impl Hasher) {
    let value = match cell {
        Cell::Text(text) => return (3u8, text).hash(hasher),
        Cell::Int(_, digits) => {
            2u8.hash(hasher);
            return hash_number(digits, hasher);
        }
        Cell::Value(value) => value,
    };
    match value {
        Value::Null => 0u8.hash(hasher),
        Value::Bool(b) => (1u8, b).hash(hasher),
        Value::Number(number) => {
            2u8.hash(hasher);
            hash_number(number.as_str(), hasher);
        }
        Value::String(text) => (3u8, text.as_str()).hash(hasher),
        Value::Array(items) => {
            (4u8, items.len()).hash(hasher);
            items.iter().for_each(|item| hash_cell(Cell::Value(item), hasher));
        }
        Value::Object(map) => {
            let members = map.iter().map(|(name, item)| (name.as_str(), Cell::Value(item)));
            hash_members(members, hasher);
        }
    }
}

/// Feeds an object's members in the order of their names.
fn hash_members<'a>(
    members: impl ExactSizeIterator<Item = (&'a str, Cell<'a>)>,
    hasher: &mut impl Hasher,
) {
    (5u8, members.len()).hash(hasher);
    // Most keys have one column: nothing to sort.
    if members.len() == 1 {
        for (name, item) in members {
            name.hash(hasher);
            hash_cell(item, hasher);
        }
        return;
    }
    let mut entries: Vec<(&str, Cell<'_>)> = members.collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (name, item) in entries {
        name.hash(hasher);
        hash_cell(item, hasher);
    }
}

/// Feeds a number as its sign, significant digits and decimal exponent, so
/// that `100`, `1e2`, `1.00E+2` and `100.0` hash alike (`jsonb` may turn one
/// into another). Text that is not a number is hashed as it is.
fn hash_number(text: &str, hasher: &mut impl Hasher) {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()),
        None => (unsigned, Some(0)),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    let Some(exponent) = exponent.filter(|_| all_digits(whole) && all_digits(fraction)) else {
        text.hash(hasher);
        return;
    };

    // digits × 10^(exponent - fraction length), without leading or
    // trailing zeros; an integer needs no copy of its digits.
    let digits: Cow<'_, str> = if fraction.is_empty() {
        Cow::Borrowed(whole)
    } else {
        Cow::Owned([whole, fraction].concat())
    };
    let leading = digits.len() - digits.trim_start_matches('0').len();
    let significant = digits[leading..].trim_end_matches('0');
    if significant.is_empty() {
        "0".hash(hasher);
        return;
    }
    let trailing = digits.len() - leading - significant.len();
    let scale = exponent - fraction.len() as i64 + trailing as i64;
    (negative, significant, scale).hash(hasher);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;
    use serde_json::json;

    use crate::pgoutput::{self, Column, Relation};
    use crate::relation::RelationCache;
    use crate::row;

    /// A REPLICA IDENTITY FULL table of text, int8, numeric, bool and jsonb
    /// columns: every column is a key column.
    fn full_identity_table() -> RelationCache {
        let column = |name: &str, type_oid| Column {
            flags: 1,
            name: name.to_owned(),
            type_oid,
            type_modifier: -1,
        };
        let mut cache = RelationCache::new();
        cache.apply_relation(Relation {
            oid: 7,
            namespace: "public".to_owned(),
            name: "t".to_owned(),
            replica_identity: b'f',
            columns: vec![
                column("note", 25),
                column("id", 20),
                column("amount", 1700),
                column("flag", 16),
                column("doc", 3802),
            ],
        });
        cache
    }

    proptest! {
        #[test]
        fn a_changes_key_columns_hash_as_its_row_key(
            texts in prop::collection::vec(
                prop_oneof![
                    any::<i64>().prop_map(|int| int.to_string()),
                    Just("-0".to_owned()),
                    Just("007".to_owned()),
                    Just("1.50".to_owned()),
                    Just("t".to_owned()),
                    Just(r#"{"b": [1, 2.0], "a": "x"}"#.to_owned()),
                    "[a-z0-9 .-]{0,8}",
                ],
                5,
            ),
            nulls in prop::collection::vec(any::<bool>(), 5),
        ) {
            let cache = full_identity_table();
            let relation = cache.get(7).unwrap();
            let tuple: Vec<pgoutput::Value> = texts
                .iter()
                .zip(&nulls)
                .map(|(text, &null)| match null {
                    true => pgoutput::Value::Null,
                    false => pgoutput::Value::Text(Bytes::copy_from_slice(text.as_bytes())),
                })
                .collect();
            let mut open = OpenStates::default();
            open.insert("public", "t", &row::row_key(relation, &tuple));
            prop_assert!(open.contains("public", "t", &row::key_values(relation, &tuple)));
            open.remove("public", "t", &row::key_values(relation, &tuple));
            prop_assert_eq!(open.row_count(), 0);
        }
    }

    fn parsed(text: &str) -> Value {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn a_key_read_back_from_jsonb_is_the_same_row() {
        let mut open = OpenStates::default();
        open.insert("public", "orders", &parsed(r#"{"region": "eu", "id": 1e2}"#));
        // jsonb orders keys by length and writes numbers in full.
        assert!(open.contains("public", "orders", &parsed(r#"{"id": 100, "region": "eu"}"#)));
        assert!(open.contains("public", "orders", &parsed(r#"{"id": 100.00, "region": "eu"}"#)));
        assert!(!open.contains("public", "orders", &parsed(r#"{"id": 101, "region": "eu"}"#)));
        assert!(!open.contains("public", "items", &parsed(r#"{"id": 100, "region": "eu"}"#)));
        assert!(open.may_have("public", "orders") && !open.may_have("public", "items"));
        assert!(!open.contains("public", "orders", &parsed(r#"{"id": "100", "region": "eu"}"#)));
    }

    #[test]
    fn numbers_hash_by_value_and_sign() {
        let same = |a: &str, b: &str| {
            let mut open = OpenStates::default();
            open.insert("s", "t", &parsed(a));
            open.contains("s", "t", &parsed(b))
        };
        assert!(same("0.0015", "1.5e-3"));
        assert!(same("-12.50", "-1.25E1"));
        assert!(same("0", "-0.000"));
        assert!(same("123456789012345678901234567890", "1.2345678901234567890123456789e29"));
        assert!(!same("12", "-12"));
        assert!(!same("12", "1.2"));
        assert!(!same("[1, 2]", "[2, 1]"));
    }

    #[test]
    fn a_removed_row_is_no_longer_open() {
        let mut open = OpenStates::default();
        let key = json!({"id": 7});
        open.insert("public", "orders", &key);
        open.remove("public", "orders", &key);
        assert!(!open.contains("public", "orders", &key));
        assert_eq!(open.row_count(), 0);
    }

    #[test]
    fn past_the_limit_the_whole_table_counts_as_open() {
        let mut open = OpenStates::with_limit(2);
        for id in 1..=3 {
            open.insert("public", "orders", &json!({ "id": id }));
        }
        assert_eq!(open.row_count(), 2);
        assert!(open.contains("public", "orders", &json!({"id": 99})));
        assert!(!open.contains("public", "items", &json!({"id": 99})));
        assert!(open.may_have("public", "orders"));
    }
}
