//! Retries, timeouts and failure routing against a real local HTTP provider.

mod common;

use braid_store::RunStatus;
use common::*;
use serde_json::json;
use std::sync::atomic::Ordering;

fn flaky(url: &str, retry: &str, timeout_ms: u64) -> String {
    format!(
        r#"
name: flaky
initial_node: call
nodes:
  - ref: call
    action: {{ kind: llm_call, prompt: p, model: m, execution: {{ timeout_ms: {timeout_ms}, retry_policy: {retry} }} }}
    output_mapping: {{ output.text: "result.text" }}
  - ref: fallback
    action: {{ kind: update_context, updates: [ {{ path: output.fallback, expr: "state._last_error.code" }}, {{ path: output.attempt, expr: "state._last_error.attempt" }} ] }}
transitions:
  - {{ from: call, to: fallback, on: failure, condition: "state._last_error.code == 'UNAVAILABLE' || state._last_error.code == 'TIMEOUT'" }}
prompt_specs:
  - {{ ref: p, template: "hello" }}
model_profiles:
{}
"#,
        openai_profile(url, "")
    )
}

/// An engine with `flaky` saved (its retry policy and timeout).
async fn flaky_engine(url: &str, retry: &str, timeout_ms: u64) -> TestEngine {
    let t = engine().await;
    t.save(&flaky(url, retry, timeout_ms)).await;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_503s_then_success_takes_three_attempts() {
    let mock = MockLlm::start(|n, _| {
        if n < 2 {
            Plan::status(503)
        } else {
            Plan::ok("fine")
        }
    })
    .await;
    let t = flaky_engine(
        &mock.url,
        "{ max_attempts: 3, backoff: exponential, initial_delay_ms: 10 }",
        5000,
    )
    .await;
    let run = t.run("flaky", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(run.context["output"]["text"], json!("fine"));
    assert_eq!(mock.requests().len(), 3);
    let events = t.events(&run.id).await;
    let retrying: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "node_retrying")
        .collect();
    assert_eq!(retrying.len(), 2);
    assert_eq!(retrying[0].payload["error"]["code"], json!("UNAVAILABLE"));
    assert_eq!(retrying[1].payload["attempt"], json!(2));
    let started: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "node_started")
        .map(|e| e.payload["attempt"].clone())
        .collect();
    assert_eq!(
        started,
        [json!(1), json!(2), json!(3)],
        "every attempt has its node_started"
    );
    let completed = events.iter().find(|e| e.kind == "node_completed").unwrap();
    assert_eq!(completed.payload["attempt"], json!(3));
    let tokens = t
        .engine
        .store()
        .tokens(&run.id, None, 10)
        .await
        .unwrap()
        .items;
    assert_eq!(tokens[0].attempts, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_route_to_the_failure_node_on_last_error_code() {
    // Attempt 1 fails with 503 (UNAVAILABLE), attempt 2 with a timeout: the
    // route sees the last code, not the first.
    let mock = MockLlm::start(|n, _| {
        if n == 0 {
            Plan::status(503)
        } else {
            Plan::never()
        }
    })
    .await;
    let t = flaky_engine(
        &mock.url,
        "{ max_attempts: 2, initial_delay_ms: 5, backoff: linear }",
        300,
    )
    .await;
    let run = t.run("flaky", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(
        run.context["output"],
        json!({ "fallback": "TIMEOUT", "attempt": 2 })
    );
    assert_eq!(mock.requests().len(), 2);
    let events = t.events(&run.id).await;
    let retrying = events.iter().find(|e| e.kind == "node_retrying").unwrap();
    assert_eq!(retrying.payload["error"]["code"], json!("UNAVAILABLE"));
    let failed = events.iter().find(|e| e.kind == "node_failed").unwrap();
    assert_eq!(failed.payload["error"]["code"], json!("TIMEOUT"));
    assert!(
        events
            .iter()
            .any(|e| e.kind == "transition_taken" && e.payload["to"] == json!("fallback"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_retry_waits_for_retry_after() {
    let mock = MockLlm::start(|n, _| {
        if n == 0 {
            Plan::status(429).header("retry-after", "1")
        } else {
            Plan::ok("ok")
        }
    })
    .await;
    let t = flaky_engine(&mock.url, "{ max_attempts: 2, initial_delay_ms: 1 }", 5000).await;
    let run = t.run("flaky", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    let times = mock.request_times();
    assert_eq!(times.len(), 2);
    assert!(
        times[1] - times[0] >= std::time::Duration::from_millis(1000),
        "waited {:?}",
        times[1] - times[0]
    );
    let events = t.events(&run.id).await;
    let r = events.iter().find(|e| e.kind == "node_retrying").unwrap();
    assert_eq!(
        (
            r.payload["error"]["code"].clone(),
            r.payload["delay_ms"].clone()
        ),
        (json!("RATE_LIMITED"), json!(1000))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_not_retried_and_unrouted_fails_the_run_naming_the_node() {
    let mock = MockLlm::start(|_, _| Plan::status(400)).await;
    let t = flaky_engine(&mock.url, "{ max_attempts: 5, initial_delay_ms: 1 }", 5000).await;
    let run = t.run("flaky", json!({})).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(mock.requests().len(), 1);
    let err = run.error.unwrap();
    assert_eq!(err["code"], json!("INVALID_REQUEST"));
    assert_eq!(
        (
            err["node"].clone(),
            err["action"].clone(),
            err["attempt"].clone()
        ),
        (json!("call"), json!("call.action"), json!(1))
    );
    assert!(err["message"].as_str().unwrap().contains("400"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_aborts_the_call_is_retried_then_routed() {
    let mock = MockLlm::start(|_, _| Plan::never()).await;
    let t = flaky_engine(&mock.url, "{ max_attempts: 2, initial_delay_ms: 1 }", 150).await;
    let run = t.run("flaky", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(
        run.context["output"],
        json!({ "fallback": "TIMEOUT", "attempt": 2 })
    );
    // Both attempts' HTTP requests were really dropped.
    mock.until(|s| s.aborted.load(Ordering::SeqCst) == 2).await;
    assert_eq!(mock.state.inflight.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_branch_is_routed_inside_its_branch_and_the_join_sees_it_ended() {
    let mock = MockLlm::start(|_, body| {
        let prompt = body["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_string();
        if prompt.ends_with('1') {
            Plan::status(400)
        } else {
            Plan::ok(r#"{"vote":"A"}"#)
        }
    })
    .await;
    let yaml = format!(
        r#"
name: branches
initial_node: fan
nodes:
  - {{ ref: fan, action: {{ kind: update_context }} }}
  - ref: judge
    action: {{ kind: llm_call, prompt: p, model: m }}
    output_mapping: {{ state.vote: "result.vote" }}
  - ref: abstain
    action: {{ kind: update_context, updates: [ {{ path: state.vote, expr: "'abstain:' + state._last_error.code" }} ] }}
  - {{ ref: tally, fan_in: all, joins: fan, merge: {{ source: vote, target: state.votes, strategy: collect }}, action: {{ kind: update_context, updates: [ {{ path: output.votes, expr: "state.votes" }} ] }} }}
  - {{ ref: dead_end, action: {{ kind: update_context }} }}
transitions:
  - {{ from: fan, to: judge, spawn_count: 3 }}
  - {{ from: judge, to: tally, condition: "_branch.index != 2" }}
  - {{ from: judge, to: dead_end, priority: 1 }}
  - {{ from: judge, to: abstain, on: failure }}
  - {{ from: abstain, to: tally }}
prompt_specs:
  - {{ ref: p, template: "judge {{{{_branch.index}}}}", produces: {{ type: object, properties: {{ vote: {{ type: string }} }} }} }}
model_profiles:
{}
"#,
        openai_profile(&mock.url, "")
    );
    let t = engine().await;
    t.save(&yaml).await;
    let run = t.run("branches", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    // Branch 1 failed and was routed to `abstain` inside the branch; branch 2 ended at a terminal node.
    assert_eq!(
        run.context["output"]["votes"],
        json!(["A", "abstain:INVALID_REQUEST"])
    );
    assert!(
        run.context["state"].get("_last_error").is_none(),
        "a branch's error stays in the branch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_renewed_so_a_long_call_is_delivered_once() {
    // The call is held until its lease has been renewed past several lease
    // periods; without renewal another process could claim it again.
    let lease_ms = 200;
    let mock = MockLlm::start(|_, _| Plan::ok("slow but fine").held()).await;
    let t = engine_with(braid_runtime::Options {
        lease_ms,
        poll_ms: 20,
        ..Default::default()
    })
    .await;
    t.save(&flaky(&mock.url, "{ max_attempts: 1 }", 60_000))
        .await;
    let watch = async {
        mock.until(|s| s.requests.lock().unwrap().len() == 1).await;
        let store = t.engine.store();
        let first = store
            .next_task_due()
            .await
            .unwrap()
            .expect("the task is queued");
        // Waits (bounded) for the lease to move three periods past its first expiry.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let due = store.next_task_due().await.unwrap().expect("still queued");
            if due >= first + 3 * lease_ms {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the lease was not renewed: {due} vs {first}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(lease_ms as u64 / 4)).await;
        }
        mock.release(1);
    };
    let (run, ()) = tokio::join!(t.run("flaky", json!({})), watch);
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(mock.requests().len(), 1, "delivered exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_timeout_from_the_run_overrides_the_definition() {
    let mock = MockLlm::start(|_, _| Plan::never()).await;
    let t = engine().await;
    t.save(&flaky(&mock.url, "{ max_attempts: 1 }", 60_000).replace(
        "initial_node: call",
        "initial_node: call\nlimits: { timeout_ms: 60000 }",
    ))
    .await;
    let limits = braid_core::definition::Limits {
        timeout_ms: Some(150),
        ..Default::default()
    };
    let id = t
        .engine
        .start_run(&t.project, "flaky", None, json!({}), Some(limits))
        .await
        .unwrap();
    let run = t
        .engine
        .wait(&id, std::time::Duration::from_secs(20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(
        run.error.unwrap()["code"],
        json!("RUN_TIMEOUT"),
        "not routable to the failure node"
    );
    assert_eq!(run.limits["timeout_ms"], json!(150));
    mock.until(|s| s.aborted.load(Ordering::SeqCst) == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scripts_and_parameters_are_rejected_at_save() {
    let t = engine().await;
    let bundle = braid_core::definition::Bundle::parse(
        r#"
name: bad_profiles
initial_node: a
nodes:
  - { ref: a, action: { kind: llm_call, prompt: p, model: s } }
prompt_specs:
  - { ref: p, template: x }
model_profiles:
  - { ref: s, provider: scripted, model: x, script: { responses: [], unknown_knob: 1 }, parameters: { temperature: "hot", seed: 3 } }
"#,
    )
    .unwrap();
    match t.engine.save_definition(&t.project, &bundle).await {
        Err(braid_runtime::Error::InvalidDefinition(errors)) => {
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert!(
                fields.contains(&"script")
                    && fields.contains(&"parameters.seed")
                    && fields.contains(&"parameters"),
                "{errors:?}"
            );
            assert!(
                errors
                    .iter()
                    .all(|e| e.kind == "model_profile" && e.ref_ == "s")
            );
        }
        other => panic!("expected InvalidDefinition, got {other:?}"),
    }
    assert!(
        t.engine
            .store()
            .list_workflows(&t.project, None, 10)
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing written"
    );
}
