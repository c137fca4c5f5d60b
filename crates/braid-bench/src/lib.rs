//! Braid's benchmark runner: the standard workloads of `bench/WORKLOADS.md`
//! on the durable SQLite store, in-process, one child process per
//! (workload, size) so that peak memory is that workload's own; the raw
//! SQLite limit on the same disk; and the peer engines of `bench/peers/` for
//! Braid/peer ratios (`--compare`). With a PostgreSQL server
//! (`--database-url`): the same workloads on the PostgreSQL store, a fresh
//! database per case, the server's commit limit (`pgbench`), DBOS on the
//! same server, and `braid-bench cluster` (several `braid serve` processes
//! on one database).

pub mod cluster;
pub mod limit;
pub mod live;
pub mod one;
pub mod peers;
pub mod pg;
pub mod pglimit;
pub mod pgreport;
pub mod report;
pub mod stats;
pub mod system;
pub mod workloads;
