//! The slot and publications walguard reads from, planned from the schema
//! files and checked before streaming.
//!
//! Two publications share the configured name: `<name>` publishes inserts,
//! updates and deletes, `<name>_inserts` only inserts. PostgreSQL refuses an
//! UPDATE or DELETE on a table that a publication publishes them for when the
//! table has no replica identity (PostgreSQL documentation, section 31.1
//! "Publication"), so a table without a primary key, replica identity index or
//! REPLICA IDENTITY FULL goes into the second one: walguard then validates its
//! inserts only, and never makes the application's writes fail. The first
//! publication also publishes deletes: a table in it has a replica identity,
//! so PostgreSQL accepts its deletes, and a deleted row resolves the open
//! violation states of its key (see [`crate::sink::lifecycle`]). Truncates are
//! never published: they carry no row.
//! `publish_via_partition_root` makes rows written to any partition, even one
//! attached later, arrive under the partitioned table's name.
//!
//! The check looks at every table a publication takes in: a partitioned
//! table's partitions and an inheritance parent's children are published with
//! it, and PostgreSQL checks each one's own replica identity. A partition
//! created later inherits its parent's primary key but not its REPLICA
//! IDENTITY setting, so a partitioned table counts only when it has a primary
//! key. A table can also lose its identity after setup (a dropped primary
//! key): `walguard run` checks again at start and moves such a table to the
//! inserts-only publication before the application's next update fails.

use tokio_postgres::Client;

use crate::postgres::{quote_ident, quote_literal};
use crate::schema::SchemaSet;

/// A problem with the slot, the publications or the tables they name.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error("table {table} named by {file} does not exist in database {database}")]
    MissingTable { table: String, file: String, database: String },
    #[error("table {table} named by {file} is in walguard's own schema {schema}")]
    OwnTable { table: String, file: String, schema: String },
    #[error("replication slot {slot} does not exist in database {database}: run `walguard setup`")]
    MissingSlot { slot: String, database: String },
    #[error(
        "replication slot {slot} uses plugin {plugin} or another database; walguard needs a pgoutput slot in {database}"
    )]
    WrongSlot { slot: String, plugin: String, database: String },
    #[error(
        "replication slot {slot} was invalidated (wal_status = lost): the server removed WAL it needed; drop it and run `walguard setup` again"
    )]
    LostSlot { slot: String },
    #[error("replication slot {slot} is in use by server process {pid}")]
    InUse { slot: String, pid: i32 },
    #[error("publication {publication} does not exist: run `walguard setup`")]
    MissingPublication { publication: String },
    #[error("failed to {action} on the source database: {source}")]
    Sql { action: &'static str, source: tokio_postgres::Error },
}

impl SlotError {
    fn sql(action: &'static str) -> impl FnOnce(tokio_postgres::Error) -> SlotError {
        move |source| SlotError::Sql { action, source }
    }
}

/// The names of the two publications for a configured name.
pub fn publication_names(base: &str) -> [String; 2] {
    [base.to_string(), format!("{base}_inserts")]
}

/// The statements that make the source match the schema files.
pub async fn plan(
    client: &Client,
    schemas: &SchemaSet,
    slot: &str,
    publication: &str,
    own_schema: &str,
) -> Result<Vec<String>, SlotError> {
    let mut statements = plan_publications(client, schemas, publication, own_schema).await?;
    let existing = client
        .query_opt("SELECT plugin FROM pg_replication_slots WHERE slot_name = $1", &[&slot])
        .await
        .map_err(SlotError::sql("look up the replication slot"))?;
    if existing.is_none() {
        statements.push(format!(
            "SELECT pg_create_logical_replication_slot({}, 'pgoutput')",
            quote_literal(slot)
        ));
    }
    Ok(statements)
}

/// The name of the database `client` is connected to, for messages.
async fn current_database(client: &Client) -> Result<String, SlotError> {
    let row = client
        .query_one("SELECT current_database()", &[])
        .await
        .map_err(SlotError::sql("read the database name"))?;
    Ok(row.get(0))
}

/// The statements that make the publications list exactly the tables of
/// `schemas`; also what a reload runs when tables come or go.
pub async fn plan_publications(
    client: &Client,
    schemas: &SchemaSet,
    publication: &str,
    own_schema: &str,
) -> Result<Vec<String>, SlotError> {
    let database = current_database(client).await?;

    // Sort every table into the publication its replica identity allows.
    let mut full = Vec::new();
    let mut inserts_only = Vec::new();
    for table in schemas.tables() {
        let name = table.table.quoted();
        let file = table.path.display().to_string();
        if table.table.schema == own_schema {
            return Err(SlotError::OwnTable {
                table: table.table.to_string(),
                file,
                schema: own_schema.into(),
            });
        }
        match identity(client, &name).await? {
            Identity::Missing => {
                return Err(SlotError::MissingTable {
                    table: table.table.to_string(),
                    file,
                    database,
                });
            }
            Identity::Usable => full.push(name),
            Identity::Lacking => {
                tracing::warn!(table = %table.table, "{NO_IDENTITY_ADVICE}");
                inserts_only.push(name);
            }
        }
    }

    // Publications first, then the slot, so the slot never sees a gap.
    let [main, inserts] = publication_names(publication);
    let mut statements =
        publication_statements(client, &main, "insert, update, delete", &full).await?;
    statements.extend(publication_statements(client, &inserts, "insert", &inserts_only).await?);
    Ok(statements)
}

/// What a table offers the publication of its updates.
enum Identity {
    /// No such table.
    Missing,
    /// The table and every table published with it have a replica identity.
    Usable,
    /// Publishing updates would make some UPDATE on it fail.
    Lacking,
}

/// Why a table is validated on insert only, and what the user can do.
const NO_IDENTITY_ADVICE: &str = "table has no replica identity, so walguard validates its \
    inserts only (publishing its updates would make the application's UPDATE fail); to validate \
    updates too, give it a primary key, or REPLICA IDENTITY USING INDEX or FULL (on every \
    partition, and a primary key on a partitioned table), then run `walguard setup`";

/// For the table `$1` (quoted, as `to_regclass` takes it), whether it exists
/// and whether it and every table published with it (partitions, inheritance
/// children) have a replica identity that makes published updates safe.
const IDENTITY_QUERY: &str = "
WITH RECURSIVE tree(oid) AS (
    SELECT oid FROM pg_class WHERE oid = to_regclass($1)
    UNION ALL
    SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid)
SELECT count(*) > 0, coalesce(bool_and(CASE
    WHEN c.relkind = 'p' THEN EXISTS (
        SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
    ELSE c.relreplident::text = 'f' OR EXISTS (
        SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
            AND ((c.relreplident::text = 'd' AND i.indisprimary)
              OR (c.relreplident::text = 'i' AND i.indisreplident)))
    END), false)
FROM tree JOIN pg_class c ON c.oid = tree.oid";

async fn identity(client: &Client, quoted_table: &str) -> Result<Identity, SlotError> {
    let row = client
        .query_one(IDENTITY_QUERY, &[&quoted_table])
        .await
        .map_err(SlotError::sql("look up a table's replica identity"))?;
    Ok(match (row.get::<_, bool>(0), row.get::<_, bool>(1)) {
        (false, _) => Identity::Missing,
        (true, true) => Identity::Usable,
        (true, false) => Identity::Lacking,
    })
}

/// Moves each table of the updates publication that has lost its replica
/// identity since setup to the inserts-only one, so that the application's
/// updates keep working. A failure to move one is logged, not returned:
/// stopping walguard would not make the application's updates work.
async fn protect_updates(client: &Client, publications: &[String; 2]) -> Result<(), SlotError> {
    let [main, inserts] = publications;
    let tables: Vec<String> = client
        .query(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_publication_tables
             WHERE pubname = $1",
            &[main],
        )
        .await
        .map_err(SlotError::sql("read the publication's tables"))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for table in tables {
        if !matches!(identity(client, &table).await?, Identity::Lacking) {
            continue;
        }
        let statements = format!(
            "BEGIN; ALTER PUBLICATION {main} DROP TABLE {table}; \
             ALTER PUBLICATION {inserts} ADD TABLE {table}; COMMIT",
            main = quote_ident(main),
            inserts = quote_ident(inserts),
        );
        match client.batch_execute(&statements).await {
            Ok(()) => tracing::warn!(table = %table, "{NO_IDENTITY_ADVICE}"),
            Err(err) => {
                let _ = client.batch_execute("ROLLBACK").await;
                tracing::error!(table = %table, error = %err,
                    "table lost its replica identity, and moving it to the inserts-only \
                     publication failed: the application's UPDATE on it fails until it gets \
                     a replica identity or `walguard setup` runs");
            }
        }
    }
    Ok(())
}

async fn publication_statements(
    client: &Client,
    name: &str,
    publish: &str,
    tables: &[String],
) -> Result<Vec<String>, SlotError> {
    let quoted = quote_ident(name);
    let options = format!("publish = '{publish}', publish_via_partition_root = true");
    let current: Vec<String> = client
        .query(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_publication_tables
             WHERE pubname = $1",
            &[&name],
        )
        .await
        .map_err(SlotError::sql("read the publication's tables"))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let exists = client
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&name])
        .await
        .map_err(SlotError::sql("look up the publication"))?
        .is_some();

    let list = tables.join(", ");
    Ok(match (exists, tables.is_empty()) {
        (false, true) => vec![format!("CREATE PUBLICATION {quoted} WITH ({options})")],
        (false, false) => {
            vec![format!("CREATE PUBLICATION {quoted} FOR TABLE {list} WITH ({options})")]
        }
        (true, false) => vec![
            format!("ALTER PUBLICATION {quoted} SET TABLE {list}"),
            format!("ALTER PUBLICATION {quoted} SET ({options})"),
        ],
        (true, true) if current.is_empty() => {
            vec![format!("ALTER PUBLICATION {quoted} SET ({options})")]
        }
        (true, true) => vec![
            format!("ALTER PUBLICATION {quoted} DROP TABLE {}", current.join(", ")),
            format!("ALTER PUBLICATION {quoted} SET ({options})"),
        ],
    })
}

/// Checks that the slot and publications exist and the slot is usable and
/// free, and moves any table that lost its replica identity since setup out of
/// the updates publication; returns the publication names to stream.
pub async fn check(
    client: &Client,
    slot: &str,
    publication: &str,
) -> Result<Vec<String>, SlotError> {
    let database = current_database(client).await?;
    let row = client
        .query_opt(
            "SELECT plugin, database, coalesce(wal_status, ''), active_pid
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(SlotError::sql("look up the replication slot"))?;
    let Some(row) = row else {
        return Err(SlotError::MissingSlot { slot: slot.into(), database });
    };
    let (plugin, slot_database, wal_status): (Option<String>, Option<String>, String) =
        (row.get(0), row.get(1), row.get(2));
    if plugin.as_deref() != Some("pgoutput") || slot_database.as_deref() != Some(&database) {
        return Err(SlotError::WrongSlot {
            slot: slot.into(),
            plugin: plugin.unwrap_or_else(|| "none (physical)".into()),
            database,
        });
    }
    if wal_status == "lost" {
        return Err(SlotError::LostSlot { slot: slot.into() });
    }
    // Asking here rather than failing START_REPLICATION keeps a standby from
    // filling the server log with errors.
    if let Some(pid) = row.get::<_, Option<i32>>(3) {
        return Err(SlotError::InUse { slot: slot.into(), pid });
    }

    let names = publication_names(publication);
    for name in &names {
        let exists = client
            .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[name])
            .await
            .map_err(SlotError::sql("look up the publication"))?
            .is_some();
        if !exists {
            return Err(SlotError::MissingPublication { publication: name.clone() });
        }
    }
    protect_updates(client, &names).await?;
    Ok(names.to_vec())
}
