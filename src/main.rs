//! The `walguard` binary: parse the command line, load settings, start logs,
//! run the command, and turn the outcome into an exit code.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use walguard::cli::{AlertsAction, Cli, Command};

fn main() -> ExitCode {
    // Two rustls crypto providers are compiled in; pick one before any TLS.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let cli = Cli::parse();
    walguard::telemetry::init_logs(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err),
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    let stop = CancellationToken::new();
    tokio::spawn(stop_on_signal(stop.clone()));

    if let Command::Demo { duration, rate } = cli.command {
        let options = walguard::demo::DemoOptions { duration, rate };
        return match walguard::demo::run(options, stop).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(&err),
        };
    }
    let settings = match cli.settings() {
        Ok(settings) => settings,
        Err(err) => return fail(&err),
    };
    let outcome: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Run { until_lsn } => {
            let options = walguard::app::RunOptions { until_lsn };
            walguard::app::run(settings, options, stop).await.map_err(Into::into)
        }
        Command::Setup { print_sql } => setup(&settings, print_sql).await,
        Command::Check { against_db, format } => {
            return check(&settings, against_db, format).await;
        }
        Command::Init { tables, out, force } => {
            let out = out.unwrap_or_else(|| settings.schemas.clone());
            let options = walguard::init::InitOptions { tables, out, force };
            init(&settings, &options).await
        }
        Command::Alerts { action: AlertsAction::Test } => {
            let mut out = std::io::stdout();
            walguard::sink::endpoint::test_webhooks(&settings.webhooks, &mut out)
                .await
                .map_err(Into::into)
        }
        Command::Demo { .. } => unreachable!("handled above"),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(err.as_ref()),
    }
}

async fn setup(
    settings: &walguard::config::Settings,
    print_sql: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let plan = walguard::setup::plan(settings).await?;

    // The files load; say what the catalog contradicts (a misspelt required
    // column would flag every row) before anything is created.
    let report =
        walguard::check::check(&settings.schemas, Some(&settings.source.connection)).await?;
    if !report.is_clean() {
        eprint!("warning: `walguard check --against-db` finds:\n{}", report.to_text());
    }
    if print_sql {
        print!("{}", plan.to_sql(settings));
        return Ok(());
    }
    walguard::setup::apply(settings, &plan).await?;
    println!(
        "walguard is set up: slot {}, publication {}, tables in schema {}",
        settings.source.slot, settings.source.publication, settings.sink.schema
    );
    Ok(())
}

/// Prints the report; exits 1 when it found a problem.
async fn check(
    settings: &walguard::config::Settings,
    against_db: bool,
    format: walguard::cli::ReportFormat,
) -> ExitCode {
    let against = against_db.then_some(&settings.source.connection);
    let report = match walguard::check::check(&settings.schemas, against).await {
        Ok(report) => report,
        Err(err) => return fail(&err),
    };
    match format {
        walguard::cli::ReportFormat::Text => print!("{}", report.to_text()),
        walguard::cli::ReportFormat::Json => print!("{}", report.to_json()),
    }
    if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn init(
    settings: &walguard::config::Settings,
    options: &walguard::init::InitOptions,
) -> Result<(), Box<dyn std::error::Error>> {
    for path in walguard::init::init(settings, options).await? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Cancels `stop` on SIGTERM or Ctrl-C; a second signal exits at once.
async fn stop_on_signal(stop: CancellationToken) {
    let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping: finishing the current batch");
    stop.cancel();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    std::process::exit(130);
}

/// Prints an error with its causes and returns the failure exit code.
fn fail(err: &dyn std::error::Error) -> ExitCode {
    eprintln!("error: {}", walguard::telemetry::chain(err));
    ExitCode::FAILURE
}
