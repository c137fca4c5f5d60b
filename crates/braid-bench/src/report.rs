//! Everything one bench run measured, the derived figures, the targets, and
//! the Markdown tables printed at the end.

use crate::limit::Limit;
use crate::one::{OneResult, Status};
use crate::peers::{Peer, PeerSeries};
use crate::stats::{median, range};
use crate::system::{Disk, Machine};
use crate::workloads::{JUDGE_LATENCY_MS, Workload};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// Fresh-process executions of one (workload, size): `--runs 1 --warmup 0`
/// children, as the peers' scripts are run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cold {
    /// Untimed processes first.
    pub warmup: usize,
    /// The run's own time in each process (s).
    pub internal_s: Vec<f64>,
    /// The whole process, spawn to exit (s).
    pub process_s: Vec<f64>,
    /// Peak resident memory of each process (KiB): one run's own peak.
    #[serde(default)]
    pub vmhwm_kib: Vec<u64>,
    /// Processes that failed.
    pub failures: Vec<String>,
}

/// Braid's figures for one (workload, size).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Warm-up + timed runs in one process.
    pub warm: OneResult,
    /// Fresh-process runs, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold: Option<Cold>,
}

impl Entry {
    fn secs(&self) -> Vec<f64> {
        self.warm.samples.iter().map(|s| s.secs).collect()
    }

    /// Median wall time of the warm runs (s).
    pub fn median_s(&self) -> Option<f64> {
        median(&self.secs())
    }

    fn extra_median(&self, key: &str) -> Option<f64> {
        median(
            &self
                .warm
                .samples
                .iter()
                .filter_map(|s| s.extra.get(key).and_then(|v| v.as_f64()))
                .collect::<Vec<_>>(),
        )
    }

    /// Per-step figure: W1 wall/steps and W2 wall/N (µs); W3 wall − 100 ms and
    /// W5 wall − the recorded retry delays (ms).
    pub fn per_unit(&self) -> Option<(f64, &'static str)> {
        match self.warm.workload {
            Workload::W1 | Workload::W2 => self
                .median_s()
                .map(|m| (m / self.warm.size as f64 * 1e6, "µs")),
            Workload::W3 | Workload::W5 => self.extra_median("overhead_ms").map(|m| (m, "ms")),
            Workload::W4 => None,
        }
    }

    /// Events per run.
    pub fn events(&self) -> Option<u64> {
        self.warm.samples.last().map(|s| s.events)
    }

    /// Median over runs of events / wall.
    pub fn events_per_s(&self) -> Option<f64> {
        median(
            &self
                .warm
                .samples
                .iter()
                .map(|s| s.events as f64 / s.secs)
                .collect::<Vec<_>>(),
        )
    }

    /// W3: the largest number of model calls in flight at once, per run.
    pub fn max_inflight(&self) -> Vec<u64> {
        self.warm
            .samples
            .iter()
            .filter_map(|s| s.extra.get("max_inflight").and_then(|v| v.as_u64()))
            .collect()
    }

    /// Peak resident memory of the warm process (MiB): warm-up and every
    /// timed run, so it includes what the allocator kept between runs.
    pub fn peak_mib(&self) -> Option<f64> {
        self.warm.vmhwm_kib.map(|k| k as f64 / 1024.0)
    }

    /// Peak resident memory of one run in a fresh process (median, MiB).
    pub fn one_run_peak_mib(&self) -> Option<f64> {
        let c = self.cold.as_ref()?;
        median(
            &c.vmhwm_kib
                .iter()
                .map(|&k| k as f64 / 1024.0)
                .collect::<Vec<_>>(),
        )
    }

    /// Median of the fresh-process executions (s).
    pub fn cold_median_s(&self) -> Option<f64> {
        self.cold.as_ref().and_then(|c| median(&c.internal_s))
    }

    /// Median whole-process time of the fresh-process executions (s).
    pub fn process_median_s(&self) -> Option<f64> {
        self.cold.as_ref().and_then(|c| median(&c.process_s))
    }
}

/// A peer's install status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The peer.
    pub peer: Peer,
    /// `ok`, `not installed: …`, or `not run: …`.
    pub status: String,
}

/// A bench run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// Where the databases were.
    pub disk: Option<Disk>,
    /// `braid-bench …` as invoked.
    pub command: String,
    /// Braid, per (workload, size).
    pub entries: Vec<Entry>,
    /// The raw SQLite limit on the same disk.
    pub limit: Option<Limit>,
    /// Why the limit is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_error: Option<String>,
    /// Peers (compare mode).
    pub peer_status: Vec<PeerStatus>,
    /// Peer executions (compare mode).
    pub peers: Vec<PeerSeries>,
    /// Braid on PostgreSQL, per (workload, size) (`--database-url`).
    #[serde(default)]
    pub postgres: Vec<Entry>,
    /// The PostgreSQL server's version and commit-relevant settings.
    #[serde(default)]
    pub pg_settings: Vec<(String, String)>,
    /// The PostgreSQL server's commit limit (pgbench).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_limit: Option<crate::pglimit::PgLimit>,
    /// Why it is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_limit_error: Option<String>,
}

/// Reference peer medians quoted in the issue (s), used when the peers were
/// not run in this bench run: (workload, size, peer, seconds).
const REFERENCE: [(Workload, u64, &str, f64); 2] = [
    (Workload::W1, 100, "restate (issue's reference)", 0.20),
    (Workload::W2, 1000, "restate (issue's reference)", 0.89),
];

/// Seconds for a table: µs-precise below 10 ms, ms below 1 s.
pub fn fmt_s(x: Option<f64>) -> String {
    match x {
        None => "—".into(),
        Some(s) if s < 0.01 => format!("{:.2} ms", s * 1e3),
        Some(s) if s < 1.0 => format!("{:.1} ms", s * 1e3),
        Some(s) => format!("{s:.2} s"),
    }
}

/// A rate, rounded; `—` when missing.
pub fn fmt_rate(x: Option<f64>) -> String {
    x.map(|r| format!("{:.0}", r)).unwrap_or_else(|| "—".into())
}

/// A target and whether it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// What is asked.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// `Some(true)` met, `Some(false)` missed, `None` not measured.
    pub met: Option<bool>,
}

impl Report {
    fn entry(&self, w: Workload, size: u64) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.warm.workload == w && e.warm.size == size && e.warm.status == Status::Ok)
    }

    /// The fastest durable peer measured in this run for (w, n): (label, median internal s).
    /// Peers on PostgreSQL are compared with Braid on PostgreSQL instead
    /// (crate::pgreport).
    pub fn fastest_durable(&self, w: Workload, n: u64) -> Option<(String, f64)> {
        self.peers
            .iter()
            .filter(|s| s.workload == w && s.n == n && s.config.durable)
            .filter(|s| s.config.mode != "postgres")
            .filter_map(|s| {
                s.median_internal()
                    .map(|m| (format!("{} {}", s.config.peer.name(), s.config.mode), m))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// This run's fastest durable peer, else the reference figure.
    fn peer_baseline(&self, w: Workload, n: u64) -> Option<(String, f64)> {
        self.fastest_durable(w, n).or_else(|| {
            REFERENCE
                .iter()
                .find(|r| r.0 == w && r.1 == n)
                .map(|r| (r.2.to_string(), r.3))
        })
    }

    /// Braid's figure compared with the peers' `internal_s` (the first
    /// execution in a fresh process): the fresh-process median when
    /// measured, else the warm median.
    fn braid_like_peers(&self, w: Workload, n: u64) -> Option<(f64, &'static str)> {
        let e = self.entry(w, n)?;
        e.cold_median_s()
            .map(|c| (c, "fresh process"))
            .or_else(|| e.median_s().map(|m| (m, "warm")))
    }

    /// Braid's best durable event rate: (events/s, which workload).
    pub fn best_event_rate(&self) -> Option<(f64, String)> {
        self.entries
            .iter()
            .filter(|e| e.warm.status == Status::Ok)
            .filter_map(|e| {
                e.events_per_s()
                    .map(|r| (r, format!("{} {}", e.warm.workload, e.warm.size)))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// The targets of the issue and WORKLOADS.md.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut v = Vec::new();
        let mut ratio = |w: Workload, n: u64, label: &str| {
            let target = format!("{label}: ≥ 20× faster than the fastest durable peer");
            match (self.braid_like_peers(w, n), self.peer_baseline(w, n)) {
                (Some((b, how)), Some((peer, p))) => v.push(Verdict {
                    target,
                    measured: format!(
                        "{:.1}× ({} {} vs {peer} {})",
                        p / b,
                        fmt_s(Some(b)),
                        how,
                        fmt_s(Some(p))
                    ),
                    met: Some(p / b >= 20.0),
                }),
                _ => v.push(Verdict {
                    target,
                    measured: "not measured".into(),
                    met: None,
                }),
            }
        };
        ratio(Workload::W1, 100, "W1 100 steps");
        ratio(Workload::W2, 1000, "W2 1,000 branches");

        let mut bound = |w: Workload,
                         n: u64,
                         target: &str,
                         f: &dyn Fn(&Entry) -> Option<(f64, String)>,
                         limit: f64| {
            match self.entry(w, n).and_then(f) {
                Some((x, shown)) => v.push(Verdict {
                    target: target.into(),
                    measured: shown,
                    met: Some(x <= limit),
                }),
                None => v.push(Verdict {
                    target: target.into(),
                    measured: self.why_missing(w, n),
                    met: None,
                }),
            }
        };
        bound(
            Workload::W1,
            10_000,
            "W1 10,000 steps: ≤ 100 µs per step",
            &|e| {
                e.per_unit()
                    .map(|(x, _)| (x, format!("{x:.1} µs per step")))
            },
            100.0,
        );
        bound(
            Workload::W2,
            10_000,
            "W2 10,000 branches: < 1 s",
            &|e| e.median_s().map(|x| (x, fmt_s(Some(x)))),
            1.0,
        );
        bound(
            Workload::W2,
            100_000,
            "W2 100,000 branches: < 15 s",
            &|e| e.median_s().map(|x| (x, fmt_s(Some(x)))),
            15.0,
        );
        bound(
            Workload::W2,
            100_000,
            "W2 100,000 branches: peak memory < 1 GiB",
            &|e| {
                e.one_run_peak_mib()
                    .map(|m| (m, format!("{m:.0} MiB VmHWM (one run, fresh process)")))
                    .or_else(|| {
                        e.peak_mib()
                            .map(|m| (m, format!("{m:.0} MiB VmHWM (warm process)")))
                    })
            },
            1024.0,
        );
        bound(
            Workload::W3,
            3,
            "W3 3 judges: ≤ 110 ms",
            &|e| e.median_s().map(|x| (x, fmt_s(Some(x)))),
            0.110,
        );
        bound(
            Workload::W3,
            100,
            "W3 100 judges: ≤ 150 ms",
            &|e| e.median_s().map(|x| (x, fmt_s(Some(x)))),
            0.150,
        );
        bound(
            Workload::W4,
            6,
            "W4 six nested: ≤ 10 ms",
            &|e| e.median_s().map(|x| (x, fmt_s(Some(x)))),
            0.010,
        );
        bound(
            Workload::W5,
            3,
            "W5: within 5 ms of the configured delays",
            &|e| {
                e.per_unit()
                    .map(|(x, _)| (x, format!("{x:.1} ms over the delays")))
            },
            5.0,
        );
        let target = "durable events/s ≥ 25 % of the raw batched-insert limit".to_string();
        match (
            self.best_event_rate(),
            self.limit.as_ref().and_then(|l| l.batched_full()),
        ) {
            (Some((rate, which)), Some((batch, raw))) => v.push(Verdict {
                target,
                measured: format!(
                    "{:.1} % ({rate:.0} events/s in {which} vs {raw:.0} rows/s, FULL, batch {batch})",
                    rate / raw * 100.0
                ),
                met: Some(rate / raw >= 0.25),
            }),
            _ => v.push(Verdict {
                target,
                measured: self
                    .limit_error
                    .clone()
                    .unwrap_or_else(|| "not measured".into()),
                met: None,
            }),
        }
        v
    }

    fn why_missing(&self, w: Workload, n: u64) -> String {
        match self
            .entries
            .iter()
            .find(|e| e.warm.workload == w && e.warm.size == n)
        {
            None => "not run".into(),
            Some(e) => format!("failed: {}", e.warm.error.clone().unwrap_or_default()),
        }
    }

    /// The Markdown tables.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        self.machine_section(&mut s);
        self.braid_section(&mut s);
        self.limit_section(&mut s);
        self.peers_section(&mut s);
        self.targets_section(&mut s);
        crate::pgreport::section(self, &mut s);
        s
    }

    /// The machine, the disk, the fsync cost and the command.
    fn machine_section(&self, s: &mut String) {
        let m = &self.machine;
        let _ = writeln!(s, "## Machine\n");
        let _ = writeln!(
            s,
            "- {} cores ({}), {} MiB memory, Linux {}",
            m.nproc,
            m.cpu.as_deref().unwrap_or("unknown CPU"),
            m.mem_total_mib.unwrap_or(0),
            m.kernel.as_deref().unwrap_or("?")
        );
        if let Some(d) = &self.disk {
            let _ = writeln!(
                s,
                "- databases in {d}{}",
                if d.is_memory() {
                    " — IN MEMORY, not a disk"
                } else {
                    ""
                }
            );
        }
        if let Some(l) = &self.limit {
            let _ = writeln!(
                s,
                "- fsync cost (one-row WAL commit, synchronous=FULL): {:.2} ms ({} commits/s); NORMAL: {} commits/s",
                l.fsync_ms().unwrap_or(f64::NAN),
                fmt_rate(l.rate("FULL", 1)),
                fmt_rate(l.rate("NORMAL", 1)),
            );
        }
        let _ = writeln!(s, "- command: `{}`\n", self.command);
    }

    /// One row per (workload, size) measured on Braid.
    fn braid_section(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "## Braid (durable SQLite store, WAL, synchronous=FULL)\n"
        );
        let _ = writeln!(
            s,
            "| W | size | runs | median wall | min–max | per step | events/run | events/s | peak RSS, warm process | peak RSS, one run | fresh-process run (median) | whole process (median) | notes |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for e in &self.entries {
            self.braid_row(s, e);
        }
    }

    /// One (workload, size) row of the Braid table.
    fn braid_row(&self, s: &mut String, e: &Entry) {
        let w = &e.warm;
        if w.status != Status::Ok {
            let _ = writeln!(
                s,
                "| {} | {} | — | **failed** | | | | | {} | | | | {} |",
                w.workload,
                w.size,
                e.peak_mib()
                    .map(|m| format!("{m:.0} MiB"))
                    .unwrap_or_default(),
                w.error.as_deref().unwrap_or("").replace('|', "/")
            );
            return;
        }
        let (lo, hi) = range(&e.secs()).unwrap_or((f64::NAN, f64::NAN));
        let per = e
            .per_unit()
            .map(|(x, u)| match w.workload {
                Workload::W3 => format!("{x:.1} {u} over {JUDGE_LATENCY_MS} ms"),
                Workload::W5 => format!("{x:.1} {u} over delays"),
                _ => format!("{x:.1} {u}"),
            })
            .unwrap_or_else(|| "—".into());
        let mut notes = Vec::new();
        if w.warmup != 1 || w.samples.len() != 5 {
            notes.push(format!("{} warm-up + {} runs", w.warmup, w.samples.len()));
        }
        let inflight = e.max_inflight();
        if !inflight.is_empty() {
            let (a, b) = (
                inflight.iter().min().copied().unwrap_or(0),
                inflight.iter().max().copied().unwrap_or(0),
            );
            notes.push(if a == b {
                format!("max in flight {a}")
            } else {
                format!("max in flight {a}–{b}")
            });
        }
        if let Some(d) = median(
            &w.samples
                .iter()
                .filter_map(|x| x.extra.get("delays_ms").and_then(|v| v.as_f64()))
                .collect::<Vec<_>>(),
        ) {
            notes.push(format!("delays {d:.0} ms (10 + 10, ±10 % jitter)"));
        }
        if let Some(c) = &e.cold {
            if !c.failures.is_empty() {
                notes.push(format!("{} fresh-process failures", c.failures.len()));
            }
            if c.internal_s.len() != 5 || c.warmup != 1 {
                notes.push(format!(
                    "{} fresh process(es) after {} untimed",
                    c.internal_s.len(),
                    c.warmup
                ));
            }
        } else {
            notes.push("no fresh-process runs".into());
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {}–{} | {} | {} | {} | {} | {} | {} | {} | {} |",
            w.workload,
            w.size,
            w.samples.len(),
            fmt_s(e.median_s()),
            fmt_s(Some(lo)),
            fmt_s(Some(hi)),
            per,
            e.events().map(|n| n.to_string()).unwrap_or_default(),
            fmt_rate(e.events_per_s()),
            e.peak_mib()
                .map(|m| format!("{m:.0} MiB"))
                .unwrap_or_default(),
            e.one_run_peak_mib()
                .map(|m| format!("{m:.0} MiB"))
                .unwrap_or_default(),
            fmt_s(e.cold_median_s()),
            fmt_s(e.process_median_s()),
            notes.join("; ")
        );
    }

    /// The raw SQLite limit and Braid's share of it.
    fn limit_section(&self, s: &mut String) {
        if let Some(l) = &self.limit {
            let _ = writeln!(
                s,
                "\n## Raw SQLite limit (`limits/sqlite_limit.py`, same disk, {:.0} s)\n",
                l.secs
            );
            let _ = writeln!(
                s,
                "| synchronous | batch | rows/s (commits/s for batch 1) |"
            );
            let _ = writeln!(s, "|---|---|---|");
            for r in &l.rows {
                let _ = writeln!(s, "| {} | {} | {:.0} |", r.sync, r.batch, r.per_s);
            }
            if let (Some((rate, which)), Some((batch, raw))) =
                (self.best_event_rate(), l.batched_full())
            {
                let _ = writeln!(
                    s,
                    "\nBraid's best durable event rate: {rate:.0} events/s ({which}) = **{:.1} %** of the batched-insert limit ({raw:.0} rows/s, FULL, batch {batch}).",
                    rate / raw * 100.0
                );
            }
        } else if let Some(e) = &self.limit_error {
            let _ = writeln!(s, "\nRaw SQLite limit: not measured ({e})");
        }
    }

    /// Peer runs and the ratios against the fastest durable peer.
    fn peers_section(&self, s: &mut String) {
        if !self.peer_status.is_empty() {
            let _ = writeln!(s, "\n## Peers\n");
            for p in &self.peer_status {
                let _ = writeln!(s, "- {}: {}", p.peer.name(), p.status);
            }
            let _ = writeln!(
                s,
                "\n| W | size | Braid fresh process | Braid warm | peer | peer median internal | peer whole process | runs | Braid × faster | notes |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
            for p in self.peers.iter().filter(|p| p.config.mode != "postgres") {
                let braid = self.entry(p.workload, p.n);
                let b = self.braid_like_peers(p.workload, p.n).map(|x| x.0);
                let pm = p.median_internal();
                let mut notes = Vec::new();
                if !p.config.durable {
                    notes.push("no durability (reference)".to_string());
                }
                if let Some(sk) = &p.skipped {
                    notes.push(sk.clone());
                }
                if !p.failures.is_empty() {
                    notes.push(format!(
                        "{} failed: {}",
                        p.failures.len(),
                        p.failures[0].chars().take(160).collect::<String>()
                    ));
                }
                let inflight = p.max_in_flight();
                if !inflight.is_empty() {
                    notes.push(format!("max in flight {inflight:?}"));
                }
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} {} | {} | {} | {} | {} | {} |",
                    p.workload,
                    p.n,
                    fmt_s(braid.and_then(|e| e.cold_median_s())),
                    fmt_s(braid.and_then(|e| e.median_s())),
                    p.config.peer.name(),
                    p.config.mode,
                    fmt_s(pm),
                    fmt_s(p.median_process()),
                    p.runs.len(),
                    match (b, pm) {
                        (Some(b), Some(pm)) => format!("{:.1}×", pm / b),
                        _ => "—".into(),
                    },
                    notes.join("; ").replace('|', "/")
                );
            }
            let mut keys: Vec<(Workload, u64)> =
                self.peers.iter().map(|p| (p.workload, p.n)).collect();
            keys.sort();
            keys.dedup();
            let _ = writeln!(
                s,
                "\n| W | size | fastest durable peer | its median | Braid (fresh process) | Braid/peer time ratio | Braid × faster |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|---|");
            for (w, n) in keys {
                let fastest = self.fastest_durable(w, n);
                let b = self.braid_like_peers(w, n).map(|x| x.0);
                let _ = writeln!(
                    s,
                    "| {w} | {n} | {} | {} | {} | {} | {} |",
                    fastest
                        .as_ref()
                        .map(|f| f.0.clone())
                        .unwrap_or_else(|| "none measured".into()),
                    fmt_s(fastest.as_ref().map(|f| f.1)),
                    fmt_s(b),
                    match (b, &fastest) {
                        (Some(b), Some(f)) => format!("{:.4}", b / f.1),
                        _ => "—".into(),
                    },
                    match (b, &fastest) {
                        (Some(b), Some(f)) => format!("{:.1}×", f.1 / b),
                        _ => "—".into(),
                    },
                );
            }
        }
    }

    /// Every target with its verdict.
    fn targets_section(&self, s: &mut String) {
        let _ = writeln!(s, "\n## Targets\n");
        let _ = writeln!(s, "| target | measured | |");
        let _ = writeln!(s, "|---|---|---|");
        for v in self.verdicts() {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                v.target,
                v.measured.replace('|', "/"),
                match v.met {
                    Some(true) => "met",
                    Some(false) => "**missed**",
                    None => "—",
                }
            );
        }
    }
}
