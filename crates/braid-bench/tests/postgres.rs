//! The PostgreSQL side of the bench on a real server (`scripts/pg.sh start`;
//! skipped with a printed reason without one, failed under `CI=true`):
//! the workloads run to their checked results on a database of their own
//! that is dropped afterwards; one, then two `braid serve` processes (real
//! processes over real HTTP) serve cluster rounds whose figures add up; pgbench's
//! commit probe reads a rate. No timing is asserted.

use braid_bench::cluster::{self, ClusterArgs};
use braid_bench::one::{Status, measure_with_view};
use braid_bench::pg;
use braid_bench::workloads::{Backend, NEST_DEPTH, Workload};
use braid_store_postgres::testing::TestDb;
use std::path::PathBuf;

/// The server's URL (any database on it serves to create others), or `None`
/// when the test skips.
async fn server() -> Option<(TestDb, String)> {
    let db = TestDb::create().await?;
    let url = db.url().to_string();
    Some((db, url))
}

async fn bench_databases(url: &str) -> Vec<String> {
    pg::databases_with_prefix(url, "braid_bench_")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_complete_on_postgres_each_on_a_database_dropped_afterwards() {
    let Some((_db, url)) = server().await else {
        return;
    };
    let backend = Backend::Postgres(url.clone());
    let mut used = Vec::new();
    for (w, size) in [
        (Workload::W1, 20),
        (Workload::W2, 50),
        (Workload::W4, NEST_DEPTH),
    ] {
        let r = measure_with_view(w, size, 2, 1, &backend, 0).await;
        assert_eq!(r.status, Status::Ok, "{w} {size}: {:?}", r.error);
        assert_eq!(r.backend, "postgres");
        used.push(r.database.clone().expect("the case's database"));
        assert_eq!(r.samples.len(), 2);
        let last = r.samples.last().unwrap();
        assert_eq!(r.events_counted, Some(last.events), "{w}: stored events");
        if w == Workload::W2 {
            assert_eq!(last.extra["sum"], serde_json::json!(50 * 49 / 2));
        }
    }
    used.dedup();
    assert_eq!(used.len(), 3, "a database per case: {used:?}");
    let left = bench_databases(&url).await;
    assert!(
        used.iter().all(|d| !left.contains(d)),
        "every case's database is dropped after it: {used:?} still in {left:?}"
    );
}

/// The `braid` binary the workspace's tests built (`BRAID_BIN` overrides).
fn braid_binary() -> Option<PathBuf> {
    let path = std::env::var_os("BRAID_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/braid")
        });
    if path.is_file() {
        return Some(path);
    }
    let why = format!(
        "{} not found: build it with `cargo build -p braid-cli` (or set BRAID_BIN)",
        path.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; CI=true, so this test fails instead of skipping");
    }
    eprintln!("skipped: {why}");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_rounds_of_one_and_two_processes_complete_every_run_and_read_their_metrics() {
    let Some((_db, url)) = server().await else {
        return;
    };
    let Some(braid) = braid_binary() else {
        return;
    };
    let args = ClusterArgs {
        database_url: url.clone(),
        processes: vec![1],
        runs: 30,
        concurrency: 6,
        steps: 3,
        warmup: 3,
        reps: 1,
        braid: Some(braid.clone()),
        json: None,
    };
    let r = cluster::round(&args, &braid, 1, 0)
        .await
        .expect("a round of one process");
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.completed, 30, "every timed run completed with count 3");
    assert_eq!(r.per_process, vec![30]);
    assert_eq!(r.latencies_ms.len(), 30);
    assert!(r.latencies_ms.windows(2).all(|w| w[0] <= w[1]), "sorted");
    assert!(r.wall_s > 0.0 && r.runs_per_s() > 0.0);
    // Each run writes its start, three steps and its end: the metrics of
    // the timed phase alone must account for at least that many events.
    assert!(
        r.events >= 30.0 * 5.0,
        "events written in the timed phase: {}",
        r.events
    );
    assert!(
        r.commits >= 1.0 && r.commits <= r.events,
        "group commits: {}",
        r.commits
    );
    assert!(r.braid_cpu_s > 0.0, "the server's CPU time is read");
    assert!(
        !bench_databases(&url).await.contains(&r.database),
        "the round's database {} is dropped",
        r.database
    );
    // Two processes on one database (scale-out): the runs alternate.
    let two = cluster::round(&args, &braid, 2, 0)
        .await
        .expect("a round of two processes");
    assert_eq!(two.completed, 30);
    assert_eq!(two.per_process, vec![15, 15], "round-robin");
    assert!(two.commits >= 2.0, "both processes commit: {}", two.commits);
    let table = cluster::markdown(
        &ClusterArgs {
            processes: vec![1, 2],
            ..args
        },
        &[r, two],
    );
    assert!(table.contains("| 1 | 1 |"), "{table}");
    assert!(table.contains("| 2 | 1 |"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_reads_the_servers_commit_rate() {
    let Some((_db, url)) = server().await else {
        return;
    };
    if braid_bench::pglimit::find_pgbench().is_none() {
        eprintln!("skipped: pgbench not found");
        return;
    }
    let l = braid_bench::pglimit::run(&url, &[1], 1).await.unwrap();
    assert_eq!(l.rows.len(), 2, "one client, then 100-row commits");
    assert!(l.commits(1).unwrap() > 0.0);
    assert!(l.rows[1].rows_per_s() > 0.0);
}
