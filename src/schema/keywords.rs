//! Where each of our `x-` keywords may appear.
//!
//! The walk follows the places JSON Schema puts subschemas (`properties`,
//! `items`, `allOf`, `$defs`, ...) and skips data (`enum`, `const`, `default`,
//! `examples`) and the values of our own keywords, so that a column named
//! `x-foo` or an enum value `x-large` is not mistaken for a keyword.

/// Our keywords allowed at the top of a file.
const TOP: [&str; 5] = ["x-table", "x-severity", "x-rules", "x-monitors", "x-on-unknown-columns"];

/// Our keywords allowed on a column, a property directly under the top-level
/// `properties`.
const COLUMN: [&str; 3] = ["x-pii", "x-references", "x-severity"];

/// Keywords whose value is a map of names to subschemas.
const SCHEMA_MAPS: [&str; 5] =
    ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];

/// Keywords whose value is a subschema, or for `items` in old drafts a list.
const SCHEMAS: [&str; 12] = [
    "items",
    "additionalItems",
    "additionalProperties",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "contentSchema",
];

/// Keywords whose value is a list of subschemas.
const SCHEMA_LISTS: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];

/// Where a subschema sits, which decides the `x-` keywords it may carry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Top,
    Column,
    Nested,
}

/// An `x-` keyword that is unknown or out of place: its JSON pointer and why.
pub(super) struct Misplaced {
    pub(super) pointer: String,
    pub(super) message: String,
}

/// Checks every `x-` keyword in the document against where it sits, and
/// returns each one that is unknown or out of place, in document order.
pub(super) fn check(document: &serde_json::Value) -> Vec<Misplaced> {
    let mut misplaced = Vec::new();
    walk(document, &mut String::new(), Place::Top, &mut misplaced);
    misplaced
}

fn walk(
    schema: &serde_json::Value,
    pointer: &mut String,
    place: Place,
    misplaced: &mut Vec<Misplaced>,
) {
    let Some(keywords) = schema.as_object() else {
        return;
    };
    for (keyword, value) in keywords {
        let length = pointer.len();
        push_segment(pointer, keyword);
        if keyword.starts_with("x-") {
            if let Err(message) = check_keyword(keyword, place) {
                misplaced.push(Misplaced { pointer: pointer.clone(), message });
            }
        } else if SCHEMA_MAPS.contains(&keyword.as_str()) {
            let inner = if place == Place::Top && keyword == "properties" {
                Place::Column
            } else {
                Place::Nested
            };
            for (name, subschema) in value.as_object().into_iter().flatten() {
                let length = pointer.len();
                push_segment(pointer, name);
                walk(subschema, pointer, inner, misplaced);
                pointer.truncate(length);
            }
        } else if SCHEMAS.contains(&keyword.as_str()) && !value.is_array() {
            walk(value, pointer, Place::Nested, misplaced);
        } else if SCHEMA_LISTS.contains(&keyword.as_str()) || SCHEMAS.contains(&keyword.as_str()) {
            for (index, subschema) in value.as_array().into_iter().flatten().enumerate() {
                let length = pointer.len();
                pointer.push('/');
                pointer.push_str(&index.to_string());
                walk(subschema, pointer, Place::Nested, misplaced);
                pointer.truncate(length);
            }
        }
        pointer.truncate(length);
    }
}

/// Whether `keyword` may appear at `place`, and if not, what to do instead.
fn check_keyword(keyword: &str, place: Place) -> Result<(), String> {
    let allowed = match place {
        Place::Top => TOP.contains(&keyword),
        Place::Column => COLUMN.contains(&keyword),
        Place::Nested => false,
    };
    if allowed {
        Ok(())
    } else if keyword == "x-severity" {
        Err("x-severity belongs at the top of the file or on a column".to_owned())
    } else if COLUMN.contains(&keyword) {
        Err(format!(
            "{keyword} applies to a column: put it on a property directly under the top-level \
             properties"
        ))
    } else if TOP.contains(&keyword) {
        Err(format!("{keyword} belongs at the top of the file"))
    } else {
        Err(format!(
            "unknown keyword {keyword}: walguard knows {} at the top of the file and {} on a \
             column",
            TOP.join(", "),
            COLUMN.join(", ")
        ))
    }
}

/// Appends `/name` to a JSON pointer, escaping `~` and `/` (RFC 6901).
pub(super) fn push_segment(pointer: &mut String, name: &str) {
    pointer.push('/');
    for c in name.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}
