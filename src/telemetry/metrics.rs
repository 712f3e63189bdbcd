//! Every metric walguard exports, named in one place.
//!
//! Names follow Prometheus conventions: a `walguard_` prefix, base units, and
//! `_total` on counters. Labels have few values (an outcome, never a table, a
//! row key or an endpoint URL), so a busy database cannot blow up the series.
//! Without an `[admin] listen` address no recorder is installed and these
//! calls cost next to nothing.

/// Replication messages (changes, relations, types) read from the stream.
pub const MESSAGES_TOTAL: &str = "walguard_replication_messages_total";
/// Source transactions whose commit was read.
pub const TRANSACTIONS_TOTAL: &str = "walguard_transactions_total";
/// Violation rows newly written to the sink (replays not counted).
pub const VIOLATIONS_TOTAL: &str = "walguard_violations_total";
/// Batches committed to the sink.
pub const BATCHES_TOTAL: &str = "walguard_sink_batches_total";
/// The furthest source position acknowledged to the server.
pub const ACKNOWLEDGED_LSN: &str = "walguard_acknowledged_lsn";
/// Sessions that ended with an error and were retried.
pub const RECONNECTS_TOTAL: &str = "walguard_reconnects_total";
/// Whether a replication session is streaming (1) or not (0).
pub const STREAMING: &str = "walguard_streaming";
/// Webhook delivery attempts, by `outcome`.
pub const WEBHOOK_ATTEMPTS_TOTAL: &str = "walguard_webhook_attempts_total";

/// Schema reloads, by `outcome` ([`APPLIED`] or [`REFUSED`]).
pub const SCHEMA_RELOADS_TOTAL: &str = "walguard_schema_reloads_total";
/// Monitor episodes written, by `rule` (`freshness`, `volume`) and `event`
/// (`raised`, `resolved`).
pub const MONITOR_EPISODES_TOTAL: &str = "walguard_monitor_episodes_total";

/// The `outcome` label of [`WEBHOOK_ATTEMPTS_TOTAL`] and [`SCHEMA_RELOADS_TOTAL`].
pub const OUTCOME: &str = "outcome";
/// A delivery the endpoint accepted.
pub const DELIVERED: &str = "delivered";
/// A failed attempt that will be retried.
pub const RETRIED: &str = "retried";
/// A delivery given up after its last attempt.
pub const DEAD: &str = "dead";
/// A reload whose schemas now run.
pub const APPLIED: &str = "applied";
/// A reload that left the previous schemas running.
pub const REFUSED: &str = "refused";
/// The `rule` label of [`MONITOR_EPISODES_TOTAL`].
pub const RULE: &str = "rule";
/// The `event` label of [`MONITOR_EPISODES_TOTAL`].
pub const EVENT: &str = "event";

/// Describes every metric, so a scrape shows help text and units.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(MESSAGES_TOTAL, "replication messages read from the stream");
    describe_counter!(TRANSACTIONS_TOTAL, "source transactions whose commit was read");
    describe_counter!(VIOLATIONS_TOTAL, "violations newly written to the sink");
    describe_counter!(BATCHES_TOTAL, "batches committed to the sink");
    describe_gauge!(ACKNOWLEDGED_LSN, "furthest source lsn acknowledged, as a number");
    describe_counter!(RECONNECTS_TOTAL, "replication sessions retried after an error");
    describe_gauge!(STREAMING, "1 while a replication session is streaming");
    describe_counter!(WEBHOOK_ATTEMPTS_TOTAL, "webhook delivery attempts by outcome");
    describe_counter!(SCHEMA_RELOADS_TOTAL, "schema reloads by outcome");
    describe_counter!(MONITOR_EPISODES_TOTAL, "monitor episodes written by rule and event");
}
