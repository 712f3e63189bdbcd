//! How far the source may forget: the one place that acknowledges positions.
//!
//! A position is acknowledged only when every violation of every change
//! before it is committed in the sink. Two kinds of position qualify:
//!
//! - the end LSN of a transaction's commit record, once the batch holding the
//!   transaction's violations is committed (or at once when it had none and
//!   nothing earlier is still unwritten);
//! - the WAL position of a server keepalive received while no transaction is
//!   open. The walsender sends a keepalive with the position up to which it
//!   has decoded and sent everything; a transaction still running on the
//!   server commits later, at a higher LSN, and is sent in full after that,
//!   so acknowledging the keepalive position skips nothing. Doing so is what
//!   stops writes to unpublished tables from piling WAL up behind an idle
//!   slot (PostgreSQL documentation, section 55.4 "Streaming Replication
//!   Protocol", Primary keepalive message; and 49.2.5 on replication slots).
//!
//! Positions only move forward: a replay after a crash starts from the
//! slot's confirmed position, which this module never moved past anything
//! unwritten. One [`Progress`] outlives the sessions of a run: a new session
//! is told at once what earlier ones made durable ([`Progress::resume`]),
//! since an acknowledgement may not have reached the server before the old
//! connection broke.

use super::Transport;

/// The acknowledged position of a run, across its sessions.
#[derive(Debug, Default)]
pub struct Progress {
    acknowledged: u64,
}

impl Progress {
    /// Acknowledges `lsn` to the server if it is further than before.
    pub fn acknowledge(&mut self, transport: &Transport, lsn: u64) {
        if lsn > self.acknowledged {
            transport.acknowledge(lsn);
            self.acknowledged = lsn;
            metrics::gauge!(crate::telemetry::metrics::ACKNOWLEDGED_LSN).set(lsn as f64);
        }
    }

    /// Reports the furthest acknowledged position on a new session.
    pub fn resume(&self, transport: &Transport) {
        if self.acknowledged > 0 {
            transport.acknowledge(self.acknowledged);
        }
    }

    /// The furthest position acknowledged so far.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged
    }
}
