//! What a failed session means for the run: retry, stand by, or stop.
//!
//! Errors are sorted by consequence. A cut connection, a server restarting
//! (fast or immediate), a terminated walsender or sink backend are transient:
//! the run reconnects after a capped exponential backoff with jitter. A slot
//! held by another consumer means another walguard is streaming: this one
//! stands by and takes over once the slot is free. Everything else (slot or
//! publication missing, slot invalidated, authentication refused, malformed
//! data) cannot get better by waiting, so the run stops with the message.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use super::RunError;
use crate::replication::TransportError;
use crate::sink::SinkError;

/// The first reconnect waits this long (plus jitter of up to as much again).
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(200);
/// No reconnect waits longer than this (plus jitter of up to as much again).
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(10);
/// How often a standby asks for the slot again.
pub(super) const STANDBY_POLL: Duration = Duration::from_secs(1);

/// What to do after a session failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Disposition {
    /// Reconnect after a backoff.
    Retry,
    /// Another consumer holds the slot: wait for it to let go.
    SlotBusy,
    /// Stop the run with the error.
    Fatal,
}

impl RunError {
    pub(super) fn disposition(&self) -> Disposition {
        let retry_if = |transient: bool| {
            if transient { Disposition::Retry } else { Disposition::Fatal }
        };
        match self {
            RunError::Transport(err) if err.is_slot_busy() => Disposition::SlotBusy,
            RunError::Slot(crate::replication::SlotError::InUse { .. }) => Disposition::SlotBusy,
            RunError::Transport(err) => retry_if(err.is_transient()),
            RunError::Sink(err) => retry_if(err.is_transient()),
            RunError::Connect(err) => retry_if(err.is_transient()),
            RunError::Slot(crate::replication::SlotError::Sql { source, .. }) => {
                retry_if(crate::postgres::is_transient_error(source))
            }
            RunError::StreamEnded => Disposition::Retry,
            RunError::Slot(_)
            | RunError::Schema(_)
            | RunError::Pipeline(_)
            | RunError::RowTooLarge { .. }
            | RunError::Admin(_) => Disposition::Fatal,
        }
    }

    /// Whether the sink connection may be broken and must be opened again.
    pub(super) fn concerns_sink(&self) -> bool {
        matches!(self, RunError::Sink(SinkError::Connect(_) | SinkError::Sql { .. }))
    }

    /// The transport error, when the stream itself failed.
    pub(super) fn transport(&self) -> Option<&TransportError> {
        match self {
            RunError::Transport(err) => Some(err),
            _ => None,
        }
    }
}

/// The delays between reconnect attempts; starts over once a session made
/// progress.
pub(super) struct Backoff {
    delays: ExponentialBackoff,
    /// Failed attempts since the last session that made progress.
    pub(super) attempt: u32,
}

impl Backoff {
    pub(super) fn new() -> Self {
        let delays = ExponentialBuilder::new()
            .with_min_delay(RECONNECT_MIN_DELAY)
            .with_max_delay(RECONNECT_MAX_DELAY)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        Backoff { delays, attempt: 0 }
    }

    /// The wait before the next attempt.
    pub(super) fn next_delay(&mut self) -> Duration {
        self.attempt += 1;
        self.delays.next().unwrap_or(RECONNECT_MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::SlotError;

    #[test]
    fn errors_are_sorted_by_consequence() {
        let missing = SlotError::MissingSlot { slot: "w".into(), database: "shop".into() };
        let in_use = SlotError::InUse { slot: "w".into(), pid: 7 };
        let lost = SlotError::LostSlot { slot: "w".into() };
        let no_table = SinkError::MissingTable { schema: "walguard".into(), table: "v".into() };
        assert_eq!(RunError::StreamEnded.disposition(), Disposition::Retry);
        assert_eq!(RunError::Slot(in_use).disposition(), Disposition::SlotBusy);
        assert_eq!(RunError::Slot(missing).disposition(), Disposition::Fatal);
        assert_eq!(RunError::Slot(lost).disposition(), Disposition::Fatal);
        assert_eq!(RunError::Sink(no_table).disposition(), Disposition::Fatal);
    }

    #[test]
    fn delays_grow_with_jitter_up_to_the_cap() {
        let mut backoff = Backoff::new();
        let first = backoff.next_delay();
        assert!(first >= RECONNECT_MIN_DELAY && first <= 2 * RECONNECT_MIN_DELAY, "{first:?}");
        let later: Vec<Duration> = (0..20).map(|_| backoff.next_delay()).collect();
        assert!(later.iter().all(|delay| *delay <= 2 * RECONNECT_MAX_DELAY), "{later:?}");
        assert!(later[19] >= RECONNECT_MAX_DELAY, "{later:?}");
        assert_eq!(backoff.attempt, 21);
    }
}
