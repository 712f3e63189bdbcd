//! Reference checks (`x-references`): a referencing value must exist in the
//! referenced table's column, the way a foreign key would demand, for tables
//! where no foreign key exists. This is how orphans, such as orders whose
//! account was never created, are caught.
//!
//! The pipeline puts every value written to a referenced column into
//! [`KnownKeys`], a bounded LRU per referenced column, so a key inserted
//! earlier in the stream counts as existing. A referencing value found there
//! passes at once, with no allocation; any other non-NULL one becomes a
//! [`ReferenceCheck`], settled when the batch is written:
//!
//! 1. a key that became known since (its parent came later in the stream)
//!    passes without a query;
//! 2. the rest are looked up in one query per referenced column on a SQL
//!    connection of their own to the source database (never the replication
//!    connection). pgoutput (protocol version 1) sends a transaction only
//!    once it has committed, so the source already holds every row of it,
//!    a parent written after its child included;
//! 3. a key still missing is a `reference` violation, unless the column has
//!    a grace window that has not ended: the check is then stored in the sink
//!    table `pending_references` in the batch's own transaction (see
//!    [`crate::sink::pending`]) and looked up once more when it is due.
//!
//! A look-up that fails or times out never stops the stream and never
//! reports a row: its checks are stored as pending and tried again
//! [`RETRY_AFTER`] later. Checks wait in memory only until the batch is
//! written, which happens at the latest when `batch_max_violations` of them
//! are waiting. What a run cost the source is counted in [`Load`].
//!
//! The look-up sees the source as it is when the batch is written, not as it
//! was at the change's commit: a parent deleted in between makes its child
//! an orphan, and, without a grace window, a parent committed after its
//! child but before the batch is written counts as existing.

mod lookup;

use std::num::NonZeroUsize;
use std::time::{Duration, SystemTime};

use lru::LruCache;

use crate::config::ConnectionSettings;
use crate::schema::{ColumnRef, SchemaSet};
use crate::sink::{Batch, PendingReference, Resolution, Sink, SinkError, Violation};

/// How many keys known to exist are remembered, per referenced column.
pub const KNOWN_KEYS: usize = 100_000;

/// How long a failed look-up waits before it is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(10);

/// How many stored checks are read back at once when due.
const DUE_BATCH: i64 = 1_000;

/// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const POSTGRES_EPOCH_US: u64 = 946_684_800_000_000;

/// The distinct referenced columns of a schema set, in a stable order; a
/// check names its target by index into this list.
pub fn targets(schemas: &SchemaSet) -> Vec<ColumnRef> {
    let mut targets: Vec<ColumnRef> = schemas
        .tables()
        .flat_map(|table| table.references().map(|(_, target)| target.clone()))
        .collect();
    targets.sort_by(|a, b| (&a.table, &a.column).cmp(&(&b.table, &b.column)));
    targets.dedup();
    targets
}

/// Keys known to exist, per referenced column: bounded LRUs, so memory stays
/// fixed however many keys the stream carries.
pub struct KnownKeys {
    targets: Vec<ColumnRef>,
    caches: Vec<LruCache<String, ()>>,
}

impl KnownKeys {
    /// Empty caches for the referenced columns `targets` (see [`targets`]).
    pub fn new(targets: Vec<ColumnRef>) -> Self {
        let capacity = NonZeroUsize::new(KNOWN_KEYS).unwrap_or(NonZeroUsize::MIN);
        let caches = targets.iter().map(|_| LruCache::new(capacity)).collect();
        KnownKeys { targets, caches }
    }

    /// The referenced columns; a target index points into this list.
    pub fn targets(&self) -> &[ColumnRef] {
        &self.targets
    }

    /// The index of a referenced column, if the current schemas name it.
    pub fn index_of(&self, target: &ColumnRef) -> Option<usize> {
        self.targets.iter().position(|candidate| candidate == target)
    }

    /// Whether `value` is known to exist in target `target`.
    pub fn contains(&mut self, target: usize, value: &str) -> bool {
        self.caches.get_mut(target).is_some_and(|cache| cache.get(value).is_some())
    }

    /// Notes that `value` exists in target `target`.
    pub fn insert(&mut self, target: usize, value: &str) {
        if let Some(cache) = self.caches.get_mut(target)
            && cache.get(value).is_none()
        {
            cache.put(value.to_owned(), ());
        }
    }
}

/// One referencing value to find.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceCheck {
    /// The referenced column.
    pub target: ColumnRef,
    /// The value as the server sent it (text).
    pub value: String,
    /// The column's grace window.
    pub window: Option<Duration>,
    /// The violation to record if the value has no match.
    pub violation: Violation,
    /// Whether the row's table had unresolved states, so that a match should
    /// resolve a `reference` state of the row.
    pub resolve: bool,
}

/// What reference checking cost the source database in this run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Referencing values checked.
    pub checks: u64,
    /// Of those, settled by the cache of known keys.
    pub cache_hits: u64,
    /// Look-up queries sent to the source.
    pub queries: u64,
}

impl Load {
    /// Look-up queries per 1 000 checked values.
    pub fn queries_per_thousand(&self) -> f64 {
        if self.checks == 0 { 0.0 } else { self.queries as f64 * 1000.0 / self.checks as f64 }
    }
}

/// A check being settled: fresh from the stream or read back from the sink.
struct Waiting {
    target: ColumnRef,
    value: String,
    /// When a missing key becomes a violation.
    due: SystemTime,
    violation: Violation,
    stored: bool,
    resolve: bool,
}

/// Settles reference checks; owns the look-up connection and the cache.
pub struct Checker {
    lookup: lookup::Lookup,
    next_due: Option<SystemTime>,
    refresh_due: bool,
    load: Load,
}

impl Checker {
    /// A checker that connects to `source` on first need.
    pub fn new(source: ConnectionSettings) -> Self {
        Checker {
            lookup: lookup::Lookup::new(source),
            next_due: None,
            refresh_due: true,
            load: Load::default(),
        }
    }

    /// What checking has cost so far; `known_hits` counts the values the
    /// pipeline settled from the known keys before they became checks.
    pub fn load(&self, known_hits: u64) -> Load {
        Load {
            checks: self.load.checks + known_hits,
            cache_hits: self.load.cache_hits + known_hits,
            queries: self.load.queries,
        }
    }

    /// When a stored check is next due, once [`Checker::refresh`] has read it.
    pub fn next_due(&self) -> Option<SystemTime> {
        self.next_due
    }

    /// Forgets when the next stored check is due, after a failed session
    /// whose batch may not have been written: it is read again.
    pub fn restart(&mut self) {
        self.next_due = None;
        self.refresh_due = true;
    }

    /// Reads when the next stored check is due, after start and after due
    /// checks were settled.
    pub async fn refresh(&mut self, sink: &Sink) -> Result<(), SinkError> {
        if self.refresh_due {
            self.next_due = sink.next_reference_due().await?;
            self.refresh_due = false;
        }
        Ok(())
    }

    /// Settles `checks` and the stored checks that are due, adding
    /// violations, resolutions and pending checks to `batch`, and found keys
    /// to `known`.
    pub async fn settle(
        &mut self,
        checks: Vec<ReferenceCheck>,
        known: &mut KnownKeys,
        sink: &Sink,
        batch: &mut Batch,
    ) -> Result<(), SinkError> {
        let now = SystemTime::now();

        // Settle from the cache what it can; the rest waits for a look-up.
        let mut waiting = Vec::new();
        for check in checks {
            self.load.checks += 1;
            let index = known.index_of(&check.target);
            if index.is_some_and(|index| known.contains(index, &check.value)) {
                self.load.cache_hits += 1;
                if check.resolve {
                    batch.resolutions.push(reference_resolution(&check.violation));
                }
                continue;
            }
            let window = check.window.unwrap_or_default();
            waiting.push(Waiting {
                target: check.target,
                value: check.value,
                due: commit_time(&check.violation) + window,
                violation: check.violation,
                stored: false,
                resolve: check.resolve,
            });
        }
        if self.next_due.is_some_and(|due| due <= now) {
            self.read_due(sink, now, &mut waiting).await?;
        }
        if waiting.is_empty() {
            return Ok(());
        }

        // Look the rest up; a failure puts them all off, stored.
        let keys: Vec<(&ColumnRef, &str)> =
            waiting.iter().map(|w| (&w.target, w.value.as_str())).collect();
        let found = match self.lookup.find(&keys, &mut self.load).await {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!(error = %err, checks = waiting.len(),
                    "reference look-up failed; retrying later");
                for w in waiting {
                    let due = w.due.max(now + RETRY_AFTER);
                    self.store(batch, w, due);
                }
                return Ok(());
            }
        };

        // Sort each check into found, still waiting, or missing.
        for w in waiting {
            if found.contains(&(w.target.clone(), w.value.clone())) {
                if w.stored {
                    batch.pending_done.push(w.violation.dedup_key());
                }
                if w.resolve {
                    batch.resolutions.push(reference_resolution(&w.violation));
                }
                if let Some(index) = known.index_of(&w.target) {
                    known.insert(index, &w.value);
                }
            } else if w.due > now {
                let due = w.due;
                self.store(batch, w, due);
            } else {
                if w.stored {
                    batch.pending_done.push(w.violation.dedup_key());
                }
                batch.violations.push(w.violation);
            }
        }
        Ok(())
    }

    /// Adds the stored checks due at `now` to `waiting`.
    async fn read_due(
        &mut self,
        sink: &Sink,
        now: SystemTime,
        waiting: &mut Vec<Waiting>,
    ) -> Result<(), SinkError> {
        self.refresh_due = true;
        self.next_due = None;
        for pending in sink.due_references(now, DUE_BATCH).await? {
            waiting.push(Waiting {
                target: pending.target,
                value: pending.value,
                due: pending.due,
                violation: pending.violation,
                stored: true,
                resolve: true,
            });
        }
        Ok(())
    }

    /// Keeps a check in the sink until `due`.
    fn store(&mut self, batch: &mut Batch, waiting: Waiting, due: SystemTime) {
        if !self.refresh_due {
            self.next_due = Some(self.next_due.map_or(due, |next| next.min(due)));
        }
        batch.pending_added.push(PendingReference {
            target: waiting.target,
            value: waiting.value,
            due,
            violation: waiting.violation,
        });
    }
}

/// The commit time of a violation's change as a clock time.
fn commit_time(violation: &Violation) -> SystemTime {
    let micros = u64::try_from(violation.commit_time).unwrap_or_default() + POSTGRES_EPOCH_US;
    SystemTime::UNIX_EPOCH + Duration::from_micros(micros)
}

/// The resolution of a row's `reference` state once its value was found.
fn reference_resolution(violation: &Violation) -> Resolution {
    Resolution {
        table_schema: violation.table_schema.clone(),
        table_name: violation.table_name.clone(),
        row_key: violation.row_key.clone(),
        commit_lsn: violation.commit_lsn,
        change_ordinal: violation.change_ordinal,
        commit_time: violation.commit_time,
        keep: Vec::new(),
        keep_rules: Vec::new(),
        keep_columns: Vec::new(),
        only_reference: violation.column.clone(),
    }
}
