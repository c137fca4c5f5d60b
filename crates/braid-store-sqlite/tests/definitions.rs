//! Bundles ↔ rows: round trips, versioning, hand-written SQL, listings.

mod common;

use braid_core::definition::Bundle;
use braid_store::{DefinitionStore, Error};
use common::{bundle, open, save_tiny};
use serde_json::{Value, json};
use sqlx::{Connection, SqliteConnection};

/// A structured condition (SPEC §2) using every form.
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
fn rich_bundle() -> Value {
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
              "max_concurrency": 4, "cost_per_1k_input_tokens": 0.00015, "cost_per_1k_output_tokens": 0.0006 },
            { "ref": "fake", "provider": "scripted", "model": "demo",
              "script": { "responses": [ { "vote": "A" }, { "vote": "B" } ], "latency_ms": 5 } }
        ],
        "artifact_types": [
            { "ref": "report", "schema": { "type": "object", "properties": { "winner": { "type": "string" } } } },
            { "ref": "note", "schema": { "type": "object" } }
        ]
    })
}

#[tokio::test]
async fn rich_bundle_round_trips_and_keeps_its_version() {
    let (_dir, store) = open().await;
    let original = bundle(rich_bundle());

    let first = store
        .save_bundle("proj_default", &original, 100)
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.version, 1);
    assert!(first.workflow_id.starts_with("wf_") && first.def_id.starts_with("def_"));

    let stored = store
        .get_def("proj_default", "everything", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.bundle, original);
    assert_eq!(stored.bundle.canonical(), original.canonical());
    assert_eq!((stored.version, stored.created_at), (1, 100));
    assert_eq!(
        (stored.workflow_id.as_str(), stored.def_id.as_str()),
        (first.workflow_id.as_str(), first.def_id.as_str())
    );
    assert_eq!(stored.project_id, "proj_default");
    assert_eq!(stored.name, "everything");

    // Saving what was read back (and the original again) keeps version 1.
    let again = store
        .save_bundle("proj_default", &stored.bundle, 200)
        .await
        .unwrap();
    assert_eq!(
        again,
        braid_store::SaveOutcome {
            created: false,
            ..first.clone()
        }
    );
    let same = store
        .save_bundle("proj_default", &original, 300)
        .await
        .unwrap();
    assert!(!same.created);

    // Key order and the YAML form do not matter either.
    let yaml_like: Bundle =
        Bundle::parse(&serde_json::to_string_pretty(&rich_bundle()).unwrap()).unwrap();
    assert!(
        !store
            .save_bundle("proj_default", &yaml_like, 300)
            .await
            .unwrap()
            .created
    );

    // A content change makes version 2; version 1 stays readable.
    let mut changed = original.clone();
    changed.prompt_specs[0].template.push_str(" Answer A or B.");
    let second = store
        .save_bundle("proj_default", &changed, 400)
        .await
        .unwrap();
    assert!(second.created);
    assert_eq!(second.version, 2);
    assert_eq!(second.workflow_id, first.workflow_id);
    assert_ne!(second.def_id, first.def_id);

    let latest = store
        .get_def("proj_default", &first.workflow_id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((latest.version, &latest.bundle), (2, &changed));
    let v1 = store
        .get_def("proj_default", "everything", Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v1.bundle, original);
    let by_id = store.get_def_by_id(&second.def_id).await.unwrap().unwrap();
    assert_eq!(by_id.bundle, changed);
    assert!(
        store
            .get_def("proj_default", "everything", Some(3))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_def("proj_default", "nope", None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.get_def_by_id("def_nope").await.unwrap().is_none());

    // Going back to the first content is a change too (N+1, not a revert).
    let third = store
        .save_bundle("proj_default", &original, 500)
        .await
        .unwrap();
    assert_eq!((third.created, third.version), (true, 3));
}

#[tokio::test]
async fn artifact_types_get_a_new_version_only_when_their_schema_changes() {
    let (_dir, store) = open().await;
    let with_type = |name: &str, schema: Value| {
        bundle(json!({
            "name": name,
            "initial_node": "w",
            "nodes": [ { "ref": "w", "action": { "kind": "write_artifact", "artifact_type": "report", "name": "r" } } ],
            "artifact_types": [ { "ref": "report", "schema": schema } ]
        }))
    };
    let s1 = json!({ "type": "object" });
    let s2 = json!({ "type": "object", "required": ["x"] });

    store
        .save_bundle("proj_default", &with_type("a", s1.clone()), 1)
        .await
        .unwrap();
    let types = store.artifact_types("proj_default").await.unwrap();
    assert_eq!(types.len(), 1);
    assert_eq!(
        (types[0].name.as_str(), types[0].version, &types[0].schema),
        ("report", 1, &s1)
    );
    assert!(types[0].id.starts_with("at_"));

    // Another workflow defining the same schema reuses version 1.
    store
        .save_bundle("proj_default", &with_type("b", s1.clone()), 2)
        .await
        .unwrap();
    assert_eq!(
        store.artifact_types("proj_default").await.unwrap()[0].version,
        1
    );

    // A changed schema makes version 2, and bundles read back show the latest schema.
    let out = store
        .save_bundle("proj_default", &with_type("a", s2.clone()), 3)
        .await
        .unwrap();
    assert_eq!(out.version, 2);
    let types = store.artifact_types("proj_default").await.unwrap();
    assert_eq!(
        (types.len(), types[0].version, &types[0].schema),
        (1, 2, &s2)
    );
    let a = store
        .get_def("proj_default", "a", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.bundle.artifact_types[0].schema, s2);
}

/// The SQL of docs/schema.md's worked example.
const HAND_WRITTEN_SQL: &str = include_str!("../../../docs/examples/hand_written_workflow.sql");

fn hand_written_expected() -> Bundle {
    bundle(json!({
        "name": "summarize",
        "description": "Summarize a topic and keep the summary.",
        "input_schema": { "type": "object", "required": ["topic"], "properties": { "topic": { "type": "string" } } },
        "initial_node": "prepare",
        "nodes": [
            { "ref": "prepare",
              "action": { "kind": "update_context", "updates": [ { "path": "state.topic", "expr": "input.topic" } ] } },
            { "ref": "summarize", "action": "summarize_llm", "output_mapping": { "state.summary": "result.summary" } },
            { "ref": "save",
              "action": { "kind": "write_artifact", "artifact_type": "summary", "name": "summary",
                          "content_mapping": { "topic": "state.topic", "text": "state.summary" } } }
        ],
        "transitions": [ { "from": "prepare", "to": "summarize" }, { "from": "summarize", "to": "save" } ],
        "actions": [
            { "ref": "summarize_llm", "kind": "llm_call", "prompt": "summary_prompt", "model": "offline",
              "execution": { "timeout_ms": 30000,
                             "retry_policy": { "max_attempts": 3, "backoff": "exponential", "initial_delay_ms": 500 } } }
        ],
        "prompt_specs": [
            { "ref": "summary_prompt", "system": "You write one-sentence summaries.", "template": "Summarize: {{state.topic}}",
              "produces": { "type": "object", "required": ["summary"], "properties": { "summary": { "type": "string" } } } }
        ],
        "model_profiles": [
            { "ref": "offline", "provider": "scripted", "model": "demo",
              "script": { "responses": [ { "summary": "Rivers carry rain back to the sea." } ] } }
        ],
        "artifact_types": [
            { "ref": "summary", "schema": { "type": "object", "required": ["topic", "text"],
                                            "properties": { "topic": { "type": "string" }, "text": { "type": "string" } } } }
        ]
    }))
}

#[test]
fn the_documented_sql_is_the_tested_sql() {
    let doc = include_str!("../../../docs/schema.md");
    assert!(
        doc.contains(HAND_WRITTEN_SQL.trim_end()),
        "docs/schema.md must show docs/examples/hand_written_workflow.sql verbatim"
    );
}

#[tokio::test]
async fn a_definition_written_by_hand_in_sql_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("braid.db");
    let store = braid_store_sqlite::SqliteStore::open_path(&path)
        .await
        .unwrap();

    // A separate connection, as a user with the sqlite3 shell would have.
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(HAND_WRITTEN_SQL)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let stored = store
        .get_def("proj_default", "summarize", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.bundle, hand_written_expected());
    assert_eq!(
        (
            stored.workflow_id.as_str(),
            stored.def_id.as_str(),
            stored.version
        ),
        ("wf_summarize", "def_summarize_1", 1)
    );
    assert!(
        stored.created_at > 1_600_000_000_000,
        "created_at defaults to now in millis"
    );

    // Saving the same content through the store keeps the hand-written version.
    let out = store
        .save_bundle("proj_default", &hand_written_expected(), 5)
        .await
        .unwrap();
    assert_eq!(
        (out.created, out.version, out.def_id.as_str()),
        (false, 1, "def_summarize_1")
    );
    assert_eq!(
        store.artifact_types("proj_default").await.unwrap()[0].id,
        "at_summary_1"
    );
}

#[tokio::test]
async fn hand_written_rows_may_use_bare_text_for_cel_and_fan_in() {
    let (dir, store) = open().await;
    let mut conn = SqliteConnection::connect(&format!(
        "sqlite://{}",
        dir.path().join("braid.db").display()
    ))
    .await
    .unwrap();
    sqlx::raw_sql(
        "INSERT INTO workflows (id, project_id, name) VALUES ('wf_x', 'proj_default', 'x');
         INSERT INTO workflow_defs (id, workflow_id, version, initial_node) VALUES ('def_x', 'wf_x', 1, 'a');
         INSERT INTO actions (def_id, ref, kind) VALUES ('def_x', 'noop', 'update_context');
         INSERT INTO nodes (def_id, ref, position, action_ref) VALUES ('def_x', 'b', 2, 'noop');
         INSERT INTO nodes (def_id, ref, position, action_ref, fan_out) VALUES ('def_x', 'a', 1, 'noop', 'all');
         INSERT INTO nodes (def_id, ref, position, action_ref, fan_in, joins) VALUES ('def_x', 'c', 3, 'noop', 'all', 'a');
         INSERT INTO transitions (def_id, from_node, to_node, condition, spawn_count)
             VALUES ('def_x', 'a', 'b', 'state.n > 1', 'size(state.items)');
         INSERT INTO transitions (def_id, from_node, to_node, condition, spawn_count, on_outcome)
             VALUES ('def_x', 'a', 'b', '\"input.go\"', 2, 'failure');
         INSERT INTO transitions (def_id, from_node, to_node) VALUES ('def_x', 'b', 'c');",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let got = store
        .get_def("proj_default", "x", None)
        .await
        .unwrap()
        .unwrap()
        .bundle;
    let want = bundle(json!({
        "name": "x",
        "initial_node": "a",
        "nodes": [
            { "ref": "a", "action": "noop", "fan_out": "all" },
            { "ref": "b", "action": "noop" },
            { "ref": "c", "action": "noop", "fan_in": "all", "joins": "a" }
        ],
        "transitions": [
            { "from": "a", "to": "b", "condition": "state.n > 1", "spawn_count": "size(state.items)" },
            { "from": "a", "to": "b", "condition": "input.go", "spawn_count": 2, "on": "failure" },
            { "from": "b", "to": "c" }
        ],
        "actions": [ { "ref": "noop", "kind": "update_context", "updates": [] } ]
    }));
    assert_eq!(got, want);
}

#[tokio::test]
async fn workflows_list_by_name_with_cursors() {
    let (_dir, store) = open().await;
    for name in ["delta", "alpha", "charlie", "bravo", "echo"] {
        save_tiny(&store, name).await;
    }
    let mut changed = common::tiny_bundle("bravo");
    changed.description = Some("v2".into());
    store
        .save_bundle("proj_default", &changed, 2)
        .await
        .unwrap();

    let p1 = store.list_workflows("proj_default", None, 2).await.unwrap();
    assert_eq!(
        p1.items.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
        ["alpha", "bravo"]
    );
    assert_eq!(p1.items[1].latest_version, 2);
    assert_eq!(p1.items[0].latest_version, 1);
    let p2 = store
        .list_workflows("proj_default", p1.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(
        p2.items.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
        ["charlie", "delta"]
    );
    let p3 = store
        .list_workflows("proj_default", p2.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(
        p3.items.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
        ["echo"]
    );
    assert!(p3.next_cursor.is_none());

    // Limits are clamped, never an error.
    assert_eq!(
        store
            .list_workflows("proj_default", None, 0)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let all = store
        .list_workflows("proj_default", None, u32::MAX)
        .await
        .unwrap();
    assert_eq!((all.items.len(), all.next_cursor), (5, None));

    assert_eq!(
        store.workflow_names("proj_default").await.unwrap(),
        ["alpha", "bravo", "charlie", "delta", "echo"]
    );
    assert!(store.workflow_names("proj_other").await.unwrap().is_empty());
}

#[tokio::test]
async fn the_default_project_exists_and_unknown_projects_are_not_found() {
    let (_dir, store) = open().await;
    assert_eq!(store.project_id("default").await.unwrap(), "proj_default");
    assert_eq!(
        store.project_id("proj_default").await.unwrap(),
        "proj_default"
    );
    assert!(matches!(
        store.project_id("nope").await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store
            .save_bundle("proj_nope", &common::tiny_bundle("x"), 1)
            .await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("braid.db");
    let store = braid_store_sqlite::SqliteStore::open_path(&path)
        .await
        .unwrap();
    let out = save_tiny(&store, "kept").await;
    store.close().await.unwrap();

    let store = braid_store_sqlite::SqliteStore::open(braid_store_sqlite::SqliteOptions {
        path: path.clone(),
        synchronous_full: false,
    })
    .await
    .unwrap();
    let def = store
        .get_def("proj_default", "kept", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(def.def_id, out.def_id);
    assert!(!save_tiny(&store, "kept").await.created);
}
