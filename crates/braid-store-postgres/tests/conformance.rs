//! The storage conformance suite of `braid-store` (every backend's
//! contract) against PostgreSQL: one `#[tokio::test]` per case, each on a
//! database of its own.

mod common;

braid_store::conformance_tests!(optional: common::open);
