//! `walguard setup`: the publications, the replication slot and walguard's
//! own tables, created so that running it again changes only what differs.

use crate::config::Settings;
use crate::postgres::{self, ConnectError};
use crate::replication::{SlotError, slot};
use crate::schema::{SchemaError, SchemaSet};
use crate::sink::ddl;

/// Why setup failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Slot(#[from] SlotError),
    #[error("failed to run `{statement}` on {target}: {source}")]
    Statement { statement: String, target: String, source: tokio_postgres::Error },
}

/// The statements setup runs, by database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Run on the sink database.
    pub sink: Vec<String>,
    /// Run on the source database, after the sink's.
    pub source: Vec<String>,
}

impl Plan {
    /// The plan as a SQL script a reviewer can read.
    pub fn to_sql(&self, settings: &Settings) -> String {
        let mut out = format!("-- on the sink database {}\n", settings.sink.connection.describe());
        for statement in &self.sink {
            out.push_str(&format!("{statement};\n"));
        }
        out.push_str(&format!(
            "\n-- on the source database {}\n",
            settings.source.connection.describe()
        ));
        for statement in &self.source {
            out.push_str(&format!("{statement};\n"));
        }
        out
    }
}

/// Works out what setup would do, changing nothing.
pub async fn plan(settings: &Settings) -> Result<Plan, SetupError> {
    let schemas = SchemaSet::load(&settings.schemas)?;
    let source = postgres::connect(&settings.source.connection, "walguard setup").await?;
    let source_statements = slot::plan(
        &source,
        &schemas,
        &settings.source.slot,
        &settings.source.publication,
        &settings.sink.schema,
    )
    .await?;
    Ok(Plan { sink: ddl::setup_statements(&settings.sink.schema), source: source_statements })
}

/// Runs the plan, each statement on its own (a slot cannot be created in a
/// transaction that has written).
pub async fn apply(settings: &Settings, plan: &Plan) -> Result<(), SetupError> {
    let targets =
        [(&settings.sink.connection, &plan.sink), (&settings.source.connection, &plan.source)];
    for (connection, statements) in targets {
        let client = postgres::connect(connection, "walguard setup").await?;
        for statement in statements {
            client.batch_execute(statement).await.map_err(|source| SetupError::Statement {
                statement: first_line(statement),
                target: connection.describe(),
                source,
            })?;
        }
    }
    Ok(())
}

fn first_line(statement: &str) -> String {
    statement.lines().next().unwrap_or_default().trim_end_matches(" (").to_string()
}
