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
    /// A fork's target version lacks what the copied history refers to:
    /// each item names a node, action or join.
    #[error("the target version cannot continue the source run's history: it lacks {}", .0.join(", "))]
    ForkIncompatible(Vec<String>),
    /// A request field names something that does not fit (a fork's node,
    /// seq, version or change; the runs of a comparison).
    #[error("`{field}`: {message}")]
    InvalidRequest {
        /// The field, as a path in the request (`from.node`, `version`).
        field: String,
        /// What is wrong with it.
        message: String,
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
