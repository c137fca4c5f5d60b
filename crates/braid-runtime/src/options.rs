//! The engine's start-up options and their defaults.

use crate::clock::{Clock, IdGen, SystemClock, UuidIds};
use std::sync::Arc;

/// Engine options.
#[derive(Clone)]
pub struct Options {
    /// Actions in flight at once (default 512).
    pub workers: usize,
    /// Task lease; renewed while an attempt runs (default 30 s).
    pub lease_ms: i64,
    /// Fallback poll interval for due tasks (default 1 s).
    pub poll_ms: u64,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Id source.
    pub ids: Arc<dyn IdGen>,
    /// HTTP client for providers.
    pub http: Option<reqwest::Client>,
    /// Default `snapshot_every_events` (a project's setting wins; default 100).
    pub snapshot_every_events: u64,
    /// The store is used by this process alone (the embedded SQLite file):
    /// leases left by a previous process are released at start-up, so its
    /// in-flight tasks are delivered again at once instead of after their
    /// lease. Default true; false when several processes share a database.
    pub exclusive: bool,
    /// Record the Prometheus metrics (docs/observability.md) through the
    /// `metrics` facade; whoever installs the recorder sets it. Default false.
    pub metrics: bool,
    /// Export each run as an OpenTelemetry trace. Default none: no span is made.
    pub traces: Option<crate::telemetry::Traces>,
    /// One process of several sharing the database (scale-out, SPEC §7).
    /// Default none: this process serves the database alone.
    pub cluster: Option<ClusterOptions>,
    /// Provider limits of the server configuration (`[[llm.endpoints]]`),
    /// beside those of the model profiles; the smallest holds. Default none.
    pub endpoint_limits: Vec<crate::limits::EndpointLimit>,
}

/// How a process takes part in a cluster (docs/postgres.md).
#[derive(Clone)]
pub struct ClusterOptions {
    /// The store's view of the cluster (the same database as the store).
    pub store: Arc<dyn braid_store::Cluster>,
    /// This process's `servers` id (`srv_…`).
    pub server_id: String,
    /// Heartbeat period: the lease is renewed, dead processes' runs are
    /// adopted and cancels for this process's runs are read (default 1 s).
    pub heartbeat_ms: u64,
    /// A process with no heartbeat for this long is dead (default 10 s).
    pub lease_ms: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: 512,
            lease_ms: 30_000,
            poll_ms: 1_000,
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidIds),
            http: None,
            snapshot_every_events: 100,
            exclusive: true,
            metrics: false,
            traces: None,
            cluster: None,
            endpoint_limits: Vec::new(),
        }
    }
}
