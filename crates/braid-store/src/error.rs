//! The typed [`Error`] every storage backend returns.

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness or state precondition failed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A request argument the store cannot use (e.g. a cursor it did not issue).
    #[error("{0}")]
    Invalid(String),
    /// Stored definition rows do not form a valid bundle (e.g. written by hand
    /// with bad JSON); the message names the definition, object and column.
    #[error("{0}")]
    BadDefinition(String),
    /// A commit of a run whose ownership moved on (its stored epoch is not
    /// the writer's: another process adopted it). Names the run; nothing of
    /// the batch was written.
    #[error("run {0} is owned by another process now (its epoch moved on)")]
    Fenced(String),
    /// The backend failed (IO, SQL, corruption). Not shown to API users verbatim.
    #[error("storage backend: {0}")]
    Backend(String),
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
