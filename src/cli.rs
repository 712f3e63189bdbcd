//! The command line: raw flags parsed by clap, turned into settings in one
//! place ([`Cli::settings`]).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{ConfigError, Overrides, Settings};

/// walguard validates every row written to PostgreSQL against per-table
/// schemas, records violations in a table and sends webhook alerts.
#[derive(Debug, Parser)]
#[command(name = "walguard", version, about)]
pub struct Cli {
    /// Configuration file (TOML); optional unless given explicitly.
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Folder of schema files, overriding `schemas` in the configuration.
    #[arg(long, global = true, value_name = "DIR")]
    pub schemas: Option<PathBuf>,

    /// Source database (libpq URL or key=value), overriding `source.url`.
    #[arg(long, global = true, value_name = "URL", env = "WALGUARD_SOURCE_URL")]
    pub source_url: Option<String>,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// How `check` writes its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stream changes, validate them and record violations (the service).
    Run {
        /// Exit 0 once everything up to this LSN (such as 0/16B3748) is durable.
        #[arg(long, value_name = "LSN", value_parser = parse_lsn)]
        until_lsn: Option<u64>,
    },
    /// Create the publications, the replication slot and walguard's tables.
    Setup {
        /// Print the SQL that would run, and change nothing.
        #[arg(long)]
        print_sql: bool,
    },
    /// Lint every schema file and report every problem with its location.
    Check {
        /// Also compare the files with the source database's catalog.
        #[arg(long)]
        against_db: bool,
        /// Report format on stdout.
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Write starter schema files from the source database's catalog.
    Init {
        /// A table to describe (`schema.table`, or `table` in public); repeat for
        /// several. Default: every table outside the system schemas.
        #[arg(long = "table", value_name = "TABLE")]
        tables: Vec<String>,
        /// Folder to write to; default: the configured schemas folder.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Replace files that already exist.
        #[arg(long)]
        force: bool,
    },
    /// Webhook alerts.
    Alerts {
        #[command(subcommand)]
        action: AlertsAction,
    },
    /// Run walguard on a throwaway database with sample traffic.
    Demo {
        /// Stop after this long (for example 30s or 2m); default: until Ctrl-C.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Rows per second of sample traffic.
        #[arg(long, default_value_t = 20)]
        rate: u32,
    },
}

/// What `walguard alerts` does.
#[derive(Debug, Subcommand)]
pub enum AlertsAction {
    /// Send a sample alert to each configured webhook and print the result.
    Test,
}

impl Cli {
    /// Reads the configuration this command line points at.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let overrides =
            Overrides { schemas: self.schemas.clone(), source_url: self.source_url.clone() };
        match &self.config {
            Some(path) => Settings::load(path, true, &overrides),
            None => {
                let default = PathBuf::from("walguard.toml");
                if !default.exists() {
                    tracing::info!(
                        "no walguard.toml in the current folder and no --config: using \
                         defaults, WALGUARD__* and PG* environment variables"
                    );
                }
                Settings::load(&default, false, &overrides)
            }
        }
    }
}

/// Parses an LSN as PostgreSQL prints it (`16/B374D848`).
pub fn parse_lsn(text: &str) -> Result<u64, String> {
    let invalid = || format!("`{text}` is not an LSN such as 0/16B3748");
    let (high, low) = text.split_once('/').ok_or_else(invalid)?;
    let high = u32::from_str_radix(high, 16).map_err(|_| invalid())?;
    let low = u32::from_str_radix(low, 16).map_err(|_| invalid())?;
    Ok((u64::from(high) << 32) | u64::from(low))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_parses_both_halves() {
        assert_eq!(parse_lsn("0/16B3748"), Ok(0x16B3748));
        assert_eq!(parse_lsn("16/B374D848"), Ok(0x16_B374_D848));
        assert!(parse_lsn("16B374D848").is_err());
        assert!(parse_lsn("x/1").is_err());
    }

    #[test]
    fn command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
