//! Braid's pure execution core: the definition model and its validation,
//! the compiled graph, and the run state machine. No IO, no clock, no
//! randomness: the runtime feeds it inputs (with the time) and acts on the
//! events and commands it returns.

pub mod definition;
pub mod event;
pub mod fork;
pub mod graph;
pub mod machine;
pub mod merge;
pub mod protocol;
pub mod retry;
pub mod state;
