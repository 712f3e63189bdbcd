//! The look-up queries: which referencing values exist in their referenced
//! column, asked of the source database on a connection of walguard's own.
//!
//! One query per referenced column and batch:
//! `SELECT k FROM unnest($1::text[]) k WHERE EXISTS (... WHERE col = k::type)`,
//! which compares in the column's own type so that its index serves each key.
//! A value that does not even convert to that type (text in an integer
//! column) makes the whole query fail; the values are then asked one by one
//! and such a value counts as missing.
//!
//! Every query and the connection itself are bounded by [`TIMEOUT`]; after a
//! failure the connection is dropped and opened again on next use.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio_postgres::Client;

use super::Load;
use crate::config::ConnectionSettings;
use crate::postgres::{self, quote_ident};
use crate::schema::ColumnRef;

/// How long a look-up (or connecting for one) may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a look-up failed; its checks are tried again later.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Connect(#[from] postgres::ConnectError),
    #[error("failed to look up values in {target}: {source}")]
    Sql { target: String, source: tokio_postgres::Error },
    #[error("looking up values in {target} took longer than {TIMEOUT:?}")]
    Timeout { target: String },
}

/// The look-up connection and the statement for each target.
pub(super) struct Lookup {
    source: ConnectionSettings,
    client: Option<Client>,
    /// Per target: the query, or `None` once the column was found missing.
    statements: HashMap<ColumnRef, Option<String>>,
}

impl Lookup {
    pub(super) fn new(source: ConnectionSettings) -> Self {
        Lookup { source, client: None, statements: HashMap::new() }
    }

    /// The keys among `keys` that exist; each is (target, value).
    pub(super) async fn find(
        &mut self,
        keys: &[(&ColumnRef, &str)],
        load: &mut Load,
    ) -> Result<HashSet<(ColumnRef, String)>, LookupError> {
        let result = self.find_all(keys, load).await;
        if result.is_err() {
            self.client = None;
        }
        result
    }

    async fn find_all(
        &mut self,
        keys: &[(&ColumnRef, &str)],
        load: &mut Load,
    ) -> Result<HashSet<(ColumnRef, String)>, LookupError> {
        let mut targets: Vec<&ColumnRef> = keys.iter().map(|(target, _)| *target).collect();
        targets.sort_by(|a, b| (&a.table, &a.column).cmp(&(&b.table, &b.column)));
        targets.dedup();
        let mut found = HashSet::new();
        for target in targets {
            let mut values: Vec<&str> =
                keys.iter().filter(|(t, _)| *t == target).map(|(_, value)| *value).collect();
            values.sort_unstable();
            values.dedup();
            let Some(statement) = self.statement(target, load).await? else {
                continue;
            };
            let client = self.client().await?;
            for value in query(client, &statement, target, &values, load).await? {
                found.insert((target.clone(), value));
            }
        }
        Ok(found)
    }

    /// The look-up statement for a target, prepared once; `None` when the
    /// column does not exist, which makes every value missing.
    async fn statement(
        &mut self,
        target: &ColumnRef,
        load: &mut Load,
    ) -> Result<Option<String>, LookupError> {
        if let Some(statement) = self.statements.get(target) {
            return Ok(statement.clone());
        }
        let client = self.client().await?;
        load.queries += 1;
        let row = bounded(
            target,
            client.query_opt(
                "SELECT a.atttypid::regtype::text FROM pg_attribute a
                 WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0
                   AND NOT a.attisdropped",
                &[&target.table.quoted(), &target.column],
            ),
        )
        .await?;
        let statement = row.map(|row| {
            let column_type: String = row.get(0);
            format!(
                "SELECT k FROM unnest($1::text[]) AS k WHERE EXISTS \
                 (SELECT 1 FROM {} AS t WHERE t.{} = k::{column_type})",
                target.table.quoted(),
                quote_ident(&target.column)
            )
        });
        if statement.is_none() {
            tracing::error!(target = %target, "referenced column does not exist; \
                every value referencing it is reported");
        }
        self.statements.insert(target.clone(), statement.clone());
        Ok(statement)
    }

    async fn client(&mut self) -> Result<&Client, LookupError> {
        if self.client.is_none() {
            let connect = postgres::connect(&self.source, "walguard references");
            let client = match tokio::time::timeout(TIMEOUT, connect).await {
                Ok(client) => client?,
                Err(_) => return Err(LookupError::Timeout { target: self.source.describe() }),
            };
            // The server gives up on a slow look-up too, not only walguard.
            let timeout = format!("SET statement_timeout = {}", TIMEOUT.as_millis());
            bounded_on(&self.source.describe(), client.batch_execute(&timeout)).await?;
            self.client = Some(client);
        }
        Ok(self.client.as_ref().expect("connected above"))
    }
}

/// Runs the look-up for one target; values that do not convert to the
/// column's type are asked one by one.
async fn query(
    client: &Client,
    statement: &str,
    target: &ColumnRef,
    values: &[&str],
    load: &mut Load,
) -> Result<Vec<String>, LookupError> {
    load.queries += 1;
    match bounded(target, client.query(statement, &[&values])).await {
        Ok(rows) => return Ok(rows.iter().map(|row| row.get(0)).collect()),
        Err(LookupError::Sql { source, .. }) if is_bad_value(&source) => {}
        Err(err) => return Err(err),
    }
    let mut found = Vec::new();
    for value in values {
        load.queries += 1;
        match bounded(target, client.query(statement, &[&vec![*value]])).await {
            Ok(rows) if !rows.is_empty() => found.push((*value).to_owned()),
            Ok(_) => {}
            Err(LookupError::Sql { source, .. }) if is_bad_value(&source) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(found)
}

/// A data exception (SQLSTATE class 22): a value that is not of the type.
fn is_bad_value(err: &tokio_postgres::Error) -> bool {
    err.code().is_some_and(|code| code.code().starts_with("22"))
}

/// Runs a query about `target` within [`TIMEOUT`].
async fn bounded<T>(
    target: &ColumnRef,
    future: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, LookupError> {
    bounded_on(&target.to_string(), future).await
}

/// Runs `future` within [`TIMEOUT`], naming `target` if it fails.
async fn bounded_on<T>(
    target: &str,
    future: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, LookupError> {
    match tokio::time::timeout(TIMEOUT, future).await {
        Ok(result) => {
            result.map_err(|source| LookupError::Sql { target: target.to_owned(), source })
        }
        Err(_) => Err(LookupError::Timeout { target: target.to_owned() }),
    }
}
