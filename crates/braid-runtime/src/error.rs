//! The errors of engine operations, each with a user-facing meaning.

use braid_core::graph::DefinitionError;
use serde_json::Value;

/// Errors of engine operations, each with a user-facing meaning.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle (or a stored version) does not validate.
    #[error("the definition is invalid ({} problems)", .0.len())]
    InvalidDefinition(Vec<DefinitionError>),
    /// The limits given for a run are out of range (each problem names its
    /// field, e.g. `limits.max_cost_usd`).
    #[error("the run's limits are invalid ({} problems)", .0.len())]
    InvalidLimits(Vec<DefinitionError>),
    /// Unknown workflow, version or run.
    #[error("{0}")]
    NotFound(String),
    /// The input is not an object or violates `input_schema`.
    #[error("{message}")]
    InputSchema {
        /// Summary.
        message: String,
        /// `[{ path, message }]`.
        errors: Vec<Value>,
    },
    /// The run has already ended.
    #[error("run {0} has already ended")]
    RunEnded(String),
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] braid_store::Error),
}
