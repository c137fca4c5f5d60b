//! Scale-out on PostgreSQL (`braid_store::Cluster`): processes register and
//! heartbeat, the run trees of a process that is gone are adopted whole with
//! a new epoch, its writes are fenced from then on, tasks are claimed only by
//! their run's owner, cancels reach the owner, and wake-ups carry run ids.
//! Each "process" is a store of its own on one database.

mod common;

use braid_store::{Cluster, Error, RunRecord, RunStore, TaskQueue, Wake, WriteOp};
use braid_store_postgres::PgStore;
use common::*;
use futures::StreamExt;

/// A store serving as process `id` of the cluster, registered with `lease_ms`.
async fn process(url: &str, id: &str, lease_ms: i64) -> PgStore {
    let mut store = PgStore::connect_url(url).await.unwrap();
    store.serve_as(id);
    store.register(id, lease_ms).await.unwrap();
    store
}

fn owned(run: RunRecord, owner: &str) -> RunRecord {
    RunRecord {
        owner: Some(owner.into()),
        epoch: 1,
        ..run
    }
}

#[tokio::test]
async fn a_gone_process_s_run_trees_are_adopted_whole_and_its_writes_fenced() {
    let Some((db, _admin)) = open().await else {
        return;
    };
    let a = process(db.url(), "srv_a", 60_000).await;
    let b = process(db.url(), "srv_b", 60_000).await;
    assert_eq!(b.heartbeat("srv_b", 60_000).await.unwrap(), 2);

    let def = save_tiny(&a, "wf").await;
    let root = owned(run_record("run_root", &def, "wf", 1000), "srv_a");
    let child = RunRecord {
        parent_run_id: Some("run_root".into()),
        parent_token_id: Some("tk_1".into()),
        depth: 1,
        ..owned(run_record("run_child", &def, "wf", 1001), "srv_a")
    };
    let mut leased = task("run_child", "task_1", 0, 1000);
    leased.lease_until = Some(i64::MAX / 4);
    a.commit(vec![
        WriteOp::CreateRun(root.clone()),
        WriteOp::CreateRun(child.clone()),
        WriteOp::EnqueueTask(leased),
    ])
    .await
    .unwrap();
    let claimed_by: Option<String> =
        sqlx::query_scalar("SELECT claimed_by FROM tasks WHERE id = 'task_1'")
            .fetch_one(a.pool())
            .await
            .unwrap();
    assert_eq!(claimed_by.as_deref(), Some("srv_a"));

    // A is live: nothing to adopt, and B claims none of A's tasks.
    assert!(b.adopt("srv_b", 10).await.unwrap().is_empty());
    assert!(
        b.claim_tasks(i64::MAX / 2, 1000, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A stops: B adopts the tree, parent first, at epoch 2.
    a.stop("srv_a").await.unwrap();
    assert_eq!(b.heartbeat("srv_b", 60_000).await.unwrap(), 1);
    let adopted = b.adopt("srv_b", 10).await.unwrap();
    let got: Vec<(&str, Option<&str>, i64)> = adopted
        .iter()
        .map(|r| (r.id.as_str(), r.owner.as_deref(), r.epoch))
        .collect();
    assert_eq!(
        got,
        vec![
            ("run_root", Some("srv_b"), 2),
            ("run_child", Some("srv_b"), 2)
        ]
    );
    assert!(b.adopt("srv_b", 10).await.unwrap().is_empty());
    let owners: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT run_id, epoch, owner FROM run_owners ORDER BY run_id, epoch")
            .fetch_all(b.pool())
            .await
            .unwrap();
    assert_eq!(
        owners,
        vec![
            ("run_child".into(), 1, "srv_a".into()),
            ("run_child".into(), 2, "srv_b".into()),
            ("run_root".into(), 1, "srv_a".into()),
            ("run_root".into(), 2, "srv_b".into()),
        ]
    );

    // The task A held is B's to claim at once.
    let claimed = b.claim_tasks(1, 1000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        a.claim_tasks(i64::MAX / 2, 1000, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A's late commit is refused; B's goes through, with its epoch on the events.
    let err = a
        .commit(vec![
            WriteOp::append(vec![event("run_child", 1)]),
            WriteOp::UpdateRun(RunRecord {
                last_seq: 1,
                ..child.clone()
            }),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Fenced(r) if r == "run_child"),
        "{err:?}"
    );
    b.commit(vec![
        WriteOp::append(vec![event("run_child", 1)]),
        WriteOp::UpdateRun(RunRecord {
            last_seq: 1,
            ..adopted[1].clone()
        }),
    ])
    .await
    .unwrap();
    let epochs: Vec<i64> =
        sqlx::query_scalar("SELECT epoch FROM events WHERE run_id = 'run_child'")
            .fetch_all(b.pool())
            .await
            .unwrap();
    assert_eq!(epochs, vec![2]);
    assert_eq!(
        a.lost("srv_a", &["run_root".into(), "run_x".into()])
            .await
            .unwrap(),
        vec!["run_root".to_string()]
    );
    assert!(
        b.lost("srv_b", &["run_root".into()])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_expired_lease_makes_runs_adoptable_and_cancels_reach_the_owner() {
    let Some((db, _admin)) = open().await else {
        return;
    };
    // A lease of 0 ms has run out as soon as it is written.
    let a = process(db.url(), "srv_a", 0).await;
    let b = process(db.url(), "srv_b", 60_000).await;
    let def = save_tiny(&a, "wf").await;
    a.commit(vec![WriteOp::CreateRun(owned(
        run_record("run_1", &def, "wf", 1000),
        "srv_a",
    ))])
    .await
    .unwrap();
    // Its own runs are never adopted by a process itself.
    assert!(a.adopt("srv_a", 10).await.unwrap().is_empty());
    let mut wakes = b.wakes().await.unwrap();
    let adopted = b.adopt("srv_b", 10).await.unwrap();
    assert_eq!(adopted.len(), 1);

    assert!(a.request_cancel("run_1", "stop it").await.unwrap());
    assert_eq!(wakes.next().await, Some(Wake::Cancel("run_1".into())));
    let requests = b.cancel_requests("srv_b").await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].run_id.as_str(), requests[0].reason.as_str()),
        ("run_1", "stop it")
    );
    assert!(a.cancel_requests("srv_a").await.unwrap().is_empty());

    // B's commits wake the others with the run's id.
    let mut ended = adopted[0].clone();
    ended.status = braid_store::RunStatus::Completed;
    ended.last_seq = 1;
    b.commit(vec![
        WriteOp::append(vec![event("run_1", 1)]),
        WriteOp::UpdateRun(ended),
    ])
    .await
    .unwrap();
    assert_eq!(wakes.next().await, Some(Wake::Runs(vec!["run_1".into()])));
    // An ended run takes no cancel.
    assert!(!a.request_cancel("run_1", "too late").await.unwrap());
    assert!(b.cancel_requests("srv_b").await.unwrap().is_empty());
}
