#![allow(dead_code)]

use braid_core::definition::Bundle;
use braid_store::{
    DefinitionStore, EventRecord, RunRecord, RunStatus, RunStore, SaveOutcome, TaskRecord,
    TokenRecord, WriteOp,
};
use braid_store_sqlite::SqliteStore;
use serde_json::{Value, json};
use tempfile::TempDir;

/// A fresh database in a temporary directory (kept alive by the `TempDir`).
pub async fn open() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_path(dir.path().join("braid.db"))
        .await
        .unwrap();
    (dir, store)
}

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

pub async fn save_tiny(store: &SqliteStore, name: &str) -> SaveOutcome {
    store
        .save_bundle("proj_default", &tiny_bundle(name), 1)
        .await
        .unwrap()
}

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
    }
}

/// Saves a tiny workflow and creates one running run of it.
pub async fn setup_run(store: &SqliteStore, run_id: &str) -> RunRecord {
    let def = save_tiny(store, "wf").await;
    let run = run_record(run_id, &def, "wf", 1000);
    store
        .commit(vec![WriteOp::CreateRun(run.clone())])
        .await
        .unwrap();
    run
}

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
    }
}

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
