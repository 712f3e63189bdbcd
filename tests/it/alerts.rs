//! Webhook delivery end to end: the real `walguard run` against real
//! PostgreSQL and real HTTP receivers on loopback that fail, vanish, come
//! back or answer slowly. Retry schedules and grouping windows are configured
//! short so that retries happen within seconds.

use std::collections::BTreeSet;
use std::process::Child;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::fixture::{Fixture, wait_for_exit};
use crate::harness::wait_until;
use crate::webhook_receiver::{RecordedRequest, WebhookReceiver, free_port};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(30);

const ORDERS_DDL: &str = "CREATE TABLE orders (
    id integer PRIMARY KEY, status text, amount integer, email text,
    c1 integer, c2 integer, c3 integer, c4 integer, c5 integer, c6 integer)";

const ORDERS_SCHEMA: &str = "
x-table: public.orders
properties:
  status: {enum: [new, paid]}
  amount: {minimum: 0}
  email:  {type: string, format: email, x-pii: true}
  c1: {minimum: 0}
  c2: {minimum: 0}
  c3: {minimum: 0}
  c4: {minimum: 0}
  c5: {minimum: 0}
  c6: {minimum: 0}
";

/// A fixture with the orders table and one webhook section per entry.
async fn fixture(name: &str, hooks: &[String]) -> Fixture {
    let mut fixture =
        Fixture::new(name, ORDERS_DDL, &[("public.orders.yaml", ORDERS_SCHEMA)]).await;
    for hook in hooks {
        fixture.configure(hook);
    }
    fixture.setup().await;
    fixture
}

/// A webhook section with ten retries 100 ms apart and `extra` TOML lines.
fn hook(url: &str, extra: &str) -> String {
    hook_retrying(url, 10, 100, extra)
}

/// A webhook section with `retries` retries `wait_ms` apart.
fn hook_retrying(url: &str, retries: usize, wait_ms: u64, extra: &str) -> String {
    let schedule = vec![wait_ms.to_string(); retries].join(", ");
    format!(
        "[[webhooks]]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n\
         retry_schedule_ms = [{schedule}]\n{extra}\n"
    )
}

fn start(fixture: &Fixture) -> Child {
    fixture
        .command(&["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(fixture.dir.path().join("walguard.log")).expect("a log file"))
        .spawn()
        .expect("walguard starts")
}

async fn stop(mut child: Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let status = wait_for_exit(&mut child, Duration::from_secs(15)).await;
    assert!(status.success(), "walguard exited with {status} after SIGTERM");
}

fn body(request: &RecordedRequest) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

/// `type` and group of each request, such as `violation.detected public.orders/enum/status`.
fn kinds(requests: &[RecordedRequest]) -> BTreeSet<String> {
    requests
        .iter()
        .map(|r| {
            let b = body(r);
            let data = &b["data"];
            format!(
                "{} {}/{}/{}",
                b["type"].as_str().unwrap_or("?"),
                data["table"].as_str().unwrap_or("?"),
                data["rule"].as_str().unwrap_or("?"),
                data["column"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Checks the Standard Webhooks signature with the official verifier.
fn verify(request: &RecordedRequest) {
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let value = request.header(name).unwrap_or_else(|| panic!("missing header {name}"));
        headers.insert(name, value.parse().unwrap());
    }
    let verifier = standardwebhooks::Webhook::new(SECRET).expect("a valid secret");
    verifier.verify(request.body.as_ref(), &headers).expect("the signature verifies");
}

async fn outbox_count(fixture: &Fixture, condition: &str) -> i64 {
    fixture
        .db
        .query_count(&format!("SELECT count(*) FROM walguard.webhook_outbox WHERE {condition}"))
        .await
}

#[tokio::test]
async fn endpoint_down_at_first_gets_every_alert_once_up_and_replication_goes_on() {
    let addr = free_port();
    let url = format!("http://{addr}/webhook");
    let section = hook_retrying(&url, 100, 300, "group_window_ms = 1500");
    let fixture = fixture("down_then_up", &[section]).await;
    let child = start(&fixture);

    // Three groups alert at once; two more rows of one group are folded.
    fixture
        .db
        .execute(
            "INSERT INTO orders (id, status) VALUES (1, 'lost');
             INSERT INTO orders (id, amount) VALUES (2, -1);
             INSERT INTO orders (id, c1) VALUES (3, -1);
             INSERT INTO orders (id, status) VALUES (4, 'gone'), (5, 'odd')",
        )
        .await;

    // The endpoint is down: the violations are written all the same, and the
    // alerts wait in the outbox having failed at least once.
    wait_until(WAIT, "all violations are written", async || fixture.violations().await.len() == 5)
        .await;
    wait_until(WAIT, "the queued alerts failed against the down endpoint", async || {
        outbox_count(&fixture, "attempts >= 2 AND last_error = 'connection failed'").await >= 4
    })
    .await;

    // Once it is up, every alert arrives, the summary included.
    let receiver = WebhookReceiver::start_on(addr).await;
    let requests = receiver.wait_for_requests(4, WAIT).await;
    let expected: BTreeSet<String> = [
        "violation.detected public.orders/enum/status",
        "violation.detected public.orders/minimum/amount",
        "violation.detected public.orders/minimum/c1",
        "violation.summary public.orders/enum/status",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(kinds(&requests), expected);
    let summary = requests.iter().map(body).find(|b| b["type"] == "violation.summary").unwrap();
    assert_eq!(summary["data"]["count"], 2);
    assert_eq!(summary["data"]["sample_row_keys"], json!([{ "id": 4 }, { "id": 5 }]));
    wait_until(WAIT, "the outbox shows every alert delivered", async || {
        outbox_count(&fixture, "status = 'delivered'").await == 4
    })
    .await;
    stop(child).await;
}

#[tokio::test]
async fn failing_endpoint_is_retried_with_one_signed_webhook_id_and_delivered_once() {
    let receiver = WebhookReceiver::start().await;
    // A redirect (not followed), a 503 asking for 2 s, a 500, then success.
    receiver.respond_with_headers(302, &[("location", "/moved")]);
    receiver.respond_with_headers(503, &[("retry-after", "2")]);
    receiver.respond_with([500]);
    let fixture = fixture("retries", &[hook(&receiver.url(), "")]).await;
    let child = start(&fixture);

    fixture.db.execute("INSERT INTO orders (id, status) VALUES (7, 'lost')").await;
    let requests = receiver.wait_for_requests(4, WAIT).await;
    wait_until(WAIT, "the alert is marked delivered", async || {
        outbox_count(&fixture, "status = 'delivered' AND attempts = 4 AND last_error IS NULL").await
            == 1
    })
    .await;

    // Every attempt carried the same id and a valid signature, to the same path.
    let ids: BTreeSet<&str> = requests.iter().filter_map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 1, "webhook-id changed between attempts: {ids:?}");
    for request in &requests {
        verify(request);
        assert_eq!(request.path, "/webhook", "a redirect was followed");
    }
    // Retry-After was honoured although the schedule says 100 ms.
    let waited = requests[2].at - requests[1].at;
    assert!(waited >= Duration::from_millis(1800), "retried after {waited:?}, before Retry-After");

    stop(child).await;
    assert_eq!(receiver.requests().len(), 4, "a delivered alert is not sent again");
}

#[tokio::test]
async fn delivery_is_marked_dead_after_the_last_retry_of_the_schedule() {
    let receiver = WebhookReceiver::start().await;
    receiver.set_default_status(500);
    let fixture = fixture("dead", &[hook_retrying(&receiver.url(), 2, 50, "")]).await;
    let child = start(&fixture);

    fixture.db.execute("INSERT INTO orders (id, status) VALUES (1, 'lost')").await;
    wait_until(WAIT, "the delivery is dead", async || {
        outbox_count(&fixture, "status = 'dead' AND attempts = 3 AND last_error = 'HTTP 500'").await
            == 1
    })
    .await;
    stop(child).await;
    assert_eq!(receiver.requests().len(), 3, "one attempt and two retries");
}

#[tokio::test]
async fn gone_endpoint_is_disabled_while_others_keep_receiving() {
    let gone = WebhookReceiver::start().await;
    gone.set_default_status(410);
    let healthy = WebhookReceiver::start().await;
    let hooks = [hook(&gone.url(), ""), hook(&healthy.url(), "")];
    let fixture = fixture("gone", &hooks).await;
    let child = start(&fixture);

    fixture.db.execute("INSERT INTO orders (id, status) VALUES (1, 'lost')").await;
    healthy.wait_for_requests(1, WAIT).await;
    wait_until(WAIT, "the 410 is recorded", async || {
        outbox_count(&fixture, "last_error LIKE 'HTTP 410%'").await == 1
    })
    .await;

    // A new group after the 410: the healthy endpoint gets it; the gone one
    // is neither retried nor sent the new alert.
    fixture.db.execute("INSERT INTO orders (id, amount) VALUES (2, -1)").await;
    healthy.wait_for_requests(2, WAIT).await;
    stop(child).await;
    assert_eq!(gone.requests().len(), 1, "the gone endpoint was sent to again");
    let pending = outbox_count(&fixture, "status = 'pending'").await;
    assert_eq!(pending, 2, "the gone endpoint's alerts stay pending, not lost");
}

#[tokio::test]
async fn deliveries_and_open_groups_pending_at_shutdown_are_sent_after_restart() {
    let receiver = WebhookReceiver::start().await;
    receiver.set_delay(Duration::from_secs(60));
    let extra = "group_window_ms = 6000\ntimeout_ms = 30000";
    let fixture = fixture("restart", &[hook(&receiver.url(), extra)]).await;

    // First run: an alert whose request hangs when walguard is stopped, and
    // two folded violations. Stopping abandons the request at once.
    let child = start(&fixture);
    fixture
        .db
        .execute(
            "INSERT INTO orders (id, status) VALUES (1, 'lost');
             INSERT INTO orders (id, status) VALUES (2, 'odd'), (3, 'odd')",
        )
        .await;
    wait_until(WAIT, "the first attempt failed and two violations are folded", async || {
        let folded =
            fixture.db.query_count("SELECT coalesce(sum(folded), 0) FROM walguard.alert_groups");
        outbox_count(&fixture, "attempts >= 1").await == 1 && folded.await == 2
    })
    .await;
    stop(child).await;
    let first_id = receiver.requests()[0].header("webhook-id").unwrap().to_string();
    assert_eq!(outbox_count(&fixture, "status = 'pending'").await, 1);

    // Second run: the endpoint answers at once; the alert (released, not
    // left leased) and the summary arrive.
    receiver.set_delay(Duration::ZERO);
    let seen = receiver.requests().len();
    let child = start(&fixture);
    wait_until(WAIT, "the alert and the summary arrive after the restart", async || {
        kinds(&receiver.requests()[seen..]).len() == 2
    })
    .await;
    let after: Vec<RecordedRequest> = receiver.requests()[seen..].to_vec();
    let detected = after.iter().find(|r| body(r)["type"] == "violation.detected").unwrap();
    assert_eq!(detected.header("webhook-id"), Some(first_id.as_str()));
    let summary = after.iter().map(body).find(|b| b["type"] == "violation.summary").unwrap();
    assert_eq!(summary["data"]["count"], 2);
    stop(child).await;
}

#[tokio::test]
async fn a_burst_of_one_rule_sends_one_alert_and_one_summary() {
    let receiver = WebhookReceiver::start().await;
    let fixture = fixture("burst", &[hook(&receiver.url(), "group_window_ms = 4000")]).await;
    let child = start(&fixture);

    // Commit-to-webhook latency of a group's first violation, five times.
    let mut latencies = Vec::new();
    for (n, column) in ["c1", "c2", "c3", "c4", "c5"].iter().enumerate() {
        let sql = format!("INSERT INTO orders (id, {column}) VALUES ({}, -1)", 100 + n);
        fixture.db.execute(&sql).await;
        let committed = Instant::now();
        let requests = receiver.wait_for_requests(n + 1, WAIT).await;
        latencies.push(requests[n].at - committed);
    }
    latencies.sort();
    eprintln!("commit-to-webhook latency of a first violation: {latencies:?}");

    // 1 000 violations of one rule in ten transactions within the window.
    let burst_started = receiver.requests().len();
    for batch in 0..10 {
        fixture
            .db
            .execute(&format!(
                "INSERT INTO orders (id, amount)
                 SELECT g, -1 FROM generate_series({}, {}) g",
                1000 + batch * 100,
                1000 + batch * 100 + 99
            ))
            .await;
    }
    wait_until(WAIT, "the burst's violations are written", async || {
        fixture
            .db
            .query_count("SELECT count(*) FROM walguard.violations WHERE column_name = 'amount'")
            .await
            == 1000
    })
    .await;
    receiver.wait_for_requests(burst_started + 2, WAIT).await;
    wait_until(WAIT, "every group's window has closed quietly", async || {
        fixture.db.query_count("SELECT count(*) FROM walguard.alert_groups").await == 0
    })
    .await;
    stop(child).await;

    let burst: Vec<Value> = receiver.requests()[burst_started..].iter().map(body).collect();
    eprintln!("requests sent for a burst of 1000 violations: {}", burst.len());
    assert_eq!(burst.len(), 2, "one alert and one summary, got {burst:#?}");
    assert_eq!(burst[0]["type"], "violation.detected");
    assert_eq!(burst[0]["data"]["row_key"], json!({ "id": 1000 }));
    assert_eq!(burst[1]["type"], "violation.summary");
    assert_eq!(burst[1]["data"]["count"], 999);
    assert_eq!(burst[1]["data"]["sample_row_keys"].as_array().map(Vec::len), Some(5));
}

#[tokio::test]
async fn routing_follows_severity_and_tables_and_pii_values_are_never_sent() {
    let narrow = WebhookReceiver::start().await;
    let everything = WebhookReceiver::start().await;
    let ddl = format!("{ORDERS_DDL}; CREATE TABLE notes (id integer PRIMARY KEY, body text)");
    let mut fixture = Fixture::new(
        "routing",
        &ddl,
        &[
            ("public.orders.yaml", ORDERS_SCHEMA),
            (
                "public.notes.yaml",
                "x-table: public.notes\nx-severity: warn\nproperties:\n  body: {maxLength: 3}\n",
            ),
        ],
    )
    .await;
    fixture
        .configure(&hook(&narrow.url(), "min_severity = \"error\"\ntables = [\"public.orders\"]"));
    fixture.configure(&hook(&everything.url(), ""));
    fixture.setup().await;
    let child = start(&fixture);

    fixture
        .db
        .execute(
            "INSERT INTO notes VALUES (1, 'far too long');
             INSERT INTO orders (id, email) VALUES (1, 'secret-address-4711')",
        )
        .await;
    let all = everything.wait_for_requests(2, WAIT).await;
    let narrow_got = narrow.wait_for_requests(1, WAIT).await;
    stop(child).await;

    assert_eq!(
        kinds(&narrow.requests()),
        BTreeSet::from(["violation.detected public.orders/format/email".to_string()])
    );
    assert_eq!(narrow_got.len(), 1);
    assert_eq!(kinds(&all).len(), 2);
    for request in narrow.requests().iter().chain(&all) {
        assert!(!request.body_text().contains("secret-address-4711"), "a pii value was sent");
    }
}

#[tokio::test]
async fn endpoint_gets_at_most_its_concurrency_limit_and_slow_answers_time_out() {
    let receiver = WebhookReceiver::start().await;
    receiver.set_delay(Duration::from_millis(400));
    let extra = "max_in_flight = 2\ntimeout_ms = 1500";
    let fixture = fixture("concurrency", &[hook(&receiver.url(), extra)]).await;
    let child = start(&fixture);

    // Six groups at once: six alerts, sent two at a time.
    fixture
        .db
        .execute("INSERT INTO orders (id, status, amount, c1, c2, c3, c4) VALUES (1, 'x', -1, -1, -1, -1, -1)")
        .await;
    receiver.wait_for_requests(6, WAIT).await;
    assert_eq!(receiver.max_in_flight(), 2);

    // An answer slower than the timeout fails and is retried.
    receiver.set_delay(Duration::from_secs(3));
    fixture.db.execute("INSERT INTO orders (id, c6) VALUES (2, -1)").await;
    wait_until(WAIT, "the slow answer counts as a failure", async || {
        outbox_count(&fixture, "last_error = 'no answer within 1500 ms'").await == 1
    })
    .await;
    receiver.set_delay(Duration::ZERO);
    wait_until(WAIT, "the retry is delivered", async || {
        outbox_count(&fixture, "status = 'delivered'").await == 7
    })
    .await;
    stop(child).await;
}

#[tokio::test]
async fn alerts_test_sends_a_sample_to_each_webhook_and_reports_each_result() {
    let slack = WebhookReceiver::start().await;
    let broken = WebhookReceiver::start().await;
    broken.set_default_status(500);
    let mut fixture = Fixture::new("alerts_test", ORDERS_DDL, &[]).await;
    fixture.configure(&format!("[[webhooks]]\nurl = \"{}\"\nformat = \"slack\"\n", slack.url()));
    fixture.configure(&hook(&broken.url(), ""));

    let output = fixture.output(&["alerts", "test"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "one webhook failed, so the command fails: {stderr}");
    assert!(stdout.contains("slack") && stdout.contains("delivered (HTTP 200)"), "{stdout}");
    assert!(stdout.contains("failed: HTTP 500"), "{stdout}");
    assert!(!stdout.contains("/webhook"), "only origins are printed: {stdout}");
    assert!(stderr.contains("1 of 2 webhooks"), "{stderr}");

    let sample = body(&slack.requests()[0]);
    assert!(sample["blocks"].is_array(), "slack gets Block Kit: {sample}");
    let standard = &broken.requests()[0];
    verify(standard);
    assert_eq!(body(standard)["type"], "walguard.test");
}

#[tokio::test]
async fn webhook_limited_to_an_unwatched_table_is_warned_about_at_start() {
    let receiver = WebhookReceiver::start().await;
    let mut fixture =
        Fixture::new("alerts_typo", ORDERS_DDL, &[("public.orders.yaml", ORDERS_SCHEMA)]).await;
    let hook = format!("[[webhooks]]\nurl = \"{}\"\ntables = [\"public.order\"]\n", receiver.url());
    fixture.configure(&hook);
    fixture.setup().await;

    let mut walguard = crate::running::Running::start(&fixture);
    walguard.wait_for_log("never alerts on it", 1, WAIT).await;

    let warning = walguard.lines_with("never alerts on it").join("\n");
    assert!(
        warning.contains("public.order") && warning.contains("webhooks[0].tables"),
        "{warning}"
    );
    assert!(walguard.terminate(WAIT).await.success());
}
