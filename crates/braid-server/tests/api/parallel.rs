//! Fan-out over HTTP: three LLM judges against a local OpenAI-format server
//! that answers after a delay, joined with `all` + `append`, then a decision.

use crate::common::Server;
use braid_testkit::{MockLlm, Plan};
use serde_json::json;
use std::sync::atomic::Ordering;

fn panel(url: &str) -> String {
    format!(
        r#"
name: judge_panel
input_schema: {{ type: object, required: [question], properties: {{ question: {{ type: string }} }} }}
output_schema: {{ type: object, required: [winner], properties: {{ winner: {{ type: string }} }} }}
initial_node: ask
nodes:
  - ref: ask
    action: {{ kind: update_context, updates: [ {{ path: state.question, expr: "input.question" }} ] }}
  - ref: judge
    action: judge_llm
    output_mapping: {{ state.vote: "result.vote" }}
  - ref: tally
    fan_in: all
    joins: ask
    merge: {{ source: vote, target: state.votes, strategy: append }}
    action: {{ kind: update_context, updates: [ {{ path: output.winner, expr: "state.votes.filter(v, v == 'A').size() >= 2 ? 'A' : 'B'" }} ] }}
transitions:
  - {{ from: ask, to: judge, spawn_count: 3 }}
  - {{ from: judge, to: tally }}
actions:
  - ref: judge_llm
    kind: llm_call
    prompt: judge_prompt
    model: fast
    execution: {{ timeout_ms: 30000, retry_policy: {{ max_attempts: 3, backoff: exponential, initial_delay_ms: 500 }} }}
prompt_specs:
  - ref: judge_prompt
    system: You are a strict judge.
    template: "Question: {{{{state.question}}}}. You are judge {{{{_branch.index}}}}. Answer A or B."
    produces: {{ type: object, required: [vote], properties: {{ vote: {{ type: string, enum: [A, B] }} }} }}
model_profiles:
  - {{ ref: fast, provider: openai_compatible, model: gpt-4o-mini, base_url: "{url}", cost_per_1k_input_tokens: 0.00015, cost_per_1k_output_tokens: 0.0006 }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_judges_run_in_parallel_and_their_votes_merge_in_branch_order() {
    // Judge 1 votes B, the others A; judge 0 answers last.
    let llm = MockLlm::start(|_, body| {
        let prompt = body["messages"][1]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let index: u64 = prompt
            .split("judge ")
            .nth(1)
            .and_then(|s| s.split('.').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(9);
        let vote = if index == 1 { "B" } else { "A" };
        Plan::ok(&json!({ "vote": vote }).to_string()).after(400 - 100 * index)
    })
    .await;
    let server = Server::start().await;
    let saved = server
        .post_raw("/api/workflow-defs", "application/yaml", panel(&llm.url))
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);

    let run = server
        .post(
            "/api/workflow-defs/judge_panel/runs?wait=true",
            &json!({ "input": { "question": "Tabs or spaces?" } }),
        )
        .await;
    assert_eq!(run.status, 201, "{}", run.text);
    let body = &run.body;
    assert_eq!(body["status"], "completed", "{}", run.text);
    assert_eq!(
        llm.state.max_inflight.load(Ordering::SeqCst),
        3,
        "the three requests were in flight at the same time"
    );
    assert_eq!(
        body["context"]["state"]["votes"],
        json!(["A", "B", "A"]),
        "merged in branch order, not completion order"
    );
    assert_eq!(body["context"]["output"], json!({ "winner": "A" }));
    assert_eq!(body["usage"]["llm_calls"], json!(3));

    let events = server
        .all_pages(
            &format!("/api/runs/{}/events", body["id"].as_str().unwrap()),
            50,
        )
        .await;
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "token_spawned").count(), 3);
    let spawned: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "token_spawned")
        .map(|e| (e["payload"]["index"].clone(), e["payload"]["total"].clone()))
        .collect();
    assert_eq!(
        spawned,
        [
            (json!(0), json!(3)),
            (json!(1), json!(3)),
            (json!(2), json!(3))
        ]
    );
    let fan_in: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "fan_in_completed")
        .collect();
    assert_eq!(fan_in.len(), 1, "the join fired exactly once");
    assert_eq!(fan_in[0]["payload"]["merged"].as_array().unwrap().len(), 3);
    assert_eq!(fan_in[0]["payload"]["strategy"], "append");
    assert_eq!(fan_in[0]["payload"]["target"], "state.votes");
    assert_eq!(kinds.last(), Some(&"workflow_completed"));

    // The tokens API shows the sibling set and branch indexes.
    let tokens = server
        .all_pages(
            &format!("/api/runs/{}/tokens", body["id"].as_str().unwrap()),
            100,
        )
        .await;
    let judges: Vec<_> = tokens.iter().filter(|t| t["node"] == "judge").collect();
    assert_eq!(judges.len(), 3);
    assert!(
        judges.iter().all(|t| t["sibling_set"] == "ss_1"),
        "{judges:?}"
    );
    let mut idx: Vec<i64> = judges
        .iter()
        .map(|t| t["branch_index"].as_i64().unwrap())
        .collect();
    idx.sort();
    assert_eq!(idx, [0, 1, 2]);
}
