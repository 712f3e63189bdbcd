//! A row's columns and their JSON values: the small map that validation reads.
//!
//! A table has a handful of columns and validation looks each up a few times,
//! so the map is a list in column order searched by name: a lookup compares a
//! few names, which costs less than hashing one. The names are shared with the
//! relation cache, so building a row copies none.

use std::sync::Arc;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Columns and their values in column order, each name at most once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Values(Vec<(Arc<str>, Value)>);

impl Values {
    /// An empty map with room for `capacity` columns.
    pub fn with_capacity(capacity: usize) -> Self {
        Values(Vec::with_capacity(capacity))
    }

    /// The value of the column named `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(column, _)| column.as_ref() == name).map(|(_, value)| value)
    }

    /// Whether the map holds the column named `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets the value of the column `name`, after the others when it is new.
    pub fn insert(&mut self, name: impl Into<Arc<str>>, value: Value) {
        let name = name.into();
        match self.0.iter_mut().find(|(column, _)| *column == name) {
            Some((_, old)) => *old = value,
            None => self.0.push((name, value)),
        }
    }

    /// Adds the column `name`, which the caller knows the map does not hold:
    /// the columns of one relation, whose names PostgreSQL keeps unique.
    pub(super) fn push(&mut self, name: Arc<str>, value: Value) {
        self.0.push((name, value));
    }

    /// The columns and their values, in column order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.0.iter().map(|(name, value)| (name.as_ref(), value))
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
        self.iter().map(|(name, value)| (name.to_owned(), value.clone())).collect()
    }
}

impl From<Map<String, Value>> for Values {
    fn from(object: Map<String, Value>) -> Self {
        Values(object.into_iter().map(|(name, value)| (Arc::from(name), value)).collect())
    }
}

/// Read as a JSON object, as tests write rows.
impl<'de> Deserialize<'de> for Values {
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
        assert_eq!(values.get("a"), Some(&json!(3)));
        assert_eq!(Value::Object(values.to_object()), json!({"a": 3, "b": 2}));
        assert_eq!(values.iter().map(|(name, _)| name).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn a_missing_column_is_none() {
        let values = Values::from(json!({"ab": 1}).as_object().unwrap().clone());
        assert_eq!(values.get("a"), None);
        assert!(!values.contains_key("abc"));
        assert!(values.contains_key("ab"));
    }
}
