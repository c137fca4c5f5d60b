//! The vocabulary every Braid crate shares: the error codes users see and the
//! statuses of runs and tokens.
//!
//! This crate sits on the lowest floor (it depends on nothing of Braid's), so
//! the core, the providers, the store, the runtime, the API and the CLI all
//! name a code or a status with the same type, and a renamed code breaks the
//! build instead of a user's `on: failure` condition.

mod code;
mod status;

pub use code::{ErrorCode, UnknownCode};
pub use status::{RunStatus, TokenStatus, UnknownStatus};
