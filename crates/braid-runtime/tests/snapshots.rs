//! Snapshots: taken as a run grows, and snapshot + tail rebuilds exactly the
//! state that all events rebuild.

mod common;

use braid_core::state::RunState;
use common::*;
use serde_json::json;
use std::sync::atomic::Ordering;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_plus_tail_equals_full_replay() {
    let mock = MockLlm::start(|_, _| Plan::never()).await;
    // 250 pure steps, then a fan-out of 4 LLM calls that never answer: the
    // run stays live with a snapshot behind it and events after it.
    let mut nodes = String::new();
    let mut transitions = String::new();
    for k in 0..250 {
        nodes.push_str(&format!("  - {{ ref: s{k}, action: {{ kind: update_context, updates: [ {{ path: state.n, expr: \"has(state.n) ? state.n + 1 : 1\" }} ] }} }}\n"));
        if k > 0 {
            transitions.push_str(&format!("  - {{ from: s{}, to: s{k} }}\n", k - 1));
        }
    }
    let yaml = format!(
        "name: long\ninitial_node: s0\nnodes:\n{nodes}  - {{ ref: ask, action: {{ kind: llm_call, prompt: p, model: m }} }}\ntransitions:\n{transitions}  - {{ from: s249, to: ask, spawn_count: 4 }}\nprompt_specs:\n  - {{ ref: p, template: x }}\nmodel_profiles:\n{}\n",
        openai_profile(&mock.url, "")
    );
    let t = engine().await;
    t.save(&yaml).await;
    let id = t
        .engine
        .start_run(&t.project, "long", None, json!({}), None)
        .await
        .unwrap();
    mock.until(|s| s.inflight.load(Ordering::SeqCst) == 4).await;

    let store = t.engine.store();
    let (seq, snapshot) = store
        .latest_snapshot(&id)
        .await
        .unwrap()
        .expect("a snapshot was taken");
    let stored = t.events(&id).await;
    assert!(
        seq >= 100 && seq <= stored.len() as i64,
        "snapshot at {seq} of {}",
        stored.len()
    );
    let snap_event = stored
        .iter()
        .find(|e| e.kind == "snapshot_created")
        .expect("snapshot_created event");
    assert_eq!(snap_event.payload["seq"], json!(seq));

    let def = store
        .get_def_by_id(&store.get_run(&id).await.unwrap().unwrap().def_id)
        .await
        .unwrap()
        .unwrap();
    let graph = braid_core::graph::compile(&def.bundle, &Default::default())
        .unwrap()
        .graph;
    let events = t.core_events(&id).await;
    let full = RunState::rebuild(&id, &graph, &events);
    let mut from_snapshot: RunState = serde_json::from_value(snapshot).unwrap();
    for e in events.iter().filter(|e| e.seq as i64 > seq) {
        from_snapshot.apply_event(&graph, e);
    }
    assert_eq!(from_snapshot, full, "snapshot + tail equals a full replay");
    assert_eq!(full.context.state["n"], json!(250));
    assert_eq!(
        full.context.to_json(),
        store.get_run(&id).await.unwrap().unwrap().context
    );
    t.engine.cancel(&id, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_results_are_stored_out_of_line_and_replay_puts_them_back() {
    let big = "x".repeat(100 * 1024);
    let answer = big.clone();
    let mock = MockLlm::start(move |_, _| Plan::ok(&answer)).await;
    let t = engine().await;
    t.save(&format!(
        "name: big\ninitial_node: ask\nnodes:\n  - {{ ref: ask, action: {{ kind: llm_call, prompt: p, model: m }}, output_mapping: {{ output.size: \"size(result.text)\" }} }}\nprompt_specs:\n  - {{ ref: p, template: x }}\nmodel_profiles:\n{}\n",
        openai_profile(&mock.url, "")
    ))
    .await;
    // `run` also checks that the replay (with the result put back) equals the run.
    let run = t.run("big", json!({})).await;
    assert_eq!(run.context["output"]["size"], json!(100 * 1024));
    let stored = t.events(&run.id).await;
    let completed = stored.iter().find(|e| e.kind == "node_completed").unwrap();
    let id = completed.payload["result"]["$result"]
        .as_str()
        .expect("a reference, not the result");
    assert!(
        completed.payload.to_string().len() < 1024,
        "the event stays small"
    );
    let result = t.engine.store().result(id).await.unwrap().unwrap();
    assert_eq!(result["text"].as_str().map(str::len), Some(100 * 1024));
    let core = t.core_events(&run.id).await;
    let back = core
        .iter()
        .find(|e| e.body.kind() == "node_completed")
        .unwrap();
    match &back.body {
        braid_core::event::EventBody::NodeCompleted { result, .. } => {
            assert_eq!(result["text"], json!(big))
        }
        _ => unreachable!(),
    }
}
