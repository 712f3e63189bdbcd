//! `walguard demo`: the whole product on a throwaway database, in one command.
//!
//! It starts a private PostgreSQL, creates a small e-commerce database, loads
//! the example schema files shipped in `schemas/` (compiled into the binary),
//! runs `walguard setup` and `walguard run` against it with a local webhook
//! receiver, and writes sample traffic in which a few percent of rows are bad.
//! Violations and alerts are printed as they arrive. Everything is removed
//! when it stops.

mod receiver;
mod traffic;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::{self, RunOptions};
use crate::config::{Overrides, Settings};
use crate::postgres;
use crate::setup;
use crate::throwaway::ThrowawayPostgres;

/// The schema files shipped in `schemas/`, as the demo writes them out.
const SCHEMA_FILES: [(&str, &str); 3] = [
    ("public.accounts.yaml", include_str!("../../schemas/public.accounts.yaml")),
    ("public.orders.yaml", include_str!("../../schemas/public.orders.yaml")),
    ("public.order_items.yaml", include_str!("../../schemas/public.order_items.yaml")),
];

/// The demo's signing secret for its own receiver (not a real credential).
const DEMO_SECRET: &str = "whsec_ZGVtby1zaWduaW5nLWtleS1ub3QtYS1zZWNyZXQ=";

/// Options of `walguard demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub duration: Option<Duration>,
    pub rate: u32,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Throwaway(#[from] crate::throwaway::ThrowawayError),
    #[error("failed to prepare the demo: {0}")]
    Prepare(String),
    #[error(transparent)]
    Setup(#[from] setup::SetupError),
    #[error(transparent)]
    Run(#[from] app::RunError),
}

fn prepare<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> DemoError {
    move |err| DemoError::Prepare(format!("{what}: {err}"))
}

/// Runs the demo until `stop` or the duration ends.
pub async fn run(options: DemoOptions, stop: CancellationToken) -> Result<(), DemoError> {
    // A private server and database.
    println!("starting a throwaway PostgreSQL ...");
    let server = ThrowawayPostgres::start()?;
    let url = server.create_database("shop").await.map_err(prepare("create the demo database"))?;
    let shop = postgres::connect(
        &crate::config::ConnectionSettings::resolve(Some(&url), "demo")
            .map_err(prepare("read the demo url"))?,
        "walguard demo",
    )
    .await
    .map_err(prepare("connect to the demo database"))?;
    shop.batch_execute(traffic::SHOP_DDL).await.map_err(prepare("create the demo tables"))?;

    // The shipped schema files, a receiver for alerts, and the configuration.
    let folder = tempfile::tempdir().map_err(prepare("create a folder for schema files"))?;
    for (name, text) in SCHEMA_FILES {
        std::fs::write(folder.path().join(name), text).map_err(prepare("write a schema file"))?;
    }
    let receiver = receiver::start(DEMO_SECRET).await.map_err(prepare("start the receiver"))?;
    let toml = format!(
        "schemas = {:?}\n[source]\nurl = {url:?}\n[sink]\nbatch_max_delay_ms = 20\n\
         [[webhooks]]\nurl = {:?}\nsecret = {DEMO_SECRET:?}\nmin_severity = \"warn\"\n\
         group_window_ms = 10000\n",
        folder.path().display().to_string(),
        receiver.url(),
    );
    let settings = Settings::from_toml(&toml, &Overrides::default())
        .map_err(prepare("build the demo configuration"))?;

    // Set up and run walguard, as `walguard setup` and `walguard run` would.
    let plan = setup::plan(&settings).await?;
    setup::apply(&settings, &plan).await?;
    println!("walguard is watching accounts, orders and order_items; writing sample traffic");
    println!("press Ctrl-C to stop\n");
    let run_stop = CancellationToken::new();
    let walguard = tokio::spawn(app::run(settings, RunOptions::default(), run_stop.clone()));

    // Traffic and the live view until the end.
    let stats = Arc::new(traffic::Stats::default());
    let writer = tokio::spawn(traffic::write(shop, options.rate, stats.clone(), stop.clone()));
    let viewer = tokio::spawn(traffic::show_violations(url.clone(), stop.clone()));
    match options.duration {
        Some(duration) => {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(duration) => stop.cancel(),
            }
        }
        None => stop.cancelled().await,
    }
    let _ = writer.await;

    // Let walguard catch up and stop, then summarise.
    tokio::time::sleep(Duration::from_millis(500)).await;
    run_stop.cancel();
    let outcome = walguard.await.map_err(prepare("run walguard"))?;
    let _ = viewer.await;
    traffic::summary(&url, &stats, receiver.received()).await;
    drop(server);
    outcome.map_err(DemoError::from)
}
