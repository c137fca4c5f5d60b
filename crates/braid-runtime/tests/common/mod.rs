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
    pub async fn save(&self, yaml: &str) {
        let bundle = Bundle::parse(yaml).unwrap();
        if let Err(e) = self.engine.save_definition(&self.project, &bundle).await {
            panic!("save failed: {e:?}");
        }
    }

    pub async fn run(&self, workflow: &str, input: Value) -> RunRecord {
        let id = self
            .engine
            .start_run(&self.project, workflow, None, input, None)
            .await
            .unwrap();
        self.engine
            .wait(&id, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap()
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
