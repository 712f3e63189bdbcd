//! A throwaway PostgreSQL cluster for `walguard demo` and the integration tests.
//!
//! [`ThrowawayPostgres::start`] runs `initdb` and `pg_ctl start` for a fresh
//! cluster in a new folder under the system temp dir, set up for logical
//! replication and for speed rather than durability. It listens on 127.0.0.1 at
//! a free port and trusts every local connection to the superuser `postgres`.
//!
//! initdb refuses to run as root, so under root the server runs as the
//! `postgres` OS user, who owns the temp folder; the folder is never inside the
//! repository, which may be under `/root` where that user cannot enter.
//!
//! `Drop` stops the server and deletes the folder. So does a watchdog process
//! once this process is gone, however it ended (a `static` is never dropped; a
//! test binary may be killed): it blocks reading a pipe that only this process
//! writes to, which the kernel closes when this process exits. In a process
//! group of its own, it outlives a Ctrl-C in the terminal.
//!
//! All methods block on `pg_ctl`, except the async
//! [`ThrowawayPostgres::create_database`], which uses tokio-postgres.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::{fs, io};

use tempfile::TempDir;

/// What to install when the server binaries are missing.
const INSTALL_HINT: &str = "install the server: `apt-get install -y postgresql` on Debian/Ubuntu";

/// Free ports to try: another process may take a probed port before the server.
const PORT_ATTEMPTS: usize = 5;

/// Lines of the server log quoted in a start or stop error.
const LOG_TAIL_LINES: usize = 30;

/// Seconds `pg_ctl` waits for the server to start or stop.
const PG_CTL_TIMEOUT_SECS: &str = "60";

/// The address the server listens on; nothing else on the network reaches it.
const HOST: &str = "127.0.0.1";

/// Server settings besides address, port and socket folder, given on every
/// start so restarts keep them: logical decoding with room for a slot per test
/// of the whole suite (a test's slot outlives it) and many senders; prepared
/// transactions allowed, so two-phase commit can be tested; no fsync or
/// full-page writes, which only guard against an OS crash.
/// synchronous_commit stays on: crash tests need every commit a client saw
/// succeed to survive an immediate stop.
const SETTINGS: &str = "-c wal_level=logical -c max_wal_senders=64 -c max_replication_slots=200 \
                        -c max_connections=200 -c max_prepared_transactions=16 -c fsync=off \
                        -c full_page_writes=off";

/// A failure to set up, start, stop or use the throwaway cluster.
#[derive(Debug, thiserror::Error)]
pub enum ThrowawayError {
    #[error("no `initdb` and `pg_ctl` on PATH or in /usr/lib/postgresql/*/bin; {INSTALL_HINT}")]
    BinariesMissing,
    #[error("running as root, but no `postgres` os user to run the server as; {INSTALL_HINT}")]
    PostgresUserMissing,
    #[error("failed to {action}")]
    Io { action: String, source: io::Error },
    #[error("failed to {action}: {output}")]
    Command { action: String, output: String },
    #[error("failed to {action} on the throwaway server")]
    Sql { action: String, source: tokio_postgres::Error },
}

/// How the server shuts down before a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Disconnect clients, write a checkpoint and exit cleanly.
    Fast,
    /// Exit at once, as in a crash: the next start runs crash recovery.
    Immediate,
}

/// A running PostgreSQL cluster in a temp folder, stopped and deleted on drop.
#[derive(Debug)]
pub struct ThrowawayPostgres {
    /// The temp folder: data dir, unix socket and server log.
    root: TempDir,
    bin_dir: PathBuf,
    /// The uid and gid the server runs as when this process is root.
    run_as: Option<(u32, u32)>,
    port: u16,
    running: bool,
    watchdog: Option<Child>,
}

impl ThrowawayPostgres {
    /// Creates a fresh cluster and starts it on a free port (blocking).
    pub fn start() -> Result<Self, ThrowawayError> {
        // Find the binaries and the user to run them as.
        let bin_dir = find_bin_dir().ok_or(ThrowawayError::BinariesMissing)?;
        let run_as = server_user()?;

        // A fresh folder under the temp dir that the server user owns.
        let root = tempfile::Builder::new().prefix("walguard-pg-").tempdir();
        let root = root.map_err(io_error("create a temp folder for postgresql"))?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(root.path(), Some(uid), Some(gid))
                .map_err(io_error("hand the temp folder to the postgres user"))?;
        }
        let mut server = Self { root, bin_dir, run_as, port: 0, running: false, watchdog: None };

        // The watchdog first, so even a kill during initdb leaves nothing behind.
        server.watchdog = Some(server.spawn_watchdog()?);
        server.initdb()?;

        // Start on a free port, retrying if another process took it meanwhile.
        let mut attempts = 1;
        loop {
            server.port = free_port()?;
            let _ = fs::remove_file(server.log_path());
            let started = server.start_server();
            let collided = started.is_err() && server.log_tail().contains("already in use");
            if !collided || attempts == PORT_ATTEMPTS {
                return started.map(|()| server);
            }
            attempts += 1;
        }
    }

    /// The TCP port the server listens on; it stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address the server listens on.
    pub fn host(&self) -> &str {
        HOST
    }

    /// A libpq URL for the superuser `postgres` and the database `dbname`.
    pub fn url(&self, dbname: &str) -> String {
        format!("postgresql://postgres@{HOST}:{}/{dbname}", self.port)
    }

    /// The cluster's data folder.
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Creates the database `name` and returns its URL.
    pub async fn create_database(&self, name: &str) -> Result<String, ThrowawayError> {
        let sql_error = |action: String| move |source| ThrowawayError::Sql { action, source };
        let connected = tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls).await;
        let (client, connection) = connected.map_err(sql_error("connect to postgres".into()))?;
        let connection = tokio::spawn(connection);
        let quoted = postgres_protocol::escape::escape_identifier(name);
        let created = client.batch_execute(&format!("CREATE DATABASE {quoted}")).await;
        drop(client);
        let _ = connection.await;
        created.map_err(sql_error(format!("create database {name}")))?;
        Ok(self.url(name))
    }

    /// Stops the server (if running) as `mode` says and starts it on the same
    /// port, which fails if another process took the port meanwhile.
    pub fn restart(&mut self, mode: StopMode) -> Result<(), ThrowawayError> {
        if self.running {
            self.stop_with(mode)?;
        }
        self.start_server()
    }

    /// Stops the server cleanly, keeping the folder until drop.
    pub fn stop(&mut self) -> Result<(), ThrowawayError> {
        self.stop_with(StopMode::Fast)
    }

    fn stop_with(&mut self, mode: StopMode) -> Result<(), ThrowawayError> {
        let mode = if mode == StopMode::Fast { "fast" } else { "immediate" };
        self.run(self.pg_ctl("stop").args(["-m", mode]), &format!("stop postgresql ({mode})"))?;
        self.running = false;
        Ok(())
    }

    fn initdb(&self) -> Result<(), ThrowawayError> {
        let mut initdb = self.command(&self.bin_dir.join("initdb"));
        initdb.args(["--username=postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"]);
        initdb.arg("--no-sync").arg("-D").arg(self.data_dir());
        self.run(&mut initdb, "initialise a postgresql cluster with initdb")
    }

    fn start_server(&mut self) -> Result<(), ThrowawayError> {
        let mut pg_ctl = self.pg_ctl("start");
        let socket_dir = self.root.path().display();
        let options = format!("-h {HOST} -p {} -k '{socket_dir}' {SETTINGS}", self.port);
        pg_ctl.arg("-l").arg(self.log_path()).arg("-o").arg(options);
        let started = self.run(&mut pg_ctl, &format!("start postgresql on port {}", self.port));
        if started.is_err() {
            // A server that came up too slowly for pg_ctl must not linger.
            let _ = self.stop_with(StopMode::Immediate);
        }
        self.running = started.is_ok();
        started
    }

    /// Starts `sh` waiting for EOF on stdin, then stopping the server and
    /// deleting the folder; the pipe's write end stays in `Child` until drop.
    fn spawn_watchdog(&self) -> Result<Child, ThrowawayError> {
        const SCRIPT: &str = r#"read line; "$1" stop -w -m immediate -D "$2"; rm -rf "$3""#;
        let mut sh = self.command(Path::new("/bin/sh"));
        sh.args(["-c", SCRIPT, "walguard-pg-watchdog"]).arg(self.bin_dir.join("pg_ctl"));
        sh.arg(self.data_dir()).arg(self.root.path()).current_dir("/").process_group(0);
        sh.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
        sh.spawn().map_err(io_error("spawn the postgresql watchdog"))
    }

    /// `pg_ctl <action>` on this cluster, waiting for the action to finish.
    fn pg_ctl(&self, action: &str) -> Command {
        let mut pg_ctl = self.command(&self.bin_dir.join("pg_ctl"));
        pg_ctl.args([action, "-w", "-t", PG_CTL_TIMEOUT_SECS, "-D"]).arg(self.data_dir());
        pg_ctl
    }

    /// A command that runs as the server user, inside the temp folder.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command.current_dir(self.root.path()).stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command
    }

    /// Runs a command to completion; a failure quotes its output and the log.
    fn run(&self, command: &mut Command, action: &str) -> Result<(), ThrowawayError> {
        let output = command.output().map_err(io_error(action))?;
        if output.status.success() {
            return Ok(());
        }
        let (stdout, stderr) = (&output.stdout, &output.stderr);
        let (stdout, stderr) = (String::from_utf8_lossy(stdout), String::from_utf8_lossy(stderr));
        let log = self.log_tail();
        let output = format!("{}\n{stdout}{stderr}\nserver log tail:\n{log}", output.status);
        Err(ThrowawayError::Command { action: action.to_owned(), output })
    }

    fn log_path(&self) -> PathBuf {
        self.root.path().join("server.log")
    }

    fn log_tail(&self) -> String {
        let bytes = fs::read(self.log_path()).unwrap_or_default();
        let log = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        // Stop the server, then the watchdog; `TempDir` deletes the folder.
        if self.running {
            let _ = self.stop_with(StopMode::Immediate);
        }
        if let Some(watchdog) = &mut self.watchdog {
            let _ = (watchdog.kill(), watchdog.wait());
        }
    }
}

/// The folder holding `initdb` and `pg_ctl`: the first on PATH, else the
/// highest version under `/usr/lib/postgresql`.
fn find_bin_dir() -> Option<PathBuf> {
    let has_binaries = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = std::env::split_paths(&path).find(|dir| has_binaries(dir)) {
        return Some(dir);
    }
    let version = |dir: &Path| -> Vec<u32> {
        let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
        name.split('.').map_while(|part| part.parse().ok()).collect()
    };
    let versions = fs::read_dir("/usr/lib/postgresql").ok()?;
    let bin_dirs = versions.filter_map(|entry| Some(entry.ok()?.path().join("bin")));
    bin_dirs.filter(|dir| has_binaries(dir)).max_by_key(|dir| version(dir.parent().unwrap_or(dir)))
}

/// The `postgres` OS user's uid and gid when this process is root, else `None`.
fn server_user() -> Result<Option<(u32, u32)>, ThrowawayError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name("postgres");
    let user = user.map_err(|errno| io_error("look up the postgres os user")(errno.into()))?;
    let user = user.ok_or(ThrowawayError::PostgresUserMissing)?;
    Ok(Some((user.uid.as_raw(), user.gid.as_raw())))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, ThrowawayError> {
    let address = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|probe| probe.local_addr());
    Ok(address.map_err(io_error("find a free tcp port"))?.port())
}

fn io_error(action: &str) -> impl FnOnce(io::Error) -> ThrowawayError + '_ {
    move |source| ThrowawayError::Io { action: action.to_owned(), source }
}
