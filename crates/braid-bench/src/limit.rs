//! The physical limit of the event log: `bench/limits/sqlite_limit.py` (raw
//! SQLite appends, WAL, `synchronous=FULL` and `NORMAL`), run on the same disk.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// One line of the probe: rows (or commits) per second for a sync mode and batch size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitRow {
    /// `FULL` or `NORMAL`.
    pub sync: String,
    /// Rows per transaction.
    pub batch: u64,
    /// Rows per second (commits per second for batch 1).
    pub per_s: f64,
}

/// The probe's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limit {
    /// Every line printed.
    pub rows: Vec<LimitRow>,
    /// How long the probe ran.
    pub secs: f64,
}

impl Limit {
    /// Rows/s (or commits/s) for `sync` and `batch`.
    pub fn rate(&self, sync: &str, batch: u64) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.sync == sync && r.batch == batch)
            .map(|r| r.per_s)
    }

    /// The batched-insert limit Braid is compared with: the best batched rate
    /// under `synchronous=FULL` (Braid's default durability).
    pub fn batched_full(&self) -> Option<(u64, f64)> {
        self.rows
            .iter()
            .filter(|r| r.sync == "FULL" && r.batch > 1)
            .max_by(|a, b| a.per_s.total_cmp(&b.per_s))
            .map(|r| (r.batch, r.per_s))
    }

    /// Cost of one durable commit (ms): 1 / (one-row commits per second) under FULL.
    pub fn fsync_ms(&self) -> Option<f64> {
        self.rate("FULL", 1).map(|c| 1e3 / c)
    }
}

/// Parses the probe's output (`sync=FULL batch=100  rows/s   =    123456`).
pub fn parse(out: &str) -> Vec<LimitRow> {
    out.lines()
        .filter_map(|l| {
            let sync = l.split_whitespace().next()?.strip_prefix("sync=")?;
            let batch = l
                .split_whitespace()
                .nth(1)?
                .strip_prefix("batch=")?
                .parse()
                .ok()?;
            let per_s = l.rsplit(['=', ' ']).next()?.trim().parse().ok()?;
            Some(LimitRow {
                sync: sync.to_string(),
                batch,
                per_s,
            })
        })
        .collect()
}

/// Runs the probe with its temp files under `tmp_parent` (the disk Braid uses).
pub fn run(python: &str, script: &Path, tmp_parent: &Path) -> anyhow::Result<Limit> {
    let t0 = Instant::now();
    let out = Command::new(python)
        .arg(script)
        .env("TMPDIR", tmp_parent)
        .output()
        .with_context(|| format!("running {python} {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{} exited with {}: {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let rows = parse(&stdout);
    if rows.is_empty() {
        bail!("{} printed no rates: {stdout}", script.display());
    }
    Ok(Limit {
        rows,
        secs: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_probe_output() {
        let out = "sync=FULL batch=1    commits/s=       412\n\
                   sync=FULL batch=100  rows/s   =     61234\n\
                   sync=FULL batch=1000 rows/s   =    301234\n\
                   sync=NORMAL batch=1    commits/s=     20000\n";
        let limit = Limit {
            rows: parse(out),
            secs: 0.0,
        };
        assert_eq!(limit.rows.len(), 4);
        assert_eq!(limit.rate("FULL", 100), Some(61234.0));
        assert_eq!(limit.batched_full(), Some((1000, 301234.0)));
        assert_eq!(limit.rate("NORMAL", 1), Some(20000.0));
        let ms = limit.fsync_ms().unwrap();
        assert!((ms - 1e3 / 412.0).abs() < 1e-9);
    }
}
