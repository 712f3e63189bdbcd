//! Schema files: loading the `schemas/` folder and compiling each file once.
//!
//! Each `*.yaml` / `*.yml` file in the folder describes one table as a JSON
//! Schema (draft 2020-12) written in YAML: the row is an object whose properties
//! are the columns. Our own keywords sit beside the standard ones:
//!
//! | keyword | where | meaning |
//! | --- | --- | --- |
//! | `x-table` | top, required | the table, `schema.table` (see [`QualifiedName`]) |
//! | `x-severity` | top | default severity of the file's violations (`error`) |
//! | `x-rules` | top | CEL rules: `name`, `expr`, optional `when`, `message`, `severity` |
//! | `x-monitors` | top | freshness / volume settings, read by the monitors |
//! | `x-on-unknown-columns` | top | `ignore` or a severity, see [`UnknownColumns`] |
//! | `x-pii` | column | `true`: the column's values are redacted in violations |
//! | `x-references` | column | `schema.table.column` the value must exist in, or `{to: schema.table.column, within: 10m}` to wait that long for it |
//! | `x-severity` | column | severity of violations about this column |
//!
//! A "column" here is a property directly under the top-level `properties`.
//! Any other `x-` keyword, or one of ours in another place, is a load error,
//! since a typo there would silently switch a check off. jsonschema ignores
//! unknown keywords, so ours stay in the document it compiles.
//!
//! Loading checks everything that can be checked without a row: YAML syntax
//! (errors carry line and column), the JSON Schema against its meta-schema,
//! `format` names (an unknown format is an error, not a silent pass), `$ref`s
//! (only references inside the file resolve: remote and file retrieval are not
//! compiled in), our keywords, and the CEL rules. After [`SchemaSet::load`]
//! nothing is parsed or compiled again: a [`SchemaSet`] is immutable, shared by
//! reference, and a lookup by table allocates nothing.
//!
//! YAML numbers reach the schema as 64-bit floats, so a bound such as
//! `maximum: 0.1` is exact but one with more than 15 significant digits is
//! rounded. Row values, by contrast, are compared exactly.

mod direct;
mod email;
mod error;
mod keywords;
mod load;
mod monitors;
mod name;
mod rules;
mod severity;
mod table;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub(crate) use direct::RowNumber;
pub use error::SchemaError;
pub use monitors::{Monitors, Volume};
pub use name::{ColumnRef, NameError, QualifiedName};
pub(crate) use rules::cel_env;
pub use severity::{Severity, UnknownColumns, UnknownSeverity};
pub(crate) use table::Program;
pub use table::{Column, Rule, TableSchema};

/// Every table's compiled schema, from one folder.
#[derive(Debug)]
pub struct SchemaSet {
    /// Sorted by table name, without duplicates, for lookups by binary search.
    tables: Vec<TableSchema>,
}

/// What loading a folder found: the tables that loaded, and every problem.
#[derive(Debug)]
pub struct Lint {
    /// Every schema file of the folder, in name order.
    pub files: Vec<PathBuf>,
    /// The files that loaded, without the later of two naming one table.
    pub set: SchemaSet,
    /// Every problem, in file name order; empty when the folder is usable.
    pub problems: Vec<SchemaError>,
}

impl SchemaSet {
    /// Loads and compiles every `*.yaml` / `*.yml` file directly in `dir`, in
    /// file name order.
    ///
    /// Fails on the first problem (see [`SchemaSet::lint`] for all of them): a
    /// file that cannot be used, two files naming the same table, a folder
    /// without schema files.
    pub fn load(dir: &Path) -> Result<SchemaSet, SchemaError> {
        let lint = SchemaSet::lint(dir)?;
        match lint.problems.into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(lint.set),
        }
    }

    /// Loads every file of `dir` and collects every problem instead of
    /// stopping at the first; fails only when the folder cannot be listed.
    pub fn lint(dir: &Path) -> Result<Lint, SchemaError> {
        let mut tables = Vec::new();
        let mut problems = Vec::new();
        let files = load::schema_files(dir)?;
        for path in &files {
            match load::load_file(path) {
                Ok(table) => tables.push(table),
                Err(file_problems) => problems.extend(file_problems),
            }
        }
        if tables.is_empty() && problems.is_empty() {
            problems.push(SchemaError::NoFiles { dir: dir.to_owned() });
        }

        // A stable sort keeps files in name order among equal tables, so the
        // duplicate reported is the later file.
        tables.sort_by(|a, b| a.table.cmp(&b.table));
        let mut unique: Vec<TableSchema> = Vec::with_capacity(tables.len());
        for table in tables {
            match unique.last() {
                Some(first) if first.table == table.table => {
                    problems.push(SchemaError::DuplicateTable {
                        path: table.path.clone(),
                        first: first.path.clone(),
                        table: table.table.clone(),
                    });
                }
                _ => unique.push(table),
            }
        }
        problems.sort_by(|a, b| a.path().cmp(b.path()));
        Ok(Lint { files, set: SchemaSet { tables: unique }, problems })
    }

    /// The schema of table `schema.table`, names as PostgreSQL stores them.
    pub fn get(&self, schema: &str, table: &str) -> Option<&TableSchema> {
        self.tables
            .binary_search_by(|candidate| {
                let name = &candidate.table;
                (name.schema.as_str(), name.name.as_str()).cmp(&(schema, table))
            })
            .ok()
            .map(|index| &self.tables[index])
    }

    /// Every table's schema, sorted by schema then table name.
    pub fn tables(&self) -> impl ExactSizeIterator<Item = &TableSchema> {
        self.tables.iter()
    }

    /// How many tables have a schema.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether there are no tables; never true for a set from [`SchemaSet::load`].
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}
