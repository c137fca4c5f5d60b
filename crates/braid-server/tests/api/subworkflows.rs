//! `workflow_call` over HTTP: main → research_routine → aggregate, with the
//! parent–child link visible in the API.

use crate::common::Server;
use serde_json::json;

const ROUTINE: &str = include_str!("../../../../examples/research_routine.yaml");

const MAIN: &str = include_str!("../../../../examples/research_main.yaml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_calls_a_routine_and_the_api_links_parent_and_child() {
    let server = Server::start().await;
    for bundle in [ROUTINE, MAIN] {
        let saved = server
            .post_raw("/api/workflow-defs", "application/yaml", bundle)
            .await;
        assert_eq!(saved.status, 201, "{}", saved.text);
    }
    let run = server
        .post(
            "/api/workflow-defs/main/runs?wait=true",
            &json!({ "input": { "topic": "rust" } }),
        )
        .await;
    assert_eq!(run.status, 201, "{}", run.text);
    assert_eq!(run.body["status"], "completed", "{}", run.text);
    assert_eq!(
        run.body["context"]["output"],
        json!({ "summary": "found: rust history", "isolated": true })
    );
    let children = run.body["children"].as_array().expect("children").clone();
    assert_eq!(children.len(), 1);
    let child_id = children[0].as_str().unwrap();

    let child = server.get(&format!("/api/runs/{child_id}")).await;
    assert_eq!(child.status, 200);
    assert_eq!(child.body["parent_run_id"], run.body["id"]);
    assert_eq!(child.body["parent_token_id"], "tk_2");
    assert_eq!(child.body["workflow"]["name"], "research_routine");
    assert_eq!(child.body["workflow"]["version"], 1);
    assert_eq!(
        child.body["context"]["input"],
        json!({ "query": "rust history" }),
        "input_mapping"
    );
    assert_eq!(
        child.body["context"]["state"],
        json!({}),
        "fresh state: the child cannot read the parent's"
    );

    let listed = server
        .get(&format!(
            "/api/runs?parent={}",
            run.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let events = server
        .all_pages(
            &format!("/api/runs/{}/events", run.body["id"].as_str().unwrap()),
            100,
        )
        .await;
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"subworkflow_started") && kinds.contains(&"subworkflow_completed"),
        "{kinds:?}"
    );
}
