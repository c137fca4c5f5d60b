// Each test binary uses a different part of these helpers.
#![allow(dead_code, unused_imports)]

pub use braid_store::conformance::fixtures::*;
use braid_store_postgres::PgStore;
use braid_store_postgres::testing::TestDb;

/// A fresh, migrated store on a database of its own (dropped with the
/// `TestDb`); `None` when there is no test server (see `TestDb::create`).
pub async fn open() -> Option<(TestDb, PgStore)> {
    let db = TestDb::create().await?;
    let store = PgStore::connect_url(db.url()).await.unwrap();
    Some((db, store))
}
