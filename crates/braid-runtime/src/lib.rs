//! Braid's runtime: drives the pure core against a store.
//!
//! - one **coordinator** per live run, the single writer of that run;
//! - a **group committer** that makes the writes of many runs durable with
//!   one transaction;
//! - an **executor pool** that runs non-pure actions (LLM calls, artifact
//!   writes) from the durable task queue, under leases and timeouts;
//! - **provider limits** (`limits.rs`) shared by endpoint: concurrency and
//!   rate-limit buckets every run and version of the process draws from;
//! - **recovery** that adopts every live run again at start-up;
//! - **telemetry** (`telemetry.rs`): Prometheus metrics and OpenTelemetry
//!   spans recorded from committed events, off unless [`Options`] asks.
//!
//! [`Engine`] is the cheap, cloneable handle the server and CLI use.
//!
//! # How a token flows, one way
//!
//! ```text
//! engine.rs ──start──▶ coordinator.rs ──apply──▶ braid_core::machine
//!     (Engine API)      (one per run)             (decides: events, commands)
//!                            │
//!                            ▼ write ops (coordinator/writes.rs)
//!                       committer.rs ──▶ braid_store (one transaction)
//!                            │ durable
//!                            ▼ task queued, or handed over
//!                       dispatch.rs (Dispatcher, TaskEnvelope)
//!                            │
//!                            ▼
//!                       executor.rs ──result──▶ inbox.rs (Msg::TaskResult)
//!                                                   │
//!                            coordinator.rs ◀───────┘ (next step)
//! ```
//!
//! 1. **start** — `engine.rs` resolves the version (`definitions.rs`),
//!    spawns the run's coordinator and sends it `Input::Start`.
//! 2. **coordinator** — `coordinator.rs` feeds each inbox message to the
//!    core and turns the step into write ops (`coordinator/writes.rs`).
//! 3. **core** — `braid_core::machine` moves the token and says what to do.
//! 4. **store** — `committer.rs` writes the batches of many runs in one
//!    transaction; only then does the coordinator act on the commands.
//! 5. **executor** — tasks reach `executor.rs` through `dispatch.rs`:
//!    handed over on a reserved worker slot, or claimed from the queue.
//! 6. **back to the coordinator** — the result returns as a message of
//!    `inbox.rs`, through the live-run registry of `shared.rs`.
//!
//! Child runs follow the same path: a coordinator queues the start
//! (`shared.rs`), `children.rs` spawns the child's coordinator, and the
//! child's end reaches the parent as an inbox message. `recovery.rs`
//! re-enters at step 2 for every run left live. Modules import only from
//! below: `coordinator.rs` and `executor.rs` share `dispatch.rs`,
//! `inbox.rs` and `shared.rs`, and never each other.

mod attempt;
mod budgets;
mod children;
mod clock;
mod cluster;
mod committer;
mod coordinator;
mod definitions;
mod dispatch;
mod engine;
mod error;
mod events;
mod executor;
mod inbox;
pub mod limits;
mod options;
mod recovery;
mod shared;
mod telemetry;

pub use children::MAX_DEPTH;
pub use clock::{Clock, IdGen, SystemClock, UuidIds};
pub use engine::{Engine, ForkChanges, ForkSpec, Forked};
pub use error::Error;
pub use events::{Published, restore_payload, stored_events, stored_events_from};
pub use options::{ClusterOptions, Options};
pub use telemetry::{HISTOGRAM_BUCKETS, Traces};
