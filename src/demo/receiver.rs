//! The demo's webhook endpoint: prints each alert and checks its signature,
//! as an engineer's own receiver would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::sink::sign;

/// A running receiver.
pub struct Receiver {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
}

impl Receiver {
    pub fn url(&self) -> String {
        format!("http://{}/alerts", self.addr)
    }

    /// How many alerts arrived.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct Shared {
    secret: String,
    received: Arc<AtomicU64>,
}

/// Starts listening on a free loopback port.
pub async fn start(secret: &str) -> std::io::Result<Receiver> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let received = Arc::new(AtomicU64::new(0));
    let shared = Shared { secret: secret.to_string(), received: received.clone() };
    let app = axum::Router::new().route("/alerts", post(alert)).with_state(shared);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Receiver { addr, received })
}

async fn alert(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    let expected = sign(&shared.secret, id, timestamp.parse().unwrap_or(0), &body);
    let verdict =
        if header("webhook-signature") == expected { "signature ok" } else { "BAD SIGNATURE" };
    shared.received.fetch_add(1, Ordering::Relaxed);

    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let data = &payload["data"];
    println!(
        "alert      {} {} violation(s) of {} on {} ({verdict})",
        payload["type"].as_str().unwrap_or("?"),
        data["count"],
        data["rule"].as_str().unwrap_or("?"),
        data["table"].as_str().unwrap_or("?"),
    );
    StatusCode::OK
}
