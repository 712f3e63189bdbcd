//! A PostgreSQL connection described the way libpq users expect: a URL or a
//! `key=value` string, with the `PG*` environment variables filling whatever
//! the string leaves out (libpq documentation, sections 34.1.1 "Connection
//! Strings" and 34.15 "Environment Variables").
//!
//! tokio-postgres parses both string forms but knows only three `sslmode`
//! values, so `sslmode` and `sslrootcert` are taken out first and handled here.

use std::path::PathBuf;
use std::str::FromStr;

use super::{ConfigError, Secret};

/// How the connection uses TLS, as libpq's `sslmode`.
///
/// `prefer`, libpq's default, connects without TLS in walguard: use `require`
/// or stricter to encrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "disable" | "allow" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(format!(
                "unknown sslmode `{other}` (disable, prefer, require, verify-ca, verify-full)"
            )),
        }
    }
}

/// Where and how to connect. `Debug` never shows the password.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// A host name or address, or a socket directory when it starts with `/`.
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Secret>,
    pub dbname: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
}

impl ConnectionSettings {
    /// Parses `text` (or nothing, then only the environment counts); `key` is
    /// the configuration key named in errors.
    pub fn resolve(text: Option<&str>, key: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { key: key.into(), reason };
        let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());

        // Take out what tokio-postgres cannot parse, then let it parse the rest.
        let (rest, extracted) = extract_ssl_params(text.unwrap_or(""));
        let parsed = if rest.trim().is_empty() {
            tokio_postgres::Config::new()
        } else {
            tokio_postgres::Config::from_str(&rest).map_err(|err| {
                invalid(format!("not a connection URL or key=value string: {err}"))
            })?
        };

        // Fill the gaps from PG* variables and libpq's defaults.
        let host = match parsed.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => env("PGHOST").unwrap_or_else(default_host),
        };
        let port = match parsed.get_ports().first() {
            Some(port) => *port,
            None => match env("PGPORT") {
                Some(text) => {
                    text.parse().map_err(|_| invalid(format!("PGPORT `{text}` is not a port")))?
                }
                None => 5432,
            },
        };
        let user = parsed
            .get_user()
            .map(str::to_string)
            .or_else(|| env("PGUSER"))
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "postgres".into());
        let password = parsed
            .get_password()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            .or_else(|| env("PGPASSWORD"))
            .map(Secret::new);
        let dbname = parsed.get_dbname().map(str::to_string).or_else(|| env("PGDATABASE"));
        let sslmode = match extracted.sslmode.or_else(|| env("PGSSLMODE")) {
            Some(text) => text.parse().map_err(invalid)?,
            None => SslMode::Prefer,
        };

        Ok(ConnectionSettings {
            host,
            port,
            dbname: dbname.unwrap_or_else(|| user.clone()),
            user,
            password,
            sslmode,
            sslrootcert: extracted.sslrootcert.or_else(|| env("PGSSLROOTCERT")).map(PathBuf::from),
        })
    }

    /// The same server with another database, for commands that manage several.
    pub fn with_dbname(&self, dbname: &str) -> Self {
        ConnectionSettings { dbname: dbname.to_string(), ..self.clone() }
    }

    /// A description safe for logs and messages: no password.
    pub fn describe(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }

    /// The tokio-postgres configuration for SQL connections.
    pub fn to_tokio_postgres(&self, application_name: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        if self.host.starts_with('/') {
            config.host_path(&self.host);
        } else {
            config.host(&self.host);
        }
        config.port(self.port).user(&self.user).dbname(&self.dbname);
        config.application_name(application_name);
        if let Some(password) = &self.password {
            config.password(password.expose());
        }
        config.ssl_mode(match self.sslmode {
            SslMode::Disable | SslMode::Prefer => tokio_postgres::config::SslMode::Disable,
            _ => tokio_postgres::config::SslMode::Require,
        });
        config
    }
}

fn default_host() -> String {
    let socket_dir = "/var/run/postgresql";
    if std::path::Path::new(socket_dir).is_dir() { socket_dir.into() } else { "localhost".into() }
}

#[derive(Debug, Default)]
struct SslParams {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

/// Removes `sslmode` and `sslrootcert` from a URL's query or from a key=value
/// string, returning the rest and the two values.
fn extract_ssl_params(text: &str) -> (String, SslParams) {
    let mut params = SslParams::default();
    let mut take = |key: &str, value: &str| match key {
        "sslmode" => {
            params.sslmode = Some(value.to_string());
            true
        }
        "sslrootcert" => {
            params.sslrootcert = Some(value.to_string());
            true
        }
        _ => false,
    };

    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let Some((base, query)) = text.split_once('?') else {
            return (text.to_string(), params);
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                !take(key, value)
            })
            .collect();
        let rest =
            if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        return (rest, params);
    }

    // key=value form: values of these two keys never need quoting in practice,
    // so whitespace-separated pairs are enough to find them.
    let kept: Vec<&str> = text
        .split_whitespace()
        .filter(|pair| match pair.split_once('=') {
            Some((key, value)) => !take(key, value.trim_matches('\'')),
            None => true,
        })
        .collect();
    (kept.join(" "), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_verify_full_is_understood() {
        let url =
            "postgresql://walguard:pw@db.internal:6543/shop?sslmode=verify-full&connect_timeout=5";
        let settings = ConnectionSettings::resolve(Some(url), "source.url").unwrap();
        assert_eq!(settings.host, "db.internal");
        assert_eq!(settings.port, 6543);
        assert_eq!(settings.user, "walguard");
        assert_eq!(settings.dbname, "shop");
        assert_eq!(settings.sslmode, SslMode::VerifyFull);
        assert_eq!(settings.password.as_ref().map(Secret::expose), Some("pw"));
    }

    #[test]
    fn key_value_form_is_understood() {
        let text = "host=10.0.0.5 port=5433 user=app dbname=orders sslmode=require";
        let settings = ConnectionSettings::resolve(Some(text), "source.url").unwrap();
        assert_eq!((settings.host.as_str(), settings.port), ("10.0.0.5", 5433));
        assert_eq!(settings.sslmode, SslMode::Require);
    }

    #[test]
    fn describe_and_debug_never_show_the_password() {
        let url = "postgresql://walguard:s3cret@db/shop";
        let settings = ConnectionSettings::resolve(Some(url), "source.url").unwrap();
        assert!(!settings.describe().contains("s3cret"));
        assert!(!format!("{settings:?}").contains("s3cret"));
    }

    #[test]
    fn bad_sslmode_names_the_key() {
        let err =
            ConnectionSettings::resolve(Some("postgresql://h/db?sslmode=sometimes"), "sink.url")
                .unwrap_err();
        assert!(err.to_string().contains("sink.url") && err.to_string().contains("sometimes"));
    }
}
