//! Saved definition versions, workflows, projects and artifact types:
//! the records of [`DefinitionStore`] and the trait itself.

use async_trait::async_trait;
use braid_core::definition::Bundle;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Millis, Page, Result};

/// A saved definition version.
#[derive(Debug, Clone)]
pub struct StoredDef {
    /// `wf_…`: the workflow across versions.
    pub workflow_id: String,
    /// Id of this version's row.
    pub def_id: String,
    /// Project id.
    pub project_id: String,
    /// Workflow name.
    pub name: String,
    /// 1, 2, 3 …
    pub version: i64,
    /// The bundle rebuilt from the normalized rows.
    pub bundle: Bundle,
    /// Creation time.
    pub created_at: Millis,
    /// Saved as the target of a fork ([`DefinitionStore::save_experiment`]):
    /// never the latest version.
    pub experiment: bool,
}

/// What saving a bundle did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveOutcome {
    /// `wf_…`.
    pub workflow_id: String,
    /// Version row id.
    pub def_id: String,
    /// The (new or unchanged) version number.
    pub version: i64,
    /// False when the content equalled the latest version.
    pub created: bool,
}

/// One workflow in a listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowSummary {
    /// `wf_…`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Latest version number.
    pub latest_version: i64,
    /// Creation of the workflow.
    pub created_at: Millis,
}

/// A project-scoped artifact type version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactType {
    /// Row id.
    pub id: String,
    /// The type's name.
    pub name: String,
    /// 1, 2, 3 …
    pub version: i64,
    /// JSON Schema.
    pub schema: Value,
}

/// Per-project engine settings (`projects` columns; NULL = engine default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSettings {
    /// Snapshot a run at least every this many events.
    pub snapshot_every_events: Option<u64>,
}

/// Definitions, projects and artifact types.
///
/// A workflow (`wf_…`, unique by name in its project) has versions 1, 2, 3 …
/// (`def_…` rows), each an immutable bundle. Reads return the bundle equal
/// to the one saved (`StoredDef::bundle == saved`, canonical content too).
#[async_trait]
pub trait DefinitionStore: Send + Sync {
    /// Resolves a project name (or id) to its id; `default` always exists
    /// (id `proj_default`). An unknown project is [`Error::NotFound`](crate::Error::NotFound).
    async fn project_id(&self, project: &str) -> Result<String>;
    /// Per-project engine settings; [`Error::NotFound`](crate::Error::NotFound)
    /// for an unknown project.
    async fn project_settings(&self, project_id: &str) -> Result<ProjectSettings>;
    /// Saves `bundle` as a new version when its canonical content
    /// (`Bundle::canonical`: key order and YAML/JSON form do not matter)
    /// differs from the latest version N (the highest version that is not
    /// an experiment); the new version's number is one more than every
    /// stored version's, experiments included; otherwise returns version N with
    /// `created: false`, replacing its stored `layout` with the bundle's
    /// when the bundle has one (the layout is not content; a bundle without
    /// one keeps the stored layout). Returning to older content is a change too (N+1,
    /// not a revert). Each artifact type the bundle defines gets a new
    /// project-wide version only when its schema changed. Atomic: all rows
    /// or none; an unknown project is [`Error::NotFound`](crate::Error::NotFound).
    async fn save_bundle(
        &self,
        project_id: &str,
        bundle: &Bundle,
        now: Millis,
    ) -> Result<SaveOutcome>;
    /// Saves the target of a fork: a stored version of the workflow whose
    /// canonical content equals `bundle` (an experiment or not) is returned
    /// with `created: false`; otherwise a new version, numbered after every
    /// stored one, is saved marked `experiment` ([`StoredDef::experiment`]):
    /// it is never the latest. Atomic like [`save_bundle`](Self::save_bundle).
    async fn save_experiment(
        &self,
        project_id: &str,
        bundle: &Bundle,
        now: Millis,
    ) -> Result<SaveOutcome>;
    /// A version by workflow id or name; the latest (the highest version
    /// that is not an experiment) when `version` is `None`;
    /// `None` when there is no such workflow or version.
    async fn get_def(
        &self,
        project_id: &str,
        id_or_name: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredDef>>;
    /// The row id of a version by workflow id or name (the latest, not an
    /// experiment, when `version` is `None`): one lookup, without loading
    /// the version.
    async fn resolve_def(
        &self,
        project_id: &str,
        id_or_name: &str,
        version: Option<i64>,
    ) -> Result<Option<String>>;
    /// A version by its row id; `None` when unknown. Rows that do not form
    /// a valid bundle are [`Error::BadDefinition`](crate::Error::BadDefinition).
    async fn get_def_by_id(&self, def_id: &str) -> Result<Option<StoredDef>>;
    /// Workflows of a project by name ascending, each with its latest
    /// version (the highest that is not an experiment). `limit` is clamped to `1..=1000`; the cursor is opaque.
    async fn list_workflows(
        &self,
        project_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<WorkflowSummary>>;
    /// Latest version of every artifact type of the project, by name.
    async fn artifact_types(&self, project_id: &str) -> Result<Vec<ArtifactType>>;
    /// Names of the project's workflows, ascending (for `workflow_call`
    /// validation); empty for an unknown project.
    async fn workflow_names(&self, project_id: &str) -> Result<Vec<String>>;
}
