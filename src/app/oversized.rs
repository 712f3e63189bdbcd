//! Naming the change behind a message larger than `source.max_message_bytes`.
//!
//! pgwire-replication refuses such a message from its length prefix, before
//! reading any of it, so memory stays bounded but the stream cannot tell
//! which row it was. Once the session has ended the slot is free, and
//! `pg_logical_slot_peek_binary_changes` decodes the same transaction again on
//! the server without moving the slot; only the first bytes of the oversized
//! message cross the network, and they hold its relation oid (PostgreSQL
//! documentation, section 55.9 "Logical Replication Message Formats": Insert,
//! Update and Delete carry the relation oid right after the tag).

use std::time::Duration;

use crate::config::Settings;
use crate::pipeline::Pipeline;
use crate::postgres;
use crate::replication::slot::publication_names;
use crate::sink::format_lsn;

/// Bytes of the XLogData header that precede the pgoutput message.
const XLOG_DATA_HEADER: i64 = 25;
/// How often to ask for the slot while the old session lets go of it.
const PEEK_ATTEMPTS: usize = 20;

/// Describes the oversized change as well as can be found out: its table,
/// relation oid and LSN, else the transaction it belongs to.
pub(super) async fn describe(settings: &Settings, pipeline: &Pipeline, limit: usize) -> String {
    let Some(commit_lsn) = pipeline.commit_lsn() else {
        return "an unknown relation, outside any transaction".into();
    };
    let transaction = format!("the transaction committing at {}", format_lsn(commit_lsn));
    match peek(settings, commit_lsn, limit).await {
        Some((oid, lsn, catalog_name)) => {
            let cached = pipeline
                .relation(oid)
                .map(|cached| format!("{}.{}", cached.relation.namespace, cached.relation.name));
            match cached.or(catalog_name) {
                Some(table) => format!("table {table} (relation {oid}) at {lsn}, in {transaction}"),
                None => format!("relation {oid} at {lsn}, in {transaction}"),
            }
        }
        None => format!("an unknown relation in {transaction}"),
    }
}

/// The relation oid, LSN and catalog name of the first oversized change up to
/// the commit at `commit_lsn`, if the server can tell.
async fn peek(
    settings: &Settings,
    commit_lsn: u64,
    limit: usize,
) -> Option<(u32, String, Option<String>)> {
    let source = &settings.source;
    let client = postgres::connect(&source.connection, "walguard").await.ok()?;
    let publications = publication_names(&source.publication).join(",");
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let query = "
        SELECT c.lsn::text, c.oid, format('%I.%I', n.nspname, r.relname)
        FROM (SELECT lsn, ((get_byte(data, 1)::int8 << 24) | (get_byte(data, 2)::int8 << 16)
                         | (get_byte(data, 3)::int8 << 8) | get_byte(data, 4)::int8) AS oid
              FROM pg_logical_slot_peek_binary_changes($1::text::name, $2::text::pg_lsn, NULL,
                   'proto_version', '1', 'publication_names', $3::text)
              WHERE length(data) + $4::int8 > $5::int8
                AND get_byte(data, 0) IN (73, 85, 68, 82)
              LIMIT 1) c
        LEFT JOIN pg_class r ON r.oid = c.oid::oid
        LEFT JOIN pg_namespace n ON n.oid = r.relnamespace";
    // Decoding stops before the first record that starts at `upto` or later,
    // so one byte past the commit record's start includes the transaction.
    let upto = format_lsn(commit_lsn + 1);
    for _ in 0..PEEK_ATTEMPTS {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
            [&source.slot, &upto, &publications, &XLOG_DATA_HEADER, &limit];
        match client.query_opt(query, &params).await {
            Ok(row) => {
                let row = row?;
                let oid = u32::try_from(row.get::<_, i64>(1)).ok()?;
                let name: Option<String> = row.get(2);
                return Some((oid, row.get(0), name));
            }
            // The old session may still hold the slot for a moment.
            Err(err) if err.code().is_some_and(|c| c.code() == "55006") => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(err) => {
                tracing::debug!(error = %err, "could not find the oversized change");
                return None;
            }
        }
    }
    None
}
