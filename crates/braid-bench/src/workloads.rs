//! The standard workloads of `bench/WORKLOADS.md` as Braid definitions, and
//! timed executions of them on an in-process engine over the durable SQLite
//! store (WAL, `synchronous=FULL`, the store's defaults).
//!
//! A [`Bench`] is one engine on a fresh database with one workload saved; each
//! [`Bench::run`] starts one run and times it from `start_run` until `wait`
//! returns the ended run (the caller's view: the run's end is durable).

use anyhow::{Context, anyhow, bail};
use braid_core::definition::Bundle;
use braid_runtime::{Engine, Options};
use braid_store::{RunRecord, RunStatus, Store};
use braid_store_sqlite::SqliteStore;
use braid_testkit::{MockLlm, MockState, Plan, openai_profile};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Latency of the mock model in W3 (ms).
pub const JUDGE_LATENCY_MS: u64 = 100;
/// W5: attempts in all, and the delay before each retry (ms).
pub const RETRY_ATTEMPTS: u64 = 3;
/// W5: the configured delay before each retry (ms).
pub const RETRY_DELAY_MS: u64 = 10;
/// W4: nesting depth (levels of workflows; the innermost returns 100).
pub const NEST_DEPTH: u64 = 6;
/// `scale_out.heartbeat_ms` and `lease_ms` of `braid serve`'s defaults, for
/// the engine on PostgreSQL.
const PG_HEARTBEAT_MS: u64 = 1_000;
const PG_LEASE_MS: i64 = 10_000;
/// How long one run may take before the bench gives up on it.
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

/// One of the five standard workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Workload {
    /// Chain of N `update_context` steps.
    W1,
    /// Fan-out of N branches, join `all` with `append`, final count.
    W2,
    /// J judges calling a 100 ms model, join `all`, majority.
    W3,
    /// Six nested `workflow_call`s.
    W4,
    /// A model call that fails twice (503) and succeeds on attempt 3.
    W5,
}

impl Workload {
    /// All workloads in order.
    pub const ALL: [Workload; 5] = [
        Workload::W1,
        Workload::W2,
        Workload::W3,
        Workload::W4,
        Workload::W5,
    ];

    /// `W1` … `W5` (case-insensitive).
    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name().eq_ignore_ascii_case(s))
    }

    /// `W1` … `W5`.
    pub fn name(self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::W4 => "W4",
            Workload::W5 => "W5",
        }
    }

    /// The sizes of the standard run.
    pub fn sizes(self) -> &'static [u64] {
        match self {
            Workload::W1 => &[100, 1_000, 10_000],
            Workload::W2 => &[10, 100, 1_000, 10_000, 100_000],
            Workload::W3 => &[3, 100],
            Workload::W4 => &[NEST_DEPTH],
            Workload::W5 => &[RETRY_ATTEMPTS],
        }
    }

    /// Timed runs after the warm-up: 5, and 3 for W2 with 100,000 branches.
    pub fn runs(self, size: u64) -> usize {
        if self == Workload::W2 && size >= 100_000 {
            3
        } else {
            5
        }
    }

    /// What a size counts.
    pub fn size_unit(self) -> &'static str {
        match self {
            Workload::W1 => "steps",
            Workload::W2 => "branches",
            Workload::W3 => "judges",
            Workload::W4 => "depth",
            Workload::W5 => "attempts",
        }
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// W1: `n` nodes `s0 → s1 → …`, each incrementing `state.count`.
pub fn w1_chain(n: u64) -> Bundle {
    let nodes: Vec<Value> = (0..n)
        .map(|k| {
            json!({ "ref": format!("s{k}"), "action": { "kind": "update_context", "updates": [
                { "path": "state.count", "expr": "(has(state.count) ? state.count : 0) + 1" } ] } })
        })
        .collect();
    let transitions: Vec<Value> = (1..n)
        .map(|k| json!({ "from": format!("s{}", k - 1), "to": format!("s{k}") }))
        .collect();
    from_json(
        json!({ "name": "w1_chain", "initial_node": "s0", "nodes": nodes, "transitions": transitions,
            "output_mapping": { "count": "state.count" } }),
    )
}

/// W2: one node fans out `input.n` branches, each writes `state.i = _branch.index`;
/// a join `all` appends every `i` into `state.is` and counts them (cel 0.15 has
/// no sum: the bench sums `state.is` from the stored run).
pub fn w2_fanout() -> Bundle {
    from_json(json!({
        "name": "w2_fanout", "initial_node": "fan",
        "nodes": [
            { "ref": "fan", "action": { "kind": "update_context" } },
            { "ref": "branch", "action": { "kind": "update_context", "updates": [ { "path": "state.i", "expr": "_branch.index" } ] } },
            { "ref": "join", "fan_in": "all", "joins": "fan",
              "merge": { "source": "i", "target": "state.is", "strategy": "append" },
              "action": { "kind": "update_context", "updates": [ { "path": "output.count", "expr": "state.is.size()" } ] } }
        ],
        "transitions": [
            { "from": "fan", "to": "branch", "spawn_count": "input.n" },
            { "from": "branch", "to": "join" }
        ]
    }))
}

/// W3: `j` judges, one `llm_call` each to the model at `url` (`max_concurrency: j`),
/// joined with `all`; the majority of the votes wins.
pub fn w3_judges(url: &str, j: u64) -> Bundle {
    let yaml = format!(
        r#"
name: w3_judges
initial_node: ask
nodes:
  - ref: ask
    action: {{ kind: update_context, updates: [ {{ path: state.question, expr: "input.question" }} ] }}
  - ref: judge
    action: {{ kind: llm_call, prompt: p, model: m }}
    output_mapping: {{ state.vote: "result.vote" }}
  - ref: tally
    fan_in: all
    joins: ask
    merge: {{ source: vote, target: state.votes, strategy: append }}
    action: {{ kind: update_context, updates: [ {{ path: output.winner, expr: "state.votes.filter(v, v == 'A').size() * 2 > state.votes.size() ? 'A' : 'B'" }}, {{ path: output.votes, expr: "state.votes.size()" }} ] }}
transitions:
  - {{ from: ask, to: judge, spawn_count: {j} }}
  - {{ from: judge, to: tally }}
prompt_specs:
  - {{ ref: p, template: "{{{{state.question}}}} -- judge {{{{_branch.index}}}}", produces: {{ type: object, required: [vote], properties: {{ vote: {{ type: string }} }} }} }}
model_profiles:
{}
"#,
        openai_profile(url, &format!(", max_concurrency: {}", j.max(16)))
    );
    parse(&yaml)
}

/// The bench's own definitions always parse; a failure is a bug of the bench
/// (or a change of the definition format) and is reported as the run's error.
fn parse(text: &str) -> Bundle {
    Bundle::parse(text).unwrap_or_else(|e| panic!("a bench definition does not parse: {e}"))
}

fn from_json(value: Value) -> Bundle {
    Bundle::from_value(value).unwrap_or_else(|e| panic!("a bench definition does not parse: {e}"))
}

/// The workflow name of W4 level `k` (1 = outermost).
fn w4_name(k: u64) -> String {
    format!("w4_level{k}")
}

/// W4: `depth` workflows, innermost first (each must exist before the one that
/// calls it is saved). Level `depth` returns `{ value: 100 }`; level k < depth
/// calls level k + 1 with `workflow_call` and returns the child's value + 1.
pub fn w4_nested(depth: u64) -> Vec<Bundle> {
    (1..=depth)
        .rev()
        .map(|k| {
            from_json(if k == depth {
                json!({ "name": w4_name(k), "initial_node": "leaf", "nodes": [
                    { "ref": "leaf", "action": { "kind": "update_context", "updates": [ { "path": "output.value", "expr": "100" } ] } } ] })
            } else {
                json!({ "name": w4_name(k), "initial_node": "call", "nodes": [
                    { "ref": "call", "action": { "kind": "workflow_call", "workflow": w4_name(k + 1) },
                      "input_mapping": { "depth": "input.depth + 1" },
                      "output_mapping": { "output.value": "result.value + 1" } } ] })
            })
        })
        .collect()
}

/// W5: one `llm_call` with `max_attempts: 3` and a constant 10 ms delay between
/// attempts (`linear` from 10 ms capped at 10 ms, so 10 + 10 ms as the peers'
/// constant-interval policies; Braid adds ±10 % jitter, which the bench reads
/// back from the `node_retrying` events).
pub fn w5_retry(url: &str) -> Bundle {
    let yaml = format!(
        r#"
name: w5_retry
initial_node: flaky
nodes:
  - ref: flaky
    action: {{ kind: llm_call, prompt: p, model: m }}
    execution: {{ retry_policy: {{ max_attempts: {RETRY_ATTEMPTS}, backoff: linear, initial_delay_ms: {RETRY_DELAY_MS}, max_delay_ms: {RETRY_DELAY_MS} }} }}
    output_mapping: {{ output.value: "result.value" }}
prompt_specs:
  - {{ ref: p, template: "flaky", produces: {{ type: object, required: [value], properties: {{ value: {{ type: integer }} }} }} }}
model_profiles:
{}
"#,
        openai_profile(url, "")
    );
    parse(&yaml)
}

/// The mock model on a runtime of its own (one thread), standing in for an
/// external server as the peers' `mock_llm/server.py` does.
struct MockServer {
    mock: MockLlm,
    rt: Option<tokio::runtime::Runtime>,
}

impl MockServer {
    async fn start(
        planner: impl Fn(usize, &Value) -> Plan + Send + Sync + 'static,
    ) -> anyhow::Result<MockServer> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mock-llm")
            .enable_all()
            .build()?;
        let mock = rt.spawn(MockLlm::start(planner)).await?;
        Ok(MockServer { mock, rt: Some(rt) })
    }

    fn state(&self) -> &MockState {
        &self.mock.state
    }

    fn request_count(&self) -> usize {
        self.state().requests.lock().expect("mock requests").len()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The branch index a W3 prompt names (`… -- judge 7`).
fn judge_index(body: &Value) -> usize {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .and_then(|p| p.rsplit(' ').next())
        .and_then(|i| i.parse().ok())
        .unwrap_or(0)
}

/// One timed execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// The run (the top-level one for W4).
    pub run_id: String,
    /// From `start_run` until `wait` returned the ended run.
    pub secs: f64,
    /// Events of the run (and of its child runs), as stored.
    pub events: u64,
    /// Workload-specific figures (`max_inflight`, `delays_ms`, `overhead_ms`, …).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// A run started by [`Bench::start`], for [`Bench::finish`].
pub struct Started {
    /// The run.
    pub id: String,
    /// When `start_run` was called.
    pub t0: Instant,
    requests_before: Option<usize>,
}

/// Where a bench's database lives.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A SQLite file in a new temp dir under this directory (the real disk).
    Sqlite(std::path::PathBuf),
    /// A new database on the PostgreSQL server of this URL, dropped after the case.
    Postgres(String),
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// What holds a bench's database while it runs.
enum Holder {
    /// The temp dir of the SQLite file, removed on drop.
    Dir(#[allow(dead_code)] tempfile::TempDir),
    /// The PostgreSQL database, dropped by [`Bench::shutdown`].
    Pg(crate::pg::BenchDb),
}

/// An engine on a fresh database with one workload saved.
pub struct Bench {
    /// The engine under test.
    pub engine: Engine,
    project: String,
    workload: Workload,
    size: u64,
    workflow: String,
    input: Value,
    mock: Option<MockServer>,
    /// Holds the database.
    holder: std::sync::Mutex<Option<Holder>>,
}

impl Bench {
    /// Opens a store in a new temp dir under `db_parent`, starts an engine and
    /// saves the workload's definitions (and starts the mock model for W3/W5).
    pub async fn prepare(workload: Workload, size: u64, db_parent: &Path) -> anyhow::Result<Bench> {
        Bench::prepare_on(workload, size, &Backend::Sqlite(db_parent.to_path_buf())).await
    }

    /// [`Bench::prepare`] on either backend: a SQLite file in a new temp
    /// dir, or a new database on a PostgreSQL server.
    pub async fn prepare_on(
        workload: Workload,
        size: u64,
        backend: &Backend,
    ) -> anyhow::Result<Bench> {
        let (store, holder, options): (Arc<dyn Store>, Holder, Options) = match backend {
            Backend::Sqlite(db_parent) => {
                let dir = tempfile::Builder::new()
                    .prefix("braid-bench-")
                    .tempdir_in(db_parent)
                    .with_context(|| format!("creating a temp dir in {}", db_parent.display()))?;
                let store = SqliteStore::open_path(dir.path().join("braid.db")).await?;
                (Arc::new(store), Holder::Dir(dir), Options::default())
            }
            Backend::Postgres(server) => {
                let db = crate::pg::BenchDb::create(server).await?;
                let mut store = match braid_store_postgres::PgStore::connect_url(db.url()).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = db.drop_now().await;
                        bail!("opening the bench database: {e}");
                    }
                };
                // As `braid serve --database-url` runs: one process of a
                // cluster (a `servers` row with heartbeats, ownership,
                // fencing on every commit), with the default scale-out
                // settings.
                let server_id = braid_runtime::IdGen::id(&braid_runtime::UuidIds, "srv");
                store.serve_as(&server_id);
                let store = Arc::new(store);
                let options = Options {
                    exclusive: false,
                    cluster: Some(braid_runtime::ClusterOptions {
                        store: store.clone(),
                        server_id,
                        heartbeat_ms: PG_HEARTBEAT_MS,
                        lease_ms: PG_LEASE_MS,
                    }),
                    ..Options::default()
                };
                (store, Holder::Pg(db), options)
            }
        };
        let engine = Engine::start(store, options).await?;
        let project = engine.store().project_id("default").await?;
        let (mock, bundles, workflow, input) = match workload {
            Workload::W1 => (None, vec![w1_chain(size)], "w1_chain", json!({})),
            Workload::W2 => (None, vec![w2_fanout()], "w2_fanout", json!({ "n": size })),
            Workload::W3 => {
                let mock = MockServer::start(|_, body| {
                    let vote = if judge_index(body) % 3 == 1 { "B" } else { "A" };
                    Plan::ok(&json!({ "vote": vote }).to_string()).after(JUDGE_LATENCY_MS)
                })
                .await?;
                let def = w3_judges(&mock.mock.url, size);
                (
                    Some(mock),
                    vec![def],
                    "w3_judges",
                    json!({ "question": "tabs or spaces?" }),
                )
            }
            Workload::W4 => (None, w4_nested(size), "w4_level1", json!({ "depth": 1 })),
            Workload::W5 => {
                // Every run makes three requests: 503, 503, then an answer.
                let mock = MockServer::start(|n, _| {
                    if n % 3 < 2 {
                        Plan::status(503)
                    } else {
                        Plan::ok(r#"{"value":1}"#)
                    }
                })
                .await?;
                let def = w5_retry(&mock.mock.url);
                (Some(mock), vec![def], "w5_retry", json!({}))
            }
        };
        for bundle in bundles {
            engine
                .save_definition(&project, &bundle)
                .await
                .map_err(|e| anyhow!("saving `{}`: {e:?}", bundle.name))?;
        }
        Ok(Bench {
            engine,
            project,
            workload,
            size,
            workflow: workflow.to_string(),
            input,
            mock,
            holder: std::sync::Mutex::new(Some(holder)),
        })
    }

    /// The PostgreSQL database's name (none on SQLite).
    pub fn database_name(&self) -> Option<String> {
        match &*self.holder.lock().expect("holder") {
            Some(Holder::Pg(db)) => Some(db.name().to_string()),
            _ => None,
        }
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.engine.store()
    }

    /// One timed run, checked.
    pub async fn run(&self) -> anyhow::Result<Sample> {
        let started = self.start().await?;
        self.finish(started).await
    }

    /// Starts a run of the workload (the timed part begins here).
    pub async fn start(&self) -> anyhow::Result<Started> {
        let requests_before = self.mock.as_ref().map(|m| m.request_count());
        if let Some(m) = &self.mock {
            m.state().max_inflight.store(0, Ordering::SeqCst);
        }
        let t0 = Instant::now();
        let id = self
            .engine
            .start_run(
                &self.project,
                &self.workflow,
                None,
                self.input.clone(),
                None,
            )
            .await
            .map_err(|e| anyhow!("start_run: {e}"))?;
        Ok(Started {
            id,
            t0,
            requests_before,
        })
    }

    /// Waits for a started run to end and checks it.
    pub async fn finish(&self, started: Started) -> anyhow::Result<Sample> {
        let Started {
            id,
            t0,
            requests_before,
        } = started;
        let run = self
            .engine
            .wait(&id, RUN_TIMEOUT)
            .await
            .map_err(|e| anyhow!("wait: {e}"))?
            .ok_or_else(|| anyhow!("run {id} vanished"))?;
        let secs = t0.elapsed().as_secs_f64();

        if run.status != RunStatus::Completed {
            let msg = run
                .error
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_else(|| format!("{:?}", run.status));
            if run.status == RunStatus::Running {
                bail!("run {id} still running after {RUN_TIMEOUT:?}");
            }
            bail!("run {id} ended {:?}: {msg}", run.status);
        }
        let events = self.event_total(&run).await?;
        let mut extra = Map::new();
        self.check(&run, secs, requests_before, &mut extra).await?;
        Ok(Sample {
            run_id: run.id.clone(),
            secs,
            events,
            extra,
        })
    }

    /// The stored `last_seq` of the run and of every run below it (events are
    /// numbered 1, 2, 3 … per run with no gaps, so that is the event count).
    async fn event_total(&self, run: &RunRecord) -> anyhow::Result<u64> {
        let mut total = run.last_seq as u64;
        let mut stack = self.store().children(&run.id).await?;
        while let Some(child) = stack.pop() {
            let r = self
                .store()
                .get_run(&child)
                .await?
                .ok_or_else(|| anyhow!("child run {child} not found"))?;
            total += r.last_seq as u64;
            stack.extend(self.store().children(&child).await?);
        }
        Ok(total)
    }

    /// Times `node_stats` and the first page of `sibling_sets` of an ended
    /// run, `calls` times each, and checks that the aggregates add up to
    /// the run's tokens.
    pub async fn time_run_view(
        &self,
        run_id: &str,
        calls: usize,
    ) -> anyhow::Result<crate::one::ViewTimes> {
        let mut times = crate::one::ViewTimes::default();
        for _ in 0..calls {
            let t0 = Instant::now();
            let stats = self.store().node_stats(run_id).await?;
            times.node_stats_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            let visits: u64 = stats.iter().flat_map(|s| &s.visits).map(|(_, n)| n).sum();
            if self.workload == Workload::W2 && visits != 2 * self.size + 2 {
                bail!(
                    "run {run_id}: node_stats counts {visits} visits, expected {}",
                    2 * self.size + 2
                );
            }
            let t0 = Instant::now();
            let sets = self
                .store()
                .sibling_sets(run_id, &braid_store::ParentFilter::Any, None, 100)
                .await?;
            times.sibling_sets_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            if self.workload == Workload::W2 && sets.items.len() != 1 {
                bail!(
                    "run {run_id}: {} sibling sets, expected one",
                    sets.items.len()
                );
            }
        }
        Ok(times)
    }

    /// Counts the stored events of a run tree row by row (paged) — the check
    /// that `last_seq` is the event count.
    pub async fn count_stored_events(&self, run_id: &str) -> anyhow::Result<u64> {
        let mut total = 0;
        let mut stack = vec![run_id.to_string()];
        while let Some(id) = stack.pop() {
            let mut after = 0;
            loop {
                let page = self.store().events(&id, after, 1000).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                total += page.len() as u64;
            }
            stack.extend(self.store().children(&id).await?);
        }
        Ok(total)
    }

    /// The workload's correctness check; fills workload-specific figures.
    async fn check(
        &self,
        run: &RunRecord,
        secs: f64,
        requests_before: Option<usize>,
        extra: &mut Map<String, Value>,
    ) -> anyhow::Result<()> {
        let ctx = &run.context;
        let n = self.size;
        match self.workload {
            Workload::W1 => {
                let count = ctx["output"]["count"].as_u64();
                if count != Some(n) {
                    bail!("W1: count is {count:?}, expected {n}");
                }
            }
            Workload::W2 => {
                let is = ctx["state"]["is"]
                    .as_array()
                    .ok_or_else(|| anyhow!("W2: state.is is not a list"))?;
                let sum: u64 = is.iter().filter_map(Value::as_u64).sum();
                let expected = n * n.saturating_sub(1) / 2;
                if is.len() as u64 != n || sum != expected || ctx["output"]["count"] != json!(n) {
                    bail!(
                        "W2: {} values summing to {sum}, expected {n} summing to {expected}",
                        is.len()
                    );
                }
                extra.insert("sum".into(), json!(sum));
            }
            Workload::W3 => {
                let mock = self.mock.as_ref().expect("W3 has a mock");
                let votes = ctx["output"]["votes"].as_u64();
                if ctx["output"]["winner"] != json!("A") || votes != Some(n) {
                    bail!(
                        "W3: output {}, expected winner A with {n} votes",
                        ctx["output"]
                    );
                }
                let calls = mock.request_count() - requests_before.unwrap_or(0);
                if calls as u64 != n {
                    bail!("W3: {calls} model calls, expected {n}");
                }
                extra.insert(
                    "max_inflight".into(),
                    json!(mock.state().max_inflight.load(Ordering::SeqCst)),
                );
                extra.insert(
                    "overhead_ms".into(),
                    json!(secs * 1e3 - JUDGE_LATENCY_MS as f64),
                );
            }
            Workload::W4 => {
                let expected = 100 + n - 1;
                if ctx["output"]["value"] != json!(expected) {
                    bail!("W4: value {}, expected {expected}", ctx["output"]["value"]);
                }
            }
            Workload::W5 => {
                let mock = self.mock.as_ref().expect("W5 has a mock");
                let attempts = mock.request_count() - requests_before.unwrap_or(0);
                if attempts as u64 != RETRY_ATTEMPTS || ctx["output"]["value"] != json!(1) {
                    bail!(
                        "W5: {attempts} attempts and value {}, expected {RETRY_ATTEMPTS} attempts and 1",
                        ctx["output"]["value"]
                    );
                }
                let events = self.store().events(&run.id, 0, 1000).await?;
                let delays: Vec<u64> = events
                    .iter()
                    .filter(|e| e.kind == "node_retrying")
                    .filter_map(|e| e.payload["delay_ms"].as_u64())
                    .collect();
                if delays.len() as u64 != RETRY_ATTEMPTS - 1 {
                    bail!("W5: {} node_retrying events, expected 2", delays.len());
                }
                let total: u64 = delays.iter().sum();
                extra.insert("attempts".into(), json!(attempts));
                extra.insert("delays_ms".into(), json!(total));
                extra.insert("overhead_ms".into(), json!(secs * 1e3 - total as f64));
            }
        }
        Ok(())
    }

    /// Stops the executors; drops a PostgreSQL database (a SQLite temp dir
    /// goes when the bench is dropped).
    pub async fn shutdown(&self) {
        self.engine.shutdown(Duration::from_secs(5)).await;
        let pg = {
            let mut held = self.holder.lock().expect("holder");
            match held.take() {
                Some(Holder::Pg(db)) => Some(db),
                other => {
                    *held = other;
                    None
                }
            }
        };
        if let Some(db) = pg {
            let name = db.name().to_string();
            if let Err(e) = db.drop_now().await {
                eprintln!("dropping the bench database {name}: {e:#}");
            }
        }
    }
}

/// Peak resident memory of this process (`VmHWM`, KiB).
pub fn vmhwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
