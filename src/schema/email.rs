//! `format: email`, with a quick answer for the addresses most rows hold.
//!
//! jsonschema checks an address with a full RFC 5321 parser (quoted local
//! parts, domain literals, display names, punycode labels), which costs more
//! than all the other keywords of a typical row together. Most addresses are
//! plain: letters, digits and `._+-` before the `@`, and a host name of
//! letters, digits and hyphens after it. Those are accepted here at once.
//! Every other text, and every invalid one, is passed to jsonschema's own
//! check, whose verdict stands: the quick answer only ever says yes where
//! jsonschema says yes too, and a property test holds it to that.

use std::sync::LazyLock;

use jsonschema::{Draft, Validator};
use serde_json::{Value, json};

/// The longest local part (before the `@`) RFC 5321 allows, in bytes.
const MAX_LOCAL_PART: usize = 64;
/// The longest host name, in bytes.
const MAX_DOMAIN: usize = 253;
/// The longest label of a host name, in bytes.
const MAX_LABEL: usize = 63;

/// Whether `text` is an email address as jsonschema's `format: email` has it.
pub(super) fn is_email(text: &str) -> bool {
    is_plain_address(text) || is_email_by_jsonschema(text)
}

/// Whether `text` is a plain address: `local@domain`, the local part dot-
/// separated runs of letters, digits and `_+-`, the domain at least two
/// labels of a host name.
fn is_plain_address(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let (local, domain) = (local.as_bytes(), domain.as_bytes());
    let dot = |byte: &u8| *byte == b'.';
    local.len() <= MAX_LOCAL_PART
        && local.split(dot).all(is_plain_atom)
        && domain.len() <= MAX_DOMAIN
        && domain.contains(&b'.')
        && domain.split(dot).all(is_plain_label)
}

/// A dot-free part of a plain local part: letters, digits and `_+-`.
fn is_plain_atom(atom: &[u8]) -> bool {
    !atom.is_empty()
        && atom
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'+' | b'-'))
}

/// A label of a host name that needs no punycode check: 1 to 63 letters,
/// digits and hyphens, a letter or digit at each end, and no `--` in third
/// and fourth place (which marks an encoded international label).
fn is_plain_label(label: &[u8]) -> bool {
    let (Some(first), Some(last)) = (label.first(), label.last()) else {
        return false;
    };
    label.len() <= MAX_LABEL
        && first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && label.iter().all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-')
        && label.get(2..4) != Some(b"--")
}

/// jsonschema's own verdict on `text`.
fn is_email_by_jsonschema(text: &str) -> bool {
    static BUILTIN: LazyLock<Option<Validator>> = LazyLock::new(|| {
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .should_validate_formats(true)
            .build(&json!({"format": "email"}))
            .ok()
    });
    // The schema is a constant that compiles; were it ever not to, every
    // non-plain address would fail rather than pass unchecked.
    BUILTIN.as_ref().is_some_and(|validator| validator.is_valid(&Value::from(text)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn plain_addresses_pass_at_once() {
        for text in ["customer42@example.com", "a.b+c_d-e@mail-1.example.co", "x@y.z"] {
            assert!(is_plain_address(text), "{text}");
            assert!(is_email_by_jsonschema(text), "{text}");
        }
    }

    #[test]
    fn other_valid_addresses_pass_through_jsonschema() {
        for text in ["\"quoted name\"@example.com", "user@[127.0.0.1]", "o'brien@example.com"] {
            assert!(!is_plain_address(text), "{text}");
            assert!(is_email(text), "{text}");
        }
    }

    #[test]
    fn invalid_addresses_fail() {
        let long_local = format!("{}@example.com", "a".repeat(MAX_LOCAL_PART + 1));
        let long_label = format!("a@{}.com", "b".repeat(MAX_LABEL + 1));
        let invalid = [
            "",
            "plain",
            "@example.com",
            "a@",
            "a..b@example.com",
            ".a@example.com",
            "a@-example.com",
            "a@example-.com",
            "a@exa_mple.com",
            "a@example..com",
            "a@example.com.",
            "a@ab--cd.com",
            &long_local,
            &long_label,
        ];
        for text in invalid {
            assert!(!is_email(text), "{text:?}");
        }
    }

    /// Texts near the plain form: a mix of the characters it allows and
    /// those it does not, with lengths around its limits.
    fn address() -> impl Strategy<Value = String> {
        let local =
            prop_oneof!["[a-zA-Z0-9._+\\-'\"é ]{0,12}", "[a-z0-9._+\\-]{0,12}", "[a-z0-9]{62,66}"];
        let label = prop_oneof![
            "[a-zA-Z0-9\\-]{0,5}",
            "[a-z0-9]{60,66}",
            "xn--[a-z0-9\\-]{0,8}",
            "[a-z]{2}--[a-z]{0,3}",
            "[a-zA-Z0-9_\\-\\[\\]é]{0,4}",
        ];
        let domain = prop::collection::vec(label, 0..5).prop_map(|labels| labels.join("."));
        let long = prop::collection::vec("[a-z]{61,63}", 4).prop_map(|labels| labels.join("."));
        let domain = prop_oneof![domain, long];
        (local, prop::sample::select(vec!["@", "@@", ""]), domain)
            .prop_map(|(local, at, domain)| format!("{local}{at}{domain}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn the_quick_answer_never_accepts_what_jsonschema_rejects(text in address()) {
            if is_plain_address(&text) {
                prop_assert!(is_email_by_jsonschema(&text), "{:?}", text);
            }
        }
    }
}
