//! Where each JSON pointer of a schema file was written, so that problems found
//! in the parsed document can be reported at a line and column of the file.
//!
//! serde-saphyr records the position of any value deserialised as a
//! [`Spanned`]; [`Node`] asks for one at every mapping value and sequence item,
//! and [`Locations`] flattens the tree into a pointer index.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// The line and column (both from 1) of each pointer in one file.
#[derive(Debug, Default)]
pub(crate) struct Locations(HashMap<String, (u64, u64)>);

impl Locations {
    /// Indexes `text`; a file that does not parse gets an empty index (its
    /// YAML error carries its own position).
    pub(crate) fn of(text: &str) -> Locations {
        let mut index = HashMap::new();
        if let Ok(root) = serde_saphyr::from_str::<Spanned<Node>>(text) {
            flatten(&root, &mut String::new(), &mut index);
        }
        Locations(index)
    }

    /// The position of `pointer`, or of its closest ancestor that was written
    /// (a keyword missing from a column is reported at the column).
    pub(crate) fn find(&self, pointer: &str) -> Option<(u64, u64)> {
        let mut pointer = pointer;
        loop {
            if let Some(&position) = self.0.get(pointer) {
                return Some(position);
            }
            let (parent, _) = pointer.rsplit_once('/')?;
            pointer = parent;
        }
    }
}

fn flatten(node: &Spanned<Node>, pointer: &mut String, index: &mut HashMap<String, (u64, u64)>) {
    let location = &node.referenced;
    if location.line() > 0 {
        index.insert(pointer.clone(), (location.line(), location.column()));
    }
    let children: Box<dyn Iterator<Item = (String, &Spanned<Node>)>> = match &node.value {
        Node::Mapping(entries) => Box::new(entries.iter().map(|(key, value)| (escape(key), value))),
        Node::Sequence(items) => {
            Box::new(items.iter().enumerate().map(|(number, item)| (number.to_string(), item)))
        }
        Node::Scalar => return,
    };
    for (segment, child) in children {
        let length = pointer.len();
        pointer.push('/');
        pointer.push_str(&segment);
        flatten(child, pointer, index);
        pointer.truncate(length);
    }
}

/// A pointer segment for a mapping key (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A YAML value with the position of every value inside it.
enum Node {
    Mapping(Vec<(String, Spanned<Node>)>),
    Sequence(Vec<Spanned<Node>>),
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<KeyText>()? {
            entries.push((key.0, map.next_value()?));
        }
        Ok(Node::Mapping(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Sequence(items))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// A mapping key as text, whatever scalar it was written as (`1: x` is the
/// key `"1"`, as in the JSON document).
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E>(self, text: &str) -> Result<KeyText, E> {
                Ok(KeyText(text.to_owned()))
            }
            fn visit_bool<E>(self, value: bool) -> Result<KeyText, E> {
                Ok(KeyText(value.to_string()))
            }
            fn visit_i64<E>(self, value: i64) -> Result<KeyText, E> {
                Ok(KeyText(value.to_string()))
            }
            fn visit_u64<E>(self, value: u64) -> Result<KeyText, E> {
                Ok(KeyText(value.to_string()))
            }
            fn visit_f64<E>(self, value: f64) -> Result<KeyText, E> {
                Ok(KeyText(value.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyText, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(KeyText(String::new()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_map_to_where_values_were_written() {
        let text = "x-table: public.t\nproperties:\n  a: {type: integer}\n  b:\n    maxLength: 3\n\
                    x-rules:\n  - name: r\n    expr: 'row.a > 0'\n";
        let locations = Locations::of(text);
        assert_eq!(locations.find("/x-table"), Some((1, 10)));
        assert_eq!(locations.find("/properties/a/type"), Some((3, 13)));
        assert_eq!(locations.find("/properties/b/maxLength"), Some((5, 16)));
        assert_eq!(locations.find("/x-rules/0/expr"), Some((8, 11)));
        assert_eq!(locations.find("/properties/b/minLength"), locations.find("/properties/b"));
    }
}
