//! A row's columns and their values: the small map that validation reads.
//!
//! A table has a handful of columns and validation looks each up a few times,
//! so the map is a list in column order searched by name: a lookup compares a
//! few names, which costs less than hashing one. The names are shared with the
//! relation cache, so building a row copies none.
//!
//! A column is held as a [`Cell`] where it can be: a text borrowed from the
//! replication message, an integer parsed once. Schemas and rules read cells;
//! only a value that leaves the row (in a violation) is made a
//! `serde_json::Value`.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::json::Cell;

/// Columns and their values in column order, each name at most once; `'t`
/// is the message the texts are borrowed from.
#[derive(Clone, Default)]
pub struct Values<'t>(Vec<Column<'t>>);

#[derive(Clone)]
struct Column<'t> {
    name: Arc<str>,
    held: Held<'t>,
}

/// How a column's value is held.
#[derive(Debug, Clone)]
pub(super) enum Held<'t> {
    Text(&'t str),
    Int(i64, &'t str),
    Value(Value),
}

impl<'t> Column<'t> {
    fn cell(&self) -> Cell<'_> {
        match &self.held {
            Held::Text(text) => Cell::Text(text),
            Held::Int(int, text) => Cell::Int(*int, text),
            Held::Value(value) => Cell::Value(value),
        }
    }
}

impl<'t> Values<'t> {
    /// An empty map with room for `capacity` columns.
    pub fn with_capacity(capacity: usize) -> Self {
        Values(Vec::with_capacity(capacity))
    }

    fn column(&self, name: &str) -> Option<&Column<'t>> {
        self.0.iter().find(|column| column.name.as_ref() == name)
    }

    /// The value of the column named `name`, as a cell.
    pub fn cell(&self, name: &str) -> Option<Cell<'_>> {
        self.column(name).map(Column::cell)
    }

    /// A copy of the value of the column named `name`.
    pub fn value(&self, name: &str) -> Option<Value> {
        self.cell(name).map(|cell| cell.to_json())
    }

    /// Whether the map holds the column named `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.column(name).is_some()
    }

    /// Sets the value of the column `name`, after the others when it is new.
    pub fn insert(&mut self, name: impl Into<Arc<str>>, value: Value) {
        self.set(name.into(), Held::Value(value));
    }

    /// Sets the column `name`, after the others when it is new.
    pub(super) fn set(&mut self, name: Arc<str>, held: Held<'t>) {
        match self.0.iter_mut().find(|column| column.name == name) {
            Some(column) => column.held = held,
            None => self.push(name, held),
        }
    }

    /// Adds the column `name`, which the caller knows the map does not hold:
    /// the columns of one relation, whose names PostgreSQL keeps unique.
    pub(super) fn push(&mut self, name: Arc<str>, held: Held<'t>) {
        self.0.push(Column { name, held });
    }

    /// A copy of the column `name` from `other`, if it holds one.
    pub fn copy_from(&mut self, other: &Values<'t>, name: &str) {
        if let Some(column) = other.column(name) {
            self.0.retain(|held| held.name != column.name);
            self.0.push(column.clone());
        }
    }

    /// The columns and their values, in column order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, Cell<'_>)> {
        self.0.iter().map(|column| (column.name.as_ref(), column.cell()))
    }

    /// How many columns the map holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the map holds no column.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The columns as a JSON object, in column order.
    pub fn to_object(&self) -> Map<String, Value> {
        self.iter().map(|(name, cell)| (name.to_owned(), cell.to_json())).collect()
    }
}

/// Equal when they hold the same columns with the same values, in order,
/// however each is held.
impl PartialEq for Values<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((a, x), (b, y))| a == b && x.to_json() == y.to_json())
    }
}

impl fmt::Debug for Values<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter().map(|(name, cell)| (name, cell.to_json()))).finish()
    }
}

impl From<Map<String, Value>> for Values<'_> {
    fn from(object: Map<String, Value>) -> Self {
        let mut values = Values::with_capacity(object.len());
        for (name, value) in object {
            values.push(Arc::from(name), Held::Value(value));
        }
        values
    }
}

/// Read as a JSON object, as tests write rows.
impl<'de> Deserialize<'de> for Values<'_> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Values::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_column_set_twice_keeps_its_place_and_its_last_value() {
        let mut values = Values::default();
        values.insert("a", json!(1));
        values.insert("b", json!(2));
        values.insert("a", json!(3));
        assert_eq!(values.len(), 2);
        assert_eq!(values.value("a"), Some(json!(3)));
        assert_eq!(Value::Object(values.to_object()), json!({"a": 3, "b": 2}));
        assert_eq!(values.iter().map(|(name, _)| name).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn a_missing_column_is_none() {
        let values = Values::from(json!({"ab": 1}).as_object().unwrap().clone());
        assert_eq!(values.value("a"), None);
        assert!(!values.contains_key("abc"));
        assert!(values.contains_key("ab"));
    }

    #[test]
    fn texts_and_integers_read_as_the_values_they_stand_for() {
        let mut values = Values::default();
        values.push(Arc::from("t"), Held::Text("x y"));
        values.push(Arc::from("i"), Held::Int(-12, "-12"));
        assert!(matches!(values.cell("t"), Some(Cell::Text("x y"))));
        assert_eq!(values.value("t"), Some(json!("x y")));
        assert_eq!(values.value("i"), Some(json!(-12)));
        assert_eq!(
            values,
            Values::from(json!({"t": "x y", "i": -12}).as_object().unwrap().clone())
        );
    }
}
