//! SQLite specifics of definitions: rows written by hand with SQL, the
//! documented example, and a file reopened. The behaviour every backend
//! shares is in `conformance.rs`.

mod common;

use braid_core::definition::Bundle;
use braid_store::DefinitionStore;
use common::{bundle, open, save_tiny};
use serde_json::json;
use sqlx::{Connection, SqliteConnection};

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
