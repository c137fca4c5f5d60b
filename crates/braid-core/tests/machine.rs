//! The state machine without IO: inputs in, events and commands out, and
//! the state rebuilt from the events always equals the live state.

mod common;

use braid_core::definition::{Bundle, Limits};
use braid_core::event::{EventBody, LlmExchange, Usage};
use braid_core::graph::{self, Env};
use braid_core::protocol::{Command, Input, Outcome, TaskPayload};
use braid_core::state::{RunStatus, TokenStatus, UsageTotals};
use common::*;
use serde_json::json;

const CHAIN: &str = r#"
name: chain
input_schema: { type: object, required: [n], properties: { n: { type: integer } } }
output_schema: { type: object, required: [total], properties: { total: { type: integer } } }
initial_node: a
nodes:
  - ref: a
    action: { kind: update_context, updates: [ { path: state.count, expr: "input.n" }, { path: state.double, expr: "state.count * 2" } ] }
  - ref: b
    action: { kind: update_context, updates: [ { path: state.count, expr: "state.count + 1" } ] }
  - ref: c
    action: { kind: update_context, updates: [ { path: output.total, expr: "state.count + state.double" } ] }
transitions:
  - { from: a, to: b }
  - { from: b, to: c }
"#;

#[test]
fn pure_chain_runs_inline_in_one_step_and_completes_once() {
    let mut run = Run::new(CHAIN);
    let step = run.start(json!({ "n": 4 }));
    assert!(
        dispatches(&step).is_empty(),
        "update_context never needs an executor"
    );
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    assert_eq!(run.st.context.output, json!({ "total": 13 }));
    assert_eq!(
        run.st.context.state["double"],
        json!(8),
        "each update sees the previous writes"
    );
    assert_eq!(step.commands.last(), Some(&Command::RunEnded));
    assert_eq!(run.kinds().first(), Some(&"workflow_started"));
    assert_eq!(run.kinds().last(), Some(&"workflow_completed"));
    assert_eq!(
        run.kinds()
            .iter()
            .filter(|k| **k == "transition_taken")
            .count(),
        2
    );
    assert!(
        run.st
            .tokens
            .iter()
            .all(|t| t.status == TokenStatus::Completed)
    );
    assert_eq!(run.st.live, 0);
    // Anything after the end is ignored.
    let step = run.apply(Input::Cancel {
        reason: "late".into(),
    });
    assert!(step.events.is_empty() && step.commands.is_empty());
}

#[test]
fn input_and_output_schemas_are_enforced() {
    let mut run = Run::new(CHAIN);
    run.start(json!({ "n": "four" }));
    assert_eq!(run.st.status, Some(RunStatus::Failed));
    let err = run.st.error.clone().unwrap();
    assert_eq!(err.code, "INPUT_SCHEMA");
    assert!(err.message.contains("/n"), "{}", err.message);

    let mut run = Run::new(&CHAIN.replace("output.total", "output.other"));
    run.start(json!({ "n": 1 }));
    assert_eq!(run.st.error.clone().unwrap().code, "OUTPUT_SCHEMA");
}

const LLM: &str = r#"
name: llm
initial_node: ask
nodes:
  - ref: ask
    action: judge
    input_mapping: { topic: "input.topic" }
    output_mapping: { state.vote: "result.vote" }
  - ref: yes
    action: { kind: update_context, updates: [ { path: output.winner, expr: "'yes'" } ] }
  - ref: no
    action: { kind: update_context, updates: [ { path: output.winner, expr: "'no'" } ] }
  - ref: broken
    action: { kind: update_context, updates: [ { path: output.winner, expr: "'handled ' + state._last_error.code" } ] }
transitions:
  - { from: ask, to: yes, condition: "state.vote == 'A'" }
  - { from: ask, to: no, condition: "state.vote == 'B'", priority: 1 }
  - { from: ask, to: broken, on: failure, condition: "state._last_error.code == 'UNAVAILABLE' || state._last_error.code == 'NO_MATCHING_TRANSITION'" }
actions:
  - ref: judge
    kind: llm_call
    prompt: p
    model: m
    execution: { timeout_ms: 1000, retry_policy: { max_attempts: 3, backoff: exponential, initial_delay_ms: 100 } }
prompt_specs:
  - { ref: p, system: "You judge {{topic}}.", template: "Topic: {{topic}}; vote A or B", produces: { type: object, properties: { vote: { type: string } } } }
model_profiles:
  - { ref: m, provider: scripted, model: s, script: { responses: [ { vote: A } ] } }
"#;

#[test]
fn llm_call_is_dispatched_with_rendered_prompt_and_routed_by_condition() {
    let mut run = Run::new(LLM);
    let step = run.start(json!({ "topic": "tabs vs spaces" }));
    let d = dispatches(&step);
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].token.as_str(), d[0].attempt, d[0].timeout_ms),
        ("tk_1", 1, Some(1000))
    );
    match &d[0].payload {
        TaskPayload::LlmCall {
            model,
            system,
            prompt,
            produces,
            ..
        } => {
            assert_eq!(model, "m");
            assert_eq!(system.as_deref(), Some("You judge tabs vs spaces."));
            assert_eq!(prompt, "Topic: tabs vs spaces; vote A or B");
            assert!(produces.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(run.st.tokens[0].status, TokenStatus::Running);

    // B: the priority-1 transition matches after the priority-0 one does not.
    let result = Input::TaskResult {
        token: "tk_1".into(),
        attempt: 1,
        outcome: ok(json!({ "vote": "B" })),
    };
    run.apply(result.clone());
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    assert_eq!(run.st.context.output, json!({ "winner": "no" }));
    assert_eq!(run.st.context.state["vote"], json!("B"));
    // A duplicate delivery of the same result is a no-op.
    let n = run.log.len();
    let step = run.apply(result);
    assert!(step.events.is_empty());
    assert_eq!(run.log.len(), n);
}

#[test]
fn retries_follow_policy_then_failure_is_routed_with_last_error() {
    let mut run = Run::new(LLM);
    run.start(json!({ "topic": "x" }));
    // Attempt 1 fails with a retryable code: retry_wait, attempt 2 queued 100 ms ±10 % later.
    let step = run.apply(Input::TaskResult {
        token: "tk_1".into(),
        attempt: 1,
        outcome: fail("UNAVAILABLE"),
    });
    let d = dispatches(&step);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].attempt, 2);
    let delay = d[0].not_before - run.now;
    assert!((90..=110).contains(&delay), "delay {delay}");
    assert_eq!(run.st.tokens[0].status, TokenStatus::RetryWait);
    match &step.events[0].body {
        EventBody::NodeRetrying {
            attempt,
            error,
            delay_ms,
            ..
        } => {
            assert_eq!(
                (*attempt, error.code.as_str(), *delay_ms as i64),
                (1, "UNAVAILABLE", delay)
            );
        }
        other => panic!("{other:?}"),
    }
    // A stale result for attempt 1 is ignored.
    assert!(
        run.apply(Input::TaskResult {
            token: "tk_1".into(),
            attempt: 1,
            outcome: ok(json!({}))
        })
        .events
        .is_empty()
    );
    // The executor reports the start of attempt 2.
    run.apply(Input::TaskStarted {
        token: "tk_1".into(),
        attempt: 2,
    });
    assert_eq!(run.st.tokens[0].status, TokenStatus::Running);
    let step = run.apply(Input::TaskResult {
        token: "tk_1".into(),
        attempt: 2,
        outcome: fail("UNAVAILABLE"),
    });
    assert_eq!(dispatches(&step)[0].attempt, 3);
    let delay = dispatches(&step)[0].not_before - run.now;
    assert!((180..=220).contains(&delay), "exponential: {delay}");
    run.apply(Input::TaskStarted {
        token: "tk_1".into(),
        attempt: 3,
    });
    run.apply(Input::TaskResult {
        token: "tk_1".into(),
        attempt: 3,
        outcome: fail("UNAVAILABLE"),
    });
    // Last attempt failed: routed on failure to `broken`, which reads _last_error.
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    assert_eq!(
        run.st.context.output,
        json!({ "winner": "handled UNAVAILABLE" })
    );
    assert!(
        run.st.context.state.get("_last_error").is_none(),
        "removed once the next node succeeds"
    );
    assert_eq!(run.st.tokens[0].status, TokenStatus::Failed);
    assert_eq!(
        run.kinds()
            .iter()
            .filter(|k| **k == "node_retrying")
            .count(),
        2
    );
}

#[test]
fn failed_attempts_are_paid_for_in_the_run_and_the_token() {
    let mut run = Run::new(LLM);
    run.start(json!({ "topic": "x" }));
    let paid = |input_tokens, output_tokens, cost_usd| Usage {
        input_tokens,
        output_tokens,
        cost_usd,
        ..Usage::default()
    };
    let exchange = |attempt: u32, usage| {
        Some(Box::new(LlmExchange {
            attempt: 99, // the core records the attempt it applies
            provider: "openai".into(),
            model: "m".into(),
            request_id: None,
            sent_at: 1_000,
            wait_ms: 3,
            duration_ms: 5,
            messages: json!([{ "role": "user", "content": format!("try {attempt}") }]),
            response: Some(json!({ "attempt": attempt })),
            error: None,
            usage: Some(usage),
        }))
    };
    // Attempt 1 reached the provider and failed: its usage is spent money.
    let mut first = fail("UNAVAILABLE");
    if let Outcome::Failure { usage, llm, .. } = &mut first {
        *usage = Some(paid(10, 2, 0.25));
        *llm = exchange(1, paid(10, 2, 0.25));
    }
    let step = run.apply(Input::TaskResult {
        token: "tk_1".into(),
        attempt: 1,
        outcome: first,
    });
    match &step.events[0].body {
        EventBody::LlmRequest(x) => {
            assert_eq!(
                (x.attempt, x.response.clone()),
                (1, Some(json!({ "attempt": 1 })))
            );
        }
        other => panic!("llm_request comes first: {other:?}"),
    }
    match &step.events[1].body {
        EventBody::NodeRetrying { usage, .. } => assert_eq!(usage, &Some(paid(10, 2, 0.25))),
        other => panic!("{other:?}"),
    }
    run.apply(Input::TaskStarted {
        token: "tk_1".into(),
        attempt: 2,
    });
    let step = run.apply(Input::TaskResult {
        token: "tk_1".into(),
        attempt: 2,
        outcome: Outcome::Success {
            result: json!({ "vote": "A" }),
            usage: Some(paid(5, 5, 0.5)),
            duration_ms: 5,
            llm: exchange(2, paid(5, 5, 0.5)),
        },
    });
    let kinds: Vec<&str> = step.events.iter().map(|e| e.body.kind()).collect();
    assert_eq!(&kinds[..2], ["llm_request", "node_completed"], "{kinds:?}");
    assert_eq!(step.events[0].token_id.as_deref(), Some("tk_1"));
    let expected = UsageTotals {
        llm_calls: 2,
        input_tokens: 15,
        output_tokens: 7,
        cost_usd: 0.75,
    };
    assert_eq!(
        run.st.usage, expected,
        "both attempts count, failed one included"
    );
    assert_eq!(run.st.tokens[0].usage, expected, "the token's ledger row");
    assert!(run.st.tokens[1..].iter().all(|t| t.usage.is_zero()));
}

#[test]
fn non_retryable_error_and_no_matching_transition_are_routed() {
    // A 400-style error is not retried; unrouted (the failure condition does not match) it fails the run.
    let mut run = Run::new(LLM);
    run.start(json!({ "topic": "x" }));
    let step = run.apply(Input::TaskResult {
        token: "tk_1".into(),
        attempt: 1,
        outcome: fail("INVALID_REQUEST"),
    });
    assert!(dispatches(&step).is_empty());
    assert_eq!(run.st.status, Some(RunStatus::Failed));
    let err = run.st.error.clone().unwrap();
    assert_eq!(
        (
            err.code.as_str(),
            err.node.as_deref(),
            err.action.as_deref(),
            err.attempt
        ),
        ("INVALID_REQUEST", Some("ask"), Some("judge"), Some(1))
    );

    // Success whose transitions all fail to match: NO_MATCHING_TRANSITION, routed to `broken`.
    let mut run = Run::new(LLM);
    run.start(json!({ "topic": "x" }));
    run.apply(Input::TaskResult {
        token: "tk_1".into(),
        attempt: 1,
        outcome: ok(json!({ "vote": "C" })),
    });
    assert_eq!(
        run.st.context.output,
        json!({ "winner": "handled NO_MATCHING_TRANSITION" })
    );
}

#[test]
fn runtime_expression_errors_fail_the_node_with_expression() {
    let yaml = r#"
name: e
initial_node: a
nodes:
  - ref: a
    action: { kind: update_context, updates: [ { path: state.x, expr: "state.missing.deeper + 1" } ] }
"#;
    let mut run = Run::new(yaml);
    run.start(json!({}));
    let err = run.st.error.clone().unwrap();
    assert_eq!(err.code, "EXPRESSION");
    assert!(
        err.message.contains("state.missing.deeper + 1") && err.message.contains("`a`"),
        "{}",
        err.message
    );
    assert!(
        run.st.context.state.get("x").is_none(),
        "nothing half-written"
    );
}

#[test]
fn template_errors_fail_the_node_with_template() {
    let mut run = Run::new(&LLM.replace("Topic: {{topic}}", "Topic: {{nope}}"));
    run.start(json!({ "topic": "x" }));
    assert_eq!(run.st.error.clone().unwrap().code, "TEMPLATE");
}

#[test]
fn cancel_ends_the_run_and_ignores_late_results() {
    let mut run = Run::new(LLM);
    run.start(json!({ "topic": "x" }));
    let step = run.apply(Input::Cancel {
        reason: "user asked".into(),
    });
    assert_eq!(run.st.status, Some(RunStatus::Cancelled));
    assert!(
        step.commands
            .contains(&Command::CancelTasks(vec!["tk_1".into()]))
    );
    assert_eq!(run.st.tokens[0].status, TokenStatus::Cancelled);
    assert!(
        run.apply(Input::TaskResult {
            token: "tk_1".into(),
            attempt: 1,
            outcome: ok(json!({ "vote": "A" }))
        })
        .events
        .is_empty()
    );
    assert_eq!(run.kinds().last(), Some(&"workflow_cancelled"));
}

#[test]
fn bounded_loop_runs_target_n_plus_one_times_then_exits() {
    let yaml = r#"
name: l
initial_node: init
nodes:
  - ref: init
    action: { kind: update_context, updates: [ { path: state.i, expr: "0" } ] }
  - ref: work
    action: { kind: update_context, updates: [ { path: state.i, expr: "state.i + 1" }, { path: state.seen, expr: "_loop" } ] }
  - ref: done
    action: { kind: update_context, updates: [ { path: output.i, expr: "state.i" } ] }
transitions:
  - { from: init, to: work }
  - { ref: again, from: work, to: work, loop: { max_iterations: 3 } }
  - { from: work, to: done, priority: 1 }
"#;
    let mut run = Run::new(yaml);
    run.start(json!({}));
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    assert_eq!(run.st.context.output, json!({ "i": 4 }));
    assert_eq!(run.st.context.state["seen"], json!({ "again": 3 }));
}

#[test]
fn run_timeout_fails_the_run_and_is_not_routable() {
    // A failure transition that takes any error: a routable timeout would
    // reach `broken`.
    let yaml = LLM.replace(
        r#"on: failure, condition: "state._last_error.code == 'UNAVAILABLE' || state._last_error.code == 'NO_MATCHING_TRANSITION'" }"#,
        "on: failure }",
    );
    assert_ne!(yaml, LLM);
    let mut run = Run::new(&yaml);
    run.start(json!({ "topic": "x" }));
    run.apply(Input::RunTimeout);
    assert_eq!(run.st.error.clone().unwrap().code, "RUN_TIMEOUT");
    assert_eq!(run.st.status, Some(RunStatus::Failed));
    assert!(
        !run.log.iter().any(|e| e.node.as_deref() == Some("broken")),
        "the failure route was taken"
    );
    assert_eq!(run.st.context.output.get("winner"), None);
}

#[test]
fn token_limit_fails_the_run() {
    let mut run = Run::new(CHAIN);
    run.apply(Input::Start {
        input: json!({ "n": 1 }),
        limits: Limits {
            timeout_ms: None,
            max_run_tokens: Some(2),
            ..Limits::default()
        },
        artifacts: None,
    });
    assert_eq!(run.st.status, Some(RunStatus::Failed));
    assert_eq!(run.st.error.clone().unwrap().code, "TOKEN_LIMIT");
}

/// A spawn count past u64 sums (two counts of 2^64 - 1) is over any limit:
/// TOKEN_LIMIT, not an overflow panic or a wrapped sum that passes.
#[test]
fn a_huge_spawn_count_is_the_token_limit_not_an_overflow() {
    let mut run = Run::new(
        r#"
name: huge
initial_node: fan
nodes:
  - { ref: fan, fan_out: all, action: { kind: update_context } }
  - { ref: a, action: { kind: update_context } }
  - { ref: b, action: { kind: update_context } }
transitions:
  - { from: fan, to: a, spawn_count: "input.n" }
  - { from: fan, to: b, spawn_count: "input.n" }
"#,
    );
    run.start(json!({ "n": u64::MAX }));
    assert_eq!(run.st.status, Some(RunStatus::Failed));
    assert_eq!(run.st.error.clone().unwrap().code, "TOKEN_LIMIT");
}

fn errors(yaml: &str) -> Vec<(String, String, String)> {
    let bundle = Bundle::parse(yaml).expect("parses");
    match graph::compile(&bundle, &Env::default()) {
        Ok(_) => Vec::new(),
        Err(es) => es.into_iter().map(|e| (e.kind, e.ref_, e.field)).collect(),
    }
}

#[test]
fn validation_reports_every_problem_at_once() {
    let yaml = r#"
name: bad
initial_node: a
nodes:
  - ref: a
    action: { kind: update_context, updates: [ { path: state.x, expr: "1 +" }, { path: input.y, expr: "1" } ] }
  - ref: island
    action: { kind: update_context, updates: [ { path: state.z, expr: "secret.value" } ] }
  - ref: a
    action: nope
  - ref: c
    action: { kind: llm_call, prompt: missing, model: gone }
transitions:
  - { from: a, to: ghost }
  - { from: a, to: c, condition: "state.x >" }
  - { from: c, to: a }
"#;
    let es = errors(yaml);
    let has = |k: &str, r: &str, f: &str| es.iter().any(|e| e.0 == k && e.1 == r && e.2 == f);
    assert!(
        has("action", "a.action", "updates[0].expr"),
        "bad CEL: {es:?}"
    );
    assert!(
        has("action", "a.action", "updates[1].path"),
        "input.* is read-only: {es:?}"
    );
    assert!(
        has("action", "island.action", "updates[0].expr"),
        "unknown identifier: {es:?}"
    );
    assert!(has("node", "a", "ref"), "duplicate ref: {es:?}");
    assert!(has("node", "island", "ref"), "unreachable: {es:?}");
    assert!(has("node", "a", "action"), "unknown action: {es:?}");
    assert!(
        has("action", "c.action", "prompt") && has("action", "c.action", "model"),
        "{es:?}"
    );
    assert!(has("transition", "a->ghost", "to"), "unknown node: {es:?}");
    assert!(has("transition", "a->c", "condition"), "{es:?}");
    assert!(
        es.iter().any(|e| e.2 == "transitions"),
        "cycle without loop: {es:?}"
    );
}

#[test]
fn validation_of_joins_loops_and_schemas() {
    let es = errors(
        r#"
name: j
initial_node: a
input_schema: { type: not_a_type }
nodes:
  - { ref: a, action: { kind: update_context } }
  - { ref: b, action: { kind: update_context }, fan_in: { m_of_n: 5 }, joins: a }
  - { ref: c, action: { kind: update_context }, fan_in: all }
transitions:
  - { from: a, to: b, spawn_count: 3 }
  - { from: b, to: c }
  - { from: c, to: a, loop: { max_iterations: 2 } }
"#,
    );
    let has = |k: &str, r: &str, f: &str| es.iter().any(|e| e.0 == k && e.1 == r && e.2 == f);
    assert!(has("workflow", "j", "input_schema"), "{es:?}");
    assert!(
        has("node", "b", "fan_in.m_of_n"),
        "m_of_n > static count: {es:?}"
    );
    assert!(has("node", "c", "joins"), "fan_in without joins: {es:?}");
    assert!(has("transition", "c->a", "ref"), "loop needs a ref: {es:?}");
    assert_eq!(es.len(), 4, "{es:?}");
}

#[test]
fn malformed_bundles_name_the_field() {
    let err = Bundle::parse("name: x\ninitial_node: a\nnodes:\n  - ref: a\n    action: { kind: update_context }\n    fan_out: sideways\n").unwrap_err();
    assert!(err.to_string().contains("nodes[0].fan_out"), "{err}");
    let err = Bundle::parse("{ \"name\": ").unwrap_err();
    assert!(err.to_string().contains("invalid JSON"), "{err}");
    let err = Bundle::parse("name: [unclosed").unwrap_err();
    assert!(err.to_string().contains("invalid YAML"), "{err}");
    assert!(Bundle::parse("- 1\n- 2\n").is_err());
}

#[test]
fn canonical_content_ignores_key_order_and_format() {
    let a = Bundle::parse(CHAIN).unwrap();
    let json = serde_json::to_string(&a).unwrap();
    let b = Bundle::parse(&json).unwrap();
    assert_eq!(a.canonical(), b.canonical());
    let c = Bundle::parse(&CHAIN.replace("input.n", "input.n + 0")).unwrap();
    assert_ne!(a.canonical(), c.canonical());
}

#[test]
fn the_layout_is_kept_but_is_not_content_and_names_only_nodes() {
    let plain = Bundle::parse(CHAIN).unwrap();
    let first = plain.nodes[0].ref_.clone();
    let laid_out = Bundle::parse(&format!(
        "{CHAIN}\nlayout: {{ {first}: {{ x: 10, y: -2.5 }} }}\n"
    ))
    .unwrap();
    assert_eq!(laid_out.layout[&first].x, 10.0);
    assert_eq!(laid_out.canonical(), plain.canonical());
    let json = serde_json::to_value(&laid_out).unwrap();
    assert_eq!(
        json["layout"][&first],
        serde_json::json!({ "x": 10.0, "y": -2.5 })
    );
    assert!(graph::compile(&laid_out, &Env::default()).is_ok());

    let err = Bundle::parse(&format!("{CHAIN}\nlayout: {{ {first}: {{ x: 1 }} }}\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("layout") && err.contains("`y`"), "{err}");
    let mut stray = laid_out.clone();
    stray.layout.insert("ghost".into(), stray.layout[&first]);
    let problems = graph::compile(&stray, &Env::default()).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        (problems[0].kind.as_str(), problems[0].field.as_str()),
        ("workflow", "layout.ghost")
    );
    assert!(problems[0].message.contains("`ghost`"), "{problems:?}");
}

#[test]
fn a_misspelt_inline_action_kind_names_the_known_kinds() {
    let err = Bundle::parse(
        "name: x\ninitial_node: a\nnodes:\n  - ref: a\n    action: { kind: update_contxt }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("nodes[0].action")
            && err.contains("update_contxt")
            && err.contains("update_context"),
        "{err}"
    );
}

#[test]
fn unknown_fields_in_actions_are_rejected_not_dropped() {
    let err = Bundle::parse("name: x\ninitial_node: a\nnodes:\n  - ref: a\n    action: { kind: update_context, timeout_ms: 5 }\n").unwrap_err().to_string();
    assert!(
        err.contains("nodes[0].action")
            && err.contains("unknown field `timeout_ms`")
            && err.contains("`execution`"),
        "{err}"
    );
    let err = Bundle::parse("name: x\ninitial_node: a\nnodes:\n  - { ref: a, action: c }\nactions:\n  - { ref: c, kind: llm_call, prompt: p, model: m, temperature: 1 }\n").unwrap_err().to_string();
    assert!(
        err.contains("actions[0]") && err.contains("unknown field `temperature`"),
        "{err}"
    );
}

#[test]
fn targets_and_names_that_cannot_work_are_rejected_at_save() {
    let es = errors(
        r#"
name: t
initial_node: a
output_mapping: { x: "_loop.again" }
nodes:
  - { ref: a, action: { kind: update_context, updates: [ { path: artifacts.doc, expr: "'forged'" } ] }, output_mapping: { input.y: "1" } }
"#,
    );
    let has = |k: &str, r: &str, f: &str| es.iter().any(|e| e.0 == k && e.1 == r && e.2 == f);
    assert!(
        has("action", "a.action", "updates[0].path"),
        "artifacts.* is not writable: {es:?}"
    );
    assert!(
        has("node", "a", "output_mapping.input.y"),
        "input.* is not writable: {es:?}"
    );
    assert!(
        has("workflow", "t", "output_mapping.x"),
        "no _loop at completion: {es:?}"
    );
}

#[test]
fn branches_that_can_miss_their_join_are_warned_about() {
    let warnings = |yaml: &str| {
        graph::compile(&Bundle::parse(yaml).unwrap(), &Env::default())
            .unwrap()
            .warnings
            .into_iter()
            .map(|w| (w.ref_, w.field))
            .collect::<Vec<_>>()
    };
    let joined = r#"
name: w
initial_node: fan
nodes:
  - { ref: fan, action: { kind: update_context } }
  - { ref: work, action: { kind: update_context } }
  - { ref: join, fan_in: all, joins: fan, action: { kind: update_context } }
transitions:
  - { from: fan, to: work, spawn_count: 2 }
  - { from: work, to: join }
"#;
    assert!(warnings(joined).is_empty(), "every branch reaches the join");
    let leaky = joined.replace(
        "transitions:\n",
        "  - { ref: dead_end, action: { kind: update_context } }\ntransitions:\n  - { from: work, to: dead_end, priority: 1 }\n",
    );
    assert_eq!(
        warnings(&leaky),
        [("fan".to_string(), "transitions".to_string())]
    );
    let unjoined = "name: u\ninitial_node: fan\nnodes:\n  - { ref: fan, action: { kind: update_context } }\n  - { ref: work, action: { kind: update_context } }\ntransitions:\n  - { from: fan, to: work, spawn_count: 2 }\n";
    assert_eq!(warnings(unjoined).len(), 1, "a fan-out nobody joins");
}
