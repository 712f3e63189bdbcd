//! The shared test harness: one throwaway PostgreSQL server per test binary,
//! a fresh database per test, an HTTP client, and a wait for a condition with
//! a deadline instead of fixed sleeps.
//!
//! Helpers panic with a message naming what failed: a panic is how a test
//! reports failure. When the PostgreSQL binaries are missing, every test that
//! needs the server fails with the message saying what to install; none is
//! skipped.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::{Client, NoTls};
use walguard::throwaway::ThrowawayPostgres;

/// How often [`wait_until`] checks its condition again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The server all tests of this binary share, started by the first test that
/// asks for it.
///
/// Rust never drops a `static`, so `Drop` does not stop this one. The watchdog
/// that [`ThrowawayPostgres::start`] spawns does: it waits on a pipe that only
/// this process writes to, and when the process exits (tests passed, failed,
/// or the binary was killed) the kernel closes the pipe, and the watchdog stops
/// the server and deletes its folder.
pub fn server() -> &'static ThrowawayPostgres {
    static SERVER: OnceLock<Result<ThrowawayPostgres, String>> = OnceLock::new();
    let started = SERVER.get_or_init(|| ThrowawayPostgres::start().map_err(|err| chain(&err)));
    match started {
        Ok(server) => server,
        Err(message) => panic!("the throwaway postgresql server did not start: {message}"),
    }
}

/// A database of its own for one test, on the shared server.
pub struct TestDb {
    /// The database name: unique within this test binary.
    pub name: String,
    /// A libpq URL for the database, as the superuser `postgres`.
    pub url: String,
    /// A connection whose driver runs on the test's runtime.
    pub client: Client,
}

impl TestDb {
    /// Creates a database named after `name_hint` plus a counter and connects.
    pub async fn new(name_hint: &str) -> TestDb {
        TestDb::on(server(), name_hint).await
    }

    /// Like [`TestDb::new`], on a server of the test's own (one it restarts).
    pub async fn on(server: &ThrowawayPostgres, name_hint: &str) -> TestDb {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let hint: String = name_hint
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .take(40)
            .collect();
        let name = format!("t{}_{hint}", NEXT.fetch_add(1, Ordering::Relaxed));
        let url = server
            .create_database(&name)
            .await
            .unwrap_or_else(|err| panic!("failed to create test database {name}: {}", chain(&err)));
        let client = connect(&url).await;
        TestDb { name, url, client }
    }

    /// Opens another session on the same database, e.g. for a concurrent
    /// writer in a spawned task.
    pub async fn connect(&self) -> Client {
        connect(&self.url).await
    }

    /// Runs one or more statements separated by semicolons.
    pub async fn execute(&self, sql: &str) {
        if let Err(err) = self.client.batch_execute(sql).await {
            panic!("failed to run `{sql}` in {}: {}", self.name, chain(&err));
        }
    }

    /// Runs a query returning one bigint, such as `SELECT count(*) FROM t`.
    pub async fn query_count(&self, sql: &str) -> i64 {
        let row = self.client.query_one(sql, &[]).await;
        let count = row.and_then(|row| row.try_get::<_, i64>(0));
        count.unwrap_or_else(|err| {
            panic!("failed to count with `{sql}` in {}: {}", self.name, chain(&err))
        })
    }
}

/// Checks `condition` every few milliseconds until it holds, and panics
/// naming `what` if it still does not after `within`.
pub async fn wait_until(within: Duration, what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting until {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// An HTTP client for talking to test servers.
pub fn http_client() -> reqwest::Client {
    // Two rustls crypto providers are compiled in, so rustls cannot choose one
    // by itself; installing fails harmlessly when a test did it already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Connects to `url` and drives the connection on the current runtime.
async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|err| panic!("failed to connect to {url}: {}", chain(&err)));
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            eprintln!("test database connection ended: {}", chain(&err));
        }
    });
    client
}

/// An error with its sources, `: `-separated, for panic messages.
pub use walguard::telemetry::chain;
