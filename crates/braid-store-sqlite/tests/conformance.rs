//! The storage conformance suite of `braid-store` (every backend's
//! contract) against SQLite: one `#[tokio::test]` per case, each on a
//! fresh temporary database file.

mod common;

braid_store::conformance_tests!(common::open);
