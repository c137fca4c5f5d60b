//! Fan-out, branch scopes, joins and merges in the pure core.

mod common;

use braid_core::event::EventBody;
use braid_core::protocol::{Input, TaskPayload};
use braid_core::state::{RunStatus, TokenStatus};
use common::*;
use serde_json::json;

fn judges(fan_in: &str, early: &str, strategy: &str) -> String {
    format!(
        r#"
name: judges
initial_node: ask
nodes:
  - ref: ask
    action: {{ kind: update_context, updates: [ {{ path: state.question, expr: "'q?'" }} ] }}
  - ref: judge
    action: judge_llm
    output_mapping: {{ state.vote: "result.vote" }}
  - ref: tally
    fan_in: {fan_in}
    joins: ask
    on_early_complete: {early}
    merge: {{ source: vote, target: state.votes, strategy: {strategy} }}
    action: {{ kind: update_context, updates: [ {{ path: output.votes, expr: "state.votes" }} ] }}
transitions:
  - {{ from: ask, to: judge, spawn_count: 3 }}
  - {{ from: judge, to: tally }}
actions:
  - {{ ref: judge_llm, kind: llm_call, prompt: p, model: m }}
prompt_specs:
  - {{ ref: p, template: "{{{{state.question}}}} judge {{{{_branch.index}}}} of {{{{_branch.total}}}}" }}
model_profiles:
  - {{ ref: m, provider: scripted, model: s, script: {{ responses: [ "x" ] }} }}
"#
    )
}

fn vote(run: &mut Run, token: &str, v: &str) {
    run.apply(Input::TaskResult {
        token: token.into(),
        attempt: 1,
        outcome: ok(json!({ "vote": v })),
    });
}

#[test]
fn spawn_count_creates_a_sibling_set_and_join_all_appends_in_branch_order() {
    let mut run = Run::new(&judges("all", "cancel", "append"));
    let step = run.start(json!({}));
    let d = dispatches(&step);
    assert_eq!(d.len(), 3, "three judges dispatched at once");
    let prompts: Vec<String> = d
        .iter()
        .map(|d| match &d.payload {
            TaskPayload::LlmCall {
                prompt,
                branch_index,
                ..
            } => format!("{prompt}|{branch_index:?}"),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        prompts,
        [
            "q? judge 0 of 3|Some(0)",
            "q? judge 1 of 3|Some(1)",
            "q? judge 2 of 3|Some(2)"
        ]
    );
    assert_eq!(
        run.kinds()
            .iter()
            .filter(|k| **k == "token_spawned")
            .count(),
        3
    );
    // Completion order 2, 0, 1; the merge is still in branch order.
    vote(&mut run, "tk_4", "C");
    vote(&mut run, "tk_2", "A");
    assert_eq!(run.st.status, Some(RunStatus::Running));
    assert!(
        run.st.context.state.get("vote").is_none(),
        "branch writes never touch the root scope"
    );
    vote(&mut run, "tk_3", "B");
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    assert_eq!(run.st.context.output, json!({ "votes": ["A", "B", "C"] }));
    let fired: Vec<&EventBody> = run
        .log
        .iter()
        .map(|e| &e.body)
        .filter(|b| matches!(b, EventBody::FanInCompleted { .. }))
        .collect();
    assert_eq!(fired.len(), 1, "the join fires exactly once");
    match fired[0] {
        EventBody::FanInCompleted {
            merged,
            strategy,
            target,
            ..
        } => {
            // The arrived tokens (at the join), in branch order: branch 2 arrived first as tk_5.
            assert_eq!(merged, &["tk_6", "tk_7", "tk_5"].map(String::from).to_vec());
            assert_eq!(
                (strategy.as_deref(), target.as_deref()),
                (Some("append"), Some("state.votes"))
            );
        }
        _ => unreachable!(),
    }
    assert_eq!(
        run.st
            .tokens
            .iter()
            .filter(|t| t.status == TokenStatus::Merged)
            .count(),
        3
    );
}

#[test]
fn every_merge_strategy_has_its_shape() {
    let cases = [
        ("collect", json!(["A", "B", "C"])),
        ("keyed_by_branch", json!({ "0": "A", "1": "B", "2": "C" })),
        ("last_wins", json!("B")),
    ];
    for (strategy, expected) in cases {
        let mut run = Run::new(&judges("all", "cancel", strategy));
        run.start(json!({}));
        vote(&mut run, "tk_4", "C");
        vote(&mut run, "tk_2", "A");
        vote(&mut run, "tk_3", "B");
        assert_eq!(run.st.context.output["votes"], expected, "{strategy}");
    }
    // merge_object over `*` (the whole branch output): higher index wins.
    let yaml = judges("all", "cancel", "merge_object")
        .replace("source: vote", "source: '*'")
        .replace("state.vote: \"result.vote\"", "state.k: \"result.vote\"");
    let mut run = Run::new(&yaml);
    run.start(json!({}));
    vote(&mut run, "tk_2", "A");
    vote(&mut run, "tk_4", "C");
    vote(&mut run, "tk_3", "B");
    assert_eq!(run.st.context.output["votes"], json!({ "k": "C" }));
    // merge_object of non-objects is a MERGE_ERROR that writes nothing.
    let mut run = Run::new(&judges("all", "cancel", "merge_object"));
    run.start(json!({}));
    for t in ["tk_2", "tk_3", "tk_4"] {
        vote(&mut run, t, "A");
    }
    assert_eq!(run.st.status, Some(RunStatus::Failed));
    assert_eq!(run.st.error.clone().unwrap().code, "MERGE_ERROR");
    assert!(run.st.context.state.get("votes").is_none());
}

#[test]
fn m_of_n_cancels_the_slow_branch_and_ignores_its_late_result() {
    let mut run = Run::new(&judges("{ m_of_n: 2 }", "cancel", "append"));
    run.start(json!({}));
    vote(&mut run, "tk_2", "A");
    let step = run.apply(Input::TaskResult {
        token: "tk_4".into(),
        attempt: 1,
        outcome: ok(json!({ "vote": "C" })),
    });
    assert!(
        step.commands
            .contains(&braid_core::protocol::Command::CancelTasks(vec![
                "tk_3".into()
            ])),
        "{:?}",
        step.commands
    );
    assert_eq!(run.st.tokens[2].status, TokenStatus::Cancelled);
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    assert_eq!(run.st.context.output["votes"], json!(["A", "C"]));
    let late = run.apply(Input::TaskResult {
        token: "tk_3".into(),
        attempt: 1,
        outcome: ok(json!({ "vote": "B" })),
    });
    assert!(
        late.events.is_empty(),
        "a late result after cancellation is ignored"
    );
}

#[test]
fn any_with_abandon_completes_without_waiting_and_cancels_leftovers_at_the_end() {
    let mut run = Run::new(&judges("any", "abandon", "append"));
    run.start(json!({}));
    vote(&mut run, "tk_3", "B");
    assert_eq!(
        run.st.status,
        Some(RunStatus::Completed),
        "the run does not wait for abandoned branches"
    );
    assert_eq!(run.st.context.output["votes"], json!(["B"]));
    assert!(
        run.st.tokens.iter().all(|t| !t.status.is_live()),
        "abandoned branches are cancelled when the run ends"
    );
}

#[test]
fn allow_late_merge_redoes_the_merge_while_the_run_is_live() {
    // `any` + allow_late_merge: the join fires at the first vote; the
    // continuation dispatches an LLM call, so the run is still live when
    // the other votes arrive and are merged in.
    let yaml = judges("any", "allow_late_merge", "collect")
        .replace("action: { kind: update_context, updates: [ { path: output.votes, expr: \"state.votes\" } ] }", "action: { kind: llm_call, prompt: p2, model: m }")
        .replace("prompt_specs:", "prompt_specs:\n  - { ref: p2, template: \"tally {{state.votes}}\" }");
    let mut run = Run::new(&yaml);
    run.start(json!({}));
    vote(&mut run, "tk_3", "B");
    assert_eq!(run.st.context.state["votes"], json!(["B"]));
    vote(&mut run, "tk_2", "A");
    assert_eq!(
        run.st.context.state["votes"],
        json!(["A", "B"]),
        "late arrival merged in index order"
    );
    assert_eq!(run.st.status, Some(RunStatus::Running));
    // The continuation finishes: the last member is still live, so the run waits for it.
    run.apply(Input::TaskResult {
        token: "tk_6".into(),
        attempt: 1,
        outcome: ok(json!({ "text": "done" })),
    });
    assert_eq!(run.st.status, Some(RunStatus::Running));
    vote(&mut run, "tk_4", "C");
    assert_eq!(run.st.context.state["votes"], json!(["A", "B", "C"]));
    assert_eq!(run.st.status, Some(RunStatus::Completed));
}

#[test]
fn join_unsatisfied_when_members_end_elsewhere() {
    let yaml = r#"
name: u
initial_node: fan
nodes:
  - { ref: fan, action: { kind: update_context } }
  - ref: work
    action: { kind: update_context, updates: [ { path: state.v, expr: "_branch.index" } ] }
  - { ref: dead_end, action: { kind: update_context } }
  - { ref: join, fan_in: { m_of_n: 2 }, joins: fan, merge: { source: v, target: state.vs, strategy: append }, action: { kind: update_context } }
  - ref: handler
    action: { kind: update_context, updates: [ { path: output.code, expr: "state._last_error.code" } ] }
transitions:
  - { from: fan, to: work, spawn_count: 3 }
  - { from: work, to: join, condition: "_branch.index == 0" }
  - { from: work, to: dead_end, priority: 1 }
  - { from: join, to: handler, on: failure }
"#;
    let mut run = Run::new(yaml);
    run.start(json!({}));
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    assert_eq!(run.st.context.output, json!({ "code": "JOIN_UNSATISFIED" }));
    // With `all`, branches that end at a terminal node count as ended: the join fires with what arrived.
    let mut run = Run::new(&yaml.replace("{ m_of_n: 2 }", "all"));
    run.start(json!({}));
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    assert_eq!(run.st.context.state["vs"], json!([0]));
}

#[test]
fn nested_fan_out_two_by_three_joins_inner_then_outer() {
    let yaml = r#"
name: nested
initial_node: outer
nodes:
  - { ref: outer, action: { kind: update_context } }
  - ref: inner
    action: { kind: update_context, updates: [ { path: state.o, expr: "_branch.index" } ] }
  - ref: leaf
    action: { kind: update_context, updates: [ { path: state.cell, expr: "string(_branch.parent.index) + '.' + string(_branch.index) + ':' + string(state.o)" } ] }
  - { ref: inner_join, fan_in: all, joins: inner, merge: { source: cell, target: state.row, strategy: collect }, action: { kind: update_context } }
  - { ref: outer_join, fan_in: all, joins: outer, merge: { source: row, target: state.grid, strategy: collect }, action: { kind: update_context, updates: [ { path: output.grid, expr: "state.grid" } ] } }
transitions:
  - { from: outer, to: inner, spawn_count: 2 }
  - { from: inner, to: leaf, spawn_count: 3 }
  - { from: leaf, to: inner_join }
  - { from: inner_join, to: outer_join }
"#;
    let mut run = Run::new(yaml);
    run.start(json!({}));
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    assert_eq!(
        run.st.context.output["grid"],
        json!([["0.0:0", "0.1:0", "0.2:0"], ["1.0:1", "1.1:1", "1.2:1"]])
    );
    assert_eq!(
        run.kinds()
            .iter()
            .filter(|k| **k == "fan_in_completed")
            .count(),
        3
    );
    assert_eq!(run.st.sets.len(), 3, "every fan-out is its own sibling set");
}

#[test]
fn foreach_binds_items_and_empty_foreach_fires_the_join_at_once() {
    let yaml = r#"
name: fe
initial_node: fan
nodes:
  - { ref: fan, action: { kind: update_context } }
  - ref: each
    action: { kind: update_context, updates: [ { path: state.r, expr: "doc.name + '#' + string(_branch.item.n)" } ] }
  - { ref: join, fan_in: all, joins: fan, merge: { source: r, target: state.rs, strategy: append }, action: { kind: update_context, updates: [ { path: output.rs, expr: "state.rs" } ] } }
transitions:
  - { from: fan, to: each, foreach: { collection: "input.docs", item_var: doc } }
  - { from: each, to: join }
"#;
    let mut run = Run::new(yaml);
    run.start(json!({ "docs": [ { "name": "a", "n": 1 }, { "name": "b", "n": 2 } ] }));
    assert_eq!(run.st.context.output, json!({ "rs": ["a#1", "b#2"] }));
    let mut run = Run::new(yaml);
    run.start(json!({ "docs": [] }));
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    assert_eq!(run.st.context.output, json!({ "rs": [] }));
    let mut run = Run::new(yaml);
    run.start(json!({ "docs": "not a list" }));
    assert_eq!(run.st.error.clone().unwrap().code, "EXPRESSION");
}

#[test]
fn fan_out_inside_a_loop_never_mixes_iterations() {
    let yaml = r#"
name: loopfan
initial_node: fan
nodes:
  - ref: fan
    action: { kind: update_context, updates: [ { path: state.round, expr: "has(state.round) ? state.round + 1 : 0" } ] }
  - ref: work
    action: { kind: update_context, updates: [ { path: state.x, expr: "state.round * 10 + _branch.index" } ] }
  - { ref: join, fan_in: all, joins: fan, merge: { source: x, target: state.xs, strategy: append }, action: { kind: update_context, updates: [ { path: state.all, expr: "(has(state.all) ? state.all : []) + [state.xs]" } ] } }
  - { ref: done, action: { kind: update_context, updates: [ { path: output.all, expr: "state.all" } ] } }
transitions:
  - { from: fan, to: work, spawn_count: 2 }
  - { from: work, to: join }
  - { ref: again, from: join, to: fan, loop: { max_iterations: 2 } }
  - { from: join, to: done, priority: 1 }
"#;
    let mut run = Run::new(yaml);
    run.start(json!({}));
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    assert_eq!(
        run.st.context.output["all"],
        json!([[0, 1], [10, 11], [20, 21]])
    );
    assert_eq!(run.st.sets.len(), 3);
}

#[test]
fn branch_output_write_and_join_scope_are_errors() {
    let yaml = r#"
name: bow
initial_node: fan
nodes:
  - { ref: fan, action: { kind: update_context } }
  - ref: work
    action: { kind: update_context, updates: [ { path: output.x, expr: "1" } ] }
transitions:
  - { from: fan, to: work, spawn_count: 2 }
"#;
    let mut run = Run::new(yaml);
    run.start(json!({}));
    assert_eq!(run.st.error.clone().unwrap().code, "BRANCH_OUTPUT_WRITE");
    assert!(run.st.context.output.get("x").is_none());
}

#[test]
fn failed_branch_routed_to_the_join_arrives_with_last_error_and_unrouted_fails_the_run() {
    let yaml = |routed: bool| {
        format!(
            r#"
name: bf
initial_node: fan
nodes:
  - {{ ref: fan, action: {{ kind: update_context }} }}
  - ref: work
    action: {{ kind: update_context, updates: [ {{ path: state.v, expr: "_branch.index == 1 ? 1 / 0 : _branch.index" }} ] }}
  - {{ ref: join, fan_in: all, joins: fan, merge: {{ source: '*', target: state.outs, strategy: collect }}, action: {{ kind: update_context, updates: [ {{ path: output.n, expr: "size(state.outs)" }}, {{ path: output.failed, expr: "state.outs[1]._last_error.code" }} ] }} }}
transitions:
  - {{ from: fan, to: work, spawn_count: 3 }}
  - {{ from: work, to: join }}
{}
"#,
            if routed {
                "  - { from: work, to: join, on: failure }"
            } else {
                ""
            }
        )
    };
    let mut run = Run::new(&yaml(true));
    run.start(json!({}));
    assert_eq!(
        run.st.status,
        Some(RunStatus::Completed),
        "{:?}",
        run.st.error
    );
    assert_eq!(
        run.st.context.output,
        json!({ "n": 3, "failed": "EXPRESSION" })
    );
    let mut run = Run::new(&yaml(false));
    run.start(json!({}));
    assert_eq!(run.st.status, Some(RunStatus::Failed));
    let e = run.st.error.clone().unwrap();
    assert_eq!(
        (e.code.as_str(), e.node.as_deref()),
        ("EXPRESSION", Some("work"))
    );
    assert!(run.st.tokens.iter().all(|t| !t.status.is_live()));
}

#[test]
fn spawn_count_from_cel_and_branch_values_are_visible() {
    let yaml = r#"
name: sc
initial_node: fan
nodes:
  - { ref: fan, action: { kind: update_context } }
  - ref: work
    action: { kind: update_context, updates: [ { path: _branch.output.b, expr: "_branch" } ] }
  - { ref: join, fan_in: all, joins: fan, merge: { source: b, target: state.bs, strategy: collect }, action: { kind: update_context } }
transitions:
  - { from: fan, to: work, spawn_count: "input.n * 2" }
  - { from: work, to: join }
"#;
    let mut run = Run::new(yaml);
    run.start(json!({ "n": 2 }));
    let bs = run.st.context.state["bs"].as_array().unwrap().clone();
    assert_eq!(bs.len(), 4);
    assert_eq!(bs[3]["index"], json!(3));
    assert_eq!(bs[3]["total"], json!(4));
    assert_eq!(bs[3]["fan_out_node"], json!("fan"));
    assert_eq!(bs[3]["sibling_set"], json!("ss_1"));
    assert_eq!(bs[0]["output"], json!({}), "output before the write");
    assert_eq!(bs[0]["id"], json!("tk_2"), "_branch.id is the member token");
}

#[test]
fn a_join_inside_a_cancelled_branch_never_fires() {
    let yaml = r#"
name: nested_cancel
initial_node: outer
nodes:
  - { ref: outer, action: { kind: update_context } }
  - { ref: inner, action: { kind: update_context } }
  - { ref: work, action: call }
  - { ref: inner_join, fan_in: all, joins: inner, action: { kind: update_context } }
  - { ref: outer_join, fan_in: any, joins: outer, action: { kind: update_context, updates: [ { path: output.done, expr: "true" } ] } }
transitions:
  - { from: outer, to: inner, spawn_count: 2 }
  - { from: inner, to: work, spawn_count: 1 }
  - { from: work, to: inner_join }
  - { from: inner_join, to: outer_join }
actions:
  - { ref: call, kind: llm_call, prompt: p, model: m }
prompt_specs:
  - { ref: p, template: x }
model_profiles:
  - { ref: m, provider: scripted, model: s, script: { responses: [ x ] } }
"#;
    let mut run = Run::new(yaml);
    let step = run.start(json!({}));
    let d = dispatches(&step);
    assert_eq!(d.len(), 2);
    // Branch 0 finishes: its inner join fires, the outer `any` join fires and cancels branch 1.
    let step = run.apply(Input::TaskResult {
        token: d[0].token.clone(),
        attempt: 1,
        outcome: ok(json!({ "text": "x" })),
    });
    assert!(
        step.commands
            .contains(&braid_core::protocol::Command::CancelTasks(vec![
                d[1].token.clone()
            ]))
    );
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    assert_eq!(
        run.kinds()
            .iter()
            .filter(|k| **k == "fan_in_completed")
            .count(),
        2,
        "branch 1's inner join never fires"
    );
}

#[test]
fn an_empty_inner_set_cannot_merge_into_output_from_a_branch() {
    let yaml = r#"
name: empty_inner
initial_node: outer
nodes:
  - { ref: outer, action: { kind: update_context } }
  - { ref: inner, action: { kind: update_context } }
  - { ref: leaf, action: { kind: update_context } }
  - { ref: inner_join, fan_in: all, joins: inner, merge: { source: v, target: output.x, strategy: append }, action: { kind: update_context } }
  - { ref: outer_join, fan_in: all, joins: outer, action: { kind: update_context } }
transitions:
  - { from: outer, to: inner, spawn_count: 2 }
  - { from: inner, to: leaf, spawn_count: 0 }
  - { from: leaf, to: inner_join }
  - { from: inner_join, to: outer_join }
"#;
    let mut run = Run::new(yaml);
    run.start(json!({}));
    assert_eq!(run.st.error.clone().unwrap().code, "BRANCH_OUTPUT_WRITE");
    assert!(
        run.st.context.output.get("x").is_none(),
        "nothing written to the run's output"
    );
}
