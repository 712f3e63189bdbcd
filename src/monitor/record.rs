//! Writing monitor episodes to the sink: a violation row per raise and per
//! resolution, and a webhook alert for each, in one transaction per tick.
//!
//! A raise is alerted like a stream violation's first alert
//! (`violation.detected`, without row or position), so every webhook format
//! renders it; a resolution is not alerted.
//!
//! Rows carry `source = monitor`, no operation, position or row key, and the
//! episode's key as `dedup_key`, so writing the same events again (after a
//! failed commit, or a restart) adds nothing. The log stays append-only: a
//! resolution is its own row (`status = resolved`, the raise's key plus
//! `/resolved`); the raise row is left for reviewers to update.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_postgres::Client;

use super::episode::Event as Episode;
use crate::config::{SinkSettings, WebhookSettings};
use crate::postgres::{self, quote_ident};
use crate::schema::{QualifiedName, SchemaSet, Severity};
use crate::sink::{Event, EventData, EventKind, SinkError};

/// The suffix of a resolution's dedup key.
const RESOLVED_SUFFIX: &str = "/resolved";

/// The monitors' own sink connection, opened when first needed and again
/// after a failure.
pub(super) struct Writer {
    sink: SinkSettings,
    webhooks: Vec<WebhookSettings>,
    outbox_ready: Arc<Notify>,
    client: Option<Client>,
}

fn sql(action: &'static str) -> impl FnOnce(tokio_postgres::Error) -> SinkError {
    move |source| SinkError::Sql { action, source }
}

impl Writer {
    pub(super) fn new(
        sink: SinkSettings,
        webhooks: Vec<WebhookSettings>,
        outbox_ready: Arc<Notify>,
    ) -> Self {
        Writer { sink, webhooks, outbox_ready, client: None }
    }

    async fn client(&mut self) -> Result<&mut Client, SinkError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client =
                Some(postgres::connect(&self.sink.connection, "walguard monitors").await?);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// `(table, rule, key)` of each episode raised and not resolved: a raise
    /// row without its resolution row, whatever a reviewer set its status to.
    pub(super) async fn open_episodes(
        &mut self,
    ) -> Result<Vec<(QualifiedName, String, String)>, SinkError> {
        let s = quote_ident(&self.sink.schema);
        let query = format!(
            "SELECT r.table_schema, r.table_name, r.rule, r.dedup_key FROM {s}.violations r
             WHERE r.source = 'monitor' AND r.rule IN ('freshness', 'volume')
               AND r.dedup_key NOT LIKE '%{RESOLVED_SUFFIX}'
               AND NOT EXISTS (SELECT 1 FROM {s}.violations x
                               WHERE x.dedup_key = r.dedup_key || '{RESOLVED_SUFFIX}')
             ORDER BY r.id"
        );
        let rows =
            self.client().await?.query(&query, &[]).await.map_err(sql("read open episodes"))?;
        Ok(rows
            .iter()
            .map(|row| {
                let table = QualifiedName::new(row.get::<_, String>(0), row.get::<_, String>(1));
                (table, row.get(2), row.get(3))
            })
            .collect())
    }

    /// Writes the events and their alerts in one transaction.
    pub(super) async fn write(
        &mut self,
        events: &[(QualifiedName, Episode)],
        schemas: &SchemaSet,
    ) -> Result<(), SinkError> {
        let s = quote_ident(&self.sink.schema);
        let insert = format!(
            "INSERT INTO {s}.violations (source, table_schema, table_name, rule, severity, message,
                 status, dedup_key)
             VALUES ('monitor', $1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (dedup_key) DO NOTHING RETURNING id"
        );
        let outbox = format!(
            "INSERT INTO {s}.webhook_outbox (endpoint, webhook_id, payload)
             VALUES ($1, $2, $3::text::jsonb) ON CONFLICT (webhook_id) DO NOTHING"
        );
        let webhooks = self.webhooks.clone();
        let client = self.client().await?;
        let transaction = client.transaction().await.map_err(sql("begin a transaction"))?;
        let mut alerts = 0;
        for (table, event) in events {
            let severity = schemas
                .get(&table.schema, &table.name)
                .map_or(Severity::Error, |schema| schema.severity());
            let (rule, key, message, status) = match event {
                Episode::Raised { rule, key, message } => (*rule, key.clone(), message, "open"),
                Episode::Resolved { rule, raised_key, message } => {
                    let key = format!("{raised_key}{RESOLVED_SUFFIX}");
                    (*rule, key, message, "resolved")
                }
            };
            let inserted = transaction
                .query_opt(
                    &insert,
                    &[
                        &table.schema,
                        &table.name,
                        &rule,
                        &severity.as_str(),
                        message,
                        &status,
                        &key,
                    ],
                )
                .await
                .map_err(sql("insert a monitor violation"))?;
            if inserted.is_none() {
                continue;
            }
            // Raises alert like a first violation; resolutions are recorded
            // only, since the alert formats have no way yet to say "resolved".
            if status != "open" {
                continue;
            }
            for hook in webhooks.iter() {
                if !hook.wants(&table.schema, &table.name, severity) {
                    continue;
                }
                let endpoint = crate::sink::endpoint::endpoint_name(hook);
                let digest = Sha256::digest(format!("{endpoint}\n{key}").as_bytes());
                let webhook_id = format!("msg_{}", &hex::encode(digest)[..32]);
                let event = Event {
                    kind: EventKind::Detected,
                    timestamp: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                        .to_string(),
                    data: EventData {
                        table: table.to_string(),
                        rule: rule.to_owned(),
                        column: None,
                        severity,
                        message: message.clone(),
                        count: 1,
                        operation: None,
                        row_key: None,
                        commit_lsn: None,
                        sample_row_keys: Vec::new(),
                        window_start: None,
                        window_end: None,
                    },
                };
                let payload = serde_json::to_string(&event).expect("events serialise");
                transaction
                    .execute(&outbox, &[&endpoint, &webhook_id, &payload])
                    .await
                    .map_err(sql("queue a webhook alert"))?;
                alerts += 1;
            }
        }
        transaction.commit().await.map_err(sql("commit monitor violations"))?;
        if alerts > 0 {
            self.outbox_ready.notify_waiters();
        }
        Ok(())
    }
}
