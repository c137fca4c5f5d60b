//! SQLite specifics of runs: what the tables hold and the WAL checkpoints.
//! The behaviour every backend shares is in `conformance.rs`.

mod common;

use braid_store::{RunStore, WriteOp};
use common::{event, open, setup_run};
use serde_json::json;

/// Older snapshots are deleted from the table, not just shadowed.
#[tokio::test]
async fn only_the_latest_snapshot_row_is_kept() {
    let (dir, store) = open().await;
    braid_store::conformance::only_the_latest_snapshot_is_kept(&store).await;
    let rows: i64 = {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&format!(
            "sqlite://{}",
            dir.path().join("braid.db").display()
        ))
        .await
        .unwrap();
        sqlx::query_scalar("SELECT count(*) FROM snapshots WHERE run_id = 'run_1'")
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    assert_eq!(rows, 1);
}

/// Commits never checkpoint the WAL themselves (`wal_autocheckpoint=0`);
/// the store's own checkpointer copies the log into the database file once
/// about 4 MiB were written. Without it the database file would keep only
/// what was checkpointed when the store was opened.
#[tokio::test]
async fn the_wal_is_checkpointed_beside_the_commits() {
    let (dir, store) = open().await;
    setup_run(&store, "run_1").await;
    let db = dir.path().join("braid.db");
    let before = std::fs::metadata(&db).unwrap().len();
    let payload = "x".repeat(4000);
    for batch in 0..12 {
        let events = (1..=128)
            .map(|i| {
                let mut e = event("run_1", batch * 128 + i);
                e.payload = json!({ "pad": payload });
                e
            })
            .collect();
        store.commit(vec![WriteOp::append(events)]).await.unwrap();
    }
    // 12 × 128 × 4 kB ≈ 6 MB written: one checkpoint is due. It runs on its
    // own connection, so wait for its effect (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let size = std::fs::metadata(&db).unwrap().len();
        if size > before + (4 << 20) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file is still {size} bytes (was {before}): no checkpoint ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    store.close().await.unwrap();
}
