//! Why a folder of schema files could not be loaded.
//!
//! Every error names the file; a YAML error adds the line and column, a schema
//! error the JSON pointer of the keyword inside the file (`/properties/email/x-pii`),
//! so that `walguard check` output can be followed without reading the source.
//! All of them are fatal: walguard does not start with a schema it cannot trust.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::QualifiedName;

/// A schema folder or file that cannot be used.
#[derive(Debug, Error)]
pub enum SchemaError {
    /// The folder could not be listed.
    #[error("failed to read schema folder {}", dir.display())]
    ReadDir {
        /// The folder.
        dir: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// A file could not be read, or is not UTF-8.
    #[error("failed to read schema file {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// The folder holds no `*.yaml` or `*.yml` file.
    #[error("no schema files (*.yaml, *.yml) were found in {}", dir.display())]
    NoFiles {
        /// The folder.
        dir: PathBuf,
    },

    /// The file is not valid YAML. serde-saphyr's own error renders a source
    /// snippet over several lines, so only its one-line message is kept.
    #[error("{}{}: {message}", path.display(), position(*location))]
    Yaml {
        /// The file.
        path: PathBuf,
        /// Line and column, both counted from 1, when the parser knows them.
        location: Option<(u64, u64)>,
        /// The parser's message, without the position.
        message: String,
    },

    /// The file is YAML but not a schema walguard accepts: a JSON Schema that
    /// does not compile, or one of our `x-` keywords missing, unknown, misplaced
    /// or malformed.
    #[error("{}: {}{message}", path.display(), keyword(pointer))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// JSON pointer to the offending keyword; empty for the whole file.
        pointer: String,
        /// What is wrong and, where it helps, what to write instead.
        message: String,
    },

    /// Two files describe the same table.
    #[error("{}: table {table} is already described by {}", path.display(), first.display())]
    DuplicateTable {
        /// The later file, in sorted order.
        path: PathBuf,
        /// The earlier file.
        first: PathBuf,
        /// The table both name in `x-table`.
        table: QualifiedName,
    },

    /// A CEL expression in `x-rules` does not compile.
    #[error("{}: {pointer}: rule {rule} does not compile: {message}", path.display())]
    Rule {
        /// The file.
        path: PathBuf,
        /// JSON pointer to the rule's `expr`.
        pointer: String,
        /// The rule's name.
        rule: String,
        /// The CEL parser's messages, with positions inside the expression.
        message: String,
    },
}

impl SchemaError {
    /// The file or folder the error is about.
    pub fn path(&self) -> &Path {
        match self {
            SchemaError::ReadDir { dir, .. } | SchemaError::NoFiles { dir } => dir,
            SchemaError::ReadFile { path, .. }
            | SchemaError::Yaml { path, .. }
            | SchemaError::Invalid { path, .. }
            | SchemaError::DuplicateTable { path, .. }
            | SchemaError::Rule { path, .. } => path,
        }
    }

    /// An [`SchemaError::Invalid`] for `path` at `pointer`.
    pub(crate) fn invalid(path: &Path, pointer: &str, message: impl Into<String>) -> Self {
        SchemaError::Invalid {
            path: path.to_owned(),
            pointer: pointer.to_owned(),
            message: message.into(),
        }
    }
}

/// `:line:column`, or nothing when the position is unknown.
fn position(location: Option<(u64, u64)>) -> String {
    location.map(|(line, column)| format!(":{line}:{column}")).unwrap_or_default()
}

/// `pointer: `, or nothing for an error about the whole file.
fn keyword(pointer: &str) -> String {
    if pointer.is_empty() { String::new() } else { format!("{pointer}: ") }
}
