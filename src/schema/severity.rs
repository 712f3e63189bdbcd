//! How serious a violation is, and the per-table policy for columns a schema
//! does not list.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How serious a violation is; webhooks filter on it (`min_severity`).
///
/// Ordered from least to most serious, so `severity >= Severity::Error` reads
/// as "error or worse".
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, nothing to fix.
    Info,
    /// Suspicious, probably to fix.
    Warn,
    /// Wrong data; the default for a schema file.
    #[default]
    Error,
    /// Wrong data that someone must look at now.
    Critical,
}

impl Severity {
    /// Every severity, least serious first.
    pub const ALL: [Severity; 4] =
        [Severity::Info, Severity::Warn, Severity::Error, Severity::Critical];

    /// The name used in schema files, the violations table and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of `info`, `warn`, `error`, `critical`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown severity `{0}`: expected info, warn, error or critical")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(text: &str) -> Result<Self, UnknownSeverity> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str() == text)
            .ok_or_else(|| UnknownSeverity(text.to_owned()))
    }
}

/// What to do about a column that the table has and its schema file does not
/// list under `properties` (`x-on-unknown-columns`).
///
/// This is a property of the table, not of a row: the relation drift check
/// applies it once per relation message. Row validation never reports such a
/// column on its own; a schema that wants every row flagged says
/// `additionalProperties: false`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownColumns {
    /// Accept it silently (`ignore`, the default).
    #[default]
    Ignore,
    /// Report it as schema drift with this severity (`info`, `warn`, `error`,
    /// `critical`).
    Report(Severity),
}

impl FromStr for UnknownColumns {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "ignore" {
            return Ok(UnknownColumns::Ignore);
        }
        text.parse().map(UnknownColumns::Report).map_err(|_| {
            format!("unknown value `{text}`: expected ignore, info, warn, error or critical")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_from_info_to_critical() {
        assert!(Severity::Info < Severity::Warn);
        assert!(Severity::Warn < Severity::Error);
        assert!(Severity::Error < Severity::Critical);
        assert_eq!(Severity::default(), Severity::Error);
    }

    #[test]
    fn severity_names_round_trip_through_str_and_serde() {
        for severity in Severity::ALL {
            assert_eq!(severity.as_str().parse::<Severity>(), Ok(severity));
            let json = serde_json::to_string(&severity).unwrap();
            assert_eq!(json, format!("\"{}\"", severity.as_str()));
            assert_eq!(serde_json::from_str::<Severity>(&json).unwrap(), severity);
        }
        assert!("fatal".parse::<Severity>().is_err());
        assert!("Error".parse::<Severity>().is_err());
    }

    #[test]
    fn unknown_columns_policy_is_ignore_or_a_severity() {
        assert_eq!("ignore".parse(), Ok(UnknownColumns::Ignore));
        assert_eq!("warn".parse(), Ok(UnknownColumns::Report(Severity::Warn)));
        assert!("drop".parse::<UnknownColumns>().is_err());
    }
}
