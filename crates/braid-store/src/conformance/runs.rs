//! Runs, events, tokens and snapshots ([`RunStore`](crate::RunStore)).

use serde_json::json;

use super::fixtures::{event, run_record, save_tiny, setup_run, task, token};
use crate::{Error, RunFilter, RunRecord, RunStatus, Store, WriteOp};

/// Run rows: create, update of the mutable fields only, children, live runs.
pub async fn runs_are_created_updated_and_read_back(store: &dyn Store) {
    let run = setup_run(store, "run_1").await;
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

/// A commit is one transaction: one failing op writes nothing of the batch.
pub async fn a_batch_with_a_duplicate_event_seq_writes_nothing(store: &dyn Store) {
    let run = setup_run(store, "run_1").await;
    store
        .commit(vec![WriteOp::append(vec![event("run_1", 1)])])
        .await
        .unwrap();

    let def = save_tiny(store, "wf").await;
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

/// Fencing: a run row keeps the owner and epoch it was created with, and
/// an update written under another epoch is refused as
/// [`Error::Fenced`] naming the run, with nothing of its batch written
/// (including other runs' writes).
pub async fn a_commit_under_a_stale_epoch_is_fenced_and_writes_nothing(store: &dyn Store) {
    let def = save_tiny(store, "wf").await;
    let owned = RunRecord {
        owner: Some("srv_a".into()),
        epoch: 3,
        ..run_record("run_1", &def, "wf", 1000)
    };
    store
        .commit(vec![WriteOp::CreateRun(owned.clone())])
        .await
        .unwrap();
    assert_eq!(store.get_run("run_1").await.unwrap().unwrap(), owned);
    let other = run_record("run_2", &def, "wf", 2000);
    store
        .commit(vec![WriteOp::CreateRun(other.clone())])
        .await
        .unwrap();

    // The writer still at epoch 2 (it lost the run to epoch 3).
    let stale = RunRecord {
        epoch: 2,
        last_seq: 1,
        status: RunStatus::Completed,
        ..owned.clone()
    };
    let err = store
        .commit(vec![
            WriteOp::UpdateRun(RunRecord {
                last_seq: 1,
                ..other.clone()
            }),
            WriteOp::append(vec![event("run_2", 1), event("run_1", 1)]),
            WriteOp::UpdateRun(stale),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Fenced(run) if run == "run_1"),
        "{err:?}"
    );
    assert_eq!(store.get_run("run_1").await.unwrap().unwrap(), owned);
    assert_eq!(store.get_run("run_2").await.unwrap().unwrap(), other);
    assert!(store.events("run_1", 0, 10).await.unwrap().is_empty());
    assert!(store.events("run_2", 0, 10).await.unwrap().is_empty());

    // The current epoch writes; an unknown run is still NotFound.
    store
        .commit(vec![
            WriteOp::append(vec![event("run_1", 1)]),
            WriteOp::UpdateRun(RunRecord {
                last_seq: 1,
                ..owned.clone()
            }),
        ])
        .await
        .unwrap();
    assert_eq!(store.get_run("run_1").await.unwrap().unwrap().last_seq, 1);
    let err = store
        .commit(vec![WriteOp::UpdateRun(run_record("run_9", &def, "wf", 1))])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}

/// Events read back by seq, in pages, whatever the batch sizes.
pub async fn events_are_appended_in_batches_and_read_in_order(store: &dyn Store) {
    setup_run(store, "run_1").await;
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

    // The same page with the payloads as stored text (the live stream's read).
    let text = store.events_text("run_1", 100, 50).await.unwrap();
    let parsed = store.events("run_1", 100, 50).await.unwrap();
    assert_eq!(text.len(), 50);
    for (t, p) in text.iter().zip(&parsed) {
        assert_eq!(
            (
                t.run_id.as_str(),
                t.seq,
                &*t.kind,
                t.ts,
                &t.token_id,
                &t.node
            ),
            (
                p.run_id.as_str(),
                p.seq,
                p.kind.as_str(),
                p.ts,
                &p.token_id,
                &p.node
            )
        );
        let payload: serde_json::Value = serde_json::from_str(&t.payload).unwrap();
        assert_eq!(payload, p.payload);
    }
    assert!(
        store
            .events_text("run_1", 258, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Tokens are keyed by `(run, seq)`, listed by seq, last write wins.
pub async fn tokens_upsert_and_page_in_creation_order(store: &dyn Store) {
    setup_run(store, "run_1").await;
    setup_run(store, "run_2").await;

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

/// One token's history: its row and exactly its events (not another
/// token's, not another run's), between bounds that later upserts extend
/// but never move back; unknown runs and tokens are `None`.
pub async fn token_history_reads_one_tokens_events(store: &dyn Store) {
    setup_run(store, "run_1").await;
    setup_run(store, "run_2").await;
    // The fixture's event `seq` is about `tok_<seq % 3>`: tok_1 has 1, 4, 7.
    let bounded = |seq, first, last| {
        let mut t = token("run_1", seq, &format!("tok_{seq}"), "running", 0);
        (t.first_seq, t.last_seq) = (first, last);
        t
    };
    store
        .commit(vec![
            WriteOp::append((1..=6).map(|s| event("run_1", s)).collect()),
            WriteOp::append((1..=9).map(|s| event("run_2", s)).collect()),
            WriteOp::UpsertTokens(vec![bounded(1, Some(1), Some(4)), bounded(2, None, None)]),
        ])
        .await
        .unwrap();
    let mut done = bounded(1, Some(7), Some(7));
    done.status = "completed".into();
    store
        .commit(vec![
            WriteOp::append((7..=9).map(|s| event("run_1", s)).collect()),
            // The same key twice in a batch: bounds merge like across batches.
            WriteOp::UpsertTokens(vec![done.clone(), bounded(1, None, None)]),
        ])
        .await
        .unwrap();

    let h = store
        .token_history("run_1", "tok_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        h.token.status, "running",
        "the last write of the batch wins"
    );
    assert_eq!((h.token.first_seq, h.token.last_seq), (Some(1), Some(7)));
    assert_eq!(
        h.events,
        vec![event("run_1", 1), event("run_1", 4), event("run_1", 7)]
    );
    let listed = store.tokens("run_1", None, 10).await.unwrap().items;
    assert_eq!(listed[0], h.token, "the listing shows the same row");
    // No bounds yet: the token's events are still found (a scan).
    let h = store
        .token_history("run_1", "tok_2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        h.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 5, 8]
    );
    assert!(
        store
            .token_history("run_1", "tok_9")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .token_history("run_9", "tok_1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .token_history("run_2", "tok_1")
            .await
            .unwrap()
            .is_none()
    );
}

/// The snapshot with the highest seq is the one read; a rewrite of a seq replaces it.
pub async fn only_the_latest_snapshot_is_kept(store: &dyn Store) {
    setup_run(store, "run_1").await;
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
}

/// Run listings: newest first, ties by id, every filter, cursors, clamped limits.
pub async fn runs_list_newest_first_with_filters_and_cursors(store: &dyn Store) {
    let a = save_tiny(store, "alpha").await;
    let b = save_tiny(store, "beta").await;
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

/// A result stored out of line by `WriteOp::PutResult` reads back by id.
pub async fn results_are_stored_out_of_line(store: &dyn Store) {
    setup_run(store, "run_1").await;
    assert!(store.result("res_1").await.unwrap().is_none());
    let big = json!({ "text": "x".repeat(70_000), "n": [1, 2.5, "three"] });
    store
        .commit(vec![WriteOp::PutResult {
            id: "res_1".into(),
            run_id: "run_1".into(),
            token_id: "tok_1".into(),
            attempt: 2,
            payload: big.to_string(),
        }])
        .await
        .unwrap();
    assert_eq!(store.result("res_1").await.unwrap(), Some(big));
    assert!(store.result("res_2").await.unwrap().is_none());
}

/// The cost ledger: a token's usage is kept with its row (a later write of
/// the row replaces it), and `usage_total` sums a run and all its
/// descendants, not its siblings.
pub async fn token_usage_is_kept_and_summed_over_the_run_tree(store: &dyn Store) {
    use crate::UsageTotals;
    let root = setup_run(store, "run_root").await;
    let def = save_tiny(store, "wf").await;
    let mut rows = Vec::new();
    for (id, parent) in [("run_child", "run_root"), ("run_grandchild", "run_child")] {
        let mut r = run_record(id, &def, "wf", 2000);
        r.parent_run_id = Some(parent.into());
        r.depth = if parent == "run_root" { 1 } else { 2 };
        rows.push(WriteOp::CreateRun(r));
    }
    rows.push(WriteOp::CreateRun(run_record(
        "run_other",
        &def,
        "wf",
        3000,
    )));
    store.commit(rows).await.unwrap();

    let spent = |calls, input, output, cost| UsageTotals {
        llm_calls: calls,
        input_tokens: input,
        output_tokens: output,
        cost_usd: cost,
    };
    let with = |run: &str, seq, usage: UsageTotals| {
        let mut t = token(run, seq, &format!("tk_{seq}"), "completed", 1);
        t.usage = usage;
        t
    };
    store
        .commit(vec![WriteOp::UpsertTokens(vec![
            with(&root.id, 1, spent(1, 10, 1, 0.5)),
            with(&root.id, 2, UsageTotals::default()),
            with("run_child", 1, spent(2, 100, 20, 0.25)),
            with("run_grandchild", 1, spent(1, 1000, 200, 0.125)),
            with("run_other", 1, spent(9, 9, 9, 9.0)),
        ])])
        .await
        .unwrap();
    // A later write of a row replaces its usage (a retry spent more).
    store
        .commit(vec![WriteOp::UpsertTokens(vec![with(
            &root.id,
            1,
            spent(2, 30, 3, 1.5),
        )])])
        .await
        .unwrap();

    let listed = store.tokens(&root.id, None, 10).await.unwrap().items;
    assert_eq!(listed[0].usage, spent(2, 30, 3, 1.5));
    assert_eq!(listed[1].usage, UsageTotals::default());
    assert_eq!(
        store.usage_total(&root.id).await.unwrap(),
        spent(5, 1130, 223, 1.875),
        "root + child + grandchild, not the unrelated run"
    );
    assert_eq!(
        store.usage_total("run_child").await.unwrap(),
        spent(3, 1100, 220, 0.375)
    );
    assert_eq!(
        store.usage_total("run_missing").await.unwrap(),
        UsageTotals::default()
    );
}

/// `forked_from` is written with the run and read back (and stays `None`
/// for a run that was not forked), in `get_run` and in listings.
pub async fn forked_from_is_stored_and_listed(store: &dyn Store) {
    let def = save_tiny(store, "forked").await;
    let source = run_record("run_src", &def, "forked", 10);
    let fork = RunRecord {
        forked_from: Some(crate::ForkedFrom {
            run_id: "run_src".into(),
            seq: 7,
        }),
        ..run_record("run_fork", &def, "forked", 20)
    };
    store
        .commit(vec![
            WriteOp::CreateRun(source),
            WriteOp::CreateRun(fork.clone()),
        ])
        .await
        .unwrap();
    let read = store.get_run("run_fork").await.unwrap().unwrap();
    assert_eq!(read.forked_from, fork.forked_from);
    assert_eq!(
        store.get_run("run_src").await.unwrap().unwrap().forked_from,
        None
    );
    // An update leaves it alone.
    store
        .commit(vec![WriteOp::UpdateRun(RunRecord {
            forked_from: None,
            last_seq: 3,
            ..fork.clone()
        })])
        .await
        .unwrap();
    let read = store.get_run("run_fork").await.unwrap().unwrap();
    assert_eq!(
        (read.last_seq, read.forked_from),
        (3, fork.forked_from.clone())
    );
    let page = store
        .list_runs(&crate::RunFilter::default(), None, 10)
        .await
        .unwrap();
    let listed = page.items.iter().find(|r| r.id == "run_fork").unwrap();
    assert_eq!(listed.forked_from, fork.forked_from);
}
