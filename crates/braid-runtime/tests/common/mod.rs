//! Test harness: an engine on a temp SQLite file, and a local HTTP server
//! that speaks the OpenAI Chat Completions wire format with a per-request plan.
#![allow(dead_code)]

use braid_core::definition::Bundle;
use braid_runtime::{Engine, Options};
use braid_store::RunRecord;
use braid_store_sqlite::SqliteStore;
pub use braid_testkit::*;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub struct TestEngine {
    pub engine: Engine,
    pub project: String,
    pub dir: tempfile::TempDir,
}

pub async fn engine() -> TestEngine {
    engine_with(Options::default()).await
}

pub async fn engine_with(opts: Options) -> TestEngine {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_path(dir.path().join("braid.db"))
        .await
        .unwrap();
    let engine = Engine::start(Arc::new(store), opts).await.unwrap();
    let project = engine.store().project_id("default").await.unwrap();
    TestEngine {
        engine,
        project,
        dir,
    }
}

impl TestEngine {
    /// The one child run of `run_id` (asserts there is exactly one).
    pub async fn only_child(&self, run_id: &str) -> RunRecord {
        let children = self.engine.store().children(run_id).await.unwrap();
        assert_eq!(children.len(), 1, "children of {run_id}: {children:?}");
        self.engine
            .store()
            .get_run(&children[0])
            .await
            .unwrap()
            .expect("the child run exists")
    }

    pub async fn save(&self, yaml: &str) {
        let bundle = Bundle::parse(yaml).unwrap();
        if let Err(e) = self.engine.save_definition(&self.project, &bundle).await {
            panic!("save failed: {e:?}");
        }
    }

    /// Runs a workflow to its end and checks that replay equals live.
    pub async fn run(&self, workflow: &str, input: Value) -> RunRecord {
        let id = self
            .engine
            .start_run(&self.project, workflow, None, input, None)
            .await
            .unwrap();
        let run = self
            .engine
            .wait(&id, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        self.assert_replay_matches(&run).await;
        run
    }

    /// Replay equals live: the state folded from the stored events alone,
    /// and from the latest snapshot plus the events after it, is the stored run.
    pub async fn assert_replay_matches(&self, run: &RunRecord) {
        use braid_core::state::RunState;
        let stored = self.events(&run.id).await;
        for (i, e) in stored.iter().enumerate() {
            assert_eq!(e.seq, i as i64 + 1, "contiguous seq");
        }
        assert_eq!(
            stored
                .iter()
                .filter(|e| matches!(
                    e.kind.as_str(),
                    "workflow_completed" | "workflow_failed" | "workflow_cancelled"
                ))
                .count(),
            1,
            "one final event"
        );
        let store = self.engine.store();
        let bundle = store
            .get_def_by_id(&run.def_id)
            .await
            .unwrap()
            .unwrap()
            .bundle;
        let env = braid_core::graph::Env {
            artifact_types: store
                .artifact_types(&run.project_id)
                .await
                .unwrap()
                .into_iter()
                .map(|a| (a.name, (a.version, a.schema)))
                .collect(),
            workflows: store
                .workflow_names(&run.project_id)
                .await
                .unwrap()
                .into_iter()
                .collect(),
        };
        let graph = braid_core::graph::compile(&bundle, &env).unwrap().graph;
        let events = self.core_events(&run.id).await;
        assert_eq!(events.len(), stored.len());
        let full = RunState::rebuild(&run.id, &graph, &events);
        assert_eq!(
            full.context.to_json(),
            run.context,
            "replayed context equals the stored run"
        );
        assert_eq!(serde_json::to_value(full.usage).unwrap(), run.usage);
        if let Some((seq, snapshot)) = store.latest_snapshot(&run.id).await.unwrap() {
            // As recovery does it (`load_state`): the snapshot, then the tail.
            let s: RunState = serde_json::from_value(snapshot).unwrap();
            let s = s.replay(&graph, events.iter().filter(|e| e.seq as i64 > seq));
            assert_eq!(s, full, "snapshot + tail equals a full replay");
        }
    }

    /// Every stored event of a run as core events (results put back in place).
    pub async fn core_events(&self, run_id: &str) -> Vec<braid_core::event::Event> {
        let mut all: Vec<braid_core::event::Event> = Vec::new();
        loop {
            let after = all.last().map(|e| e.seq as i64).unwrap_or(0);
            let page = braid_runtime::stored_events(self.engine.store().as_ref(), run_id, after)
                .await
                .unwrap();
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    /// Every stored event of a run (paged).
    pub async fn events(&self, run_id: &str) -> Vec<braid_store::EventRecord> {
        let mut all = Vec::new();
        loop {
            let after = all
                .last()
                .map(|e: &braid_store::EventRecord| e.seq)
                .unwrap_or(0);
            let page = self
                .engine
                .store()
                .events(run_id, after, 1000)
                .await
                .unwrap();
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }
}
