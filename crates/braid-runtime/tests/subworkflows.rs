//! `workflow_call`: child runs with isolated context, mappings both ways,
//! failure propagation and catching, cancellation, dynamic dispatch and
//! version pins — on a real SQLite store.

mod common;

use braid_store::RunStatus;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const ROUTINE: &str = include_str!("../../../examples/research_routine.yaml");

const MAIN: &str = include_str!("../../../examples/research_main.yaml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_calls_a_routine_with_mapped_input_and_isolated_context() {
    let t = engine().await;
    t.save(ROUTINE).await;
    t.save(MAIN).await;
    let run = t.run("main", json!({ "topic": "rust" })).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(
        run.context["output"],
        json!({ "summary": "found: rust history", "isolated": true })
    );
    let child = t.only_child(&run.id).await;
    assert_eq!(child.parent_run_id.as_deref(), Some(run.id.as_str()));
    assert_eq!(child.parent_token_id.as_deref(), Some("tk_2"));
    assert_eq!(
        (child.workflow_name.as_str(), child.version, child.depth),
        ("research_routine", 1, 1)
    );
    assert_eq!(child.context["input"], json!({ "query": "rust history" }));
    assert_eq!(
        child.context["state"],
        json!({}),
        "the child starts with empty state"
    );
    let events = t.events(&run.id).await;
    let started = events
        .iter()
        .find(|e| e.kind == "subworkflow_started")
        .unwrap();
    assert_eq!(
        (
            started.payload["child_run_id"].clone(),
            started.payload["version"].clone()
        ),
        (json!(child.id), json!(1))
    );
    assert!(events.iter().any(|e| e.kind == "subworkflow_completed"));
}

fn level(k: u32, depth: u32, catch_at: Option<u32>, fail_inner: bool) -> String {
    if k == depth {
        let expr = if fail_inner { "1 / 0" } else { "input.v * 10" };
        return format!(
            "name: level_{k}\ninitial_node: leaf\nnodes:\n  - {{ ref: leaf, action: {{ kind: update_context, updates: [ {{ path: output.v, expr: \"{expr}\" }} ] }} }}\n"
        );
    }
    let on_failure = if catch_at == Some(k) {
        "catch"
    } else {
        "propagate"
    };
    format!(
        r#"
name: level_{k}
initial_node: call
nodes:
  - ref: call
    action: {{ kind: workflow_call, workflow: level_{next}, on_failure: {on_failure} }}
    input_mapping: {{ v: "input.v + 1" }}
    output_mapping: {{ output.v: "has(result.v) ? result.v : -1", output.caught: "has(result.error) ? result.error.code : 'none'" }}
"#,
        next = k + 1
    )
}

async fn save_chain(t: &TestEngine, depth: u32, catch_at: Option<u32>, fail_inner: bool) {
    for k in (0..=depth).rev() {
        t.save(&level(k, depth, catch_at, fail_inner)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_nested_calls_map_the_innermost_value_back_to_the_top() {
    let t = engine().await;
    save_chain(&t, 8, None, false).await;
    let run = t.run("level_0", json!({ "v": 0 })).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(
        run.context["output"]["v"],
        json!(80),
        "input incremented 8 times, times 10 at depth 8"
    );
    // Walk down the parent–child links.
    let mut id = run.id.clone();
    for depth in 1..=8 {
        let child = t.only_child(&id).await;
        assert_eq!(child.depth, depth);
        id = child.id;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_depth_eight_propagates_to_the_top_with_its_root_cause() {
    let t = engine().await;
    save_chain(&t, 8, None, true).await;
    let run = t.run("level_0", json!({ "v": 0 })).await;
    assert_eq!(run.status, RunStatus::Failed);
    let mut err = run.error.clone().unwrap();
    assert_eq!(err["code"], json!("SUBWORKFLOW_FAILED"));
    let mut hops = 0;
    while err["cause"].is_object() {
        err = err["cause"].clone();
        hops += 1;
    }
    assert_eq!(hops, 8, "one cause per level");
    assert_eq!(
        (err["code"].clone(), err["node"].clone()),
        (json!("EXPRESSION"), json!("leaf"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_stops_the_failure_at_its_level() {
    let t = engine().await;
    save_chain(&t, 8, Some(5), true).await;
    let run = t.run("level_0", json!({ "v": 0 })).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    // Level 5 caught SUBWORKFLOW_FAILED from level 6 and returned v = -1.
    assert_eq!(run.context["output"]["v"], json!(-1));
    assert_eq!(run.context["output"]["caught"], json!("none"));
    let mut id = run.id.clone();
    for depth in 1..=8 {
        let child = t.only_child(&id).await;
        let expected = if depth <= 5 {
            RunStatus::Completed
        } else {
            RunStatus::Failed
        };
        assert_eq!(child.status, expected, "level {depth}");
        if depth == 5 {
            assert_eq!(
                child.context["output"]["caught"],
                json!("SUBWORKFLOW_FAILED"),
                "level 5 is the one that caught"
            );
        }
        id = child.id;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_branches_each_call_their_own_child() {
    let t = engine().await;
    t.save(ROUTINE).await;
    t.save(
        r#"
name: fan
initial_node: start
nodes:
  - { ref: start, action: { kind: update_context } }
  - ref: call
    action: { kind: workflow_call, workflow: research_routine }
    input_mapping: { query: "'q' + string(_branch.index)" }
    output_mapping: { state.a: "result.answer" }
  - { ref: join, fan_in: all, joins: start, merge: { source: a, target: state.answers, strategy: append }, action: { kind: update_context, updates: [ { path: output.answers, expr: "state.answers" } ] } }
transitions:
  - { from: start, to: call, spawn_count: 5 }
  - { from: call, to: join }
"#,
    )
    .await;
    let run = t.run("fan", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    let expected: Vec<Value> = (0..5).map(|i| json!(format!("found: q{i}"))).collect();
    assert_eq!(run.context["output"]["answers"], json!(expected));
    assert_eq!(t.engine.store().children(&run.id).await.unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_parent_cancels_its_children() {
    let mock = MockLlm::start(|_, _| Plan::never()).await;
    let t = engine().await;
    t.save(&format!(
        "name: slow\ninitial_node: think\nnodes:\n  - {{ ref: think, action: {{ kind: llm_call, prompt: p, model: m }} }}\nprompt_specs:\n  - {{ ref: p, template: x }}\nmodel_profiles:\n{}\n",
        openai_profile(&mock.url, "")
    ))
    .await;
    t.save("name: outer\ninitial_node: call\nnodes:\n  - { ref: call, action: { kind: workflow_call, workflow: slow } }\n").await;
    let id = t
        .engine
        .start_run(&t.project, "outer", None, json!({}), None)
        .await
        .unwrap();
    mock.until(|s| s.inflight.load(std::sync::atomic::Ordering::SeqCst) == 1)
        .await;
    t.engine.cancel(&id, "user asked").await.unwrap();
    let run = t
        .engine
        .wait(&id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    let child_id = t.engine.store().children(&id).await.unwrap().remove(0);
    let child = t
        .engine
        .wait(&child_id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(child.status, RunStatus::Cancelled);
    let events = t.events(&child_id).await;
    assert_eq!(events.last().unwrap().kind, "workflow_cancelled");
    mock.until(|s| s.aborted.load(std::sync::atomic::Ordering::SeqCst) == 1)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_dispatch_and_version_pins() {
    let t = engine().await;
    let v = |answer: &str| {
        format!(
            "name: pick\ninitial_node: a\nnodes:\n  - {{ ref: a, action: {{ kind: update_context, updates: [ {{ path: output.says, expr: \"'{answer}'\" }} ] }} }}\n"
        )
    };
    t.save(&v("v1")).await;
    t.save(&v("v2")).await; // version 2
    t.save(
        r#"
name: dispatcher
initial_node: call
nodes:
  - ref: call
    action: { kind: workflow_call, workflow: { from_context: "input.target" }, version: { from_context: "has(input.version) ? input.version : null" } }
    output_mapping: { output.says: "result.says" }
"#,
    )
    .await;
    let run = t
        .run("dispatcher", json!({ "target": "pick", "version": 1 }))
        .await;
    assert_eq!(
        run.context["output"]["says"],
        json!("v1"),
        "pinned to version 1"
    );
    let run = t.run("dispatcher", json!({ "target": "pick" })).await;
    assert_eq!(
        run.context["output"]["says"],
        json!("v2"),
        "latest at call time"
    );
    let child = t.only_child(&run.id).await;
    assert_eq!(
        child.version, 2,
        "the resolved version is recorded on the child"
    );
    let run = t.run("dispatcher", json!({ "target": "nope" })).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.unwrap()["code"], json!("NOT_FOUND"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_recursion_stops_at_the_depth_limit() {
    let t = engine().await;
    t.save("name: forever\ninitial_node: again\nnodes:\n  - { ref: again, action: { kind: workflow_call, workflow: forever } }\n").await;
    let run = t.run("forever", json!({})).await;
    assert_eq!(run.status, RunStatus::Failed);
    let mut err = run.error.unwrap();
    while err["cause"].is_object() {
        err = err["cause"].clone();
    }
    assert_eq!(err["code"], json!("DEPTH_LIMIT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_child_input_fails_the_child_with_input_schema() {
    let t = engine().await;
    t.save(ROUTINE).await;
    t.save("name: bad_caller\ninitial_node: call\nnodes:\n  - { ref: call, action: { kind: workflow_call, workflow: research_routine, on_failure: catch }, input_mapping: { query: \"42\" }, output_mapping: { output.err: \"result.error.code\" } }\n").await;
    let run = t.run("bad_caller", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(run.context["output"]["err"], json!("INPUT_SCHEMA"));
}
