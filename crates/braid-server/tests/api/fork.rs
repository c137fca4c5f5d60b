//! `POST /api/runs/{id}/fork` and `GET /api/runs/{a}/compare/{b}`: a fork
//! at the summary with a changed prompt pays for one call, compare shows
//! exactly that visit unequal, and bad requests name their field.

use crate::common::Server;
use braid_testkit::{MockLlm, answer_by_prompt, research_pipeline};
use serde_json::{Value, json};
use std::time::Duration;

async fn provider() -> MockLlm {
    MockLlm::start(|_, body| answer_by_prompt(body)).await
}

/// Saves the pipeline and runs it to its end; returns the run id.
async fn source_run(s: &Server, url: &str) -> String {
    let saved = s
        .post_raw(
            "/api/workflow-defs",
            "application/yaml",
            research_pipeline(url),
        )
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    let run = s
        .post(
            "/api/workflow-defs/research/runs?wait=true",
            &json!({ "input": { "topic": "tides" } }),
        )
        .await;
    assert_eq!(run.status, 201, "{}", run.text);
    assert_eq!(run.body["status"], "completed", "{}", run.text);
    run.body["id"].as_str().unwrap().to_string()
}

async fn wait(s: &Server, id: &str) -> Value {
    s.engine.wait(id, Duration::from_secs(30)).await.unwrap();
    let run = s.get(&format!("/api/runs/{id}")).await;
    assert_eq!(run.body["status"], "completed", "{}", run.text);
    run.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_at_the_summary_then_compare_shows_only_the_summary_changed() {
    let llm = provider().await;
    let s = Server::start().await;
    let source = source_run(&s, &llm.url).await;
    assert_eq!(llm.requests().len(), 7);

    let forked = s
        .post(
            &format!("/api/runs/{source}/fork"),
            &json!({
                "from": { "node": "summary" },
                "changes": { "prompt_specs": [ { "ref": "summary_p", "template": "Briefly summarize {{state.sections}}" } ] }
            }),
        )
        .await;
    assert_eq!(forked.status, 201, "{}", forked.text);
    assert_eq!(forked.body["version"], 2);
    let fork = forked.body["run_id"].as_str().unwrap().to_string();
    let run = wait(&s, &fork).await;
    assert_eq!(
        llm.requests().len(),
        8,
        "the provider sees exactly one new request"
    );
    assert_eq!(run["forked_from"]["run_id"], json!(source));
    assert!(run["forked_from"]["seq"].as_i64().unwrap() > 1);
    assert_eq!(run["workflow"]["version"], 2);
    assert_eq!(run["usage"]["llm_calls"], 1);
    let listed = s.get("/api/runs?workflow=research").await;
    let item = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == json!(fork))
        .expect("the fork is listed");
    assert_eq!(item["forked_from"], run["forked_from"]);
    // The experiment is not the latest version.
    let defs = s.get("/api/workflow-defs").await;
    assert_eq!(defs.body["items"][0]["latest_version"], 1, "{}", defs.text);
    let v2 = s.get("/api/workflow-defs/research?version=2").await;
    assert_eq!(v2.headers["x-braid-experiment"], "true");
    let latest = s.get("/api/workflow-defs/research").await;
    assert_eq!(latest.headers["x-braid-version"], "1");
    assert_eq!(latest.headers["x-braid-experiment"], "false");

    let cmp = s.get(&format!("/api/runs/{source}/compare/{fork}")).await;
    assert_eq!(cmp.status, 200, "{}", cmp.text);
    let visits = cmp.body["visits"].as_array().unwrap();
    // outline, five sections, five arrivals at the join and its
    // continuation, the summary.
    assert_eq!(visits.len(), 13, "{}", cmp.text);
    let unequal: Vec<&Value> = visits.iter().filter(|v| v["equal"] == false).collect();
    assert_eq!(unequal.len(), 1, "{}", cmp.text);
    assert_eq!(unequal[0]["node"], "summary");
    assert_ne!(unequal[0]["a"]["output"], unequal[0]["b"]["output"]);
    assert!(unequal[0]["a"]["usage"]["cost_usd"].as_f64().unwrap() > 0.0);
    assert!(unequal[0]["b"]["usage"]["cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(
        cmp.body["first_difference"],
        json!({ "node": "summary", "branch": [], "occurrence": 0 })
    );
    let sections: Vec<&Value> = visits.iter().filter(|v| v["node"] == "section").collect();
    let branches: Vec<Value> = sections.iter().map(|v| v["branch"].clone()).collect();
    assert_eq!(branches, (0..5).map(|i| json!([i])).collect::<Vec<_>>());
    for v in &sections {
        assert_eq!(v["a"]["output"], v["b"]["output"]);
        assert_eq!(
            v["b"]["usage"]["cost_usd"], 0.0,
            "copied visits cost the fork nothing"
        );
    }
    let totals = &cmp.body["totals"];
    assert_eq!(totals["a"]["llm_calls"], 7);
    assert_eq!(totals["b"]["llm_calls"], 1);
    assert!(totals["a"]["cost_usd"].as_f64().unwrap() > totals["b"]["cost_usd"].as_f64().unwrap());
    // A run compared with itself is equal throughout.
    let same = s.get(&format!("/api/runs/{source}/compare/{source}")).await;
    assert_eq!(same.body["first_difference"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_forks_and_comparisons_name_what_is_wrong_and_write_nothing() {
    let llm = provider().await;
    let s = Server::start().await;
    let source = source_run(&s, &llm.url).await;
    let fork = |body: Value| {
        let s = &s;
        let source = source.clone();
        async move { s.post(&format!("/api/runs/{source}/fork"), &body).await }
    };

    let a = s
        .post(
            "/api/runs/run_nope/fork",
            &json!({ "from": { "node": "summary" } }),
        )
        .await;
    a.error(404, "NOT_FOUND");
    let a = fork(json!({ "from": { "node": "nowhere" } })).await;
    assert_eq!(
        a.error(422, "INVALID_REQUEST")["details"]["field"],
        "from.node"
    );
    let a = fork(json!({ "from": { "seq": 100000 } })).await;
    assert_eq!(
        a.error(422, "INVALID_REQUEST")["details"]["field"],
        "from.seq"
    );
    let a = fork(json!({ "from": { "node": "summary" }, "version": 7 })).await;
    assert_eq!(
        a.error(422, "INVALID_REQUEST")["details"]["field"],
        "version"
    );
    let a = fork(json!({ "from": { "node": "summary" }, "changes": { "actions": [ { "ref": "nope", "kind": "update_context" } ] } })).await;
    assert_eq!(
        a.error(422, "INVALID_REQUEST")["details"]["field"],
        "changes.actions[0].ref"
    );
    let a = fork(json!({ "from": { "node": "summary" }, "changes": { "prompt_specs": [ { "ref": "summary_p", "template": "x", "bogus": 1 } ] } })).await;
    a.error(422, "INVALID_DEFINITION");
    let a = fork(json!({ "from": { "node": "summary" }, "extra": 1 })).await;
    a.error(400, "MALFORMED_BODY");
    assert!(a.message().contains("extra"), "{}", a.text);

    // A version without the join cannot continue a history that has one.
    let no_join = research_pipeline(&llm.url)
        .replace(
            "  - { from: section, to: join }\n  - { from: join, to: summary }\n",
            "  - { from: section, to: summary }\n",
        )
        .replace("output.summary", "state.summary");
    let start = no_join.find("  - ref: join").unwrap();
    let end = no_join.find("  - ref: summary").unwrap();
    let no_join = format!("{}{}", &no_join[..start], &no_join[end..]);
    let saved = s
        .post_raw("/api/workflow-defs", "application/yaml", no_join)
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    let a = fork(json!({ "from": { "node": "summary" }, "version": 2 })).await;
    let e = a.error(422, "FORK_INCOMPATIBLE");
    assert!(
        e["message"].as_str().unwrap().contains("`join`"),
        "{}",
        a.text
    );
    assert!(
        e["details"]["missing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains("`join`")),
        "{}",
        a.text
    );

    // Nothing was written by the refused forks.
    assert_eq!(s.count("/api/runs").await, 1);

    // Runs of different workflows do not compare.
    let other = s
        .post_raw(
            "/api/workflow-defs",
            "application/yaml",
            "name: other\ninitial_node: a\nnodes:\n  - { ref: a, action: { kind: update_context, updates: [ { path: state.x, expr: \"1\" } ] } }\n",
        )
        .await;
    assert_eq!(other.status, 201, "{}", other.text);
    let other = s
        .post("/api/workflow-defs/other/runs?wait=true", &json!({}))
        .await;
    let other = other.body["id"].as_str().unwrap();
    let a = s.get(&format!("/api/runs/{source}/compare/{other}")).await;
    assert_eq!(a.error(422, "INVALID_REQUEST")["details"]["field"], "b");
    s.get(&format!("/api/runs/{source}/compare/run_nope"))
        .await
        .error(404, "NOT_FOUND");
}
