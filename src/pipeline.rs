//! From replication messages to violations: decode, look up the relation,
//! build the row, validate it, and stamp each finding with where it came from.
//!
//! This is the synchronous heart of `walguard run`, free of I/O so tests and
//! benchmarks can drive it with bytes. It assumes the server's ordering
//! guarantees for pgoutput: a Relation message precedes the first change to
//! that relation in a session, and changes arrive between the Begin and the
//! Commit of their transaction, whole transactions in commit order; an
//! Origin message, when there is one, comes right after the Begin.
//!
//! pgoutput in PostgreSQL 15 leaves generated columns out of both the Relation
//! message and the rows, so a `required` column the Relation message does not
//! list is never reported: it is generated, or not a column of the table at
//! all, which is schema drift and not the row's fault.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::config::Origins;
use crate::monitor::Activity;
use crate::pgoutput::{self, DecodeError, Message, Oid, OldTuple};
use crate::relation::{CachedRelation, RelationCache};
use crate::row::{self, RowError};
use crate::schema::{QualifiedName, SchemaSet, TableSchema};
use crate::sink::{Violation, format_lsn};
use crate::validate::{self, Operation};

/// Why a message could not be turned into violations. Each one is fatal for
/// the stream: skipping it could miss a bad row.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("failed to decode a message of the transaction committing at {lsn}: {source}")]
    Decode { lsn: String, source: DecodeError },
    #[error("change to relation {oid} at {lsn} arrived before its Relation message")]
    UnknownRelation { oid: Oid, lsn: String },
    #[error("change at {lsn} arrived outside a transaction")]
    NoTransaction { lsn: String },
    #[error("failed to read a row of the transaction committing at {lsn}: {source}")]
    Row { lsn: String, source: RowError },
}

/// The transaction being read.
#[derive(Debug, Clone, Copy)]
struct Transaction {
    commit_lsn: u64,
    commit_time: i64,
    xid: u32,
    /// Changes seen so far; a change's ordinal is its index.
    changes: u32,
    /// The transaction came from a replication origin that `origins` leaves
    /// out: its changes are read but not validated.
    skipped: bool,
}

/// Turns one session's messages into violations.
pub struct Pipeline {
    schemas: Arc<SchemaSet>,
    /// Reloaded schemas waiting for the open transaction to commit.
    next_schemas: Option<Arc<SchemaSet>>,
    relations: RelationCache,
    transaction: Option<Transaction>,
    /// Inserts of the open transaction into tables with monitors.
    inserts: Inserts,
    origins: Origins,
}

impl Pipeline {
    pub fn new(schemas: Arc<SchemaSet>) -> Self {
        Pipeline {
            schemas,
            next_schemas: None,
            relations: RelationCache::default(),
            transaction: None,
            inserts: Inserts::default(),
            origins: Origins::All,
        }
    }

    /// Reads user-defined types by these kinds, from the catalog, rather than
    /// by their Type messages' names. Called before each session, with the
    /// catalog as it is then.
    pub fn set_type_kinds(&mut self, kinds: crate::type_catalog::TypeKinds) {
        self.relations.set_catalog(kinds);
    }

    /// Chooses which transactions to validate by their replication origin.
    pub fn with_origins(mut self, origins: Origins) -> Self {
        self.origins = origins;
        self
    }

    /// Switches to reloaded schemas between transactions: at once when none
    /// is open, else at its commit, so that one transaction is validated
    /// against one version of the files.
    pub fn replace_schemas(&mut self, schemas: Arc<SchemaSet>) {
        if self.in_transaction() {
            self.next_schemas = Some(schemas);
        } else {
            self.schemas = schemas;
        }
    }

    /// Hands the monitors what the committed transactions inserted.
    pub fn set_activity(&mut self, activity: Arc<Activity>) {
        self.inserts.activity = Some(activity);
    }

    /// Forgets relations: the server sends them again in a new session.
    pub fn reset(&mut self) {
        self.relations.clear();
        self.transaction = None;
        self.inserts.counts.clear();
        if let Some(schemas) = self.next_schemas.take() {
            self.schemas = schemas;
        }
    }

    /// Whether a transaction has begun and not yet committed.
    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some()
    }

    /// The commit position of the open transaction.
    pub fn commit_lsn(&self) -> Option<u64> {
        self.transaction.map(|t| t.commit_lsn)
    }

    pub fn begin(&mut self, commit_lsn: u64, commit_time: i64, xid: u32) {
        self.transaction =
            Some(Transaction { commit_lsn, commit_time, xid, changes: 0, skipped: false });
    }

    pub fn commit(&mut self) {
        self.transaction = None;
        self.inserts.commit();
        if let Some(schemas) = self.next_schemas.take() {
            self.schemas = schemas;
        }
    }

    /// Handles one message between Begin and Commit (or a Relation or Type
    /// message anywhere), appending any violations to `out`.
    pub fn handle(&mut self, data: &Bytes, out: &mut Vec<Violation>) -> Result<(), PipelineError> {
        let commit_lsn = self.transaction.map(|t| t.commit_lsn);
        let lsn = move || commit_lsn.map_or_else(|| "?".into(), format_lsn);
        let message = pgoutput::decode(data)
            .map_err(|source| PipelineError::Decode { lsn: lsn(), source })?;
        let (relation, operation, tuple, old) = match message {
            Message::Relation(relation) => {
                self.relations.apply_relation(relation);
                return Ok(());
            }
            Message::Type(type_message) => {
                self.relations.apply_type(type_message);
                return Ok(());
            }
            Message::Insert(insert) => (insert.relation, Operation::Insert, insert.new, None),
            Message::Update(update) => (update.relation, Operation::Update, update.new, update.old),
            Message::Delete(_) => {
                self.count_change(&lsn())?;
                return Ok(());
            }
            Message::Origin(_) => {
                if let Some(transaction) = self.transaction.as_mut() {
                    transaction.skipped = self.origins == Origins::Local;
                }
                return Ok(());
            }
            // Boundaries arrive as transport events; truncates carry no row
            // to validate.
            Message::Begin(_) | Message::Commit(_) | Message::Truncate(_) | Message::Message(_) => {
                return Ok(());
            }
        };

        let ordinal = self.count_change(&lsn())?;
        let transaction = self.transaction.expect("count_change checked the transaction");
        if transaction.skipped {
            return Ok(());
        }
        let Some(cached) = self.relations.get(relation) else {
            return Err(PipelineError::UnknownRelation { oid: relation, lsn: lsn() });
        };
        let rel = &cached.relation;
        let Some(schema) = self.schemas.get(&rel.namespace, &rel.name) else {
            return Ok(());
        };
        if operation == Operation::Insert && !schema.monitors().is_empty() {
            self.inserts.count(schema.table());
        }

        let row = row::row_from_tuple(cached, &tuple)
            .map_err(|source| PipelineError::Row { lsn: lsn(), source })?;
        let mut findings = validate::validate(schema, operation, &row);
        findings.retain(|finding| finding.rule != "required" || is_sent(cached, &finding.column));
        if findings.is_empty() {
            return Ok(());
        }
        let key_tuple = match &old {
            Some(OldTuple::Key(old) | OldTuple::Full(old)) if operation == Operation::Update => old,
            _ => &tuple,
        };
        let row_key = redact_key(schema, row::row_key(cached, key_tuple));
        out.extend(findings.into_iter().map(|finding| Violation {
            table_schema: rel.namespace.clone(),
            table_name: rel.name.clone(),
            operation,
            commit_lsn: transaction.commit_lsn,
            commit_time: transaction.commit_time,
            xid: transaction.xid,
            change_ordinal: ordinal,
            row_key: row_key.clone(),
            rule: finding.rule,
            column: finding.column,
            severity: finding.severity,
            message: finding.message,
            value: finding.value,
        }));
        Ok(())
    }

    /// Numbers the next change of the open transaction.
    fn count_change(&mut self, lsn: &str) -> Result<u32, PipelineError> {
        let Some(transaction) = self.transaction.as_mut() else {
            return Err(PipelineError::NoTransaction { lsn: lsn.to_string() });
        };
        let ordinal = transaction.changes;
        transaction.changes += 1;
        Ok(ordinal)
    }

    /// The relation metadata for an oid, for tests and drift checks.
    pub fn relation(&self, oid: Oid) -> Option<&CachedRelation> {
        self.relations.get(oid)
    }
}

/// Inserts into monitored tables, counted per transaction and handed to the
/// monitors at commit (a rolled-back transaction never reaches the stream).
#[derive(Default)]
struct Inserts {
    counts: Vec<(QualifiedName, u64)>,
    activity: Option<Arc<Activity>>,
}

impl Inserts {
    fn count(&mut self, table: &QualifiedName) {
        if self.activity.is_none() {
            return;
        }
        match self.counts.iter_mut().find(|(name, _)| name == table) {
            Some((_, count)) => *count += 1,
            None => self.counts.push((table.clone(), 1)),
        }
    }

    fn commit(&mut self) {
        if let Some(activity) = &self.activity
            && !self.counts.is_empty()
        {
            activity.record(self.counts.drain(..));
        }
    }
}

/// Whether the stream sends `column` at all: it never sends generated columns.
fn is_sent(relation: &CachedRelation, column: &Option<String>) -> bool {
    let Some(column) = column else { return true };
    relation.relation.columns.iter().any(|sent| &sent.name == column)
}

/// Replaces the values of `x-pii` key columns.
fn redact_key(schema: &TableSchema, mut key: Value) -> Value {
    if let Value::Object(map) = &mut key {
        for (column, value) in map.iter_mut() {
            if schema.is_pii(column) && !value.is_null() {
                *value = Value::String(crate::validate::REDACTED.into());
            }
        }
    }
    key
}
