//! `walguard check`: every problem in a folder of schema files, each with its
//! file, line and column, and optionally every mismatch with the live catalog.
//!
//! Without a database it reports what loading reports (YAML syntax, unknown or
//! misplaced keywords, invalid JSON Schema, CEL that does not compile,
//! malformed monitors, duplicate tables), plus CEL rules that read a column the
//! file does not describe: a column a rule uses must be listed under
//! `properties` or `required`, so that a misspelt name is caught here rather
//! than by every row. With `--against-db` it also checks each file against the
//! catalog (see [`database`]).

mod cel;
mod database;
mod location;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

pub(crate) use cel::columns_read;
use location::Locations;

use crate::catalog::CatalogError;
use crate::config::ConnectionSettings;
use crate::postgres::{self, ConnectError};
use crate::schema::{SchemaError, SchemaSet};

/// Why `check` could not run at all (as opposed to finding problems).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// One problem, located as precisely as it can be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file (or, for an empty folder, the folder).
    pub file: PathBuf,
    /// Line and column in the file, both from 1, when known.
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// JSON pointer to the keyword inside the file; empty for the whole file.
    pub pointer: String,
    pub message: String,
}

/// What `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// How many schema files were read.
    pub files: usize,
    /// Every problem, sorted by file, then position.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether everything passed.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line per problem (`file:line:column: pointer: message`) and a summary.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for problem in &self.problems {
            let _ = write!(out, "{}", problem.file.display());
            if let (Some(line), Some(column)) = (problem.line, problem.column) {
                let _ = write!(out, ":{line}:{column}");
            }
            if !problem.pointer.is_empty() {
                let _ = write!(out, ": {}", problem.pointer);
            }
            let _ = writeln!(out, ": {}", problem.message);
        }
        let files = if self.files == 1 { "file" } else { "files" };
        match self.problems.len() {
            0 => {
                let _ = writeln!(out, "{} schema {files} checked: no problems", self.files);
            }
            count => {
                let problems = if count == 1 { "problem" } else { "problems" };
                let _ = writeln!(out, "{count} {problems} in {} schema {files}", self.files);
            }
        }
        out
    }

    /// The report as a JSON document (`{"files": N, "problems": [...]}`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// Checks every schema file in `dir`; with `against`, also against that
/// database's catalog.
pub async fn check(dir: &Path, against: Option<&ConnectionSettings>) -> Result<Report, CheckError> {
    // Load everything, collecting every problem.
    let lint = SchemaSet::lint(dir)?;
    let mut files = HashMap::new();
    for path in &lint.files {
        files.insert(path.clone(), SourceFile::read(path));
    }
    let mut problems: Vec<Problem> =
        lint.problems.iter().map(|err| from_error(err, &files)).collect();

    // Rules that do not compile (every one, not just a file's first) or that
    // read columns the file does not describe.
    for (path, file) in &files {
        for (pointer, message) in file.rule_problems() {
            let known = problems.iter().any(|p| &p.file == path && p.pointer == pointer);
            if !known {
                problems.push(file.problem(path, &pointer, message));
            }
        }
    }

    // Two files naming one table, counting files that did not load (loading
    // only compares the ones that did).
    let mut named: Vec<(&str, &PathBuf)> = lint
        .files
        .iter()
        .filter_map(|path| {
            Some((files.get(path)?.document.as_ref()?.get("x-table")?.as_str()?, path))
        })
        .collect();
    named.sort();
    for pair in named.windows(2) {
        let ((table, first), (other, path)) = (pair[0], pair[1]);
        let known = problems.iter().any(|p| &p.file == path && p.pointer == "/x-table");
        if table == other && !known {
            let message = format!("table {table} is already described by {}", first.display());
            problems.push(files[path].problem(path, "/x-table", message));
        }
    }

    // The live catalog.
    if let Some(connection) = against {
        let client = postgres::connect(connection, "walguard check").await?;
        for (path, pointer, message) in database::check(&client, &lint.set, &files).await? {
            let problem = match files.get(&path) {
                Some(file) => file.problem(&path, &pointer, message),
                None => Problem { file: path, line: None, column: None, pointer, message },
            };
            problems.push(problem);
        }
    }

    problems.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    problems.dedup();
    Ok(Report { files: lint.files.len(), problems })
}

/// A schema file's text as parsed for locating and for the rule checks.
struct SourceFile {
    locations: Locations,
    document: Option<Value>,
}

impl SourceFile {
    fn read(path: &Path) -> SourceFile {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        SourceFile {
            locations: Locations::of(&text),
            document: serde_saphyr::from_str::<Value>(&text).ok(),
        }
    }

    fn problem(&self, path: &Path, pointer: &str, message: String) -> Problem {
        let position = self.locations.find(pointer);
        Problem {
            file: path.to_owned(),
            line: position.map(|(line, _)| line),
            column: position.map(|(_, column)| column),
            pointer: pointer.to_owned(),
            message,
        }
    }

    /// `(pointer, message)` for each rule without a name or expression or with
    /// a name used before, and each expression that does not compile or that
    /// reads a column neither `properties` nor `required` names. Loading stops
    /// at a file's first bad rule; this finds them all.
    fn rule_problems(&self) -> Vec<(String, String)> {
        let Some(Value::Object(root)) = &self.document else {
            return Vec::new();
        };
        let mut described: BTreeSet<&str> = BTreeSet::new();
        if let Some(Value::Object(properties)) = root.get("properties") {
            described.extend(properties.keys().map(String::as_str));
        }
        if let Some(Value::Array(required)) = root.get("required") {
            described.extend(required.iter().filter_map(Value::as_str));
        }

        let mut found = Vec::new();
        let mut names = BTreeSet::new();
        let rules = root.get("x-rules").and_then(Value::as_array).into_iter().flatten();
        for (index, rule) in rules.enumerate() {
            let name = rule.get("name").and_then(Value::as_str).unwrap_or("?");
            let pointer = format!("/x-rules/{index}");
            if rule.get("name").and_then(Value::as_str).is_none_or(|name| name.trim().is_empty())
                || !rule.get("expr").is_some_and(Value::is_string)
            {
                found.push((pointer.clone(), "a rule needs a name and an expr".to_owned()));
            } else if !names.insert(name) {
                found.push((pointer.clone(), format!("another rule is already named {name}")));
            }
            for field in ["expr", "when"] {
                let Some(source) = rule.get(field).and_then(Value::as_str) else { continue };
                let pointer = format!("/x-rules/{index}/{field}");
                let program = match crate::schema::cel_env().compile(source) {
                    Ok(program) => program,
                    Err(errors) => {
                        let message = errors
                            .errors
                            .iter()
                            .map(|err| format!("{} at {}:{}", err.msg, err.pos.0, err.pos.1))
                            .collect::<Vec<_>>()
                            .join("; ");
                        found.push((pointer, format!("rule {name} does not compile: {message}")));
                        continue;
                    }
                };
                for column in columns_read(program.expression()) {
                    if !described.contains(column.as_str()) {
                        let message = format!(
                            "rule {name} reads column {column}, which the file does not \
                             describe: fix the name, or list the column under properties"
                        );
                        found.push((pointer.clone(), message));
                    }
                }
            }
        }
        found
    }
}

/// A loading problem as a located [`Problem`].
fn from_error(err: &SchemaError, files: &HashMap<PathBuf, SourceFile>) -> Problem {
    let path = err.path().to_owned();
    let (pointer, message) = match err {
        SchemaError::Yaml { location, message, .. } => {
            return Problem {
                file: path,
                line: location.map(|(line, _)| line),
                column: location.map(|(_, column)| column),
                pointer: String::new(),
                message: format!("invalid YAML: {message}"),
            };
        }
        SchemaError::Invalid { pointer, message, .. } => (pointer.clone(), message.clone()),
        SchemaError::Rule { pointer, rule, message, .. } => {
            (pointer.clone(), format!("rule {rule} does not compile: {message}"))
        }
        SchemaError::DuplicateTable { first, table, .. } => (
            "/x-table".to_owned(),
            format!("table {table} is already described by {}", first.display()),
        ),
        SchemaError::ReadFile { source, .. } => (String::new(), format!("cannot read: {source}")),
        other => (String::new(), other.to_string()),
    };
    match files.get(&path) {
        Some(file) => file.problem(&path, &pointer, message),
        None => Problem { file: path, line: None, column: None, pointer, message },
    }
}
