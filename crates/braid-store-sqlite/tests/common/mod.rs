// Each test binary uses a different part of these helpers.
#![allow(dead_code, unused_imports)]

pub use braid_store::conformance::fixtures::*;
use braid_store_sqlite::SqliteStore;
use tempfile::TempDir;

/// A fresh database in a temporary directory (kept alive by the `TempDir`).
pub async fn open() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_path(dir.path().join("braid.db"))
        .await
        .unwrap();
    (dir, store)
}
