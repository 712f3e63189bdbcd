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

mod open_states;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::config::Origins;
use crate::drift;
use crate::monitor::Activity;
use crate::pgoutput::{self, DecodeError, Message, Oid, OldTuple, Tuple};
use crate::references::{self, KnownKeys, ReferenceCheck};
use crate::relation::{CachedRelation, RelationCache, RelationChange};
use crate::row::{self, Row, RowError, Values};
use crate::schema::{QualifiedName, SchemaSet, TableSchema};
use crate::sink::{Batch, Resolution, Violation, format_lsn};
use crate::validate::{self, OldRow, Operation, Outcome, REDACTED};

pub use open_states::{KEY_LIMIT, OpenStates};

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

/// What the messages handled so far produced, waiting to be written.
#[derive(Debug, Default)]
pub struct Output {
    /// Violations and resolutions, ready for the sink.
    pub batch: Batch,
    /// Referencing values still to find (see [`crate::references`]).
    pub references: Vec<ReferenceCheck>,
}

impl Output {
    /// Whether nothing waits to be settled or written.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty() && self.references.is_empty()
    }

    /// Empties it, keeping its memory.
    pub fn clear(&mut self) {
        self.batch.clear();
        self.references.clear();
    }
}

/// What the pipeline precomputes for a relation from its schema file, when
/// its Relation message arrives.
#[derive(Debug, Default)]
struct Plan {
    /// Referencing columns: (column index, target index, grace window).
    references: Vec<(usize, usize, Option<std::time::Duration>)>,
    /// Columns that others reference: (column index, target index).
    targets: Vec<(usize, usize)>,
    /// Whether any rule compares with the previous row.
    transition_rules: bool,
    /// Whether any row of the table may have violation states not yet
    /// resolved (see [`OpenStates`]).
    open: bool,
}

/// Turns one session's messages into violations.
pub struct Pipeline {
    schemas: Arc<SchemaSet>,
    /// Reloaded schemas waiting for the open transaction to commit.
    next_schemas: Option<Arc<SchemaSet>>,
    relations: RelationCache,
    transaction: Option<Transaction>,
    plans: HashMap<Oid, Plan>,
    /// Rows with violation states not yet resolved: only their changes need
    /// a resolution.
    open: OpenStates,
    /// (table, rule index) of transition rules already reported unknown.
    unknown: HashSet<(String, usize)>,
    /// Keys known to exist in the referenced columns.
    known: KnownKeys,
    /// Referencing values settled by `known` without a check.
    known_hits: u64,
    /// Inserts of the open transaction into tables with monitors.
    inserts: Inserts,
    origins: Origins,
    /// Generated columns by (schema, table, column), never sent by pgoutput.
    generated: crate::type_catalog::GeneratedColumns,
}

impl Pipeline {
    pub fn new(schemas: Arc<SchemaSet>) -> Self {
        let known = KnownKeys::new(references::targets(&schemas));
        Pipeline {
            known,
            known_hits: 0,
            schemas,
            relations: RelationCache::default(),
            transaction: None,
            plans: HashMap::new(),
            open: OpenStates::default(),
            unknown: HashSet::new(),
            next_schemas: None,
            inserts: Inserts::default(),
            origins: Origins::All,
            generated: Default::default(),
        }
    }

    /// Reads user-defined types by these kinds, from the catalog, rather than
    /// by their Type messages' names. Called before each session, with the
    /// catalog as it is then.
    pub fn set_type_kinds(&mut self, kinds: crate::type_catalog::TypeKinds) {
        self.relations.set_catalog(kinds);
    }

    /// Names the generated columns, which the stream never sends, so that
    /// their absence is not reported as drift. Called before each session.
    pub fn set_generated_columns(&mut self, generated: crate::type_catalog::GeneratedColumns) {
        self.generated = generated;
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
            self.switch_schemas(schemas);
        }
    }

    /// Hands the monitors what the committed transactions inserted.
    pub fn set_activity(&mut self, activity: Arc<Activity>) {
        self.inserts.activity = Some(activity);
    }

    /// Forgets relations: the server sends them again in a new session.
    pub fn reset(&mut self) {
        self.relations.clear();
        self.plans.clear();
        self.transaction = None;
        self.inserts.counts.clear();
        if let Some(schemas) = self.next_schemas.take() {
            self.switch_schemas(schemas);
        }
    }

    /// How many referencing values the known keys settled at once.
    pub fn known_hits(&self) -> u64 {
        self.known_hits
    }

    /// The keys known to exist, which settling reference checks adds to.
    pub fn known_keys(&mut self) -> &mut KnownKeys {
        &mut self.known
    }

    /// The rows with unresolved violation states, which the session fills
    /// from the sink before streaming (after [`OpenStates::clear`]).
    pub fn open_states(&mut self) -> &mut OpenStates {
        &mut self.open
    }

    /// Notes that a violation found outside [`Pipeline::handle`] (a missing
    /// referenced row) opened a state, so later changes to its row resolve it.
    pub fn note_open(&mut self, violation: &Violation) {
        if violation.operation.is_none() {
            return;
        }
        let (schema, table) = (&violation.table_schema, &violation.table_name);
        self.open.insert(schema, table, &violation.row_key);
        for (oid, plan) in &mut self.plans {
            plan.open |= self.relations.get(*oid).is_some_and(|cached| {
                &cached.relation.namespace == schema && &cached.relation.name == table
            });
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
            self.switch_schemas(schemas);
        }
    }

    /// Handles one message between Begin and Commit (or a Relation or Type
    /// message anywhere), adding what it finds to `out`.
    pub fn handle(&mut self, data: &Bytes, out: &mut Output) -> Result<(), PipelineError> {
        let commit_lsn = self.transaction.map(|t| t.commit_lsn);
        let lsn = move || commit_lsn.map_or_else(|| "?".into(), format_lsn);
        let message = pgoutput::decode(data)
            .map_err(|source| PipelineError::Decode { lsn: lsn(), source })?;
        let (relation, operation, tuple, old) = match message {
            Message::Relation(relation) => {
                self.apply_relation(relation, out);
                return Ok(());
            }
            Message::Type(type_message) => {
                self.relations.apply_type(type_message);
                return Ok(());
            }
            Message::Insert(insert) => (insert.relation, Operation::Insert, insert.new, None),
            Message::Update(update) => (update.relation, Operation::Update, update.new, update.old),
            Message::Delete(delete) => {
                let ordinal = self.count_change(lsn)?;
                self.resolve_delete(delete.relation, &delete.old, ordinal, out);
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

        let ordinal = self.count_change(lsn)?;
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
        let plan = self.plans.get(&relation);

        // Validate the row, with its previous version for transition rules.
        let row = row::row_from_tuple(cached, &tuple)
            .map_err(|source| PipelineError::Row { lsn: lsn(), source })?;
        let old_row = match plan {
            Some(plan) if plan.transition_rules && operation == Operation::Update => {
                Some(previous_row(cached, &row, old.as_ref()))
            }
            _ => None,
        };
        let old_view = old_row.as_ref().map(|(row, complete)| OldRow { row, complete: *complete });
        let mut outcome = validate::validate_change(schema, operation, &row, old_view);
        outcome
            .findings
            .retain(|finding| finding.rule != "required" || is_sent(cached, &finding.column));

        // Values written to referenced columns are known to exist from now.
        for &(index, target) in plan.map(|plan| plan.targets.as_slice()).unwrap_or_default() {
            if let Some(text) = text_value(&tuple, index) {
                self.known.insert(target, text);
            }
        }

        // The row is named by its key as the change left it, unless the
        // server left a key column out of the new tuple as unchanged TOAST;
        // then by the old tuple's.
        let old_tuple = match &old {
            Some(OldTuple::Key(old) | OldTuple::Full(old)) if operation == Operation::Update => {
                Some(old)
            }
            _ => None,
        };
        let key_tuple = match old_tuple {
            Some(old) if has_unchanged_key(cached, &tuple) => old,
            _ => &tuple,
        };

        // Whether the row may have open states that this change settles; its
        // key is only worked out for a table that has some. An update that
        // changed the key moved the row: what was open under the old key is
        // settled as after a delete.
        let mut row_key = None;
        let mut open = false;
        if plan.is_some_and(|plan| plan.open) {
            let key = redacted_key(schema, cached, key_tuple);
            if let Some(old) = old_tuple.filter(|old| !std::ptr::eq(*old, key_tuple)) {
                let old_key = redacted_key(schema, cached, old);
                if old_key != key && self.open.contains(&rel.namespace, &rel.name, &old_key) {
                    self.open.remove(&rel.namespace, &rel.name, &old_key);
                    let gone = gone_row(rel, &transaction, ordinal, key_json(&old_key));
                    out.batch.resolutions.push(gone);
                }
            }
            open = self.open.contains(&rel.namespace, &rel.name, &key);
            row_key = Some(key);
        }

        // Nothing more to do for a good row that has no open states and no
        // references: the common case stays cheap. A referencing value
        // already known to exist needs nothing more.
        // Each referencing value is looked up in the known keys once; bit i
        // of `known` says whether reference i was found (past 64 references
        // a value counts as unknown and is checked, which is only slower).
        let references = plan.map(|plan| plan.references.as_slice()).unwrap_or_default();
        let mut known = 0u64;
        let mut checks_needed = false;
        for (i, &(index, target, _)) in references.iter().enumerate() {
            let Some(text) = text_value(&tuple, index) else { continue };
            if i < 64 && self.known.contains(target, text) {
                known |= 1 << i;
                self.known_hits += 1;
            } else {
                checks_needed = true;
            }
        }
        if outcome.findings.is_empty() && outcome.unknown.is_empty() && !open && !checks_needed {
            return Ok(());
        }
        let row_key = key_json(&row_key.unwrap_or_else(|| redacted_key(schema, cached, key_tuple)));
        let stamp = Stamp {
            table_schema: &rel.namespace,
            table_name: &rel.name,
            operation,
            transaction: &transaction,
            ordinal,
            row_key: &row_key,
        };

        // A row with open states may settle some of them, or all: then it is
        // no longer open, unless a reference check may still fail later.
        if open {
            out.batch.resolutions.push(stamp.resolution(&outcome, &row));
            if outcome.findings.is_empty()
                && outcome.unknown.is_empty()
                && outcome.skipped.is_empty()
                && row.unchanged.is_empty()
                && references.is_empty()
            {
                self.open.remove(&rel.namespace, &rel.name, &row_key);
            }
        }

        // Reference checks, settled when the batch is written. A row with one
        // counts as open from now: a later change to it in the same batch
        // must carry a resolution, since the check may still fail.
        let mut checks_pending = false;
        for (i, &(index, target, window)) in references.iter().enumerate() {
            let Some(text) = text_value(&tuple, index) else { continue };
            let Some(column) = rel.columns.get(index) else { continue };
            if i < 64 && known & (1 << i) != 0 {
                if open {
                    let mut resolution = stamp.resolution(&Outcome::default(), &Row::default());
                    resolution.keep_rules.clear();
                    resolution.only_reference = Some(column.name.clone());
                    out.batch.resolutions.push(resolution);
                }
                continue;
            }
            let name = &column.name;
            let pii = schema.is_pii(name);
            let reference = &self.known.targets()[target];
            let message = if pii {
                format!("{name} has no matching row in {reference}")
            } else {
                format!("{name} {text} has no matching row in {reference}")
            };
            let value = if pii {
                Value::from(REDACTED)
            } else {
                row.values.value(name).unwrap_or(Value::Null)
            };
            out.references.push(ReferenceCheck {
                target: reference.clone(),
                value: text.to_owned(),
                window,
                violation: stamp.violation(
                    "reference".to_owned(),
                    Some(name.clone()),
                    schema.column_severity(name),
                    message,
                    Some(value),
                ),
                resolve: open,
            });
            checks_pending = true;
        }

        // Transition rules that could not be decided, once per table.
        for &index in &outcome.unknown {
            let table = cached.qualified_name.clone();
            if !self.unknown.insert((table.clone(), index)) {
                continue;
            }
            let rule = &schema.rules()[index];
            let mut violation = stamp.violation(
                rule.name().to_owned(),
                None,
                crate::schema::Severity::Warn,
                format!(
                    "rule {} compares with the previous row (old), which the server sends \
                     only for tables with REPLICA IDENTITY FULL: its verdict on updates of \
                     {table} is unknown; run ALTER TABLE {} REPLICA IDENTITY FULL to check it",
                    rule.name(),
                    schema.table.quoted()
                ),
                None,
            );
            violation.operation = None;
            violation.row_key = Value::Object(Default::default());
            violation.dedup = Some(format!("rule_unknown/{table}/{}", rule.name()));
            out.batch.violations.push(violation);
        }

        if !outcome.findings.is_empty() || checks_pending {
            self.open.insert(&rel.namespace, &rel.name, &row_key);
            if let Some(plan) = self.plans.get_mut(&relation) {
                plan.open = true;
            }
        }
        out.batch.violations.extend(outcome.findings.into_iter().map(|finding| {
            stamp.violation(
                finding.rule,
                finding.column,
                finding.severity,
                finding.message,
                finding.value,
            )
        }));
        Ok(())
    }

    /// Records a Relation message, checks it for drift and plans its rows.
    fn apply_relation(&mut self, relation: pgoutput::Relation, out: &mut Output) {
        let oid = relation.oid;
        let change = self.relations.apply_relation(relation);
        let Some(cached) = self.relations.get(oid) else { return };
        let rel = &cached.relation;
        let Some(schema) = self.schemas.get(&rel.namespace, &rel.name) else {
            // Kept, so that a reload that adds a schema for it plans it.
            self.plans.insert(oid, Plan::default());
            return;
        };

        // Drift, against the file and against the previous shape.
        if change != RelationChange::Unchanged {
            let old = match &change {
                RelationChange::Changed { old, .. } => Some(old),
                _ => None,
            };
            let transaction = self.transaction;
            let generated = |column: &str| {
                let key = (rel.namespace.clone(), rel.name.clone(), column.to_owned());
                self.generated.contains(&key)
            };
            for found in drift::check(schema, old, rel, &generated) {
                out.batch.violations.push(Violation {
                    table_schema: rel.namespace.clone(),
                    table_name: rel.name.clone(),
                    operation: None,
                    commit_lsn: transaction.map_or(0, |t| t.commit_lsn),
                    commit_time: transaction.map_or(0, |t| t.commit_time),
                    xid: transaction.map_or(0, |t| t.xid),
                    change_ordinal: transaction.map_or(0, |t| t.changes),
                    row_key: Value::Object(Default::default()),
                    rule: "schema_drift".to_owned(),
                    column: Some(found.column),
                    severity: found.severity,
                    message: found.message,
                    value: None,
                    dedup: Some(found.dedup_key),
                });
            }
        }

        if let Some(plan) = self.plan(oid) {
            self.plans.insert(oid, plan);
        }
    }

    /// Uses reloaded schemas: the referenced columns and every relation's
    /// plan follow them, since the server does not resend relations.
    fn switch_schemas(&mut self, schemas: Arc<SchemaSet>) {
        self.schemas = schemas;
        let targets = references::targets(&self.schemas);
        if targets != self.known.targets() {
            self.known = KnownKeys::new(targets);
        }
        let oids: Vec<Oid> = self.plans.keys().copied().collect();
        self.plans.clear();
        for oid in oids {
            if let Some(plan) = self.plan(oid) {
                self.plans.insert(oid, plan);
            }
        }
    }

    /// Which columns of a relation reference others, and which are
    /// referenced, from its schema file.
    fn plan(&self, oid: Oid) -> Option<Plan> {
        let rel = &self.relations.get(oid)?.relation;
        let schema = self.schemas.get(&rel.namespace, &rel.name)?;
        let targets = self.known.targets();
        let position = |name: &str| rel.columns.iter().position(|column| column.name == name);
        let target_index =
            |target: &crate::schema::ColumnRef| targets.iter().position(|t| t == target);
        let mut plan = Plan {
            transition_rules: schema.rules().iter().any(|rule| rule.uses_old()),
            open: self.open.may_have(&rel.namespace, &rel.name),
            ..Plan::default()
        };
        for column in schema.columns() {
            let (Some(target), Some(index)) = (column.references(), position(column.name())) else {
                continue;
            };
            if let Some(target) = target_index(target) {
                plan.references.push((index, target, column.reference_window()));
            }
        }
        for (target, reference) in targets.iter().enumerate() {
            if reference.table == schema.table
                && let Some(index) = position(&reference.column)
            {
                plan.targets.push((index, target));
            }
        }
        Some(plan)
    }

    /// A deleted row settles every open state of its key.
    fn resolve_delete(&mut self, relation: Oid, old: &OldTuple, ordinal: u32, out: &mut Output) {
        let (Some(cached), Some(transaction)) = (self.relations.get(relation), self.transaction)
        else {
            return;
        };
        let rel = &cached.relation;
        if !self.plans.get(&relation).is_some_and(|plan| plan.open) {
            return;
        }
        let Some(schema) = self.schemas.get(&rel.namespace, &rel.name) else { return };
        let (OldTuple::Key(tuple) | OldTuple::Full(tuple)) = old;
        let row_key = redacted_key(schema, cached, tuple);
        if !self.open.contains(&rel.namespace, &rel.name, &row_key) {
            return;
        }
        self.open.remove(&rel.namespace, &rel.name, &row_key);
        out.batch.resolutions.push(gone_row(rel, &transaction, ordinal, key_json(&row_key)));
    }

    /// Numbers the next change of the open transaction.
    fn count_change(&mut self, lsn: impl FnOnce() -> String) -> Result<u32, PipelineError> {
        let Some(transaction) = self.transaction.as_mut() else {
            return Err(PipelineError::NoTransaction { lsn: lsn() });
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

/// Where a change's findings come from, for stamping violations and
/// resolutions.
struct Stamp<'a> {
    table_schema: &'a str,
    table_name: &'a str,
    operation: Operation,
    transaction: &'a Transaction,
    ordinal: u32,
    row_key: &'a Value,
}

impl Stamp<'_> {
    fn violation(
        &self,
        rule: String,
        column: Option<String>,
        severity: crate::schema::Severity,
        message: String,
        value: Option<Value>,
    ) -> Violation {
        Violation {
            table_schema: self.table_schema.to_owned(),
            table_name: self.table_name.to_owned(),
            operation: Some(self.operation),
            commit_lsn: self.transaction.commit_lsn,
            commit_time: self.transaction.commit_time,
            xid: self.transaction.xid,
            change_ordinal: self.ordinal,
            row_key: self.row_key.clone(),
            rule,
            column,
            severity,
            message,
            value,
            dedup: None,
        }
    }

    /// The row passes every rule it was checked against and did not fail;
    /// references are settled later, by their own look-up.
    fn resolution(&self, outcome: &Outcome, row: &Row) -> Resolution {
        let keep = outcome
            .findings
            .iter()
            .map(|f| (f.rule.clone(), f.column.clone().unwrap_or_default()))
            .collect();
        let mut keep_rules = outcome.skipped.clone();
        keep_rules.push("reference".to_owned());
        Resolution {
            table_schema: self.table_schema.to_owned(),
            table_name: self.table_name.to_owned(),
            row_key: self.row_key.clone(),
            commit_lsn: self.transaction.commit_lsn,
            change_ordinal: self.ordinal,
            commit_time: self.transaction.commit_time,
            keep,
            keep_rules,
            keep_columns: row.unchanged.clone(),
            only_reference: None,
        }
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

/// The previous version of an updated row as far as the server sent it, and
/// whether it is complete: the whole row under REPLICA IDENTITY FULL, else the
/// old key (sent when the key changed) or the key columns of the new row.
fn previous_row<'t>(
    cached: &CachedRelation,
    new: &Row<'t>,
    old: Option<&'t OldTuple>,
) -> (Row<'t>, bool) {
    let from_tuple = |tuple: &'t Tuple| row::row_from_tuple(cached, tuple).unwrap_or_default();
    match old {
        Some(OldTuple::Full(tuple)) => (from_tuple(tuple), true),
        Some(OldTuple::Key(tuple)) => (from_tuple(tuple), false),
        None => {
            let mut key = Row::default();
            for &index in &cached.key_columns {
                if let Some(name) = cached.names.get(index) {
                    key.values.copy_from(&new.values, name);
                }
            }
            (key, false)
        }
    }
}

/// The resolution of every state of a row that no longer exists under
/// `row_key`: deleted, or moved to another key.
fn gone_row(
    rel: &pgoutput::Relation,
    transaction: &Transaction,
    ordinal: u32,
    row_key: Value,
) -> Resolution {
    Resolution {
        table_schema: rel.namespace.clone(),
        table_name: rel.name.clone(),
        row_key,
        commit_lsn: transaction.commit_lsn,
        change_ordinal: ordinal,
        commit_time: transaction.commit_time,
        keep: Vec::new(),
        keep_rules: Vec::new(),
        keep_columns: Vec::new(),
        only_reference: None,
    }
}

/// Whether the server left a key column out of `tuple` as unchanged TOAST.
fn has_unchanged_key(relation: &CachedRelation, tuple: &Tuple) -> bool {
    relation
        .key_columns
        .iter()
        .any(|&index| matches!(tuple.get(index), Some(pgoutput::Value::UnchangedToast)))
}

/// A column's value as the text the server sent, if it sent one.
fn text_value(tuple: &Tuple, index: usize) -> Option<&str> {
    match tuple.get(index) {
        Some(pgoutput::Value::Text(bytes)) => std::str::from_utf8(bytes).ok(),
        _ => None,
    }
}

/// Whether the stream sends `column` at all: it never sends generated columns.
fn is_sent(relation: &CachedRelation, column: &Option<String>) -> bool {
    let Some(column) = column else { return true };
    relation.relation.columns.iter().any(|sent| &sent.name == column)
}

/// The key columns of `tuple`, with the value of each pii column redacted,
/// as the open-row set hashes them.
fn redacted_key<'t>(schema: &TableSchema, cached: &CachedRelation, tuple: &'t Tuple) -> Values<'t> {
    let mut key = row::key_values(cached, tuple);
    for name in cached.key_columns.iter().filter_map(|&index| cached.names.get(index)) {
        if schema.is_pii(name) && key.cell(name).is_some_and(|cell| !cell.is_null()) {
            key.insert(Arc::clone(name), Value::String(crate::validate::REDACTED.into()));
        }
    }
    key
}

/// A row key as the JSON object a violation carries.
fn key_json(key: &Values<'_>) -> Value {
    Value::Object(key.to_object())
}
