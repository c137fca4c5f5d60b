//! `braid serve`: the engine, the HTTP API and the executors on one SQLite
//! file or one PostgreSQL database, configured by [`crate::config`], until SIGTERM or Ctrl-C, with its
//! metrics and traces ([`crate::telemetry`]).

use crate::config::Effective;
use crate::config::StoreChoice;
use anyhow::{Context as _, Result};
use braid_runtime::Engine;
use braid_store::Store;
use braid_store_postgres::PgStore;
use braid_store_sqlite::SqliteStore;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Serves until a shutdown signal, then lets in-flight actions finish for
/// `server.shutdown_grace_s`.
pub async fn serve(effective: &Effective) -> Result<ExitCode> {
    let server = &effective.config.server;
    let (store, described) = open_store(effective.store()).await?;
    let telemetry = crate::telemetry::start(&effective.config.telemetry)?;
    let opts = braid_runtime::Options {
        metrics: true,
        traces: telemetry.traces.clone(),
        ..effective.engine_options()
    };
    let engine = Engine::start(store, opts).await?;
    let listener = tokio::net::TcpListener::bind(&server.bind)
        .await
        .with_context(|| format!("binding {}", server.bind))?;
    let addr = listener.local_addr()?;
    eprintln!("braid listening on http://{addr} (database {described})");
    match &server.ui_dir {
        None => eprintln!("web UI: {}", ui_url(addr)),
        Some(dir) => eprintln!("web UI: {} (served from {})", ui_url(addr), dir.display()),
    }
    let state = braid_server::AppState {
        body_limit: server.body_limit_bytes,
        metrics: Some(telemetry.metrics.clone()),
        ui_dir: server.ui_dir.clone(),
        access: effective.access(),
        ..braid_server::AppState::new(engine.clone())
    };
    braid_server::serve(listener, state, shutdown_signal()).await?;
    let grace_s = server.shutdown_grace_s;
    eprintln!("shutting down: letting in-flight actions finish (up to {grace_s} s)");
    engine.shutdown(Duration::from_secs(grace_s)).await;
    if let Some(traces) = &telemetry.traces {
        traces.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the configured store for this process alone, and says what it is
/// (a PostgreSQL URL with its password masked).
///
/// The engine adopts every live run and releases every task lease at start
/// (`Options::exclusive`), so one process serves a database: a lock file
/// beside a SQLite file, a session advisory lock on PostgreSQL. Several
/// processes on one PostgreSQL database need run ownership first
/// (docs/postgres.md, "Next step").
async fn open_store(choice: StoreChoice<'_>) -> Result<(Arc<dyn Store>, String)> {
    match choice {
        StoreChoice::Sqlite(db) => {
            crate::lock_database(db)?;
            let store = SqliteStore::open_path(db)
                .await
                .with_context(|| format!("opening database {}", db.display()))?;
            Ok((Arc::new(store), db.display().to_string()))
        }
        StoreChoice::Postgres(url) => {
            let shown = crate::config::mask_url(url);
            let store = PgStore::connect_url(url)
                .await
                .with_context(|| format!("opening PostgreSQL database {shown}"))?;
            store
                .lock_exclusive()
                .await
                .with_context(|| format!("PostgreSQL database {shown}"))?;
            Ok((Arc::new(store), shown))
        }
    }
}

/// The UI's address as a browser should open it: an unspecified bind
/// address (`0.0.0.0`, `::`) is reached on this machine through loopback.
fn ui_url(addr: std::net::SocketAddr) -> String {
    let port = addr.port();
    match addr.ip() {
        ip if ip.is_unspecified() => format!("http://localhost:{port}/"),
        std::net::IpAddr::V6(ip) => format!("http://[{ip}]:{port}/"),
        ip => format!("http://{ip}:{port}/"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
