//! Storage traits of Braid, their records, and the typed [`Error`] every
//! backend returns.
//!
//! The runtime sees only these traits, through the combined [`Store`]. Each
//! backend (`braid-store-sqlite`, `braid-store-postgres`) implements them with its own SQL
//! and migrations; the schema is documented in `docs/schema.md`. With the
//! `conformance` feature, [`conformance`] holds the tests every backend must
//! pass. [`sql_support`] holds what the SQL backends share that is not
//! SQL: converting bundles to rows and back, JSON columns, cursors,
//! batching, the run view's node statistics.
//!
//! | trait | owns |
//! |---|---|
//! | [`DefinitionStore`] | projects, workflow versions, artifact types |
//! | [`RunStore`] | runs, events, tokens, snapshots, out-of-line results |
//! | [`TaskQueue`] | claiming, leasing and scheduling tasks |
//! | [`ArtifactStore`] | artifacts |
//! | [`Cluster`] | processes sharing a database, run ownership, wake-ups (PostgreSQL) |
//!
//! Writes that belong to a run's progress go through [`RunStore::commit`]: a
//! batch of [`WriteOp`]s applied in **one transaction**, so events, token
//! rows, run rows, new tasks and task acks of many runs become durable with a
//! single fsync (group commit). Nothing is acknowledged before `commit`
//! returns.

mod artifacts;
mod cluster;
#[cfg(feature = "conformance")]
pub mod conformance;
mod definitions;
mod error;
mod queue;
mod runs;
pub mod sql_support;
mod view;

use serde::{Deserialize, Serialize};

pub use artifacts::{ArtifactFilter, ArtifactRecord, ArtifactStore};
pub use cluster::{Adopted, CancelRequest, Cluster, Wake};
pub use definitions::{
    ArtifactType, DefinitionStore, ProjectSettings, SaveOutcome, StoredDef, WorkflowSummary,
};
pub use error::{Error, Result};
pub use queue::{TaskQueue, TaskRecord};
pub use runs::{
    EventRecord, ForkedFrom, NewEvent, RunFilter, RunRecord, RunStatus, RunStore, TokenHistory,
    TokenRecord, UsageTotals, WriteOp,
};
pub use view::{
    EventFilter, MAX_EVENTS_PAGE, NodeStats, ParentFilter, SiblingSetRecord, SiblingSetSummary,
    TokenFilter,
};

/// Milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

/// Page of results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// Everything a backend provides; the runtime holds an `Arc<dyn Store>`.
pub trait Store: DefinitionStore + RunStore + TaskQueue + ArtifactStore {}
impl<T: DefinitionStore + RunStore + TaskQueue + ArtifactStore> Store for T {}
