//! Artifacts: their record, listing filter and [`ArtifactStore`].

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Millis, Page, Result};

/// An artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// `art_…`.
    pub id: String,
    /// Project id.
    pub project_id: String,
    /// Type name.
    pub type_name: String,
    /// Type version.
    pub type_version: i64,
    /// Name in `artifacts.<name>`.
    pub name: String,
    /// Validated content.
    pub content: Value,
    /// Run that wrote it.
    pub run_id: String,
    /// Node that wrote it.
    pub node: String,
    /// Makes a re-delivered write a no-op: `<run>/<token>`.
    pub idempotency_key: String,
    /// Creation.
    pub created_at: Millis,
}

/// Filters for listing artifacts.
#[derive(Debug, Clone, Default)]
pub struct ArtifactFilter {
    /// Project id.
    pub project_id: Option<String>,
    /// Type name.
    pub type_name: Option<String>,
    /// Run id.
    pub run_id: Option<String>,
}

/// Artifacts. Written outside run commits (an artifact is written before
/// the `node_completed` that reports it), so a re-delivered write must be
/// harmless: hence the idempotency key.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Inserts unless an artifact with the same idempotency key exists;
    /// returns the stored artifact's id either way (a retry with a new id
    /// gets the first id back and stores nothing). Durable on return.
    async fn put_artifact(&self, artifact: &ArtifactRecord) -> Result<String>;
    /// One artifact; `None` when unknown.
    async fn get_artifact(&self, id: &str) -> Result<Option<ArtifactRecord>>;
    /// Artifacts matching every set field of `filter`, newest first
    /// (`created_at` descending, ties by id descending). `limit` is clamped
    /// to `1..=1000`; the cursor is opaque.
    async fn list_artifacts(
        &self,
        filter: &ArtifactFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<ArtifactRecord>>;
}
