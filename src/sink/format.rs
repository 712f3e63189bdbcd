//! Request bodies for each webhook format, rendered from an [`Event`] at send
//! time (the outbox keeps the event itself).
//!
//! - `standard`: the event as JSON, signed by the dispatcher.
//! - `slack`: a Block Kit message for an incoming webhook. Everything that
//!   comes from data is escaped as Slack asks (`&`, `<`, `>`), so no
//!   `<!channel>`, `<@user>` or `<url|link>` can be smuggled in, every `@` is
//!   followed by a word joiner so `@here` and `@channel` never notify, and
//!   data is shown in code spans, which Slack neither formats nor links.
//! - `pagerduty`: an Events API v2 `trigger`, with a `dedup_key` per table,
//!   rule and column so repeats join one incident; the routing key is added
//!   here, from the configuration, so it is never stored in the outbox.

use serde_json::{Value, json};

use super::alert::{Event, EventKind};
use crate::config::WebhookFormat;
use crate::schema::Severity;

/// The longest text one Slack section holds.
const SLACK_SECTION_MAX: usize = 3000;
/// The longest `payload.summary` PagerDuty accepts.
const PAGERDUTY_SUMMARY_MAX: usize = 1024;

/// The body to post for `event` in `format`.
pub fn render(format: WebhookFormat, event: &Event, routing_key: Option<&str>) -> String {
    match format {
        WebhookFormat::Standard => serde_json::to_string(event),
        WebhookFormat::Slack => serde_json::to_string(&slack(event)),
        WebhookFormat::Pagerduty => serde_json::to_string(&pagerduty(event, routing_key)),
    }
    .expect("events serialise to JSON")
}

/// A short title, from the schema's names only.
fn title(event: &Event) -> String {
    let data = &event.data;
    let place = match &data.column {
        Some(column) => format!("{}.{column}", data.table),
        None => data.table.clone(),
    };
    match event.kind {
        EventKind::Detected => format!("{} violation of {} on {place}", data.severity, data.rule),
        EventKind::Summary => {
            format!("{} more violations of {} on {place}", data.count, data.rule)
        }
        EventKind::Test => format!("walguard test alert ({} on {place})", data.rule),
    }
}

fn slack(event: &Event) -> Value {
    let data = &event.data;
    let mut lines = vec![format!("*Message* {}", code(&data.message))];
    if let Some(row_key) = &data.row_key {
        lines.push(format!("*Row* {}", code(&row_key.to_string())));
    }
    if !data.sample_row_keys.is_empty() {
        let keys: Vec<String> = data.sample_row_keys.iter().map(|k| code(&k.to_string())).collect();
        lines.push(format!("*Sample rows* {}", keys.join(" ")));
    }
    if let (Some(start), Some(end)) = (&data.window_start, &data.window_end) {
        lines.push(format!("*Window* {} to {}", code(start), code(end)));
    }
    let mut context = vec![format!("severity {}", data.severity), format!("rule {}", data.rule)];
    if let Some(operation) = &data.operation {
        context.push(operation.clone());
    }
    if let Some(lsn) = &data.commit_lsn {
        context.push(format!("commit {lsn}"));
    }
    json!({
        "text": slack_escape(&title(event)),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": slack_escape(&title(event))}},
            {"type": "section", "text": {
                "type": "mrkdwn",
                "text": truncate(&lines.join("\n"), SLACK_SECTION_MAX),
            }},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": slack_escape(&context.join(" · "))},
            ]},
        ],
    })
}

/// Data as an escaped Slack code span, on one line.
fn code(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| match c {
            '`' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    format!("`{}`", slack_escape(&flat))
}

/// Escapes text for any Slack text field: the three characters Slack's
/// markup uses for mentions and links, and `@`, so `@channel` stays text.
pub fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => out.push_str("@\u{2060}"),
            c => out.push(c),
        }
    }
    out
}

fn pagerduty(event: &Event, routing_key: Option<&str>) -> Value {
    let data = &event.data;
    let severity = match data.severity {
        Severity::Info => "info",
        Severity::Warn => "warning",
        Severity::Error => "error",
        Severity::Critical => "critical",
    };
    let summary = format!("{}: {}", title(event), data.message);
    json!({
        "routing_key": routing_key.unwrap_or_default(),
        "event_action": "trigger",
        "dedup_key": format!("walguard/{}", event.group()),
        "client": "walguard",
        "payload": {
            "summary": truncate(&summary, PAGERDUTY_SUMMARY_MAX),
            "source": "walguard",
            "severity": severity,
            "timestamp": event.timestamp,
            "component": data.table,
            "group": data.column,
            "class": data.rule,
            "custom_details": data,
        },
    })
}

/// `text` cut to at most `max` bytes on a character boundary, marked with `…`.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::alert::EventData;

    /// A detection whose message and key carry text written to attack Slack.
    fn hostile() -> Event {
        Event {
            kind: EventKind::Detected,
            timestamp: "2026-12-04T01:30:00Z".into(),
            data: EventData {
                table: "public.orders".into(),
                rule: "pattern".into(),
                column: Some("note".into()),
                severity: Severity::Critical,
                message: "note does not match the pattern ^[a-z]+$, got \"<!channel> @here \
                          <https://evil.example|click> & `code` *bold* <@U123>\nsecond line\""
                    .into(),
                count: 1,
                operation: Some("insert".into()),
                row_key: Some(json!({ "id": "<!here>" })),
                commit_lsn: Some("0/16B3748".into()),
                sample_row_keys: Vec::new(),
                window_start: None,
                window_end: None,
            },
        }
    }

    fn summary() -> Event {
        Event {
            kind: EventKind::Summary,
            timestamp: "2026-12-04T01:31:00Z".into(),
            data: EventData {
                table: "public.orders".into(),
                rule: "minimum".into(),
                column: Some("amount".into()),
                severity: Severity::Warn,
                message: "amount must be at least 0, got -1".into(),
                count: 999,
                operation: None,
                row_key: None,
                commit_lsn: Some("0/1A2B3C4".into()),
                sample_row_keys: vec![json!({"id": 2}), json!({"id": 3}), json!({"id": 4})],
                window_start: Some("2026-12-04T01:30:00Z".into()),
                window_end: Some("2026-12-04T01:31:00Z".into()),
            },
        }
    }

    fn pretty(body: &str) -> String {
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(body).unwrap()).unwrap()
    }

    #[test]
    fn standard_payloads() {
        insta::assert_snapshot!(pretty(&render(WebhookFormat::Standard, &hostile(), None)));
        insta::assert_snapshot!(pretty(&render(WebhookFormat::Standard, &summary(), None)));
    }

    #[test]
    fn slack_payloads() {
        insta::assert_snapshot!(pretty(&render(WebhookFormat::Slack, &hostile(), None)));
        insta::assert_snapshot!(pretty(&render(WebhookFormat::Slack, &summary(), None)));
    }

    #[test]
    fn pagerduty_payloads() {
        let key = Some("R0UT1NGKEY");
        insta::assert_snapshot!(pretty(&render(WebhookFormat::Pagerduty, &hostile(), key)));
        insta::assert_snapshot!(pretty(&render(WebhookFormat::Pagerduty, &summary(), key)));
    }

    #[test]
    fn slack_text_cannot_mention_or_link() {
        let body = render(WebhookFormat::Slack, &hostile(), None);
        let parsed: Value = serde_json::from_str(&body).unwrap();
        let mut texts = Vec::new();
        collect_strings(&parsed, &mut texts);
        for text in texts {
            assert!(!text.contains('<') && !text.contains('>'), "{text}");
            assert!(!text.contains("@here") && !text.contains("@channel"), "{text}");
            // Only the code spans' own backticks remain, paired.
            assert_eq!(text.matches('`').count() % 2, 0, "{text}");
            assert!(!text.contains("second line\n") && !text.contains("\nsecond"), "{text}");
        }
    }

    #[test]
    fn pagerduty_dedups_per_group_and_maps_severity() {
        let body: Value =
            serde_json::from_str(&render(WebhookFormat::Pagerduty, &summary(), Some("k"))).unwrap();
        assert_eq!(body["dedup_key"], "walguard/public.orders/minimum/amount");
        assert_eq!(body["payload"]["severity"], "warning");
        assert_eq!(body["routing_key"], "k");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let text = "é".repeat(600);
        let cut = truncate(&text, PAGERDUTY_SUMMARY_MAX);
        assert!(cut.len() <= PAGERDUTY_SUMMARY_MAX && cut.ends_with('…'));
    }

    fn collect_strings(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(text) => out.push(text.clone()),
            Value::Array(items) => items.iter().for_each(|item| collect_strings(item, out)),
            Value::Object(map) => map.values().for_each(|item| collect_strings(item, out)),
            _ => {}
        }
    }
}
