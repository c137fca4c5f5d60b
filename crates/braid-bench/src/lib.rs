//! Braid's benchmark runner: the standard workloads of `bench/WORKLOADS.md`
//! on the durable SQLite store, in-process, one child process per
//! (workload, size) so that peak memory is that workload's own; the raw
//! SQLite limit on the same disk; and the peer engines of `bench/peers/` for
//! Braid/peer ratios (`--compare`).

pub mod limit;
pub mod live;
pub mod one;
pub mod peers;
pub mod report;
pub mod stats;
pub mod system;
pub mod workloads;
