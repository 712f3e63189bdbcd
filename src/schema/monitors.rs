//! `x-monitors`: the checks that watch a table's inserts over time rather than
//! each row, read once at load into typed settings.
//!
//! ```yaml
//! x-monitors:
//!   freshness: 15m                # an insert at least every 15 minutes
//!   volume: {min: 100, per: 1h}   # at least 100 inserts in every hour
//! ```

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::SchemaError;

/// A table's monitors; both are off unless the file sets them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Monitors {
    /// The longest time allowed without an insert.
    pub freshness: Option<Duration>,
    /// The fewest inserts allowed in each window.
    pub volume: Option<Volume>,
}

impl Monitors {
    /// Whether any monitor is set.
    pub fn is_empty(&self) -> bool {
        self.freshness.is_none() && self.volume.is_none()
    }
}

/// `volume: {min: N, per: <duration>}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Volume {
    /// The fewest inserts expected per window.
    pub min: u64,
    /// The window's length.
    pub per: Duration,
}

/// Reads the `x-monitors` mapping, pushing one problem per malformed entry.
pub(super) fn read(path: &Path, value: &Value, problems: &mut Vec<SchemaError>) -> Monitors {
    let Value::Object(entries) = value else {
        let message = "x-monitors must be a mapping, such as {freshness: 15m}";
        problems.push(SchemaError::invalid(path, "/x-monitors", message));
        return Monitors::default();
    };
    let mut monitors = Monitors::default();
    for (name, entry) in entries {
        let pointer = format!("/x-monitors/{name}");
        match name.as_str() {
            "freshness" => match duration(entry) {
                Some(window) => monitors.freshness = Some(window),
                None => {
                    let message = "freshness must be a positive duration such as 30s, 15m or 2h";
                    problems.push(SchemaError::invalid(path, &pointer, message));
                }
            },
            "volume" => match volume(entry) {
                Ok(volume) => monitors.volume = Some(volume),
                Err(message) => problems.push(SchemaError::invalid(path, &pointer, message)),
            },
            _ => {
                let message =
                    format!("unknown monitor {name}: walguard knows freshness and volume");
                problems.push(SchemaError::invalid(path, &pointer, message));
            }
        }
    }
    monitors
}

/// A positive duration written as humantime text (`90s`, `15m`, `1h 30m`).
fn duration(value: &Value) -> Option<Duration> {
    let text = value.as_str()?;
    humantime::parse_duration(text).ok().filter(|duration| !duration.is_zero())
}

fn volume(value: &Value) -> Result<Volume, String> {
    let usage = "volume must be a mapping such as {min: 100, per: 1h}";
    let Value::Object(fields) = value else {
        return Err(usage.to_owned());
    };
    if let Some(key) = fields.keys().find(|key| !matches!(key.as_str(), "min" | "per")) {
        return Err(format!("volume has no option {key}: expected min and per"));
    }
    let min = fields.get("min").and_then(Value::as_u64).filter(|min| *min > 0);
    let per = fields.get("per").and_then(duration);
    match (min, per) {
        (Some(min), Some(per)) => Ok(Volume { min, per }),
        (None, _) => Err("volume.min must be a whole number of rows above 0".to_owned()),
        (_, None) => Err("volume.per must be a positive duration such as 1h".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> (Monitors, Vec<String>) {
        let value: Value = serde_saphyr::from_str(yaml).unwrap();
        let mut problems = Vec::new();
        let monitors = read(Path::new("t.yaml"), &value, &mut problems);
        (monitors, problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn freshness_and_volume_are_read() {
        let (monitors, problems) = parse("{freshness: 15m, volume: {min: 10, per: 1h}}");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(monitors.freshness, Some(Duration::from_secs(900)));
        assert_eq!(monitors.volume, Some(Volume { min: 10, per: Duration::from_secs(3600) }));
    }

    #[test]
    fn every_malformed_entry_is_reported() {
        let (monitors, problems) =
            parse("{freshness: soon, volume: {min: 0, per: 1h}, staleness: 1m}");
        assert!(monitors.is_empty());
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("/x-monitors/freshness: freshness must be"));
        assert!(problems[1].contains("/x-monitors/volume: volume.min must be"));
        assert!(problems[2].contains("/x-monitors/staleness: unknown monitor staleness"));
    }
}
