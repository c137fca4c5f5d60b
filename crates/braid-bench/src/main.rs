//! `braid-bench`: runs the standard workloads on Braid (and with `--compare`
//! the peers), prints Markdown tables and the targets met or missed.
//!
//! ```text
//! cargo run --release -p braid-bench -- [--compare]
//! braid-bench --one W2 --size 100000      # one (workload, size): one JSON line
//! braid-bench --live --size 10000          # W2 with a live WebSocket client: one JSON line
//! braid-bench --one W2 --size 100000 --runs 1 --warmup 0 --view-calls 7
//!                                         # ... then time /nodes and /sibling-sets' store reads
//! braid-bench --database-url postgresql://…  # every case on SQLite and on PostgreSQL
//! braid-bench cluster --processes 1,2,3 --runs 1000   # `braid serve` processes on one database
//! braid-bench pg-limit                     # the PostgreSQL server's commits/s (pgbench)
//! ```

/// mimalloc: 10-15 % less wall time than glibc malloc on the fan-out
/// workloads (decisions.md, "mimalloc").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, bail};
use braid_bench::cluster::{self, ClusterArgs};
use braid_bench::limit;
use braid_bench::one::{ChildSpec, OneResult, Status, measure_with_view};
use braid_bench::peers::{self, MockLlmServer, Peer, PeerSeries};
use braid_bench::pglimit::{self, PgLimit};
use braid_bench::report::{Cold, Entry, PeerStatus, Report};
use braid_bench::system::{Disk, Machine};
use braid_bench::workloads::{Backend, NEST_DEPTH, RETRY_ATTEMPTS, Workload};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "braid-bench",
    about = "Standard workloads W1-W5 on Braid's durable SQLite store (and PostgreSQL with --database-url); --compare runs the peers too"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Sub>,
    /// A PostgreSQL server: every case runs on SQLite and then on a fresh
    /// database of this server (created and dropped per case); with
    /// --compare, DBOS runs on it too; its commit limit is probed (pgbench).
    #[arg(long, env = braid_bench::pg::URL_VAR)]
    database_url: Option<String>,
    /// Child mode: the store of `--one` (`sqlite`, or `postgres` on --database-url).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Also run the peer engines (bench/peers) and print Braid/peer ratios.
    #[arg(long)]
    compare: bool,
    /// Child mode: run one workload (W1..W5) in this process and print one JSON line.
    #[arg(long, value_name = "W")]
    one: Option<String>,
    /// Run W2 once (after one warm-up) with a client following the run's
    /// live WebSocket; print one JSON line (run time, events received vs stored).
    #[arg(long)]
    live: bool,
    /// Child mode: the size (steps, branches, judges, depth; ignored for W5).
    #[arg(long)]
    size: Option<u64>,
    /// Timed runs per (workload, size) [default: 5; 3 for W2 100,000].
    #[arg(long)]
    runs: Option<usize>,
    /// Untimed runs first, in the same process.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Workloads to run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "W1,W2,W3,W4,W5")]
    workloads: Vec<String>,
    /// Skip sizes above this.
    #[arg(long)]
    max_size: Option<u64>,
    /// Fresh-process executions per (workload, size) after one untimed one
    /// (0: none). For W2 100,000: one, with no untimed one.
    #[arg(long, default_value_t = 5)]
    cold_runs: usize,
    /// Where the temp databases go (must be the real disk) [default: the system temp dir].
    #[arg(long)]
    db_dir: Option<PathBuf>,
    /// Skip the raw SQLite limit probe.
    #[arg(long)]
    no_limit: bool,
    /// The shared bench folder (peers/, limits/) [default: ../shared/bench next to the repo].
    #[arg(long, env = "BRAID_BENCH_DIR")]
    bench_dir: Option<PathBuf>,
    /// Where scripts/install-peers.sh installed the peers [default: .peers in the repo].
    #[arg(long)]
    peers_dir: Option<PathBuf>,
    /// Peers to run with --compare (langgraph, dbos, restate, prefect).
    #[arg(long, value_delimiter = ',', default_value = "langgraph,dbos,restate")]
    peers: Vec<String>,
    /// Timed processes per peer configuration (after one untimed one).
    #[arg(long, default_value_t = 5)]
    peer_runs: usize,
    /// W2 sizes run on the peers.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    peer_w2_sizes: Vec<u64>,
    /// Bound on one peer process (s).
    #[arg(long, default_value_t = 300)]
    peer_timeout_s: u64,
    /// Also write everything measured as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Child mode: then time the run view's store reads (`/nodes`,
    /// `/sibling-sets`) of the last run this many times each.
    #[arg(long, default_value_t = 0)]
    view_calls: usize,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Throughput and latency of many small runs on 1, 2, 3 … `braid serve`
    /// processes sharing one PostgreSQL database.
    Cluster(ClusterArgs),
    /// The PostgreSQL server's commits/s limit (pgbench, one-row inserts).
    PgLimit {
        /// The server (a new database is created and dropped on it).
        #[arg(long, env = braid_bench::pg::URL_VAR)]
        database_url: String,
        /// Client counts to probe.
        #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
        clients: Vec<u32>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.cmd {
        Some(Sub::Cluster(args)) => return cluster_main(args),
        Some(Sub::PgLimit {
            database_url,
            clients,
        }) => {
            let rt = tokio::runtime::Runtime::new()?;
            let l = rt.block_on(pglimit::run(database_url, clients, pglimit::PROBE_S))?;
            println!("{}", braid_bench::pgreport::limit_markdown(&l));
            return Ok(());
        }
        None => {}
    }
    let db_parent = cli.db_dir.clone().unwrap_or_else(std::env::temp_dir);
    if cli.live {
        let size = cli.size.unwrap_or(10_000);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let result = rt.block_on(braid_bench::live::measure(size, &db_parent))?;
        println!("{}", serde_json::to_string(&result)?);
        return Ok(());
    }
    if let Some(w) = &cli.one {
        return child(&cli, w, db_parent);
    }
    parent(cli, db_parent)
}

/// `--one`: one (workload, size) in this process; one JSON line on stdout.
fn child(cli: &Cli, w: &str, db_parent: PathBuf) -> anyhow::Result<()> {
    let Some(workload) = Workload::parse(w) else {
        bail!("--one {w}: expected W1, W2, W3, W4 or W5");
    };
    let size = match workload {
        Workload::W5 => RETRY_ATTEMPTS,
        Workload::W4 => cli.size.unwrap_or(NEST_DEPTH),
        _ => cli
            .size
            .with_context(|| format!("--one {workload} needs --size"))?,
    };
    let runs = cli.runs.unwrap_or_else(|| workload.runs(size));
    let backend = match cli.backend.as_str() {
        "sqlite" => Backend::Sqlite(db_parent),
        "postgres" => Backend::Postgres(
            cli.database_url
                .clone()
                .context("--backend postgres needs --database-url")?,
        ),
        other => bail!("--backend {other}: expected sqlite or postgres"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(measure_with_view(
        workload,
        size,
        runs,
        cli.warmup,
        &backend,
        cli.view_calls,
    ));
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

fn failed(workload: Workload, size: u64, warmup: usize, error: String) -> OneResult {
    serde_json::from_value(serde_json::json!({
        "workload": workload, "size": size, "status": "failed", "error": error,
        "warmup": warmup, "samples": [], "setup_s": 0.0
    }))
    .expect("a failed result deserializes")
}

fn parent(cli: Cli, db_parent: PathBuf) -> anyhow::Result<()> {
    let machine = Machine::probe();
    let disk = Disk::of(&db_parent);
    if let Some(d) = &disk {
        eprintln!("databases in {d}");
        if d.is_memory() {
            eprintln!(
                "warning: {} is in memory: the figures are not durable-disk figures",
                d.path
            );
        }
    }
    let spec = ChildSpec {
        exe: std::env::current_exe()?,
        db_parent: db_parent.clone(),
        database_url: cli.database_url.clone(),
    };
    let bench_dir = cli
        .bench_dir
        .clone()
        .unwrap_or_else(|| peers::default_path("../shared/bench"));
    let mut workloads = Vec::new();
    for w in &cli.workloads {
        workloads.push(Workload::parse(w).with_context(|| format!("unknown workload {w}"))?);
    }
    let pg = cli.database_url.is_some();
    let pg_settings = match &cli.database_url {
        Some(url) => tokio::runtime::Runtime::new()?
            .block_on(braid_bench::pg::server_settings(url))
            .context("reading the PostgreSQL server's settings")?,
        None => Vec::new(),
    };

    let mut entries = Vec::new();
    let mut postgres = Vec::new();
    for &w in &workloads {
        for &size in w.sizes() {
            if cli.max_size.is_some_and(|m| size > m) {
                continue;
            }
            // The two stores back to back, so a drift of the machine hits both.
            entries.push(measure_case(&cli, &spec, w, size, false));
            if pg {
                postgres.push(measure_case(&cli, &spec, w, size, true));
            }
        }
    }

    let (limit, limit_error) = if cli.no_limit {
        (None, Some("skipped (--no-limit)".to_string()))
    } else {
        let script = bench_dir.join("limits/sqlite_limit.py");
        eprintln!("raw SQLite limit: {}", script.display());
        match limit::run("python3", &script, &db_parent) {
            Ok(l) => (Some(l), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        }
    };
    let (pg_limit, pg_limit_error) = pg_limit(&cli);

    let (peer_status, peer_series) = if cli.compare {
        run_peers(&cli, &bench_dir, &db_parent)?
    } else {
        (Vec::new(), Vec::new())
    };

    let report = Report {
        machine,
        disk,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        entries,
        limit,
        limit_error,
        peer_status,
        peers: peer_series,
        postgres,
        pg_settings,
        pg_limit,
        pg_limit_error,
    };
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{}", report.markdown());
    Ok(())
}

/// One (workload, size) on one store: warm runs in one child process, then
/// fresh-process runs (each child on a fresh database).
fn measure_case(cli: &Cli, spec: &ChildSpec, w: Workload, size: u64, postgres: bool) -> Entry {
    let store = if postgres { "PostgreSQL" } else { "SQLite" };
    let runs = cli.runs.unwrap_or_else(|| w.runs(size));
    eprintln!(
        "{w} {size} on {store}: {} warm-up + {runs} runs in one process",
        cli.warmup
    );
    let warm = match spec.run(w, size, runs, cli.warmup, postgres) {
        Ok(c) => c.result,
        Err(e) => failed(w, size, cli.warmup, format!("{e:#}")),
    };
    eprintln!(
        "  {:?} median {:?} s {}",
        warm.status,
        braid_bench::stats::median(&warm.samples.iter().map(|s| s.secs).collect::<Vec<_>>()),
        warm.error.as_deref().unwrap_or("")
    );
    // The biggest size: one fresh process, no untimed one before it.
    let big = w == Workload::W2 && size >= 100_000;
    let (cold_warmup, cold_runs) = if big {
        (0, cli.cold_runs.min(1))
    } else {
        (1, cli.cold_runs)
    };
    let cold = (cold_runs > 0 && warm.status == Status::Ok).then(|| {
        let mut c = Cold {
            warmup: cold_warmup,
            ..Cold::default()
        };
        for k in 0..cold_warmup + cold_runs {
            match spec.run(w, size, 1, 0, postgres) {
                Ok(r) if r.result.status == Status::Ok => {
                    if k >= cold_warmup {
                        c.internal_s
                            .extend(r.result.samples.first().map(|s| s.secs));
                        c.process_s.push(r.process_s);
                        c.vmhwm_kib.extend(r.result.vmhwm_kib);
                    }
                }
                Ok(r) => c.failures.push(r.result.error.unwrap_or_default()),
                Err(e) => c.failures.push(format!("{e:#}")),
            }
        }
        eprintln!(
            "  fresh processes: run median {:?} s, process median {:?} s",
            braid_bench::stats::median(&c.internal_s),
            braid_bench::stats::median(&c.process_s)
        );
        c
    });
    Entry { warm, cold }
}

/// The PostgreSQL server's commit limit, when there is a server and the
/// limits are not skipped.
fn pg_limit(cli: &Cli) -> (Option<PgLimit>, Option<String>) {
    let Some(url) = &cli.database_url else {
        return (None, None);
    };
    if cli.no_limit {
        return (None, Some("skipped (--no-limit)".into()));
    }
    eprintln!("PostgreSQL commit limit (pgbench)");
    let probed = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(pglimit::run(url, &[1, 4, 16], pglimit::PROBE_S)));
    match probed {
        Ok(l) => (Some(l), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    }
}

/// `braid-bench cluster`: the rounds, a Markdown table, optionally JSON.
fn cluster_main(args: &ClusterArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let rounds = rt.block_on(cluster::run(args))?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rounds)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{}", cluster::markdown(args, &rounds));
    Ok(())
}

fn run_peers(
    cli: &Cli,
    bench_dir: &std::path::Path,
    db_parent: &std::path::Path,
) -> anyhow::Result<(Vec<PeerStatus>, Vec<PeerSeries>)> {
    let env = peers::Env {
        bench_dir: bench_dir.to_path_buf(),
        peers_dir: cli
            .peers_dir
            .clone()
            .unwrap_or_else(|| peers::default_path(".peers")),
        db_parent: db_parent.to_path_buf(),
        timeout: Duration::from_secs(cli.peer_timeout_s),
        pg_url: cli.database_url.clone(),
    };
    let mut selected = Vec::new();
    for p in &cli.peers {
        selected.push(Peer::parse(p).with_context(|| format!("unknown peer {p}"))?);
    }
    let mut status = Vec::new();
    let mut runnable = Vec::new();
    for peer in Peer::ALL {
        let s = if !selected.contains(&peer) {
            format!(
                "not run (optional: add it with --peers {},{})",
                cli.peers.join(","),
                peer.name()
            )
        } else if let Some(reason) = env.missing(peer) {
            reason
        } else {
            runnable.push(peer);
            "ok".into()
        };
        eprintln!("peer {}: {s}", peer.name());
        status.push(PeerStatus { peer, status: s });
    }
    let mut matrix: Vec<(Workload, u64)> = vec![(Workload::W1, 100)];
    matrix.extend(cli.peer_w2_sizes.iter().map(|&n| (Workload::W2, n)));
    matrix.extend([
        (Workload::W3, 3),
        (Workload::W3, 100),
        (Workload::W4, NEST_DEPTH),
        (Workload::W5, RETRY_ATTEMPTS),
    ]);
    // `--workloads` narrows the peers' runs too.
    matrix.retain(|(w, _)| cli.workloads.iter().any(|x| Workload::parse(x) == Some(*w)));
    let needs_mock = matrix.iter().any(|(w, _)| *w == Workload::W3);
    let mock = if runnable.is_empty() || !needs_mock {
        None
    } else {
        match MockLlmServer::start(&env) {
            Ok(m) => Some(m),
            Err(e) => {
                eprintln!("peers' mock LLM server: {e:#} (W3 is skipped for the peers)");
                None
            }
        }
    };
    let mut series = Vec::new();
    for peer in runnable {
        for cfg in peers::configs(peer, &env) {
            for &(w, n) in &matrix {
                eprintln!("peer {} {}: {w} {n}", peer.name(), cfg.mode);
                let s = peers::run_series(
                    &env,
                    &cfg,
                    w,
                    n,
                    1,
                    cli.peer_runs,
                    mock.as_ref().map(|m| m.url.as_str()),
                );
                eprintln!(
                    "  median internal {:?} s, {} failures",
                    s.median_internal(),
                    s.failures.len()
                );
                series.push(s);
            }
        }
    }
    Ok((status, series))
}
