//! walguard against `pg_recvlogical` on the same WAL, and commit-to-alert
//! latency at a steady rate. Run with `cargo bench --bench throughput`; the
//! results are printed as Markdown tables for BENCHMARKS.md.
//!
//! For each transaction shape (four large transactions, or transactions of
//! ten rows) and each share of bad rows (1 % and 20 %), and for one single
//! transaction at 1 %, the benchmark loads `WALGUARD_BENCH_ROWS` rows (default
//! one million) into a fresh database whose slots were all created before the
//! load, then drains the same WAL alternately with `pg_recvlogical` (pgoutput,
//! the same publications, output to /dev/null) and with
//! `walguard run --until-lsn`, each on a slot of its own,
//! `WALGUARD_BENCH_RUNS` times (default 3). walguard's tables are emptied
//! before each of its runs, so every run writes every violation. It reports
//! the median rows per second of both, their ratio, walguard's peak RSS and
//! its CPU seconds per million rows.
//!
//! The latency part writes `WALGUARD_BENCH_RATE` rows per second (default
//! 2 000, 1 % bad) for `WALGUARD_BENCH_SECONDS` seconds (default 20) while
//! `walguard run` streams, with a webhook receiver in this process. The
//! server records commit times (`track_commit_timestamp`), so a violation's
//! latency is the commit time of the sink transaction that wrote it minus the
//! commit time of the source transaction, and an alert's latency is the time
//! it arrived minus the source commit time of the violation it reports. The
//! webhook's `group_window_ms` is 1 ms there, so every bad row alerts at once.

#[path = "shared/mod.rs"]
mod shared;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio_postgres::{Client, NoTls};
use walguard::throwaway::{StopMode, ThrowawayPostgres};

/// How often a running walguard's memory is sampled.
const RSS_SAMPLE: Duration = Duration::from_millis(20);

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Empties walguard's tables between runs on the same WAL.
const EMPTY_SINK: &str = "TRUNCATE walguard.violations, walguard.violation_state,
    walguard.webhook_outbox, walguard.alert_groups, walguard.pending_references";

/// How the load is cut into transactions.
#[derive(Clone, Copy)]
enum Shape {
    /// Four transactions of a quarter of the rows each.
    Large,
    /// Transactions of ten rows.
    Small,
    /// One transaction of every row.
    Single,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Large => "large",
            Shape::Small => "small",
            Shape::Single => "single",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Shape::Large => "4 large transactions",
            Shape::Small => "transactions of 10 rows",
            Shape::Single => "1 transaction",
        }
    }
}

/// The figures of one scenario.
struct Figures {
    shape: Shape,
    bad_percent: u64,
    rows: u64,
    violations: i64,
    recvlogical_rows_per_s: f64,
    walguard_rows_per_s: f64,
    peak_rss_mb: f64,
    cpu_s_per_million: f64,
}

fn main() -> BenchResult<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rows = env_number("WALGUARD_BENCH_ROWS", 1_000_000);
    let runs = env_number("WALGUARD_BENCH_RUNS", 3);
    let rate = env_number("WALGUARD_BENCH_RATE", 2_000);
    let seconds = env_number("WALGUARD_BENCH_SECONDS", 20);
    let runtime = tokio::runtime::Runtime::new()?;

    let mut server = ThrowawayPostgres::start()?;
    runtime.block_on(enable_commit_timestamps(&mut server))?;

    let mut figures = Vec::new();
    let scenarios = [
        (Shape::Large, 1),
        (Shape::Large, 20),
        (Shape::Small, 1),
        (Shape::Small, 20),
        (Shape::Single, 1),
    ];
    for (shape, bad_percent) in scenarios {
        eprintln!("throughput: {}, {bad_percent} % bad, {rows} rows", shape.describe());
        let scenario = Scenario { server: &server, shape, bad_percent, rows, runs };
        figures.push(runtime.block_on(scenario.run())?);
    }
    eprintln!("latency: {rate} rows/s for {seconds} s");
    let latency = runtime.block_on(latency(&server, rate, seconds))?;

    print_throughput(&figures);
    print_latency(&latency);
    Ok(())
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|text| text.parse().ok()).unwrap_or(default)
}

/// Turns on `track_commit_timestamp`, which needs a restart.
async fn enable_commit_timestamps(server: &mut ThrowawayPostgres) -> BenchResult<()> {
    let client = connect(&server.url("postgres")).await?;
    client.batch_execute("ALTER SYSTEM SET track_commit_timestamp = on").await?;
    drop(client);
    server.restart(StopMode::Fast)?;
    Ok(())
}

async fn connect(url: &str) -> BenchResult<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A database with the benchmark table, its schema file and configuration.
struct Deployment {
    /// The database's name, which also prefixes its slots: slots are cluster-wide.
    name: String,
    url: String,
    client: Client,
    dir: tempfile::TempDir,
}

impl Deployment {
    async fn create(server: &ThrowawayPostgres, name: &str, extra: &str) -> BenchResult<Self> {
        let url = server.create_database(name).await?;
        let client = connect(&url).await?;
        client.batch_execute(shared::ORDERS_DDL).await?;
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("schemas"))?;
        std::fs::write(dir.path().join("schemas/public.orders.yaml"), shared::ORDERS_SCHEMA)?;
        let deployment = Deployment { name: name.to_string(), url, client, dir };
        deployment.configure("setup", extra)?;
        let setup = deployment.walguard(&["setup"]).output()?;
        if !setup.status.success() {
            return Err(
                format!("walguard setup: {}", String::from_utf8_lossy(&setup.stderr)).into()
            );
        }
        Ok(deployment)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("walguard.toml")
    }

    /// The name of this database's slot `suffix`.
    fn slot(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.name)
    }

    /// Points the configuration at the slot `suffix`.
    fn configure(&self, suffix: &str, extra: &str) -> BenchResult<()> {
        let config = format!(
            "schemas = \"schemas\"\n[source]\nurl = {:?}\nslot = \"{}\"\n{extra}",
            self.url,
            self.slot(suffix)
        );
        std::fs::write(self.config_path(), config)?;
        Ok(())
    }

    fn walguard(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_walguard"));
        command
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .current_dir(self.dir.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        command
    }

    async fn current_lsn(&self) -> BenchResult<String> {
        Ok(self.client.query_one("SELECT pg_current_wal_lsn()::text", &[]).await?.get(0))
    }

    async fn count(&self, sql: &str) -> BenchResult<i64> {
        Ok(self.client.query_one(sql, &[]).await?.get(0))
    }
}

/// One throughput scenario.
struct Scenario<'a> {
    server: &'a ThrowawayPostgres,
    shape: Shape,
    bad_percent: u64,
    rows: u64,
    runs: u64,
}

impl Scenario<'_> {
    async fn run(&self) -> BenchResult<Figures> {
        // A database whose slots all exist before the load.
        let name = format!("bench_{}_{}", self.shape.name(), self.bad_percent);
        let deployment = Deployment::create(self.server, &name, "").await?;
        for run in 0..self.runs {
            for prefix in ["recv", "walguard"] {
                let slot = deployment.slot(&format!("{prefix}_{run}"));
                let sql =
                    format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')");
                deployment.client.batch_execute(&sql).await?;
            }
        }

        // The load, then the position that covers it.
        let one_in = 100 / self.bad_percent;
        let load = match self.shape {
            Shape::Large => (0..4)
                .map(|part| {
                    let quarter = self.rows / 4;
                    shared::insert_rows(part * quarter + 1, (part + 1) * quarter, one_in)
                })
                .collect::<Vec<_>>()
                .join(";\n"),
            Shape::Small => format!(
                "DO $$ BEGIN FOR t IN 0..{} LOOP {}; COMMIT; END LOOP; END $$",
                self.rows / 10 - 1,
                shared::insert_rows_between("t * 10 + 1", "t * 10 + 10", one_in)
            ),
            Shape::Single => shared::insert_rows(1, self.rows, one_in),
        };
        deployment.client.batch_execute(&load).await?;
        let end = deployment.current_lsn().await?;
        let expected = deployment.count("SELECT count(*) FROM orders WHERE amount < 0").await?;

        // Alternate the two consumers on the same WAL.
        let mut recvlogical = Vec::new();
        let mut walguard = Vec::new();
        let (mut peak_rss, mut cpu) = (0u64, Duration::ZERO);
        for run in 0..self.runs {
            recvlogical.push(drain_with_recvlogical(
                &deployment.url,
                &deployment.slot(&format!("recv_{run}")),
                &end,
            )?);
            // Every run starts from an empty sink, so none is a replay of
            // violations an earlier run already wrote.
            deployment.client.batch_execute(EMPTY_SINK).await?;
            deployment.configure(&format!("walguard_{run}"), "")?;
            let measured = drain_with_walguard(&deployment, &end)?;
            walguard.push(measured.elapsed);
            peak_rss = peak_rss.max(measured.peak_rss_kb);
            cpu += measured.cpu;
        }

        // Every bad row was found, once.
        let found = deployment
            .count("SELECT count(DISTINCT row_key) FROM walguard.violations WHERE rule = 'minimum'")
            .await?;
        if found != expected {
            return Err(format!("walguard found {found} bad rows, the table has {expected}").into());
        }
        let violations = deployment.count("SELECT count(*) FROM walguard.violations").await?;

        let rows = self.rows as f64;
        Ok(Figures {
            shape: self.shape,
            bad_percent: self.bad_percent,
            rows: self.rows,
            violations,
            recvlogical_rows_per_s: rows / median(&mut recvlogical).as_secs_f64(),
            walguard_rows_per_s: rows / median(&mut walguard).as_secs_f64(),
            peak_rss_mb: peak_rss as f64 / 1024.0,
            cpu_s_per_million: cpu.as_secs_f64() / self.runs as f64 / (rows / 1e6),
        })
    }
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// Where the PostgreSQL client and server binaries are.
fn pg_binary(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.exists());
    on_path.unwrap_or_else(|| Path::new("/usr/lib/postgresql/15/bin").join(name))
}

fn drain_with_recvlogical(url: &str, slot: &str, end: &str) -> BenchResult<Duration> {
    let started = Instant::now();
    let status = Command::new(pg_binary("pg_recvlogical"))
        .args(["--dbname", url, "--slot", slot, "--start", "--no-loop", "--endpos", end])
        .args(["--file", "/dev/null", "--option", "proto_version=1"])
        .args(["--option", "publication_names=walguard,walguard_inserts"])
        .stdin(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("pg_recvlogical exited with {status}").into());
    }
    Ok(started.elapsed())
}

/// What one `walguard run --until-lsn` took.
struct Measured {
    elapsed: Duration,
    peak_rss_kb: u64,
    cpu: Duration,
}

fn drain_with_walguard(deployment: &Deployment, end: &str) -> BenchResult<Measured> {
    let cpu_before = children_cpu();
    let started = Instant::now();
    let mut child = deployment.walguard(&["run", "--until-lsn", end]).spawn()?;
    let mut peak_rss_kb = 0;
    let status = loop {
        peak_rss_kb = peak_rss_kb.max(high_water_mark_kb(child.id()).unwrap_or(0));
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(RSS_SAMPLE);
    };
    let elapsed = started.elapsed();
    if !status.success() {
        return Err(format!("walguard run exited with {status}").into());
    }
    Ok(Measured { elapsed, peak_rss_kb, cpu: children_cpu() - cpu_before })
}

/// The peak resident set size of a running process (`VmHWM`), in KiB.
fn high_water_mark_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system time of every child process waited for so far.
fn children_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_CHILDREN) else {
        return Duration::ZERO;
    };
    let seconds = |tv: nix::sys::time::TimeVal| {
        Duration::from_secs(tv.tv_sec() as u64) + Duration::from_micros(tv.tv_usec() as u64)
    };
    seconds(usage.user_time()) + seconds(usage.system_time())
}

/// Latency samples in milliseconds.
struct Latency {
    to_violation_row: Vec<f64>,
    to_webhook: Vec<f64>,
    alerts: usize,
}

async fn latency(server: &ThrowawayPostgres, rate: u64, seconds: u64) -> BenchResult<Latency> {
    // A receiver that notes when each alert arrived.
    let received: Arc<Mutex<Vec<(f64, Value)>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let received = received.clone();
            move |body: axum::body::Bytes| async move {
                let now = unix_seconds(SystemTime::now());
                if let Ok(payload) = serde_json::from_slice(&body) {
                    received.lock().expect("the receiver's list").push((now, payload));
                }
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    // walguard streaming, then a steady writer: batches every 10 ms.
    // A window of 1 ms: every bad row opens a group of its own and alerts at
    // once, so each one is a latency sample (folded summaries wait for their
    // window by design).
    let extra = format!("[[webhooks]]\nurl = {hook_url:?}\ngroup_window_ms = 1\n");
    let deployment = Deployment::create(server, "bench_latency", &extra).await?;
    let mut child = deployment.walguard(&["run"]).spawn()?;
    let per_tick = (rate / 100).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut next_id = 1;
    for _ in 0..seconds * 100 {
        tick.tick().await;
        let sql = shared::insert_rows(next_id, next_id + per_tick - 1, 100);
        deployment.client.batch_execute(&sql).await?;
        next_id += per_tick;
    }

    // Wait until every bad row is recorded, then stop walguard.
    let expected = deployment.count("SELECT count(*) FROM orders WHERE amount < 0").await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let counted = "SELECT count(DISTINCT row_key) FROM walguard.violations WHERE rule = 'minimum'";
    while deployment.count(counted).await? < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();

    // Violation rows: sink commit minus source commit.
    let rows = deployment
        .client
        .query(
            "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - commit_ts)::float8 * 1000,
                    commit_lsn::text, row_key::text, extract(epoch FROM commit_ts)::float8
             FROM walguard.violations WHERE rule = 'minimum'",
            &[],
        )
        .await?;
    let to_violation_row = rows.iter().map(|row| row.get::<_, f64>(0)).collect();
    let commit_times: std::collections::HashMap<(String, String), f64> = rows
        .iter()
        .map(|row| {
            let key: Value = serde_json::from_str(row.get(2)).unwrap_or(Value::Null);
            ((row.get::<_, String>(1), key.to_string()), row.get::<_, f64>(3))
        })
        .collect();

    // Alerts: arrival minus the source commit of each violation they list.
    let received = received.lock().expect("the receiver's list");
    let mut to_webhook = Vec::new();
    for (arrived, payload) in received.iter() {
        let mut listed = Vec::new();
        listed_violations(payload, &mut listed);
        for (lsn, key) in listed {
            if let Some(committed) = commit_times.get(&(lsn, key)) {
                to_webhook.push((arrived - committed) * 1000.0);
            }
        }
    }
    Ok(Latency { to_violation_row, to_webhook, alerts: received.len() })
}

/// Every object in an alert that names a commit LSN and a row key.
fn listed_violations(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(lsn)), Some(key)) =
                (map.get("commit_lsn"), map.get("row_key"))
            {
                out.push((lsn.clone(), key.to_string()));
            }
            map.values().for_each(|inner| listed_violations(inner, out));
        }
        Value::Array(items) => items.iter().for_each(|inner| listed_violations(inner, out)),
        _ => {}
    }
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH).map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

fn print_throughput(figures: &[Figures]) {
    println!(
        "| load | bad rows | rows | violations | pg_recvlogical rows/s | walguard rows/s | ratio | walguard peak RSS | walguard CPU s per 1M rows |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for f in figures {
        println!(
            "| {} | {} % | {} | {} | {:.0} | {:.0} | {:.2} | {:.1} MB | {:.2} |",
            f.shape.describe(),
            f.bad_percent,
            f.rows,
            f.violations,
            f.recvlogical_rows_per_s,
            f.walguard_rows_per_s,
            f.walguard_rows_per_s / f.recvlogical_rows_per_s,
            f.peak_rss_mb,
            f.cpu_s_per_million,
        );
    }
    println!();
}

fn print_latency(latency: &Latency) {
    println!("| from the bad row's commit to | samples | p50 | p99 | max |");
    println!("| --- | --- | --- | --- | --- |");
    for (what, samples) in [
        ("its violation row (sink commit)", &latency.to_violation_row),
        ("its webhook", &latency.to_webhook),
    ] {
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied();
        let show = |v: Option<f64>| v.map_or("-".to_string(), |ms| format!("{ms:.0} ms"));
        println!(
            "| {what} | {} | {} | {} | {} |",
            sorted.len(),
            show(at(0.5)),
            show(at(0.99)),
            show(sorted.last().copied())
        );
    }
    println!("\n{} webhook requests received.", latency.alerts);
}
