//! Crash tests of `braid serve` as a real process over a SQLite file:
//!
//! - SIGKILL at seeded random moments while 20 fan-out runs are in flight,
//!   restart on the same file: every run ends exactly as an uninterrupted run
//!   would (outputs, one artifact per run, a gap-free event log with one final
//!   event, every result applied once); one seed also runs on PostgreSQL
//!   (`--database-url`, a database of `scripts/pg.sh`'s test server of its
//!   own; without that server it prints why and passes, except under
//!   `CI=true`);
//! - a retry that was waiting (durable `not_before`) when the process was
//!   killed still happens after the restart, not before its time;
//! - SIGTERM lets in-flight LLM calls finish, makes their results durable and
//!   exits 0; after a restart the runs continue without calling again.
//!
//! The mock LLM (braid-testkit) runs in the test process, so it outlives the
//! server processes and counts every call across restarts. Its answers are
//! functions of the prompt, so a call delivered again gets the same answer.
//!
//! Reproduce or explore crash points:
//! `BRAID_CRASH_SEED=<seed>[,<seed>…] cargo test -p braid-cli --test crash -- --nocapture`
//! (seeds are decimal or 0x-hex; each prints its kill points).

use braid_store_postgres::testing::TestDb;
use braid_testkit::{MockLlm, Plan};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs started per crash case.
const RUNS: u64 = 20;
/// Judges per run (the fan-out).
const JUDGES: u64 = 3;
/// The crash cases CI runs (`BRAID_CRASH_SEED` replaces them), chosen to
/// cover: a kill before most calls started (0x10), in the middle of the LLM
/// phase (0xb, 0xe), after every call answered, during the artifact writes
/// and final commits (0xd, 0x1d); recovery from snapshot + tail (0x13, 0x1d,
/// 0xe: small `snapshot_every_events`); a second kill during recovery
/// (0x10, 0x13, 0xb).
const SEEDS: [u64; 6] = [0x10, 0x13, 0xd, 0x1d, 0xe, 0xb];
/// The crash case run on PostgreSQL as well: recovery from snapshots
/// (`snapshot_every_events` 2) and a second kill 28 ms into recovery.
const PG_SEEDS: [u64; 1] = [0x13];
/// How long runs may take to end after the last restart. Shorter than the
/// default 30 s task lease on purpose: a restarted server must not wait for
/// the leases of the process it replaces.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(20);
/// Poll interval for the HTTP API.
const POLL: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------

/// A `braid serve` child process; killed (SIGKILL) when dropped.
struct Braid {
    child: Option<Child>,
    pid: u32,
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// Everything the process wrote to stderr so far.
    log: Arc<Mutex<String>>,
}

/// Where a `braid serve` keeps its state, as the flags that name it: a
/// SQLite file (`Path`) or a PostgreSQL database ([`PgUrl`]).
trait StoreFlags {
    fn flags(&self) -> Vec<OsString>;
}

impl StoreFlags for Path {
    fn flags(&self) -> Vec<OsString> {
        vec!["--db".into(), self.into()]
    }
}

impl StoreFlags for PathBuf {
    fn flags(&self) -> Vec<OsString> {
        self.as_path().flags()
    }
}

/// A PostgreSQL database: `--database-url URL`.
struct PgUrl(String);

impl StoreFlags for PgUrl {
    fn flags(&self) -> Vec<OsString> {
        vec!["--database-url".into(), self.0.clone().into()]
    }
}

/// Spawns `braid serve --db DB --bind 127.0.0.1:0 EXTRA…` (or
/// `--database-url URL`), stderr piped.
fn spawn_serve<S: StoreFlags + ?Sized>(db: &S, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .arg("serve")
        .args(db.flags())
        .args(["--bind", "127.0.0.1:0"])
        .args(extra)
        .env("BRAID_LOG", "warn,braid_runtime=info")
        // On PostgreSQL a restarted process adopts the killed one's runs
        // once its server lease has run out: keep that short.
        .env("BRAID_SCALE_OUT__LEASE_MS", "1000")
        .env("BRAID_SCALE_OUT__HEARTBEAT_MS", "100")
        .env_remove("BRAID_EXECUTORS__LEASE_MS")
        .env_remove("BRAID_EXECUTORS__WORKERS")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn `braid serve`")
}

impl Braid {
    /// Starts `braid serve --db DB --bind 127.0.0.1:0 EXTRA…` and waits for
    /// its `braid listening on http://ADDR` line.
    async fn start<S: StoreFlags + ?Sized>(db: &S, extra: &[&str]) -> Braid {
        let mut child = spawn_serve(db, extra);
        let pid = child.id();
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    log.lock().unwrap().push_str(&format!("{line}\n"));
                    if let Some(rest) = line.strip_prefix("braid listening on ")
                        && let Some(tx) = tx.take()
                    {
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        let _ = tx.send(addr.to_string());
                    }
                }
            });
        }
        let mut braid = Braid {
            child: Some(child),
            pid,
            base: String::new(),
            log,
        };
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(base)) => braid.base = base,
            _ => panic!(
                "`braid serve` did not report its address; stderr:\n{}",
                braid.log()
            ),
        }
        braid
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL (`Child::kill` on Unix), then reap.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL the server");
            let _ = c.wait();
        }
    }

    /// SIGTERM; waits (polling) up to `within` for the exit.
    async fn terminate(&mut self, within: Duration) -> (ExitStatus, Duration) {
        let mut c = self.child.take().expect("the server is running");
        let sent = Instant::now();
        let st = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("run `kill -TERM`");
        assert!(st.success(), "kill -TERM {} failed", self.pid);
        loop {
            if let Some(status) = c.try_wait().expect("try_wait") {
                return (status, sent.elapsed());
            }
            if sent.elapsed() > within {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "the server did not exit within {within:?} of SIGTERM; stderr:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn api(&self) -> Api {
        Api {
            base: self.base.clone(),
            http: {
                // reqwest is built without a TLS crypto provider; plain http needs none,
                // but a client cannot be built without one.
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::new()
            },
        }
    }
}

impl Drop for Braid {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A client of one server process.
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.base);
        let resp = self.http.get(&url).send().await.expect("GET");
        let status = resp.status();
        let text = resp.text().await.expect("read the body");
        assert!(status.is_success(), "GET {path}: {status}: {text}");
        serde_json::from_str(&text).expect("a JSON body")
    }

    async fn post(&self, path: &str, content_type: &str, body: String) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("read the body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn save(&self, bundle: String) {
        let (status, body) = self
            .post("/api/workflow-defs", "application/yaml", bundle)
            .await;
        assert_eq!(status, 201, "saving the workflow: {body}");
    }

    async fn start_run(&self, workflow: &str, input: Value) -> String {
        let (status, body) = self
            .post(
                &format!("/api/workflow-defs/{workflow}/runs"),
                "application/json",
                json!({ "input": input }).to_string(),
            )
            .await;
        assert_eq!(status, 201, "starting a run: {body}");
        body["run_id"].as_str().expect("run_id").to_string()
    }

    /// Every item of a list, following `next_cursor`.
    async fn all(&self, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                None => format!("{path}{sep}limit=1000"),
                Some(c) => format!("{path}{sep}limit=1000&cursor={c}"),
            };
            let page = self.get(&url).await;
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return items,
            }
        }
    }

    /// Waits (polling) until no run of `workflow` is running.
    async fn until_all_ended(&self, workflow: &str, deadline: Duration, log: &Braid) {
        let end = Instant::now() + deadline;
        loop {
            let running = self
                .all(&format!("/api/runs?workflow={workflow}&status=running"))
                .await;
            if running.is_empty() {
                return;
            }
            if Instant::now() > end {
                let ids: Vec<_> = running.iter().map(|r| r["id"].clone()).collect();
                panic!(
                    "{} run(s) still running after {deadline:?} (leases of a killed process not \
                     released at start-up? results lost?): {ids:?}\nserver stderr:\n{}",
                    running.len(),
                    log.log()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits (polling) until run `id` has an event of `kind`.
    async fn until_event(&self, id: &str, kind: &str, deadline: Duration) -> Value {
        let end = Instant::now() + deadline;
        loop {
            let events = self.all(&format!("/api/runs/{id}/events")).await;
            if let Some(e) = events.iter().find(|e| e["kind"] == kind) {
                return e.clone();
            }
            assert!(
                Instant::now() < end,
                "no `{kind}` event in run {id} within {deadline:?}: {events:#?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Checks every test applies to every run
// ---------------------------------------------------------------------------

const FINAL: [&str; 3] = [
    "workflow_completed",
    "workflow_failed",
    "workflow_cancelled",
];

/// The event log of a completed run: seq 1..N without gaps or duplicates,
/// `workflow_started` first, exactly one final event and it is the last one
/// (`workflow_completed`), every result applied once (one `node_completed`
/// per token, one `node_started` per token and attempt). Returns the events.
async fn check_event_log(api: &Api, run_id: &str) -> Vec<Value> {
    let events = api.all(&format!("/api/runs/{run_id}/events")).await;
    let seqs: Vec<i64> = events
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    let expected: Vec<i64> = (1..=events.len() as i64).collect();
    assert_eq!(
        seqs, expected,
        "run {run_id}: event seqs are 1..N with no gap or duplicate"
    );
    assert!(
        events.iter().all(|e| e["run_id"] == run_id),
        "run {run_id}: foreign events in the log"
    );
    assert_eq!(
        events.first().map(|e| &e["kind"]),
        Some(&json!("workflow_started")),
        "run {run_id}: the first event"
    );
    let finals: Vec<&Value> = events
        .iter()
        .filter(|e| FINAL.contains(&e["kind"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(
        finals.len(),
        1,
        "run {run_id}: exactly one final event: {finals:?}"
    );
    assert_eq!(
        events.last().map(|e| &e["kind"]),
        Some(&json!("workflow_completed")),
        "run {run_id}: the final event is the last one"
    );
    let mut completed: BTreeMap<String, usize> = BTreeMap::new();
    let mut started: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for e in &events {
        let token = e["token_id"].as_str().unwrap_or_default().to_string();
        match e["kind"].as_str() {
            Some("node_completed") => *completed.entry(token).or_default() += 1,
            Some("node_started") => {
                let attempt = e["payload"]["attempt"].as_i64().unwrap_or(0);
                *started.entry((token, attempt)).or_default() += 1
            }
            _ => {}
        }
    }
    let twice: Vec<_> = completed.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "run {run_id}: a result was applied more than once (node_completed per token): {twice:?}"
    );
    let twice: Vec<_> = started.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "run {run_id}: an attempt started more than once (node_started per token and attempt): {twice:?}"
    );
    // Every token of the run has ended.
    let tokens = api.all(&format!("/api/runs/{run_id}/tokens")).await;
    let live: Vec<_> = tokens
        .iter()
        .filter(|t| {
            matches!(
                t["status"].as_str(),
                Some("pending" | "running" | "retry_wait" | "waiting_join" | "waiting_child")
            )
        })
        .collect();
    assert!(
        live.is_empty(),
        "run {run_id}: live tokens after the end: {live:?}"
    );
    events
}

/// How many events of `kind` (on `node`, when given) the log has.
fn count(events: &[Value], kind: &str, node: Option<&str>) -> usize {
    events
        .iter()
        .filter(|e| e["kind"] == kind && node.is_none_or(|n| e["node"] == n))
        .count()
}

// ---------------------------------------------------------------------------
// The fan-out workflow and its mock judges
// ---------------------------------------------------------------------------

/// prepare → 3 × judge (LLM) → tally (join `all`, `append`) → store (one
/// artifact) → output.
/// Saves the panel (its model profile with `profile_extra`) and starts
/// cases `0..n`: `(run id, case)`.
async fn start_panels(api: &Api, llm_url: &str, profile_extra: &str, n: u64) -> Vec<(String, u64)> {
    api.save(panel(llm_url, profile_extra)).await;
    let mut runs = Vec::new();
    for c in 0..n {
        runs.push((api.start_run("crash_panel", json!({ "case": c })).await, c));
    }
    runs
}

/// Starts a server on `db` again, waits until every panel run ended and
/// checks each one.
async fn restart_and_check_panels(db: &Path, runs: &[(String, u64)]) {
    let server = Braid::start(db, &[]).await;
    let api = server.api();
    api.until_all_ended("crash_panel", RECOVERY_DEADLINE, &server)
        .await;
    for (id, c) in runs {
        check_panel_run(&api, id, *c).await;
    }
}

fn panel(llm_url: &str, profile_extra: &str) -> String {
    let profile = braid_testkit::openai_profile(llm_url, profile_extra);
    format!(
        r#"
name: crash_panel
input_schema: {{ type: object, required: [case], properties: {{ case: {{ type: integer }} }} }}
output_schema:
  type: object
  required: [winner, votes, artifact]
  properties: {{ winner: {{ type: string }}, votes: {{ type: array, items: {{ type: string }} }}, artifact: {{ type: string }} }}
initial_node: prepare
nodes:
  - ref: prepare
    action: {{ kind: update_context, updates: [ {{ path: state.case, expr: "input.case" }} ] }}
  - ref: judge
    action: judge_llm
    output_mapping: {{ state.vote: "result.vote" }}
  - ref: tally
    fan_in: all
    joins: prepare
    merge: {{ source: vote, target: state.votes, strategy: append }}
    action: {{ kind: update_context, updates: [ {{ path: state.winner, expr: "state.votes.filter(v, v == 'A').size() >= 2 ? 'A' : 'B'" }} ] }}
  - ref: store
    action:
      kind: write_artifact
      artifact_type: verdict
      name: verdict
      content_mapping: {{ case: "state.case", votes: "state.votes", winner: "state.winner" }}
transitions:
  - {{ from: prepare, to: judge, spawn_count: {JUDGES} }}
  - {{ from: judge, to: tally }}
  - {{ from: tally, to: store }}
output_mapping:
  winner: "state.winner"
  votes: "state.votes"
  artifact: "artifacts.verdict"
actions:
  - ref: judge_llm
    kind: llm_call
    prompt: judge_prompt
    model: m
    execution: {{ timeout_ms: 20000 }}
prompt_specs:
  - ref: judge_prompt
    system: You are a strict judge.
    template: "Case {{{{state.case}}}} judge {{{{_branch.index}}}}: vote A or B."
    produces: {{ type: object, required: [vote], properties: {{ vote: {{ type: string, enum: [A, B] }} }} }}
model_profiles:
{profile}
artifact_types:
  - ref: verdict
    schema:
      type: object
      required: [case, votes, winner]
      properties: {{ case: {{ type: integer }}, votes: {{ type: array, items: {{ type: string }} }}, winner: {{ type: string }} }}
"#
    )
}

/// Judge `judge`'s vote on case `case` (a fixed function of the prompt).
fn vote(case: u64, judge: u64) -> &'static str {
    if (case * 7 + judge * 5 + case / 3) % 5 < 3 {
        "A"
    } else {
        "B"
    }
}

/// The panel's expected output for a case (minus the artifact id).
fn expected(case: u64) -> (Vec<&'static str>, &'static str) {
    let votes: Vec<_> = (0..JUDGES).map(|j| vote(case, j)).collect();
    let a = votes.iter().filter(|v| **v == "A").count();
    (votes, if a >= 2 { "A" } else { "B" })
}

/// The user message of a Chat Completions request.
fn user_prompt(body: &Value) -> String {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// `Case C judge J: …` → (C, J).
fn case_and_judge(prompt: &str) -> Option<(u64, u64)> {
    let rest = prompt.strip_prefix("Case ")?;
    let (case, rest) = rest.split_once(" judge ")?;
    let (judge, _) = rest.split_once(':')?;
    Some((case.parse().ok()?, judge.parse().ok()?))
}

/// Answers each judge after a delay of 50–150 ms derived from the prompt
/// (`fixed_delay_ms` replaces it), with its vote.
fn judge_planner(fixed_delay_ms: Option<u64>) -> impl Fn(usize, &Value) -> Plan + Send + Sync {
    move |_, body| match case_and_judge(&user_prompt(body)) {
        Some((case, judge)) => {
            let delay = fixed_delay_ms.unwrap_or(50 + (case * 37 + judge * 53) % 101);
            Plan::ok(&json!({ "vote": vote(case, judge) }).to_string()).after(delay)
        }
        None => Plan::status(400),
    }
}

/// How many times the mock was asked each prompt.
fn calls_per_prompt(llm: &MockLlm) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in llm.requests() {
        *m.entry(user_prompt(&r)).or_default() += 1;
    }
    m
}

/// Every check of a finished panel run: completed with the expected output,
/// exactly one artifact (the one in the output), a clean event log, three
/// LLM calls applied. Returns the number of snapshots the run took.
async fn check_panel_run(api: &Api, run_id: &str, case: u64) -> usize {
    let run = api.get(&format!("/api/runs/{run_id}")).await;
    assert_eq!(
        run["status"], "completed",
        "run {run_id} (case {case}) did not complete: {run:#}"
    );
    let (votes, winner) = expected(case);
    let output = &run["context"]["output"];
    assert_eq!(
        output["winner"], winner,
        "run {run_id} (case {case}): {output}"
    );
    assert_eq!(
        output["votes"],
        json!(votes),
        "run {run_id} (case {case}): {output}"
    );
    let artifact = output["artifact"].as_str().expect("output.artifact");
    assert_eq!(run["context"]["artifacts"]["verdict"], artifact);
    assert_eq!(
        run["usage"]["llm_calls"], JUDGES,
        "run {run_id}: usage counts each applied call once: {}",
        run["usage"]
    );

    let artifacts = api.all(&format!("/api/artifacts?run={run_id}")).await;
    assert_eq!(
        artifacts.len(),
        1,
        "run {run_id}: exactly one artifact: {artifacts:#?}"
    );
    let a = &artifacts[0];
    assert_eq!(a["id"], artifact);
    assert_eq!(a["name"], "verdict");
    assert_eq!(a["created_by_node"], "store");
    assert_eq!(
        a["content"],
        json!({ "case": case, "votes": votes, "winner": winner })
    );

    let events = check_event_log(api, run_id).await;
    for (node, n) in [
        ("prepare", 1),
        ("judge", JUDGES as usize),
        ("tally", 1),
        ("store", 1),
    ] {
        assert_eq!(
            count(&events, "node_completed", Some(node)),
            n,
            "run {run_id}: node_completed of `{node}`"
        );
    }
    assert_eq!(count(&events, "token_spawned", None), JUDGES as usize);
    assert_eq!(
        count(&events, "fan_in_completed", None),
        1,
        "run {run_id}: the join fired once"
    );
    assert_eq!(count(&events, "artifact_created", None), 1, "run {run_id}");
    let tokens = api.all(&format!("/api/runs/{run_id}/tokens")).await;
    for t in &tokens {
        assert!(
            t["attempts"].as_i64().unwrap_or(0) <= 1,
            "run {run_id}: a delivery after a crash is not a new attempt: {t}"
        );
    }
    count(&events, "snapshot_created", None)
}

// ---------------------------------------------------------------------------
// Seeded crash points
// ---------------------------------------------------------------------------

/// SplitMix64: a tiny seeded generator, enough to pick kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..=max`.
    fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }
}

/// Where one crash case kills the server.
#[derive(Debug)]
struct CrashCase {
    seed: u64,
    /// The project's `snapshot_every_events` (None: the default, 100):
    /// small values make recovery start from a snapshot plus a tail.
    snapshot_every: Option<u64>,
    /// First kill: once the mock has received this many calls …
    kill_after_calls: usize,
    /// … plus this delay.
    kill_delay_ms: u64,
    /// A second kill this long after the restarted server is listening
    /// (recovery itself is interrupted), if any.
    second_kill_ms: Option<u64>,
}

impl CrashCase {
    fn from_seed(seed: u64) -> CrashCase {
        let mut r = Rng(seed);
        CrashCase {
            seed,
            snapshot_every: (r.upto(1) == 0).then(|| 2 + r.upto(4)),
            kill_after_calls: r.upto(RUNS * JUDGES) as usize,
            kill_delay_ms: r.upto(200),
            second_kill_ms: (r.upto(1) == 0).then(|| r.upto(400)),
        }
    }
}

/// `BRAID_CRASH_SEED`'s seeds, else `default`.
fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("BRAID_CRASH_SEED") {
        Ok(s) if !s.trim().is_empty() => s
            .split(',')
            .map(|s| {
                let s = s.trim();
                match s.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => s.parse(),
                }
                .unwrap_or_else(|_| panic!("BRAID_CRASH_SEED: `{s}` is not a number"))
            })
            .collect(),
        _ => default.to_vec(),
    }
}

/// Sets the default project's `snapshot_every_events` in a new database file
/// (there is no API for project settings yet).
async fn set_snapshot_every(db: &Path, n: u64) {
    use sqlx::Connection as _;
    let store = braid_store_sqlite::SqliteStore::open_path(db)
        .await
        .expect("create the database");
    store.close().await.expect("close the database");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the database");
    sqlx::query("UPDATE projects SET snapshot_every_events = ?")
        .bind(n as i64)
        .execute(&mut conn)
        .await
        .expect("set snapshot_every_events");
    conn.close().await.expect("close");
}

/// [`set_snapshot_every`] on a new PostgreSQL database.
async fn set_snapshot_every_pg(url: &str, n: u64) {
    let store = braid_store_postgres::PgStore::connect_url(url)
        .await
        .expect("create the schema");
    sqlx::query("UPDATE projects SET snapshot_every_events = $1")
        .bind(n as i64)
        .execute(store.pool())
        .await
        .expect("set snapshot_every_events");
    store.close().await;
}

/// The store a crash case runs on.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

async fn crash_case(case: &CrashCase, backend: Backend) {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    // Keeps the PostgreSQL test database until the end (dropped after the
    // servers, declared later).
    let pg: TestDb;
    let db: Box<dyn StoreFlags> = match backend {
        Backend::Sqlite => {
            let db = dir.path().join("braid.db");
            if let Some(n) = case.snapshot_every {
                set_snapshot_every(&db, n).await;
            }
            Box::new(db)
        }
        Backend::Postgres => {
            let Some(test_db) = TestDb::create().await else {
                return;
            };
            pg = test_db;
            if let Some(n) = case.snapshot_every {
                set_snapshot_every_pg(pg.url(), n).await;
            }
            Box::new(PgUrl(pg.url().to_owned()))
        }
    };
    let db = &*db;
    let llm = MockLlm::start(judge_planner(None)).await;
    // The default lease (30 s): recovery must not wait for it.
    let mut server = Braid::start(db, &[]).await;
    let api = server.api();
    let runs = start_panels(&api, &llm.url, ", max_concurrency: 8", RUNS).await;
    let started = Instant::now();

    // First kill.
    let k = case.kill_after_calls;
    llm.until(|s| s.requests.lock().unwrap().len() >= k).await;
    tokio::time::sleep(Duration::from_millis(case.kill_delay_ms)).await;
    let seen = llm.requests().len();
    let inflight = llm.state.inflight.load(Ordering::SeqCst);
    server.kill();
    println!(
        "seed {:#x}: SIGKILL {} ms after the {RUNS} runs were acknowledged \
         ({} calls seen, {} in flight)",
        case.seed,
        started.elapsed().as_millis(),
        seen,
        inflight
    );

    // Restart (and maybe kill again during recovery).
    let mut server = Braid::start(db, &[]).await;
    let mut restarted = Instant::now();
    if let Some(ms) = case.second_kill_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let seen = llm.requests().len();
        server.kill();
        println!(
            "seed {:#x}: second SIGKILL {ms} ms after the restart ({seen} calls seen)",
            case.seed
        );
        server = Braid::start(db, &[]).await;
        restarted = Instant::now();
    }
    let api = server.api();
    api.until_all_ended("crash_panel", RECOVERY_DEADLINE, &server)
        .await;
    let recovered = restarted.elapsed();

    let mut snapshots = 0;
    for (id, c) in &runs {
        snapshots += check_panel_run(&api, id, *c).await;
    }
    if case.snapshot_every.is_some() {
        assert!(snapshots > 0, "snapshots were taken (and recovered from)");
    }
    let all_runs = api.all("/api/runs").await;
    assert_eq!(all_runs.len(), RUNS as usize, "no run appeared or vanished");
    let calls = calls_per_prompt(&llm);
    assert_eq!(
        calls.len(),
        (RUNS * JUDGES) as usize,
        "every judge was asked: {calls:#?}"
    );
    let total: usize = calls.values().sum();
    println!(
        "seed {:#x}: all {RUNS} runs completed {} ms after the last restart; \
         {} LLM calls for {} judges ({} delivered again, {} aborted by the kill); \
         {snapshots} snapshots; {} ms in all",
        case.seed,
        recovered.as_millis(),
        total,
        RUNS * JUDGES,
        total - (RUNS * JUDGES) as usize,
        llm.state.aborted.load(Ordering::SeqCst),
        t0.elapsed().as_millis(),
    );
}

/// 20 fan-out runs; SIGKILL at seeded random points (sometimes twice: the
/// second during recovery); restart on the same file; every run ends as an
/// uninterrupted run would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_then_restart_completes_every_run_exactly_once() {
    crash_cases(&SEEDS, Backend::Sqlite).await;
}

/// The same on PostgreSQL (`braid serve --database-url`, restarted on the
/// same database), for the seeds of [`PG_SEEDS`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_then_restart_on_postgres_completes_every_run_exactly_once() {
    crash_cases(&PG_SEEDS, Backend::Postgres).await;
}

async fn crash_cases(default: &[u64], backend: Backend) {
    for seed in seeds(default) {
        let case = CrashCase::from_seed(seed);
        println!(
            "crash case {seed:#x} on {backend:?}: snapshot_every_events {:?}, first SIGKILL {} ms \
             after call #{}, second SIGKILL {:?} ms after the restart \
             (BRAID_CRASH_SEED={seed:#x} to repeat)",
            case.snapshot_every, case.kill_delay_ms, case.kill_after_calls, case.second_kill_ms
        );
        crash_case(&case, backend).await;
    }
}

// ---------------------------------------------------------------------------
// A waiting retry survives a kill
// ---------------------------------------------------------------------------

fn flaky(llm_url: &str) -> String {
    let profile = braid_testkit::openai_profile(llm_url, "");
    format!(
        r#"
name: flaky
input_schema: {{ type: object, required: [topic], properties: {{ topic: {{ type: string }} }} }}
initial_node: ask
nodes:
  - ref: ask
    action: ask_llm
    output_mapping: {{ output.answer: "result.answer" }}
actions:
  - ref: ask_llm
    kind: llm_call
    prompt: ask_prompt
    model: m
    execution: {{ timeout_ms: 20000, retry_policy: {{ max_attempts: 2, backoff: exponential, initial_delay_ms: 1500 }} }}
prompt_specs:
  - ref: ask_prompt
    template: "Tell me about {{{{input.topic}}}}."
    produces: {{ type: object, required: [answer], properties: {{ answer: {{ type: string }} }} }}
model_profiles:
{profile}
"#
    )
}

/// A run whose first call fails with 503 waits 1.5 s (durably) for its retry;
/// the server is killed during the wait; after the restart the retry happens
/// (not before its time) and the run completes with 2 attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_waiting_at_sigkill_happens_after_the_restart() {
    let seen = Arc::new(Mutex::new(0usize));
    let llm = {
        let seen = seen.clone();
        MockLlm::start(move |_, _| {
            let mut n = seen.lock().unwrap();
            *n += 1;
            if *n == 1 {
                Plan::status(503)
            } else {
                Plan::ok(r#"{"answer":"durable"}"#).after(20)
            }
        })
        .await
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("braid.db");
    let mut server = Braid::start(&db, &[]).await;
    let api = server.api();
    api.save(flaky(&llm.url)).await;
    let id = api.start_run("flaky", json!({ "topic": "leases" })).await;
    let retrying = api
        .until_event(&id, "node_retrying", Duration::from_secs(10))
        .await;
    server.kill();
    let delay = retrying["payload"]["delay_ms"].as_u64().expect("delay_ms");
    println!("killed while the retry waits ({delay} ms): {retrying}");
    assert!(
        (1350..=1650).contains(&delay),
        "exponential backoff from 1500 ms ± 10 %: {retrying}"
    );
    assert_eq!(llm.requests().len(), 1);

    let server = Braid::start(&db, &[]).await;
    let api = server.api();
    api.until_all_ended("flaky", RECOVERY_DEADLINE, &server)
        .await;
    let run = api.get(&format!("/api/runs/{id}")).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["context"]["output"], json!({ "answer": "durable" }));
    assert_eq!(llm.requests().len(), 2, "one failed call, one retry");
    let times = llm.request_times();
    let gap = times[1] - times[0];
    assert!(
        gap >= Duration::from_millis(delay.saturating_sub(50)),
        "the retry waited for its durable not-before time ({delay} ms) across the restart: it came after {gap:?}"
    );

    let events = check_event_log(&api, &id).await;
    assert_eq!(count(&events, "node_retrying", Some("ask")), 1);
    let done: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "node_completed")
        .collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["payload"]["attempt"], 2, "{}", done[0]);
    let tokens = api.all(&format!("/api/runs/{id}/tokens")).await;
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["attempts"], 2, "{}", tokens[0]);
    assert_eq!(tokens[0]["status"], "completed");
}

// ---------------------------------------------------------------------------
// SIGTERM drains in-flight calls
// ---------------------------------------------------------------------------

/// SIGTERM while 12 LLM calls (500 ms each) are in flight: the process lets
/// them answer, makes their results durable and exits 0 within the grace
/// period; after a restart the runs finish without calling the judges again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_calls_finish_and_keeps_their_results() {
    const N: u64 = 4;
    // Each call lasts 3 s: every call of the four runs must be in flight at
    // once before SIGTERM, which needs a window wider than the spread of
    // their starts on a loaded 2-core machine (500 ms was not, in a full
    // parallel test run). Still well within the 10 s grace.
    let llm = MockLlm::start(judge_planner(Some(3_000))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("braid.db");
    let mut server = Braid::start(&db, &["--shutdown-grace-s", "10"]).await;
    let api = server.api();
    let runs = start_panels(&api, &llm.url, "", N).await;
    let calls = (N * JUDGES) as usize;
    llm.until(|s| s.inflight.load(Ordering::SeqCst) == calls)
        .await;

    let (status, took) = server.terminate(Duration::from_secs(10)).await;
    let log = server.log();
    println!("SIGTERM with {calls} calls in flight: exited {status} after {took:?}");
    assert!(status.success(), "exit status {status}; stderr:\n{log}");
    assert!(
        log.contains("shutting down"),
        "the server says it drains: {log}"
    );
    assert_eq!(
        llm.state.aborted.load(Ordering::SeqCst),
        0,
        "no in-flight call was aborted by the shutdown"
    );
    assert_eq!(llm.state.inflight.load(Ordering::SeqCst), 0);
    assert_eq!(llm.requests().len(), calls);

    restart_and_check_panels(&db, &runs).await;
    let per_prompt = calls_per_prompt(&llm);
    assert_eq!(per_prompt.len(), calls);
    assert!(
        per_prompt.values().all(|n| *n == 1),
        "the judges' results were durable: no judge was asked again after the restart: {per_prompt:#?}"
    );
}

/// SIGTERM when the calls in flight outlast the grace period: the process
/// exits at the end of the grace (status 0), the calls are aborted, and after
/// a restart they are delivered again at once (the dead process's leases are
/// released) and the runs complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_past_the_grace_period_exits_and_the_calls_run_again() {
    const N: u64 = 2;
    // The first call of each prompt never answers; later ones answer at once.
    let asked: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let llm = {
        let asked = asked.clone();
        MockLlm::start(move |_, body| {
            let prompt = user_prompt(body);
            let Some((case, judge)) = case_and_judge(&prompt) else {
                return Plan::status(400);
            };
            let mut asked = asked.lock().unwrap();
            let n = asked.entry(prompt).or_default();
            *n += 1;
            if *n == 1 {
                Plan::never()
            } else {
                Plan::ok(&json!({ "vote": vote(case, judge) }).to_string())
            }
        })
        .await
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("braid.db");
    let mut server = Braid::start(&db, &["--shutdown-grace-s", "1"]).await;
    let api = server.api();
    let runs = start_panels(&api, &llm.url, "", N).await;
    let calls = (N * JUDGES) as usize;
    llm.until(|s| s.inflight.load(Ordering::SeqCst) == calls)
        .await;
    let (status, took) = server.terminate(Duration::from_secs(10)).await;
    println!("SIGTERM with {calls} hanging calls: exited {status} after {took:?}");
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        server.log()
    );
    assert!(
        took >= Duration::from_millis(900),
        "the server waited for the grace period: {took:?}"
    );
    llm.until(|s| s.aborted.load(Ordering::SeqCst) == calls)
        .await;

    restart_and_check_panels(&db, &runs).await;
    let per_prompt = calls_per_prompt(&llm);
    assert_eq!(per_prompt.len(), calls);
    assert!(
        per_prompt.values().all(|n| *n == 2),
        "each aborted call was made once more after the restart: {per_prompt:#?}"
    );
}

// ---------------------------------------------------------------------------
// Failures around the engine: a failed commit, a drain with queued calls,
// a second process on the same file
// ---------------------------------------------------------------------------

async fn sql(db: &Path, statement: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the database");
    sqlx::query(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    conn.close().await.expect("close");
}

async fn sql_count(db: &Path, query: &str) -> i64 {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the database");
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_string()))
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    conn.close().await.expect("close");
    n
}

/// Waits (polling the server's log) until a commit of run `id` failed.
async fn until_commit_failed(server: &Braid, id: &str, deadline: Duration, what: &str) {
    let end = Instant::now() + deadline;
    while !server
        .log()
        .lines()
        .any(|l| l.contains("commit failed") && l.contains(id))
    {
        assert!(Instant::now() < end, "{what}:\n{}", server.log());
        tokio::time::sleep(POLL).await;
    }
}

/// A commit that fails (here: injected with a trigger; in production a disk
/// error, a lock held past the busy timeout …) pauses the run "until
/// restart". Results of the run's other in-flight calls then reach a run
/// that is not live in this process, and the executor acks (deletes) their
/// tasks as if the run had ended. After the restart those tokens are
/// `running` with no task left: the run never ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_arriving_after_a_failed_commit_are_not_lost() {
    // Judge 0 answers first; judges 1 and 2 are still in flight when the
    // commit of judge 0's result fails.
    let llm = MockLlm::start(|_, body| match case_and_judge(&user_prompt(body)) {
        Some((case, judge)) => Plan::ok(&json!({ "vote": vote(case, judge) }).to_string())
            .after(if judge == 0 { 300 } else { 1200 }),
        None => Plan::status(400),
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("braid.db");
    let mut server = Braid::start(&db, &[]).await;
    let api = server.api();
    api.save(panel(&llm.url, "")).await;
    sql(
        &db,
        "CREATE TRIGGER inject_commit_failure BEFORE INSERT ON events
         WHEN NEW.kind = 'node_completed' AND NEW.node = 'judge'
         BEGIN SELECT RAISE(ABORT, 'injected commit failure'); END",
    )
    .await;
    let id = api.start_run("crash_panel", json!({ "case": 1 })).await;
    let end = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("commit failed") {
        assert!(Instant::now() < end, "no commit failure:\n{}", server.log());
        tokio::time::sleep(POLL).await;
    }
    sql(&db, "DROP TRIGGER inject_commit_failure").await;
    // Judges 1 and 2 answer; give the executor up to 2 s to hand their
    // results over (they must not be acked while the run is still live).
    llm.until(|s| s.requests.lock().unwrap().len() >= 3 && s.inflight.load(Ordering::SeqCst) == 0)
        .await;
    let end = Instant::now() + Duration::from_secs(2);
    while sql_count(
        &db,
        &format!("SELECT count(*) FROM tasks WHERE run_id = '{id}'"),
    )
    .await
        > 1
        && Instant::now() < end
    {
        tokio::time::sleep(POLL).await;
    }
    let tasks = sql_count(
        &db,
        &format!("SELECT count(*) FROM tasks WHERE run_id = '{id}'"),
    )
    .await;
    println!("tasks left for the run after its failed commit: {tasks}");
    server.kill();

    let server = Braid::start(&db, &[]).await;
    let api = server.api();
    api.until_all_ended("crash_panel", Duration::from_secs(10), &server)
        .await;
    check_panel_run(&api, &id, 1).await;
}

/// SIGTERM with more claimed tasks than the model profile's
/// `max_concurrency`: the drain should let the calls in flight finish, not
/// start the calls still waiting for a slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_does_not_start_calls_waiting_for_a_provider_slot() {
    const N: u64 = 6; // 18 judge calls, 4 at a time
    let llm = MockLlm::start(judge_planner(Some(400))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("braid.db");
    let mut server = Braid::start(&db, &["--shutdown-grace-s", "20"]).await;
    let api = server.api();
    let runs = start_panels(&api, &llm.url, ", max_concurrency: 4", N).await;
    llm.until(|s| s.inflight.load(Ordering::SeqCst) == 4).await;
    let before = llm.requests().len();
    let (status, took) = server.terminate(Duration::from_secs(20)).await;
    let after = llm.requests().len();
    println!(
        "SIGTERM with {before} calls started (4 in flight): exited {status} after {took:?}, \
         {} calls started during the drain",
        after - before
    );
    assert!(status.success());
    assert_eq!(
        after,
        before,
        "the drain started {} new LLM calls (took {took:?})",
        after - before
    );
    restart_and_check_panels(&db, &runs).await;
}

/// Two `braid serve` processes on one SQLite file (a second server started by
/// mistake, or `braid run --db` on the server's file): the second releases
/// the first one's leases and adopts its live runs, so each run has two
/// coordinators. The second process should refuse to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_file_is_refused() {
    let llm = MockLlm::start(judge_planner(Some(300))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("braid.db");
    let first = Braid::start(&db, &[]).await;
    let api = first.api();
    let runs = start_panels(&api, &llm.url, "", RUNS).await;
    llm.until(|s| s.inflight.load(Ordering::SeqCst) >= 10).await;
    // A second process on the same file.
    let mut child = spawn_serve(&db, &[]);
    let end = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() > end {
            break None;
        }
        tokio::time::sleep(POLL).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let twice = calls_per_prompt(&llm).values().filter(|n| **n > 1).count();
    println!("second process: {refused:?}; {twice} judge call(s) made twice");
    assert!(
        refused.is_some_and(|s| !s.success()),
        "a second process on the same database file was not refused \
         ({twice} judge calls made twice); first server stderr:\n{}",
        first.log()
    );
    api.until_all_ended("crash_panel", Duration::from_secs(10), &first)
        .await;
    for (id, c) in &runs {
        check_panel_run(&api, id, *c).await;
    }
}

/// A `workflow_call` whose child is still running when the server is killed:
/// after the restart the node's `timeout_ms` still bounds the child (counted
/// from the child's creation), the attempt fails with TIMEOUT and is routed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_run_stays_bounded_by_its_timeout_across_a_restart() {
    let llm = MockLlm::start(|_, _| Plan::never()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("braid.db");
    let mut server = Braid::start(&db, &[]).await;
    let api = server.api();
    api.save(format!(
        "name: stuck\ninitial_node: think\nnodes:\n  - {{ ref: think, action: {{ kind: llm_call, prompt: p, model: m }} }}\nprompt_specs:\n  - {{ ref: p, template: x }}\nmodel_profiles:\n  - {{ ref: m, provider: openai_compatible, model: x, base_url: \"{}\" }}\n",
        llm.url
    ))
    .await;
    api.save(
        "name: bounded\ninitial_node: call\nnodes:\n  - { ref: call, action: { kind: workflow_call, workflow: stuck, execution: { timeout_ms: 1500 } } }\n  - { ref: gave_up, action: { kind: update_context, updates: [ { path: output.code, expr: \"state._last_error.code\" } ] } }\ntransitions:\n  - { from: call, to: gave_up, on: failure }\n"
            .to_string(),
    )
    .await;
    let id = api.start_run("bounded", json!({})).await;
    api.until_event(&id, "subworkflow_started", Duration::from_secs(10))
        .await;
    server.kill();

    let server = Braid::start(&db, &[]).await;
    let api = server.api();
    api.until_all_ended("bounded", RECOVERY_DEADLINE, &server)
        .await;
    let run = api.get(&format!("/api/runs/{id}")).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["context"]["output"], json!({ "code": "TIMEOUT" }));
    let child = run["children"][0].as_str().expect("a child").to_string();
    // The parent's timeout cancels the child in a commit of the child's own,
    // which may land just after the parent's end: wait for it, bounded.
    api.until_event(&child, "workflow_cancelled", Duration::from_secs(10))
        .await;
    let child = api.get(&format!("/api/runs/{child}")).await;
    assert_eq!(
        child["status"], "cancelled",
        "the timed-out child is cancelled: {child:#}"
    );
}

/// A child tells its parent that it ended before its own final commit is
/// durable (the parent's commit is ordered after it, so a chain of nested
/// runs costs one or two fsyncs, not one per level). When that final
/// commit fails, the parent must not record the end either: it may never
/// be durably "done" with a child that is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_never_records_the_end_of_a_child_whose_final_commit_failed() {
    let llm = MockLlm::start(|_, _| Plan::ok(r#"{"value":41}"#)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("braid.db");
    let server = Braid::start(&db, &[]).await;
    let api = server.api();
    api.save(format!(
        "name: inner\ninitial_node: think\nnodes:\n  - {{ ref: think, action: {{ kind: llm_call, prompt: p, model: m }}, output_mapping: {{ output.value: \"result.value + 1\" }} }}\nprompt_specs:\n  - {{ ref: p, template: x, produces: {{ type: object, required: [value], properties: {{ value: {{ type: integer }} }} }} }}\nmodel_profiles:\n  - {{ ref: m, provider: openai_compatible, model: x, base_url: \"{}\" }}\n",
        llm.url
    ))
    .await;
    api.save(
        "name: outer\ninitial_node: call\nnodes:\n  - { ref: call, action: { kind: workflow_call, workflow: inner }, output_mapping: { output.value: \"result.value\" } }\n"
            .to_string(),
    )
    .await;
    // Every final commit of a child run fails until the trigger is dropped.
    sql(
        &db,
        "CREATE TRIGGER inject_commit_failure BEFORE INSERT ON events
         WHEN NEW.kind = 'workflow_completed'
          AND (SELECT parent_run_id FROM workflow_runs WHERE id = NEW.run_id) IS NOT NULL
         BEGIN SELECT RAISE(ABORT, 'injected commit failure'); END",
    )
    .await;
    let id = api.start_run("outer", json!({})).await;
    // The parent's commit that applies the child's end fails with it: in
    // the same transaction, or refused as depending on a failed write.
    until_commit_failed(
        &server,
        &id,
        Duration::from_secs(10),
        "the parent's commit never failed",
    )
    .await;
    let recorded = sql_count(
        &db,
        &format!(
            "SELECT count(*) FROM events WHERE run_id = '{id}' AND kind = 'subworkflow_completed'"
        ),
    )
    .await;
    assert_eq!(
        recorded, 0,
        "the parent recorded the end of a child whose end was not written"
    );
    let status = api.get(&format!("/api/runs/{id}")).await["status"].clone();
    assert_eq!(status, "running");
    sql(&db, "DROP TRIGGER inject_commit_failure").await;

    api.until_all_ended("outer", Duration::from_secs(10), &server)
        .await;
    let run = api.get(&format!("/api/runs/{id}")).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["context"]["output"], json!({ "value": 42 }));
    let events = check_event_log(&api, &id).await;
    assert_eq!(count(&events, "subworkflow_completed", Some("call")), 1);
    let child = run["children"][0].as_str().expect("a child").to_string();
    let child_events = check_event_log(&api, &child).await;
    assert_eq!(count(&child_events, "workflow_completed", None), 1);
}

/// The fan-out of `burst_run`: 2,000 pure branches, about 14,000 events.
const BURST: u64 = 2_000;

/// Starts a server on a fresh database, saves the burst workflow, makes
/// every commit past event 9,000 fail (the first slice is written, the next
/// ones are not) and starts the run; returns once a later slice failed.
async fn burst_run(db: &Path) -> (Braid, String) {
    let server = Braid::start(db, &[]).await;
    let api = server.api();
    api.save(
        "name: burst\ninitial_node: fan\nnodes:\n  - { ref: fan, action: { kind: update_context } }\n  - { ref: branch, action: { kind: update_context, updates: [ { path: state.i, expr: \"_branch.index\" } ] } }\n  - { ref: join, fan_in: all, joins: fan, merge: { source: i, target: state.is, strategy: append }, action: { kind: update_context, updates: [ { path: output.count, expr: \"state.is.size()\" } ] } }\ntransitions:\n  - { from: fan, to: branch, spawn_count: \"input.n\" }\n  - { from: branch, to: join }\n"
            .to_string(),
    )
    .await;
    sql(
        db,
        "CREATE TRIGGER inject_commit_failure BEFORE INSERT ON events WHEN NEW.seq > 9000
         BEGIN SELECT RAISE(ABORT, 'injected commit failure'); END",
    )
    .await;
    let id = api.start_run("burst", json!({ "n": BURST })).await;
    until_commit_failed(
        &server,
        &id,
        Duration::from_secs(60),
        "the second slice was never tried",
    )
    .await;
    (server, id)
}

/// Once the burst's run has ended: every branch merged exactly once and the
/// log is whole.
async fn check_burst(api: &Api, server: &Braid, id: &str) {
    api.until_all_ended("burst", RECOVERY_DEADLINE, server)
        .await;
    let run = api.get(&format!("/api/runs/{id}")).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["context"]["output"], json!({ "count": BURST }));
    let sum: u64 = run["context"]["state"]["is"]
        .as_array()
        .expect("state.is")
        .iter()
        .map(|v| v.as_u64().expect("an index"))
        .sum();
    assert_eq!(
        sum,
        BURST * (BURST - 1) / 2,
        "every branch merged exactly once"
    );
    let events = check_event_log(api, id).await;
    assert_eq!(
        count(&events, "node_completed", Some("branch")),
        BURST as usize
    );
}

/// A burst of pure steps (here a fan-out of 2,000 `update_context`
/// branches, about 14,000 events) reaches the store in slices of at most
/// about 8,192 events, each written while the next is computed. When the
/// process dies after a slice is durable, the tokens the next slice would
/// have started are `pending` in the database: recovery starts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_cut_into_slices_goes_on_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("braid.db");
    let (mut server, id) = burst_run(&db).await;
    server.kill();
    let written = sql_count(
        &db,
        &format!("SELECT count(*) FROM events WHERE run_id = '{id}'"),
    )
    .await;
    let pending = sql_count(
        &db,
        &format!("SELECT count(*) FROM tokens WHERE run_id = '{id}' AND status = 'pending'"),
    )
    .await;
    println!("durable before the kill: {written} events, {pending} pending tokens");
    assert!(
        (4_000..=9_000).contains(&written),
        "one slice is durable, not the whole burst: {written} events"
    );
    assert!(pending > 0, "the branches not yet started are pending");
    sql(&db, "DROP TRIGGER inject_commit_failure").await;

    let server = Braid::start(&db, &[]).await;
    check_burst(&server.api(), &server, &id).await;
}

/// The same failure without a restart: the coordinator reloads the durable
/// prefix, sees tokens still pending and computes the failed slices again
/// until the store takes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_slice_is_computed_again_after_the_reload() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("braid.db");
    let (server, id) = burst_run(&db).await;
    sql(&db, "DROP TRIGGER inject_commit_failure").await;
    check_burst(&server.api(), &server, &id).await;
}
