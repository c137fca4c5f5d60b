//! The peer engines of `bench/peers/` (LangGraph with SqliteSaver, DBOS on
//! SQLite, Restate from npm, optionally Prefect), run in the same process
//! tree and on the same disk as Braid, one process per execution as their
//! README prescribes: each script prints `RESULT {json}` with `internal_s`,
//! and the whole process is timed from outside.
//!
//! Peers are installed by `scripts/install-peers.sh` into `.peers/`; a peer
//! that is not installed is reported with the reason, never left out.

use crate::workloads::{JUDGE_LATENCY_MS, Workload};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A peer engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    /// LangGraph `StateGraph`.
    Langgraph,
    /// DBOS on its SQLite system database.
    Dbos,
    /// Restate server (RocksDB) + TypeScript SDK.
    Restate,
    /// Prefect 3 with a temporary local API server.
    Prefect,
}

impl Peer {
    /// All peers.
    pub const ALL: [Peer; 4] = [Peer::Langgraph, Peer::Dbos, Peer::Restate, Peer::Prefect];

    /// Name as in `bench/peers/`.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Langgraph => "langgraph",
            Peer::Dbos => "dbos",
            Peer::Restate => "restate",
            Peer::Prefect => "prefect",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Peer> {
        Peer::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// One configuration of a peer: its store/mode and whether it is durable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Engine.
    pub peer: Peer,
    /// Label, e.g. `sqlite`, `none`, `rocksdb`.
    pub mode: String,
    /// Persists every step (counts for "fastest durable peer").
    pub durable: bool,
}

/// Where things are.
#[derive(Debug, Clone)]
pub struct Env {
    /// `bench/` (holding `peers/` and `limits/`).
    pub bench_dir: PathBuf,
    /// `.peers/` (venv, restate node_modules).
    pub peers_dir: PathBuf,
    /// Parent of the peers' temp databases (`PEERS_DB_DIR`): Braid's disk.
    pub db_parent: PathBuf,
    /// Bound on one peer process.
    pub timeout: Duration,
    /// A PostgreSQL server: DBOS also runs on it (`DBOS_PG_URL`, a new
    /// database per process, dropped after its series).
    pub pg_url: Option<String>,
}

impl Env {
    fn python(&self) -> PathBuf {
        self.peers_dir.join("venv/bin/python")
    }

    fn restate_dir(&self) -> PathBuf {
        self.peers_dir.join("restate")
    }

    /// `None` when the peer can run, else why not ("not installed: …").
    pub fn missing(&self, peer: Peer) -> Option<String> {
        let hint = "run scripts/install-peers.sh";
        if !self.bench_dir.join("peers").is_dir() {
            return Some(format!(
                "not installed: {} not found",
                self.bench_dir.join("peers").display()
            ));
        }
        match peer {
            Peer::Restate => {
                let bin = self
                    .restate_dir()
                    .join("node_modules/@restatedev/restate-server-linux-x64/bin/restate-server");
                let sdk = self
                    .restate_dir()
                    .join("node_modules/@restatedev/restate-sdk");
                if Command::new("node").arg("--version").output().is_err() {
                    Some("not installed: node not found".into())
                } else if !bin.is_file() || !sdk.is_dir() {
                    Some(format!("not installed: {} missing ({hint})", bin.display()))
                } else {
                    None
                }
            }
            _ => {
                let module = match peer {
                    Peer::Langgraph => "langgraph.checkpoint.sqlite",
                    Peer::Dbos => "dbos",
                    _ => "prefect",
                };
                self.python_import(module)
                    .err()
                    .map(|e| format!("not installed: {e} ({hint})"))
            }
        }
    }

    fn python_import(&self, module: &str) -> Result<(), String> {
        let py = self.python();
        if !py.is_file() {
            return Err(format!("{} missing", py.display()));
        }
        let out = Command::new(&py)
            .args(["-c", &format!("import {module}")])
            .output()
            .map_err(|e| format!("{}: {e}", py.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(format!(
                "import {module}: {}",
                err.lines().last().unwrap_or("failed")
            ))
        }
    }
}

/// The configurations run for a peer: its durable store, plus LangGraph's
/// in-memory mode as the no-durability reference, plus DBOS on PostgreSQL
/// when the bench has a PostgreSQL server.
pub fn configs(peer: Peer, env: &Env) -> Vec<Config> {
    let c = |mode: &str, durable| Config {
        peer,
        mode: mode.to_string(),
        durable,
    };
    match peer {
        Peer::Langgraph => vec![c("sqlite", true), c("none", false)],
        Peer::Dbos if env.pg_url.is_some() => vec![c("sqlite", true), c("postgres", true)],
        Peer::Dbos => vec![c("sqlite", true)],
        Peer::Restate => vec![c("rocksdb", true)],
        Peer::Prefect => vec![c("ephemeral-sqlite", true)],
    }
}

/// The command line of one execution (relative to the peer's folder).
fn argv(cfg: &Config, env: &Env, workload: Workload, n: u64) -> (PathBuf, Vec<String>) {
    let script = match workload {
        Workload::W1 => "w1_chain",
        Workload::W2 => "w2_fanout",
        Workload::W3 => "w3_judges",
        Workload::W4 => "w4_nested",
        Workload::W5 => "w5_retry",
    };
    let mut args: Vec<String> = Vec::new();
    let prog = if cfg.peer == Peer::Restate {
        args.push(format!("{script}.mjs"));
        PathBuf::from("node")
    } else {
        args.push(format!("{script}.py"));
        env.python()
    };
    if workload != Workload::W5 {
        args.push(n.to_string());
    }
    match cfg.peer {
        Peer::Langgraph => {
            args.extend(["--mode".into(), cfg.mode.clone()]);
            if workload == Workload::W3 {
                args.extend(["--exec".into(), "async".into()]);
            }
        }
        // The faster of DBOS's two W3 variants in RESULTS.md.
        Peer::Dbos if workload == Workload::W3 => args.extend(["--exec".into(), "sync".into()]),
        Peer::Prefect if workload == Workload::W3 => args.extend(["--exec".into(), "async".into()]),
        _ => {}
    }
    (prog, args)
}

/// One execution of a peer script.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerRun {
    /// The script's `internal_s`.
    pub internal_s: f64,
    /// Spawn to exit, measured here.
    pub process_s: f64,
    /// The whole `RESULT` record.
    pub record: Value,
}

/// The executions of one (config, workload, n).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerSeries {
    /// Peer and mode.
    pub config: Config,
    /// Workload.
    pub workload: Workload,
    /// Size.
    pub n: u64,
    /// Timed executions (after the warm-up process).
    pub runs: Vec<PeerRun>,
    /// Failures (exit status, timeout, failed check), with the output's tail.
    pub failures: Vec<String>,
    /// Set when the peer could not run at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl PeerSeries {
    /// Median `internal_s`.
    pub fn median_internal(&self) -> Option<f64> {
        crate::stats::median(&self.runs.iter().map(|r| r.internal_s).collect::<Vec<_>>())
    }

    /// Median whole-process time.
    pub fn median_process(&self) -> Option<f64> {
        crate::stats::median(&self.runs.iter().map(|r| r.process_s).collect::<Vec<_>>())
    }

    /// Largest `server_max_in_flight` seen (W3).
    pub fn max_in_flight(&self) -> Vec<u64> {
        self.runs
            .iter()
            .filter_map(|r| r.record["server_max_in_flight"].as_u64())
            .collect()
    }
}

/// A process with its own process group, so a timeout can stop it and the
/// servers it started (restate-server, Prefect's API server) by group id.
fn run_bounded(mut cmd: Command, timeout: Duration) -> anyhow::Result<(String, String, bool, f64)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let t0 = Instant::now();
    let child: Child = cmd.spawn().context("spawning")?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => {
            let out = out?;
            let secs = t0.elapsed().as_secs_f64();
            Ok((
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
                out.status.success(),
                secs,
            ))
        }
        Err(_) => {
            // The group this bench created for the child: the child and what it started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            bail!("timed out after {} s (killed)", timeout.as_secs())
        }
    }
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    v[v.len().saturating_sub(lines)..].join(" | ")
}

/// Runs `warmup` untimed processes and then `runs` timed ones.
pub fn run_series(
    env: &Env,
    cfg: &Config,
    workload: Workload,
    n: u64,
    warmup: usize,
    runs: usize,
    mock_url: Option<&str>,
) -> PeerSeries {
    let mut series = PeerSeries {
        config: cfg.clone(),
        workload,
        n,
        runs: Vec::new(),
        failures: Vec::new(),
        skipped: None,
    };
    if workload == Workload::W3 && mock_url.is_none() {
        series.skipped =
            Some("the mock LLM server (peers/mock_llm/server.py) is not running".into());
        return series;
    }
    let dir = env.bench_dir.join("peers").join(cfg.peer.name());
    let pg_url = env.pg_url.as_deref().filter(|_| cfg.mode == "postgres");
    let pg_before = pg_url.map(|u| dbos_databases(u).unwrap_or_default());
    for k in 0..warmup + runs {
        let (prog, args) = argv(cfg, env, workload, n);
        let mut cmd = Command::new(&prog);
        cmd.args(&args)
            .current_dir(&dir)
            .env("PEERS_DB_DIR", &env.db_parent)
            .env("RESTATE_DIR", env.restate_dir())
            .env("PREFECT_SERVER_ANALYTICS_ENABLED", "false");
        if let Some(url) = mock_url {
            cmd.env("MOCK_LLM_URL", url);
        }
        if let Some(url) = pg_url {
            cmd.env("DBOS_PG_URL", url);
        }
        let what = format!("{} {}", prog.display(), args.join(" "));
        match run_bounded(cmd, env.timeout) {
            Ok((stdout, stderr, success, process_s)) => {
                let record = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("RESULT "))
                    .and_then(|j| serde_json::from_str::<Value>(j).ok());
                match record {
                    Some(r) if success && r["ok"] == Value::Bool(true) => {
                        if k >= warmup {
                            series.runs.push(PeerRun {
                                internal_s: r["internal_s"].as_f64().unwrap_or(f64::NAN),
                                process_s,
                                record: r,
                            });
                        }
                    }
                    Some(r) => series
                        .failures
                        .push(format!("{what}: check failed: {r} {}", tail(&stderr, 3))),
                    None => series
                        .failures
                        .push(format!("{what}: no RESULT line: {}", tail(&stderr, 3))),
                }
            }
            Err(e) => series.failures.push(format!("{what}: {e:#}")),
        }
        // A peer that fails every time would only waste the run.
        if series.runs.is_empty() && series.failures.len() >= 2 {
            break;
        }
    }
    if let (Some(url), Some(before)) = (pg_url, pg_before) {
        drop_new_dbos_databases(url, &before);
    }
    series
}

/// The `dbos_…` databases on the server (DBOS creates one per process).
fn dbos_databases(url: &str) -> anyhow::Result<Vec<String>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(crate::pg::databases_with_prefix(url, "dbos_"))
}

/// Drops the `dbos_…` databases that were not there before the series:
/// DBOS leaves the database of each process behind.
fn drop_new_dbos_databases(url: &str, before: &[String]) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async {
        let now = crate::pg::databases_with_prefix(url, "dbos_")
            .await
            .unwrap_or_default();
        for name in now.iter().filter(|n| !before.contains(n)) {
            if let Err(e) = crate::pg::drop_database(url, name).await {
                eprintln!("dropping DBOS's database {name}: {e:#}");
            }
        }
    });
}

/// The peers' mock LLM server (`peers/mock_llm/server.py`, 100 ms latency).
pub struct MockLlmServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl MockLlmServer {
    /// Starts it with the venv's Python and waits until `/health` answers.
    pub fn start(env: &Env) -> anyhow::Result<MockLlmServer> {
        env.python_import("aiohttp")
            .map_err(|e| anyhow::anyhow!("not installed: {e}"))?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let script = env.bench_dir.join("peers/mock_llm/server.py");
        let child = Command::new(env.python())
            .arg(&script)
            .args(["--port", &port.to_string(), "--delay-ms"])
            .arg(JUDGE_LATENCY_MS.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", script.display()))?;
        let server = MockLlmServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if http_get(port, "/health").is_ok_and(|b| b.contains("ok")) {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("{} did not answer /health in 20 s", script.display())
    }
}

impl Drop for MockLlmServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 GET on 127.0.0.1.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

/// Default location of a folder next to the workspace root.
pub fn default_path(rel: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = root.join(rel);
    p.canonicalize().unwrap_or(p)
}
