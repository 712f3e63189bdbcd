//! The row view as a JSON representation of jsonschema's own, so that a
//! column is validated where it lies in the replication message.
//!
//! Turning every column into a `serde_json::Value` costs an allocation for
//! each text and number, and with exact numbers each numeric keyword then
//! parses the number's digits again. Most columns are text or integers, so
//! a [`Cell`] holds those as they arrived: a text borrowed from the message,
//! an integer already parsed next to its digits. Anything converted (times
//! rewritten to RFC 3339, booleans, json, arrays, decimals) is a `Value`, and
//! its objects and arrays are walked as `Value`s are.
//!
//! A cell answers every question exactly as the `Value` it stands for would:
//! a text is that string, an integer that number. A property test checks the
//! verdicts and errors of both against each other.

use std::borrow::Cow;

use jsonschema::json::{Array, Json, JsonNumber, Node, NodeIdentity, Object, cmp, unique};
use jsonschema::types::JsonType;
use serde_json::{Map, Number, Value};

/// The row view's JSON representation, for `Validator<RowJson>`.
pub struct RowJson;

/// One value of the row view, a column or a part of one.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    /// A column's text, as a JSON string.
    Text(&'a str),
    /// A column's integer, and its digits as sent (the form `i64` prints).
    Int(i64, &'a str),
    /// A converted column, or a member or element of one.
    Value(&'a Value),
}

impl Cell<'_> {
    /// Whether the cell is a JSON null (which a column never is: the row view
    /// leaves NULL columns out).
    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Value(Value::Null))
    }

    /// The `Value` this cell stands for.
    pub fn to_json(&self) -> Value {
        match *self {
            Cell::Text(text) => Value::String(text.to_owned()),
            Cell::Int(int, _) => Value::Number(Number::from(int)),
            Cell::Value(value) => value.clone(),
        }
    }
}

impl Json for RowJson {
    type Node<'a> = Cell<'a>;
    type PreparedKey = String;
    type StringBuffer = Value;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>(buffer: &mut Value, string: &str, f: impl FnOnce(Cell<'_>) -> T) -> T {
        *buffer = Value::String(string.to_owned());
        f(Cell::Value(buffer))
    }
}

/// What tells a column's text or integer from every other node: its digits'
/// place in the message, tagged apart from the addresses of `Value`s.
fn text_identity(text: &str, tag: u32) -> NodeIdentity {
    NodeIdentity::tagged(text.as_ptr() as usize, tag)
}

impl<'a> Node<'a, RowJson> for Cell<'a> {
    type Object = Members<'a>;
    type Array = Elements<'a>;
    type Number = Digits<'a>;

    fn as_object(&self) -> Option<Members<'a>> {
        match self {
            Cell::Value(Value::Object(members)) => Some(Members(members)),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<Elements<'a>> {
        match self {
            Cell::Value(Value::Array(items)) => Some(Elements(items)),
            _ => None,
        }
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match *self {
            Cell::Text(text) => Some(Cow::Borrowed(text)),
            Cell::Value(Value::String(text)) => Some(Cow::Borrowed(text)),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<Digits<'a>> {
        match *self {
            Cell::Int(int, text) => Some(Digits::Int(int, text)),
            Cell::Value(Value::Number(number)) => Some(Digits::Number(number)),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self {
            Cell::Value(Value::Bool(flag)) => Some(*flag),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        Cell::is_null(self)
    }

    fn json_type(&self) -> JsonType {
        match self {
            Cell::Text(_) => JsonType::String,
            Cell::Int(..) => JsonType::Number,
            Cell::Value(value) => match value {
                Value::Null => JsonType::Null,
                Value::Bool(_) => JsonType::Boolean,
                Value::Number(_) => JsonType::Number,
                Value::String(_) => JsonType::String,
                Value::Array(_) => JsonType::Array,
                Value::Object(_) => JsonType::Object,
            },
        }
    }

    fn equals_value(&self, expected: &Value) -> bool {
        match (*self, expected) {
            (Cell::Text(text), Value::String(other)) => text == other,
            (Cell::Text(_), _) => false,
            (Cell::Value(value), _) => cmp::equal(value, expected),
            (Cell::Int(..), _) => cmp::equal(&self.to_json(), expected),
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        match *self {
            Cell::Value(value) => Cow::Borrowed(value),
            _ => Cow::Owned(self.to_json()),
        }
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(match *self {
            Cell::Text(text) => text_identity(text, 1),
            Cell::Int(_, text) => text_identity(text, 2),
            Cell::Value(value) => NodeIdentity::new(std::ptr::from_ref::<Value>(value) as usize),
        })
    }
}

/// A number of the row view.
#[derive(Debug, Clone, Copy)]
pub enum Digits<'a> {
    /// An integer column, parsed once.
    Int(i64, &'a str),
    /// A number inside a converted value.
    Number(&'a Number),
}

impl JsonNumber for Digits<'_> {
    fn as_u64(&self) -> Option<u64> {
        match *self {
            Digits::Int(int, _) => u64::try_from(int).ok(),
            Digits::Number(number) => number.as_u64(),
        }
    }

    fn as_i64(&self) -> Option<i64> {
        match *self {
            Digits::Int(int, _) => Some(int),
            Digits::Number(number) => number.as_i64(),
        }
    }

    #[allow(clippy::cast_precision_loss, reason = "rounds to nearest, as parsing the digits does")]
    fn as_f64(&self) -> Option<f64> {
        match *self {
            Digits::Int(int, _) => Some(int as f64),
            Digits::Number(number) => number.as_f64(),
        }
    }

    fn as_str(&self) -> Cow<'_, str> {
        match *self {
            Digits::Int(_, text) => Cow::Borrowed(text),
            Digits::Number(number) => Cow::Borrowed(number.as_str()),
        }
    }

    fn to_number(&self) -> Cow<'_, Number> {
        match *self {
            Digits::Int(int, _) => Cow::Owned(Number::from(int)),
            Digits::Number(number) => Cow::Borrowed(number),
        }
    }

    fn is_integer(&self) -> bool {
        match *self {
            Digits::Int(..) => true,
            Digits::Number(number) => number.is_integer(),
        }
    }

    fn is_written_as_integer(&self) -> bool {
        match *self {
            Digits::Int(..) => true,
            Digits::Number(number) => number.is_written_as_integer(),
        }
    }
}

/// The members of an object inside a converted value.
pub struct Members<'a>(&'a Map<String, Value>);

impl<'a> Object<'a, RowJson> for Members<'a> {
    type Node = Cell<'a>;
    type MemberName = &'a str;
    type MembersIter = std::iter::Map<
        serde_json::map::Iter<'a>,
        fn((&'a String, &'a Value)) -> (&'a str, Cell<'a>),
    >;

    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, key: &String) -> Option<Cell<'a>> {
        self.0.get(key.as_str()).map(Cell::Value)
    }

    fn members(&self) -> Self::MembersIter {
        self.0.iter().map(|(name, value)| (name.as_str(), Cell::Value(value)))
    }
}

/// The elements of an array inside a converted value.
pub struct Elements<'a>(&'a [Value]);

impl<'a> Array<'a, RowJson> for Elements<'a> {
    type Node = Cell<'a>;
    type ElementsIter = std::iter::Map<std::slice::Iter<'a, Value>, fn(&'a Value) -> Cell<'a>>;

    fn len(&self) -> usize {
        self.0.len()
    }

    fn elements(&self) -> Self::ElementsIter {
        self.0.iter().map(Cell::Value)
    }

    fn is_unique(&self) -> bool {
        unique::is_unique(self.0)
    }
}

#[cfg(test)]
mod tests {
    use jsonschema::Draft;
    use jsonschema::json::SerdeJson;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// Subschemas about strings and numbers, the keywords a cell answers
    /// differently from a `Value`.
    fn keyword() -> impl Strategy<Value = Value> {
        prop::sample::select(vec![
            json!({"type": "string"}),
            json!({"type": "integer"}),
            json!({"type": "number"}),
            json!({"type": ["string", "null"]}),
            json!({"minLength": 2}),
            json!({"maxLength": 3}),
            json!({"pattern": "^a"}),
            json!({"format": "email"}),
            json!({"format": "date"}),
            json!({"enum": ["a", 1, "1", 2.0]}),
            json!({"const": 5}),
            json!({"const": "ab"}),
            json!({"minimum": 0}),
            json!({"maximum": 10}),
            json!({"exclusiveMinimum": -3}),
            json!({"exclusiveMaximum": 9_007_199_254_740_993_u64}),
            json!({"multipleOf": 2}),
            json!({"multipleOf": 0.5}),
            json!({"not": {"type": "string"}}),
            json!({"anyOf": [{"type": "integer"}, {"minLength": 3}]}),
            json!({"oneOf": [{"minimum": 5}, {"maximum": 7}]}),
            json!({"if": {"type": "string"}, "then": {"maxLength": 1}, "else": {"minimum": 1}}),
            json!({"uniqueItems": true, "minItems": 1, "minProperties": 1}),
        ])
    }

    /// A text or integer column as a cell, with the `Value` it stands for.
    fn cell() -> impl Strategy<Value = (String, Option<i64>)> {
        prop_oneof![
            "[a-c1@.\\-]{0,6}".prop_map(|text| (text, None)),
            Just(("a@b.co".to_owned(), None)),
            Just(("2024-02-29".to_owned(), None)),
            any::<i64>().prop_map(|int| (int.to_string(), Some(int))),
            (-12_i64..12).prop_map(|int| (int.to_string(), Some(int))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn a_cell_gets_the_verdict_and_errors_of_its_value(
            keywords in prop::collection::vec(keyword(), 1..4),
            (text, int) in cell(),
        ) {
            let schema = json!({"allOf": keywords});
            let options = || jsonschema::options_for::<RowJson>()
                .with_draft(Draft::Draft202012)
                .should_validate_formats(true);
            let cells = options().build(&schema).unwrap();
            let values = jsonschema::options_for::<SerdeJson>()
                .with_draft(Draft::Draft202012)
                .should_validate_formats(true)
                .build(&schema)
                .unwrap();
            let cell = match int {
                Some(int) => Cell::Int(int, &text),
                None => Cell::Text(&text),
            };
            let value = cell.to_json();

            prop_assert_eq!(cells.is_valid(cell), values.is_valid(&value), "{}", schema);
            let errors = |errors: jsonschema::ErrorIterator<'_>| {
                errors.map(|error| (error.instance_path().to_string(), error.to_string()))
                    .collect::<Vec<_>>()
            };
            prop_assert_eq!(errors(cells.iter_errors(cell)), errors(values.iter_errors(&value)));
        }
    }

    #[test]
    fn identities_tell_cells_apart() {
        let text = String::from("12");
        let (a, b) = (Cell::Text(&text), Cell::Int(12, &text));
        assert_ne!(a.identity(), b.identity());
        assert_eq!(a.identity(), Cell::Text(&text).identity());
    }
}
