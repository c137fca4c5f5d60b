//! Records and bundles the conformance cases build on, public so that a
//! backend's own tests (migrations, files, pragmas) can use them too.

use braid_core::definition::Bundle;
use serde_json::{Value, json};

use crate::{
    ArtifactRecord, EventRecord, RunRecord, RunStatus, SaveOutcome, Store, TaskRecord, TokenRecord,
    WriteOp,
};

/// A bundle from its JSON form.
pub fn bundle(v: Value) -> Bundle {
    serde_json::from_value(v).expect("test bundle parses")
}

/// A one-node workflow.
pub fn tiny_bundle(name: &str) -> Bundle {
    bundle(json!({
        "name": name,
        "initial_node": "only",
        "nodes": [ { "ref": "only", "action": { "kind": "update_context", "updates": [] } } ]
    }))
}

/// Saves [`tiny_bundle`] in the default project.
pub async fn save_tiny(store: &dyn Store, name: &str) -> SaveOutcome {
    store
        .save_bundle("proj_default", &tiny_bundle(name), 1)
        .await
        .unwrap()
}

/// A running root run of `def` in the default project.
pub fn run_record(id: &str, def: &SaveOutcome, name: &str, created_at: i64) -> RunRecord {
    RunRecord {
        id: id.to_owned(),
        project_id: "proj_default".into(),
        workflow_id: def.workflow_id.clone(),
        workflow_name: name.to_owned(),
        def_id: def.def_id.clone(),
        version: def.version,
        status: RunStatus::Running,
        context: json!({ "input": { "q": id }, "state": {}, "output": {}, "artifacts": {} }),
        error: None,
        usage: json!({ "llm_calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0 }),
        limits: json!({ "max_run_tokens": 1000000 }),
        parent_run_id: None,
        parent_token_id: None,
        depth: 0,
        last_seq: 0,
        created_at,
        started_at: Some(created_at),
        ended_at: None,
        owner: None,
        epoch: 0,
        forked_from: None,
    }
}

/// Saves a tiny workflow and creates one running run of it.
pub async fn setup_run(store: &dyn Store, run_id: &str) -> RunRecord {
    let def = save_tiny(store, "wf").await;
    let run = run_record(run_id, &def, "wf", 1000);
    store
        .commit(vec![WriteOp::CreateRun(run.clone())])
        .await
        .unwrap();
    run
}

/// Event `seq` of a run, with a payload that needs escaping.
pub fn event(run_id: &str, seq: i64) -> EventRecord {
    EventRecord {
        run_id: run_id.to_owned(),
        seq,
        kind: "context_updated".into(),
        ts: 1000 + seq,
        token_id: Some(format!("tok_{}", seq % 3)),
        node: if seq % 2 == 0 {
            Some("only".into())
        } else {
            None
        },
        payload: json!({ "paths": [format!("state.p{seq}")], "n": seq, "s": "quote \" and unicode é" }),
    }
}

/// A token row of node `only`.
pub fn token(run_id: &str, seq: i64, id: &str, status: &str, created_at: i64) -> TokenRecord {
    TokenRecord {
        run_id: run_id.to_owned(),
        seq,
        id: id.to_owned(),
        node: "only".into(),
        status: status.to_owned(),
        parent_token_id: None,
        sibling_set: None,
        branch_index: None,
        attempts: 0,
        created_at,
        started_at: None,
        ended_at: None,
        usage: Default::default(),
        first_seq: None,
        last_seq: None,
    }
}

/// An unclaimed first attempt of token `tok_<id>`.
pub fn task(run_id: &str, id: &str, not_before: i64, created_at: i64) -> TaskRecord {
    TaskRecord {
        id: id.to_owned(),
        run_id: run_id.to_owned(),
        token_id: format!("tok_{id}"),
        attempt: 1,
        payload: json!({ "action": "judge", "input": { "i": id } }),
        not_before,
        lease_until: None,
        deliveries: 0,
        created_at,
    }
}

/// An artifact named `report` written by node `write`.
pub fn artifact(
    id: &str,
    key: &str,
    type_name: &str,
    run: &str,
    created_at: i64,
) -> ArtifactRecord {
    ArtifactRecord {
        id: id.to_owned(),
        project_id: "proj_default".into(),
        type_name: type_name.to_owned(),
        type_version: 1,
        name: "report".into(),
        content: json!({ "winner": "A", "n": [1, 2] }),
        run_id: run.to_owned(),
        node: "write".into(),
        idempotency_key: key.to_owned(),
        created_at,
    }
}

/// A structured condition (docs/definitions.md) using every form.
fn structured_condition() -> Value {
    json!({ "type": "and", "conditions": [
        { "type": "comparison", "field": "state.score", "op": ">=", "value": 0.8 },
        { "type": "comparison", "field": "state.maybe", "op": "==", "value": null },
        { "type": "comparison", "field": "state.a", "op": "!=", "other_field": "state.b" },
        { "type": "or", "conditions": [
            { "type": "exists", "field": "state.votes", "negated": true },
            { "type": "exists", "field": "state.answer" },
            { "type": "in_set", "field": "state.vote", "values": ["A", "B", 3] },
            { "type": "array_length", "field": "state.votes", "op": "<", "value": 2 }
        ] }
    ] })
}

/// A bundle that uses every field the storage has a column for.
pub fn rich_bundle() -> Value {
    json!({
        "name": "everything",
        "description": "Uses every field.",
        "input_schema": { "type": "object", "required": ["question"], "properties": { "question": { "type": "string" } } },
        "output_schema": { "type": "object", "properties": { "winner": { "type": "string" } } },
        "initial_node": "ask",
        "output_mapping": { "winner": "state.winner", "count": "size(state.votes)" },
        "limits": { "timeout_ms": 600000, "max_run_tokens": 5000 },
        "nodes": [
            {
                "ref": "ask",
                "name": "Ask the question",
                "action": { "kind": "update_context", "updates": [
                    { "path": "state.question", "expr": "input.question" },
                    { "path": "state.round", "expr": "0" }
                ] },
                "fan_out": "all"
            },
            {
                "ref": "judge",
                "action": "judge_llm",
                "input_mapping": { "question": "state.question", "round": "state.round" },
                "output_mapping": { "state.vote": "result.vote" },
                "execution": { "timeout_ms": 1000, "retry_policy": {
                    "max_attempts": 5, "backoff": "linear", "initial_delay_ms": 10, "max_delay_ms": 100,
                    "retryable_errors": ["TIMEOUT", "SCHEMA_MISMATCH"] } }
            },
            {
                "ref": "tally",
                "name": "Tally",
                "fan_in": { "m_of_n": 2 },
                "joins": "ask",
                "merge": { "source": "vote", "target": "state.votes", "strategy": "append" },
                "on_early_complete": "allow_late_merge",
                "action": { "kind": "update_context", "updates": [ { "path": "state.winner", "expr": "'A'" } ],
                            "execution": { "timeout_ms": 50 } }
            },
            {
                "ref": "each",
                "fan_in": "all",
                "joins": "tally",
                "merge": { "source": "*", "target": "state.items", "strategy": "keyed_by_branch" },
                "on_early_complete": "cancel",
                "action": "store_it"
            },
            { "ref": "child", "fan_in": "any", "joins": "each", "action": "call_child" },
            { "ref": "child_dynamic", "action": "call_dynamic", "on_early_complete": "abandon" },
            { "ref": "write", "action": { "kind": "write_artifact", "artifact_type": "report", "name": "final",
                                          "content_mapping": { "winner": "state.winner" } } }
        ],
        "transitions": [
            { "from": "ask", "to": "judge", "spawn_count": 3 },
            { "from": "ask", "to": "judge", "spawn_count": "size(state.judges)", "priority": 1,
              "condition": "has(state.judges)" },
            { "from": "judge", "to": "tally" },
            { "ref": "again", "from": "tally", "to": "ask", "loop": { "max_iterations": 3 },
              "condition": structured_condition(), "priority": -1 },
            { "from": "tally", "to": "each", "foreach": { "collection": "state.votes", "item_var": "vote" } },
            { "from": "tally", "to": "each", "foreach": { "collection": "[1, 2]" }, "priority": 2 },
            { "from": "each", "to": "child", "on": "always" },
            { "from": "child", "to": "child_dynamic", "on": "failure",
              "condition": "state._last_error.code == 'SUBWORKFLOW_FAILED'" },
            { "from": "child", "to": "write", "on": "success" },
            { "from": "child_dynamic", "to": "write" }
        ],
        "actions": [
            { "ref": "judge_llm", "kind": "llm_call", "prompt": "judge_prompt", "model": "fast",
              "execution": { "timeout_ms": 30000,
                             "retry_policy": { "max_attempts": 3, "backoff": "exponential", "initial_delay_ms": 500 } } },
            { "ref": "store_it", "kind": "write_artifact", "artifact_type": "note", "name": "note",
              "content_mapping": {} },
            { "ref": "call_child", "kind": "workflow_call", "workflow": "other", "version": 2,
              "inherit_artifacts": true, "on_failure": "catch" },
            { "ref": "call_dynamic", "kind": "workflow_call", "workflow": { "from_context": "state.child_name" },
              "version": { "from_context": "state.child_version" } },
            { "ref": "unused_plain", "kind": "workflow_call", "workflow": "other" }
        ],
        "prompt_specs": [
            { "ref": "judge_prompt", "system": "You are a strict judge.",
              "template": "Question: {{state.question}}. Judge {{_branch.index}}.",
              "produces": { "type": "object", "required": ["vote"],
                            "properties": { "vote": { "type": "string", "enum": ["A", "B"] } } } },
            { "ref": "bare_prompt", "template": "Hello" }
        ],
        "model_profiles": [
            { "ref": "fast", "provider": "openai", "model": "gpt-4o-mini", "base_url": "http://localhost:1234/v1",
              "api_key_env": "MY_KEY", "parameters": { "temperature": 0.2, "max_tokens": 200, "stop": ["\n\n"] },
              "max_concurrency": 4, "rate_limit": { "requests_per_minute": 500, "tokens_per_minute": 200000 },
              "cost_per_1k_input_tokens": 0.00015, "cost_per_1k_output_tokens": 0.0006 },
            { "ref": "fake", "provider": "scripted", "model": "demo",
              "script": { "responses": [ { "vote": "A" }, { "vote": "B" } ], "latency_ms": 5 } }
        ],
        "artifact_types": [
            { "ref": "report", "schema": { "type": "object", "properties": { "winner": { "type": "string" } } } },
            { "ref": "note", "schema": { "type": "object" } }
        ],
        "layout": { "ask": { "x": 0.0, "y": -12.5 }, "judge": { "x": 240.0, "y": 80.0 } }
    })
}
