//! Forks against `braid serve` as a real process over a SQLite file: a
//! process killed while forks are being written and while forked runs are
//! in flight, restarted on the same file, finishes every fork it
//! acknowledged exactly once (and a fork it had not finished writing is
//! either whole or absent); then `braid runs fork` and `braid runs compare`
//! against the restarted server.

mod common;

use braid_testkit::{MockLlm, answer_by_prompt, last_prompt, research_pipeline};
use common::*;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(20);

const CHANGES: &str =
    "prompt_specs:\n  - ref: summary_p\n    template: \"Briefly summarize {{state.sections}}\"\n";

fn braid(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(args)
        .output()
        .expect("braid runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forks_survive_sigkill_and_the_cli_forks_and_compares() {
    // Answers are functions of the prompt; sections and summaries take
    // 300 ms so that forked runs are in flight when the process dies.
    let llm = MockLlm::start(|_, body| {
        let plan = answer_by_prompt(body);
        if last_prompt(body).starts_with("Outline") {
            plan
        } else {
            plan.after(300)
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("braid.db");
    let mut server = Braid::start(&db, &[]).await;
    let api = server.api();
    api.save(research_pipeline(&llm.url)).await;
    let source = api.start_run("research", json!({ "topic": "tides" })).await;
    api.until_all_ended("research", DEADLINE, &server).await;
    let source_run = api.get(&format!("/api/runs/{source}")).await;
    assert_eq!(source_run["status"], "completed", "{source_run:#}");

    // Three forks at once; the process is killed as soon as the first is
    // acknowledged: the others may be anywhere in their writing.
    let body = json!({
        "from": { "node": "section" },
        "changes": { "prompt_specs": [ { "ref": "summary_p", "template": "Briefly summarize {{state.sections}}" } ] }
    })
    .to_string();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..3 {
        let (http, url, body, tx) = (
            api.http.clone(),
            format!("{}/api/runs/{source}/fork", api.base),
            body.clone(),
            tx.clone(),
        );
        tokio::spawn(async move {
            let answer = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let created = match answer {
                Ok(r) if r.status().as_u16() == 201 => r.json::<Value>().await.ok(),
                _ => None,
            };
            let _ = tx.send(created);
        });
    }
    let first = loop {
        if let Some(created) = rx.recv().await.expect("an answer") {
            break created;
        }
    };
    server.kill();
    let mut acknowledged = vec![first["run_id"].as_str().unwrap().to_string()];
    while let Ok(Some(created)) = rx.try_recv() {
        acknowledged.push(created["run_id"].as_str().unwrap().to_string());
    }
    println!("killed after {} acknowledged fork(s)", acknowledged.len());

    let server = Braid::start(&db, &[]).await;
    let api = server.api();
    api.until_all_ended("research", DEADLINE, &server).await;
    let forks: Vec<Value> = api
        .all("/api/runs?workflow=research")
        .await
        .into_iter()
        .filter(|r| !r["forked_from"].is_null())
        .collect();
    assert!((1..=3).contains(&forks.len()), "{forks:#?}");
    println!("after the restart: {} fork(s), each whole", forks.len());
    for id in &acknowledged {
        assert!(
            forks.iter().any(|r| r["id"] == json!(id)),
            "acknowledged fork {id} is lost"
        );
    }
    for f in &forks {
        let id = f["id"].as_str().unwrap();
        let events = check_event_log(&api, id).await;
        assert_eq!(count(&events, "workflow_forked", None), 1);
        let run = api.get(&format!("/api/runs/{id}")).await;
        assert_eq!(
            run["workflow"]["version"], 2,
            "every fork shares the experiment"
        );
        assert_eq!(run["context"]["state"], source_run["context"]["state"]);
        let summary = run["context"]["output"]["summary"].as_str().unwrap();
        assert!(
            summary.starts_with("answer to [Briefly summarize"),
            "{summary}"
        );
    }
    let outlines = llm
        .requests()
        .iter()
        .filter(|b| last_prompt(b).starts_with("Outline"))
        .count();
    assert_eq!(outlines, 1, "no fork asked for the outline again");

    // The CLI against the restarted server.
    let changes = dir.path().join("changes.yaml");
    std::fs::write(&changes, CHANGES).unwrap();
    let o = braid(&[
        "runs",
        "fork",
        &source,
        "--from-node",
        "summary",
        "--changes",
        changes.to_str().unwrap(),
        "--json",
        "--server",
        &api.base,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let created: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(created["version"], 2);
    let fork = created["run_id"].as_str().unwrap().to_string();
    api.until_all_ended("research", DEADLINE, &server).await;

    let o = braid(&["runs", "compare", &source, &fork, "--server", &api.base]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    println!("{table}");
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("NODE"), "{table}");
    let unequal: Vec<&&str> = rows[1..]
        .iter()
        .filter(|r| r.split_whitespace().nth(2) == Some("no"))
        .collect();
    assert_eq!(unequal.len(), 1, "{table}");
    assert!(unequal[0].starts_with("summary "), "{table}");
    assert!(rows.iter().any(|r| r.starts_with("TOTAL")), "{table}");
    assert_eq!(
        rows.last(),
        Some(&"first difference: summary branch - occurrence 0")
    );
    assert_eq!(rows.iter().filter(|r| r.starts_with("section ")).count(), 5);

    let o = braid(&[
        "runs", "compare", &source, &fork, "--json", "--server", &api.base,
    ]);
    let cmp: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(cmp["first_difference"]["node"], "summary");
    assert_eq!(cmp["totals"]["b"]["llm_calls"], 1);

    let o = braid(&[
        "runs",
        "fork",
        &source,
        "--from-node",
        "nowhere",
        "--server",
        &api.base,
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("INVALID_REQUEST") && err.contains("from.node"),
        "{err}"
    );
}
