//! Support for cluster.rs: a `braid serve` process of a cluster (its server
//! id, its metrics), SQL on the shared test database, the local provider's
//! answers and the workflows the tests run.

use crate::common::{Api, Braid, serve_command};
use braid_testkit::{Plan, openai_profile};
use futures::StreamExt as _;
use serde_json::{Value, json};
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// A process is dead after this long without a heartbeat: short, so that
/// adoption happens within the test's time.
pub const LEASE_MS: u64 = 1500;
pub const HEARTBEAT_MS: u64 = 200;

// ---------------------------------------------------------------------------
// The processes
// ---------------------------------------------------------------------------

/// One `braid serve --database-url` process of the cluster.
pub struct Node {
    pub braid: Braid,
    /// Its `servers` row (`srv_…`), from its start-up line.
    pub id: String,
    pub api: Api,
    /// A name for messages (`P0`, `A` …).
    pub name: String,
}

impl Node {
    /// Starts a process on `url` with the test's short lease and waits for
    /// its address and its `server srv_… (scale-out: …)` line.
    pub async fn start(name: &str, url: &str) -> Node {
        Node::start_with_lease(name, url, LEASE_MS).await
    }

    /// [`Node::start`] with a lease of `lease_ms`.
    pub async fn start_with_lease(name: &str, url: &str, lease_ms: u64) -> Node {
        let mut cmd = serve_command();
        cmd.args(["--database-url", url])
            .env("BRAID_SCALE_OUT__LEASE_MS", lease_ms.to_string())
            .env("BRAID_SCALE_OUT__HEARTBEAT_MS", HEARTBEAT_MS.to_string())
            // Adoption and fencing are logged at info; the runtime's lines
            // end up in the failure messages.
            .env(
                "BRAID_LOG",
                "warn,braid_runtime=info,braid_store_postgres=info",
            );
        let braid = Braid::launch(cmd).await;
        let end = Instant::now() + Duration::from_secs(10);
        let id = loop {
            if let Some(id) = server_id(&braid.log()) {
                break id;
            }
            assert!(
                Instant::now() < end,
                "{name}: no `server srv_… (scale-out: …)` line on stderr:\n{}",
                braid.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let api = braid.api();
        Node {
            braid,
            id,
            api,
            name: name.to_string(),
        }
    }

    /// The sum of every series of `metric` on its `/metrics` (0 when absent).
    pub async fn metric(&self, metric: &str) -> f64 {
        self.try_metric(metric)
            .await
            .unwrap_or_else(|| panic!("{}: GET /metrics failed", self.name))
    }

    /// [`Node::metric`], `None` when the process does not answer.
    pub async fn try_metric(&self, metric: &str) -> Option<f64> {
        let resp = self
            .api
            .http
            .get(format!("{}/metrics", self.api.base))
            .send()
            .await
            .ok()?;
        Some(metric_sum(&resp.text().await.ok()?, metric))
    }
}

/// The id of `server srv_… (scale-out: heartbeat H ms, lease L ms)`.
fn server_id(log: &str) -> Option<String> {
    log.lines()
        .filter(|l| l.contains("scale-out"))
        .flat_map(|l| l.split_whitespace())
        .find(|w| w.starts_with("srv_"))
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '_')
                .to_string()
        })
}

/// The sum of the samples of `metric` in a Prometheus text exposition.
fn metric_sum(text: &str, metric: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, rest) = l.split_at(l.find(['{', ' '])?);
            (name == metric).then_some(rest)
        })
        .filter_map(|rest| rest.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Every process's stderr, for failure messages.
pub fn logs(nodes: &[&Node]) -> String {
    nodes
        .iter()
        .map(|n| format!("--- {} ({}) stderr:\n{}", n.name, n.id, n.braid.log()))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------
// SQL on the test's own database
// ---------------------------------------------------------------------------

/// A pool on the test database: the test owns it, so it reads the tables
/// the API does not show (owners, epochs, servers).
pub struct Sql(pub PgPool);

impl Sql {
    pub async fn connect(url: &str) -> Sql {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .expect("connect to the test database");
        Sql(pool)
    }

    /// Running runs (children too) owned by `server`.
    pub async fn running_owned_by(&self, server: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT id FROM workflow_runs WHERE owner = $1 AND status = 'running' ORDER BY id",
        )
        .bind(server)
        .fetch_all(&self.0)
        .await
        .expect("runs by owner")
    }

    /// `(owner, epoch)` of a run.
    pub async fn owner(&self, run: &str) -> (Option<String>, i64) {
        sqlx::query_as("SELECT owner, epoch FROM workflow_runs WHERE id = $1")
            .bind(run)
            .fetch_one(&self.0)
            .await
            .expect("the run's owner")
    }

    pub async fn count(&self, query: &'static str) -> i64 {
        sqlx::query_scalar(query)
            .fetch_one(&self.0)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    /// Polls (bounded) until `query` counts zero; returns how long it took.
    pub async fn until_zero(
        &self,
        query: &'static str,
        bind: &str,
        deadline: Duration,
        what: impl Fn() -> String,
    ) -> Duration {
        self.wait_zero(query, bind, deadline)
            .await
            .unwrap_or_else(|n| {
                panic!(
                    "{}: still {n} after {deadline:?} ({query} with {bind})",
                    what()
                )
            })
    }

    /// Polls until `query` (with `$1` = `bind`) counts zero: how long it
    /// took, or the last count once `deadline` has passed.
    pub async fn wait_zero(
        &self,
        query: &'static str,
        bind: &str,
        deadline: Duration,
    ) -> Result<Duration, i64> {
        let t0 = Instant::now();
        loop {
            let n: i64 = sqlx::query_scalar(query)
                .bind(bind)
                .fetch_one(&self.0)
                .await
                .unwrap_or_else(|e| panic!("{query}: {e}"));
            if n == 0 {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > deadline {
                return Err(n);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Tasks whose lease has not run out, by claiming process: `(claimed_by,
    /// tasks, most deliveries, ms until the latest lease ends)`. What a run
    /// that does not move is waiting for.
    pub async fn leased_tasks(&self) -> Vec<(Option<String>, i64, i64, i64)> {
        sqlx::query_as(
            "SELECT claimed_by, count(*), max(deliveries),
                    max(lease_until) - (extract(epoch FROM clock_timestamp()) * 1000)::bigint
               FROM tasks
              WHERE lease_until > (extract(epoch FROM clock_timestamp()) * 1000)::bigint
              GROUP BY claimed_by",
        )
        .fetch_all(&self.0)
        .await
        .expect("leased tasks")
    }

    /// The invariants of the shared log, for every run of the database:
    /// seqs 1..last with no gap or duplicate; every event committed under an
    /// epoch that has exactly one owner in `run_owners`; epochs never
    /// decrease along a run's seqs.
    pub async fn check_logs(&self) {
        let gaps: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT run_id, count(*), min(seq), max(seq) FROM events GROUP BY run_id
             HAVING count(*) <> max(seq) OR min(seq) <> 1",
        )
        .fetch_all(&self.0)
        .await
        .expect("seq check");
        assert!(
            gaps.is_empty(),
            "event seqs are not 1..last_seq (run, count, min, max): {gaps:?}"
        );
        let owners: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT e.run_id, e.epoch, count(DISTINCT o.owner)
               FROM (SELECT DISTINCT run_id, epoch FROM events) e
               LEFT JOIN run_owners o ON o.run_id = e.run_id AND o.epoch = e.epoch
              GROUP BY e.run_id, e.epoch
             HAVING count(DISTINCT o.owner) <> 1",
        )
        .fetch_all(&self.0)
        .await
        .expect("owner check");
        assert!(
            owners.is_empty(),
            "events written under an epoch without exactly one owner (run, epoch, owners): {owners:?}"
        );
        let back: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT run_id, seq, epoch, prev FROM (
                SELECT run_id, seq, epoch, lag(epoch) OVER (PARTITION BY run_id ORDER BY seq) AS prev
                  FROM events) t
              WHERE prev > epoch ORDER BY run_id, seq LIMIT 20",
        )
        .fetch_all(&self.0)
        .await
        .expect("epoch order check");
        assert!(
            back.is_empty(),
            "an event committed under an older epoch after a newer one (run, seq, epoch, previous epoch): {back:?}"
        );
    }

    /// `(run, epoch, owner)` of every ownership change (epoch > 1), for the
    /// report.
    pub async fn adoptions(&self) -> Vec<(String, i64, String)> {
        sqlx::query_as(
            "SELECT run_id, epoch, owner FROM run_owners WHERE epoch > 1 ORDER BY run_id, epoch",
        )
        .fetch_all(&self.0)
        .await
        .expect("run_owners")
    }
}

// ---------------------------------------------------------------------------
// The live stream of a run
// ---------------------------------------------------------------------------

/// What a reader of a live stream got: the events' seqs and the `end`
/// frame, or what went wrong.
pub type Live = Result<(Vec<i64>, Value), String>;

/// Reads `/api/runs/{run}/live` on `base` to its end: the events' seqs and
/// the `end` frame, or what went wrong (a closed stream, no end within
/// `deadline`). Runs in a task of its own; the test judges the result.
pub async fn read_live(
    base: &str,
    run: &str,
    deadline: Duration,
) -> Result<(Vec<i64>, Value), String> {
    let url = format!("{}/api/runs/{run}/live", base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let end_at = tokio::time::Instant::now() + deadline;
    let mut seqs = Vec::new();
    loop {
        let Ok(msg) = tokio::time::timeout_at(end_at, ws.next()).await else {
            return Err(format!(
                "{url}: no end within {deadline:?}; seqs so far {seqs:?}"
            ));
        };
        let text = match msg {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => {
                return Err(format!(
                    "{url}: the stream stopped before its end: {other:?}; seqs {seqs:?}"
                ));
            }
        };
        let frame: Value = serde_json::from_str(text.as_str()).expect("a JSON frame");
        match frame["type"].as_str() {
            Some("events") => seqs.extend(
                frame["events"]
                    .as_array()
                    .expect("events")
                    .iter()
                    .map(|e| e["seq"].as_i64().expect("seq")),
            ),
            Some("end") => return Ok((seqs, frame)),
            _ => return Err(format!("{url}: unknown frame {frame}")),
        }
    }
}

// ---------------------------------------------------------------------------
// The local provider's answers
// ---------------------------------------------------------------------------

/// The user message of a Chat Completions request.
pub fn user_prompt(body: &Value) -> String {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// What a prompt is, parsed back from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// `<prefix> K branch I` of a fan-out branch.
    Branch(u64, u64),
    /// `Nested X` of the innermost child run.
    Nested(u64),
    /// `Flaky K`: fails `K % 3` times first.
    Flaky(u64),
    /// `Hold K`: never answered (a run kept running until cancelled).
    Hold(u64),
}

pub fn parse_prompt(prompt: &str) -> Option<Prompt> {
    let mut words = prompt.split_whitespace();
    let kind = words.next()?;
    let n: u64 = words.next()?.parse().ok()?;
    match kind {
        "Fan" | "Split" => {
            let _ = words.next()?;
            Some(Prompt::Branch(n, words.next()?.parse().ok()?))
        }
        "Nested" => Some(Prompt::Nested(n)),
        "Flaky" => Some(Prompt::Flaky(n)),
        "Hold" => Some(Prompt::Hold(n)),
        _ => None,
    }
}

/// The provider's successful answer to a prompt: a fixed function of it, so
/// a call made again (after a kill, by an adopter) gets the same answer.
pub fn answer(prompt: Prompt) -> Value {
    match prompt {
        Prompt::Branch(k, i) => json!({ "v": branch_value(k, i) }),
        Prompt::Nested(x) => json!({ "n": 3 * x + 1 }),
        Prompt::Flaky(k) => json!({ "answer": k * k + 7 }),
        Prompt::Hold(_) => Value::Null,
    }
}

/// How many times the provider fails `Flaky K` before answering, and how:
/// 500 first, then 429s.
pub fn flaky_failure(k: u64, call: usize) -> Option<Plan> {
    let failures = (k % 3) as usize;
    (call <= failures).then(|| Plan::status(if call == 1 { 500 } else { 429 }).after(20))
}

pub fn branch_value(k: u64, i: u64) -> u64 {
    k * 100 + i
}

/// A small delay per answer, derived from the prompt, so that answers of
/// different runs interleave.
pub fn delay_ms(prompt: Prompt) -> u64 {
    match prompt {
        Prompt::Branch(k, i) => 10 + (k * 37 + i * 53) % 60,
        Prompt::Nested(x) => 50 + (x * 41) % 100,
        Prompt::Flaky(k) => 30 + (k * 29) % 50,
        Prompt::Hold(_) => 0,
    }
}

// ---------------------------------------------------------------------------
// The workflows
// ---------------------------------------------------------------------------

/// Branches of a `cl_fan` run.
pub const FAN_BRANCHES: u64 = 20;

fn profile(llm_url: &str) -> String {
    // Enough slots that the calls of every process can be in flight at once
    // (the limit is shared between the live processes).
    openai_profile(llm_url, ", max_concurrency: 60")
}

/// `name`: prepare → `branches` × (ask the provider `<prefix> K branch I`,
/// write one artifact `{ k, i, v }`) → gather (join `all`, the artifact ids
/// appended in branch order) → `output.pieces`.
pub fn fan(name: &str, branches: u64, prefix: &str, llm_url: &str) -> String {
    r#"
name: @NAME@
input_schema: { type: object, required: [k], properties: { k: { type: integer } } }
initial_node: prepare
nodes:
  - ref: prepare
    action: { kind: update_context, updates: [ { path: state.k, expr: "input.k" } ] }
  - ref: score
    action: ask
    output_mapping: { state.v: "result.v" }
  - ref: write
    action:
      kind: write_artifact
      artifact_type: piece
      name: piece
      content_mapping: { k: "state.k", i: "_branch.index", v: "state.v" }
    output_mapping: { state.piece: "result.artifact_id" }
  - ref: gather
    fan_in: all
    joins: prepare
    merge: { source: piece, target: state.pieces, strategy: append }
    action: { kind: update_context, updates: [ { path: output.pieces, expr: "state.pieces" } ] }
transitions:
  - { from: prepare, to: score, spawn_count: @BRANCHES@ }
  - { from: score, to: write }
  - { from: write, to: gather }
actions:
  - ref: ask
    kind: llm_call
    prompt: p
    model: m
    execution: { timeout_ms: 120000 }
prompt_specs:
  - ref: p
    template: "@PREFIX@ {{state.k}} branch {{_branch.index}}"
    produces: { type: object, required: [v], properties: { v: { type: integer } } }
model_profiles:
@PROFILE@
artifact_types:
  - ref: piece
    schema:
      type: object
      required: [k, i, v]
      properties: { k: { type: integer }, i: { type: integer }, v: { type: integer } }
"#
    .replace("@NAME@", name)
    .replace("@BRANCHES@", &branches.to_string())
    .replace("@PREFIX@", prefix)
    .replace("@PROFILE@", &profile(llm_url))
}

/// `cl_outer` → `cl_middle` → `cl_inner` (workflow_call two levels deep);
/// the innermost asks the provider `Nested X+1`. Output `n = 6x + 13`.
pub fn nested(llm_url: &str) -> [String; 3] {
    let inner = r#"
name: cl_inner
input_schema: { type: object, required: [x], properties: { x: { type: integer } } }
initial_node: think
nodes:
  - ref: think
    action: { kind: llm_call, prompt: p, model: m, execution: { timeout_ms: 120000 } }
    output_mapping: { output.n: "result.n" }
prompt_specs:
  - ref: p
    template: "Nested {{input.x}}"
    produces: { type: object, required: [n], properties: { n: { type: integer } } }
model_profiles:
@PROFILE@
"#
    .replace("@PROFILE@", &profile(llm_url));
    let middle = r#"
name: cl_middle
input_schema: { type: object, required: [x], properties: { x: { type: integer } } }
initial_node: call
nodes:
  - ref: call
    action: { kind: workflow_call, workflow: cl_inner }
    input_mapping: { x: "input.x + 1" }
    output_mapping: { output.n: "result.n * 2" }
"#
    .to_string();
    let outer = r#"
name: cl_outer
input_schema: { type: object, required: [x], properties: { x: { type: integer } } }
initial_node: call
nodes:
  - ref: call
    action: { kind: workflow_call, workflow: cl_middle }
    input_mapping: { x: "input.x" }
    output_mapping: { output.n: "result.n + 5" }
"#
    .to_string();
    [inner, middle, outer]
}

/// `cl_outer`'s output for input `x`: ((3(x+1)+1)·2)+5.
pub fn nested_output(x: u64) -> u64 {
    (3 * (x + 1) + 1) * 2 + 5
}

/// One `llm_call` `Flaky K` with up to 4 attempts (linear backoff).
pub fn flaky(llm_url: &str) -> String {
    r#"
name: cl_flaky
input_schema: { type: object, required: [k], properties: { k: { type: integer } } }
initial_node: ask
nodes:
  - ref: ask
    action:
      kind: llm_call
      prompt: p
      model: m
      execution: { timeout_ms: 120000, retry_policy: { max_attempts: 4, backoff: linear, initial_delay_ms: 100 } }
    output_mapping: { output.answer: "result.answer" }
prompt_specs:
  - ref: p
    template: "Flaky {{input.k}}"
    produces: { type: object, required: [answer], properties: { answer: { type: integer } } }
model_profiles:
@PROFILE@
"#
    .replace("@PROFILE@", &profile(llm_url))
}

/// One `llm_call` `Hold K` the provider never answers: a run that stays
/// running until it is cancelled.
pub fn hold(llm_url: &str) -> String {
    r#"
name: cl_hold
input_schema: { type: object, required: [k], properties: { k: { type: integer } } }
initial_node: ask
nodes:
  - ref: ask
    action: { kind: llm_call, prompt: p, model: m, execution: { timeout_ms: 300000 } }
prompt_specs:
  - { ref: p, template: "Hold {{input.k}}" }
model_profiles:
@PROFILE@
"#
    .replace("@PROFILE@", &profile(llm_url))
}

// ---------------------------------------------------------------------------
// Expected results
// ---------------------------------------------------------------------------

/// A finished `cl_fan` / `cl_split` run with input `k`: completed once
/// (clean log), one artifact per branch write whose content is
/// `{ k, i, v }`, and `output.pieces` the artifact ids in branch order.
pub async fn check_fan_run(api: &Api, run: &str, k: u64, branches: u64) {
    let body = api.get(&format!("/api/runs/{run}")).await;
    assert_eq!(
        body["status"], "completed",
        "fan run {run} (k {k}): {body:#}"
    );
    let events = crate::common::check_event_log(api, run).await;
    assert_eq!(
        crate::common::count(&events, "node_completed", Some("write")),
        branches as usize,
        "run {run}: one applied write per branch"
    );
    let pieces: Vec<String> = body["context"]["output"]["pieces"]
        .as_array()
        .unwrap_or_else(|| panic!("run {run}: output.pieces: {body:#}"))
        .iter()
        .map(|p| p.as_str().expect("an artifact id").to_string())
        .collect();
    let artifacts = api.all(&format!("/api/artifacts?run={run}")).await;
    assert_eq!(
        artifacts.len(),
        branches as usize,
        "run {run} (k {k}): exactly one artifact per write: {artifacts:#?}"
    );
    assert_eq!(pieces.len(), branches as usize, "run {run}: {pieces:?}");
    for (i, id) in pieces.iter().enumerate() {
        let a = artifacts
            .iter()
            .find(|a| a["id"] == id.as_str())
            .unwrap_or_else(|| {
                panic!("run {run}: output piece {id} is not an artifact of the run")
            });
        let i = i as u64;
        assert_eq!(
            a["content"],
            json!({ "k": k, "i": i, "v": branch_value(k, i) }),
            "run {run}: branch {i}'s artifact"
        );
        assert_eq!(a["created_by_node"], "write");
    }
}

/// A finished `cl_outer` run with input `x`, its two descendants completed
/// once each with their own outputs.
pub async fn check_nested_run(api: &Api, run: &str, x: u64) {
    let mut id = run.to_string();
    let expect = [
        ("cl_outer", nested_output(x)),
        ("cl_middle", (3 * (x + 1) + 1) * 2),
        ("cl_inner", 3 * (x + 1) + 1),
    ];
    for (level, (workflow, n)) in expect.iter().enumerate() {
        let body = api.get(&format!("/api/runs/{id}")).await;
        assert_eq!(
            body["status"], "completed",
            "{workflow} run {id} (x {x}): {body:#}"
        );
        assert_eq!(body["workflow"]["name"], *workflow, "run {id}");
        assert_eq!(
            body["context"]["output"],
            json!({ "n": n }),
            "{workflow} run {id} (x {x}) output"
        );
        crate::common::check_event_log(api, &id).await;
        let children = body["children"].as_array().expect("children");
        if level < 2 {
            assert_eq!(
                children.len(),
                1,
                "{workflow} run {id}: one child: {children:?}"
            );
            id = children[0].as_str().expect("a child id").to_string();
        } else {
            assert!(children.is_empty(), "{children:?}");
        }
    }
}

/// A finished `cl_flaky` run with input `k`; returns its retries.
pub async fn check_flaky_run(api: &Api, run: &str, k: u64) -> usize {
    let body = api.get(&format!("/api/runs/{run}")).await;
    assert_eq!(
        body["status"], "completed",
        "flaky run {run} (k {k}): {body:#}"
    );
    assert_eq!(
        body["context"]["output"],
        json!({ "answer": k * k + 7 }),
        "flaky run {run} (k {k})"
    );
    let events = crate::common::check_event_log(api, run).await;
    let retries = crate::common::count(&events, "node_retrying", Some("ask"));
    // A failed answer whose commit a kill prevented is asked again and then
    // succeeds, so a run may retry less than the provider failed, never more.
    assert!(
        retries <= (k % 3) as usize,
        "run {run} (k {k}): {retries} retries for {} failures",
        k % 3
    );
    retries
}
