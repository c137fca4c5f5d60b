//! Runs that fail or are cancelled, seen through the API.

use crate::common::{MockLlm, Server};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn a_node_without_matching_transition_fails_the_run_with_its_code_and_node() {
    let server = Server::start().await;
    let bundle = json!({
        "name": "gate",
        "initial_node": "check",
        "nodes": [
            { "ref": "check", "action": { "kind": "update_context", "updates": [ { "path": "state.n", "expr": "input.n" } ] } },
            { "ref": "big", "action": { "kind": "update_context", "updates": [ { "path": "output.big", "expr": "true" } ] } }
        ],
        "transitions": [ { "from": "check", "to": "big", "condition": "state.n > 10" } ]
    });
    assert_eq!(server.post("/api/workflow-defs", &bundle).await.status, 201);

    let ok = server
        .post(
            "/api/workflow-defs/gate/runs?wait=true",
            &json!({ "input": { "n": 11 } }),
        )
        .await;
    assert_eq!(
        (ok.status, &ok.body["status"]),
        (201, &json!("completed")),
        "{}",
        ok.text
    );
    assert_eq!(ok.body["context"]["output"], json!({ "big": true }));

    let failed = server
        .post(
            "/api/workflow-defs/gate/runs?wait=true",
            &json!({ "input": { "n": 1 } }),
        )
        .await;
    assert_eq!(failed.status, 201, "{}", failed.text);
    let run = &failed.body;
    assert_eq!(run["status"], "failed", "{}", failed.text);
    assert_eq!(run["error"]["code"], "NO_MATCHING_TRANSITION");
    assert_eq!(run["error"]["node"], "check");
    assert!(
        run["error"]["message"].as_str().unwrap().contains("check"),
        "{}",
        failed.text
    );
    assert!(run["ended_at"].as_str().is_some());
    assert_eq!(run["context"]["state"]["n"], 1);
    // SPEC §5: the failing token's scope records the error.
    assert_eq!(
        run["context"]["state"]["_last_error"]["code"],
        "NO_MATCHING_TRANSITION"
    );

    let id = run["id"].as_str().unwrap();
    let events = server
        .all_pages(&format!("/api/runs/{id}/events"), 1000)
        .await;
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.last(), Some(&"workflow_failed"), "{kinds:?}");
    assert_eq!(
        events.last().unwrap()["payload"]["error"]["code"],
        "NO_MATCHING_TRANSITION"
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "node_failed" && e["node"] == "check"),
        "{kinds:?}"
    );

    // Listing by status finds each run where it belongs.
    let failed_list = server.get("/api/runs?status=failed").await;
    let ids: Vec<&str> = failed_list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id]);
    assert_eq!(
        failed_list.body["items"][0]["error"]["code"],
        "NO_MATCHING_TRANSITION"
    );
    assert!(
        failed_list.body["items"][0].get("context").is_none(),
        "list items are summaries"
    );
    let completed = server.get("/api/runs?status=completed&workflow=gate").await;
    assert_eq!(completed.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_running_run_answers_202_then_cancels_once() {
    let server = Server::start().await;
    let llm = MockLlm::hanging().await;
    let bundle = json!({
        "name": "slow",
        "initial_node": "ask",
        "nodes": [ { "ref": "ask", "action": { "kind": "llm_call", "prompt": "p", "model": "local" } } ],
        "prompt_specs": [ { "ref": "p", "template": "Say something." } ],
        "model_profiles": [ { "ref": "local", "provider": "openai_compatible", "model": "llama3", "base_url": llm.base_url } ]
    });
    assert_eq!(server.post("/api/workflow-defs", &bundle).await.status, 201);

    let started = server
        .post(
            "/api/workflow-defs/slow/runs?wait=true&timeout_s=0",
            &json!({}),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.text);
    let id = started.body["run_id"].as_str().unwrap().to_string();
    assert_eq!(started.body, json!({ "run_id": id }));
    assert_eq!(
        started.headers.get("location").unwrap().to_str().unwrap(),
        format!("/api/runs/{id}")
    );

    let running = server.get(&format!("/api/runs/{id}")).await;
    assert_eq!(running.body["status"], "running");
    assert_eq!(running.body["ended_at"], Value::Null);

    let cancelled = server
        .http
        .post(format!("{}/api/runs/{id}/cancel", server.base))
        .json(&json!({ "reason": "operator changed their mind" }))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let body: Value = cancelled.json().await.unwrap();
    assert_eq!(body["status"], "cancelled", "{body}");
    assert!(body["ended_at"].as_str().is_some());
    let events = server
        .all_pages(&format!("/api/runs/{id}/events"), 1000)
        .await;
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "workflow_cancelled");
    assert_eq!(last["payload"]["reason"], "operator changed their mind");

    let again = server
        .request(Method::POST, &format!("/api/runs/{id}/cancel"))
        .await;
    again.error(409, "RUN_ENDED");
    // A run started without waiting answers 201 `{ run_id }` at once.
    let quick = server
        .post("/api/workflow-defs/slow/runs", &json!({}))
        .await;
    assert_eq!(quick.status, 201, "{}", quick.text);
    assert!(quick.body["run_id"].as_str().unwrap().starts_with("run_"));
    let id2 = quick.body["run_id"].as_str().unwrap();
    let c2 = server
        .request(Method::POST, &format!("/api/runs/{id2}/cancel"))
        .await;
    assert_eq!(
        (c2.status, &c2.body["status"]),
        (200, &json!("cancelled")),
        "{}",
        c2.text
    );
}

#[tokio::test]
async fn shutdown_answers_waiting_requests_with_202_at_once() {
    let mut server = Server::start().await;
    let llm = MockLlm::hanging().await;
    let bundle = json!({
        "name": "slow",
        "initial_node": "ask",
        "nodes": [ { "ref": "ask", "action": { "kind": "llm_call", "prompt": "p", "model": "local" } } ],
        "prompt_specs": [ { "ref": "p", "template": "Say something." } ],
        "model_profiles": [ { "ref": "local", "provider": "openai_compatible", "model": "llama3", "base_url": llm.base_url } ]
    });
    assert_eq!(server.post("/api/workflow-defs", &bundle).await.status, 201);

    let mut events = server.engine.subscribe();
    let waiting = tokio::spawn(
        server
            .http
            .post(format!(
                "{}/api/workflow-defs/slow/runs?wait=true&timeout_s=3600",
                server.base
            ))
            .json(&json!({}))
            .send(),
    );
    // The run is durable and its LLM call dispatched: the request is waiting (or about to).
    loop {
        let published = events.recv().await.expect("engine events");
        if published
            .events
            .iter()
            .any(|e| e.body.kind() == "node_started")
        {
            break;
        }
    }
    let serving = server.shutdown();
    let guard = std::time::Duration::from_secs(30);
    let resp = tokio::time::timeout(guard, waiting)
        .await
        .expect("answered without waiting out timeout_s")
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["run_id"].as_str().unwrap().starts_with("run_"),
        "{body}"
    );
    tokio::time::timeout(guard, serving)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}
