//! Runs, events, tokens, snapshots, the task queue and artifacts.

mod common;

use braid_store::{
    ArtifactFilter, ArtifactRecord, ArtifactStore, Error, RunFilter, RunStatus, RunStore, WriteOp,
};
use common::{event, open, run_record, save_tiny, setup_run, task, token};
use serde_json::json;

#[tokio::test]
async fn runs_are_created_updated_and_read_back() {
    let (_dir, store) = open().await;
    let run = setup_run(&store, "run_1").await;
    assert_eq!(store.get_run("run_1").await.unwrap().unwrap(), run);
    assert!(store.get_run("run_nope").await.unwrap().is_none());
    assert_eq!(store.live_runs().await.unwrap(), vec![run.clone()]);

    let mut child = run.clone();
    child.id = "run_child".into();
    child.parent_run_id = Some("run_1".into());
    child.parent_token_id = Some("tok_9".into());
    child.depth = 1;
    child.created_at = 2000;

    let mut done = run.clone();
    done.status = RunStatus::Failed;
    done.context["state"] = json!({ "x": [1, 2.5, "three"] });
    done.error = Some(
        json!({ "code": "EXPRESSION", "message": "boom", "node": "only", "action": "only.action", "attempt": 1 }),
    );
    done.usage =
        json!({ "llm_calls": 2, "input_tokens": 10, "output_tokens": 3, "cost_usd": 0.25 });
    done.last_seq = 7;
    done.ended_at = Some(3000);
    // Fields that UpdateRun does not change keep their stored value.
    let mut update = done.clone();
    update.limits = json!({ "ignored": true });
    store
        .commit(vec![
            WriteOp::CreateRun(child.clone()),
            WriteOp::UpdateRun(update),
        ])
        .await
        .unwrap();

    assert_eq!(store.get_run("run_1").await.unwrap().unwrap(), done);
    assert_eq!(store.live_runs().await.unwrap(), vec![child.clone()]);
    assert_eq!(store.children("run_1").await.unwrap(), ["run_child"]);
    assert!(store.children("run_child").await.unwrap().is_empty());

    // Updating a run that does not exist fails the whole batch.
    let mut ghost = run.clone();
    ghost.id = "run_ghost".into();
    let err = store
        .commit(vec![WriteOp::UpdateRun(ghost)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn a_batch_with_a_duplicate_event_seq_writes_nothing() {
    let (_dir, store) = open().await;
    let run = setup_run(&store, "run_1").await;
    store
        .commit(vec![WriteOp::append(vec![event("run_1", 1)])])
        .await
        .unwrap();

    let def = save_tiny(&store, "wf").await;
    let mut updated = run.clone();
    updated.last_seq = 3;
    updated.status = RunStatus::Completed;
    let batch = vec![
        WriteOp::CreateRun(run_record("run_2", &def, "wf", 5000)),
        WriteOp::append(vec![event("run_2", 1), event("run_2", 2)]),
        WriteOp::append((2..=3).map(|s| event("run_1", s)).collect()),
        WriteOp::UpsertTokens(vec![token("run_1", 1, "tok_a", "pending", 1)]),
        WriteOp::EnqueueTask(task("run_1", "task_a", 0, 1)),
        WriteOp::Snapshot {
            run_id: "run_1".into(),
            seq: 3,
            state: json!({ "s": 1 }).to_string(),
        },
        WriteOp::UpdateRun(updated),
        // seq 1 of run_1 exists already.
        WriteOp::append(vec![event("run_1", 1)]),
    ];
    let err = store.commit(batch).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");

    assert!(store.get_run("run_2").await.unwrap().is_none());
    assert_eq!(store.get_run("run_1").await.unwrap().unwrap(), run);
    assert_eq!(
        store.events("run_1", 0, 100).await.unwrap(),
        vec![event("run_1", 1)]
    );
    assert!(store.events("run_2", 0, 100).await.unwrap().is_empty());
    assert!(
        store
            .tokens("run_1", None, 100)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(store.latest_snapshot("run_1").await.unwrap().is_none());
    assert!(
        store
            .claim_tasks(i64::MAX / 2, 10, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_task_due().await.unwrap(), None);

    // A duplicate inside one batch is caught as well.
    let err = store
        .commit(vec![WriteOp::append(vec![
            event("run_1", 2),
            event("run_1", 2),
        ])])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(store.events("run_1", 0, 100).await.unwrap().len(), 1);
}

#[tokio::test]
async fn events_are_appended_in_batches_and_read_in_order() {
    let (_dir, store) = open().await;
    setup_run(&store, "run_1").await;
    // 257 rows exercise every multi-row statement size (100, 10, 1).
    let first: Vec<_> = (1..=257).map(|s| event("run_1", s)).collect();
    let (a, b) = first.split_at(120);
    store
        .commit(vec![
            WriteOp::append(a.to_vec()),
            WriteOp::append(b.to_vec()),
        ])
        .await
        .unwrap();
    store
        .commit(vec![WriteOp::append(vec![event("run_1", 258)])])
        .await
        .unwrap();

    let all = store.events("run_1", 0, 1000).await.unwrap();
    assert_eq!(all.len(), 258);
    assert_eq!(all[..257], first[..]);
    assert_eq!(all[257], event("run_1", 258));
    let page: Vec<i64> = store
        .events("run_1", 100, 5)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(page, [101, 102, 103, 104, 105]);
    // Limits are clamped: 0 means 1, huge means 1000.
    assert_eq!(store.events("run_1", 0, 0).await.unwrap().len(), 1);
    assert!(store.events("run_1", 258, 10).await.unwrap().is_empty());
    assert!(store.events("run_other", 0, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn tokens_upsert_and_page_in_creation_order() {
    let (_dir, store) = open().await;
    setup_run(&store, "run_1").await;
    setup_run(&store, "run_2").await;

    // Listed by `seq` (the creation number), not by id, nor in the order
    // the rows were written.
    let mut toks: Vec<_> = (0..25)
        .map(|i| token("run_1", i + 1, &format!("tok_{:02}", 24 - i), "pending", i))
        .collect();
    let mut shuffled = toks.clone();
    shuffled.swap(0, 24);
    shuffled.swap(3, 11);
    store
        .commit(vec![
            WriteOp::UpsertTokens(shuffled),
            WriteOp::UpsertTokens(vec![token("run_2", 1, "tok_00", "pending", 0)]),
        ])
        .await
        .unwrap();

    let mut t5 = toks[5].clone();
    t5.status = "completed".into();
    t5.attempts = 2;
    t5.parent_token_id = Some("tok_24".into());
    t5.sibling_set = Some("ss_1".into());
    t5.branch_index = Some(1);
    t5.started_at = Some(10);
    t5.ended_at = Some(20);
    let mut t5_running = t5.clone();
    t5_running.status = "running".into();
    // The same token twice in a batch: the last write wins.
    store
        .commit(vec![WriteOp::UpsertTokens(vec![t5_running, t5.clone()])])
        .await
        .unwrap();
    toks[5] = t5;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.tokens("run_1", cursor.as_deref(), 10).await.unwrap();
        assert!(page.items.len() <= 10);
        seen.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, toks);
    assert_eq!(
        store.tokens("run_2", None, 10).await.unwrap().items.len(),
        1
    );
    assert!(matches!(
        store.tokens("run_1", Some("garbage"), 10).await,
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn only_the_latest_snapshot_is_kept() {
    let (dir, store) = open().await;
    setup_run(&store, "run_1").await;
    assert!(store.latest_snapshot("run_1").await.unwrap().is_none());
    store
        .commit(vec![WriteOp::Snapshot {
            run_id: "run_1".into(),
            seq: 100,
            state: json!({ "a": 1 }).to_string(),
        }])
        .await
        .unwrap();
    store
        .commit(vec![
            WriteOp::Snapshot {
                run_id: "run_1".into(),
                seq: 200,
                state: json!({ "a": 2 }).to_string(),
            },
            WriteOp::Snapshot {
                run_id: "run_1".into(),
                seq: 200,
                state: json!({ "a": 3 }).to_string(),
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        store.latest_snapshot("run_1").await.unwrap(),
        Some((200, json!({ "a": 3 })))
    );
    // The older one is gone from the table, not just shadowed.
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

#[tokio::test]
async fn tasks_are_claimed_leased_redelivered_and_acked() {
    let (_dir, store) = open().await;
    setup_run(&store, "run_1").await;
    setup_run(&store, "run_2").await;
    store
        .commit(vec![
            WriteOp::EnqueueTask(task("run_1", "task_a", 100, 1)),
            WriteOp::EnqueueTask(task("run_1", "task_b", 100, 2)),
            WriteOp::EnqueueTask(task("run_1", "task_late", 500, 0)),
            WriteOp::EnqueueTask(task("run_2", "task_c", 50, 3)),
        ])
        .await
        .unwrap();
    assert_eq!(store.next_task_due().await.unwrap(), Some(50));

    // Nothing is due before its not_before.
    assert!(store.claim_tasks(49, 1000, 10).await.unwrap().is_empty());

    // Due tasks come in not_before, created_at order, up to the limit.
    let claimed = store.claim_tasks(100, 1000, 2).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["task_c", "task_a"]);
    for t in &claimed {
        assert_eq!((t.lease_until, t.deliveries), (Some(1100), 1));
    }
    assert_eq!(claimed[1], {
        let mut t = task("run_1", "task_a", 100, 1);
        t.lease_until = Some(1100);
        t.deliveries = 1;
        t
    });
    let rest = store.claim_tasks(100, 1000, 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["task_b"]
    );
    // Leased tasks are not claimed again while their lease runs.
    assert!(store.claim_tasks(499, 1000, 10).await.unwrap().is_empty());
    // The next due time is the late task's not_before, then lease expiries.
    assert_eq!(store.next_task_due().await.unwrap(), Some(500));

    // Renewal extends a lease; an expired lease is re-delivered.
    store
        .renew_leases(&["task_a".to_owned()], 5000)
        .await
        .unwrap();
    store.renew_leases(&[], 9999).await.unwrap();
    let again = store.claim_tasks(1100, 1000, 10).await.unwrap();
    let ids: Vec<_> = again
        .iter()
        .map(|t| (t.id.as_str(), t.deliveries))
        .collect();
    assert_eq!(ids, [("task_c", 2), ("task_b", 2), ("task_late", 1)]);

    // Acks delete; dropping a run's tasks deletes the rest of that run.
    store
        .commit(vec![
            WriteOp::AckTask("task_c".into()),
            WriteOp::AckTask("task_nope".into()),
        ])
        .await
        .unwrap();
    store
        .commit(vec![
            WriteOp::AckTask("task_b".into()),
            WriteOp::AckTask("task_late".into()),
        ])
        .await
        .unwrap();
    assert_eq!(store.next_task_due().await.unwrap(), Some(5000));
    let last = store.claim_tasks(5000, 10, 10).await.unwrap();
    assert_eq!(
        last.iter()
            .map(|t| (t.id.as_str(), t.deliveries))
            .collect::<Vec<_>>(),
        [("task_a", 2)]
    );
    store
        .commit(vec![WriteOp::DropRunTasks("run_1".into())])
        .await
        .unwrap();
    assert_eq!(store.next_task_due().await.unwrap(), None);
    assert!(
        store
            .claim_tasks(i64::MAX / 2, 10, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.claim_tasks(0, 10, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn enqueue_ack_and_drop_keep_their_order_in_a_batch() {
    let (_dir, store) = open().await;
    setup_run(&store, "run_1").await;
    let many: Vec<_> = (0..123)
        .map(|i| WriteOp::EnqueueTask(task("run_1", &format!("t{i:03}"), i, i)))
        .collect();
    store.commit(many).await.unwrap();
    store
        .commit(vec![
            WriteOp::AckTask("t000".into()),
            WriteOp::DropRunTasks("run_1".into()),
            WriteOp::EnqueueTask(task("run_1", "after_drop", 7, 7)),
            WriteOp::AckTask("t001".into()),
        ])
        .await
        .unwrap();
    let left = store.claim_tasks(1_000, 10, 1000).await.unwrap();
    assert_eq!(
        left.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["after_drop"]
    );
}

#[tokio::test]
async fn runs_list_newest_first_with_filters_and_cursors() {
    let (_dir, store) = open().await;
    let a = save_tiny(&store, "alpha").await;
    let b = save_tiny(&store, "beta").await;
    let mut ops = Vec::new();
    for i in 0..1005 {
        let (def, name) = if i % 2 == 0 {
            (&a, "alpha")
        } else {
            (&b, "beta")
        };
        // Pairs share a created_at so that ties are broken by id.
        let mut r = run_record(&format!("run_{i:04}"), def, name, 1000 + i / 2);
        if i % 3 == 0 {
            r.status = RunStatus::Completed;
        }
        if i >= 1000 {
            r.parent_run_id = Some("run_0000".into());
        }
        ops.push(WriteOp::CreateRun(r));
    }
    store.commit(ops).await.unwrap();

    // Limit clamped to 1000; the cursor continues exactly after.
    let all = RunFilter::default();
    let p1 = store.list_runs(&all, None, 5000).await.unwrap();
    assert_eq!(p1.items.len(), 1000);
    assert_eq!(p1.items[0].id, "run_1004");
    let p2 = store
        .list_runs(&all, p1.next_cursor.as_deref(), 5000)
        .await
        .unwrap();
    assert_eq!(
        p2.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["run_0004", "run_0003", "run_0002", "run_0001", "run_0000"]
    );
    assert!(p2.next_cursor.is_none());

    // Small pages over ties.
    let mut ids = Vec::new();
    let mut cursor = None;
    let filter = RunFilter {
        workflow: Some("alpha".into()),
        status: Some(RunStatus::Completed),
        ..Default::default()
    };
    loop {
        let page = store
            .list_runs(&filter, cursor.as_deref(), 7)
            .await
            .unwrap();
        ids.extend(page.items.into_iter().map(|r| r.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let want: Vec<String> = (0..1005)
        .rev()
        .filter(|i| i % 2 == 0 && i % 3 == 0)
        .map(|i| format!("run_{i:04}"))
        .collect();
    assert_eq!(ids, want);

    // Filter by workflow id, parent, project; limit 0 is 1.
    let by_id = RunFilter {
        workflow: Some(b.workflow_id.clone()),
        ..Default::default()
    };
    let page = store.list_runs(&by_id, None, 0).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, "run_1003");
    let by_parent = RunFilter {
        parent: Some("run_0000".into()),
        ..Default::default()
    };
    let kids = store.list_runs(&by_parent, None, 100).await.unwrap();
    assert_eq!(kids.items.len(), 5);
    assert_eq!(store.children("run_0000").await.unwrap().len(), 5);
    let other = RunFilter {
        project_id: Some("proj_other".into()),
        ..Default::default()
    };
    assert!(
        store
            .list_runs(&other, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let mine = RunFilter {
        project_id: Some("proj_default".into()),
        status: Some(RunStatus::Running),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_runs(&mine, None, 1000)
            .await
            .unwrap()
            .items
            .len(),
        1005 - 335
    );
    assert_eq!(store.live_runs().await.unwrap().len(), 1005 - 335);

    assert!(matches!(
        store.list_runs(&all, Some("not a cursor"), 10).await,
        Err(Error::Invalid(_))
    ));
}

fn artifact(id: &str, key: &str, type_name: &str, run: &str, created_at: i64) -> ArtifactRecord {
    ArtifactRecord {
        id: id.to_owned(),
        project_id: "proj_default".into(),
        type_name: type_name.to_owned(),
        type_version: 1,
        name: "report".into(),
        content: json!({ "winner": "A", "n": [1, 2] }),
        run_id: run.to_owned(),
        node: "write".into(),
        idempotency_key: key.to_owned(),
        created_at,
    }
}

#[tokio::test]
async fn artifacts_are_idempotent_and_listed_newest_first() {
    let (_dir, store) = open().await;
    let first = artifact("art_1", "run_1/tok_1", "report", "run_1", 10);
    assert_eq!(store.put_artifact(&first).await.unwrap(), "art_1");
    // A re-delivered write with a new id returns the stored artifact's id.
    let retry = artifact("art_1b", "run_1/tok_1", "report", "run_1", 11);
    assert_eq!(store.put_artifact(&retry).await.unwrap(), "art_1");
    assert!(store.get_artifact("art_1b").await.unwrap().is_none());
    assert_eq!(store.get_artifact("art_1").await.unwrap().unwrap(), first);

    for i in 2..=6 {
        let ty = if i % 2 == 0 { "report" } else { "note" };
        let run = if i <= 4 { "run_1" } else { "run_2" };
        store
            .put_artifact(&artifact(
                &format!("art_{i}"),
                &format!("{run}/tok_{i}"),
                ty,
                run,
                10 + i / 2,
            ))
            .await
            .unwrap();
    }
    let all = store
        .list_artifacts(&ArtifactFilter::default(), None, 100)
        .await
        .unwrap();
    let ids: Vec<_> = all.items.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["art_6", "art_5", "art_4", "art_3", "art_2", "art_1"]);

    let p1 = store
        .list_artifacts(&ArtifactFilter::default(), None, 4)
        .await
        .unwrap();
    let p2 = store
        .list_artifacts(&ArtifactFilter::default(), p1.next_cursor.as_deref(), 4)
        .await
        .unwrap();
    assert_eq!(p1.items.len() + p2.items.len(), 6);
    assert_eq!(p2.items.last().unwrap().id, "art_1");
    assert!(p2.next_cursor.is_none());

    let reports = ArtifactFilter {
        type_name: Some("report".into()),
        project_id: Some("proj_default".into()),
        ..Default::default()
    };
    let ids = artifact_ids(&store, &reports).await;
    assert_eq!(ids, ["art_6", "art_4", "art_2", "art_1"]);
    let run2 = ArtifactFilter {
        run_id: Some("run_2".into()),
        ..Default::default()
    };
    let ids = artifact_ids(&store, &run2).await;
    assert_eq!(ids, ["art_6", "art_5"]);
    let other = ArtifactFilter {
        project_id: Some("proj_other".into()),
        ..Default::default()
    };
    assert!(
        store
            .list_artifacts(&other, None, 100)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        store
            .list_artifacts(&ArtifactFilter::default(), None, 0)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
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

/// A join that cancels branches deletes their queued tasks, and only theirs:
/// the same token id in another run keeps its task.
/// The ids of the artifacts `filter` lists (first page of 100).
async fn artifact_ids(
    store: &braid_store_sqlite::SqliteStore,
    filter: &ArtifactFilter,
) -> Vec<String> {
    store
        .list_artifacts(filter, None, 100)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| a.id)
        .collect()
}

#[tokio::test]
async fn queued_tasks_of_cancelled_tokens_are_dropped() {
    let (_dir, store) = open().await;
    setup_run(&store, "run_1").await;
    setup_run(&store, "run_2").await;
    store
        .commit(vec![
            WriteOp::EnqueueTask(task("run_1", "a", 0, 1)),
            WriteOp::EnqueueTask(task("run_1", "b", 0, 2)),
            WriteOp::EnqueueTask(task("run_1", "c", 0, 3)),
            WriteOp::EnqueueTask({
                let mut t = task("run_2", "a2", 0, 4);
                t.token_id = "tok_a".into();
                t
            }),
        ])
        .await
        .unwrap();
    store
        .commit(vec![WriteOp::DropTokenTasks {
            run_id: "run_1".into(),
            tokens: vec!["tok_a".into(), "tok_b".into()],
        }])
        .await
        .unwrap();
    let left: Vec<String> = store
        .claim_tasks(0, 1000, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|t| format!("{}/{}", t.run_id, t.token_id))
        .collect();
    assert_eq!(left, ["run_1/tok_c", "run_2/tok_a"]);
}
