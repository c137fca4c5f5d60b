//! Budgets (SPEC §5) against a local OpenAI-format provider whose answers
//! report 1,000 input tokens at 0.25 USD per 1k (0.25 USD a call, exact in
//! binary, so sums and limits compare exactly): a spent budget stops the
//! calls that would follow, as a routable `BUDGET_EXCEEDED` failure that is
//! never retried, whether the budget is the run's, an ancestor's (a child
//! run spends from its parent's) or a node visit's, in USD or in tokens;
//! failed attempts that were charged count; and a run recovered after a
//! restart keeps what it had spent.

mod common;

use braid_core::event::EventBody;
use braid_runtime::Options;
use braid_store::{RunRecord, RunStatus};
use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Every call costs this.
const CALL_USD: f64 = 0.25;

/// An answer charged 1,000 input tokens (0.25 USD at the profile's price).
fn paid(content: &str) -> Plan {
    let mut body = chat_completion(content);
    body["usage"] = json!({ "prompt_tokens": 1000, "completion_tokens": 0, "total_tokens": 1000 });
    Plan {
        body,
        ..Plan::ok(content)
    }
}

/// A model profile `m` on the mock: 0.25 USD per 1k tokens, one call at a
/// time (so each call has finished before the next one checks).
fn profile(url: &str) -> String {
    format!(
        "  - {{ ref: m, provider: openai_compatible, model: gpt-test, base_url: \"{url}\", cost_per_1k_input_tokens: 0.25, cost_per_1k_output_tokens: 0.25, max_concurrency: 1 }}"
    )
}

/// `n` judges in parallel under `limits`; a failed judge goes to
/// `fallback`, which records its error; the join collects every branch.
/// `execution` is the judges' (retries that would retry a spent budget).
fn panel(url: &str, n: u64, limits: &str, execution: &str) -> String {
    format!(
        r#"
name: panel
initial_node: start
limits: {limits}
nodes:
  - {{ ref: start, action: {{ kind: update_context }} }}
  - ref: judge
    action: {{ kind: llm_call, prompt: p, model: m, execution: {execution} }}
    output_mapping: {{ state.vote: "result.text" }}
  - ref: fallback
    action: {{ kind: update_context, updates: [ {{ path: state.vote, expr: "state._last_error.code" }}, {{ path: state.why, expr: "state._last_error.message" }} ] }}
  - {{ ref: tally, fan_in: all, joins: start, merge: {{ source: "*", target: state.branches, strategy: collect }}, action: {{ kind: update_context, updates: [ {{ path: output.branches, expr: "state.branches" }} ] }} }}
transitions:
  - {{ from: start, to: judge, spawn_count: {n} }}
  - {{ from: judge, to: tally }}
  - {{ from: judge, to: fallback, on: failure }}
  - {{ from: fallback, to: tally }}
prompt_specs:
  - {{ ref: p, template: "Judge {{{{_branch.index}}}}: A or B?" }}
model_profiles:
{}
"#,
        profile(url)
    )
}

/// The branches' outputs of a finished panel.
fn branches(run: &RunRecord) -> Vec<Value> {
    run.context["output"]["branches"]
        .as_array()
        .unwrap_or_else(|| panic!("no branches in {}", run.context))
        .clone()
}

/// The messages of the branches stopped by a budget.
fn stopped(run: &RunRecord) -> Vec<String> {
    branches(run)
        .iter()
        .filter(|b| b["vote"] == "BUDGET_EXCEEDED")
        .map(|b| b["why"].as_str().unwrap().to_string())
        .collect()
}

fn cost(run: &RunRecord) -> f64 {
    run.usage["cost_usd"].as_f64().unwrap_or(0.0)
}

async fn kinds(t: &TestEngine, run_id: &str, kind: &str) -> Vec<Value> {
    t.events(run_id)
        .await
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.payload)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panel_of_ten_stops_after_the_six_calls_its_budget_pays_for() {
    let mock = MockLlm::start(|_, _| paid("A")).await;
    let t = engine().await;
    // Retries would retry BUDGET_EXCEEDED if it were retryable: it is not.
    let execution = "{ retry_policy: { max_attempts: 3, retryable_errors: [BUDGET_EXCEEDED] } }";
    t.save(&panel(&mock.url, 10, "{ max_cost_usd: 1.5 }", execution))
        .await;
    let run = t.run("panel", json!({})).await;

    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(
        mock.requests().len(),
        6,
        "exactly six calls reach the provider"
    );
    let voted = branches(&run).iter().filter(|b| b["vote"] == "A").count();
    assert_eq!(voted, 6);
    let messages = stopped(&run);
    assert_eq!(messages.len(), 4, "four judges routed to the fallback");
    for m in &messages {
        assert!(
            m.contains(&format!("limits.max_cost_usd of run {}", run.id)),
            "names the budget: {m}"
        );
        assert!(
            m.contains("1.5 USD spent of 1.5 USD"),
            "spent and limit: {m}"
        );
    }
    assert_eq!(cost(&run), 6.0 * CALL_USD);
    assert_eq!(run.usage["llm_calls"], 6, "a stopped call sent nothing");
    // Failed once each, never retried, and no request recorded for them.
    let failed = kinds(&t, &run.id, "node_failed").await;
    assert_eq!(failed.len(), 4);
    assert!(
        failed
            .iter()
            .all(|f| f["error"]["code"] == "BUDGET_EXCEEDED")
    );
    assert!(failed.iter().all(|f| f["attempt"] == 1), "{failed:?}");
    assert!(kinds(&t, &run.id, "node_retrying").await.is_empty());
    assert_eq!(kinds(&t, &run.id, "llm_request").await.len(), 6);
}

const CHILD: &str = r#"
name: worker
initial_node: start
limits: { max_cost_usd: 100 }
nodes:
  - { ref: start, action: { kind: update_context } }
  - ref: ask
    action: { kind: llm_call, prompt: p, model: m }
    output_mapping: { state.vote: "result.text" }
  - ref: fallback
    action: { kind: update_context, updates: [ { path: state.vote, expr: "state._last_error.code" }, { path: state.why, expr: "state._last_error.message" } ] }
  - { ref: tally, fan_in: all, joins: start, merge: { source: "*", target: state.branches, strategy: collect }, action: { kind: update_context, updates: [ { path: output.branches, expr: "state.branches" } ] } }
transitions:
  - { from: start, to: ask, spawn_count: 4 }
  - { from: ask, to: tally }
  - { from: ask, to: fallback, on: failure }
  - { from: fallback, to: tally }
prompt_specs:
  - { ref: p, template: "Work {{_branch.index}}" }
model_profiles:
"#;

const PARENT: &str = r#"
name: boss
initial_node: first
limits: { max_cost_usd: 1.0 }
nodes:
  - ref: first
    action: { kind: llm_call, prompt: p, model: m }
  - ref: delegate
    action: { kind: workflow_call, workflow: worker }
    output_mapping: { state.child: "result.branches" }
  - ref: last
    action: { kind: llm_call, prompt: p, model: m }
    output_mapping: { output.last: "result.text" }
  - ref: fallback
    action: { kind: update_context, updates: [ { path: output.last, expr: "state._last_error.code" }, { path: output.why, expr: "state._last_error.message" } ] }
transitions:
  - { from: first, to: delegate }
  - { from: delegate, to: last }
  - { from: last, to: fallback, on: failure }
prompt_specs:
  - { ref: p, template: "Boss" }
model_profiles:
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_spends_from_its_parents_budget_and_both_are_stopped() {
    let mock = MockLlm::start(|_, _| paid("done")).await;
    let t = engine().await;
    t.save(&format!("{CHILD}{}", profile(&mock.url))).await;
    t.save(&format!("{PARENT}{}", profile(&mock.url))).await;
    let run = t.run("boss", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);

    // 1 USD pays for four calls: the parent's first, three of the child's.
    assert_eq!(mock.requests().len(), 4);
    let child = t.only_child(&run.id).await;
    assert_eq!(child.status, RunStatus::Completed, "{:?}", child.error);
    assert_eq!(
        child.limits["max_cost_usd"],
        json!(0.75),
        "the child's limit is what was left of the parent's, not its own 100"
    );
    let messages = stopped(&child);
    assert_eq!(messages.len(), 1, "{:?}", child.context);
    assert!(
        messages[0].contains(&format!("of run {}", child.id)),
        "{}",
        messages[0]
    );
    assert!(
        messages[0].contains("0.75 USD spent of 0.75 USD"),
        "{}",
        messages[0]
    );
    assert_eq!(cost(&child), 3.0 * CALL_USD);

    // The parent's last call finds its own budget spent by the child.
    let output = &run.context["output"];
    assert_eq!(output["last"], "BUDGET_EXCEEDED");
    let why = output["why"].as_str().unwrap();
    assert!(
        why.contains(&format!("limits.max_cost_usd of run {}", run.id)),
        "{why}"
    );
    assert!(why.contains("1 USD spent of 1 USD"), "{why}");
    assert_eq!(cost(&run), CALL_USD, "the parent's own call");
    let total = t.engine.store().usage_total(&run.id).await.unwrap();
    assert_eq!(total.cost_usd, 1.0);
}

/// One node that retries answers not matching `produces`; the mock answers
/// every call with JSON that lacks `vote`, charged like any other.
fn retrying_judge(url: &str, limits: &str, node_execution: &str) -> String {
    format!(
        r#"
name: stubborn
initial_node: start
limits: {limits}
nodes:
  - {{ ref: start, action: {{ kind: update_context }} }}
  - ref: judge
    action: {{ kind: llm_call, prompt: p, model: m, execution: {{ retry_policy: {{ max_attempts: 5, retryable_errors: [SCHEMA_MISMATCH] }} }} }}
    execution: {node_execution}
  - ref: fallback
    action: {{ kind: update_context, updates: [ {{ path: state.vote, expr: "state._last_error.code" }}, {{ path: state.why, expr: "state._last_error.message" }} ] }}
  - {{ ref: tally, fan_in: all, joins: start, merge: {{ source: "*", target: state.branches, strategy: collect }}, action: {{ kind: update_context, updates: [ {{ path: output.branches, expr: "state.branches" }} ] }} }}
transitions:
  - {{ from: start, to: judge, spawn_count: 2 }}
  - {{ from: judge, to: tally }}
  - {{ from: judge, to: fallback, on: failure }}
  - {{ from: fallback, to: tally }}
prompt_specs:
  - {{ ref: p, template: "Vote", produces: {{ type: object, required: [vote], properties: {{ vote: {{ type: string }} }} }} }}
model_profiles:
{}
"#,
        profile(url)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_that_were_charged_spend_the_budget() {
    let mock = MockLlm::start(|_, _| paid(r#"{"verdict": "A"}"#)).await;
    let t = engine().await;
    t.save(&retrying_judge(&mock.url, "{ max_cost_usd: 0.5 }", "{}"))
        .await;
    let run = t.run("stubborn", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    // Two answers that failed the schema paid for the budget: nothing more.
    assert_eq!(mock.requests().len(), 2);
    let messages = stopped(&run);
    assert_eq!(messages.len(), 2, "both branches end on the budget");
    for m in &messages {
        assert!(m.contains("0.5 USD spent of 0.5 USD"), "{m}");
    }
    let retrying = kinds(&t, &run.id, "node_retrying").await;
    assert_eq!(retrying.len(), 2);
    assert!(
        retrying
            .iter()
            .all(|r| r["error"]["code"] == "SCHEMA_MISMATCH")
    );
    assert!(
        retrying
            .iter()
            .all(|r| r["usage"]["cost_usd"] == json!(CALL_USD))
    );
    assert_eq!(cost(&run), 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_budget_and_a_node_visit_budget_each_stop_calls() {
    let mock = MockLlm::start(|_, _| paid("A")).await;
    let t = engine().await;
    // Tokens: 1,000 a call, 2,500 allowed: the third call reaches it.
    t.save(&panel(&mock.url, 5, "{ max_llm_tokens: 2500 }", "{}"))
        .await;
    let run = t.run("panel", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(mock.requests().len(), 3);
    let messages = stopped(&run);
    assert_eq!(messages.len(), 2);
    for m in &messages {
        assert!(
            m.contains(&format!("limits.max_llm_tokens of run {}", run.id)),
            "{m}"
        );
        assert!(m.contains("3000 tokens spent of 2500 tokens"), "{m}");
    }

    // A visit's budget: each of the two judges pays for two attempts (its
    // retries), then its third finds the visit's 0.5 USD spent. The run
    // itself has no budget.
    let mock = MockLlm::start(|_, _| paid(r#"{"verdict": "A"}"#)).await;
    t.save(&retrying_judge(&mock.url, "{}", "{ max_cost_usd: 0.5 }"))
        .await;
    let run = t.run("stubborn", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(mock.requests().len(), 4, "two attempts per visit");
    let messages = stopped(&run);
    assert_eq!(messages.len(), 2);
    for m in &messages {
        assert!(m.contains("execution.max_cost_usd of node judge"), "{m}");
        assert!(m.contains("0.5 USD spent of 0.5 USD"), "{m}");
    }
    let failed = kinds(&t, &run.id, "node_failed").await;
    assert!(failed.iter().all(|f| f["attempt"] == 3), "{failed:?}");
    assert_eq!(cost(&run), 1.0);
}

/// A chain of five calls; the third fails once with an outage and retries
/// after a delay long enough to go through the durable queue.
fn chain(url: &str) -> String {
    let calls = ["c1", "c2", "c3", "c4", "c5"];
    let mut nodes = String::new();
    let mut transitions = String::new();
    for (i, c) in calls.iter().enumerate() {
        nodes.push_str(&format!(
            "  - {{ ref: {c}, action: {{ kind: llm_call, prompt: p, model: m }}, execution: {{ retry_policy: {{ max_attempts: 2, backoff: linear, initial_delay_ms: 2500 }} }}, output_mapping: {{ state.{c}: \"result.text\" }} }}\n"
        ));
        if let Some(next) = calls.get(i + 1) {
            transitions.push_str(&format!("  - {{ from: {c}, to: {next} }}\n"));
        }
        transitions.push_str(&format!("  - {{ from: {c}, to: stop, on: failure }}\n"));
    }
    format!(
        r#"
name: chain
initial_node: c1
limits: {{ max_cost_usd: 1.0 }}
nodes:
{nodes}  - {{ ref: stop, action: {{ kind: update_context, updates: [ {{ path: output.why, expr: "state._last_error.message" }}, {{ path: output.node, expr: "state._last_error.node" }} ] }} }}
transitions:
{transitions}prompt_specs:
  - {{ ref: p, template: "Next" }}
model_profiles:
{}
"#,
        profile(url)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_run_keeps_what_it_had_spent() {
    // Calls 1 and 2 answer; call 3 meets an outage (nothing charged) and
    // retries in 2.5 s, by which time the engine has been restarted.
    let mock = MockLlm::start(|n, _| {
        if n == 2 {
            Plan::status(503)
        } else {
            paid("ok")
        }
    })
    .await;
    let t = engine().await;
    t.save(&chain(&mock.url)).await;
    let mut events = t.engine.subscribe();
    let id = t
        .engine
        .start_run(&t.project, "chain", None, json!({}), None)
        .await
        .unwrap();
    // Wait until the retry is durable: nothing of the run is in flight.
    let retrying = async {
        loop {
            let batch = events.recv().await.expect("events");
            if batch.run_id == id
                && batch
                    .events
                    .iter()
                    .any(|e| matches!(e.body, EventBody::NodeRetrying { .. }))
            {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), retrying)
        .await
        .expect("c3 waits for its retry");
    assert_eq!(mock.requests().len(), 3);
    t.engine.shutdown(Duration::from_secs(5)).await;

    // A new engine on the same file adopts the run, with 0.5 USD spent.
    let store = braid_store_sqlite::SqliteStore::open_path(t.dir.path().join("braid.db"))
        .await
        .unwrap();
    let engine = braid_runtime::Engine::start(Arc::new(store), Options::default())
        .await
        .unwrap();
    let run = engine
        .wait(&id, Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the run ended");
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    // c3 (retried) and c4 spend the rest; c5 is stopped. Without what was
    // spent before the restart, c5 would have been sent too.
    assert_eq!(mock.requests().len(), 5);
    assert_eq!(run.context["output"]["node"], "c5");
    let why = run.context["output"]["why"].as_str().unwrap();
    assert!(
        why.contains(&format!("limits.max_cost_usd of run {id}")),
        "{why}"
    );
    assert!(why.contains("1 USD spent of 1 USD"), "{why}");
    assert_eq!(cost(&run), 1.0);
    assert_eq!(run.usage["llm_calls"], 5, "the outage was a request too");
}
