//! `workflow_call` on the parent side: the child is another run, so the
//! core only issues commands and reacts to the child's start and end.

mod common;

use braid_core::event::{ErrorInfo, EventBody};
use braid_core::machine::child_run_id;
use braid_core::protocol::{ChildCall, ChildOutcome, Command, Input};
use braid_core::state::{RunStatus, TokenStatus};
use braid_types::ErrorCode;
use common::*;
use serde_json::json;

fn parent(on_failure: &str, retry: &str) -> String {
    format!(
        r#"
name: parent
initial_node: prep
nodes:
  - ref: prep
    action: {{ kind: update_context, updates: [ {{ path: state.topic, expr: "input.topic" }}, {{ path: state.secret, expr: "'parent only'" }} ] }}
  - ref: research
    action: {{ kind: workflow_call, workflow: parent, version: 1, on_failure: {on_failure}, inherit_artifacts: true, execution: {{ retry_policy: {retry} }} }}
    input_mapping: {{ query: "state.topic + '?'" }}
    output_mapping: {{ state.found: "result" }}
  - ref: done
    action: {{ kind: update_context, updates: [ {{ path: output.found, expr: "state.found" }} ] }}
transitions:
  - {{ from: prep, to: research }}
  - {{ from: research, to: done }}
"#
    )
}

/// The runtime reports the child of `call` started.
fn announce(run: &mut Run, call: &ChildCall) {
    run.apply(Input::ChildStarted {
        token: call.token.clone(),
        attempt: call.attempt,
        child_run_id: call.child_run_id.clone(),
        workflow: "parent".into(),
        version: 1,
    });
}

fn started(step: &braid_core::protocol::Step) -> ChildCall {
    step.commands
        .iter()
        .find_map(|c| {
            if let Command::StartChild(c) = c {
                Some(c.clone())
            } else {
                None
            }
        })
        .expect("a child is started")
}

#[test]
fn the_child_gets_the_mapped_input_and_its_output_comes_back_as_result() {
    let mut run = Run::new(&parent("propagate", "{ max_attempts: 1 }"));
    let step = run.start(json!({ "topic": "rust" }));
    let call = started(&step);
    assert_eq!(
        call.input,
        json!({ "query": "rust?" }),
        "only the mapped input, never the parent's state"
    );
    assert_eq!(
        (call.workflow.as_str(), call.version, call.attempt),
        ("parent", Some(1), 1)
    );
    assert_eq!(
        call.child_run_id,
        child_run_id("run_test", "tk_2", 1),
        "derived: a re-issued start finds the same run"
    );
    assert_eq!(
        call.artifacts,
        Some(json!({})),
        "inherit_artifacts passes the artifacts map"
    );
    announce(&mut run, &call);
    assert_eq!(run.st.tokens[1].status, TokenStatus::WaitingChild);
    let finished = Input::ChildFinished {
        token: call.token.clone(),
        child_run_id: call.child_run_id.clone(),
        outcome: ChildOutcome::Completed(json!({ "answer": 42 })),
    };
    run.apply(finished.clone());
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    assert_eq!(run.st.context.output, json!({ "found": { "answer": 42 } }));
    assert!(
        run.apply(finished).events.is_empty(),
        "a duplicate `child finished` is a no-op"
    );
    let kinds = run.kinds();
    assert!(kinds.contains(&"subworkflow_started") && kinds.contains(&"subworkflow_completed"));
}

#[test]
fn propagate_fails_with_the_childs_error_as_cause_and_each_retry_starts_a_new_child() {
    let mut run = Run::new(&parent(
        "propagate",
        "{ max_attempts: 2, retryable_errors: [SUBWORKFLOW_FAILED] }",
    ));
    let step = run.start(json!({ "topic": "x" }));
    let first = started(&step);
    announce(&mut run, &first);
    let mut root = ErrorInfo::new(ErrorCode::RateLimited, "too many");
    root.node = Some("inner".into());
    let step = run.apply(Input::ChildFinished {
        token: first.token.clone(),
        child_run_id: first.child_run_id.clone(),
        outcome: ChildOutcome::Failed(root.clone()),
    });
    let second = started(&step);
    assert_eq!(second.attempt, 2);
    assert_ne!(
        second.child_run_id, first.child_run_id,
        "each attempt starts a new child"
    );
    // A late start of the first child after its attempt ended is stopped.
    let late = run.apply(Input::ChildStarted {
        token: first.token.clone(),
        attempt: 1,
        child_run_id: "run_stray".into(),
        workflow: "parent".into(),
        version: 1,
    });
    assert!(
        late.commands
            .contains(&Command::CancelRuns(vec!["run_stray".into()]))
    );
    announce(&mut run, &second);
    assert!(
        run.kinds().iter().filter(|k| **k == "node_started").count() >= 3,
        "attempt 2 has its node_started"
    );
    run.apply(Input::ChildFinished {
        token: second.token.clone(),
        child_run_id: second.child_run_id.clone(),
        outcome: ChildOutcome::Failed(root),
    });
    assert_eq!(run.st.status, Some(RunStatus::Failed));
    let e = run.st.error.clone().unwrap();
    assert_eq!(
        (e.code.as_str(), e.node.as_deref(), e.attempt),
        ("SUBWORKFLOW_FAILED", Some("research"), Some(2))
    );
    let cause = e.cause.expect("the child's error is the cause");
    assert_eq!(
        (cause.code.as_str(), cause.node.as_deref()),
        ("RATE_LIMITED", Some("inner"))
    );
}

#[test]
fn catch_succeeds_with_result_error() {
    let mut run = Run::new(&parent("catch", "{ max_attempts: 1 }"));
    let step = run.start(json!({ "topic": "x" }));
    let call = started(&step);
    announce(&mut run, &call);
    run.apply(Input::ChildFinished {
        token: call.token,
        child_run_id: call.child_run_id.clone(),
        outcome: ChildOutcome::Failed(ErrorInfo::new(ErrorCode::Expression, "bad")),
    });
    assert_eq!(run.st.status, Some(RunStatus::Completed));
    assert_eq!(
        run.st.context.output["found"],
        json!({ "error": { "workflow_run_id": call.child_run_id, "code": "EXPRESSION", "message": "bad" } })
    );
}

#[test]
fn cancelling_the_parent_cancels_its_child_and_a_cancelled_child_fails_the_node() {
    let mut run = Run::new(&parent("propagate", "{ max_attempts: 1 }"));
    let step = run.start(json!({ "topic": "x" }));
    let call = started(&step);
    announce(&mut run, &call);
    let step = run.apply(Input::Cancel {
        reason: "user".into(),
    });
    assert!(
        step.commands
            .contains(&Command::CancelRuns(vec![call.child_run_id.clone()]))
    );
    assert_eq!(run.st.status, Some(RunStatus::Cancelled));

    let mut run = Run::new(&parent("catch", "{ max_attempts: 1 }"));
    let step = run.start(json!({ "topic": "x" }));
    let call = started(&step);
    announce(&mut run, &call);
    run.apply(Input::ChildFinished {
        token: call.token,
        child_run_id: call.child_run_id,
        outcome: ChildOutcome::Cancelled("by hand".into()),
    });
    assert_eq!(
        run.st.error.clone().unwrap().code,
        "CANCELLED",
        "a cancelled child fails the node even with catch"
    );
    assert!(
        run.log
            .iter()
            .any(|e| matches!(&e.body, EventBody::SubworkflowFailed { .. }))
    );
}
