//! Test support shared by the integration tests that drive `braid serve` as
//! a real process (crash.rs on a SQLite file, cluster.rs on PostgreSQL): the
//! process (spawned, its `braid listening on http://ADDR` line read, killed
//! when dropped, signalled), a small client of its HTTP API, and the checks
//! every finished run must pass.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Poll interval for the HTTP API.
pub const POLL: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------

/// A `braid serve` child process; killed (SIGKILL) when dropped.
pub struct Braid {
    child: Option<Child>,
    pub pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Everything the process wrote to stderr so far.
    log: Arc<Mutex<String>>,
}

/// `braid serve --bind 127.0.0.1:0` with stderr piped and the settings a
/// developer's shell might hold (leases, workers, a database URL) removed, so
/// that a test runs with the configuration it states; the caller adds the
/// store (`--db` or `--database-url`) and anything else.
pub fn serve_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_braid"));
    cmd.arg("serve")
        .args(["--bind", "127.0.0.1:0"])
        .env("BRAID_LOG", "warn,braid_runtime=info")
        .env_remove("BRAID_EXECUTORS__LEASE_MS")
        .env_remove("BRAID_EXECUTORS__WORKERS")
        .env_remove("BRAID_SCALE_OUT__HEARTBEAT_MS")
        .env_remove("BRAID_SCALE_OUT__LEASE_MS")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Where a `braid serve` keeps its state, as the flags that name it: a
/// SQLite file (`Path`) or a PostgreSQL database ([`PgUrl`]).
pub trait StoreFlags {
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
pub struct PgUrl(pub String);

impl StoreFlags for PgUrl {
    fn flags(&self) -> Vec<OsString> {
        vec!["--database-url".into(), self.0.clone().into()]
    }
}

/// [`serve_command`] on `db` (`--db DB` or `--database-url URL`) with
/// `extra` flags. On PostgreSQL a restarted process adopts the killed one's
/// runs once its server lease has run out: the lease is kept short.
fn serve_on<S: StoreFlags + ?Sized>(db: &S, extra: &[&str]) -> Command {
    let mut cmd = serve_command();
    cmd.args(db.flags())
        .args(extra)
        .env("BRAID_SCALE_OUT__LEASE_MS", "1000")
        .env("BRAID_SCALE_OUT__HEARTBEAT_MS", "100");
    cmd
}

/// Spawns `braid serve --db DB --bind 127.0.0.1:0 EXTRA…` (or
/// `--database-url URL`), stderr piped.
pub fn spawn_serve<S: StoreFlags + ?Sized>(db: &S, extra: &[&str]) -> Child {
    serve_on(db, extra).spawn().expect("spawn `braid serve`")
}

impl Braid {
    /// Starts `braid serve --db DB --bind 127.0.0.1:0 EXTRA…` (or
    /// `--database-url URL`) and waits for its `braid listening on
    /// http://ADDR` line.
    pub async fn start<S: StoreFlags + ?Sized>(db: &S, extra: &[&str]) -> Braid {
        Braid::launch(serve_on(db, extra)).await
    }

    /// Spawns `cmd` (a [`serve_command`] with its store) and waits for its
    /// `braid listening on http://ADDR` line.
    pub async fn launch(mut cmd: Command) -> Braid {
        let mut child = cmd.spawn().expect("spawn `braid serve`");
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

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL (`Child::kill` on Unix), then reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL the server");
            let _ = c.wait();
        }
    }

    /// SIGTERM; waits (polling) up to `within` for the exit.
    pub async fn terminate(&mut self, within: Duration) -> (ExitStatus, Duration) {
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

    /// Sends `signal` (a name `kill` knows: STOP, CONT, TERM …) to the
    /// process without waiting for anything.
    pub fn signal(&self, signal: &str) {
        let st = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid.to_string()])
            .status()
            .expect("run `kill`");
        assert!(st.success(), "kill -{signal} {} failed", self.pid);
    }

    pub fn api(&self) -> Api {
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
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.base);
        let resp = self.http.get(&url).send().await.expect("GET");
        let status = resp.status();
        let text = resp.text().await.expect("read the body");
        assert!(status.is_success(), "GET {path}: {status}: {text}");
        serde_json::from_str(&text).expect("a JSON body")
    }

    pub async fn post(&self, path: &str, content_type: &str, body: String) -> (u16, Value) {
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

    pub async fn save(&self, bundle: String) {
        let (status, body) = self
            .post("/api/workflow-defs", "application/yaml", bundle)
            .await;
        assert_eq!(status, 201, "saving the workflow: {body}");
    }

    pub async fn start_run(&self, workflow: &str, input: Value) -> String {
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
    pub async fn all(&self, path: &str) -> Vec<Value> {
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
    pub async fn until_all_ended(&self, workflow: &str, deadline: Duration, log: &Braid) {
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
    pub async fn until_event(&self, id: &str, kind: &str, deadline: Duration) -> Value {
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

pub const FINAL: [&str; 3] = [
    "workflow_completed",
    "workflow_failed",
    "workflow_cancelled",
];

/// The event log of a completed run: seq 1..N without gaps or duplicates,
/// `workflow_started` first, exactly one final event and it is the last one
/// (`workflow_completed`), every result applied once (one `node_completed`
/// per token, one `node_started` per token and attempt). Returns the events.
pub async fn check_event_log(api: &Api, run_id: &str) -> Vec<Value> {
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
pub fn count(events: &[Value], kind: &str, node: Option<&str>) -> usize {
    events
        .iter()
        .filter(|e| e["kind"] == kind && node.is_none_or(|n| e["node"] == n))
        .count()
}
