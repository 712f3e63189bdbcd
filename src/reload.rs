//! Reloading the schema files while `walguard run` streams: on SIGHUP, and
//! when the files in the folder change.
//!
//! Changes are found by scanning the folder every [`SCAN_INTERVAL`] for the
//! names, sizes and modification times of its schema files, rather than with
//! inotify: a scan sees a Kubernetes ConfigMap update (an atomic swap of a
//! symlinked folder, which file watches miss), works on network file systems,
//! and costs a few `stat` calls a second. A change is reloaded once the folder
//! has looked the same for [`SETTLE`], so that a file being written is not read
//! half-way.
//!
//! At start, the publications are matched to the loaded files once, in case
//! files were added or removed while walguard was not running.
//!
//! A reload loads and compiles the whole folder, then plans the publications
//! for its tables (which fails if a table does not exist). If either fails,
//! the previous schemas keep running and the error is logged; the same files
//! are not tried again until they change or SIGHUP arrives. Otherwise the new
//! set is published to the stream, which switches between transactions, and
//! then the publications are altered: a table added is validated from the
//! first transaction that commits after the ALTER, and a table removed is
//! ignored at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::postgres;
use crate::replication::slot;
use crate::schema::SchemaSet;
use crate::telemetry::chain;
use crate::telemetry::metrics as telemetry;

/// How often the folder is scanned for changes.
pub const SCAN_INTERVAL: Duration = Duration::from_secs(1);
/// How long the folder must stay unchanged before a change is reloaded.
pub const SETTLE: Duration = Duration::from_millis(200);

/// The schema files' names, sizes and modification times, sorted.
pub type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// Reloads into `schemas` until `stop` is cancelled. `loaded` is the
/// folder's [`fingerprint`] taken before the current schemas were loaded, so
/// that a change made while walguard was starting is not missed.
pub async fn watch(
    settings: Settings,
    loaded: Fingerprint,
    schemas: watch::Sender<Arc<SchemaSet>>,
    stop: CancellationToken,
) {
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(err) => {
            tracing::warn!(error = %err,
                "cannot listen for SIGHUP: reloading on file changes only");
            None
        }
    };
    let current = schemas.borrow().clone();
    if let Err(err) = reconcile(&settings, &current).await {
        tracing::error!(error = %chain(err.as_ref()),
            "the publications could not be matched to the schema files: run `walguard setup`");
    }
    let dir = settings.schemas.clone();
    let mut loaded = loaded;
    let mut scans = tokio::time::interval(SCAN_INTERVAL);
    scans.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let reason = tokio::select! {
            _ = stop.cancelled() => return,
            Some(()) = async { hangup.as_mut()?.recv().await } => "SIGHUP",
            _ = scans.tick() => {
                let seen = fingerprint(&dir);
                if seen == loaded {
                    continue;
                }
                tokio::time::sleep(SETTLE).await;
                if fingerprint(&dir) != seen {
                    continue;
                }
                "files changed"
            }
        };
        loaded = fingerprint(&dir);
        reload(&settings, &schemas, reason).await;
    }
}

/// One reload; the previous schemas stay on any failure.
async fn reload(settings: &Settings, schemas: &watch::Sender<Arc<SchemaSet>>, reason: &str) {
    let folder = settings.schemas.display().to_string();
    let set = match SchemaSet::lint(&settings.schemas) {
        Ok(lint) if lint.problems.is_empty() => lint.set,
        Ok(lint) => {
            for problem in &lint.problems {
                tracing::error!(%folder, reason, error = %chain(problem), "schema file refused");
            }
            tracing::error!(%folder, reason, problems = lint.problems.len(),
                "schema reload failed: the previous schemas keep running");
            refused();
            return;
        }
        Err(err) => {
            tracing::error!(%folder, reason, error = %chain(&err),
                "schema reload failed: the previous schemas keep running");
            refused();
            return;
        }
    };

    // Plan the publications first: a table that does not exist fails here.
    let previous = schemas.borrow().clone();
    let same_tables = previous.tables().map(|t| t.table()).eq(set.tables().map(|t| t.table()));
    let statements = if same_tables {
        Vec::new()
    } else {
        match plan_publications(settings, &set).await {
            Ok(statements) => statements,
            Err(err) => {
                tracing::error!(%folder, reason, error = %chain(err.as_ref()),
                    "schema reload failed: the previous schemas keep running");
                refused();
                return;
            }
        }
    };

    // Switch, then publish the new tables.
    let tables = set.len();
    schemas.send_replace(Arc::new(set));
    metrics::counter!(telemetry::SCHEMA_RELOADS_TOTAL, telemetry::OUTCOME => telemetry::APPLIED)
        .increment(1);
    if let Err(err) = alter_publications(settings, &statements).await {
        tracing::error!(%folder, error = %chain(err.as_ref()),
            "schemas reloaded, but the publications could not be updated: run `walguard setup`");
        return;
    }
    tracing::info!(%folder, reason, tables, publications_changed = !statements.is_empty(),
        "schemas reloaded");
}

/// Brings the publications in line with `set` if files were added or removed
/// while walguard was not running; changes nothing when they already match.
async fn reconcile(
    settings: &Settings,
    set: &SchemaSet,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let client = postgres::connect(&settings.source.connection, "walguard reload").await?;
    let names = slot::publication_names(&settings.source.publication);
    let rows = client
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables
             WHERE pubname = ANY($1)",
            &[&names.to_vec()],
        )
        .await?;
    let published: Vec<(String, String)> =
        rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    let wanted: Vec<(String, String)> = set
        .tables()
        .map(|table| (table.table().schema.clone(), table.table().name.clone()))
        .collect();
    if published == wanted {
        return Ok(());
    }
    let statements =
        slot::plan_publications(&client, set, &settings.source.publication, &settings.sink.schema)
            .await?;
    for statement in &statements {
        client.batch_execute(statement).await?;
    }
    tracing::info!(tables = wanted.len(), "publications updated to match the schema files");
    Ok(())
}

fn refused() {
    metrics::counter!(telemetry::SCHEMA_RELOADS_TOTAL, telemetry::OUTCOME => telemetry::REFUSED)
        .increment(1);
}

async fn plan_publications(
    settings: &Settings,
    set: &SchemaSet,
) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let client = postgres::connect(&settings.source.connection, "walguard reload").await?;
    let statements =
        slot::plan_publications(&client, set, &settings.source.publication, &settings.sink.schema)
            .await?;
    Ok(statements)
}

async fn alter_publications(
    settings: &Settings,
    statements: &[String],
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if statements.is_empty() {
        return Ok(());
    }
    let client = postgres::connect(&settings.source.connection, "walguard reload").await?;
    for statement in statements {
        client.batch_execute(statement).await?;
    }
    Ok(())
}

/// What the folder looks like now; an unreadable folder looks empty.
pub fn fingerprint(dir: &Path) -> Fingerprint {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Fingerprint = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let yaml = path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml");
            if !yaml {
                return None;
            }
            let metadata = std::fs::metadata(&path).ok()?;
            Some((path, metadata.len(), metadata.modified().ok()))
        })
        .collect();
    found.sort();
    found
}
