//! The physical reference for Braid on PostgreSQL: how many commits per
//! second the server sustains on this machine, measured with PostgreSQL's
//! own `pgbench` on a fresh database of the same server (same settings as
//! Braid's runs: `fsync` and `synchronous_commit` on), with a one-row insert
//! per transaction at 1 and more clients, and a 100-row insert per
//! transaction (the rows/s a batched writer can reach).
//!
//! One client's commits/s is the cost of one durable commit (WAL flush);
//! more clients share flushes (group commit in the WAL writer), which is the
//! most a server of several writers can get from this disk.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// Seconds per pgbench probe in the bench.
pub const PROBE_S: u64 = 4;

/// One probe: clients, rows per transaction, and the rates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PgLimitRow {
    /// Concurrent clients.
    pub clients: u32,
    /// Rows inserted per transaction.
    pub rows_per_commit: u32,
    /// Transactions (commits) per second.
    pub commits_per_s: f64,
    /// Mean latency of one transaction (ms), as pgbench reports it.
    pub latency_ms: Option<f64>,
}

impl PgLimitRow {
    /// Rows per second.
    pub fn rows_per_s(&self) -> f64 {
        self.commits_per_s * self.rows_per_commit as f64
    }
}

/// The probes' results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PgLimit {
    /// Every probe.
    pub rows: Vec<PgLimitRow>,
    /// The pgbench binary used.
    pub pgbench: String,
    /// How long the probes took (s).
    pub secs: f64,
}

impl PgLimit {
    /// Commits/s of one-row transactions at `clients`.
    pub fn commits(&self, clients: u32) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.clients == clients && r.rows_per_commit == 1)
            .map(|r| r.commits_per_s)
    }

    /// The most one-row commits/s at any client count: (clients, commits/s).
    pub fn best_commits(&self) -> Option<(u32, f64)> {
        self.rows
            .iter()
            .filter(|r| r.rows_per_commit == 1)
            .max_by(|a, b| a.commits_per_s.total_cmp(&b.commits_per_s))
            .map(|r| (r.clients, r.commits_per_s))
    }
}

/// The newest installed server's `pgbench`, else the one on `PATH`.
pub fn find_pgbench() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin/pgbench")))
        .filter(|p| p.is_file())
        .collect();
    // Version folders are numbers: the highest number is the newest.
    dirs.sort_by_key(|p| {
        p.components()
            .nth(4)
            .and_then(|c| c.as_os_str().to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().or_else(|| {
        Command::new("pgbench")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| PathBuf::from("pgbench"))
    })
}

/// Parses `tps = 1234.5 (without initial connection time)` and
/// `latency average = 0.81 ms` from pgbench's output.
pub fn parse(out: &str) -> Option<(f64, Option<f64>)> {
    let tps = out.lines().find_map(|l| {
        l.trim()
            .strip_prefix("tps = ")?
            .split_whitespace()
            .next()?
            .parse::<f64>()
            .ok()
    })?;
    let latency = out.lines().find_map(|l| {
        l.trim()
            .strip_prefix("latency average = ")?
            .split_whitespace()
            .next()?
            .parse::<f64>()
            .ok()
    });
    Some((tps, latency))
}

/// Runs the probes, `seconds` each, on a new database of `server_url`'s
/// server (dropped after).
pub async fn run(server_url: &str, clients: &[u32], seconds: u64) -> anyhow::Result<PgLimit> {
    let pgbench = find_pgbench().context("pgbench not found (apt-get install postgresql)")?;
    let db = crate::pg::BenchDb::create(server_url).await?;
    let result = probe_all(&pgbench, &db, clients, seconds).await;
    let _ = db.drop_now().await;
    result
}

async fn probe_all(
    pgbench: &std::path::Path,
    db: &crate::pg::BenchDb,
    clients: &[u32],
    seconds: u64,
) -> anyhow::Result<PgLimit> {
    use sqlx::{Connection, Executor};
    let t0 = Instant::now();
    // An events-like table: a text key, a sequence number, a JSON payload.
    let mut conn = sqlx::PgConnection::connect(db.url()).await?;
    conn.execute(
        "CREATE TABLE limit_events (id BIGSERIAL PRIMARY KEY, run_id TEXT NOT NULL, \
         seq BIGINT NOT NULL, payload TEXT NOT NULL)",
    )
    .await?;
    let _ = conn.close().await;
    let dir = tempfile::tempdir()?;
    let one = dir.path().join("one_row.sql");
    std::fs::write(
        &one,
        "INSERT INTO limit_events (run_id, seq, payload) VALUES ('run_x', 1, '{\"kind\":\"node_completed\"}');\n",
    )?;
    let hundred = dir.path().join("hundred_rows.sql");
    std::fs::write(
        &hundred,
        "INSERT INTO limit_events (run_id, seq, payload) SELECT 'run_x', g, '{\"kind\":\"node_completed\"}' FROM generate_series(1, 100) g;\n",
    )?;
    let mut rows = Vec::new();
    let mut probes: Vec<(u32, u32, &std::path::Path)> =
        clients.iter().map(|&c| (c, 1, one.as_path())).collect();
    probes.push((1, 100, hundred.as_path()));
    for (c, per, script) in probes {
        let out = Command::new(pgbench)
            .args(["-n", "-M", "prepared", "-T"])
            .arg(seconds.max(1).to_string())
            .arg("-c")
            .arg(c.to_string())
            .arg("-j")
            .arg(c.min(4).to_string())
            .arg("-f")
            .arg(script)
            .arg(db.url())
            .output()
            .with_context(|| format!("running {}", pgbench.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "pgbench -c {c} exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let (tps, latency_ms) =
            parse(&stdout).with_context(|| format!("no tps in pgbench's output: {stdout}"))?;
        eprintln!("  pgbench {c} client(s), {per} row(s)/commit: {tps:.0} commits/s");
        rows.push(PgLimitRow {
            clients: c,
            rows_per_commit: per,
            commits_per_s: tps,
            latency_ms,
        });
    }
    Ok(PgLimit {
        rows,
        pgbench: pgbench.display().to_string(),
        secs: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pgbench_output() {
        let out = "transaction type: one_row.sql\nnumber of clients: 4\n\
                   latency average = 0.812 ms\ninitial connection time = 3.1 ms\n\
                   tps = 4921.123456 (without initial connection time)\n";
        assert_eq!(parse(out), Some((4921.123456, Some(0.812))));
        assert_eq!(parse("nothing"), None);
        let limit = PgLimit {
            rows: vec![
                PgLimitRow {
                    clients: 1,
                    rows_per_commit: 1,
                    commits_per_s: 900.0,
                    latency_ms: None,
                },
                PgLimitRow {
                    clients: 8,
                    rows_per_commit: 1,
                    commits_per_s: 4000.0,
                    latency_ms: None,
                },
                PgLimitRow {
                    clients: 1,
                    rows_per_commit: 100,
                    commits_per_s: 500.0,
                    latency_ms: None,
                },
            ],
            pgbench: "pgbench".into(),
            secs: 0.0,
        };
        assert_eq!(limit.commits(1), Some(900.0));
        assert_eq!(limit.best_commits(), Some((8, 4000.0)));
        assert_eq!(limit.rows[2].rows_per_s(), 50_000.0);
    }
}
