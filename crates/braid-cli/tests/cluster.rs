//! Several `braid serve` processes on one PostgreSQL database (SPEC §7
//! *Scale-out*), as real processes over real HTTP, with the local
//! OpenAI-format provider of braid-testkit in the test process (it outlives
//! the servers and sees every call):
//!
//! - three processes share a mixed load (fan-outs writing artifacts, nested
//!   sub-workflows, LLM calls retried against a flaky provider), submitted
//!   round-robin; two are SIGKILLed one after the other with work in flight;
//!   the survivor adopts their runs within the lease and finishes every run
//!   exactly once with the output of an uninterrupted run. Meanwhile a
//!   process that does not own a run serves its GET, its cancel and its
//!   live WebSocket;
//! - split brain: the owner is SIGSTOPped past its lease (or briefly, while
//!   its lease ends in the database), the other process adopts its runs,
//!   and when the owner is SIGCONTed it drops them, its late commits refused
//!   (fencing); nothing is applied twice, and its `?wait=true` request is
//!   answered with the end the other process committed.
//! - a run with a budget (SPEC §5) adopted after its owner's SIGTERM keeps
//!   what it had spent: the adopting process does not send the call the
//!   budget no longer pays for.
//!
//! Each test creates its own database (`braid_store_postgres::testing`):
//! `scripts/pg.sh start` first, or set `BRAID_TEST_DATABASE_URL`. Without a
//! server the tests skip, except under `CI=true`, where they fail.
//!
//! CI runs 60 runs. The 300-run soak (numbers for BENCHMARKS.md):
//! `BRAID_CLUSTER_RUNS=300 cargo nextest run -p braid-cli --test cluster --no-capture three_processes`

mod cluster_support;
mod common;

use braid_store_postgres::testing::TestDb;
use braid_testkit::{MockLlm, Plan};
use cluster_support::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long after a SIGKILL (or SIGSTOP) every run of the process must have
/// another owner: the lease, plus time for a loaded 2-core machine to notice
/// and to replay the runs.
const ADOPTION_DEADLINE: Duration = Duration::from_millis(LEASE_MS + 8_000);

/// Counts the runs (children too) still running. Its `$1` is bound to ""
/// and never matches: [`Sql::wait_zero`] binds one parameter.
const RUNNING: &str = "SELECT count(*) FROM workflow_runs WHERE status = 'running' AND id <> $1";

/// Runs of the three-process test: `BRAID_CLUSTER_RUNS`, default 60.
fn run_count() -> u64 {
    match std::env::var("BRAID_CLUSTER_RUNS") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("BRAID_CLUSTER_RUNS={v}: not a number")),
        Err(_) => 60,
    }
}

// ---------------------------------------------------------------------------
// Three processes, two killed
// ---------------------------------------------------------------------------

/// The three kinds of run of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fan,
    Nested,
    Flaky,
}

/// One submitted run: its kind, input, id and the process that received it.
struct Submitted {
    kind: Kind,
    k: u64,
    id: String,
    process: usize,
}

/// The provider of the three-process test: answers every prompt as
/// [`answer`] says after a small delay, fails `Flaky K` first as
/// [`flaky_failure`] says, never answers `Hold K`. While the gate is closed
/// every successful answer waits for a permit ([`MockLlm::release`]), so
/// that the test decides how far the load has gone when it kills.
struct Provider {
    gate_closed: AtomicBool,
    calls: Mutex<HashMap<String, usize>>,
}

fn provider(p: Arc<Provider>) -> impl Fn(usize, &Value) -> Plan + Send + Sync {
    move |_, body| {
        let text = user_prompt(body);
        let Some(prompt) = parse_prompt(&text) else {
            return Plan::status(400);
        };
        let call = {
            let mut calls = p.calls.lock().unwrap();
            let n = calls.entry(text).or_default();
            *n += 1;
            *n
        };
        if let Prompt::Hold(_) = prompt {
            return Plan::never();
        }
        if let Prompt::Flaky(k) = prompt
            && let Some(failure) = flaky_failure(k, call)
        {
            return failure;
        }
        let plan = Plan::ok(&answer(prompt).to_string()).after(delay_ms(prompt));
        if p.gate_closed.load(Ordering::SeqCst) {
            plan.held()
        } else {
            plan
        }
    }
}

/// Saves every workflow of the load through `api`.
async fn save_workflows(api: &common::Api, llm_url: &str) {
    api.save(fan("cl_fan", FAN_BRANCHES, "Fan", llm_url)).await;
    for bundle in nested(llm_url) {
        api.save(bundle).await;
    }
    api.save(flaky(llm_url)).await;
    api.save(hold(llm_url)).await;
}

/// Submits `n` runs round-robin to the processes: run `i` goes to process
/// `i % 3` and is of kind `(i / 3) % 3`, so each process gets every kind.
async fn submit(nodes: &[Node], n: u64) -> Vec<Submitted> {
    let mut runs = Vec::new();
    for i in 0..n {
        let process = (i % nodes.len() as u64) as usize;
        let kind = [Kind::Fan, Kind::Nested, Kind::Flaky][((i / 3) % 3) as usize];
        let (workflow, input) = match kind {
            Kind::Fan => ("cl_fan", json!({ "k": i })),
            Kind::Nested => ("cl_outer", json!({ "x": i })),
            Kind::Flaky => ("cl_flaky", json!({ "k": i })),
        };
        let id = nodes[process].api.start_run(workflow, input).await;
        runs.push(Submitted {
            kind,
            k: i,
            id,
            process,
        });
    }
    runs
}

/// SIGKILLs `nodes[victim]` while it owns running runs; returns them and
/// how long the others took to adopt every one of them. With `cancel`
/// `(process, run)`, that run is cancelled through `nodes[process]` at once
/// after the kill, while its owner is dead: the request is durable and the
/// adopter applies it; its answer is returned.
async fn kill_and_await_adoption(
    sql: &Sql,
    nodes: &mut [Node],
    victim: usize,
    cancel_through: Option<(usize, &str)>,
) -> (Vec<String>, Duration, Option<(u16, Value)>) {
    let node = &mut nodes[victim];
    let owned = sql.running_owned_by(&node.id).await;
    assert!(
        !owned.is_empty(),
        "{} owns no running run when it is killed",
        node.name
    );
    node.braid.kill();
    let (name, id) = (node.name.clone(), node.id.clone());
    let nodes = &*nodes;
    let adopted = sql.until_zero(
        "SELECT count(*) FROM workflow_runs WHERE owner = $1 AND status = 'running'",
        &id,
        ADOPTION_DEADLINE,
        || {
            let all: Vec<&Node> = nodes.iter().collect();
            format!("runs of the killed {name} not adopted\n{}", logs(&all))
        },
    );
    let cancelled = async {
        match cancel_through {
            Some((process, run)) => Some(cancel(&nodes[process].api, run).await),
            None => None,
        }
    };
    let (took, cancelled) = tokio::join!(adopted, cancelled);
    println!(
        "{name} ({id}) SIGKILLed owning {} running runs; all adopted {took:?} later",
        owned.len()
    );
    (owned, took, cancelled)
}

/// POST `/api/runs/{run}/cancel` on `api` (bounded); the status and body.
async fn cancel(api: &common::Api, run: &str) -> (u16, Value) {
    let path = format!("/api/runs/{run}/cancel");
    let sent = api.post(&path, "application/json", "{}".into());
    tokio::time::timeout(Duration::from_secs(30), sent)
        .await
        .unwrap_or_else(|_| panic!("the cancel of {run} was not answered within 30 s"))
}

/// The three-process test, its load set by `BRAID_CLUSTER_RUNS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_two_killed_the_survivor_finishes_every_run_exactly_once() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let n = run_count();
    assert!(
        n >= 9,
        "BRAID_CLUSTER_RUNS={n}: at least 9 (every kind on every process)"
    );
    let t0 = Instant::now();
    let gate = Arc::new(Provider {
        gate_closed: AtomicBool::new(true),
        calls: Mutex::default(),
    });
    let llm = MockLlm::start(provider(gate.clone())).await;
    let mut nodes = vec![
        Node::start("P0", db.url()).await,
        Node::start("P1", db.url()).await,
        Node::start("P2", db.url()).await,
    ];
    let sql = Sql::connect(db.url()).await;
    save_workflows(&nodes[0].api, &llm.url).await;
    let runs = submit(&nodes, n).await;
    // Two runs that stay running until cancelled: one owned by the survivor,
    // one by the first process killed.
    let hold_p2 = nodes[2].api.start_run("cl_hold", json!({ "k": 0 })).await;
    let hold_p0 = nodes[0].api.start_run("cl_hold", json!({ "k": 1 })).await;
    println!("{n} runs submitted round-robin in {:?}", t0.elapsed());

    // The process that received a start request owns the run.
    for r in &runs {
        let (owner, epoch) = sql.owner(&r.id).await;
        assert_eq!(
            owner.as_deref(),
            Some(nodes[r.process].id.as_str()),
            "run {} was started on P{}",
            r.id,
            r.process
        );
        assert_eq!(epoch, 1, "run {}: epoch of a new run", r.id);
    }

    let non_owner = check_requests_to_non_owners(&nodes, &runs, &hold_p2).await;

    // Let part of the load through, then kill P0 with work in flight.
    let first = n as usize;
    llm.release(first);
    llm.until(|s| s.requests.lock().unwrap().len() - s.inflight.load(Ordering::SeqCst) >= first)
        .await;
    // A run tree has one owner: every child run is owned by its parent's.
    let split: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT c.id, c.owner, p.owner FROM workflow_runs c JOIN workflow_runs p ON p.id = c.parent_run_id
          WHERE c.owner IS DISTINCT FROM p.owner",
    )
    .fetch_all(&sql.0)
    .await
    .expect("child owners");
    assert!(
        split.is_empty(),
        "child runs owned apart from their parents (child, owner, parent's owner): {split:?}"
    );
    // A cancel sent, while the owner is dead, to a process that does not
    // own the run: durable, applied by the adopter, answered then.
    let (owned_p0, adopt_p0, cancelled) =
        kill_and_await_adoption(&sql, &mut nodes, 0, Some((2, &hold_p0))).await;
    assert!(
        owned_p0.iter().any(|id| *id != hold_p0),
        "P0 was killed with load in flight: {owned_p0:?}"
    );
    let (status, body) = cancelled.expect("the cancel's answer");
    assert_eq!(
        status, 200,
        "cancel of the dead P0's run through P2: {body}"
    );
    assert_eq!(body["status"], "cancelled", "{body:#}");
    let (owned_p1, adopt_p1, _) = kill_and_await_adoption(&sql, &mut nodes, 1, None).await;

    // Open the gate: the survivor finishes everything.
    gate.gate_closed.store(false, Ordering::SeqCst);
    llm.release(1 << 24);
    let opened = Instant::now();
    // A dead process's runs finish within lease_ms plus their own work
    // (design). Here the adoptions are done when the gate opens, and the work
    // left is what one process does with the rest of the load (about 2 s for
    // 60 runs in a debug build): the allowance is generous for a loaded
    // machine, yet well under the task lease (`executors.lease_ms`, 30 s by
    // default), which an adopted run must never wait for.
    let work = Duration::from_millis(LEASE_MS + 8_000 + 50 * n);
    if let Err(left) = sql.wait_zero(RUNNING, "", work).await {
        let leased = sql.leased_tasks().await;
        panic!(
            "{left} runs still running {work:?} after the gate opened, though every run of the \
             killed processes had been adopted; tasks under a lease (claimed by, tasks, most \
             deliveries, ms left): {leased:?}\n{}",
            logs(&[&nodes[2]])
        );
    }
    println!(
        "every run ended {:?} after the gate opened ({:?} in all)",
        opened.elapsed(),
        t0.elapsed()
    );
    let survivor = &nodes[2];
    check_finished_load(&sql, survivor, &runs, &[&hold_p0, &hold_p2]).await;
    non_owner.check(&sql).await;

    // Ownership moved: the killed processes' runs have later epochs.
    for id in owned_p0.iter().chain(&owned_p1) {
        let (_, epoch) = sql.owner(id).await;
        assert!(
            epoch >= 2,
            "run {id} of a killed process was adopted: epoch {epoch}"
        );
    }
    println!(
        "adoptions: {} (run, epoch) changes; P0's runs adopted in {adopt_p0:?}, P1's in {adopt_p1:?}",
        sql.adoptions().await.len()
    );
    let live = survivor.metric("braid_runs_live").await;
    assert_eq!(
        live, 0.0,
        "braid_runs_live on the survivor once every run ended"
    );
    let adopted = survivor.metric("braid_runs_adopted_total").await;
    assert!(
        adopted > 0.0,
        "braid_runs_adopted_total on the survivor: {adopted}"
    );
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let live = survivor.metric("braid_servers_live").await;
        if live == 1.0 {
            break;
        }
        assert!(
            Instant::now() < end,
            "braid_servers_live on the survivor is {live}, not 1, long after two processes died"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(llm);
}

/// Requests about runs sent to processes that do not own them, before any
/// kill: a GET, a cancel (of `hold`, owned by P2, sent to P1), and two live
/// WebSockets on P2, for a fan-out owned by P0 (killed later: the stream
/// outlives its owner) and a nested run owned by P1 (killed too). The
/// sockets are read to their end in background tasks; [`NonOwner::check`]
/// checks them once the load has ended.
async fn check_requests_to_non_owners(nodes: &[Node], runs: &[Submitted], hold: &str) -> NonOwner {
    let fan_p0 = runs
        .iter()
        .find(|r| r.kind == Kind::Fan && r.process == 0)
        .expect("a fan-out on P0");
    let nested_p1 = runs
        .iter()
        .find(|r| r.kind == Kind::Nested && r.process == 1)
        .expect("a nested run on P1");
    let body = nodes[2].api.get(&format!("/api/runs/{}", fan_p0.id)).await;
    assert_eq!(body["id"], fan_p0.id.as_str());
    // Its branches' answers are held: it cannot have ended.
    assert_eq!(
        body["status"], "running",
        "GET through P2 of P0's run: {body:#}"
    );
    assert_eq!(body["context"]["input"], json!({ "k": fan_p0.k }));

    let (status, body) = cancel(&nodes[1].api, hold).await;
    assert_eq!(status, 200, "cancel of P2's run through P1: {body}");
    assert_eq!(
        body["status"], "cancelled",
        "the cancel is answered once the owner applied it: {body:#}"
    );
    let deadline = Duration::from_secs(120);
    let sockets = [fan_p0.id.clone(), nested_p1.id.clone()]
        .into_iter()
        .map(|id| {
            let base = nodes[2].api.base.clone();
            tokio::spawn(async move {
                let read = read_live(&base, &id, deadline).await;
                (id, read)
            })
        })
        .collect();
    NonOwner { sockets }
}

/// The live sockets opened on a non-owner.
struct NonOwner {
    sockets: Vec<tokio::task::JoinHandle<(String, Live)>>,
}

impl NonOwner {
    /// Every socket received every event of its run once, in order (seqs
    /// 1..last_seq, no gap), then `end` with the run's status and last seq.
    async fn check(self, sql: &Sql) {
        for socket in self.sockets {
            let (id, read) = socket.await.expect("the socket's reader");
            let (seqs, end) =
                read.unwrap_or_else(|e| panic!("run {id}'s live stream on a non-owner: {e}"));
            let last: i64 = sqlx::query_scalar("SELECT max(seq) FROM events WHERE run_id = $1")
                .bind(&id)
                .fetch_one(&sql.0)
                .await
                .expect("last seq");
            let expected: Vec<i64> = (1..=last).collect();
            assert_eq!(seqs, expected, "run {id}: the live stream on a non-owner");
            assert_eq!(end["status"], "completed", "run {id}: {end}");
            assert_eq!(end["last_seq"], last, "run {id}: {end}");
            println!("live stream of {id} on a non-owner: {last} events, then {end}");
        }
    }
}

/// Every run of the load ended once as an uninterrupted run would have, the
/// held runs were cancelled, no run appeared, and the shared log holds its
/// invariants.
async fn check_finished_load(sql: &Sql, survivor: &Node, runs: &[Submitted], held: &[&str]) {
    let api = &survivor.api;
    let mut retries = 0;
    for r in runs {
        match r.kind {
            Kind::Fan => check_fan_run(api, &r.id, r.k, FAN_BRANCHES).await,
            Kind::Nested => check_nested_run(api, &r.id, r.k).await,
            Kind::Flaky => retries += check_flaky_run(api, &r.id, r.k).await,
        }
    }
    assert!(retries > 0, "the flaky provider's failures were retried");
    for id in held {
        let body = api.get(&format!("/api/runs/{id}")).await;
        assert_eq!(body["status"], "cancelled", "{body:#}");
    }
    let nested = runs.iter().filter(|r| r.kind == Kind::Nested).count() as i64;
    let total = sql.count("SELECT count(*) FROM workflow_runs").await;
    assert_eq!(
        total,
        runs.len() as i64 + 2 * nested + held.len() as i64,
        "no run appeared or vanished (the load, two children per nested run, the held runs)"
    );
    let completed = sql
        .count("SELECT count(*) FROM workflow_runs WHERE status = 'completed'")
        .await;
    assert_eq!(
        completed,
        total - held.len() as i64,
        "every run of the load completed"
    );
    sql.check_logs().await;
    println!("{} runs checked: {retries} retries applied", runs.len());
}

// ---------------------------------------------------------------------------
// Split brain
// ---------------------------------------------------------------------------

/// How the owner A loses its runs while its LLM calls are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    /// SIGSTOP for longer than the lease: B adopts once A's lease runs out.
    /// On SIGCONT, A either commits the answers first (refused: fenced) or
    /// its first heartbeat sees that it was not heard from for a lease and
    /// drops the runs before any commit: both are correct, and which comes
    /// first is up to its scheduler.
    StoppedPastLease,
    /// SIGSTOP for less than A's (long) lease, and A's lease ended in the
    /// database meanwhile (as when its heartbeats do not get through): B
    /// adopts, and A, which does not know, commits the answers on SIGCONT.
    /// These commits must be refused.
    LeaseEndedInDatabase,
}

/// Two processes; A owns three fan-outs whose LLM calls are in flight; A
/// is SIGSTOPped past its lease, the calls answer into its sockets, B
/// adopts the runs and calls again; A is SIGCONTed and drops the runs
/// (its late commits, if any, refused). Every run completes once with the
/// right output, and A's `?wait=true` request is answered with the end B
/// committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_owner_is_fenced_when_it_resumes_and_nothing_is_applied_twice() {
    split_brain(Split::StoppedPastLease).await;
}

/// The same when A's lease ends in the database while A is paused for
/// less than its own lease: A commits late, and every such commit is
/// refused (`braid_commits_fenced_total` ≥ 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_whose_lease_ended_unknown_to_it_has_its_late_commits_fenced() {
    split_brain(Split::LeaseEndedInDatabase).await;
}

async fn split_brain(split: Split) {
    let Some(db) = TestDb::create().await else {
        return;
    };
    const BRANCHES: u64 = 3;
    // The first call of each prompt waits for the test; later calls (B's,
    // after the adoption) answer at once.
    let calls: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let llm = {
        let calls = calls.clone();
        MockLlm::start(move |_, body| {
            let text = user_prompt(body);
            let Some(prompt @ Prompt::Branch(..)) = parse_prompt(&text) else {
                return Plan::status(400);
            };
            let mut calls = calls.lock().unwrap();
            let n = calls.entry(text).or_default();
            *n += 1;
            let plan = Plan::ok(&answer(prompt).to_string());
            if *n == 1 { plan.held() } else { plan }
        })
        .await
    };
    // A long lease when A must not notice its own pause.
    let lease_ms = match split {
        Split::StoppedPastLease => LEASE_MS,
        Split::LeaseEndedInDatabase => 20 * LEASE_MS,
    };
    let a = Node::start_with_lease("A", db.url(), lease_ms).await;
    let b = Node::start_with_lease("B", db.url(), lease_ms).await;
    let sql = Sql::connect(db.url()).await;
    a.api
        .save(fan("cl_split", BRANCHES, "Split", &llm.url))
        .await;
    let waiting = {
        let (http, base) = (a.api.http.clone(), a.api.base.clone());
        tokio::spawn(async move {
            let resp = http
                .post(format!(
                    "{base}/api/workflow-defs/cl_split/runs?wait=true&timeout_s=120"
                ))
                .json(&json!({ "input": { "k": 0 } }))
                .send()
                .await
                .expect("start with ?wait=true");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.expect("a JSON body"))
        })
    };
    for k in 1..3 {
        a.api.start_run("cl_split", json!({ "k": k })).await;
    }
    let calls_in_flight = (3 * BRANCHES) as usize;
    llm.until(|s| s.inflight.load(Ordering::SeqCst) == calls_in_flight)
        .await;
    let mut ks = Vec::new();
    for run in a.api.all("/api/runs?workflow=cl_split").await {
        let id = run["id"].as_str().expect("id").to_string();
        let body = a.api.get(&format!("/api/runs/{id}")).await;
        ks.push((
            id.clone(),
            body["context"]["input"]["k"].as_u64().expect("k"),
        ));
        assert_eq!(sql.owner(&id).await, (Some(a.id.clone()), 1), "run {id}");
    }
    assert_eq!(ks.len(), 3, "{ks:?}");

    // A stops; its calls answer into its sockets while it cannot read them.
    a.braid.signal("STOP");
    let stopped = Instant::now();
    llm.release(calls_in_flight);
    llm.until(|s| s.inflight.load(Ordering::SeqCst) == 0).await;
    if split == Split::LeaseEndedInDatabase {
        sqlx::query("UPDATE servers SET lease_until = 0 WHERE id = $1")
            .bind(&a.id)
            .execute(&sql.0)
            .await
            .expect("end A's lease");
    }
    let took = sql
        .until_zero(
            "SELECT count(*) FROM workflow_runs WHERE owner = $1 AND status = 'running'",
            &a.id,
            ADOPTION_DEADLINE,
            || format!("B never adopted the stopped A's runs\n{}", logs(&[&a, &b])),
        )
        .await;
    for (id, _) in &ks {
        let (owner, epoch) = sql.owner(id).await;
        if sql_status(&sql, id).await == "running" {
            assert_eq!(
                owner.as_deref(),
                Some(b.id.as_str()),
                "run {id} adopted by B"
            );
        }
        assert!(
            epoch >= 2,
            "run {id}: the adoption raised the epoch: {epoch}"
        );
    }
    println!("A SIGSTOPped; B adopted its runs {took:?} later");
    a.braid.signal("CONT");
    let paused = stopped.elapsed();
    println!("A SIGCONTed {paused:?} after it stopped");
    if split == Split::LeaseEndedInDatabase {
        assert!(
            paused < Duration::from_millis(lease_ms),
            "A was paused for {paused:?}, its lease is {lease_ms} ms: it may have noticed"
        );
    }

    sql.until_zero(RUNNING, "", Duration::from_secs(30), || {
        format!("runs never ended after the split\n{}", logs(&[&a, &b]))
    })
    .await;
    check_a_dropped_its_runs(split, &a, &b, &ks).await;

    // A's ?wait=true request, sent to the owner that then lost the run.
    let (status, body) = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("A answered its ?wait=true request after the run ended")
        .expect("the waiting request");
    assert_eq!(
        status, 201,
        "?wait=true answered with the ended run: {body:#}"
    );
    assert_eq!(body["status"], "completed", "{body:#}");

    let asked = calls.lock().unwrap().clone();
    println!("calls per prompt (A's first, B's after the adoption): {asked:?}");
    for (id, k) in &ks {
        check_fan_run(&b.api, id, *k, BRANCHES).await;
        // A dropped the run: B committed its end.
        assert_eq!(
            sql.owner(id).await.0.as_deref(),
            Some(b.id.as_str()),
            "run {id}"
        );
        // Every result applied once, and by one owner per epoch.
        let owners: Vec<(i64, String)> =
            sqlx::query_as("SELECT epoch, owner FROM run_owners WHERE run_id = $1 ORDER BY epoch")
                .bind(id)
                .fetch_all(&sql.0)
                .await
                .expect("run_owners");
        assert_eq!(
            owners.first(),
            Some(&(1, a.id.clone())),
            "run {id}: A owned epoch 1: {owners:?}"
        );
        assert!(
            owners.iter().any(|(e, o)| *e >= 2 && *o == b.id),
            "run {id}: B owned a later epoch: {owners:?}"
        );
    }
    sql.check_logs().await;
    assert_eq!(
        body["context"]["output"]["pieces"].as_array().map(Vec::len),
        Some(BRANCHES as usize),
        "{body:#}"
    );
    // A dropped the runs: none is live there any more (docs/observability.md:
    // "runs live in this process"), while B ended them all.
    assert_eq!(b.metric("braid_runs_live").await, 0.0, "B: braid_runs_live");
    let live = a.metric("braid_runs_live").await;
    assert_eq!(
        live,
        0.0,
        "A: braid_runs_live after it dropped the {} runs it lost\n{}",
        ks.len(),
        logs(&[&a])
    );
}

/// A let go of the runs it lost: its late commits were refused (its
/// metric counts them), or, after a pause past its lease, its first
/// heartbeat dropped every run before any commit (its log says so).
async fn check_a_dropped_its_runs(split: Split, a: &Node, b: &Node, runs: &[(String, u64)]) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let fenced = a
            .try_metric("braid_commits_fenced_total")
            .await
            .unwrap_or(0.0);
        let log = a.braid.log();
        let dropped_at_heartbeat = runs.iter().all(|(id, _)| {
            log.lines()
                .any(|l| l.contains(id.as_str()) && l.contains("not heard from"))
        });
        if fenced >= 1.0 || (split == Split::StoppedPastLease && dropped_at_heartbeat) {
            println!(
                "{split:?}: A's braid_commits_fenced_total {fenced}; every run dropped at its \
                 first heartbeat: {dropped_at_heartbeat}"
            );
            return;
        }
        assert!(
            Instant::now() < end,
            "{split:?}: A resumed after losing its runs, yet no commit of it was fenced \
             (braid_commits_fenced_total {fenced}) and it did not drop them all\n{}",
            logs(&[a, b])
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sql_status(sql: &Sql, run: &str) -> String {
    sqlx::query_scalar("SELECT status FROM workflow_runs WHERE id = $1")
        .bind(run)
        .fetch_one(&sql.0)
        .await
        .expect("status")
}

/// SIGTERM hands the process's runs over at once: with a lease of 30 s, the
/// other process adopts them within a couple of heartbeats of the exit
/// (`servers.stopped_at`), and they finish with the right output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_the_runs_up_at_once_and_another_process_finishes_them() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    const BRANCHES: u64 = 3;
    // Every call is held until the test releases it (A's are never answered).
    let llm = MockLlm::start(move |_, body| {
        let text = user_prompt(body);
        match parse_prompt(&text) {
            Some(prompt @ Prompt::Branch(..)) => Plan::ok(&answer(prompt).to_string()).held(),
            _ => Plan::status(400),
        }
    })
    .await;
    let lease_ms = 20 * LEASE_MS;
    let mut a = Node::start_with_lease("A", db.url(), lease_ms).await;
    let b = Node::start_with_lease("B", db.url(), lease_ms).await;
    let sql = Sql::connect(db.url()).await;
    a.api
        .save(fan("cl_term", BRANCHES, "Split", &llm.url))
        .await;
    let runs: Vec<String> = {
        let mut runs = Vec::new();
        for k in 0..2 {
            runs.push(a.api.start_run("cl_term", json!({ "k": k })).await);
        }
        runs
    };
    llm.until(|s| s.inflight.load(Ordering::SeqCst) == (2 * BRANCHES) as usize)
        .await;

    let (status, _) = a.braid.terminate(Duration::from_secs(10)).await;
    assert!(status.success(), "A exits cleanly on SIGTERM: {status:?}");
    let took = sql
        .until_zero(
            "SELECT count(*) FROM workflow_runs WHERE owner = $1 AND status = 'running'",
            &a.id,
            Duration::from_millis(lease_ms / 4),
            || {
                format!(
                    "B did not adopt A's runs before A's lease would end\n{}",
                    logs(&[&b])
                )
            },
        )
        .await;
    println!("A SIGTERMed; B adopted its runs {took:?} after A exited");
    // B runs the calls A had in flight again; answer them all.
    llm.release(1_000);
    for (k, run) in runs.iter().enumerate() {
        b.api
            .until_event(run, "workflow_completed", Duration::from_secs(20))
            .await;
        check_fan_run(&b.api, run, k as u64, BRANCHES).await;
        assert_eq!(sql.owner(run).await, (Some(b.id.clone()), 2), "run {run}");
    }
}

/// A run with a budget keeps it across adoption: the process that adopts a
/// run tree starts from what the store recorded, so a call the budget no
/// longer pays for is not sent, whichever process makes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_run_keeps_what_it_had_spent_against_its_budget() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    // 1,000 tokens at 0.25 USD per 1k: 0.25 USD a call. The second call
    // (c2 on A) is never answered; B makes it again after adopting the run.
    let paid = || {
        let mut plan = Plan::ok("ok");
        plan.body["usage"] =
            json!({ "prompt_tokens": 1000, "completion_tokens": 0, "total_tokens": 1000 });
        plan
    };
    let llm = MockLlm::start(move |n, _| if n == 1 { paid().held() } else { paid() }).await;
    let lease_ms = 20 * LEASE_MS;
    let mut a = Node::start_with_lease("A", db.url(), lease_ms).await;
    let b = Node::start_with_lease("B", db.url(), lease_ms).await;
    let sql = Sql::connect(db.url()).await;
    let calls = ["c1", "c2", "c3", "c4"];
    let mut nodes = String::new();
    let mut transitions = String::new();
    for (i, c) in calls.iter().enumerate() {
        nodes.push_str(&format!(
            "  - {{ ref: {c}, action: {{ kind: llm_call, prompt: p, model: m }} }}\n"
        ));
        if let Some(next) = calls.get(i + 1) {
            transitions.push_str(&format!("  - {{ from: {c}, to: {next} }}\n"));
        }
        transitions.push_str(&format!("  - {{ from: {c}, to: stop, on: failure }}\n"));
    }
    a.api
        .save(format!(
            r#"
name: cl_budget
initial_node: c1
limits: {{ max_cost_usd: 0.5 }}
nodes:
{nodes}  - {{ ref: stop, action: {{ kind: update_context, updates: [ {{ path: output.node, expr: "state._last_error.node" }}, {{ path: output.why, expr: "state._last_error.message" }} ] }} }}
transitions:
{transitions}prompt_specs:
  - {{ ref: p, template: "Next" }}
model_profiles:
  - {{ ref: m, provider: openai_compatible, model: gpt-test, base_url: "{}", cost_per_1k_input_tokens: 0.25, max_concurrency: 1 }}
"#,
            llm.url
        ))
        .await;
    let run = a.api.start_run("cl_budget", json!({})).await;
    llm.until(|s| s.requests.lock().unwrap().len() == 2).await;

    let (status, _) = a.braid.terminate(Duration::from_secs(10)).await;
    assert!(status.success(), "A exits cleanly on SIGTERM: {status:?}");
    b.api
        .until_event(&run, "workflow_completed", Duration::from_secs(30))
        .await;
    assert_eq!(sql.owner(&run).await, (Some(b.id.clone()), 2));
    // c1 on A, c2 on A (cut off), c2 again on B; c3 finds 0.5 USD spent.
    assert_eq!(llm.requests().len(), 3, "{}", logs(&[&b]));
    let body = b.api.get(&format!("/api/runs/{run}")).await;
    let output = &body["context"]["output"];
    assert_eq!(output["node"], "c3", "{body}");
    let why = output["why"].as_str().unwrap();
    assert!(
        why.contains(&format!("limits.max_cost_usd of run {run}")),
        "{why}"
    );
    assert!(why.contains("0.5 USD spent of 0.5 USD"), "{why}");
    assert_eq!(body["usage"]["cost_usd"], json!(0.5));
}
