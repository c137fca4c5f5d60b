//! Fan-out against a real local HTTP provider: real concurrency, aborts,
//! merges, and the state rebuilt from the stored events.

mod common;

use braid_store::RunStatus;
use common::*;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

fn judges(url: &str, fan_in: &str, n: u64, max_concurrency: u64) -> String {
    format!(
        r#"
name: panel
initial_node: ask
nodes:
  - ref: ask
    action: {{ kind: update_context, updates: [ {{ path: state.question, expr: "input.question" }} ] }}
  - ref: judge
    action: {{ kind: llm_call, prompt: p, model: m }}
    output_mapping: {{ state.vote: "result.vote" }}
  - ref: tally
    fan_in: {fan_in}
    joins: ask
    merge: {{ source: vote, target: state.votes, strategy: append }}
    action: {{ kind: update_context, updates: [ {{ path: output.winner, expr: "state.votes.filter(v, v == 'A').size() * 2 > state.votes.size() ? 'A' : 'B'" }}, {{ path: output.votes, expr: "state.votes" }} ] }}
transitions:
  - {{ from: ask, to: judge, spawn_count: {n} }}
  - {{ from: judge, to: tally }}
prompt_specs:
  - {{ ref: p, template: "{{{{state.question}}}} -- judge {{{{_branch.index}}}}", produces: {{ type: object, required: [vote], properties: {{ vote: {{ type: string }} }} }} }}
model_profiles:
{}
"#,
        openai_profile(url, &format!(", max_concurrency: {max_concurrency}"))
    )
}

fn judge_index(body: &Value) -> usize {
    let prompt = body["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap();
    prompt.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_judges_are_in_flight_at_once_and_votes_merge_in_branch_order() {
    // Judge 0 answers last, judge 2 first: the merge must still be in branch order.
    let mock = MockLlm::start(|_, body| {
        let i = judge_index(body);
        let vote = if i == 1 { "B" } else { "A" };
        Plan::ok(&json!({ "vote": vote }).to_string()).after(300 - 100 * i as u64)
    })
    .await;
    let t = engine().await;
    t.save(&judges(&mock.url, "all", 3, 16)).await;
    let run = t.run("panel", json!({ "question": "tabs?" })).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(
        mock.state.max_inflight.load(Ordering::SeqCst),
        3,
        "the three calls overlapped"
    );
    assert_eq!(run.context["state"]["votes"], json!(["A", "B", "A"]));
    assert_eq!(run.context["output"]["winner"], json!("A"));
    let events = t.events(&run.id).await;
    let count = |k: &str| events.iter().filter(|e| e.kind == k).count();
    assert_eq!(count("token_spawned"), 3);
    assert_eq!(count("fan_in_completed"), 1);
    assert_eq!(count("node_completed"), 3 + 2);
    assert_eq!(run.usage["llm_calls"], json!(3));
    assert_eq!(run.usage["input_tokens"], json!(36));
    t.assert_replay_matches(&run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_bounds_calls_in_flight() {
    let mock = MockLlm::start(|_, _| Plan::ok(r#"{"vote":"A"}"#).after(50)).await;
    let t = engine().await;
    t.save(&judges(&mock.url, "all", 6, 2)).await;
    let run = t.run("panel", json!({ "question": "q" })).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(mock.requests().len(), 6);
    assert_eq!(mock.state.max_inflight.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m_of_n_aborts_the_slow_request_and_never_writes_its_result() {
    // Judge 2 never answers; the join fires after two votes and cancels it.
    let mock = MockLlm::start(|_, body| {
        if judge_index(body) == 2 {
            Plan::never()
        } else {
            Plan::ok(r#"{"vote":"B"}"#)
        }
    })
    .await;
    let t = engine().await;
    t.save(&judges(&mock.url, "{ m_of_n: 2 }", 3, 16)).await;
    let run = t.run("panel", json!({ "question": "q" })).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(run.context["state"]["votes"], json!(["B", "B"]));
    // The in-flight HTTP request of the slow judge is dropped.
    mock.until(|s| s.aborted.load(Ordering::SeqCst) == 1).await;
    let tokens = t
        .engine
        .store()
        .tokens(&run.id, None, 100)
        .await
        .unwrap()
        .items;
    let judge2 = tokens
        .iter()
        .find(|tk| tk.node == "judge" && tk.branch_index == Some(2))
        .unwrap();
    assert_eq!(judge2.status, "cancelled");
    let events = t.events(&run.id).await;
    assert!(
        events
            .iter()
            .any(|e| e.kind == "token_cancelled"
                && e.token_id.as_deref() == Some(judge2.id.as_str()))
    );
    assert_eq!(events.last().unwrap().kind, "workflow_completed");
    t.assert_replay_matches(&run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_branches_append_into_one_join() {
    let yaml = r#"
name: wide
initial_node: fan
nodes:
  - { ref: fan, action: { kind: update_context } }
  - ref: branch
    action: { kind: update_context, updates: [ { path: state.i, expr: "_branch.index" } ] }
  - { ref: join, fan_in: all, joins: fan, merge: { source: i, target: state.is, strategy: append }, action: { kind: update_context, updates: [ { path: output.sum, expr: "state.is.map(x, x).size()" } ] } }
transitions:
  - { from: fan, to: branch, spawn_count: "input.n" }
  - { from: branch, to: join }
"#;
    let t = engine().await;
    t.save(yaml).await;
    let run = t.run("wide", json!({ "n": 10000 })).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    let is = run.context["state"]["is"].as_array().unwrap();
    assert_eq!(is.len(), 10_000);
    assert!(
        is.iter().enumerate().all(|(k, v)| v == &json!(k)),
        "branch order"
    );
    assert_eq!(run.context["output"]["sum"], json!(10_000));
    let events = t.events(&run.id).await;
    assert_eq!(
        events.iter().filter(|e| e.kind == "token_spawned").count(),
        10_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreach_over_input_calls_one_model_per_item() {
    let mock = MockLlm::start(|_, body| {
        let prompt = body["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_string();
        Plan::ok(&json!({ "summary": prompt.to_uppercase() }).to_string())
    })
    .await;
    let yaml = format!(
        r#"
name: summaries
initial_node: start
nodes:
  - {{ ref: start, action: {{ kind: update_context }} }}
  - ref: summarize
    action: {{ kind: llm_call, prompt: p, model: m }}
    output_mapping: {{ state.s: "result.summary" }}
  - {{ ref: gather, fan_in: all, joins: start, merge: {{ source: s, target: state.all, strategy: keyed_by_branch }}, action: {{ kind: update_context, updates: [ {{ path: output.all, expr: "state.all" }} ] }} }}
transitions:
  - {{ from: start, to: summarize, foreach: {{ collection: "input.docs", item_var: doc }} }}
  - {{ from: summarize, to: gather }}
prompt_specs:
  - {{ ref: p, template: "doc {{{{doc.title}}}}", produces: {{ type: object, properties: {{ summary: {{ type: string }} }} }} }}
model_profiles:
{}
"#,
        openai_profile(&mock.url, "")
    );
    let t = engine().await;
    t.save(&yaml).await;
    let run = t
        .run(
            "summaries",
            json!({ "docs": [ { "title": "a" }, { "title": "b" } ] }),
        )
        .await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(
        run.context["output"]["all"],
        json!({ "0": "DOC A", "1": "DOC B" })
    );
    let run = t.run("summaries", json!({ "docs": [] })).await;
    assert_eq!(
        run.context["output"]["all"],
        json!({}),
        "an empty foreach fires the join at once"
    );
}
