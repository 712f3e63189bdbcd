//! Nothing lost, nothing twice: walguard killed, the database restarted, the
//! walsender and the sink connection terminated, a huge transaction, an idle
//! slot, a graceful stop and a standby taking over. Every test compares the
//! violations with what the rows themselves say, computed in SQL.

use std::time::Duration;

use rand::RngExt;
use tokio::time::Instant;
use tokio_postgres::Client;
use walguard::throwaway::{StopMode, ThrowawayPostgres};

use crate::fixture::{Fixture, assert_success, wait_for_exit};
use crate::harness::{chain, wait_until};
use crate::running::{Running, batch_totals, signal};

/// A published table whose `value` must not be negative, and an unpublished
/// one to write WAL into.
const DDL: &str = "
CREATE TABLE readings (id bigint PRIMARY KEY, value integer, note text);
CREATE TABLE scratch (id bigint, filler text)";
const SCHEMA: &str = "x-table: public.readings\nproperties:\n  value: {minimum: 0}\n";

/// Generous bound for anything walguard should do in a few seconds.
const WAIT: Duration = Duration::from_secs(60);

async fn fixture(name: &str) -> Fixture {
    Fixture::new(name, DDL, &[("public.readings.yaml", SCHEMA)]).await
}

/// Inserts rows `first..first + count` in transactions of `per_transaction`;
/// every tenth row violates the schema.
async fn write_rows(client: &Client, first: i64, count: i64, per_transaction: i64) {
    let mut start = first;
    while start < first + count {
        let end = (start + per_transaction).min(first + count) - 1;
        let sql = format!(
            "INSERT INTO readings SELECT g, CASE WHEN g % 10 = 0 THEN -1 ELSE 1 END, 'r'
             FROM generate_series({start}, {end}) g"
        );
        client.batch_execute(&sql).await.unwrap_or_else(|err| panic!("{}", chain(&err)));
        start = end + 1;
    }
}

/// The ids of the violating rows, from the rows and from the violations
/// table, and how many violations share a row and rule with another.
async fn expected_and_found(client: &Client) -> (Vec<i64>, Vec<i64>, i64) {
    let ids = async |sql: &str| -> Vec<i64> {
        let rows = client.query(sql, &[]).await.unwrap_or_else(|err| panic!("{}", chain(&err)));
        rows.iter().map(|row| row.get(0)).collect()
    };
    let expected = ids("SELECT id FROM readings WHERE value < 0 ORDER BY id").await;
    let found = ids("SELECT (row_key->>'id')::bigint FROM walguard.violations
                     WHERE rule = 'minimum' AND column_name = 'value' ORDER BY 1")
    .await;
    let duplicates = client
        .query_one(
            "SELECT count(*) - count(DISTINCT (row_key, rule, column_name)) FROM walguard.violations",
            &[],
        )
        .await
        .unwrap_or_else(|err| panic!("{}", chain(&err)))
        .get(0);
    (expected, found, duplicates)
}

/// Asserts that the violations are exactly the violating rows, once each.
async fn assert_exact(client: &Client) -> usize {
    let (expected, found, duplicates) = expected_and_found(client).await;
    assert_eq!(duplicates, 0, "no violation may be written twice");
    assert_eq!(found.len(), expected.len(), "violations must match the violating rows");
    assert_eq!(found, expected, "violations must name exactly the violating rows");
    let total = client
        .query_one("SELECT count(*) FROM walguard.violations", &[])
        .await
        .unwrap_or_else(|err| panic!("{}", chain(&err)))
        .get::<_, i64>(0);
    assert_eq!(total as usize, expected.len(), "no other violation may appear");
    expected.len()
}

/// Waits until the violations table holds `count` rows.
async fn wait_for_violations(client: &Client, count: i64, within: Duration) {
    wait_until(within, &format!("{count} violations are written"), async || {
        let row = client.query_one("SELECT count(*) FROM walguard.violations", &[]).await;
        row.is_ok_and(|row| row.get::<_, i64>(0) >= count)
    })
    .await;
}

/// Whether the slot's confirmed position has reached `lsn`.
async fn slot_reached(client: &Client, slot: &str, lsn: &str) -> bool {
    let row = client
        .query_one(
            "SELECT coalesce(confirmed_flush_lsn >= $2::text::pg_lsn, false)
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot, &lsn],
        )
        .await;
    row.is_ok_and(|row| row.get(0))
}

async fn current_lsn(client: &Client) -> String {
    let row = client.query_one("SELECT pg_current_wal_lsn()::text", &[]).await;
    row.unwrap_or_else(|err| panic!("{}", chain(&err))).get(0)
}

#[tokio::test]
async fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    let mut fixture = fixture("crash").await;
    // Small batches: many acknowledgements for a kill to fall between.
    fixture.configure("[sink]\nbatch_max_violations = 40\n");
    fixture.setup().await;
    let client = &fixture.db.client;

    // Rounds of 40 transactions of 100 rows; each round starts walguard and
    // kills it once a random share of the round's violations is written.
    let (rounds, per_round) = (6, 4_000);
    let mut rng = rand::rng();
    let mut kills = Vec::new();
    let (mut written, mut replayed) = (0, 0);
    for round in 0..rounds {
        let mut walguard = Running::start(&fixture);
        write_rows(client, round * per_round + 1, per_round, 100).await;
        let share: f64 = if round == 0 { 0.0 } else { rng.random_range(0.05..0.95) };
        let target = ((round * per_round) as f64 / 10.0 + share * per_round as f64 / 10.0) as i64;
        wait_for_violations(client, target, WAIT).await;
        walguard.kill();
        kills.push(format!("{:.0}%", share * 100.0));
        let (all, fresh) = walguard.batch_totals();
        (written, replayed) = (written + all, replayed + all - fresh);
    }

    // A last run to the end of the WAL.
    let output = fixture.run_to_current().await;
    let (all, fresh) = batch_totals(&String::from_utf8_lossy(&output.stderr));
    (written, replayed) = (written + all, replayed + all - fresh);

    let violations = assert_exact(client).await;
    let rows = fixture.db.query_count("SELECT count(*) FROM readings").await;
    println!(
        "crash test: {rows} rows in {} transactions, {violations} violating, {rounds} SIGKILLs \
         (at {} of a round's violations); {written} violations written over {} runs, \
         {replayed} of them replays dropped by the unique key; final violations {violations}, \
         duplicates 0",
        rows / 100,
        kills.join(", "),
        rounds + 1
    );
    assert!(rows >= 20_000);
}

#[tokio::test]
async fn database_restart_fast_and_immediate_resumes_exactly() {
    let mut server = ThrowawayPostgres::start().unwrap_or_else(|err| panic!("{}", chain(&err)));
    let mut fixture =
        Fixture::on(&server, "restart", DDL, &[("public.readings.yaml", SCHEMA)]).await;
    fixture.setup().await;
    let walguard = Running::start(&fixture);
    walguard.wait_for_log("streaming", 1, WAIT).await;

    let mut first = 1;
    for (index, mode) in [StopMode::Fast, StopMode::Immediate].into_iter().enumerate() {
        // Rows in flight, then the restart while walguard streams them.
        write_rows(&fixture.db.client, first, 3_000, 100).await;
        first += 3_000;
        server.restart(mode).unwrap_or_else(|err| panic!("{}", chain(&err)));
        let back = Instant::now();
        fixture.db.client = fixture.db.connect().await;
        walguard.wait_for_log("replication resumed", index + 1, WAIT).await;
        println!(
            "database restart ({mode:?}): walguard streaming again {} ms after the server \
             accepted connections ({})",
            back.elapsed().as_millis(),
            walguard.lines_with("replication resumed").last().map_or("", |line| line.as_str())
        );
    }
    write_rows(&fixture.db.client, first, 1_000, 100).await;

    let lsn = current_lsn(&fixture.db.client).await;
    let slot = fixture.db.name.clone();
    wait_until(WAIT, "the slot reaches the end of the writes", async || {
        slot_reached(&fixture.db.client, &slot, &lsn).await
    })
    .await;
    assert_eq!(assert_exact(&fixture.db.client).await, 700);
    let warnings = walguard.lines_with("reconnecting");
    assert!(warnings.len() >= 2, "each interruption is logged: {}", walguard.log_text());
    drop(walguard);
    drop(fixture);
    server.stop().unwrap_or_else(|err| panic!("{}", chain(&err)));
}

#[tokio::test]
async fn terminated_walsender_and_sink_connection_resume_exactly() {
    let fixture = fixture("terminate").await;
    fixture.setup().await;
    let client = &fixture.db.client;
    let mut walguard = Running::start(&fixture);
    walguard.wait_for_log("streaming", 1, WAIT).await;

    // The walsender twice, the sink backend once, each while rows stream.
    let walsender = format!(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
         WHERE slot_name = '{}' AND active_pid IS NOT NULL",
        fixture.db.name
    );
    let sink = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = '{}' AND application_name = 'walguard sink'",
        fixture.db.name
    );
    let mut first = 1;
    for (round, terminate) in [&walsender, &sink, &walsender].into_iter().enumerate() {
        write_rows(client, first, 2_000, 100).await;
        first += 2_000;
        wait_for_violations(client, (first - 1) / 10 - 100, WAIT).await;
        let ended = fixture.db.query_count(&format!("SELECT count(*) FROM ({terminate}) t")).await;
        assert_eq!(ended, 1, "one backend to terminate");
        // More rows, so a write finds a terminated sink connection broken.
        write_rows(client, first, 1_000, 100).await;
        first += 1_000;
        walguard.wait_for_log("streaming", round + 2, WAIT).await;
    }

    let lsn = current_lsn(client).await;
    wait_until(WAIT, "the slot reaches the end of the writes", async || {
        slot_reached(client, &fixture.db.name, &lsn).await
    })
    .await;
    assert_eq!(assert_exact(client).await, 900);
    assert!(walguard.lines_with("reconnecting").len() >= 3, "{}", walguard.log_text());
    let status = walguard.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "walguard exited with {status}");
}

#[tokio::test]
async fn idle_slot_follows_wal_written_to_unpublished_tables() {
    let fixture = fixture("idle").await;
    fixture.setup().await;
    let client = &fixture.db.client;
    let walguard = Running::start(&fixture);
    walguard.wait_for_log("streaming", 1, WAIT).await;

    // About 64 MB of WAL in a table no schema file names.
    let start = current_lsn(client).await;
    for chunk in 0..4 {
        let sql = format!(
            "INSERT INTO scratch SELECT g, repeat(md5(g::text), 6)
             FROM generate_series({}, {}) g",
            chunk * 66_000,
            chunk * 66_000 + 65_999
        );
        fixture.db.execute(&sql).await;
    }
    let end = current_lsn(client).await;
    let written = client
        .query_one(
            "SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)::int8",
            &[&end, &start],
        )
        .await
        .expect("the WAL distance")
        .get::<_, i64>(0);
    assert!(written >= 64 << 20, "only {written} bytes of WAL written");

    let written_at = Instant::now();
    wait_until(Duration::from_secs(10), "the idle slot's confirmed position follows", async || {
        slot_reached(client, &fixture.db.name, &end).await
    })
    .await;
    println!(
        "idle slot: {} MB of unpublished WAL confirmed {} ms after the last write",
        written >> 20,
        written_at.elapsed().as_millis()
    );
    assert_eq!(fixture.db.query_count("SELECT count(*) FROM walguard.violations").await, 0);
    drop(walguard);
}

#[tokio::test]
async fn sigterm_writes_the_pending_batch_and_a_restart_replays_nothing() {
    let mut fixture = fixture("graceful").await;
    // A batch that would wait ten minutes: only the stop writes it.
    fixture.configure("[sink]\nbatch_max_delay_ms = 600000\nbatch_max_violations = 100000\n");
    fixture.setup().await;
    let client = &fixture.db.client;
    let mut walguard = Running::start(&fixture);
    walguard.wait_for_log("streaming", 1, WAIT).await;

    write_rows(client, 1, 1_000, 1_000).await;
    walguard.wait_for_log("commit read", 1, WAIT).await;
    assert_eq!(fixture.db.query_count("SELECT count(*) FROM walguard.violations").await, 0);
    let line = walguard.lines_with("commit read").remove(0);
    let commit_end = line.rsplit("lsn=").next().expect("an lsn field").trim().to_string();

    let stopped = Instant::now();
    let status = walguard.terminate(Duration::from_secs(10)).await;
    assert!(status.success(), "walguard exited with {status}:\n{}", walguard.log_text());
    println!("graceful stop: exit 0 after {} ms", stopped.elapsed().as_millis());
    assert_eq!(assert_exact(client).await, 100, "the stop wrote the pending batch");
    assert!(slot_reached(client, &fixture.db.name, &commit_end).await, "the stop acknowledged it");

    // A restart starts after the acknowledged commit: nothing is read again.
    let output = fixture.output(&["run", "--until-lsn", &commit_end]).await;
    assert_success(&output, "the restart");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(!log.contains("commit read"), "the restart replayed a transaction:\n{log}");
    assert!(!log.contains("batch written"), "the restart wrote again:\n{log}");
    assert_eq!(assert_exact(client).await, 100);
}

#[tokio::test]
async fn huge_transaction_streams_in_batches_with_bounded_memory() {
    let rows: i64 = std::env::var("WALGUARD_LARGE_TX_ROWS")
        .ok()
        .and_then(|rows| rows.parse().ok())
        .unwrap_or(200_000);
    let fixture = fixture("large_tx").await;
    fixture.setup().await;
    let client = &fixture.db.client;
    let walguard = Running::start(&fixture);
    walguard.wait_for_log("streaming", 1, WAIT).await;
    let baseline = walguard.peak_rss_kib();

    let started = Instant::now();
    write_rows(client, 1, rows, rows).await;
    walguard.wait_for_log("commit read", 1, Duration::from_secs(600)).await;
    wait_for_violations(client, rows / 10, WAIT).await;
    let peak = walguard.peak_rss_kib();
    println!(
        "large transaction: {rows} rows, {} violations, peak RSS {} MiB (at start {} MiB), \
         {} s from insert to last violation",
        rows / 10,
        peak / 1024,
        baseline / 1024,
        started.elapsed().as_secs()
    );

    // Violations were written while the transaction streamed, not at its end.
    let log = walguard.log_text();
    let before_commit = log.split("commit read").next().unwrap_or("");
    assert!(before_commit.matches("batch written").count() >= 2, "{log}");
    assert_eq!(assert_exact(client).await as i64, rows / 10);
    assert!(peak < 256 * 1024, "peak RSS {peak} KiB is not bounded");
}

#[tokio::test]
async fn standby_walguard_takes_over_when_the_active_one_is_killed() {
    let fixture = fixture("standby").await;
    fixture.setup().await;
    let client = &fixture.db.client;
    let mut active = Running::start(&fixture);
    active.wait_for_log("streaming", 1, WAIT).await;
    let mut standby = Running::start(&fixture);
    standby.wait_for_log("standing by", 1, WAIT).await;

    write_rows(client, 1, 2_000, 100).await;
    wait_for_violations(client, 200, WAIT).await;
    active.kill();
    write_rows(client, 2_001, 2_000, 100).await;

    standby.wait_for_log("streaming", 1, WAIT).await;
    wait_for_violations(client, 400, WAIT).await;
    let lsn = current_lsn(client).await;
    wait_until(WAIT, "the slot reaches the end of the writes", async || {
        slot_reached(client, &fixture.db.name, &lsn).await
    })
    .await;
    assert_eq!(assert_exact(client).await, 400);
    assert_eq!(standby.lines_with("standing by").len(), 1, "standing by is logged once");
    assert!(standby.lines_with("reconnecting").is_empty(), "{}", standby.log_text());
    let status = standby.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "the standby exited with {status}");
}

#[tokio::test]
async fn row_over_the_message_limit_is_an_error_naming_the_table() {
    let mut fixture = fixture("oversized").await;
    fixture.configure("max_message_bytes = 65536\n");
    fixture.setup().await;

    fixture.db.execute("INSERT INTO readings VALUES (1, 1, 'small')").await;
    fixture
        .db
        .execute(
            "INSERT INTO readings SELECT 2, 1, string_agg(md5(g::text), '')
             FROM generate_series(1, 8000) g",
        )
        .await;
    let lsn = fixture.current_lsn().await;
    let output = fixture.output(&["run", "--until-lsn", &lsn]).await;

    assert!(!output.status.success(), "an oversized row must stop walguard");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message = stderr.lines().find(|line| line.starts_with("error:")).unwrap_or("");
    println!("oversized row: {message}");
    assert!(message.contains("table public.readings"), "names the table: {stderr}");
    assert!(message.contains("max_message_bytes"), "names the setting: {stderr}");
}

#[tokio::test]
async fn slow_sink_slows_the_stream_without_tripping_wal_sender_timeout() {
    let fixture = fixture("backpressure").await;
    fixture.setup().await;
    let client = &fixture.db.client;
    let timeout_secs = 2;
    fixture
        .db
        .execute(&format!(
            "ALTER DATABASE {} SET wal_sender_timeout = '{timeout_secs}s'",
            fixture.db.name
        ))
        .await;
    let mut walguard = Running::start(&fixture);
    walguard.wait_for_log("streaming", 1, WAIT).await;
    let walsender = format!(
        "SELECT coalesce(active_pid, 0)::int8 FROM pg_replication_slots WHERE slot_name = '{}'",
        fixture.db.name
    );

    // The timeout is in force: a walguard that cannot answer is cut off.
    let frozen = fixture.db.query_count(&walsender).await;
    signal(walguard.child.id(), "-STOP");
    wait_until(WAIT, "the server drops a walguard that does not answer", async || {
        fixture.db.query_count(&walsender).await != frozen
    })
    .await;
    signal(walguard.child.id(), "-CONT");
    walguard.wait_for_log("streaming", 2, WAIT).await;
    let reconnects = walguard.lines_with("reconnecting").len();

    // A sink blocked for several timeouts while more events arrive than the
    // transport buffers: the stream waits, the session survives.
    let sink_lock = fixture.db.connect().await;
    sink_lock
        .batch_execute("BEGIN; LOCK TABLE walguard.violations IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap_or_else(|err| panic!("{}", chain(&err)));
    let session = fixture.db.query_count(&walsender).await;
    write_rows(client, 1, 20_000, 100).await;
    let blocked = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'walguard sink'
         AND datname = '{}' AND wait_event_type = 'Lock'
         AND now() - query_start > interval '{} s'",
        fixture.db.name,
        3 * timeout_secs
    );
    wait_until(WAIT, "the sink write has waited three timeouts", async || {
        fixture.db.query_count(&blocked).await == 1
    })
    .await;
    sink_lock.batch_execute("COMMIT").await.unwrap_or_else(|err| panic!("{}", chain(&err)));

    wait_for_violations(client, 2_000, WAIT).await;
    assert_eq!(fixture.db.query_count(&walsender).await, session, "the same walsender streams");
    assert_eq!(walguard.lines_with("reconnecting").len(), reconnects, "{}", walguard.log_text());
    assert_eq!(assert_exact(client).await, 2_000);
    fixture
        .db
        .execute(&format!("ALTER DATABASE {} RESET wal_sender_timeout", fixture.db.name))
        .await;
    let status = walguard.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "walguard exited with {status}");
}

#[tokio::test]
async fn slot_dropped_while_disconnected_stops_and_says_to_run_setup() {
    let fixture = fixture("slot_dropped").await;
    fixture.setup().await;
    let mut walguard = Running::start(&fixture);
    walguard.wait_for_log("streaming", 1, WAIT).await;

    // Frozen, walguard cannot take the slot back before it is dropped.
    signal(walguard.child.id(), "-STOP");
    let slot = &fixture.db.name;
    fixture
        .db
        .execute(&format!(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
             WHERE slot_name = '{slot}'"
        ))
        .await;
    wait_until(WAIT, "the slot is free and dropped", async || {
        let drop = format!("SELECT pg_drop_replication_slot('{slot}')");
        fixture.db.client.batch_execute(&drop).await.is_ok()
    })
    .await;
    signal(walguard.child.id(), "-CONT");

    let status = wait_for_exit(&mut walguard.child, WAIT).await;
    assert!(!status.success(), "a dropped slot is fatal");
    walguard.wait_for_log("walguard setup", 1, WAIT).await;
}

#[tokio::test]
async fn publication_dropped_while_streaming_stops_and_says_to_run_setup() {
    let fixture = fixture("publication_dropped").await;
    fixture.setup().await;
    let mut walguard = Running::start(&fixture);
    walguard.wait_for_log("streaming", 1, WAIT).await;

    fixture.db.execute("DROP PUBLICATION walguard").await;
    fixture.db.execute("INSERT INTO readings VALUES (1, -1, 'r')").await;

    let status = wait_for_exit(&mut walguard.child, WAIT).await;
    assert!(!status.success(), "a dropped publication is fatal");
    walguard.wait_for_log("walguard setup", 1, WAIT).await;
    println!("dropped publication: {}", walguard.lines_with("walguard setup")[0]);
    assert!(walguard.lines_with("reconnecting").is_empty(), "{}", walguard.log_text());
}

#[tokio::test]
async fn refused_login_is_fatal_at_once() {
    let fixture = fixture("refused").await;
    fixture.setup().await;
    let url = fixture.db.url.replace("postgres@", "nobody@");
    let mut command = fixture.command(&["run"]);
    let output = tokio::task::spawn_blocking(move || {
        command.env("WALGUARD__SOURCE__URL", url).output().expect("walguard runs")
    })
    .await
    .expect("the command thread");
    assert!(!output.status.success(), "a refused login is fatal");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("role \"nobody\" does not exist"), "{stderr}");
    assert!(!stderr.contains("reconnecting"), "a refused login is not retried: {stderr}");
}

#[tokio::test]
async fn tls_the_server_does_not_offer_is_fatal_at_once() {
    let fixture = fixture("no_tls").await;
    fixture.setup().await;
    let url = format!("{}?sslmode=require", fixture.db.url);
    let log = fixture.dir.path().join("no_tls.log");
    let mut command = fixture.command(&["run"]);
    command.env("WALGUARD__SOURCE__URL", url);
    command.stderr(std::fs::File::create(&log).expect("a log file"));
    let mut child = command.spawn().expect("walguard starts");

    let status = wait_for_exit(&mut child, WAIT).await;
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!status.success(), "missing TLS is fatal: {stderr}");
    assert!(stderr.contains("TLS"), "the message says why: {stderr}");
    assert!(!stderr.contains("reconnecting"), "missing TLS is not retried: {stderr}");
}

#[tokio::test]
async fn refused_connection_is_retried_and_logged_with_its_cause() {
    let fixture = fixture("refused_port").await;
    fixture.setup().await;
    let closed = crate::webhook_receiver::free_port();
    let url = format!("postgresql://postgres@{closed}/{}", fixture.db.name);
    let log = fixture.dir.path().join("refused.log");
    let mut command = fixture.command(&["run"]);
    command.env("WALGUARD__SOURCE__URL", url);
    command.stderr(std::fs::File::create(&log).expect("a log file"));
    let mut child = command.spawn().expect("walguard starts");

    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(WAIT, "a reconnect attempt is logged with its cause", async || {
        let text = read();
        text.contains("reconnecting") && text.contains("refused")
    })
    .await;
    assert!(child.try_wait().expect("its status").is_none(), "still retrying:\n{}", read());
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}

#[tokio::test]
async fn invalidated_slot_stops_and_says_to_set_up_again() {
    let server = ThrowawayPostgres::start().unwrap_or_else(|err| panic!("{}", chain(&err)));
    let fixture = Fixture::on(&server, "lost", DDL, &[("public.readings.yaml", SCHEMA)]).await;
    fixture.setup().await;
    let mut walguard = Running::start(&fixture);
    walguard.wait_for_log("streaming", 1, WAIT).await;

    // A frozen walguard, a tiny WAL allowance and a few segments of WAL.
    signal(walguard.child.id(), "-STOP");
    fixture.db.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'").await;
    fixture.db.execute("SELECT pg_reload_conf()").await;
    for _ in 0..3 {
        fixture
            .db
            .execute(
                "INSERT INTO scratch SELECT g, md5(g::text) FROM generate_series(1, 1000) g;
                 SELECT pg_switch_wal()",
            )
            .await;
    }
    fixture.db.execute("CHECKPOINT").await;
    let lost = format!(
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{}' AND wal_status = 'lost'",
        fixture.db.name
    );
    assert_eq!(fixture.db.query_count(&lost).await, 1, "the checkpoint invalidated the slot");
    signal(walguard.child.id(), "-CONT");

    let status = wait_for_exit(&mut walguard.child, WAIT).await;
    assert!(!status.success(), "an invalidated slot is fatal");
    walguard.wait_for_log("walguard setup", 1, WAIT).await;
}

#[tokio::test]
async fn only_changes_to_open_rows_carry_resolutions_and_they_are_written_in_bounded_batches() {
    let mut fixture = fixture("open_states_batches").await;
    fixture.configure("[sink]\nbatch_max_violations = 100\n");
    fixture.setup().await;
    let client = &fixture.db.client;
    let walguard = Running::start(&fixture);
    walguard.wait_for_log("streaming", 1, WAIT).await;

    // 200 bad rows leave open states.
    write_rows(client, 1, 2000, 2000).await;
    wait_for_violations(client, 200, WAIT).await;
    walguard.wait_for_log("commit read", 1, WAIT).await;

    // A transaction of 2 000 new good rows settles nothing: no batch.
    client
        .batch_execute(
            "INSERT INTO readings SELECT g, 1, 'fine' FROM generate_series(5000, 6999) g",
        )
        .await
        .expect("the good rows");
    walguard.wait_for_log("commit read", 2, WAIT).await;

    // Fixing the 200 bad rows, and touching 1 800 good ones, settles 200
    // rows, in batches of at most 100 written as the transaction streamed.
    client.batch_execute("UPDATE readings SET value = 2 WHERE id <= 2000").await.expect("the fix");
    walguard.wait_for_log("commit read", 3, WAIT).await;
    walguard.wait_for_log("resolutions=100", 2, WAIT).await;
    let log = walguard.log_text();
    let resolutions: Vec<usize> = log
        .lines()
        .filter_map(|line| line.split("resolutions=").nth(1)?.split(' ').next()?.parse().ok())
        .filter(|&count| count > 0)
        .collect();
    assert_eq!(resolutions, [100, 100], "only the fixed rows carry resolutions:\n{log}");

    let deadline = std::time::Instant::now() + WAIT;
    let unresolved = "SELECT count(*) FROM walguard.violation_state WHERE status <> 'resolved'";
    while client.query_one(unresolved, &[]).await.expect("the states").get::<_, i64>(0) > 0 {
        assert!(std::time::Instant::now() < deadline, "states left unresolved");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
