//! Property tests of the text-to-JSON mapping: values are generated, rendered
//! the way PostgreSQL's output functions render them (`array_out` for arrays,
//! with its quoting rules), converted, and compared with what they stand for.

use proptest::prelude::*;
use serde_json::{Number, Value};

use super::array::render_element;
use super::kind::{ScalarKind, ValueKind};
use super::value::text_to_json;

/// An array as nested lists, each leaf the element's text (`None` for NULL)
/// and the JSON it must become; every leaf at the same depth, as PostgreSQL
/// requires.
#[derive(Debug, Clone)]
pub(super) enum Tree {
    Leaf(Option<String>, Value),
    List(Vec<Tree>),
}

impl Tree {
    pub(super) fn expected(&self) -> Value {
        match self {
            Tree::Leaf(_, json) => json.clone(),
            Tree::List(items) => Value::Array(items.iter().map(Tree::expected).collect()),
        }
    }

    /// Renders the array as `array_out` does, with `,` between elements.
    pub(super) fn render(&self, out: &mut String) {
        match self {
            Tree::Leaf(None, _) => out.push_str("NULL"),
            Tree::Leaf(Some(text), _) => render_element(text, out),
            Tree::List(items) => {
                out.push('{');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.render(out);
                }
                out.push('}');
            }
        }
    }
}

/// Nested lists of `depth` dimensions over `leaf`.
fn list(depth: u32, leaf: BoxedStrategy<Tree>) -> BoxedStrategy<Tree> {
    if depth == 1 {
        prop::collection::vec(leaf, 1..5).prop_map(Tree::List).boxed()
    } else {
        prop::collection::vec(list(depth - 1, leaf), 1..4).prop_map(Tree::List).boxed()
    }
}

/// An array of one to four dimensions, or the empty array, with NULLs.
pub(super) fn array(leaf: BoxedStrategy<Tree>) -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![1 => Just(Tree::Leaf(None, Value::Null)), 6 => leaf].boxed();
    let nonempty = (1..=4u32).prop_flat_map(move |depth| list(depth, leaf.clone()));
    prop_oneof![1 => Just(Tree::List(Vec::new())), 9 => nonempty]
}

/// Text full of what array literals must quote or escape.
fn tricky_text() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '"', '\\', '{', '}', ',', ' ', '\t', '\n', '\r', '\u{b}', '\u{c}', 'N', 'U', 'L', 'l', '[',
        ']', ':', '=', 'é', '😀',
    ]);
    let chars = prop::collection::vec(prop_oneof![3 => special, 1 => any::<char>()], 0..8);
    prop_oneof![
        4 => chars.prop_map(String::from_iter),
        1 => prop::sample::select(vec!["NULL", "null", "Null", "", " "]).prop_map(str::to_owned),
    ]
}

/// A numeric element as PostgreSQL prints it, and its JSON.
fn numeric() -> BoxedStrategy<Tree> {
    let special = prop::sample::select(vec!["NaN", "Infinity", "-Infinity"])
        .prop_map(|text| Tree::Leaf(Some(text.to_owned()), Value::from(text)));
    let digits = ("-?([1-9][0-9]{0,40}|0)", prop::option::of("[0-9]{1,30}")).prop_map(
        |(whole, fraction)| {
            let text = fraction.map_or(whole.clone(), |f| format!("{whole}.{f}"));
            let number: Number = text.parse().expect("a decimal is a JSON number");
            Tree::Leaf(Some(text), Value::Number(number))
        },
    );
    prop_oneof![1 => special, 5 => digits].boxed()
}

/// A JSON document as jsonb prints it, and the document.
fn json_document() -> BoxedStrategy<Tree> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        tricky_text().prop_map(Value::from),
    ];
    let document = leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((tricky_text(), inner), 0..3)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    });
    document.prop_map(|value| Tree::Leaf(Some(value.to_string()), value)).boxed()
}

/// A text element: its JSON is the text itself.
pub(super) fn text_element() -> BoxedStrategy<Tree> {
    tricky_text().prop_map(|text| Tree::Leaf(Some(text.clone()), Value::String(text))).boxed()
}

fn boolean() -> BoxedStrategy<Tree> {
    any::<bool>()
        .prop_map(|b| Tree::Leaf(Some(if b { "t" } else { "f" }.to_owned()), Value::Bool(b)))
        .boxed()
}

/// Converts the rendered tree, with a dimension decoration when asked, as
/// `array_out` writes when a lower bound is not 1.
fn convert(kind: ValueKind, tree: &Tree, decorate: bool) -> (String, Value) {
    let mut text = String::new();
    if decorate && !matches!(tree, Tree::List(items) if items.is_empty()) {
        let mut node = tree;
        while let Tree::List(items) = node {
            text.push_str(&format!("[0:{}]", items.len() - 1));
            node = &items[0];
        }
        text.push('=');
    }
    tree.render(&mut text);
    let value = text_to_json(kind, &text).unwrap_or_else(|err| panic!("{text}: {err}"));
    (text, value)
}

fn array_of(element: ScalarKind) -> ValueKind {
    ValueKind::Array { element, delimiter: b',' }
}

proptest! {
    #[test]
    fn numeric_arrays_keep_every_digit_and_special_values(
        tree in array(numeric()),
        decorate in any::<bool>(),
    ) {
        let (text, value) = convert(array_of(ScalarKind::Number), &tree, decorate);
        // Compare the text of each number, not just its value.
        prop_assert_eq!(value.to_string(), tree.expected().to_string(), "literal: {}", text);
    }

    #[test]
    fn jsonb_arrays_parse_each_quoted_document(
        tree in array(json_document()),
        decorate in any::<bool>(),
    ) {
        let (text, value) = convert(array_of(ScalarKind::Json), &tree, decorate);
        prop_assert_eq!(value, tree.expected(), "literal: {}", text);
    }

    #[test]
    fn text_arrays_keep_quotes_commas_backslashes_braces_and_spaces(
        tree in array(text_element()),
        decorate in any::<bool>(),
    ) {
        let (text, value) = convert(array_of(ScalarKind::Text), &tree, decorate);
        prop_assert_eq!(&value, &tree.expected(), "literal: {}", text);
        // Arrays of user-defined types (enum labels) read the same way.
        let (_, user) = convert(ValueKind::UserArray, &tree, decorate);
        prop_assert_eq!(user, tree.expected(), "literal: {}", text);
    }

    #[test]
    fn bool_arrays_are_booleans_at_every_depth(tree in array(boolean())) {
        let (text, value) = convert(array_of(ScalarKind::Boolean), &tree, false);
        prop_assert_eq!(value, tree.expected(), "literal: {}", text);
    }
}
