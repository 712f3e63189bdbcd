//! `x-monitors` against a running walguard: a freshness episode raised once
//! and resolved once, never before a full window has passed, taken over
//! across a restart; and a volume episode.

use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::fixture::Fixture;
use crate::harness::wait_until;
use crate::reload::{drop_slot, stop};
use crate::running::Running;
use crate::webhook_receiver::WebhookReceiver;

/// `(rule, status, dedup_key)` of every monitor violation, in order.
async fn episodes(fixture: &Fixture) -> Vec<(String, String, String)> {
    let rows = fixture
        .db
        .client
        .query(
            "SELECT rule, status, dedup_key FROM walguard.violations
             WHERE source = 'monitor' AND table_schema = 'public' AND table_name = 'events'
             ORDER BY id",
            &[],
        )
        .await
        .expect("monitor violations");
    rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect()
}

async fn wait_for_episodes(fixture: &Fixture, count: usize, what: &str) {
    wait_until(Duration::from_secs(30), what, async || episodes(fixture).await.len() >= count)
        .await;
}

const DDL: &str = "CREATE TABLE events (id integer PRIMARY KEY)";

#[tokio::test]
async fn freshness_is_raised_once_per_episode_and_resolved_once_when_rows_arrive() {
    let schema = "x-table: public.events\nx-severity: warn\nx-monitors: {freshness: 2s}\n";
    let fixture = Fixture::new("freshness", DDL, &[("public.events.yaml", schema)]).await;
    fixture.setup().await;

    // No insert: raised, and not before a whole window after the start.
    let started = SystemTime::now();
    let running = Running::start(&fixture);
    wait_for_episodes(&fixture, 1, "the freshness episode is raised").await;
    assert!(started.elapsed().unwrap() >= Duration::from_secs(2), "no alarm before the window");
    let raised = episodes(&fixture).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    let (rule, status, key) = raised[0].clone();
    assert_eq!((rule.as_str(), status.as_str()), ("freshness", "open"));
    let severity = fixture
        .db
        .query_count(
            "SELECT count(*) FROM walguard.violations WHERE severity = 'warn'
               AND operation IS NULL AND row_key = '{}' AND message LIKE 'no insert into%'",
        )
        .await;
    assert_eq!(severity, 1, "the file's severity, no row, a message");

    // Rows arrive: resolved once, by a row of its own.
    fixture.db.execute("INSERT INTO events VALUES (1), (2)").await;
    wait_for_episodes(&fixture, 2, "the freshness episode is resolved").await;
    let resolved = episodes(&fixture).await;
    assert_eq!(
        resolved[..2],
        [
            ("freshness".into(), "open".into(), key.clone()),
            ("freshness".into(), "resolved".into(), format!("{key}/resolved")),
        ]
    );

    // Silence again is a new episode with its own key, raised once.
    wait_for_episodes(&fixture, 3, "a second episode is raised").await;
    let (_, status, second) = episodes(&fixture).await[2].clone();
    assert_eq!(status, "open");
    assert_ne!(second, key);

    // A restart takes the open episode over: not raised again, resolved at
    // the next insert.
    stop(running).await;
    let running = Running::start(&fixture);
    running.wait_for_log("streaming", 1, Duration::from_secs(30)).await;
    fixture.db.execute("INSERT INTO events VALUES (3)").await;
    wait_for_episodes(&fixture, 4, "the second episode is resolved").await;
    let all = episodes(&fixture).await;
    assert_eq!(all[3], ("freshness".into(), "resolved".into(), format!("{second}/resolved")));
    let raises = all.iter().filter(|(_, _, key)| !key.ends_with("/resolved")).count();
    let resolutions = all.len() - raises;
    assert!(raises - resolutions <= 1, "every raise but a new open one is resolved: {all:?}");
    stop(running).await;
    drop_slot(&fixture).await;
}

#[tokio::test]
async fn volume_below_the_minimum_is_raised_and_a_full_window_resolves_it() {
    let receiver = WebhookReceiver::start().await;
    let schema = "x-table: public.events\nx-monitors:\n  volume: {min: 3, per: 2s}\n";
    let mut fixture = Fixture::new("volume", DDL, &[("public.events.yaml", schema)]).await;
    fixture.configure(&format!("[[webhooks]]\nurl = \"{}\"\n", receiver.url()));
    fixture.setup().await;
    let running = Running::start(&fixture);

    wait_for_episodes(&fixture, 1, "the volume episode is raised").await;
    let (rule, status, _) = episodes(&fixture).await[0].clone();
    assert_eq!((rule.as_str(), status.as_str()), ("volume", "open"));

    // The raise reaches the webhook.
    let requests = receiver.wait_for_requests(1, Duration::from_secs(30)).await;
    let payload: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(payload["type"], "violation.detected");
    let data = &payload["data"];
    assert_eq!((&data["table"], &data["rule"]), (&json!("public.events"), &json!("volume")));
    assert!(data.get("row_key").is_none(), "a monitor alert names no row: {payload}");

    fixture.db.execute("INSERT INTO events SELECT generate_series(1, 5)").await;
    wait_for_episodes(&fixture, 2, "the volume episode is resolved").await;
    let all = episodes(&fixture).await;
    assert_eq!((all[1].0.as_str(), all[1].1.as_str()), ("volume", "resolved"));
    stop(running).await;
    drop_slot(&fixture).await;
}
