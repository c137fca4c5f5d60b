//! The node inspector (`GET /api/runs/{id}/tokens/{token_id}`) over real
//! HTTP, with an OpenAI-format provider on 127.0.0.1: both attempts of a
//! retried `llm_call` with their rendered messages, raw responses, tokens
//! and cost; the `llm_request` events; mapped inputs, also one stored out of
//! line; a parent's calling token and `usage_total`.

use crate::common::Server;
use braid_testkit::{MockLlm, Plan, chat_completion, openai_profile};
use serde_json::{Value, json};

fn child(url: &str) -> String {
    format!(
        r#"
name: inspected_child
initial_node: prepare
nodes:
  - ref: prepare
    input_mapping: {{ topic: "input.topic", size: "size(input.topic)", pad: "input.pad" }}
    action: {{ kind: update_context, updates: [ {{ path: state.topic, expr: "input.topic" }} ] }}
  - ref: judge
    input_mapping: {{ subject: "state.topic" }}
    action:
      kind: llm_call
      prompt: vote
      model: m
      execution: {{ retry_policy: {{ max_attempts: 2, backoff: none, retryable_errors: [SCHEMA_MISMATCH] }} }}
    output_mapping: {{ output.vote: "result.vote" }}
transitions:
  - {{ from: prepare, to: judge }}
prompt_specs:
  - ref: vote
    system: You are a strict judge.
    template: "Judge {{{{subject}}}}: answer A or B."
    produces: {{ type: object, required: [vote], properties: {{ vote: {{ type: string, enum: [A, B] }} }} }}
model_profiles:
{}
"#,
        openai_profile(url, "")
    )
}

const PARENT: &str = r#"
name: inspected_parent
initial_node: call
nodes:
  - ref: call
    input_mapping: { topic: "input.topic", pad: "input.pad" }
    action: { kind: workflow_call, workflow: inspected_child }
    output_mapping: { output.vote: "result.vote" }
"#;

/// `(llm_calls, input_tokens, output_tokens, cost_usd)` of a usage object.
fn usage(v: &Value) -> (u64, u64, u64, f64) {
    (
        v["llm_calls"].as_u64().unwrap(),
        v["input_tokens"].as_u64().unwrap(),
        v["output_tokens"].as_u64().unwrap(),
        (v["cost_usd"].as_f64().unwrap() * 1e6).round() / 1e6,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_shows_every_attempt_of_a_retried_llm_call() {
    // Attempt 1 answers a vote outside `produces` (SCHEMA_MISMATCH, still
    // charged 12 + 3 tokens); attempt 2 answers a valid one.
    let llm = MockLlm::start(|i, _| match i {
        0 => Plan::ok(r#"{"vote":"C"}"#),
        _ => Plan::ok(r#"{"vote":"A"}"#),
    })
    .await;
    let server = Server::start().await;
    for bundle in [child(&llm.url), PARENT.to_string()] {
        let saved = server
            .post_raw("/api/workflow-defs", "application/yaml", bundle)
            .await;
        assert_eq!(saved.status, 201, "{}", saved.text);
    }
    // Larger than 64 KiB: the mapped inputs holding it are stored out of line.
    let pad = "x".repeat(70 * 1024);
    let run = server
        .post(
            "/api/workflow-defs/inspected_parent/runs?wait=true",
            &json!({ "input": { "topic": "tea", "pad": pad } }),
        )
        .await;
    assert_eq!(run.status, 201, "{}", run.text);
    assert_eq!(run.body["status"], "completed", "{}", run.text);
    assert_eq!(run.body["context"]["output"]["vote"], "A");
    let parent_id = run.body["id"].as_str().unwrap().to_string();
    let child_id = run.body["children"][0].as_str().unwrap().to_string();

    // One attempt costs 12 × 0.5/1k + 3 × 1.5/1k = 0.0105; both count.
    let child_run = server.get(&format!("/api/runs/{child_id}")).await;
    assert_eq!(usage(&child_run.body["usage"]), (2, 24, 6, 0.021));
    assert_eq!(
        usage(&run.body["usage"]),
        (0, 0, 0, 0.0),
        "no call of its own"
    );
    assert_eq!(usage(&run.body["usage_total"]), (2, 24, 6, 0.021));

    // The calling token: the child it started, the input it passed.
    let call = server
        .get(&format!("/api/runs/{parent_id}/tokens/tk_1"))
        .await;
    assert_eq!(call.status, 200, "{}", call.text);
    assert_eq!(call.body["node"], "call");
    assert_eq!(call.body["child_run_id"], child_id.as_str());
    assert_eq!(call.body["input"], json!({ "topic": "tea", "pad": pad }));
    assert_eq!(call.body["result"], json!({ "vote": "A" }));
    assert_eq!(call.body["attempts"][0]["outcome"], "completed");

    // update_context with an input_mapping shows its input, put back whole
    // although the stored event only refers to it.
    let prepare = server
        .get(&format!("/api/runs/{child_id}/tokens/tk_1"))
        .await;
    assert_eq!(prepare.status, 200, "{}", prepare.text);
    assert_eq!(
        prepare.body["input"],
        json!({ "topic": "tea", "size": 3, "pad": pad })
    );
    assert_eq!(prepare.body["writes"], json!(["state.topic"]));
    let events = server
        .all_pages(&format!("/api/runs/{child_id}/events"), 1000)
        .await;
    let started = events
        .iter()
        .find(|e| e["kind"] == "node_started" && e["node"] == "prepare")
        .unwrap();
    assert!(
        started["payload"]["input"]["$result"].is_string(),
        "stored out of line: {}",
        started["payload"]["input"]
    );

    // The judge: both attempts, each with what was sent and what came back.
    let judge = server
        .get(&format!("/api/runs/{child_id}/tokens/tk_2"))
        .await;
    assert_eq!(judge.status, 200, "{}", judge.text);
    let d = &judge.body;
    assert_eq!(
        (d["node"].as_str(), d["status"].as_str()),
        (Some("judge"), Some("completed"))
    );
    assert_eq!(d["parent_token_id"], "tk_1");
    assert_eq!(d["input"], json!({ "subject": "tea" }));
    assert_eq!(d["result"], json!({ "vote": "A" }));
    assert_eq!(d["writes"], json!(["output.vote"]));
    assert_eq!(usage(&d["usage"]), (2, 24, 6, 0.021));
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{d}");
    let sent = llm.requests();
    assert_eq!(sent.len(), 2);
    let messages = json!([
        { "role": "system", "content": "You are a strict judge." },
        { "role": "user", "content": "Judge tea: answer A or B." }
    ]);
    for (i, (a, vote, outcome)) in [(1, "C", "retrying"), (2, "A", "completed")]
        .into_iter()
        .enumerate()
    {
        let got = &attempts[i];
        assert_eq!(got["attempt"], a);
        assert_eq!(got["outcome"], outcome, "{got}");
        let llm_detail = &got["llm"];
        assert_eq!(llm_detail["messages"], messages);
        assert_eq!(
            llm_detail["messages"], sent[i]["messages"],
            "exactly what was sent"
        );
        assert_eq!(
            llm_detail["response"],
            chat_completion(&format!(r#"{{"vote":"{vote}"}}"#)),
            "the raw response body"
        );
        assert_eq!(
            (
                &llm_detail["provider"],
                &llm_detail["model"],
                &llm_detail["request_id"]
            ),
            (
                &json!("openai_compatible"),
                &json!("gpt-test"),
                &json!("chatcmpl-test")
            )
        );
        assert_eq!(
            usage(
                &json!({ "llm_calls": 1, "input_tokens": llm_detail["input_tokens"], "output_tokens": llm_detail["output_tokens"], "cost_usd": llm_detail["cost_usd"] })
            ),
            (1, 12, 3, 0.0105)
        );
        for field in ["queued_at", "started_at", "ended_at"] {
            assert!(got[field].is_string(), "{field}: {got}");
        }
        assert!(
            got["started_at"].as_str() <= got["ended_at"].as_str(),
            "{got}"
        );
        assert!(
            got["queued_at"].as_str() <= got["ended_at"].as_str(),
            "{got}"
        );
        assert!(
            got["wait_ms"].is_u64() && got["duration_ms"].is_u64(),
            "{got}"
        );
    }
    assert_eq!(attempts[0]["error"]["code"], "SCHEMA_MISMATCH");
    assert!(attempts[1].get("error").is_none());
    assert_eq!(
        attempts[1]["queued_at"].as_str(),
        attempts[0]["ended_at"].as_str(),
        "a retry is queued when the failure is recorded"
    );

    // The token's events are exactly those between first_seq and last_seq;
    // each llm_request comes just before its attempt's outcome.
    let (first, last) = (
        d["first_seq"].as_i64().unwrap(),
        d["last_seq"].as_i64().unwrap(),
    );
    let mine: Vec<&Value> = events.iter().filter(|e| e["token_id"] == "tk_2").collect();
    assert_eq!(mine.first().unwrap()["seq"].as_i64(), Some(first));
    assert_eq!(mine.last().unwrap()["seq"].as_i64(), Some(last));
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let requests: Vec<usize> = (0..kinds.len())
        .filter(|&i| kinds[i] == "llm_request")
        .collect();
    assert_eq!(requests.len(), 2, "{kinds:?}");
    assert_eq!(kinds[requests[0] + 1], "node_retrying", "{kinds:?}");
    assert_eq!(kinds[requests[1] + 1], "node_completed", "{kinds:?}");
    let first_request = &events[requests[0]]["payload"];
    assert_eq!(first_request["attempt"], 1);
    assert_eq!(first_request["error"]["code"], "SCHEMA_MISMATCH");
    assert_eq!(first_request["usage"]["input_tokens"], 12);
    assert!(first_request["sent_at"].is_i64() && first_request["wait_ms"].is_u64());

    // Unknown token or run: 404 naming it.
    let missing = server
        .get(&format!("/api/runs/{child_id}/tokens/tk_99"))
        .await;
    assert!(
        missing.error(404, "NOT_FOUND")["message"]
            .as_str()
            .unwrap()
            .contains("tk_99")
    );
    let missing = server.get("/api/runs/run_nope/tokens/tk_1").await;
    assert!(
        missing.error(404, "NOT_FOUND")["message"]
            .as_str()
            .unwrap()
            .contains("run_nope")
    );
}
