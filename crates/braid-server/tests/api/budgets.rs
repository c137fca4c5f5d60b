//! Budgets over HTTP: `limits.max_cost_usd` in the run start body replaces
//! the definition's, and stops the calls that would pass it; a budget out of
//! range is refused, at the start of a run and at the save of a definition,
//! naming its field, with nothing created.

use crate::common::{MockLlm, Server};
use serde_json::{Value, json};

/// Three calls in a row, 0.25 USD each (1,000 tokens at 0.25 per 1k); a
/// failure goes to `stop`, which records its error.
fn bundle(base_url: &str, limits: &str, execution: &str) -> String {
    format!(
        r#"
name: thrifty
initial_node: a
limits: {limits}
nodes:
  - {{ ref: a, action: {{ kind: llm_call, prompt: p, model: m }}, execution: {execution} }}
  - {{ ref: b, action: {{ kind: llm_call, prompt: p, model: m }} }}
  - {{ ref: c, action: {{ kind: llm_call, prompt: p, model: m }} }}
  - ref: stop
    action: {{ kind: update_context, updates: [ {{ path: output.code, expr: "state._last_error.code" }}, {{ path: output.why, expr: "state._last_error.message" }} ] }}
transitions:
  - {{ from: a, to: b }}
  - {{ from: b, to: c }}
  - {{ from: a, to: stop, on: failure }}
  - {{ from: b, to: stop, on: failure }}
  - {{ from: c, to: stop, on: failure }}
prompt_specs:
  - {{ ref: p, template: "Go on" }}
model_profiles:
  - {{ ref: m, provider: openai_compatible, model: gpt-test, base_url: "{base_url}", cost_per_1k_input_tokens: 0.25, max_concurrency: 1 }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_budget_given_at_start_replaces_the_definitions() {
    let llm = MockLlm::start(&Value::String("ok".into()), 1000, 0).await;
    let server = Server::start().await;
    let saved = server
        .post_raw(
            "/api/workflow-defs",
            "application/yaml",
            bundle(&llm.base_url, "{ max_cost_usd: 10 }", "{}"),
        )
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);

    let run = server
        .post(
            "/api/workflow-defs/thrifty/runs?wait=true",
            &json!({ "limits": { "max_cost_usd": 0.5 } }),
        )
        .await;
    assert_eq!(run.status, 201, "{}", run.text);
    assert_eq!(run.body["status"], "completed", "{}", run.text);
    assert_eq!(run.body["limits"]["max_cost_usd"], json!(0.5));
    assert_eq!(
        llm.recorded().len(),
        2,
        "a and b are paid for, c is not sent"
    );
    let output = &run.body["context"]["output"];
    assert_eq!(output["code"], "BUDGET_EXCEEDED");
    let why = output["why"].as_str().unwrap();
    let id = run.body["id"].as_str().unwrap();
    assert!(
        why.contains(&format!("limits.max_cost_usd of run {id}")),
        "{why}"
    );
    assert!(why.contains("0.5 USD spent of 0.5 USD"), "{why}");
    assert_eq!(run.body["usage"]["cost_usd"], json!(0.5));
    assert_eq!(run.body["usage"]["llm_calls"], 2);

    // Out of range: 422 naming the field; of the wrong type: 400 naming it
    // (as for every field of the body). No run either way.
    let before = server.count("/api/runs").await;
    let a = server
        .post(
            "/api/workflow-defs/thrifty/runs",
            &json!({ "limits": { "max_cost_usd": -1 } }),
        )
        .await;
    let e = a.error(422, "INVALID_DEFINITION");
    assert!(
        a.message().contains("limits.max_cost_usd"),
        "{}",
        a.message()
    );
    assert_eq!(e["details"]["errors"][0]["field"], "limits.max_cost_usd");
    let a = server
        .post(
            "/api/workflow-defs/thrifty/runs",
            &json!({ "limits": { "max_cost_usd": "cheap" } }),
        )
        .await;
    a.error(400, "MALFORMED_BODY");
    assert!(
        a.message().contains("limits.max_cost_usd"),
        "{}",
        a.message()
    );
    let a = server
        .post(
            "/api/workflow-defs/thrifty/runs",
            &json!({ "limits": { "max_llm_tokens": -5 } }),
        )
        .await;
    a.error(400, "MALFORMED_BODY");
    assert!(
        a.message().contains("limits.max_llm_tokens"),
        "{}",
        a.message()
    );
    assert_eq!(
        server.count("/api/runs").await,
        before,
        "no run was created"
    );

    // The same budgets out of range in a definition: every one named.
    let a = server
        .post_raw(
            "/api/workflow-defs",
            "application/yaml",
            bundle(
                &llm.base_url,
                "{ max_cost_usd: -0.5 }",
                "{ max_cost_usd: -1 }",
            ),
        )
        .await;
    let e = a.error(422, "INVALID_DEFINITION");
    let fields: Vec<(&str, &str)> = e["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["kind"].as_str().unwrap(), p["field"].as_str().unwrap()))
        .collect();
    assert!(
        fields.contains(&("workflow", "limits.max_cost_usd")),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("node", "execution.max_cost_usd")),
        "{fields:?}"
    );
    let a = server
        .post_raw(
            "/api/workflow-defs",
            "application/yaml",
            bundle(&llm.base_url, "{ max_llm_tokens: -1 }", "{}"),
        )
        .await;
    let e = a.error(422, "INVALID_DEFINITION");
    assert_eq!(
        e["details"]["errors"][0]["field"], "limits.max_llm_tokens",
        "{}",
        a.text
    );
}
