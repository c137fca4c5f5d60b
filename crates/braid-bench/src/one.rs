//! One (workload, size) in one process, and the parent's side of it.
//!
//! Peak memory is a process-wide high-water mark (`VmHWM`), so each
//! (workload, size) runs in a fresh child process of the bench itself
//! (`braid-bench --one W2 --size 100000`), which prints one JSON line: a
//! [`OneResult`]. The parent spawns it and times the whole process from outside.

use crate::system::Disk;
use crate::workloads::{Backend, Bench, Sample, Workload, vmhwm_kib};
use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// How a (workload, size) went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every run completed and passed its check.
    Ok,
    /// A run failed, gave a wrong result, or the process died.
    Failed,
}

/// What one child process measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OneResult {
    /// The workload.
    pub workload: Workload,
    /// Its size (steps, branches, judges, depth, attempts).
    pub size: u64,
    /// Outcome.
    pub status: Status,
    /// Why it is not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Untimed runs before the timed ones.
    pub warmup: usize,
    /// The first execution in this process (the warm-up when there is one):
    /// what the peers' `internal_s` measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<Sample>,
    /// The timed runs.
    pub samples: Vec<Sample>,
    /// Events of the last timed run counted row by row in the store (equal to
    /// its `events` by construction; checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_counted: Option<u64>,
    /// Store open, migrations, engine start and saving the definitions (s).
    pub setup_s: f64,
    /// With `--view-calls N`: the run view's reads of the last timed run,
    /// each timed N times through the store (ms per call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<ViewTimes>,
    /// Peak resident memory of the process (KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmhwm_kib: Option<u64>,
    /// Where the database was (SQLite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<Disk>,
    /// `sqlite` or `postgres`.
    #[serde(default = "sqlite")]
    pub backend: String,
    /// The PostgreSQL database the case ran on (dropped at its end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

fn sqlite() -> String {
    "sqlite".into()
}

impl OneResult {
    fn new(workload: Workload, size: u64, warmup: usize) -> OneResult {
        OneResult {
            workload,
            size,
            status: Status::Ok,
            error: None,
            warmup,
            first: None,
            samples: Vec::new(),
            events_counted: None,
            setup_s: 0.0,
            vmhwm_kib: None,
            db: None,
            view: None,
            backend: sqlite(),
            database: None,
        }
    }

    fn fail(&mut self, e: anyhow::Error) {
        self.status = Status::Failed;
        self.error = Some(format!("failed: {e:#}"));
    }
}

/// The run view's store reads of one ended run, in ms per call.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ViewTimes {
    /// `RunStore::node_stats` (what `GET /api/runs/{id}/nodes` serves).
    pub node_stats_ms: Vec<f64>,
    /// `RunStore::sibling_sets`, first page of 100 (`GET …/sibling-sets`).
    pub sibling_sets_ms: Vec<f64>,
}

/// Runs `warmup` + `runs` executions of one workload on one engine (the child's job).
pub async fn measure(
    workload: Workload,
    size: u64,
    runs: usize,
    warmup: usize,
    db_parent: &Path,
) -> OneResult {
    let backend = Backend::Sqlite(db_parent.to_path_buf());
    measure_with_view(workload, size, runs, warmup, &backend, 0).await
}

/// [`measure`], then times the run view's reads of the last timed run
/// `view_calls` times each (none for 0).
pub async fn measure_with_view(
    workload: Workload,
    size: u64,
    runs: usize,
    warmup: usize,
    backend: &Backend,
    view_calls: usize,
) -> OneResult {
    let mut out = OneResult::new(workload, size, warmup);
    out.backend = backend.name().to_string();
    if let Backend::Sqlite(db_parent) = backend {
        out.db = Disk::of(db_parent);
    }
    let t0 = Instant::now();
    let bench = match Bench::prepare_on(workload, size, backend).await {
        Ok(b) => b,
        Err(e) => {
            out.fail(e.context("setting up"));
            out.vmhwm_kib = vmhwm_kib();
            return out;
        }
    };
    out.setup_s = t0.elapsed().as_secs_f64();
    out.database = bench.database_name();
    for k in 0..warmup + runs {
        match bench.run().await {
            Ok(s) => {
                if k == 0 {
                    out.first = Some(s.clone());
                }
                if k >= warmup {
                    out.samples.push(s);
                }
            }
            Err(f) => {
                out.fail(f);
                break;
            }
        }
    }
    if out.status == Status::Ok
        && let Some(last) = out.samples.last()
    {
        match bench.count_stored_events(&last.run_id).await {
            Ok(n) if n == last.events => out.events_counted = Some(n),
            Ok(n) => out.fail(anyhow!(
                "run {}: {n} events stored, but the run rows' last_seq add up to {}",
                last.run_id,
                last.events
            )),
            Err(e) => out.fail(e.context("counting events")),
        }
    }
    if view_calls > 0
        && out.status == Status::Ok
        && let Some(last) = out.samples.last()
    {
        match bench.time_run_view(&last.run_id, view_calls).await {
            Ok(v) => out.view = Some(v),
            Err(e) => out.fail(e.context("timing the run view's reads")),
        }
    }
    bench.shutdown().await;
    out.vmhwm_kib = vmhwm_kib();
    out
}

/// How to start a child.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// This binary.
    pub exe: PathBuf,
    /// Where the child creates its temp database dir.
    pub db_parent: PathBuf,
    /// The PostgreSQL server of the `postgres` runs, if any.
    pub database_url: Option<String>,
}

/// A child's result and the whole process's wall time, measured from outside.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildRun {
    /// What it printed.
    pub result: OneResult,
    /// Spawn to exit (s).
    pub process_s: f64,
}

impl ChildSpec {
    /// Runs `braid-bench --one W --size N --runs R --warmup K` and reads
    /// its JSON line; with `postgres`, on a new database of
    /// [`ChildSpec::database_url`]'s server (`--database-url`).
    pub fn run(
        &self,
        workload: Workload,
        size: u64,
        runs: usize,
        warmup: usize,
        postgres: bool,
    ) -> anyhow::Result<ChildRun> {
        let t0 = Instant::now();
        let mut cmd = Command::new(&self.exe);
        if postgres {
            let url = self
                .database_url
                .as_deref()
                .context("a PostgreSQL run needs --database-url")?;
            cmd.args(["--backend", "postgres", "--database-url", url]);
        }
        let out = cmd
            .args(["--one", workload.name(), "--size"])
            .arg(size.to_string())
            .arg("--runs")
            .arg(runs.to_string())
            .arg("--warmup")
            .arg(warmup.to_string())
            .arg("--db-dir")
            .arg(&self.db_parent)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        let process_s = t0.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().rev().find(|l| l.starts_with('{'));
        match line {
            Some(l) => Ok(ChildRun {
                result: serde_json::from_str(l)
                    .with_context(|| format!("reading the child's result: {l}"))?,
                process_s,
            }),
            None => bail!(
                "{workload} {size}: the child exited with {} and printed no result",
                out.status
            ),
        }
    }
}
