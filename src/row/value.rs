//! Conversion of one text value into JSON, by the column's [`ValueKind`].
//!
//! Numbers keep the exact digits PostgreSQL sent: serde_json is built with
//! `arbitrary_precision`, so a `Number` parsed from text holds that text, and a
//! 40-digit numeric or an int8 at its limits never passes through a float. The
//! special values `NaN`, `Infinity` and `-Infinity` (numeric since PostgreSQL 14,
//! float4 and float8 always) have no JSON number and stay strings, so that a
//! schema's `type: number` flags them.
//!
//! json and jsonb are parsed by serde_json, which keeps key order and exact
//! numbers (writing exponents as `e+`: `1e400` reads back as `1e+400`), lets a
//! repeated key's last value win as jsonb does, and refuses nesting deeper than
//! 128 levels, which PostgreSQL allows: such a document is reported as invalid.

use std::str::FromStr;

use serde_json::{Number, Value};

use super::array::{ArrayError, parse_array};
use super::kind::{ScalarKind, ValueKind};
use super::values::Held;

/// Why a column's value could not be turned into JSON. Messages never quote the
/// value, so that row values stay out of the logs.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("value is not valid utf-8")]
    Utf8(#[source] std::str::Utf8Error),
    #[error("value arrived in binary format, but walguard reads only text values")]
    Binary,
    #[error("value is not a number")]
    Number(#[source] serde_json::Error),
    #[error("value is neither `t` nor `f`")]
    Boolean,
    #[error("value is not valid json")]
    Json(#[source] serde_json::Error),
    #[error("value is not a valid array literal")]
    Array(#[from] ArrayError),
}

/// Holds a column's text value: texts and integers as they are, the rest
/// converted.
pub(super) fn text_to_held(kind: ValueKind, text: &str) -> Result<Held<'_>, ValueError> {
    match kind {
        ValueKind::Scalar(ScalarKind::Text) => Ok(Held::Text(text)),
        ValueKind::Scalar(ScalarKind::Number) => match canonical_integer(text) {
            Some(int) => Ok(Held::Int(int, text)),
            None => text_to_json(kind, text).map(Held::Value),
        },
        _ => text_to_json(kind, text).map(Held::Value),
    }
}

/// Converts a column's text value.
pub(crate) fn text_to_json(kind: ValueKind, text: &str) -> Result<Value, ValueError> {
    match kind {
        ValueKind::Scalar(scalar) => scalar_to_json(scalar, text),
        ValueKind::Array { element, delimiter } => {
            parse_array(text, delimiter, |item| element_to_json(element, item))
        }
        ValueKind::UserArray => {
            Ok(parse_array(text, b',', |item| element_to_json(ScalarKind::Text, item))
                .unwrap_or_else(|_| Value::String(text.to_owned())))
        }
    }
}

fn element_to_json(kind: ScalarKind, item: Option<&str>) -> Result<Value, ValueError> {
    match item {
        Some(text) => scalar_to_json(kind, text),
        None => Ok(Value::Null),
    }
}

fn scalar_to_json(kind: ScalarKind, text: &str) -> Result<Value, ValueError> {
    match kind {
        ScalarKind::Number if matches!(text, "NaN" | "Infinity" | "-Infinity") => {
            Ok(Value::String(text.to_owned()))
        }
        ScalarKind::Number => match canonical_integer(text) {
            Some(integer) => Ok(Value::Number(Number::from(integer))),
            None => Number::from_str(text).map(Value::Number).map_err(ValueError::Number),
        },
        ScalarKind::Boolean => match text {
            "t" => Ok(Value::Bool(true)),
            "f" => Ok(Value::Bool(false)),
            _ => Err(ValueError::Boolean),
        },
        ScalarKind::Json => serde_json::from_str(text).map_err(ValueError::Json),
        ScalarKind::Timestamptz => Ok(Value::String(timestamptz_to_rfc3339(text))),
        ScalarKind::Timestamp => Ok(Value::String(timestamp_to_rfc3339(text))),
        ScalarKind::Time => Ok(Value::String(time_to_rfc3339(text))),
        ScalarKind::Timetz => Ok(Value::String(timetz_to_rfc3339(text))),
        ScalarKind::Text => Ok(Value::String(text.to_owned())),
    }
}

/// The integer `text` writes in the one way `i64`'s own output would (no `+`,
/// no leading zero, no `-0`), so that the number built from it holds the same
/// digits as one parsed from the text, for less than a JSON parse costs.
fn canonical_integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = match digits.as_bytes() {
        [b'0'] => digits.len() == text.len(),
        [first, ..] => *first != b'0' && digits.bytes().all(|byte| byte.is_ascii_digit()),
        [] => false,
    };
    canonical.then(|| text.parse().ok()).flatten()
}

/// Rewrites PostgreSQL's ISO output (`2024-02-29 12:00:00.5+00`, the form the
/// pinned `DateStyle=ISO` gives) as RFC 3339 (`2024-02-29T12:00:00.5+00:00`).
/// Anything else (`infinity`, BC dates, years past 9999, offsets with seconds)
/// is kept as sent, and `format: date-time` reports it.
fn timestamptz_to_rfc3339(text: &str) -> String {
    let keep = || text.to_owned();
    if !text.is_ascii() || text.len() < 22 || text.as_bytes()[10] != b' ' || text.ends_with("BC") {
        return keep();
    }
    let (date, time_and_zone) = (&text[..10], &text[11..]);
    let Some(sign) = time_and_zone.rfind(['+', '-']) else {
        return keep();
    };
    let (time, zone) = time_and_zone.split_at(sign);
    if zone.len() != 3 && zone.len() != 6 {
        return keep();
    }
    // Pushed rather than formatted: this runs for every timestamptz value.
    let mut rfc3339 = String::with_capacity(text.len() + 3);
    rfc3339.push_str(date);
    rfc3339.push('T');
    rfc3339.push_str(time);
    rfc3339.push_str(zone);
    if zone.len() == 3 {
        rfc3339.push_str(":00");
    }
    rfc3339
}

/// Rewrites a `timestamp` in ISO output (`2024-02-29 12:00:00.5`) as RFC 3339
/// in UTC (`2024-02-29T12:00:00.5Z`); other forms are kept as sent.
fn timestamp_to_rfc3339(text: &str) -> String {
    let bytes = text.as_bytes();
    let iso = text.is_ascii()
        && bytes.len() >= 19
        && bytes[4] == b'-'
        && bytes[10] == b' '
        && bytes[13] == b':'
        && !text.ends_with("BC");
    if !iso {
        return text.to_owned();
    }
    format!("{}T{}Z", &text[..10], &text[11..])
}

/// Rewrites a `time` (`23:59:59.5`) as an RFC 3339 `full-time` in UTC.
fn time_to_rfc3339(text: &str) -> String {
    let bytes = text.as_bytes();
    if text.is_ascii() && bytes.len() >= 8 && bytes[2] == b':' && bytes[5] == b':' {
        format!("{text}Z")
    } else {
        text.to_owned()
    }
}

/// Rewrites a `timetz` (`12:00:00+05`, `12:00:00.5-03:30`) with a minutes
/// offset; an offset with seconds has no RFC 3339 form and is kept.
fn timetz_to_rfc3339(text: &str) -> String {
    let keep = || text.to_owned();
    if !text.is_ascii() || text.len() < 11 {
        return keep();
    }
    let Some(sign) = text.rfind(['+', '-']) else {
        return keep();
    };
    if text.len() - sign == 3 { format!("{text}:00") } else { keep() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const NUMBER: ValueKind = ValueKind::Scalar(ScalarKind::Number);
    const JSON: ValueKind = ValueKind::Scalar(ScalarKind::Json);

    fn array_of(element: ScalarKind) -> ValueKind {
        ValueKind::Array { element, delimiter: b',' }
    }

    /// The exact text of a JSON number, or a panic naming what came instead.
    fn number_text(value: Value) -> String {
        match value {
            Value::Number(n) => n.to_string(),
            other => panic!("expected a number, got {other:?}"),
        }
    }

    #[test]
    fn int8_limits_are_exact_numbers() {
        for text in ["-9223372036854775808", "9223372036854775807", "0", "-32768"] {
            assert_eq!(number_text(text_to_json(NUMBER, text).unwrap()), text);
        }
    }

    proptest! {
        #[test]
        fn integer_text_gives_the_number_a_json_parse_gives(
            text in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), "-?0*[0-9]{0,20}"],
        ) {
            let parsed = Number::from_str(&text).ok().map(Value::Number);
            prop_assert_eq!(text_to_json(NUMBER, &text).ok(), parsed);
        }
    }

    #[test]
    fn forty_digit_numeric_keeps_every_digit() {
        let text = "1234567890123456789012345678901234567890.0000000000000000000001";
        assert_eq!(number_text(text_to_json(NUMBER, text).unwrap()), text);
    }

    #[test]
    fn numeric_nan_and_infinities_stay_strings() {
        for text in ["NaN", "Infinity", "-Infinity"] {
            assert_eq!(text_to_json(NUMBER, text).unwrap(), json!(text));
        }
    }

    #[test]
    fn float_exponent_forms_are_numbers() {
        // As PostgreSQL 15 prints float8 values: shortest exact form.
        for text in ["1e+30", "1e-05", "-0", "1.2345678901234568e+17", "3.4028235e+38"] {
            assert_eq!(number_text(text_to_json(NUMBER, text).unwrap()), text);
        }
    }

    #[test]
    fn float_infinity_stays_a_string() {
        assert_eq!(text_to_json(NUMBER, "Infinity").unwrap(), json!("Infinity"));
        assert_eq!(text_to_json(NUMBER, "-Infinity").unwrap(), json!("-Infinity"));
    }

    #[test]
    fn number_that_is_not_json_is_an_error() {
        for text in ["", "abc", "1.", ".5", "+1", "01", "1 "] {
            assert!(matches!(text_to_json(NUMBER, text), Err(ValueError::Number(_))), "{text:?}");
        }
    }

    #[test]
    fn bool_is_true_or_false() {
        let kind = ValueKind::Scalar(ScalarKind::Boolean);
        assert_eq!(text_to_json(kind, "t").unwrap(), json!(true));
        assert_eq!(text_to_json(kind, "f").unwrap(), json!(false));
        assert!(matches!(text_to_json(kind, "true"), Err(ValueError::Boolean)));
    }

    #[test]
    fn jsonb_is_parsed_with_unicode_escapes_and_exact_numbers() {
        let text = r#"{"a": "\u00e9\u0041 \ud83d\ude00", "b": [1, 2.50, 1e400], "c": null}"#;
        let value = text_to_json(JSON, text).unwrap();
        assert_eq!(value["a"], json!("éA 😀"));
        assert_eq!(number_text(value["b"][1].clone()), "2.50");
        // serde_json writes exponents as `e+`; the digits are untouched.
        assert_eq!(number_text(value["b"][2].clone()), "1e+400");
        assert_eq!(value["c"], Value::Null);
    }

    #[test]
    fn json_keeps_key_order() {
        let value = text_to_json(JSON, r#"{"z": 1, "a": 2}"#).unwrap();
        assert_eq!(value.to_string(), r#"{"z":1,"a":2}"#);
    }

    #[test]
    fn unparseable_json_is_an_error() {
        assert!(matches!(text_to_json(JSON, r#"{"a": "#), Err(ValueError::Json(_))));
    }

    #[test]
    fn json_nested_deeper_than_serde_json_allows_is_an_error_not_a_panic() {
        let text = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(text_to_json(JSON, &text), Err(ValueError::Json(_))));
    }

    #[test]
    fn other_types_are_the_text_as_sent() {
        let kind = ValueKind::Scalar(ScalarKind::Text);
        for text in ["2024-01-01 10:00:00+00", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "", "$1.00"]
        {
            assert_eq!(text_to_json(kind, text).unwrap(), json!(text));
        }
    }

    #[test]
    fn numeric_arrays_map_elements_and_keep_nan_as_string() {
        let text = "{NaN,Infinity,-Infinity,1234567890123456789012345678901234567890.5,NULL}";
        let value = text_to_json(array_of(ScalarKind::Number), text).unwrap();
        assert_eq!(value[0], json!("NaN"));
        assert_eq!(value[2], json!("-Infinity"));
        assert_eq!(number_text(value[3].clone()), "1234567890123456789012345678901234567890.5");
        assert_eq!(value[4], Value::Null);
    }

    #[test]
    fn float_arrays_in_exponent_form_are_numbers() {
        let value = text_to_json(array_of(ScalarKind::Number), "{1e+30,NaN,1e-05}").unwrap();
        assert_eq!(value.to_string(), r#"[1e+30,"NaN",1e-05]"#);
    }

    #[test]
    fn bool_arrays_are_booleans_and_nulls() {
        let value = text_to_json(array_of(ScalarKind::Boolean), "{t,f,NULL}").unwrap();
        assert_eq!(value, json!([true, false, null]));
    }

    #[test]
    fn nested_int_arrays_are_nested_numbers() {
        let value = text_to_json(array_of(ScalarKind::Number), "[0:1][1:2]={{1,2},{3,NULL}}");
        assert_eq!(value.unwrap(), json!([[1, 2], [3, null]]));
    }

    #[test]
    fn jsonb_arrays_parse_each_quoted_element() {
        // As PostgreSQL 15 prints ARRAY['{"a": 1}', '"s,t"', 'null', '[1,"x y"]']::jsonb[].
        let text = r#"{"{\"a\": 1}","\"s,t\"","null","[1, \"x y\"]",NULL}"#;
        let value = text_to_json(array_of(ScalarKind::Json), text).unwrap();
        assert_eq!(value, json!([{"a": 1}, "s,t", null, [1, "x y"], null]));
    }

    #[test]
    fn invalid_element_in_json_array_is_an_error() {
        let text = r#"{"{\"a\": "}"#;
        assert!(matches!(text_to_json(array_of(ScalarKind::Json), text), Err(ValueError::Json(_))));
    }

    #[test]
    fn malformed_builtin_array_is_an_error() {
        let result = text_to_json(array_of(ScalarKind::Text), "{a,b");
        assert!(matches!(result, Err(ValueError::Array(_))));
    }

    #[test]
    fn user_array_elements_are_strings() {
        let value = text_to_json(ValueKind::UserArray, r#"{sad,happy,NULL,"{a}"}"#).unwrap();
        assert_eq!(value, json!(["sad", "happy", null, "{a}"]));
    }

    #[test]
    fn user_type_named_like_an_array_keeps_other_text_as_a_string() {
        assert_eq!(text_to_json(ValueKind::UserArray, "b").unwrap(), json!("b"));
    }

    proptest! {
        #[test]
        fn numeric_text_keeps_every_digit(
            negative in any::<bool>(),
            whole in "[1-9][0-9]{0,60}|0",
            fraction in proptest::option::of("[0-9]{1,40}"),
        ) {
            let sign = if negative { "-" } else { "" };
            let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
            let text = format!("{sign}{whole}{fraction}");
            prop_assert_eq!(number_text(text_to_json(NUMBER, &text).unwrap()), text);
        }

        #[test]
        fn int8_arrays_round_trip(values in prop::collection::vec(any::<Option<i64>>(), 0..8)) {
            let items: Vec<String> =
                values.iter().map(|v| v.map_or("NULL".to_owned(), |n| n.to_string())).collect();
            let text = format!("{{{}}}", items.join(","));
            let value = text_to_json(array_of(ScalarKind::Number), &text).unwrap();
            prop_assert_eq!(value, json!(values));
        }
    }

    #[test]
    fn timestamp_without_zone_becomes_rfc3339_in_utc_and_special_values_stay() {
        let kind = ValueKind::Scalar(ScalarKind::Timestamp);
        let convert = |text| text_to_json(kind, text).unwrap();
        assert_eq!(convert("2024-02-29 12:00:00"), Value::from("2024-02-29T12:00:00Z"));
        assert_eq!(convert("0001-01-01 00:00:00.5"), Value::from("0001-01-01T00:00:00.5Z"));
        for kept in ["infinity", "-infinity", "0044-03-15 12:00:00 BC", "12024-01-01 00:00:00"] {
            assert_eq!(convert(kept), Value::from(kept));
        }
    }

    #[test]
    fn times_become_rfc3339_full_times() {
        let time = |text| text_to_json(ValueKind::Scalar(ScalarKind::Time), text).unwrap();
        assert_eq!(time("23:59:59.999999"), Value::from("23:59:59.999999Z"));
        let timetz = |text| text_to_json(ValueKind::Scalar(ScalarKind::Timetz), text).unwrap();
        assert_eq!(timetz("12:00:00+05"), Value::from("12:00:00+05:00"));
        assert_eq!(timetz("12:00:00.25-03:30"), Value::from("12:00:00.25-03:30"));
        assert_eq!(timetz("12:00:00+05:30:15"), Value::from("12:00:00+05:30:15"));
    }

    #[test]
    fn timestamptz_becomes_rfc3339_and_special_values_stay() {
        let kind = ValueKind::Scalar(ScalarKind::Timestamptz);
        let convert = |text| text_to_json(kind, text).unwrap();
        assert_eq!(convert("2024-02-29 12:00:00+00"), Value::from("2024-02-29T12:00:00+00:00"));
        assert_eq!(
            convert("2024-02-29 12:00:00.5-03:30"),
            Value::from("2024-02-29T12:00:00.5-03:30")
        );
        assert_eq!(convert("infinity"), Value::from("infinity"));
        assert_eq!(convert("0044-03-15 12:00:00+00 BC"), Value::from("0044-03-15 12:00:00+00 BC"));
        assert_eq!(convert("12024-01-01 00:00:00+00"), Value::from("12024-01-01 00:00:00+00"));
    }
}
