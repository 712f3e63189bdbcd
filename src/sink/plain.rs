//! Inserts tried without `ON CONFLICT` first.
//!
//! Conflict handling makes PostgreSQL insert speculatively: it looks the key
//! up, inserts, then confirms, for every row. That is a quarter of the cost
//! of inserting a violation and a third of recording its state, and a
//! conflict is rare: a violation conflicts only when a replay sends its
//! change again, a state only when its row failed the same rule before.
//!
//! So the sink runs the plain form of each insert in a savepoint. If it
//! breaks a unique key, the savepoint is rolled back, so none of it stays,
//! and the form with `ON CONFLICT` runs instead. The unique keys decide in
//! both forms, so a replay still adds nothing. A replay or a row failing
//! again seldom ends within one batch, so after a conflict the next
//! [`AFTER_CONFLICT`] batches go straight to `ON CONFLICT`.
//!
//! A batch's transaction holds at most two of these savepoints, far below
//! the 64 subtransactions a PostgreSQL backend keeps in shared memory before
//! other sessions must look them up on disk.

use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::GenericClient;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::SinkError;

/// How many batches after a conflict use `ON CONFLICT` without trying the
/// plain insert first.
pub const AFTER_CONFLICT: u32 = 16;

/// Whether one insert of the sink expects conflicts.
#[derive(Debug, Default)]
pub struct Conflicts {
    /// Batches left that go straight to `ON CONFLICT`.
    expected_for: AtomicU32,
}

impl Conflicts {
    /// Whether this batch should try the plain insert; counts down the
    /// batches that should not.
    fn try_plain(&self) -> bool {
        // A write takes the sink's `&self`, but only one runs at a time.
        self.expected_for
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1))
            .is_err()
    }

    /// The plain insert broke a unique key.
    fn found(&self) {
        self.expected_for.store(AFTER_CONFLICT, Ordering::Relaxed);
    }

    /// Runs the plain insert `sql` unless conflicts are expected; `false`
    /// when it did not run or broke a unique key, so the caller must run the
    /// form with `ON CONFLICT`.
    pub async fn insert(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        action: &'static str,
    ) -> Result<bool, SinkError> {
        if !self.try_plain() {
            return Ok(false);
        }
        let inserted = insert_in_savepoint(client, sql, params, action).await?;
        if !inserted {
            self.found();
        }
        Ok(inserted)
    }
}

/// Runs `sql` in a savepoint; returns `false`, with nothing of it kept, when
/// it broke a unique key.
async fn insert_in_savepoint(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    action: &'static str,
) -> Result<bool, SinkError> {
    client.batch_execute("SAVEPOINT walguard_plain").await.map_err(SinkError::sql(action))?;
    match client.execute(sql, params).await {
        Ok(_) => {
            client
                .batch_execute("RELEASE SAVEPOINT walguard_plain")
                .await
                .map_err(SinkError::sql(action))?;
            Ok(true)
        }
        Err(err) if err.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            client
                .batch_execute(
                    "ROLLBACK TO SAVEPOINT walguard_plain; RELEASE SAVEPOINT walguard_plain",
                )
                .await
                .map_err(SinkError::sql(action))?;
            Ok(false)
        }
        Err(source) => Err(SinkError::Sql { action, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_sends_the_next_batches_straight_to_on_conflict() {
        let conflicts = Conflicts::default();
        assert!(conflicts.try_plain(), "no conflict yet");
        conflicts.found();
        let plain: Vec<bool> = (0..AFTER_CONFLICT + 2).map(|_| conflicts.try_plain()).collect();
        assert!(plain[..AFTER_CONFLICT as usize].iter().all(|p| !p), "{plain:?}");
        assert!(plain[AFTER_CONFLICT as usize..].iter().all(|p| *p), "{plain:?}");
    }
}
