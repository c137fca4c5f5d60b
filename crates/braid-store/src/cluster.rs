//! Scale-out: the [`Cluster`] of `braid serve` processes sharing one
//! database (SPEC §7). Implemented by the PostgreSQL backend only; the
//! embedded SQLite file is served by one process.
//!
//! Times here are the **database's** clock (milliseconds since the epoch),
//! not a process's: leases are compared across machines whose clocks may
//! disagree.

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::{Result, RunRecord};

/// What a process learns from the others without polling (PostgreSQL
/// `LISTEN/NOTIFY`; payloads carry ids only). Lost wake-ups are allowed:
/// every use has a polling fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// These runs committed events (their rows are visible).
    Runs(Vec<String>),
    /// A cancel of this run was requested ([`Cluster::request_cancel`]).
    Cancel(String),
    /// A process stopped or started: runs may be waiting for adoption.
    Servers,
    /// The notification connection was lost and is back: anything may
    /// have been missed.
    Reconnected,
}

/// A run to cancel on behalf of another process.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelRequest {
    /// The run.
    pub run_id: String,
    /// Why (shown in the run's events).
    pub reason: String,
}

/// The processes sharing a database, run ownership and wake-ups.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Registers process `server_id`, live for `lease_ms` from now.
    async fn register(&self, server_id: &str, lease_ms: i64) -> Result<()>;
    /// Renews the process's lease for `lease_ms` from now; returns how many
    /// processes are live (this one included).
    async fn heartbeat(&self, server_id: &str, lease_ms: i64) -> Result<u64>;
    /// Adopts up to `limit` run trees (a root run and its live descendants)
    /// whose owner is gone (no lease, stopped, or none): in one
    /// transaction, each run gets `owner = server_id` and `epoch + 1`, a
    /// `run_owners` row, and its tasks' leases are cleared so that they are
    /// claimed again at once. Runs locked by a commit in flight are skipped
    /// (adopted at a later call). Returns the adopted runs as records,
    /// parents before children.
    async fn adopt(&self, server_id: &str, limit: u32) -> Result<Vec<RunRecord>>;
    /// The ids of `run_ids` that `server_id` no longer owns.
    async fn lost(&self, server_id: &str, run_ids: &[String]) -> Result<Vec<String>>;
    /// Gives the process's runs up at once: marks it stopped, so that the
    /// others adopt its runs without waiting for its lease to end.
    async fn stop(&self, server_id: &str) -> Result<()>;
    /// Records a cancel of a live run for its owner and wakes the owner;
    /// false when the run is not live.
    async fn request_cancel(&self, run_id: &str, reason: &str) -> Result<bool>;
    /// The cancels requested for live runs `server_id` owns.
    async fn cancel_requests(&self, server_id: &str) -> Result<Vec<CancelRequest>>;
    /// Wake-ups from the other processes, from now on.
    async fn wakes(&self) -> Result<BoxStream<'static, Wake>>;
}
