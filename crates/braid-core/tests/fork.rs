//! Forks in the pure core: cut a finished run's history at every point a
//! fork may use, go on from there with the same answers, and the run ends
//! exactly as the source did (replay equal to live at every step).

mod common;

use braid_core::event::EventBody;
use braid_core::fork::{self, ForkPoint};
use braid_core::protocol::{Command, Input, TaskPayload};
use braid_core::state::RunStatus;
use common::*;
use serde_json::{Value, json};
use std::collections::VecDeque;

/// Two outer branches of three LLM leaves each, joined inside then outside,
/// with pure steps around them.
const NESTED: &str = r#"
name: nested
initial_node: outer
nodes:
  - { ref: outer, action: { kind: update_context, updates: [ { path: state.start, expr: "1" } ] } }
  - ref: inner
    action: { kind: update_context, updates: [ { path: state.o, expr: "_branch.index" } ] }
  - ref: leaf
    action: { kind: llm_call, prompt: p, model: m }
    output_mapping: { state.cell: "result.text" }
  - { ref: inner_join, fan_in: all, joins: inner, merge: { source: cell, target: state.row, strategy: collect }, action: { kind: update_context } }
  - { ref: outer_join, fan_in: all, joins: outer, merge: { source: row, target: state.grid, strategy: collect }, action: { kind: update_context, updates: [ { path: output.grid, expr: "state.grid" } ] } }
transitions:
  - { from: outer, to: inner, spawn_count: 2 }
  - { from: inner, to: leaf, spawn_count: 3 }
  - { from: leaf, to: inner_join }
  - { from: inner_join, to: outer_join }
prompt_specs:
  - { ref: p, template: "{{_branch.parent.index}}.{{_branch.index}}" }
model_profiles:
  - { ref: m, provider: openai, model: x }
"#;

/// Answers every dispatched call (with its prompt) until the run ends.
fn drive(run: &mut Run, first: Vec<Command>) {
    let mut queue: VecDeque<Command> = first.into();
    while let Some(c) = queue.pop_front() {
        let Command::Dispatch(d) = c else { continue };
        let TaskPayload::LlmCall { prompt, .. } = &d.payload else {
            panic!("only LLM calls are dispatched")
        };
        let step = run.apply(Input::TaskResult {
            token: d.token.clone(),
            attempt: d.attempt,
            outcome: ok(json!({ "text": format!("cell {prompt}") })),
        });
        queue.extend(step.commands);
    }
}

fn source(budget: usize) -> Run {
    let mut run = Run::new(NESTED);
    run.budget = budget;
    let step = run.start(json!({}));
    drive_all(&mut run, step.commands);
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    run
}

/// [`drive`], and [`Input::Continue`] after a bounded step, as the
/// runtime does.
fn drive_all(run: &mut Run, commands: Vec<Command>) {
    drive(run, commands);
    while run.st.status == Some(RunStatus::Running) {
        let step = run.apply(Input::Continue);
        assert!(!step.events.is_empty(), "a live run moves on");
        drive(run, step.commands);
    }
}

#[test]
fn a_fork_at_any_boundary_goes_on_to_the_sources_end() {
    for budget in [usize::MAX, 3] {
        let src = source(budget);
        let output = src.st.context.output.clone();
        assert_eq!(
            output["grid"],
            json!([
                ["cell 0.0", "cell 0.1", "cell 0.2"],
                ["cell 1.0", "cell 1.1", "cell 1.2"]
            ])
        );
        let boundaries: Vec<usize> = (1..src.log.len())
            .filter(|&i| matches!(src.log[i].body, EventBody::NodeStarted { .. }))
            .collect();
        assert!(boundaries.len() >= 10, "{boundaries:?}");
        for (n, &count) in boundaries.iter().enumerate() {
            let mut run = Run::new(NESTED);
            run.budget = budget;
            let history = src.log[..count].to_vec();
            assert!(fork::missing(&history, &src.g, &run.g).is_empty());
            let step = run.apply(Input::Fork {
                history,
                from_run_id: "run_src".into(),
                from_seq: count as u64,
                version: 1,
            });
            assert!(matches!(
                run.log[count].body,
                EventBody::WorkflowForked { .. }
            ));
            drive_all(&mut run, step.commands);
            assert_eq!(
                run.st.status,
                Some(RunStatus::Completed),
                "cut {n} at {count}"
            );
            assert_eq!(
                run.st.context.output, output,
                "cut {n} at {count}, budget {budget}"
            );
            // Only the fork's own calls count.
            let calls = run.st.usage.llm_calls;
            assert_eq!(calls, 0, "the test's answers carry no usage");
        }
    }
}

#[test]
fn cut_points_never_split_a_step_and_missing_parts_are_named() {
    let src = source(usize::MAX);
    let first_leaf = src
        .log
        .iter()
        .position(|e| {
            matches!(e.body, EventBody::NodeStarted { .. }) && e.node.as_deref() == Some("leaf")
        })
        .unwrap();
    assert_eq!(
        fork::cut(&src.log, &ForkPoint::Node("leaf".into())),
        Ok(first_leaf)
    );
    // A seq inside a step rounds down to the start before it.
    let seq = first_leaf as u64 + 1; // the first leaf's node_started itself
    let c = fork::cut(&src.log, &ForkPoint::Seq(seq)).unwrap();
    assert!(c <= seq as usize && matches!(src.log[c].body, EventBody::NodeStarted { .. }));
    assert!(fork::cut(&src.log, &ForkPoint::Seq(0)).is_err());
    assert!(fork::cut(&src.log, &ForkPoint::Seq(src.log.len() as u64 + 1)).is_err());
    assert!(fork::cut(&src.log, &ForkPoint::Node("nowhere".into())).is_err());

    // A target whose inner join is gone cannot go on from inside the fan-out.
    let without = NESTED
        .replace(
            "  - { from: leaf, to: inner_join }\n  - { from: inner_join, to: outer_join }\n",
            "  - { from: leaf, to: outer_join }\n",
        )
        .replace(
            "joins: inner, merge: { source: cell, target: state.row",
            "joins: inner, merge: { source: cell, target: state.unused",
        )
        .lines()
        .filter(|l| !l.contains("ref: inner_join"))
        .collect::<Vec<_>>()
        .join("\n");
    let target = graph(&without);
    let history = src.log[..first_leaf].to_vec();
    let missing = fork::missing(&history, &src.g, &target);
    assert!(
        missing.iter().any(|m| m.contains("`inner_join`")),
        "{missing:?}"
    );
    let _: Value = json!(missing);
}
