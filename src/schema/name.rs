//! Table and column names as schema files write them.
//!
//! A name is a dot-separated list of identifiers spelled as in SQL: an unquoted
//! identifier is lowercase letters, digits, `_` and `$` and does not start with
//! a digit or `$`; any other identifier, one with an uppercase letter, a dot or a
//! space for instance, is written in double quotes, with `""` for a quote inside:
//! `x-table: '"Sales"."Order Items"'` (the single quotes are YAML's, so that the
//! double quotes reach us). PostgreSQL would fold an unquoted `Orders` to
//! `orders`; we reject it instead, since the author more likely meant the quoted
//! name and a silent fold would check the wrong table or none.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A name that is not a valid dotted list of identifiers, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct NameError(String);

/// A table's name with its schema, such as `public.orders`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QualifiedName {
    /// The PostgreSQL schema (namespace), such as `public`.
    pub schema: String,
    /// The table name within that schema.
    pub name: String,
}

impl QualifiedName {
    /// Builds a name from its two identifiers, as PostgreSQL stores them.
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        QualifiedName { schema: schema.into(), name: name.into() }
    }

    /// The name as SQL text, each identifier double-quoted with inner quotes
    /// doubled (`"Sales"."Order Items"`), for statements and `to_regclass`.
    pub fn quoted(&self) -> String {
        let quote = |identifier: &str| format!("\"{}\"", identifier.replace('"', "\"\""));
        format!("{}.{}", quote(&self.schema), quote(&self.name))
    }

    /// The name as a schema file writes it, quoting only the identifiers that
    /// need it, so that it parses back to the same name.
    pub fn written(&self) -> String {
        format!("{}.{}", written_identifier(&self.schema), written_identifier(&self.name))
    }
}

impl ColumnRef {
    /// The reference as a schema file writes it (see [`QualifiedName::written`]).
    pub fn written(&self) -> String {
        format!("{}.{}", self.table.written(), written_identifier(&self.column))
    }
}

/// An identifier bare when it parses back unchanged, else double-quoted.
fn written_identifier(identifier: &str) -> String {
    if check_unquoted(identifier, identifier).is_ok() {
        identifier.to_owned()
    } else {
        format!("\"{}\"", identifier.replace('"', "\"\""))
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

impl FromStr for QualifiedName {
    type Err = NameError;

    /// Parses `schema.table`; the schema is required.
    fn from_str(text: &str) -> Result<Self, NameError> {
        match <[String; 2]>::try_from(identifiers(text)?) {
            Ok([schema, name]) => Ok(QualifiedName { schema, name }),
            Err(_) => Err(NameError(format!(
                "`{text}` is not a table name of the form schema.table, such as public.orders"
            ))),
        }
    }
}

/// A column of another table, the target of an `x-references` keyword.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnRef {
    /// The table that holds the column.
    pub table: QualifiedName,
    /// The column name.
    pub column: String,
}

impl fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.table, self.column)
    }
}

impl FromStr for ColumnRef {
    type Err = NameError;

    /// Parses `schema.table.column`.
    fn from_str(text: &str) -> Result<Self, NameError> {
        match <[String; 3]>::try_from(identifiers(text)?) {
            Ok([schema, name, column]) => {
                Ok(ColumnRef { table: QualifiedName { schema, name }, column })
            }
            Err(_) => Err(NameError(format!(
                "`{text}` is not a column of the form schema.table.column, \
                 such as public.accounts.id"
            ))),
        }
    }
}

/// Splits `text` at the dots that are outside double quotes and unquotes each
/// identifier.
fn identifiers(text: &str) -> Result<Vec<String>, NameError> {
    let mut parts = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err(NameError(format!("`{text}` has an unclosed quote"))),
                }
            }
            if part.is_empty() {
                return Err(NameError(format!("`{text}` has an empty quoted identifier")));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.push(c);
                chars.next();
            }
            check_unquoted(text, &part)?;
        }
        parts.push(part);
        match chars.next() {
            None => return Ok(parts),
            Some('.') => {}
            Some(c) => {
                return Err(NameError(format!(
                    "`{text}` has `{c}` after a quoted identifier where a dot or the end belongs"
                )));
            }
        }
    }
}

/// Accepts the identifiers PostgreSQL takes unquoted and leaves unchanged.
fn check_unquoted(text: &str, part: &str) -> Result<(), NameError> {
    let mut chars = part.chars();
    let valid_start = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
    let valid_rest = chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$');
    if part.is_empty() {
        Err(NameError(format!("`{text}` has an empty identifier")))
    } else if part.chars().any(char::is_uppercase) {
        Err(NameError(format!(
            "`{text}`: write `{part}` in double quotes (\"{part}\") for a mixed-case name, \
             or in lowercase"
        )))
    } else if !valid_start || !valid_rest {
        Err(NameError(format!("`{text}`: write `{part}` in double quotes (\"{part}\")")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_name_splits_at_the_dot() {
        let name: QualifiedName = "public.orders".parse().unwrap();
        assert_eq!(name, QualifiedName::new("public", "orders"));
        assert_eq!(name.to_string(), "public.orders");
    }

    #[test]
    fn quoted_identifiers_keep_case_dots_spaces_and_quotes() {
        let name: QualifiedName = r#""Sales"."Order Items""#.parse().unwrap();
        assert_eq!(name, QualifiedName::new("Sales", "Order Items"));
        let name: QualifiedName = r#"public."a.b""c""#.parse().unwrap();
        assert_eq!(name, QualifiedName::new("public", r#"a.b"c"#));
    }

    #[test]
    fn quoted_form_is_valid_sql_and_parses_back() {
        let name = QualifiedName::new("Sales", r#"Order "Items""#);
        assert_eq!(name.quoted(), r#""Sales"."Order ""Items""""#);
        assert_eq!(name.quoted().parse::<QualifiedName>(), Ok(name));
    }

    #[test]
    fn written_form_quotes_only_what_needs_it_and_parses_back() {
        let name = QualifiedName::new("public", "Order Items");
        assert_eq!(name.written(), r#"public."Order Items""#);
        assert_eq!(name.written().parse::<QualifiedName>(), Ok(name));
        let target = ColumnRef { table: QualifiedName::new("s", "t"), column: "Id".into() };
        assert_eq!(target.written(), r#"s.t."Id""#);
        assert_eq!(target.written().parse::<ColumnRef>(), Ok(target));
    }

    #[test]
    fn unqualified_or_overqualified_table_is_rejected() {
        assert!("orders".parse::<QualifiedName>().is_err());
        assert!("db.public.orders".parse::<QualifiedName>().is_err());
    }

    #[test]
    fn unquoted_uppercase_asks_for_quotes() {
        let err = "public.Orders".parse::<QualifiedName>().unwrap_err();
        assert!(err.to_string().contains("\"Orders\""), "{err}");
    }

    #[test]
    fn malformed_names_are_rejected() {
        for text in ["", ".orders", "public.", r#"public."orders"#, r#"public."""#, "a b.c"] {
            assert!(text.parse::<QualifiedName>().is_err(), "{text}");
        }
        assert!(r#""a"x.b"#.parse::<QualifiedName>().is_err());
    }

    #[test]
    fn column_reference_has_three_parts() {
        let target: ColumnRef = "public.accounts.id".parse().unwrap();
        assert_eq!(target.table, QualifiedName::new("public", "accounts"));
        assert_eq!(target.column, "id");
        assert_eq!(target.to_string(), "public.accounts.id");
        assert!("accounts.id".parse::<ColumnRef>().is_err());
    }
}
