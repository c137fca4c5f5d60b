//! What the run view reads: node aggregates, sibling sets, filtered events
//! and tokens ([`RunStore::node_stats`](crate::RunStore::node_stats) and the rest).

use serde_json::json;

use super::fixtures::{bundle, event, run_record, token};
use crate::{
    EventFilter, EventRecord, NodeStats, ParentFilter, SiblingSetRecord, Store, TokenFilter,
    TokenRecord, UsageTotals, WriteOp,
};

/// A run of a three-node workflow (`ask` → `judge` → `tally`).
async fn three_node_run(store: &dyn Store, run_id: &str) {
    let b = bundle(json!({
        "name": "panel",
        "initial_node": "ask",
        "nodes": [
            { "ref": "ask", "action": { "kind": "update_context", "updates": [] } },
            { "ref": "judge", "action": { "kind": "update_context", "updates": [] } },
            { "ref": "tally", "action": { "kind": "update_context", "updates": [] } }
        ],
        "transitions": [ { "from": "ask", "to": "judge" }, { "from": "judge", "to": "tally" } ]
    }));
    let def = store.save_bundle("proj_default", &b, 1).await.unwrap();
    store
        .commit(vec![WriteOp::CreateRun(run_record(
            run_id, &def, "panel", 1000,
        ))])
        .await
        .unwrap();
}

/// A visit of `node` with its attempts and times.
fn visit(
    run_id: &str,
    seq: i64,
    node: &str,
    status: &str,
    attempts: i64,
    times: Option<(i64, i64)>,
) -> TokenRecord {
    let mut t = token(run_id, seq, &format!("tk_{seq}"), status, seq);
    t.node = node.into();
    t.attempts = attempts;
    if let Some((start, end)) = times {
        t.started_at = Some(start);
        t.ended_at = Some(end);
    }
    t
}

/// One item per node of the graph in definition order, never-visited nodes
/// with zero counts; visits by status, attempts, retries, failures,
/// duration sum / median / max over the visits with both times, usage.
pub async fn node_stats_aggregate_every_node_of_the_graph(store: &dyn Store) {
    three_node_run(store, "run_1").await;
    three_node_run(store, "run_2").await;
    let spent = UsageTotals {
        llm_calls: 2,
        input_tokens: 100,
        output_tokens: 10,
        cost_usd: 0.5,
    };
    let mut paid = visit("run_1", 2, "judge", "completed", 2, Some((100, 110)));
    paid.usage = spent;
    let mut also_paid = visit("run_1", 5, "judge", "failed", 3, Some((100, 130)));
    also_paid.usage = spent;
    store
        .commit(vec![WriteOp::UpsertTokens(vec![
            visit("run_1", 1, "ask", "completed", 1, Some((10, 15))),
            paid,
            visit("run_1", 3, "judge", "completed", 1, Some((100, 104))),
            visit("run_1", 4, "judge", "running", 1, None),
            also_paid,
            visit("run_1", 6, "judge", "cancelled", 0, None),
            // Another run's visits never count.
            visit("run_2", 1, "tally", "completed", 9, Some((0, 999))),
        ])])
        .await
        .unwrap();

    let stats = store.node_stats("run_1").await.unwrap();
    let nodes: Vec<&str> = stats.iter().map(|s| s.node.as_str()).collect();
    assert_eq!(
        nodes,
        ["ask", "judge", "tally"],
        "the graph's order, every node"
    );
    let ask = &stats[0];
    assert_eq!(ask.visits, [("completed".to_string(), 1)]);
    assert_eq!((ask.attempts, ask.retries, ask.failures), (1, 0, 0));
    assert_eq!(ask.duration_sum_ms, 5);
    assert_eq!(ask.duration_median_ms, Some(5.0));
    assert_eq!(ask.duration_max_ms, Some(5));

    let judge = &stats[1];
    let mut visits = judge.visits.clone();
    visits.sort();
    let count = |s: &str, n: u64| (s.to_string(), n);
    assert_eq!(
        visits,
        [
            count("cancelled", 1),
            count("completed", 2),
            count("failed", 1),
            count("running", 1)
        ]
    );
    assert_eq!(judge.attempts, 2 + 1 + 1 + 3);
    assert_eq!(judge.retries, 1 + 2, "attempts beyond each visit's first");
    assert_eq!(judge.failures, 1);
    // Durations 10, 4, 30: the two unfinished visits have none.
    assert_eq!(judge.duration_sum_ms, 44);
    assert_eq!(judge.duration_median_ms, Some(10.0));
    assert_eq!(judge.duration_max_ms, Some(30));
    assert_eq!(
        judge.usage,
        UsageTotals {
            llm_calls: 4,
            input_tokens: 200,
            output_tokens: 20,
            cost_usd: 1.0
        }
    );

    let empty = NodeStats {
        node: "tally".into(),
        visits: vec![],
        attempts: 0,
        retries: 0,
        failures: 0,
        duration_sum_ms: 0,
        duration_median_ms: None,
        duration_max_ms: None,
        usage: UsageTotals::default(),
    };
    assert_eq!(stats[2], empty, "never visited: zero counts");

    // An even number of durations: the mean of the two middle ones.
    store
        .commit(vec![WriteOp::UpsertTokens(vec![visit(
            "run_1",
            4,
            "judge",
            "completed",
            1,
            Some((100, 107)),
        )])])
        .await
        .unwrap();
    let judge = &store.node_stats("run_1").await.unwrap()[1];
    assert_eq!(
        judge.duration_median_ms,
        Some(8.5),
        "durations 4, 7, 10, 30"
    );
    assert!(store.node_stats("run_nope").await.unwrap().is_empty());
}

fn set(run_id: &str, seq: i64, total: i64, parent: Option<&str>) -> SiblingSetRecord {
    SiblingSetRecord {
        run_id: run_id.into(),
        seq,
        id: format!("ss_{seq}"),
        fan_out_node: "ask".into(),
        origin_token_id: "tk_1".into(),
        join_node: Some("tally".into()),
        total,
        fired: false,
        parent_sibling_set: parent.map(str::to_string),
    }
}

fn member(run_id: &str, seq: i64, set: &str, branch: i64, status: &str) -> TokenRecord {
    let mut t = token(run_id, seq, &format!("tk_{seq}"), status, seq);
    t.sibling_set = Some(set.into());
    t.branch_index = Some(branch);
    t
}

/// Sibling-set rows are upserted (written again, never duplicated), listed
/// by creation order with cursors and the `parent` filter, and count their
/// members by the status of each branch's latest token.
pub async fn sibling_sets_upsert_and_count_members_by_latest_token(store: &dyn Store) {
    three_node_run(store, "run_1").await;
    three_node_run(store, "run_2").await;
    store
        .commit(vec![
            WriteOp::UpsertSiblingSets(vec![set("run_1", 1, 3, None)]),
            WriteOp::UpsertTokens(vec![
                member("run_1", 2, "ss_1", 0, "completed"),
                member("run_1", 3, "ss_1", 1, "completed"),
                member("run_1", 4, "ss_1", 2, "failed"),
                // Branch 0 moved on: its latest token is what counts.
                member("run_1", 5, "ss_1", 0, "waiting_join"),
                member("run_2", 2, "ss_1", 0, "running"),
            ]),
        ])
        .await
        .unwrap();
    // The same set again (a later slice, a replay after recovery) and its firing.
    let mut fired = set("run_1", 1, 3, None);
    fired.fired = true;
    store
        .commit(vec![
            WriteOp::UpsertSiblingSets(vec![set("run_1", 1, 3, None), fired.clone()]),
            WriteOp::UpsertSiblingSets(vec![set("run_1", 2, 2, Some("ss_1"))]),
            WriteOp::UpsertSiblingSets(vec![set("run_1", 3, 0, None)]),
            WriteOp::UpsertTokens(vec![member("run_1", 6, "ss_2", 0, "pending")]),
        ])
        .await
        .unwrap();

    let all = store
        .sibling_sets("run_1", &ParentFilter::Any, None, 100)
        .await
        .unwrap();
    assert!(all.next_cursor.is_none());
    let ids: Vec<&str> = all.items.iter().map(|s| s.set.id.as_str()).collect();
    assert_eq!(
        ids,
        ["ss_1", "ss_2", "ss_3"],
        "one row per set, in creation order"
    );
    assert_eq!(all.items[0].set, fired);
    let mut counts = all.items[0].counts.clone();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("completed".to_string(), 1),
            ("failed".to_string(), 1),
            ("waiting_join".to_string(), 1)
        ],
        "three branches, branch 0 by its latest token"
    );
    assert_eq!(all.items[1].counts, [("pending".to_string(), 1)]);
    assert!(
        all.items[2].counts.is_empty(),
        "an empty set has no members"
    );

    let page = store
        .sibling_sets("run_1", &ParentFilter::Any, None, 2)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let rest = store
        .sibling_sets("run_1", &ParentFilter::Any, page.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].set.id, "ss_3");
    assert!(rest.next_cursor.is_none());

    let roots = store
        .sibling_sets("run_1", &ParentFilter::Root, None, 100)
        .await
        .unwrap();
    let ids: Vec<&str> = roots.items.iter().map(|s| s.set.id.as_str()).collect();
    assert_eq!(ids, ["ss_1", "ss_3"]);
    let nested = store
        .sibling_sets("run_1", &ParentFilter::Set("ss_1".into()), None, 100)
        .await
        .unwrap();
    assert_eq!(nested.items.len(), 1);
    assert_eq!(
        nested.items[0].set.parent_sibling_set.as_deref(),
        Some("ss_1")
    );
    assert!(
        store
            .sibling_sets("run_2", &ParentFilter::Any, None, 100)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let err = store
        .sibling_sets("run_1", &ParentFilter::Any, Some("nope"), 10)
        .await
        .unwrap_err();
    assert!(matches!(err, crate::Error::Invalid(_)), "{err:?}");
}

fn kind_event(run_id: &str, seq: i64, kind: &str, node: Option<&str>) -> EventRecord {
    let mut e = event(run_id, seq);
    e.kind = kind.into();
    e.node = node.map(str::to_string);
    e
}

/// Events filtered by kinds, node and failures (combined with AND) in the
/// query, paged with `after`, pages up to 10,000; tokens filtered by node,
/// status and sibling set, paged with cursors.
pub async fn events_and_tokens_are_filtered_in_the_store(store: &dyn Store) {
    three_node_run(store, "run_1").await;
    let kinds = [
        ("node_started", Some("judge")),
        ("node_retrying", Some("judge")),
        ("node_completed", Some("judge")),
        ("node_failed", Some("ask")),
        ("context_updated", Some("ask")),
        ("workflow_failed", None),
    ];
    // 1,800 events: pages larger than 1,000 come back whole.
    let events: Vec<EventRecord> = (1..=1800)
        .map(|seq| {
            let (kind, node) = kinds[(seq as usize - 1) % kinds.len()];
            kind_event("run_1", seq, kind, node)
        })
        .collect();
    store.commit(vec![WriteOp::append(events)]).await.unwrap();

    let read = |filter: EventFilter, after: i64, limit: u32| async move {
        store
            .filtered_events("run_1", &filter, after, limit)
            .await
            .unwrap()
    };
    assert_eq!(read(EventFilter::default(), 0, 5000).await.len(), 1800);
    assert_eq!(read(EventFilter::default(), 0, 0).await.len(), 1);
    let filter = |kinds: &[&str], node: Option<&str>, failed: bool| EventFilter {
        kinds: kinds.iter().map(|k| k.to_string()).collect(),
        node: node.map(str::to_string),
        failed,
    };

    let failures = read(filter(&[], None, true), 0, 10_000).await;
    assert_eq!(failures.len(), 900);
    assert!(
        failures
            .iter()
            .all(|e| EventFilter::FAILURE_KINDS.contains(&e.kind.as_str()))
    );
    let judge = read(filter(&[], Some("judge"), false), 0, 10_000).await;
    assert_eq!(judge.len(), 900);
    assert!(judge.iter().all(|e| e.node.as_deref() == Some("judge")));
    let both = read(
        filter(&["node_started", "node_failed"], None, false),
        0,
        10_000,
    )
    .await;
    assert_eq!(both.len(), 600);
    let judge_failures = read(filter(&[], Some("judge"), true), 0, 10_000).await;
    assert!(judge_failures.iter().all(|e| e.kind == "node_retrying"));
    assert_eq!(judge_failures.len(), 300);
    assert!(
        read(filter(&["node_started"], None, true), 0, 10)
            .await
            .is_empty()
    );

    // Paging a filtered log: after the last seq of a page, no gap, no repeat.
    let f = filter(&["node_completed"], None, false);
    let first = read(f.clone(), 0, 100).await;
    let second = read(f.clone(), first.last().unwrap().seq, 100).await;
    assert_eq!(first.len(), 100);
    assert_eq!(second[0].seq, first[99].seq + 6);
    assert_eq!(
        second[0],
        kind_event("run_1", second[0].seq, "node_completed", Some("judge"))
    );

    let mut rows = Vec::new();
    for seq in 1..=30 {
        let (node, status) = match seq % 3 {
            0 => ("ask", "completed"),
            1 => ("judge", "failed"),
            _ => ("judge", "completed"),
        };
        let mut t = visit("run_1", seq, node, status, 1, None);
        if seq > 20 {
            t.sibling_set = Some("ss_1".into());
            t.branch_index = Some(seq - 21);
        }
        rows.push(t);
    }
    store
        .commit(vec![WriteOp::UpsertTokens(rows)])
        .await
        .unwrap();
    let tokens = |filter: TokenFilter, cursor: Option<String>, limit: u32| async move {
        store
            .filtered_tokens("run_1", &filter, cursor.as_deref(), limit)
            .await
            .unwrap()
    };
    let tf = |node: Option<&str>, status: Option<&str>, set: Option<&str>| TokenFilter {
        node: node.map(str::to_string),
        status: status.map(str::to_string),
        sibling_set: set.map(str::to_string),
    };
    let failed_judges = tokens(tf(Some("judge"), Some("failed"), None), None, 4).await;
    let seqs: Vec<i64> = failed_judges.items.iter().map(|t| t.seq).collect();
    assert_eq!(seqs, [1, 4, 7, 10]);
    let next = tokens(
        tf(Some("judge"), Some("failed"), None),
        failed_judges.next_cursor,
        100,
    )
    .await;
    let seqs: Vec<i64> = next.items.iter().map(|t| t.seq).collect();
    assert_eq!(seqs, [13, 16, 19, 22, 25, 28]);
    assert!(next.next_cursor.is_none());
    let members = tokens(tf(None, None, Some("ss_1")), None, 100).await;
    assert_eq!(members.items.len(), 10);
    assert!(members.items.iter().all(|t| t.seq > 20));
    let asks = tokens(tf(Some("ask"), Some("completed"), Some("ss_1")), None, 100).await;
    let seqs: Vec<i64> = asks.items.iter().map(|t| t.seq).collect();
    assert_eq!(seqs, [21, 24, 27, 30]);
    assert_eq!(
        tokens(TokenFilter::default(), None, 1000).await.items,
        store.tokens("run_1", None, 1000).await.unwrap().items,
        "no filter lists like `tokens`"
    );
}
