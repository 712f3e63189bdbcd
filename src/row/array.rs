//! Parsing of PostgreSQL's array literal, the text form of every array value.
//!
//! `array_out` (src/backend/utils/adt/arrayfuncs.c) writes:
//! - an optional dimension decoration such as `[0:1]=` or `[-2:0][1:2]=`, only
//!   when some lower bound is not 1;
//! - `{`, the elements separated by the element type's delimiter (`,` for every
//!   built-in type except `box`, which uses `;`), then `}`; an empty array is
//!   `{}`, and a multi-dimensional array nests braces: `{{1,2},{3,4}}`;
//! - each element either as the bare word `NULL` (SQL NULL), as the element's
//!   text, or double-quoted with `"` and `\` escaped by a backslash. It quotes an
//!   element that is empty, equals `NULL` ignoring case, or contains `"`, `\`,
//!   `{`, `}`, the delimiter or whitespace (space, tab, newline, carriage return,
//!   vertical tab, form feed), so a quoted `"NULL"` is the four-letter string.
//!
//! The parser also accepts the rest of what `array_in` accepts: whitespace around
//! elements and backslash escapes in unquoted elements. Lower bounds are dropped,
//! since a JSON array has none: `[0:1]={1,2}` becomes `[1,2]`.
//!
//! The parser never panics and never recurses deeper than PostgreSQL's limit of
//! six dimensions (`MAXDIM` in src/include/utils/array.h). Error messages give a
//! byte offset, never the text, so that row values stay out of the logs.

use serde_json::Value;

/// PostgreSQL's limit on the number of dimensions of an array (`MAXDIM`).
const MAX_DIMENSIONS: usize = 6;

/// Why a text is not a valid array literal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArrayError {
    #[error("expected {expected} at byte {offset} of the array literal")]
    Unexpected { expected: &'static str, offset: usize },
    #[error("array literal ends where {expected} was expected")]
    UnexpectedEnd { expected: &'static str },
    #[error("array literal nests deeper than {MAX_DIMENSIONS} dimensions at byte {offset}")]
    TooDeep { offset: usize },
}

/// Parses an array literal into a JSON array, turning each element (`None` for
/// NULL) into JSON with `element`.
pub(crate) fn parse_array<E>(
    text: &str,
    delimiter: u8,
    mut element: impl FnMut(Option<&str>) -> Result<Value, E>,
) -> Result<Value, E>
where
    E: From<ArrayError>,
{
    let mut parser = Parser { text, pos: 0, delimiter };
    parser.skip_dimensions()?;
    let array = parser.array(1, &mut element)?;
    parser.skip_space();
    if parser.pos < text.len() {
        return Err(parser.unexpected("the end of the array").into());
    }
    Ok(array)
}

/// PostgreSQL's `array_isspace`: unlike Rust's ASCII whitespace, it includes
/// the vertical tab.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// A cursor over the literal. `pos` only ever moves over whole characters, so
/// it always sits on a character boundary.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
    delimiter: u8,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn next_char(&mut self) -> Option<char> {
        let c = self.text.get(self.pos..)?.chars().next()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    fn unexpected(&self, expected: &'static str) -> ArrayError {
        match self.peek() {
            Some(_) => ArrayError::Unexpected { expected, offset: self.pos },
            None => ArrayError::UnexpectedEnd { expected },
        }
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), ArrayError> {
        if self.peek() != Some(byte) {
            return Err(self.unexpected(expected));
        }
        self.pos += 1;
        Ok(())
    }

    /// Skips `[lower:upper]...=`, or `[upper]...=` as `array_in` also allows.
    fn skip_dimensions(&mut self) -> Result<(), ArrayError> {
        self.skip_space();
        if self.peek() != Some(b'[') {
            return Ok(());
        }
        while self.peek() == Some(b'[') {
            self.pos += 1;
            self.skip_integer()?;
            if self.peek() == Some(b':') {
                self.pos += 1;
                self.skip_integer()?;
            }
            self.expect(b']', "`]` closing a dimension")?;
        }
        self.expect(b'=', "`=` after the dimensions")?;
        self.skip_space();
        Ok(())
    }

    fn skip_integer(&mut self) -> Result<(), ArrayError> {
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.unexpected("a dimension bound"));
        }
        Ok(())
    }

    /// Parses `{...}` at nesting level `depth` (1 for the outermost braces).
    fn array<E>(
        &mut self,
        depth: usize,
        element: &mut impl FnMut(Option<&str>) -> Result<Value, E>,
    ) -> Result<Value, E>
    where
        E: From<ArrayError>,
    {
        if depth > MAX_DIMENSIONS {
            return Err(ArrayError::TooDeep { offset: self.pos }.into());
        }
        self.expect(b'{', "`{`")?;
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_space();
            let item = if self.peek() == Some(b'{') {
                self.array(depth + 1, element)?
            } else {
                let text = self.element()?;
                element(text.as_deref())?
            };
            items.push(item);
            self.skip_space();
            match self.peek() {
                Some(b) if b == self.delimiter => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.unexpected("a delimiter or `}`").into()),
            }
        }
    }

    /// Parses one element: `None` for an unquoted `NULL`.
    fn element(&mut self) -> Result<Option<String>, ArrayError> {
        if self.peek() == Some(b'"') {
            self.pos += 1;
            return self.quoted().map(Some);
        }

        // Unquoted: up to the delimiter or `}`, trailing unescaped space dropped.
        let mut value = String::new();
        let mut kept = 0;
        let mut escaped = false;
        loop {
            match self.peek() {
                Some(b) if b == self.delimiter || b == b'}' => break,
                Some(b'{' | b'"') | None => return Err(self.unexpected("an element")),
                Some(b'\\') => {
                    self.pos += 1;
                    let c =
                        self.next_char().ok_or_else(|| self.unexpected("an escaped character"))?;
                    value.push(c);
                    kept = value.len();
                    escaped = true;
                }
                Some(b) => {
                    let c = self.next_char().ok_or_else(|| self.unexpected("an element"))?;
                    value.push(c);
                    if !is_space(b) {
                        kept = value.len();
                    }
                }
            }
        }
        value.truncate(kept);
        if value.is_empty() && !escaped {
            return Err(self.unexpected("an element"));
        }
        if !escaped && value.eq_ignore_ascii_case("NULL") {
            return Ok(None);
        }
        Ok(Some(value))
    }

    /// Parses the rest of a quoted element, after its opening quote.
    fn quoted(&mut self) -> Result<String, ArrayError> {
        let mut value = String::new();
        loop {
            match self.next_char() {
                Some('"') => return Ok(value),
                Some('\\') => {
                    let c =
                        self.next_char().ok_or_else(|| self.unexpected("an escaped character"))?;
                    value.push(c);
                }
                Some(c) => value.push(c),
                None => return Err(self.unexpected("`\"` closing a quoted element")),
            }
        }
    }
}

/// Quotes one element as PostgreSQL's `array_out` does with a `,` delimiter:
/// quoted when empty, `NULL` in any case, or holding a quote, backslash,
/// brace, comma or whitespace, with `"` and `\` escaped. The inverse of the
/// parser above, for the property tests that render arrays and read them back.
#[cfg(test)]
pub(super) fn render_element(text: &str, out: &mut String) {
    let special = |b: u8| matches!(b, b'"' | b'\\' | b'{' | b'}' | b',') || is_space(b);
    if !text.is_empty() && !text.eq_ignore_ascii_case("NULL") && !text.bytes().any(special) {
        out.push_str(text);
        return;
    }
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::properties::{Tree, array, text_element};
    use proptest::prelude::*;
    use serde_json::json;

    /// Parses with text elements, as for `text[]`.
    fn parse(text: &str) -> Result<Value, ArrayError> {
        parse_array(text, b',', |e| Ok(e.map_or(Value::Null, |s| Value::String(s.to_owned()))))
    }

    #[test]
    fn empty_array_is_empty_json_array() {
        assert_eq!(parse("{}"), Ok(json!([])));
    }

    #[test]
    fn unquoted_elements_are_strings() {
        assert_eq!(parse("{a,b1,ünï,a'b,NULLx}"), Ok(json!(["a", "b1", "ünï", "a'b", "NULLx"])));
    }

    #[test]
    fn unquoted_null_in_any_case_is_null() {
        assert_eq!(parse("{NULL,null,Null,a}"), Ok(json!([null, null, null, "a"])));
    }

    #[test]
    fn quoted_null_is_the_string() {
        assert_eq!(parse(r#"{"NULL","null",NULL}"#), Ok(json!(["NULL", "null", null])));
    }

    #[test]
    fn quoted_elements_keep_delimiters_braces_and_spaces() {
        // As PostgreSQL 15 prints ARRAY['a,b','{g}','h i','x}',' lead','',E'\v']::text.
        let text = "{\"a,b\",\"{g}\",\"h i\",\"x}\",\" lead\",\"\",\"\u{b}\"}";
        assert_eq!(parse(text), Ok(json!(["a,b", "{g}", "h i", "x}", " lead", "", "\u{b}"])));
    }

    #[test]
    fn quoted_elements_unescape_quotes_and_backslashes() {
        assert_eq!(
            parse(r#"{"c\"d","e\\f","\\","\"\""}"#),
            Ok(json!(["c\"d", "e\\f", "\\", "\"\""]))
        );
    }

    #[test]
    fn unquoted_elements_accept_escapes_and_surrounding_space() {
        assert_eq!(parse(r"{ a\,b , c\  ,\NULL,  d e }"), Ok(json!(["a,b", "c ", "NULL", "d e"])));
    }

    #[test]
    fn nested_arrays_become_nested_json_arrays() {
        assert_eq!(parse(r#"{{a,b},{"c d",NULL}}"#), Ok(json!([["a", "b"], ["c d", null]])));
        assert_eq!(parse("{{{1},{2}},{{3},{4}}}"), Ok(json!([[["1"], ["2"]], [["3"], ["4"]]])));
    }

    #[test]
    fn dimension_decoration_is_skipped() {
        assert_eq!(parse("[0:1]={1,2}"), Ok(json!(["1", "2"])));
        assert_eq!(parse("[-2:-1][1:2]={{1,2},{3,4}}"), Ok(json!([["1", "2"], ["3", "4"]])));
        assert_eq!(parse("[2]={1,2}"), Ok(json!(["1", "2"])));
    }

    #[test]
    fn semicolon_delimiter_splits_box_arrays() {
        let text = "{(1,1),(0,0);(3,3),(2,2)}";
        let parsed = parse_array(text, b';', |e: Option<&str>| {
            Ok::<_, ArrayError>(Value::String(e.unwrap_or_default().to_owned()))
        });
        assert_eq!(parsed, Ok(json!(["(1,1),(0,0)", "(3,3),(2,2)"])));
    }

    #[test]
    fn malformed_literals_are_errors_with_offsets() {
        let cases = [
            ("", ArrayError::UnexpectedEnd { expected: "`{`" }),
            ("abc", ArrayError::Unexpected { expected: "`{`", offset: 0 }),
            ("{a", ArrayError::UnexpectedEnd { expected: "an element" }),
            ("{a,,b}", ArrayError::Unexpected { expected: "an element", offset: 3 }),
            ("{a}x", ArrayError::Unexpected { expected: "the end of the array", offset: 3 }),
            ("{\"a}", ArrayError::UnexpectedEnd { expected: "`\"` closing a quoted element" }),
            ("{\"a\"b}", ArrayError::Unexpected { expected: "a delimiter or `}`", offset: 4 }),
            ("{a\\", ArrayError::UnexpectedEnd { expected: "an escaped character" }),
            (
                "[0:1]{1}",
                ArrayError::Unexpected { expected: "`=` after the dimensions", offset: 5 },
            ),
            ("[x]={1}", ArrayError::Unexpected { expected: "a dimension bound", offset: 1 }),
            ("{{{{{{{1}}}}}}}", ArrayError::TooDeep { offset: 6 }),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn six_dimensions_are_allowed() {
        assert_eq!(parse("{{{{{{1}}}}}}"), Ok(json!([[[[[["1"]]]]]])));
    }

    #[test]
    fn element_errors_stop_the_parse() {
        let parsed = parse_array("{1,x}", b',', |e| match e {
            Some("x") => Err(ArrayError::Unexpected { expected: "a digit", offset: 0 }),
            _ => Ok(Value::Null),
        });
        assert_eq!(parsed, Err(ArrayError::Unexpected { expected: "a digit", offset: 0 }));
    }

    /// How many dimensions a generated array has; the empty array has one.
    fn depth(tree: &Tree) -> usize {
        match tree {
            Tree::List(items) => 1 + items.first().map_or(0, depth),
            Tree::Leaf(..) => 0,
        }
    }

    proptest! {
        #[test]
        fn rendered_arrays_parse_back_to_the_same_values(
            tree in array(text_element()),
            bounds in prop::collection::vec((-5..5i32, 0..5i32), 4),
            decorate in any::<bool>(),
        ) {
            let mut text = String::new();
            if decorate {
                for &(lower, length) in bounds.iter().take(depth(&tree)) {
                    text.push_str(&format!("[{lower}:{}]", lower + length));
                }
                text.push('=');
            }
            tree.render(&mut text);
            prop_assert_eq!(parse(&text), Ok(tree.expected()), "literal: {}", text);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[{}\",\\\\ NUL\\[\\]:=0-9a\u{b}é]{0,24}") {
            let _ = parse(&text);
        }
    }
}
