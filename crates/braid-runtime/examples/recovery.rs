//! Measures recovery: a live run with about 100,000 events is adopted by a
//! fresh engine on the same database, with and without a recent snapshot.
//!
//! `cargo run --release -p braid-runtime --example recovery [-- STEPS]`

use braid_core::definition::Bundle;
use braid_runtime::{Engine, Options};
use braid_store_sqlite::SqliteStore;
use braid_testkit::{MockLlm, Plan};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(25_000);
    let mock = MockLlm::start(|_, _| Plan::never()).await;
    for (label, every) in [
        ("snapshots every 100 events", 100u64),
        ("no snapshot (interval above the run)", u64::MAX / 4),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("braid.db");
        let opts = || Options {
            snapshot_every_events: every,
            exclusive: false,
            ..Options::default()
        };
        let engine = Engine::start(Arc::new(SqliteStore::open_path(&db).await.unwrap()), opts())
            .await
            .unwrap();
        // A chain of pure steps, then a call that never answers: the run stays live.
        let mut nodes: Vec<serde_json::Value> = (0..steps)
            .map(|k| json!({ "ref": format!("s{k}"), "action": { "kind": "update_context", "updates": [ { "path": "state.n", "expr": k.to_string() } ] } }))
            .collect();
        nodes.push(
            json!({ "ref": "wait", "action": { "kind": "llm_call", "prompt": "p", "model": "m" } }),
        );
        let mut transitions: Vec<serde_json::Value> = (1..steps)
            .map(|k| json!({ "from": format!("s{}", k - 1), "to": format!("s{k}") }))
            .collect();
        transitions.push(json!({ "from": format!("s{}", steps - 1), "to": "wait" }));
        let bundle = json!({
            "name": "long", "initial_node": "s0", "nodes": nodes, "transitions": transitions,
            "prompt_specs": [ { "ref": "p", "template": "x" } ],
            "model_profiles": [ { "ref": "m", "provider": "openai_compatible", "model": "x", "base_url": mock.url } ],
        });
        let project = engine.store().project_id("default").await.unwrap();
        engine
            .save_definition(&project, &Bundle::from_value(bundle).unwrap())
            .await
            .unwrap();
        let before = mock.state.requests.lock().unwrap().len();
        let id = engine
            .start_run(&project, "long", None, json!({}), None)
            .await
            .unwrap();
        while mock.state.requests.lock().unwrap().len() == before {
            tokio::task::yield_now().await;
        }
        let events = engine.store().get_run(&id).await.unwrap().unwrap().last_seq;
        let snapshot = engine
            .store()
            .latest_snapshot(&id)
            .await
            .unwrap()
            .map(|s| s.0);
        // A second engine on the same file adopts the live run.
        let started = Instant::now();
        let second = Engine::start(Arc::new(SqliteStore::open_path(&db).await.unwrap()), opts())
            .await
            .unwrap();
        let took = started.elapsed();
        println!(
            "{label}: run with {events} events (snapshot at {:?}) recovered in {:.1} ms",
            snapshot,
            took.as_secs_f64() * 1000.0
        );
        drop(second);
        drop(engine);
        let _ = mock.state.inflight.load(Ordering::SeqCst);
    }
}
