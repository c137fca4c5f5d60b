//! What the run view reads, over HTTP: `/nodes` and `/sibling-sets` agree
//! with the event log, nested fan-outs name their parent set, and the event
//! and token filters return exactly the matching items.

use crate::common::Server;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const BRANCHES: u64 = 300;

/// Which items of an unfiltered list a filter must keep.
type Keep<'a> = &'a dyn Fn(&Value) -> bool;

/// A fan-out of `BRANCHES` scripted judges: branches `i % 10 == 3` fail
/// their first attempt (then succeed), branches `i % 25 == 7` fail every
/// attempt and are routed to the join on failure. `unused` is never visited.
fn review() -> String {
    let mut failures = Vec::new();
    for i in 0..BRANCHES {
        if i % 10 == 3 {
            failures.push(format!("{{ attempt: 1, branch: {i}, code: UNAVAILABLE }}"));
        }
        if i % 25 == 7 {
            failures.push(format!("{{ branch: {i}, code: UNAVAILABLE }}"));
        }
    }
    format!(
        r#"
name: review
initial_node: start
nodes:
  - ref: start
    action: {{ kind: update_context, updates: [ {{ path: state.topic, expr: "'tabs'" }} ] }}
  - ref: judge
    action: judge_llm
    output_mapping: {{ state.vote: "result.vote" }}
  - ref: tally
    fan_in: all
    joins: start
    merge: {{ source: vote, target: state.votes, strategy: append }}
    action: {{ kind: update_context, updates: [ {{ path: output.votes, expr: "state.votes.size()" }} ] }}
  - ref: unused
    action: {{ kind: update_context, updates: [] }}
transitions:
  - {{ from: start, to: judge, spawn_count: {BRANCHES} }}
  - {{ from: judge, to: tally }}
  - {{ from: judge, to: tally, on: failure }}
  - {{ from: tally, to: unused, on: failure }}
actions:
  - ref: judge_llm
    kind: llm_call
    prompt: vote
    model: judge
    execution: {{ retry_policy: {{ max_attempts: 2, backoff: none }} }}
prompt_specs:
  - ref: vote
    template: "Vote A or B on {{{{state.topic}}}}."
    produces: {{ type: object, required: [vote], properties: {{ vote: {{ type: string }} }} }}
model_profiles:
  - ref: judge
    provider: scripted
    model: judge-v1
    cost_per_1k_input_tokens: 0.5
    cost_per_1k_output_tokens: 1.0
    script:
      responses: [ {{ vote: A }} ]
      failures: [ {} ]
      usage: {{ input_tokens: 10, output_tokens: 2 }}
"#,
        failures.join(", ")
    )
}

/// Three outer branches, each fanning out into two inner ones.
const NESTED: &str = r#"
name: nested
initial_node: root
nodes:
  - ref: root
    action: { kind: update_context, updates: [] }
  - ref: outer
    action: { kind: update_context, updates: [] }
  - ref: leaf
    action: { kind: update_context, updates: [ { path: state.x, expr: "_branch.index" } ] }
  - ref: inner_join
    fan_in: all
    joins: outer
    merge: { source: x, target: state.xs, strategy: collect }
    action: { kind: update_context, updates: [] }
  - ref: outer_join
    fan_in: all
    joins: root
    merge: { source: xs, target: state.all, strategy: collect }
    action: { kind: update_context, updates: [ { path: output.all, expr: "state.all" } ] }
transitions:
  - { from: root, to: outer, spawn_count: 3 }
  - { from: outer, to: leaf, spawn_count: 2 }
  - { from: leaf, to: inner_join }
  - { from: inner_join, to: outer_join }
"#;

/// A wide pure fan-out: enough events for a 10,000-event page.
const WIDE: &str = r#"
name: wide
initial_node: start
nodes:
  - ref: start
    action: { kind: update_context, updates: [] }
  - ref: leaf
    action: { kind: update_context, updates: [ { path: state.i, expr: "_branch.index" } ] }
  - ref: join
    fan_in: all
    joins: start
    action: { kind: update_context, updates: [] }
transitions:
  - { from: start, to: leaf, spawn_count: 2000 }
  - { from: leaf, to: join }
"#;

async fn run(server: &Server, bundle: &str, name: &str) -> Value {
    let saved = server
        .post_raw("/api/workflow-defs", "application/yaml", bundle.to_string())
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    let run = server
        .post(
            &format!("/api/workflow-defs/{name}/runs?wait=true"),
            &json!({}),
        )
        .await;
    assert_eq!(run.status, 201, "{}", run.text);
    assert_eq!(run.body["status"], "completed", "{}", run.text);
    run.body
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

/// Sums a usage field over the payloads of a node's outcome events.
fn spent(events: &[Value], node: &str, field: &str) -> f64 {
    events
        .iter()
        // The outcome events' usage: `llm_request` repeats each attempt's.
        .filter(|e| e["node"] == node && e["kind"] != "llm_request")
        .filter_map(|e| e["payload"]["usage"][field].as_f64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_and_sibling_sets_agree_with_the_events() {
    let server = Server::start().await;
    let body = run(&server, &review(), "review").await;
    let id = body["id"].as_str().unwrap();
    let events = server
        .all_pages(&format!("/api/runs/{id}/events"), 10_000)
        .await;
    let count = |kind: &str, node: &str| {
        events
            .iter()
            .filter(|e| e["kind"] == kind && e["node"] == node)
            .count() as u64
    };

    let nodes = server.get(&format!("/api/runs/{id}/nodes")).await;
    assert_eq!(nodes.status, 200, "{}", nodes.text);
    let items = nodes.body["items"].as_array().unwrap();
    let refs: Vec<&str> = items.iter().map(|n| n["node"].as_str().unwrap()).collect();
    assert_eq!(
        refs,
        ["start", "judge", "tally", "unused"],
        "the graph's order"
    );
    let node = |r: &str| items.iter().find(|n| n["node"] == r).unwrap();
    let visits = |r: &str| -> BTreeMap<String, u64> {
        serde_json::from_value(node(r)["visits"].clone()).unwrap()
    };

    let judge = node("judge");
    let spawned = events
        .iter()
        .filter(|e| e["kind"] == "token_spawned")
        .count() as u64;
    assert_eq!(spawned, BRANCHES);
    assert_eq!(visits("judge").values().sum::<u64>(), spawned);
    assert_eq!(
        visits("judge")["completed"],
        count("node_completed", "judge")
    );
    assert_eq!(visits("judge")["failed"], count("node_failed", "judge"));
    assert_eq!(judge["failures"], count("node_failed", "judge"));
    assert_eq!(judge["failures"], 12, "branches 7, 32, … 282");
    assert_eq!(judge["retries"], count("node_retrying", "judge"));
    assert_eq!(judge["retries"], 30 + 12);
    assert_eq!(judge["attempts"], count("node_started", "judge"));
    assert_eq!(judge["attempts"], BRANCHES + 42);
    let usage = &judge["usage"];
    assert_eq!(
        usage["llm_calls"],
        BRANCHES + 42,
        "every attempt sent a request"
    );
    assert_eq!(
        usage["input_tokens"].as_f64().unwrap(),
        spent(&events, "judge", "input_tokens")
    );
    assert_eq!(
        usage["output_tokens"].as_f64().unwrap(),
        spent(&events, "judge", "output_tokens")
    );
    let cost = usage["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - spent(&events, "judge", "cost_usd")).abs() < 1e-9,
        "{cost}"
    );
    let d = &judge["duration_ms"];
    let (sum, median, max) = (
        d["sum"].as_u64().unwrap(),
        d["median"].as_f64().unwrap(),
        d["max"].as_u64().unwrap(),
    );
    assert!(median <= max as f64 && max <= sum, "{d}");

    assert_eq!(visits("start")["completed"], 1);
    assert_eq!(node("start")["attempts"], 1);
    assert_eq!(visits("tally")["merged"], count("token_merged", "tally"));
    assert_eq!(visits("tally")["merged"], BRANCHES);
    assert_eq!(visits("tally")["completed"], 1, "the continuation");
    let unused = node("unused");
    assert!(visits("unused").values().all(|n| *n == 0), "{unused}");
    assert_eq!(visits("unused").len(), 9, "every token status is listed");
    assert_eq!(unused["attempts"], 0);
    assert_eq!(
        unused["duration_ms"],
        json!({ "sum": 0, "median": null, "max": null })
    );
    assert_eq!(unused["usage"]["llm_calls"], 0);
    assert_eq!(
        body["usage"]["llm_calls"], judge["usage"]["llm_calls"],
        "the run's usage is its nodes'"
    );

    // 300 branches are one line.
    let sets = server.get(&format!("/api/runs/{id}/sibling-sets")).await;
    assert_eq!(sets.status, 200, "{}", sets.text);
    let fired = events
        .iter()
        .find(|e| e["kind"] == "fan_in_completed")
        .unwrap();
    let set = &sets.body["items"][0];
    assert_eq!(sets.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(sets.body["next_cursor"], Value::Null);
    assert_eq!(set["id"], fired["payload"]["sibling_set"]);
    assert_eq!(set["fan_out_node"], "start");
    assert_eq!(set["origin_token_id"], fired["payload"]["origin_token"]);
    assert_eq!(set["join_node"], "tally");
    assert_eq!(set["total"], BRANCHES);
    assert_eq!(set["fired"], true);
    assert_eq!(set["parent_sibling_set"], Value::Null);
    assert_eq!(set["counts"]["merged"], BRANCHES, "{set}");
    let counted: u64 = set["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(counted, BRANCHES, "each branch counts once");

    // The event filters return exactly the matching events.
    let filtered = |query: &str, keep: Keep| {
        let all: Vec<Value> = events.iter().filter(|e| keep(e)).cloned().collect();
        let query = query.to_string();
        let server = &server;
        async move {
            let got = server
                .all_pages(&format!("/api/runs/{id}/events?{query}"), 37)
                .await;
            assert!(!all.is_empty(), "{query} matches something");
            assert_eq!(seqs(&got), seqs(&all), "{query}");
            assert_eq!(got, all, "{query}");
        }
    };
    filtered("kind=node_retrying", &|e| e["kind"] == "node_retrying").await;
    filtered("kind=node_failed,node_retrying&node=judge", &|e| {
        (e["kind"] == "node_failed" || e["kind"] == "node_retrying") && e["node"] == "judge"
    })
    .await;
    let failure = [
        "node_failed",
        "node_retrying",
        "workflow_failed",
        "subworkflow_failed",
    ];
    filtered("failed=true", &|e| {
        failure.contains(&e["kind"].as_str().unwrap())
    })
    .await;
    filtered("node=tally", &|e| e["node"] == "tally").await;
    filtered("kind=token_spawned&failed=false", &|e| {
        e["kind"] == "token_spawned"
    })
    .await;

    // The token filters too.
    let tokens = server
        .all_pages(&format!("/api/runs/{id}/tokens"), 1000)
        .await;
    let cases: [(&str, Keep); 3] = [
        ("node=judge&status=failed", &|t| {
            t["node"] == "judge" && t["status"] == "failed"
        }),
        ("sibling_set=ss_1", &|t| t["sibling_set"] == "ss_1"),
        ("status=merged&node=tally", &|t| {
            t["status"] == "merged" && t["node"] == "tally"
        }),
    ];
    for (query, keep) in cases {
        let want: Vec<Value> = tokens.iter().filter(|t| keep(t)).cloned().collect();
        let got = server
            .all_pages(&format!("/api/runs/{id}/tokens?{query}"), 64)
            .await;
        assert!(!want.is_empty(), "{query}");
        assert_eq!(got, want, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_sets_name_their_parent_and_event_pages_reach_ten_thousand() {
    let server = Server::start().await;
    let body = run(&server, NESTED, "nested").await;
    assert_eq!(
        body["context"]["output"]["all"],
        json!([[0, 1], [0, 1], [0, 1]])
    );
    let id = body["id"].as_str().unwrap();
    let sets = server
        .all_pages(&format!("/api/runs/{id}/sibling-sets"), 2)
        .await;
    assert_eq!(sets.len(), 4, "one outer set, three inner ones");
    let outer = &sets[0];
    assert_eq!(outer["fan_out_node"], "root");
    assert_eq!(outer["join_node"], "outer_join");
    assert_eq!(outer["parent_sibling_set"], Value::Null);
    assert_eq!(
        (outer["total"].clone(), outer["fired"].clone()),
        (json!(3), json!(true))
    );
    assert_eq!(outer["counts"]["merged"], 3);
    let outer_id = outer["id"].as_str().unwrap();
    let origins: BTreeSet<&str> = sets[1..]
        .iter()
        .map(|s| {
            assert_eq!(s["fan_out_node"], "outer");
            assert_eq!(s["join_node"], "inner_join");
            assert_eq!(s["parent_sibling_set"], outer_id, "{s}");
            assert_eq!(s["total"], 2);
            assert_eq!(s["fired"], true);
            assert_eq!(s["counts"]["merged"], 2);
            s["origin_token_id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(origins.len(), 3, "one inner set per outer branch");
    let inner = server
        .get(&format!("/api/runs/{id}/sibling-sets?parent={outer_id}"))
        .await;
    assert_eq!(inner.body["items"].as_array().unwrap()[..], sets[1..]);
    let roots = server
        .get(&format!("/api/runs/{id}/sibling-sets?parent=root"))
        .await;
    assert_eq!(roots.body["items"], json!([outer]));
    let nodes = server.get(&format!("/api/runs/{id}/nodes")).await;
    let leaf = &nodes.body["items"][2];
    assert_eq!(
        (leaf["node"].clone(), leaf["visits"]["completed"].clone()),
        (json!("leaf"), json!(6))
    );

    let wide = run(&server, WIDE, "wide").await;
    let wide_id = wide["id"].as_str().unwrap();
    assert!(
        wide["last_seq"].as_i64().unwrap() > 10_000,
        "{}",
        wide["last_seq"]
    );
    for limit in ["10000", "50000"] {
        let page = server
            .get(&format!("/api/runs/{wide_id}/events?limit={limit}"))
            .await;
        assert_eq!(page.status, 200, "{}", page.message());
        let items = page.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 10_000, "limit={limit} is clamped to 10,000");
        assert_eq!(page.body["next_cursor"], "10000");
        assert_eq!(items[9_999]["seq"], 10_000);
    }
    let tokens = server
        .get(&format!("/api/runs/{wide_id}/tokens?limit=10000"))
        .await;
    assert_eq!(
        tokens.body["items"].as_array().unwrap().len(),
        1000,
        "other lists stay at 1,000"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_and_unknown_runs_are_precise_errors() {
    let server = Server::start().await;
    let body = run(&server, NESTED, "nested").await;
    let id = body["id"].as_str().unwrap();
    let bad = [
        ("events?kind=node_started,bogus", "`kind`"),
        ("events?failed=maybe", "`failed`"),
        ("events?node=nope", "`node`"),
        ("events?limit=many", "`limit`"),
        ("tokens?status=done", "`status`"),
        ("tokens?node=nope", "`node`"),
        ("tokens?sibling_set=set_1", "`sibling_set`"),
        ("sibling-sets?parent=top", "`parent`"),
        ("sibling-sets?cursor=zzz", "`cursor`"),
        ("events?colour=red", "colour"),
    ];
    for (path, named) in bad {
        let answer = server.get(&format!("/api/runs/{id}/{path}")).await;
        answer.error(400, "MALFORMED_BODY");
        assert!(
            answer.message().contains(named),
            "{path}: {}",
            answer.message()
        );
    }
    let kind = server
        .get(&format!("/api/runs/{id}/events?kind=bogus"))
        .await;
    for listed in ["node_started", "fan_in_completed", "llm_request"] {
        assert!(kind.message().contains(listed), "{}", kind.message());
    }
    let status = server
        .get(&format!("/api/runs/{id}/tokens?status=done"))
        .await;
    assert!(
        status.message().contains("waiting_join"),
        "{}",
        status.message()
    );
    let node = server
        .get(&format!("/api/runs/{id}/events?node=nope"))
        .await;
    assert!(node.message().contains("outer_join"), "{}", node.message());

    for path in [
        "nodes",
        "sibling-sets",
        "events?kind=node_started",
        "tokens?status=failed",
    ] {
        let answer = server.get(&format!("/api/runs/run_nope/{path}")).await;
        answer.error(404, "NOT_FOUND");
        assert!(
            answer.message().contains("run_nope"),
            "{}",
            answer.message()
        );
    }
}
