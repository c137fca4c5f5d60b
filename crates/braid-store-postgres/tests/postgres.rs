//! What only the PostgreSQL backend must show: migrations run once however
//! many processes start together, a newer schema is refused, concurrent
//! claimers (other processes, here other pools) never share a task, and the
//! run-time JSON text keeps what JSONB would refuse.

mod common;

use std::collections::HashSet;

use braid_store::{DefinitionStore, RunStore, TaskQueue, WriteOp};
use braid_store_postgres::{PgStore, latest_migration};
use common::*;

#[tokio::test]
async fn stores_started_together_migrate_once_and_a_newer_schema_is_refused() {
    let Some(db) = braid_store_postgres::testing::TestDb::create().await else {
        return;
    };
    // Four "processes" connect to an empty database at once: the advisory
    // lock lets one migrate; the others find the schema current.
    let stores = futures_join(4, db.url()).await;
    let store = &stores[0];
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(versions, (1..=latest_migration()).collect::<Vec<_>>());
    assert_eq!(store.project_id("default").await.unwrap(), "proj_default");

    // A newer braid migrated this database: this one refuses it, naming both.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ($1, 'from the future', true, '\\x00', 0)",
    )
    .bind(latest_migration() + 1)
    .execute(store.pool())
    .await
    .unwrap();
    let err = PgStore::connect_url(db.url())
        .await
        .unwrap_err()
        .to_string();
    let newer = (latest_migration() + 1).to_string();
    assert!(
        err.contains(&newer) && err.contains("newer than this braid knows"),
        "{err}"
    );
    for s in stores {
        s.close().await;
    }
}

/// `n` stores connecting to `url` concurrently.
async fn futures_join(n: usize, url: &str) -> Vec<PgStore> {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let url = url.to_owned();
            tokio::spawn(async move { PgStore::connect_url(&url).await.unwrap() })
        })
        .collect();
    let mut stores = Vec::new();
    for h in handles {
        stores.push(h.await.unwrap());
    }
    stores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_share_a_task() {
    let Some((db, store)) = open().await else {
        return;
    };
    setup_run(&store, "run_a").await;
    let tasks: Vec<WriteOp> = (0..200)
        .map(|i| WriteOp::EnqueueTask(task("run_a", &format!("task_{i:03}"), 10, i)))
        .collect();
    store.commit(tasks).await.unwrap();

    // Four pools (as four processes would) claim small batches at once
    // until the queue is drained; every task is claimed exactly once.
    let claimers: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url().to_owned();
            tokio::spawn(async move {
                let s = PgStore::connect_url(&url).await.unwrap();
                let mut mine = Vec::new();
                loop {
                    let got = s.claim_tasks(100, 60_000, 7).await.unwrap();
                    if got.is_empty() {
                        break;
                    }
                    mine.extend(got.into_iter().map(|t| t.id));
                }
                s.close().await;
                mine
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut total = 0;
    for c in claimers {
        for id in c.await.unwrap() {
            total += 1;
            assert!(seen.insert(id.clone()), "{id} was claimed twice");
        }
    }
    assert_eq!(total, 200);
    // Leased for a minute: nothing is due at 100 ms any more.
    assert!(store.claim_tasks(100, 60_000, 10).await.unwrap().is_empty());
    assert_eq!(store.next_task_due().await.unwrap(), Some(60_100));
}

#[tokio::test]
async fn run_time_json_keeps_nul_escapes_and_its_exact_text() {
    let Some((_db, store)) = open().await else {
        return;
    };
    setup_run(&store, "run_a").await;
    // JSONB refuses `\u0000`, which LLM output can contain; text keeps it,
    // byte for byte, key order included.
    let payload = r#"{"z":1,"a":"nul \u0000 here","m":{"y":[1.50,2]}}"#;
    store
        .commit(vec![WriteOp::AppendEvents(vec![braid_store::NewEvent {
            run_id: "run_a".into(),
            seq: 1,
            kind: "context_updated".into(),
            ts: 5,
            token_id: None,
            node: None,
            payload: payload.into(),
        }])])
        .await
        .unwrap();
    let text = store.events_text("run_a", 0, 10).await.unwrap();
    assert_eq!(text[0].payload, payload);
    let parsed = store.events("run_a", 0, 10).await.unwrap();
    assert_eq!(parsed[0].payload["a"], "nul \u{0} here");
}
