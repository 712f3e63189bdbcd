//! Configuration: `walguard.toml`, overridden by `WALGUARD__SECTION__KEY`
//! environment variables and by command-line flags.
//!
//! The raw file is deserialised with unknown keys rejected, then resolved once
//! into [`Settings`], whose fields are typed and already checked. Nothing else
//! in walguard reads the raw configuration. Errors name the dotted key that is
//! wrong. Defaults are the named constants below.

mod connection;
mod secret;

pub use connection::{ConnectionSettings, SslMode};
pub use secret::Secret;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::schema::Severity;

/// Folder of schema files when the configuration names none.
pub const DEFAULT_SCHEMAS: &str = "schemas";
/// Replication slot name when the configuration names none.
pub const DEFAULT_SLOT: &str = "walguard";
/// Publication name when the configuration names none.
pub const DEFAULT_PUBLICATION: &str = "walguard";
/// Schema of walguard's own tables in the sink database.
pub const DEFAULT_SINK_SCHEMA: &str = "walguard";
/// A batch is written once it holds this many violations.
pub const DEFAULT_BATCH_MAX_VIOLATIONS: usize = 2_000;
/// A batch is written at the latest this long after its first pending commit.
pub const DEFAULT_BATCH_MAX_DELAY: Duration = Duration::from_millis(50);
/// How long one webhook request may take before it counts as failed.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long after a group's first alert further violations of the same table,
/// rule and column are folded into one summary.
pub const DEFAULT_GROUP_WINDOW: Duration = Duration::from_secs(60);
/// Requests one webhook endpoint may have in flight at once.
pub const DEFAULT_WEBHOOK_MAX_IN_FLIGHT: usize = 4;
/// Waits between attempts after the first, from the Standard Webhooks
/// recommendation (about 28 hours in all); after the last one a delivery is
/// marked dead.
pub const DEFAULT_RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// The largest single replication message accepted (one row change).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// Everything that can go wrong while reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read configuration {path}: {source}")]
    Read { path: PathBuf, source: config::ConfigError },
    #[error("invalid configuration key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

/// The checked configuration the rest of walguard runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    pub schemas: PathBuf,
    pub source: SourceSettings,
    pub sink: SinkSettings,
    pub webhooks: Vec<WebhookSettings>,
    pub admin: AdminSettings,
}

/// The database walguard watches.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub connection: ConnectionSettings,
    pub slot: String,
    pub publication: String,
    pub max_message_bytes: usize,
    /// Which transactions to validate by where they were first written.
    pub origins: Origins,
}

/// Which transactions `walguard run` validates, by origin. A transaction that
/// logical replication applied from another node carries that node's
/// replication origin; one written by a client on this server has none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origins {
    /// Every transaction, wherever it was first written (the default).
    #[default]
    All,
    /// Only transactions without a replication origin: rows replicated from
    /// another node are left to the walguard watching that node.
    Local,
}

/// The database that receives the violations (the source unless set).
#[derive(Debug, Clone)]
pub struct SinkSettings {
    pub connection: ConnectionSettings,
    pub schema: String,
    pub batch_max_violations: usize,
    pub batch_max_delay: Duration,
}

/// The payload shape a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Standard,
    Slack,
    Pagerduty,
}

/// One alert destination.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    pub format: WebhookFormat,
    /// The Standard Webhooks signing secret; requests are unsigned without it.
    pub secret: Option<Secret>,
    pub min_severity: Severity,
    /// Qualified names (`public.orders`) of the tables alerted on; all when
    /// `None`.
    pub tables: Option<Vec<String>>,
    pub timeout: Duration,
    pub group_window: Duration,
    /// Waits before the second, third, ... attempt; dead after the last.
    pub retry_schedule: Vec<Duration>,
    pub max_in_flight: usize,
    /// The PagerDuty integration key (`pagerduty` format only).
    pub routing_key: Option<Secret>,
}

impl WebhookSettings {
    /// Whether this webhook alerts on a violation of `severity` in the table.
    pub fn wants(&self, table_schema: &str, table_name: &str, severity: Severity) -> bool {
        severity >= self.min_severity
            && self.tables.as_ref().is_none_or(|tables| {
                tables.iter().any(|t| t.split_once('.') == Some((table_schema, table_name)))
            })
    }
}

/// The admin HTTP listener (metrics, health), off unless configured.
#[derive(Debug, Clone, Default)]
pub struct AdminSettings {
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    schemas: Option<PathBuf>,
    #[serde(default)]
    source: RawSource,
    #[serde(default)]
    sink: RawSink,
    #[serde(default)]
    webhooks: Vec<RawWebhook>,
    #[serde(default)]
    admin: RawAdmin,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    url: Option<String>,
    slot: Option<String>,
    publication: Option<String>,
    max_message_bytes: Option<usize>,
    origins: Option<Origins>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    url: Option<String>,
    schema: Option<String>,
    batch_max_violations: Option<usize>,
    batch_max_delay_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    format: Option<String>,
    secret: Option<String>,
    secret_env: Option<String>,
    min_severity: Option<String>,
    tables: Option<Vec<String>>,
    timeout_ms: Option<u64>,
    group_window_ms: Option<u64>,
    retry_schedule_ms: Option<Vec<u64>>,
    max_in_flight: Option<usize>,
    routing_key: Option<String>,
    routing_key_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: Option<String>,
}

/// Values given on the command line, which win over file and environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub schemas: Option<PathBuf>,
    pub source_url: Option<String>,
}

impl Settings {
    /// Reads `path` (optional when `required` is false), applies environment
    /// variables and `overrides`, and checks the result.
    pub fn load(path: &Path, required: bool, overrides: &Overrides) -> Result<Self, ConfigError> {
        let read_error = |source| ConfigError::Read { path: path.to_path_buf(), source };
        let raw: RawConfig = config::Config::builder()
            .add_source(
                config::File::from(path).format(config::FileFormat::Toml).required(required),
            )
            .add_source(
                config::Environment::with_prefix("WALGUARD").prefix_separator("__").separator("__"),
            )
            .build()
            .and_then(|built| built.try_deserialize())
            .map_err(read_error)?;
        let mut settings = Self::resolve(raw, overrides)?;

        // A relative schema folder from the file is relative to the file, so
        // `walguard -c /etc/walguard/walguard.toml` works from any folder.
        let from_file = overrides.schemas.is_none() && path.exists();
        if from_file && settings.schemas.is_relative() {
            let folder = path.parent().unwrap_or_else(|| Path::new(""));
            settings.schemas = folder.join(&settings.schemas);
        }
        Ok(settings)
    }

    /// Settings from a TOML string, for tests and the demo.
    pub fn from_toml(text: &str, overrides: &Overrides) -> Result<Self, ConfigError> {
        let raw: RawConfig = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|built| built.try_deserialize())
            .map_err(|source| ConfigError::Read { path: PathBuf::from("<inline>"), source })?;
        Self::resolve(raw, overrides)
    }

    fn resolve(raw: RawConfig, overrides: &Overrides) -> Result<Self, ConfigError> {
        // The source connection: flag, then file or environment, then PG* variables.
        let source_url = overrides.source_url.clone().or(raw.source.url);
        let source_connection = ConnectionSettings::resolve(source_url.as_deref(), "source.url")?;
        let source = SourceSettings {
            connection: source_connection.clone(),
            slot: identifier("source.slot", raw.source.slot, DEFAULT_SLOT)?,
            publication: identifier(
                "source.publication",
                raw.source.publication,
                DEFAULT_PUBLICATION,
            )?,
            max_message_bytes: positive(
                "source.max_message_bytes",
                raw.source.max_message_bytes,
                DEFAULT_MAX_MESSAGE_BYTES,
            )?,
            origins: raw.source.origins.unwrap_or_default(),
        };

        // The sink defaults to the source database.
        let sink_connection = match raw.sink.url.as_deref() {
            Some(url) => ConnectionSettings::resolve(Some(url), "sink.url")?,
            None => source_connection,
        };
        let sink = SinkSettings {
            connection: sink_connection,
            schema: identifier("sink.schema", raw.sink.schema, DEFAULT_SINK_SCHEMA)?,
            batch_max_violations: positive(
                "sink.batch_max_violations",
                raw.sink.batch_max_violations,
                DEFAULT_BATCH_MAX_VIOLATIONS,
            )?,
            batch_max_delay: raw
                .sink
                .batch_max_delay_ms
                .map_or(DEFAULT_BATCH_MAX_DELAY, Duration::from_millis),
        };

        let webhooks = raw
            .webhooks
            .into_iter()
            .enumerate()
            .map(|(index, hook)| resolve_webhook(index, hook))
            .collect::<Result<Vec<_>, _>>()?;
        // An endpoint is known by its URL in the outbox and alert groups.
        for (index, hook) in webhooks.iter().enumerate() {
            if webhooks[..index].iter().any(|earlier| earlier.url == hook.url) {
                return Err(ConfigError::Invalid {
                    key: format!("webhooks[{index}].url"),
                    reason: "the same URL is configured twice".into(),
                });
            }
        }

        let listen = raw
            .admin
            .listen
            .map(|text| {
                text.parse::<SocketAddr>().map_err(|err| ConfigError::Invalid {
                    key: "admin.listen".into(),
                    reason: format!("`{text}` is not an address such as 127.0.0.1:9187: {err}"),
                })
            })
            .transpose()?;

        Ok(Settings {
            schemas: overrides
                .schemas
                .clone()
                .or(raw.schemas)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SCHEMAS)),
            source,
            sink,
            webhooks,
            admin: AdminSettings { listen },
        })
    }
}

fn resolve_webhook(index: usize, hook: RawWebhook) -> Result<WebhookSettings, ConfigError> {
    let key = |field: &str| format!("webhooks[{index}].{field}");
    if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
        return Err(ConfigError::Invalid {
            key: key("url"),
            reason: "must start with http:// or https://".into(),
        });
    }
    let secret = secret_value(&key("secret"), hook.secret, hook.secret_env)?;
    let routing_key = secret_value(&key("routing_key"), hook.routing_key, hook.routing_key_env)?;
    let format = match hook.format.as_deref() {
        None | Some("standard") => WebhookFormat::Standard,
        Some("slack") => WebhookFormat::Slack,
        Some("pagerduty") => WebhookFormat::Pagerduty,
        Some(other) => {
            return Err(ConfigError::Invalid {
                key: key("format"),
                reason: format!("`{other}` is not a format: expected standard, slack or pagerduty"),
            });
        }
    };
    let min_severity = match hook.min_severity.as_deref() {
        None => Severity::Info,
        Some(text) => text.parse().map_err(|err: crate::schema::UnknownSeverity| {
            ConfigError::Invalid { key: key("min_severity"), reason: err.to_string() }
        })?,
    };
    if format == WebhookFormat::Pagerduty && routing_key.is_none() {
        return Err(ConfigError::Invalid {
            key: key("routing_key"),
            reason: "the pagerduty format needs routing_key or routing_key_env".into(),
        });
    }
    if let Some(tables) = &hook.tables {
        for (i, table) in tables.iter().enumerate() {
            if table
                .split_once('.')
                .is_none_or(|(schema, name)| schema.is_empty() || name.is_empty())
            {
                return Err(ConfigError::Invalid {
                    key: key(&format!("tables[{i}]")),
                    reason: format!(
                        "`{table}` is not a qualified table name such as public.orders"
                    ),
                });
            }
        }
    }
    let retry_schedule = match hook.retry_schedule_ms {
        Some(waits) => waits.into_iter().map(Duration::from_millis).collect(),
        None => DEFAULT_RETRY_SCHEDULE.to_vec(),
    };
    let group_window = hook.group_window_ms.map_or(DEFAULT_GROUP_WINDOW, Duration::from_millis);
    if group_window.is_zero() {
        return Err(ConfigError::Invalid {
            key: key("group_window_ms"),
            reason: "must be above 0".into(),
        });
    }
    Ok(WebhookSettings {
        url: hook.url,
        format,
        secret,
        min_severity,
        tables: hook.tables,
        timeout: hook.timeout_ms.map_or(DEFAULT_WEBHOOK_TIMEOUT, Duration::from_millis),
        group_window,
        retry_schedule,
        max_in_flight: positive(
            &key("max_in_flight"),
            hook.max_in_flight,
            DEFAULT_WEBHOOK_MAX_IN_FLIGHT,
        )?,
        routing_key,
    })
}

/// A secret given inline (`key`) or through an environment variable
/// (`key_env`), never both.
fn secret_value(
    key: &str,
    inline: Option<String>,
    env: Option<String>,
) -> Result<Option<Secret>, ConfigError> {
    match (inline, env) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            key: key.into(),
            reason: format!("set either {key} or {key}_env, not both"),
        }),
        (Some(secret), None) => Ok(Some(Secret::new(secret))),
        (None, Some(var)) => match std::env::var(&var) {
            Ok(value) if !value.is_empty() => Ok(Some(Secret::new(value))),
            _ => Err(ConfigError::Invalid {
                key: format!("{key}_env"),
                reason: format!("environment variable {var} is not set"),
            }),
        },
        (None, None) => Ok(None),
    }
}

/// A slot, publication or schema name: lowercase letters, digits and `_`, as
/// PostgreSQL requires of slot names; walguard uses the same rule for all three
/// so they never need quoting.
fn identifier(key: &str, value: Option<String>, default: &str) -> Result<String, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_string());
    let valid = !value.is_empty()
        && value.len() <= 63
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            key: key.into(),
            reason: format!(
                "`{value}` must be 1 to 63 characters of lowercase letters, digits and _"
            ),
        })
    }
}

fn positive(key: &str, value: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    match value {
        Some(0) => Err(ConfigError::Invalid { key: key.into(), reason: "must be above 0".into() }),
        Some(value) => Ok(value),
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides() -> Overrides {
        Overrides {
            source_url: Some("postgresql://u@db.internal/shop".into()),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_apply_and_sink_follows_source() {
        let settings = Settings::from_toml("", &overrides()).unwrap();
        assert_eq!(settings.source.slot, DEFAULT_SLOT);
        assert_eq!(settings.sink.schema, DEFAULT_SINK_SCHEMA);
        assert_eq!(settings.sink.connection.dbname, "shop");
        assert_eq!(settings.schemas, PathBuf::from("schemas"));
    }

    #[test]
    fn origins_default_to_all_and_accept_local_only() {
        let settings = Settings::from_toml("", &overrides()).unwrap();
        assert_eq!(settings.source.origins, Origins::All);
        let settings = Settings::from_toml("[source]\norigins = \"local\"\n", &overrides());
        assert_eq!(settings.unwrap().source.origins, Origins::Local);
        let err = Settings::from_toml("[source]\norigins = \"remote\"\n", &overrides());
        assert!(err.unwrap_err().to_string().contains("remote"));
    }

    #[test]
    fn misspelt_format_and_severity_name_the_key_and_the_choices() {
        let err = Settings::from_toml(
            "[[webhooks]]\nurl = \"http://x\"\nformat = \"standrd\"\n",
            &overrides(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("webhooks[0].format") && err.contains("standard, slack or pagerduty"),
            "{err}"
        );
        let toml = "[[webhooks]]\nurl = \"http://x\"\nmin_severity = \"high\"\n";
        let err = Settings::from_toml(toml, &overrides()).unwrap_err().to_string();
        assert!(err.contains("webhooks[0].min_severity") && err.contains("critical"), "{err}");
    }

    #[test]
    fn relative_schema_folder_is_relative_to_the_configuration_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("walguard.toml");
        std::fs::write(&path, "schemas = \"rules\"\n").unwrap();
        let settings = Settings::load(&path, true, &overrides()).unwrap();
        assert_eq!(settings.schemas, dir.path().join("rules"));

        let flag = Overrides { schemas: Some(PathBuf::from("mine")), ..overrides() };
        let settings = Settings::load(&path, true, &flag).unwrap();
        assert_eq!(settings.schemas, PathBuf::from("mine"), "a flag is relative to the caller");
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name() {
        let err = Settings::from_toml("[source]\nslott = \"x\"\n", &overrides()).unwrap_err();
        assert!(err.to_string().contains("slott"), "{err}");
    }

    #[test]
    fn invalid_slot_name_names_the_key() {
        let err = Settings::from_toml("[source]\nslot = \"Bad-Slot\"\n", &overrides()).unwrap_err();
        assert!(err.to_string().contains("source.slot"), "{err}");
    }

    #[test]
    fn webhook_needs_http_url_and_reads_secret_env() {
        let err =
            Settings::from_toml("[[webhooks]]\nurl = \"ftp://x\"\n", &overrides()).unwrap_err();
        assert!(err.to_string().contains("webhooks[0].url"), "{err}");

        let toml = "[[webhooks]]\nurl = \"http://x\"\nsecret_env = \"WALGUARD_TEST_UNSET_VAR\"\n";
        let err = Settings::from_toml(toml, &overrides()).unwrap_err();
        assert!(err.to_string().contains("WALGUARD_TEST_UNSET_VAR"), "{err}");
    }

    #[test]
    fn pagerduty_needs_a_routing_key_and_tables_must_be_qualified() {
        let toml = "[[webhooks]]\nurl = \"http://x\"\nformat = \"pagerduty\"\n";
        let err = Settings::from_toml(toml, &overrides()).unwrap_err();
        assert!(err.to_string().contains("webhooks[0].routing_key"), "{err}");

        let toml = "[[webhooks]]\nurl = \"http://x\"\ntables = [\"public.a\", \"orders\"]\n";
        let err = Settings::from_toml(toml, &overrides()).unwrap_err();
        assert!(err.to_string().contains("webhooks[0].tables[1]"), "{err}");

        let toml = "[[webhooks]]\nurl = \"http://x\"\n[[webhooks]]\nurl = \"http://x\"\n";
        let err = Settings::from_toml(toml, &overrides()).unwrap_err();
        assert!(err.to_string().contains("webhooks[1].url"), "{err}");
    }

    #[test]
    fn webhook_routing_filters_on_severity_and_tables() {
        let toml = "[[webhooks]]\nurl = \"http://x\"\nmin_severity = \"error\"\n\
                    tables = [\"public.orders\"]\nretry_schedule_ms = [10, 20]\n";
        let settings = Settings::from_toml(toml, &overrides()).unwrap();
        let hook = &settings.webhooks[0];
        assert!(hook.wants("public", "orders", Severity::Error));
        assert!(!hook.wants("public", "orders", Severity::Warn));
        assert!(!hook.wants("public", "people", Severity::Critical));
        assert_eq!(hook.retry_schedule, [Duration::from_millis(10), Duration::from_millis(20)]);
        assert_eq!(hook.group_window, DEFAULT_GROUP_WINDOW);
    }
}
