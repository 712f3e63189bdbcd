//! Monitors (`x-monitors`): tables that stop receiving rows (`freshness`) or
//! receive too few (`volume`), recorded as violations with `source = monitor`.
//!
//! The pipeline counts each committed transaction's inserts into monitored
//! tables and hands them to [`Activity`]; the monitor task takes them every
//! [`TICK`], feeds each table's [`episode::TableMonitor`], and writes what it
//! raises and resolves to the sink (see [`record`]). The task follows schema
//! reloads: a table whose monitors appear starts its clock then.
//!
//! An episode is written once under a key naming its start, and its end as a
//! second row with `status = resolved`. At start, open episodes are read back
//! from the violations table, so a restart neither raises one again nor
//! forgets to resolve it.

mod episode;
mod record;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{SinkSettings, WebhookSettings};
use crate::schema::{QualifiedName, SchemaSet};
use crate::telemetry::metrics as telemetry;
use episode::{Event, TableMonitor};

/// How often the monitors are evaluated: the delay after which an episode is
/// raised or resolved.
pub const TICK: Duration = Duration::from_secs(1);

/// Inserts read from the stream and not yet taken by the monitor task.
#[derive(Debug, Default)]
pub struct Activity {
    pending: Mutex<Vec<(SystemTime, QualifiedName, u64)>>,
}

impl Activity {
    /// Notes a committed transaction's insert counts per table, read now.
    pub fn record(&self, counts: impl Iterator<Item = (QualifiedName, u64)>) {
        let now = SystemTime::now();
        if let Ok(mut pending) = self.pending.lock() {
            pending.extend(counts.map(|(table, count)| (now, table, count)));
        }
    }

    fn take(&self) -> Vec<(SystemTime, QualifiedName, u64)> {
        self.pending.lock().map(|mut pending| std::mem::take(&mut *pending)).unwrap_or_default()
    }
}

/// Runs the monitors until `stop` is cancelled. A sink that cannot be written
/// is retried at the next tick with the same events, which are idempotent.
pub async fn run(
    sink: SinkSettings,
    webhooks: Vec<WebhookSettings>,
    outbox_ready: Arc<Notify>,
    mut schemas: watch::Receiver<Arc<SchemaSet>>,
    activity: Arc<Activity>,
    stop: CancellationToken,
) {
    let mut writer = record::Writer::new(sink, webhooks, outbox_ready);
    let mut monitors: HashMap<QualifiedName, TableMonitor> = HashMap::new();
    let mut restored = false;
    let mut unwritten: Vec<(QualifiedName, Event)> = Vec::new();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = SystemTime::now();

        // Follow reloads: watch new monitored tables, forget removed ones.
        let current = schemas.borrow_and_update().clone();
        monitors.retain(|table, _| {
            current.get(&table.schema, &table.name).is_some_and(|s| !s.monitors().is_empty())
        });
        for schema in current.tables().filter(|schema| !schema.monitors().is_empty()) {
            let settings = schema.monitors().clone();
            match monitors.get_mut(schema.table()) {
                Some(monitor) => monitor.update(settings, now),
                None => {
                    let monitor = TableMonitor::new(schema.table().clone(), settings, now);
                    monitors.insert(schema.table().clone(), monitor);
                }
            }
        }
        if monitors.is_empty() {
            activity.take();
            continue;
        }

        // Take over episodes a previous run left open, once.
        if !restored {
            match writer.open_episodes().await {
                Ok(open) => {
                    for (table, rule, key) in open {
                        if let Some(monitor) = monitors.get_mut(&table) {
                            monitor.restore(&rule, key);
                        }
                    }
                    restored = true;
                }
                Err(err) => {
                    tracing::warn!(error = %err,
                        "monitors: failed to read open episodes, retrying");
                    continue;
                }
            }
        }

        // Feed the inserts, evaluate, write.
        for (at, table, count) in activity.take() {
            if let Some(monitor) = monitors.get_mut(&table) {
                let mut events = Vec::new();
                monitor.record(at, count, &mut events);
                unwritten.extend(events.into_iter().map(|event| (table.clone(), event)));
            }
        }
        for (table, monitor) in &mut monitors {
            let mut events = Vec::new();
            monitor.evaluate(now, &mut events);
            unwritten.extend(events.into_iter().map(|event| (table.clone(), event)));
        }
        if unwritten.is_empty() {
            continue;
        }
        match writer.write(&unwritten, &current).await {
            Ok(()) => {
                for (table, event) in unwritten.drain(..) {
                    let (rule, kind) = match &event {
                        Event::Raised { rule, .. } => (*rule, "raised"),
                        Event::Resolved { rule, .. } => (*rule, "resolved"),
                    };
                    tracing::info!(table = %table, rule, event = kind, "monitor episode recorded");
                    metrics::counter!(telemetry::MONITOR_EPISODES_TOTAL,
                        telemetry::RULE => rule, telemetry::EVENT => kind)
                    .increment(1);
                }
            }
            Err(err) => tracing::warn!(error = %err, "monitors: failed to record, retrying"),
        }
    }
}
