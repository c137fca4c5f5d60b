//! The cost ledger over HTTP: every attempt that sent a request is counted
//! (a failed one too, with the tokens it was charged), per run in `usage`,
//! and over the run and its child runs in `usage_total`.

use crate::common::Server;
use serde_json::{Value, json};

/// A child whose call fails twice: attempt 1 with an injected outage (a
/// request was sent, no tokens reported), attempt 2 with an answer that does
/// not match `produces` (100 + 20 tokens charged). The failure is routed.
const CHILD: &str = r#"
name: paid_child
initial_node: ask
nodes:
  - ref: ask
    action:
      kind: llm_call
      prompt: vote
      model: flaky
      execution: { retry_policy: { max_attempts: 2, backoff: none } }
  - ref: fallback
    action: { kind: update_context, updates: [ { path: output.code, expr: "state._last_error.code" } ] }
transitions:
  - { from: ask, to: fallback, on: failure }
prompt_specs:
  - ref: vote
    template: "Vote A or B."
    produces: { type: object, required: [vote], properties: { vote: { type: string, enum: [A, B] } } }
model_profiles:
  - ref: flaky
    provider: scripted
    model: flaky-v1
    cost_per_1k_input_tokens: 0.01
    cost_per_1k_output_tokens: 0.02
    script:
      responses: [ { vote: C } ]
      failures: [ { attempt: 1, code: UNAVAILABLE } ]
      usage: { input_tokens: 100, output_tokens: 20 }
"#;

const PARENT: &str = r#"
name: paid_parent
initial_node: call
nodes:
  - ref: call
    action: { kind: workflow_call, workflow: paid_child }
    output_mapping: { state.child_code: "result.code" }
  - ref: own
    action: { kind: llm_call, prompt: vote, model: steady }
    output_mapping: { output.vote: "result.vote" }
transitions:
  - { from: call, to: own }
prompt_specs:
  - ref: vote
    template: "Vote A or B."
    produces: { type: object, required: [vote], properties: { vote: { type: string } } }
model_profiles:
  - ref: steady
    provider: scripted
    model: steady-v1
    cost_per_1k_input_tokens: 1.0
    script:
      responses: [ { vote: A } ]
      usage: { input_tokens: 10, output_tokens: 5 }
"#;

fn usage(v: &Value) -> (u64, u64, u64, f64) {
    (
        v["llm_calls"].as_u64().unwrap(),
        v["input_tokens"].as_u64().unwrap(),
        v["output_tokens"].as_u64().unwrap(),
        (v["cost_usd"].as_f64().unwrap() * 1e6).round() / 1e6,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_are_paid_for_and_usage_total_covers_the_children() {
    let server = Server::start().await;
    for bundle in [CHILD, PARENT] {
        let saved = server
            .post_raw("/api/workflow-defs", "application/yaml", bundle)
            .await;
        assert_eq!(saved.status, 201, "{}", saved.text);
    }
    let run = server
        .post("/api/workflow-defs/paid_parent/runs?wait=true", &json!({}))
        .await;
    assert_eq!(run.status, 201, "{}", run.text);
    assert_eq!(run.body["status"], "completed", "{}", run.text);
    assert_eq!(
        run.body["context"]["state"]["child_code"],
        "SCHEMA_MISMATCH"
    );

    let child_id = run.body["children"][0].as_str().unwrap().to_string();
    let child = server.get(&format!("/api/runs/{child_id}")).await;
    // Two requests sent; only the second was charged tokens.
    assert_eq!(usage(&child.body["usage"]), (2, 100, 20, 0.0014));
    assert_eq!(
        child.body["usage_total"], child.body["usage"],
        "no children"
    );

    assert_eq!(
        usage(&run.body["usage"]),
        (1, 10, 5, 0.01),
        "the parent's own call"
    );
    assert_eq!(
        usage(&run.body["usage_total"]),
        (3, 110, 25, 0.0114),
        "the parent and its child"
    );

    // The failed attempts' events carry what they cost.
    let events = server
        .all_pages(&format!("/api/runs/{child_id}/events"), 100)
        .await;
    let payload = |kind: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))["payload"]
            .clone()
    };
    let retrying = payload("node_retrying");
    assert_eq!(retrying["error"]["code"], "UNAVAILABLE");
    assert_eq!(
        retrying["usage"]["input_tokens"], 0,
        "sent, nothing reported"
    );
    let failed = payload("node_failed");
    assert_eq!(failed["error"]["code"], "SCHEMA_MISMATCH");
    assert_eq!(failed["usage"]["input_tokens"], 100);
    assert_eq!(failed["usage"]["output_tokens"], 20);
}
