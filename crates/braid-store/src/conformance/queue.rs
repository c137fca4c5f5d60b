//! The task queue ([`TaskQueue`](crate::TaskQueue)) and the task writes of
//! a commit.

use super::fixtures::{setup_run, task};
use crate::{Store, WriteOp};

/// Claim order, leases, renewal, re-delivery on expiry, acks and due times.
pub async fn tasks_are_claimed_leased_redelivered_and_acked(store: &dyn Store) {
    setup_run(store, "run_1").await;
    setup_run(store, "run_2").await;
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

/// Task writes of one batch apply in order.
pub async fn enqueue_ack_and_drop_keep_their_order_in_a_batch(store: &dyn Store) {
    setup_run(store, "run_1").await;
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

/// A join that cancels branches deletes their queued tasks, and only theirs:
/// the same token id in another run keeps its task.
pub async fn queued_tasks_of_cancelled_tokens_are_dropped(store: &dyn Store) {
    setup_run(store, "run_1").await;
    setup_run(store, "run_2").await;
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

/// A lease handed back (renewed to a time in the past) or voided by
/// `release_all_leases` makes its task claimable at once.
pub async fn released_leases_make_tasks_claimable_at_once(store: &dyn Store) {
    setup_run(store, "run_1").await;
    store
        .commit(vec![
            WriteOp::EnqueueTask(task("run_1", "a", 0, 1)),
            WriteOp::EnqueueTask(task("run_1", "b", 0, 2)),
            WriteOp::EnqueueTask(task("run_1", "c", 0, 3)),
        ])
        .await
        .unwrap();
    assert_eq!(store.release_all_leases().await.unwrap(), 0);
    assert_eq!(store.claim_tasks(10, 1000, 10).await.unwrap().len(), 3);
    assert!(store.claim_tasks(10, 1000, 10).await.unwrap().is_empty());
    assert_eq!(store.next_task_due().await.unwrap(), Some(1010));

    // A task that did not start is handed back: due at once.
    store.renew_leases(&["b".to_owned()], 0).await.unwrap();
    assert_eq!(store.next_task_due().await.unwrap(), Some(0));
    let back = store.claim_tasks(20, 1000, 10).await.unwrap();
    let back: Vec<_> = back
        .iter()
        .map(|t| (t.id.as_str(), t.deliveries, t.lease_until))
        .collect();
    assert_eq!(back, [("b", 2, Some(1020))]);

    // Start-up after a crash: every lease is void.
    assert_eq!(store.release_all_leases().await.unwrap(), 3);
    let all = store.claim_tasks(30, 1000, 10).await.unwrap();
    let all: Vec<_> = all.iter().map(|t| (t.id.as_str(), t.deliveries)).collect();
    assert_eq!(all, [("a", 2), ("b", 3), ("c", 2)]);
    // Renewing a task that is gone is not an error.
    store.renew_leases(&["nope".to_owned()], 5).await.unwrap();
}
