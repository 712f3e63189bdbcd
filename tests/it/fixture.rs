//! A walguard deployment for one test: a database with the test's tables, a
//! folder of schema files, a configuration file, and the real `walguard`
//! binary run against them.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use walguard::throwaway::ThrowawayPostgres;

use crate::harness::{TestDb, chain};

/// One violation row, reduced to what tests compare.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    pub table: String,
    pub operation: String,
    pub rule: String,
    pub column: Option<String>,
    pub row_key: String,
}

impl Found {
    pub fn new(table: &str, operation: &str, rule: &str, column: Option<&str>, key: Value) -> Self {
        Found {
            table: table.into(),
            operation: operation.into(),
            rule: rule.into(),
            column: column.map(Into::into),
            row_key: key.to_string(),
        }
    }
}

/// A database, schema files and configuration for one test.
pub struct Fixture {
    pub db: TestDb,
    pub dir: TempDir,
    /// The replication slot the configuration names: the database's name
    /// unless a test switches it.
    slot: String,
    /// Extra TOML appended to the configuration (webhooks, sink options).
    extra_config: String,
}

impl Fixture {
    /// Creates the database, runs `ddl`, writes the schema files.
    pub async fn new(name: &str, ddl: &str, schemas: &[(&str, &str)]) -> Fixture {
        Fixture::with_db(TestDb::new(name).await, ddl, schemas).await
    }

    /// Like [`Fixture::new`], on a server of the test's own.
    pub async fn on(
        server: &ThrowawayPostgres,
        name: &str,
        ddl: &str,
        schemas: &[(&str, &str)],
    ) -> Fixture {
        Fixture::with_db(TestDb::on(server, name).await, ddl, schemas).await
    }

    async fn with_db(db: TestDb, ddl: &str, schemas: &[(&str, &str)]) -> Fixture {
        db.execute(ddl).await;
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir(dir.path().join("schemas")).expect("a schemas folder");
        let slot = db.name.clone();
        let fixture = Fixture { db, dir, slot, extra_config: String::new() };
        for (file, text) in schemas {
            fixture.write_schema(file, text);
        }
        fixture.write_config();
        fixture
    }

    /// Adds TOML to the configuration file.
    pub fn configure(&mut self, extra: &str) {
        self.extra_config.push_str(extra);
        self.write_config();
    }

    /// Points the configuration at another replication slot.
    pub fn use_slot(&mut self, slot: &str) {
        self.slot = slot.to_string();
        self.write_config();
    }

    pub fn write_schema(&self, file: &str, text: &str) {
        std::fs::write(self.dir.path().join("schemas").join(file), text).expect("a schema file");
    }

    fn write_config(&self) {
        let config = format!(
            "schemas = \"schemas\"\n[source]\nurl = \"{}\"\nslot = \"{}\"\n{}",
            self.db.url, self.slot, self.extra_config
        );
        std::fs::write(self.config_path(), config).expect("a configuration file");
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("walguard.toml")
    }

    /// The `walguard` binary with this fixture's configuration, run from its folder.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_walguard"));
        command
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .current_dir(self.dir.path())
            .env("RUST_LOG", "walguard=debug")
            .env("NO_COLOR", "1")
            .env_remove("WALGUARD_SOURCE_URL")
            .stdin(Stdio::null());
        command
    }

    /// Runs a walguard command to its end on a blocking thread.
    pub async fn output(&self, args: &[&str]) -> Output {
        let mut command = self.command(args);
        tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("the command thread")
            .expect("walguard starts")
    }

    /// `walguard setup`, which must succeed.
    pub async fn setup(&self) {
        let output = self.output(&["setup"]).await;
        assert_success(&output, "walguard setup");
    }

    /// The server's current WAL position.
    pub async fn current_lsn(&self) -> String {
        let row = self.db.client.query_one("SELECT pg_current_wal_lsn()::text", &[]).await;
        row.unwrap_or_else(|err| panic!("failed to read the wal position: {}", chain(&err))).get(0)
    }

    /// `walguard run --until-lsn <now>`, which must exit 0.
    pub async fn run_to_current(&self) -> Output {
        let lsn = self.current_lsn().await;
        let output = self.output(&["run", "--until-lsn", &lsn]).await;
        assert_success(&output, "walguard run --until-lsn");
        output
    }

    /// Every violation written so far, sorted.
    pub async fn violations(&self) -> Vec<Found> {
        let rows = self
            .db
            .client
            .query(
                "SELECT table_schema || '.' || table_name, operation, rule, column_name,
                        row_key::text FROM walguard.violations",
                &[],
            )
            .await
            .unwrap_or_else(|err| panic!("failed to read violations: {}", chain(&err)));
        let mut found: Vec<Found> = rows
            .iter()
            .map(|row| Found {
                table: row.get(0),
                operation: row.get(1),
                rule: row.get(2),
                column: row.get(3),
                row_key: normalise_json(row.get(4)),
            })
            .collect();
        found.sort();
        found
    }
}

/// jsonb text re-serialised the way serde_json writes it, so it compares with
/// `json!` values.
fn normalise_json(text: String) -> String {
    serde_json::from_str::<Value>(&text).map_or(text, |value| value.to_string())
}

/// Panics with the command's output unless it exited 0.
pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A bounded wait for a child process to exit.
pub async fn wait_for_exit(
    child: &mut std::process::Child,
    within: Duration,
) -> std::process::ExitStatus {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            return status;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!("walguard did not exit within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
