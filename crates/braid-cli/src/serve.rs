//! `braid serve`: the engine, the HTTP API and the executors on one SQLite
//! file, or as one of several processes on a PostgreSQL database, configured by [`crate::config`], until SIGTERM or Ctrl-C, with its
//! metrics and traces ([`crate::telemetry`]).

use crate::config::Effective;
use crate::config::StoreChoice;
use anyhow::{Context as _, Result};
use braid_runtime::{ClusterOptions, Engine};
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
    let (store, described, cluster) = open_store(effective).await?;
    let telemetry = crate::telemetry::start(&effective.config.telemetry)?;
    let opts = braid_runtime::Options {
        metrics: true,
        traces: telemetry.traces.clone(),
        exclusive: cluster.is_none(),
        cluster,
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
    if engine.cluster_poll().is_some() {
        eprintln!(
            "shutting down: committing what is done and giving runs up to the other processes"
        );
    } else {
        eprintln!("shutting down: letting in-flight actions finish (up to {grace_s} s)");
    }
    engine.shutdown(Duration::from_secs(grace_s)).await;
    if let Some(traces) = &telemetry.traces {
        traces.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the configured store, and says what it is (a PostgreSQL URL with
/// its password masked).
///
/// A SQLite file is served by this process alone (a lock file beside it):
/// the engine adopts every live run and releases every task lease at
/// start. A PostgreSQL database may be shared by several processes: this
/// one joins them as a new `servers` row (docs/postgres.md).
async fn open_store(
    effective: &Effective,
) -> Result<(Arc<dyn Store>, String, Option<ClusterOptions>)> {
    match effective.store() {
        StoreChoice::Sqlite(db) => {
            crate::lock_database(db)?;
            let store = SqliteStore::open_path(db)
                .await
                .with_context(|| format!("opening database {}", db.display()))?;
            Ok((Arc::new(store), db.display().to_string(), None))
        }
        StoreChoice::Postgres(url) => {
            let shown = crate::config::mask_url(url);
            let mut store = PgStore::connect_url(url)
                .await
                .with_context(|| format!("opening PostgreSQL database {shown}"))?;
            let server_id = braid_runtime::IdGen::id(&braid_runtime::UuidIds, "srv");
            store.serve_as(&server_id);
            let store = Arc::new(store);
            let so = &effective.config.scale_out;
            eprintln!(
                "server {server_id} (scale-out: heartbeat {} ms, lease {} ms)",
                so.heartbeat_ms, so.lease_ms
            );
            let cluster = ClusterOptions {
                store: store.clone(),
                server_id,
                heartbeat_ms: so.heartbeat_ms,
                lease_ms: i64::try_from(so.lease_ms).unwrap_or(i64::MAX),
            };
            Ok((store, shown, Some(cluster)))
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
