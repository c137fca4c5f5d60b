//! `braid-bench cluster`: throughput and latency of many small runs on 1, 2,
//! 3 … `braid serve` processes sharing one PostgreSQL database.
//!
//! Each round starts P real `braid serve --database-url` processes (the
//! release binary) on a fresh database, saves a small workflow (a W1 chain
//! of a few `update_context` steps), warms every process up, then submits N
//! runs over HTTP, round-robin over the processes, from C concurrent
//! clients, each request `POST …/runs?wait=true` so that its latency is the
//! caller's submit-to-end time (the run's end durable and visible). The
//! round reports runs/s (N over the wall time from the first submit to the
//! last end), p50/p99 latency, and from each process's `/metrics` the group
//! commits and events written during the timed phase, with the CPU time of
//! the processes and of the whole machine, so the numbers say where the
//! time went. Rounds of different P are interleaved (rep 1 of P = 1, 2, 3,
//! then rep 2 …) so that a drift of the shared machine hits them alike.

use crate::pg::BenchDb;
use crate::stats::median;
use anyhow::{Context, anyhow, bail};
use braid_store_postgres::url::mask;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a process may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// `timeout_s` of each `?wait=true` request (a 202 is then polled).
const WAIT_S: u64 = 120;
/// The workflow every run executes.
const WORKFLOW: &str = "cluster_chain";

/// What to measure.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// The PostgreSQL server (a new database per round is created on it).
    #[arg(long, env = crate::pg::URL_VAR)]
    pub database_url: String,
    /// Process counts to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub processes: Vec<usize>,
    /// Timed runs per round.
    #[arg(long, default_value_t = 1000)]
    pub runs: usize,
    /// Requests in flight at once (concurrent clients).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Steps of the chain each run executes.
    #[arg(long, default_value_t = 5)]
    pub steps: u64,
    /// Untimed runs per process before the timed ones.
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// Rounds per process count (medians are over rounds).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// The `braid` binary [default: `braid` next to this binary].
    #[arg(long)]
    pub braid: Option<PathBuf>,
    /// Also write every round as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One round: P processes, N runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Round {
    /// Processes serving.
    pub processes: usize,
    /// Which repetition.
    pub rep: usize,
    /// Timed runs that completed with the right output.
    pub completed: usize,
    /// Why the round failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// First submit to last end (s).
    pub wall_s: f64,
    /// Submit-to-end latency of each timed run (ms), sorted.
    pub latencies_ms: Vec<f64>,
    /// Runs served per process (round-robin: equal up to one).
    pub per_process: Vec<usize>,
    /// Group commits during the timed phase, all processes
    /// (`braid_store_commit_duration_seconds_count`).
    pub commits: f64,
    /// Time inside those commits, summed over processes (s).
    pub commit_s: f64,
    /// Events written during the timed phase (`braid_events_written_total`).
    pub events: f64,
    /// CPU time of the `braid` processes during the timed phase (s).
    pub braid_cpu_s: f64,
    /// CPU time of this client process during the timed phase (s).
    pub client_cpu_s: f64,
    /// CPU time of the PostgreSQL server (postmaster, its live children
    /// and those that exited) during the timed phase (s); 0 when the
    /// server is not on this machine or its data directory is unreadable.
    pub pg_cpu_s: f64,
    /// CPU time of the whole machine (all cores, not idle) during it (s).
    pub machine_cpu_s: f64,
    /// 1-minute load average when the round started.
    pub load_before: f64,
    /// The round's database (dropped at its end).
    pub database: String,
}

impl Round {
    /// Runs per second.
    pub fn runs_per_s(&self) -> f64 {
        self.completed as f64 / self.wall_s
    }

    /// The `q` quantile of the latencies (nearest rank), ms.
    pub fn latency(&self, q: f64) -> Option<f64> {
        quantile(&self.latencies_ms, q)
    }
}

/// Nearest-rank quantile of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The small workflow of every run: a chain of `steps` `update_context`s.
pub fn chain(steps: u64) -> Value {
    let nodes: Vec<Value> = (0..steps)
        .map(|k| {
            json!({ "ref": format!("s{k}"), "action": { "kind": "update_context", "updates": [
                { "path": "state.count", "expr": "(has(state.count) ? state.count : 0) + 1" } ] } })
        })
        .collect();
    let transitions: Vec<Value> = (1..steps)
        .map(|k| json!({ "from": format!("s{}", k - 1), "to": format!("s{k}") }))
        .collect();
    json!({ "name": WORKFLOW, "initial_node": "s0", "nodes": nodes, "transitions": transitions,
            "output_mapping": { "count": "state.count" } })
}

// ---------------------------------------------------------------------------
// The server processes
// ---------------------------------------------------------------------------

/// A `braid serve` child; SIGKILLed if still running when dropped.
pub struct Server {
    child: Option<Child>,
    /// Its pid.
    pub pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `braid serve --database-url URL --bind 127.0.0.1:0` in `cwd`
    /// (where no `braid.toml` is) with no `BRAID_*` configuration from this
    /// environment, and waits for its `braid listening on http://ADDR` line.
    pub fn start(braid: &Path, url: &str, cwd: &Path) -> anyhow::Result<Server> {
        let mut cmd = Command::new(braid);
        cmd.args(["serve", "--database-url", url, "--bind", "127.0.0.1:0"])
            .current_dir(cwd)
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("BRAID_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("BRAID_LOG", "warn");
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", braid.display()))?;
        let pid = child.id();
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("log").push_str(&format!("{line}\n"));
                if let Some(rest) = line.strip_prefix("braid listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
            }
        });
        let mut server = Server {
            child: Some(child),
            pid,
            base: String::new(),
            log,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(base) => {
                server.base = base;
                Ok(server)
            }
            // The reader ended (the process exited) or the time is up.
            Err(_) => {
                let status = server
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                bail!(
                    "`braid serve` did not report its address ({}); stderr: {}",
                    status.map_or("still running".to_string(), |s| s.to_string()),
                    server.log().trim()
                )
            }
        }
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// SIGTERM, then waits up to `within` for the exit (SIGKILL after that).
    pub fn stop(&mut self, within: Duration) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!("`braid serve` exited with {status} after SIGTERM");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("`braid serve` did not exit within {within:?} of SIGTERM (killed)");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// CPU and metrics
// ---------------------------------------------------------------------------

/// Clock ticks per second of `/proc` CPU times.
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process (ticks).
fn process_ticks(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
}

/// utime + stime of the postmaster `pid`, of its live children, and of
/// the children it has reaped (cutime + cstime) (ticks).
fn server_ticks(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // After `)`: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    let mut total = f.get(11)? + f.get(12)? + f.get(13)? + f.get(14)?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(child) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        if f.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            total += process_ticks(child).unwrap_or(0.0);
        }
    }
    Some(total)
}

/// The postmaster's pid, from `postmaster.pid` in the server's data
/// directory (readable when the server runs on this machine and we may
/// read its files, as root here).
async fn postmaster_pid(url: &str) -> Option<u32> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.ok()?;
    let dir: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(&mut conn)
        .await
        .ok()?;
    let _ = conn.close().await;
    let text = std::fs::read_to_string(Path::new(&dir).join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// Busy ticks of the whole machine (all but idle and iowait).
fn machine_busy_ticks() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    Some(v.iter().sum::<f64>() - v.get(3)? - v.get(4)?)
}

/// 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The sum over label sets of a Prometheus metric in a `/metrics` text.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = if rest.starts_with('{') {
                rest[rest.find('}')? + 1..].trim()
            } else if rest.starts_with(' ') {
                rest.trim()
            } else {
                return None;
            };
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

/// The figures read from every process before and after the timed phase.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    commits: f64,
    commit_s: f64,
    events: f64,
    braid_ticks: f64,
    client_ticks: f64,
    pg_ticks: f64,
    machine_ticks: f64,
}

async fn counters(
    http: &reqwest::Client,
    servers: &[Server],
    postmaster: Option<u32>,
) -> anyhow::Result<Counters> {
    let mut c = Counters::default();
    for s in servers {
        let text = http
            .get(format!("{}/metrics", s.base))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        c.commits += metric_sum(&text, "braid_store_commit_duration_seconds_count");
        c.commit_s += metric_sum(&text, "braid_store_commit_duration_seconds_sum");
        c.events += metric_sum(&text, "braid_events_written_total");
        c.braid_ticks += process_ticks(&s.pid.to_string()).unwrap_or(0.0);
    }
    c.client_ticks = process_ticks("self").unwrap_or(0.0);
    c.pg_ticks = postmaster.and_then(server_ticks).unwrap_or(0.0);
    c.machine_ticks = machine_busy_ticks().unwrap_or(0.0);
    Ok(c)
}

// ---------------------------------------------------------------------------
// A round
// ---------------------------------------------------------------------------

/// An HTTP client for the local servers. reqwest is built without a TLS
/// crypto provider; plain http needs none, but a client cannot be built
/// without one.
pub fn http_client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(1))
        .timeout(Duration::from_secs(WAIT_S + 60))
        .build()?)
}

/// Starts one run on `base` and returns when it has ended: its latency (ms).
async fn one_run(http: &reqwest::Client, base: &str, steps: u64) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let resp = http
        .post(format!(
            "{base}/api/workflow-defs/{WORKFLOW}/runs?wait=true&timeout_s={WAIT_S}"
        ))
        .json(&json!({ "input": {} }))
        .send()
        .await?;
    let status = resp.status().as_u16();
    let mut body: Value = resp.json().await?;
    if status == 202 {
        // Still running at the timeout: follow it until it ends.
        let id = body["run_id"]
            .as_str()
            .context("202 without run_id")?
            .to_string();
        loop {
            body = http
                .get(format!("{base}/api/runs/{id}"))
                .send()
                .await?
                .json()
                .await?;
            if body["status"] != "running" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    } else if status != 201 {
        bail!("starting a run: {status}: {body}");
    }
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if body["status"] != "completed" || body["context"]["output"]["count"] != json!(steps) {
        bail!(
            "run {} ended {} with output {}, expected completed with count {steps}",
            body["id"],
            body["status"],
            body["context"]["output"]
        );
    }
    Ok(ms)
}

/// Submits `n` runs round-robin over `bases` from `concurrency` clients;
/// returns (latencies in ms, runs per process, wall s).
async fn submit_all(
    http: &reqwest::Client,
    bases: &[String],
    n: usize,
    concurrency: usize,
    steps: u64,
) -> anyhow::Result<(Vec<f64>, Vec<usize>, f64)> {
    let next = Arc::new(AtomicUsize::new(0));
    let bases = Arc::new(bases.to_vec());
    let t0 = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..concurrency.clamp(1, n.max(1)) {
        let (http, next, bases) = (http.clone(), next.clone(), bases.clone());
        clients.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(mine);
                }
                let p = i % bases.len();
                mine.push((p, one_run(&http, &bases[p], steps).await?));
            }
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    let mut per_process = vec![0; bases.len()];
    for c in clients {
        for (p, ms) in c.await.map_err(|e| anyhow!("a client panicked: {e}"))?? {
            per_process[p] += 1;
            latencies.push(ms);
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Ok((latencies, per_process, wall))
}

/// One round of `processes` servers on a new database, dropped afterwards.
pub async fn round(
    args: &ClusterArgs,
    braid: &Path,
    processes: usize,
    rep: usize,
) -> anyhow::Result<Round> {
    let db = BenchDb::create(&args.database_url).await?;
    let name = db.name().to_string();
    let result = round_on(args, braid, processes, rep, db.url())
        .await
        .map(|r| Round {
            database: name,
            ..r
        });
    if let Err(e) = db.drop_now().await {
        eprintln!("  dropping the round's database: {e:#}");
    }
    result
}

async fn round_on(
    args: &ClusterArgs,
    braid: &Path,
    processes: usize,
    rep: usize,
    url: &str,
) -> anyhow::Result<Round> {
    let mut r = Round {
        processes,
        rep,
        load_before: load_average(),
        ..Round::default()
    };
    let cwd = tempfile::tempdir()?;
    let mut servers = Vec::new();
    for k in 0..processes {
        let s = Server::start(braid, url, cwd.path())
            .with_context(|| format!("process {} of {processes}", k + 1))?;
        servers.push(s);
    }
    let http = http_client(args.concurrency)?;
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let saved = http
        .post(format!("{}/api/workflow-defs", bases[0]))
        .json(&chain(args.steps))
        .send()
        .await?;
    if saved.status().as_u16() != 201 {
        bail!(
            "saving the workflow: {}: {}",
            saved.status(),
            saved.text().await?
        );
    }
    // Every process runs a few first: connections open, definition cached.
    let warm = args.warmup * processes;
    submit_all(&http, &bases, warm, args.concurrency.min(warm), args.steps).await?;

    let postmaster = postmaster_pid(url).await;
    let before = counters(&http, &servers, postmaster).await?;
    let (latencies, per_process, wall) =
        submit_all(&http, &bases, args.runs, args.concurrency, args.steps).await?;
    let after = counters(&http, &servers, postmaster).await?;
    let tck = clk_tck();
    r.completed = latencies.len();
    r.latencies_ms = latencies;
    r.per_process = per_process;
    r.wall_s = wall;
    r.commits = after.commits - before.commits;
    r.commit_s = after.commit_s - before.commit_s;
    r.events = after.events - before.events;
    r.braid_cpu_s = (after.braid_ticks - before.braid_ticks) / tck;
    r.client_cpu_s = (after.client_ticks - before.client_ticks) / tck;
    r.pg_cpu_s = (after.pg_ticks - before.pg_ticks) / tck;
    r.machine_cpu_s = (after.machine_ticks - before.machine_ticks) / tck;
    for s in &mut servers {
        s.stop(Duration::from_secs(30))?;
    }
    Ok(r)
}

/// The `braid` binary: `--braid`, else `braid` next to this executable.
pub fn braid_binary(args: &ClusterArgs) -> anyhow::Result<PathBuf> {
    let path = match &args.braid {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the bench binary has no folder")?
            .join("braid"),
    };
    if !path.is_file() {
        bail!(
            "{} not found: build it (`cargo build --release -p braid-cli`) or pass --braid",
            path.display()
        );
    }
    Ok(path)
}

/// Every round, interleaved over the process counts; prints progress to stderr.
pub async fn run(args: &ClusterArgs) -> anyhow::Result<Vec<Round>> {
    let braid = braid_binary(args)?;
    eprintln!(
        "cluster: {} on {}, processes {:?}, {} runs of {} steps, {} in flight, {} reps",
        braid.display(),
        mask(&args.database_url),
        args.processes,
        args.runs,
        args.steps,
        args.concurrency,
        args.reps
    );
    let mut rounds = Vec::new();
    let mut broken: Vec<usize> = Vec::new();
    for rep in 0..args.reps {
        for &p in &args.processes {
            if broken.contains(&p) {
                continue;
            }
            let r = match round(args, &braid, p, rep).await {
                Ok(r) => r,
                Err(e) => {
                    // A count that cannot start (one process per database
                    // before scale-out) fails the same way every time.
                    broken.push(p);
                    Round {
                        processes: p,
                        rep,
                        error: Some(format!("{e:#}")),
                        ..Round::default()
                    }
                }
            };
            eprintln!("  {}", round_line(&r));
            rounds.push(r);
        }
    }
    Ok(rounds)
}

fn round_line(r: &Round) -> String {
    if let Some(e) = &r.error {
        return format!("P={} rep {}: FAILED: {e}", r.processes, r.rep);
    }
    format!(
        "P={} rep {}: {:.0} runs/s, p50 {:.1} ms, p99 {:.1} ms, {:.0} commits ({:.1} events each), \
         CPU braid {:.2} s, client {:.2} s, PostgreSQL {:.2} s, machine {:.2} s in {:.2} s wall, load {:.2}",
        r.processes,
        r.rep,
        r.runs_per_s(),
        r.latency(0.5).unwrap_or(f64::NAN),
        r.latency(0.99).unwrap_or(f64::NAN),
        r.commits,
        r.events / r.commits.max(1.0),
        r.braid_cpu_s,
        r.client_cpu_s,
        r.pg_cpu_s,
        r.machine_cpu_s,
        r.wall_s,
        r.load_before
    )
}

/// The Markdown table: one row per process count, medians over rounds.
pub fn markdown(args: &ClusterArgs, rounds: &[Round]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| processes | rounds | runs/s (median, min–max) | p50 latency | p99 latency | group commits/s | events/commit | time in commits per run | CPU per run: braid / client / PostgreSQL / other | machine CPU busy | load before |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for &p in &args.processes {
        let ok: Vec<&Round> = rounds
            .iter()
            .filter(|r| r.processes == p && r.error.is_none())
            .collect();
        if ok.is_empty() {
            let why = rounds
                .iter()
                .find(|r| r.processes == p)
                .and_then(|r| r.error.clone())
                .unwrap_or_else(|| "not run".into());
            let _ = writeln!(
                s,
                "| {p} | 0 | **failed**: {} | | | | | | | | |",
                why.replace('|', "/").replace('\n', " ")
            );
            continue;
        }
        let m = |f: &dyn Fn(&Round) -> f64| median(&ok.iter().map(|r| f(r)).collect::<Vec<_>>());
        let rates: Vec<f64> = ok.iter().map(|r| r.runs_per_s()).collect();
        let (lo, hi) = crate::stats::range(&rates).unwrap_or((f64::NAN, f64::NAN));
        let loads: Vec<f64> = ok.iter().map(|r| r.load_before).collect();
        let (llo, lhi) = crate::stats::range(&loads).unwrap_or((f64::NAN, f64::NAN));
        let failed = rounds
            .iter()
            .filter(|r| r.processes == p && r.error.is_some())
            .count();
        let _ = writeln!(
            s,
            "| {p} | {}{} | {:.0} ({lo:.0}–{hi:.0}) | {:.1} ms | {:.1} ms | {:.0} | {:.1} | {:.2} ms | {:.2} / {:.2} / {:.2} / {:.2} ms | {:.0} % of {} cores | {llo:.2}–{lhi:.2} |",
            ok.len(),
            if failed > 0 {
                format!(" ({failed} failed)")
            } else {
                String::new()
            },
            median(&rates).unwrap_or(f64::NAN),
            m(&|r| r.latency(0.5).unwrap_or(f64::NAN)).unwrap_or(f64::NAN),
            m(&|r| r.latency(0.99).unwrap_or(f64::NAN)).unwrap_or(f64::NAN),
            m(&|r| r.commits / r.wall_s).unwrap_or(f64::NAN),
            m(&|r| r.events / r.commits.max(1.0)).unwrap_or(f64::NAN),
            m(&|r| r.commit_s / r.completed.max(1) as f64 * 1e3).unwrap_or(f64::NAN),
            m(&|r| per_run_ms(r, r.braid_cpu_s)).unwrap_or(f64::NAN),
            m(&|r| per_run_ms(r, r.client_cpu_s)).unwrap_or(f64::NAN),
            m(&|r| per_run_ms(r, r.pg_cpu_s)).unwrap_or(f64::NAN),
            m(&|r| per_run_ms(
                r,
                r.machine_cpu_s - r.braid_cpu_s - r.client_cpu_s - r.pg_cpu_s
            ))
            .unwrap_or(f64::NAN),
            m(&|r| r.machine_cpu_s / r.wall_s / cores() * 100.0).unwrap_or(f64::NAN),
            cores(),
        );
    }
    let _ = writeln!(
        s,
        "\n{} runs of a {}-step chain per round, {} requests in flight, round-robin over the processes, \
         each `POST …/runs?wait=true` (latency = submit to the ended run's answer); a fresh database per round.",
        args.runs, args.steps, args.concurrency
    );
    s
}

/// CPU seconds spread over a round's runs, in ms per run.
fn per_run_ms(r: &Round, cpu_s: f64) -> f64 {
    cpu_s / r.completed.max(1) as f64 * 1e3
}

fn cores() -> f64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as f64)
        .unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_summed_over_labels_and_quantiles_use_nearest_rank() {
        let text = "# TYPE braid_events_written_total counter\n\
                    braid_events_written_total 120\n\
                    braid_store_commit_duration_seconds_sum 0.5\n\
                    braid_store_commit_duration_seconds_count 40\n\
                    braid_runs_ended_total{workflow=\"a\",status=\"completed\"} 3\n\
                    braid_runs_ended_total{workflow=\"b\",status=\"completed\"} 4\n";
        assert_eq!(metric_sum(text, "braid_events_written_total"), 120.0);
        assert_eq!(
            metric_sum(text, "braid_store_commit_duration_seconds_count"),
            40.0
        );
        assert_eq!(metric_sum(text, "braid_runs_ended_total"), 7.0);
        assert_eq!(metric_sum(text, "braid_runs"), 0.0);
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&[7.0], 0.99), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
