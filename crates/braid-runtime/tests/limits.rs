//! Provider limits shared by endpoint (SPEC §4), against a local provider
//! that enforces the same rate limit a real one does (429 when its bucket is
//! empty) and counts the calls it has in flight: several versions of a
//! workflow draw from one limiter, a workload within the declared limits
//! never earns a 429, and waiting for the limits is not counted against
//! the attempt's timeout.

mod common;

use braid_store::RunStatus;
use common::*;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A workflow of `n` `llm_call` branches; `extra` goes into the model
/// profile, `tag` into the prompt (so that each version saved differs).
/// A failed branch is routed to the join, so that every call is made.
fn fan_out(url: &str, n: u64, extra: &str, tag: &str, timeout_ms: u64) -> String {
    format!(
        r#"
name: fan
initial_node: start
nodes:
  - {{ ref: start, action: {{ kind: update_context }} }}
  - ref: ask
    action: {{ kind: llm_call, prompt: p, model: m, execution: {{ timeout_ms: {timeout_ms} }} }}
    output_mapping: {{ state.answer: "result.text" }}
  - ref: failed
    action: {{ kind: update_context, updates: [ {{ path: state.answer, expr: "state._last_error.code" }} ] }}
  - {{ ref: join, fan_in: all, joins: start, merge: {{ source: answer, target: state.answers, strategy: append }}, action: {{ kind: update_context, updates: [ {{ path: output.answers, expr: "state.answers" }} ] }} }}
transitions:
  - {{ from: start, to: ask, spawn_count: {n} }}
  - {{ from: ask, to: join }}
  - {{ from: ask, to: failed, on: failure }}
  - {{ from: failed, to: join }}
prompt_specs:
  - {{ ref: p, template: "{tag} {{{{_branch.index}}}}" }}
model_profiles:
{}
"#,
        openai_profile(url, extra)
    )
}

/// Saves three versions of `fan` and runs one run of each at once; returns
/// the finished runs and how long they took together.
async fn three_versions(
    t: &TestEngine,
    url: &str,
    n: u64,
    extra: &str,
) -> (Vec<braid_store::RunRecord>, Duration) {
    let mut versions = Vec::new();
    for v in 1..=3 {
        t.save(&fan_out(url, n, extra, &format!("v{v}"), 60_000))
            .await;
        versions.push(v);
    }
    let start = Instant::now();
    let mut ids = Vec::new();
    for v in versions {
        ids.push(
            t.engine
                .start_run(&t.project, "fan", Some(v), json!({}), None)
                .await
                .unwrap(),
        );
    }
    let mut runs = Vec::new();
    for id in ids {
        let run = t.engine.wait(&id, Duration::from_secs(60)).await.unwrap();
        runs.push(run.expect("the run ended"));
    }
    (runs, start.elapsed())
}

fn answers_of(run: &braid_store::RunRecord, what: &str) -> usize {
    run.context["output"]["answers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a.as_str() == Some(what))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_versions_within_the_shared_rate_limit_never_earn_a_429() {
    let mock = MockLlm::start_limited(600, |_, _| Plan::ok("ok")).await;
    let t = engine().await;
    let (runs, took) = three_versions(
        &t,
        &mock.url,
        250,
        ", rate_limit: { requests_per_minute: 600 }",
    )
    .await;
    for run in &runs {
        assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
        let failed: Vec<&serde_json::Value> = run.context["output"]["answers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a.as_str() != Some("ok"))
            .collect();
        assert!(
            failed.is_empty(),
            "calls of {} failed: {failed:?}; bucket levels at the 429s: {:?}",
            run.id,
            mock.state.refused_at.lock().unwrap()
        );
        assert_eq!(answers_of(run, "ok"), 250);
    }
    assert_eq!(mock.state.rejected.load(Ordering::SeqCst), 0, "no 429");
    assert_eq!(mock.requests().len(), 750);
    // One bucket for the three versions: 600 at once, then 10 a second, so
    // the 750th call goes 15 s after the first.
    let expected = Duration::from_secs(15);
    assert!(
        took >= expected.mul_f64(0.9) && took <= expected.mul_f64(1.1),
        "750 calls at 600 a minute took {took:?}, expected about {expected:?}"
    );
    // The last calls waited for the bucket, and the wait is on their attempt.
    let waits: Vec<u64> = {
        let mut waits = Vec::new();
        for run in &runs {
            for e in t.events(&run.id).await {
                if e.kind == "llm_request" {
                    waits.push(e.payload["wait_ms"].as_u64().unwrap());
                }
            }
        }
        waits
    };
    assert_eq!(waits.len(), 750);
    let longest = *waits.iter().max().unwrap();
    assert!(
        longest >= 13_000,
        "the 750th call waited about 15 s minus the burst, not {longest} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_rate_limit_the_same_workload_earns_429s() {
    let mock = MockLlm::start_limited(600, |_, _| Plan::ok("ok")).await;
    let t = engine().await;
    let start = Instant::now();
    let (runs, _) = three_versions(&t, &mock.url, 250, "").await;
    let elapsed = start.elapsed().as_secs_f64();
    let rejected = mock.state.rejected.load(Ordering::SeqCst);
    let answered = mock.requests().len();
    // No retries: each refused call is routed to the join as RATE_LIMITED.
    let limited: usize = runs.iter().map(|r| answers_of(r, "RATE_LIMITED")).sum();
    assert_eq!(limited, rejected);
    assert_eq!(answered + rejected, 750);
    // The provider lets 600 through at once and 10 a second after that.
    assert!(
        answered as f64 <= 600.0 + 10.0 * elapsed + 1.0,
        "{answered} answered in {elapsed:.1} s"
    );
    // How many depends on how fast the engine sends (about 150 when the
    // 750 go within a few seconds); that some are refused is the point.
    assert!(rejected > 0, "none refused in {elapsed:.1} s");
    eprintln!("without a limit: {rejected} of 750 calls refused with 429 in {elapsed:.1} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_is_shared_by_two_versions_and_waiting_is_not_timed() {
    // Each call takes 100 ms; a call's timeout is 300 ms, far less than the
    // queue of 80 calls behind 8 slots (1 s): waiting must not count.
    let mock = MockLlm::start(|_, _| Plan::ok("ok").after(100)).await;
    let t = engine().await;
    for v in 1..=2 {
        t.save(&fan_out(
            &mock.url,
            40,
            ", max_concurrency: 8",
            &format!("v{v}"),
            300,
        ))
        .await;
    }
    let mut ids = Vec::new();
    for v in 1..=2 {
        ids.push(
            t.engine
                .start_run(&t.project, "fan", Some(v), json!({}), None)
                .await
                .unwrap(),
        );
    }
    for id in ids {
        let run = t
            .engine
            .wait(&id, Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
        assert_eq!(answers_of(&run, "ok"), 40, "no call timed out while queued");
        t.assert_replay_matches(&run).await;
    }
    assert_eq!(mock.requests().len(), 80);
    assert_eq!(
        mock.state.max_inflight.load(Ordering::SeqCst),
        8,
        "8 calls in flight at most across both versions, and 8 reached"
    );
}
