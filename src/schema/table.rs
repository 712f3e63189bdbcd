//! One compiled schema file: what validation needs about a table, ready to use
//! on every row without further parsing or compiling.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonschema::Validator;

use crate::row::RowJson;

use super::direct::Direct;
use super::{ColumnRef, Monitors, QualifiedName, Severity, UnknownColumns};

/// The compiled schema of one table, loaded from one file.
#[derive(Debug)]
pub struct TableSchema {
    /// The table the file describes (`x-table`); also [`TableSchema::table`].
    pub table: QualifiedName,
    /// The file it was loaded from; also [`TableSchema::path`].
    pub path: PathBuf,
    pub(super) severity: Severity,
    pub(super) validator: Validator,
    pub(super) columns: Vec<Column>,
    pub(super) column_index: HashMap<String, usize>,
    pub(super) required: Vec<String>,
    pub(super) per_column: bool,
    pub(super) rules: Vec<Rule>,
    pub(super) on_unknown_columns: UnknownColumns,
    pub(super) monitors: Monitors,
}

impl TableSchema {
    /// The table the file describes (`x-table`).
    pub fn table(&self) -> &QualifiedName {
        &self.table
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's default severity (`x-severity`, else `error`).
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// The whole-row validator: draft 2020-12 with formats asserted.
    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    /// The columns listed under `properties`, in file order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// A column listed under `properties`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.column_index.get(name).map(|&index| &self.columns[index])
    }

    /// The names of the columns listed under `properties`, in file order.
    pub fn property_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(Column::name)
    }

    /// The columns marked `x-pii: true`, whose values never leave walguard.
    pub fn pii_columns(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().filter(|column| column.pii).map(Column::name)
    }

    /// Whether `column` is marked `x-pii: true`.
    pub fn is_pii(&self, column: &str) -> bool {
        self.column(column).is_some_and(|column| column.pii)
    }

    /// The severity of a violation about `column`: its own `x-severity`, else
    /// the file's.
    pub fn column_severity(&self, column: &str) -> Severity {
        self.column(column).and_then(|column| column.severity).unwrap_or(self.severity)
    }

    /// The `required` columns, which may include columns not under `properties`.
    pub fn required(&self) -> &[String] {
        &self.required
    }

    /// The `x-rules`, compiled, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every `x-references`: the referencing column and its target.
    pub fn references(&self) -> impl Iterator<Item = (&str, &ColumnRef)> {
        self.columns
            .iter()
            .filter_map(|column| column.references.as_ref().map(|target| (column.name(), target)))
    }

    /// What to do about columns the table has and the file does not list.
    pub fn on_unknown_columns(&self) -> UnknownColumns {
        self.on_unknown_columns
    }

    /// The `x-monitors` settings (freshness, volume); empty when there are none.
    pub fn monitors(&self) -> &Monitors {
        &self.monitors
    }

    /// Whether rows are checked one column at a time, with
    /// [`Column::validator`], rather than as a whole object with
    /// [`TableSchema::validator`]. True when the top level of the schema
    /// constrains nothing but `type: object`, `properties` and `required`, so
    /// that both give the same answer; it spares copying the row into a JSON
    /// object for every change.
    pub(crate) fn validates_per_column(&self) -> bool {
        self.per_column
    }
}

/// A column listed under `properties`, with our keywords about it.
#[derive(Debug)]
pub struct Column {
    pub(super) name: String,
    pub(super) pii: bool,
    pub(super) severity: Option<Severity>,
    pub(super) references: Option<ColumnRef>,
    pub(super) reference_window: Option<Duration>,
    pub(super) validator: Option<Validator<RowJson>>,
}

impl Column {
    /// The column name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether its values are personal data to redact (`x-pii: true`).
    pub fn is_pii(&self) -> bool {
        self.pii
    }

    /// Its own `x-severity`, overriding the file's.
    pub fn severity(&self) -> Option<Severity> {
        self.severity
    }

    /// The column it refers to (`x-references`).
    pub fn references(&self) -> Option<&ColumnRef> {
        self.references.as_ref()
    }

    /// How long to wait for the referenced row to appear before reporting
    /// (`x-references: {to: ..., within: 10m}`); `None` reports at once.
    pub fn reference_window(&self) -> Option<Duration> {
        self.reference_window
    }

    /// The validator of the column's subschema, compiled in the context of the
    /// whole file so that `$ref`s resolve, for the row view's cells; present
    /// when the table validates per column.
    pub(crate) fn validator(&self) -> Option<&Validator<RowJson>> {
        self.validator.as_ref()
    }
}

/// A CEL rule from `x-rules`, compiled once at load.
#[derive(Debug)]
pub struct Rule {
    pub(super) name: String,
    pub(super) expr: String,
    pub(super) message: Option<String>,
    pub(super) severity: Option<Severity>,
    pub(super) program: Program,
    pub(super) when: Option<Program>,
    pub(super) uses_old: bool,
}

/// A compiled CEL expression, with its direct form where it has one.
#[derive(Debug)]
pub(crate) struct Program {
    /// The interpreter's program, which decides where the direct form cannot.
    pub(crate) cel: cel::Program,
    pub(crate) direct: Option<Direct>,
}

impl Program {
    pub(crate) fn new(cel: cel::Program) -> Self {
        Program { direct: Direct::compile(&cel), cel }
    }
}

impl Rule {
    /// The rule's name, used as the violation's `rule`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CEL expression as written.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The message for a row that fails the rule, if the file gives one.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The rule's own severity, overriding the file's.
    pub fn severity(&self) -> Option<Severity> {
        self.severity
    }

    /// The compiled expression.
    pub(crate) fn program(&self) -> &Program {
        &self.program
    }

    /// The compiled `when` condition, if the rule is scoped.
    pub(crate) fn when(&self) -> Option<&Program> {
        self.when.as_ref()
    }

    /// Whether `expr` or `when` names `old`, the previous version of an
    /// updated row: such a rule is checked on updates only.
    pub fn uses_old(&self) -> bool {
        self.uses_old
    }
}
