//! The admin HTTP listener: `/metrics` for Prometheus, `/healthz` (the process
//! answers) and `/readyz` (a replication session is streaming).
//!
//! It is off unless `[admin] listen` is set, and it should listen on a
//! private address: it shows counts, never rows, secrets or connection strings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Whether walguard is streaming, as `/readyz` reports it.
#[derive(Debug, Default)]
pub struct Readiness {
    streaming: AtomicBool,
}

impl Readiness {
    /// Records that a session started (`true`) or ended (`false`).
    pub fn set_streaming(&self, streaming: bool) {
        self.streaming.store(streaming, Ordering::Relaxed);
        metrics::gauge!(super::metrics::STREAMING).set(if streaming { 1.0 } else { 0.0 });
    }

    fn is_streaming(&self) -> bool {
        self.streaming.load(Ordering::Relaxed)
    }
}

/// Why the admin listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("failed to install the metrics recorder: {0}")]
    Recorder(String),
    #[error("failed to listen on admin.listen {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
}

#[derive(Clone)]
struct AdminState {
    metrics: PrometheusHandle,
    readiness: Arc<Readiness>,
}

/// Installs the metrics recorder, binds `address` and serves until `stop`.
/// Returns once the listener is bound, so a bad address fails the start.
pub async fn start(
    address: SocketAddr,
    readiness: Arc<Readiness>,
    stop: CancellationToken,
) -> Result<SocketAddr, AdminError> {
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|err| AdminError::Recorder(err.to_string()))?;
    super::metrics::describe();
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| AdminError::Listen { address, source })?;
    let bound = listener.local_addr().map_err(|source| AdminError::Listen { address, source })?;

    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(AdminState { metrics, readiness });
    tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(err) = served.await {
            tracing::warn!(error = %err, "admin listener stopped");
        }
    });
    tracing::info!(address = %bound, "admin listener started");
    Ok(bound)
}

async fn render_metrics(State(state): State<AdminState>) -> String {
    state.metrics.run_upkeep();
    state.metrics.render()
}

async fn ready(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.readiness.is_streaming() {
        (StatusCode::OK, "streaming\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not streaming\n")
    }
}
