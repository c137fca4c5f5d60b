//! Health, the OpenAPI document, unknown routes and pagination.

use crate::common::Server;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tower::ServiceExt;

#[tokio::test]
async fn health_openapi_and_unknown_routes() {
    let server = Server::start().await;
    let health = server.get("/healthz").await;
    assert_eq!(
        (health.status, &health.body),
        (200, &json!({ "status": "ok" }))
    );

    let doc = server.get("/api/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.headers.get("content-type").unwrap(), "application/json");
    assert!(
        doc.body["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc.text
    );
    let paths = doc.body["paths"].as_object().expect("paths");
    let listed: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (p.clone(), m.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("/api/workflow-defs", "post"),
        ("/api/workflow-defs", "get"),
        ("/api/workflow-defs/{workflow}", "get"),
        ("/api/workflow-defs/{workflow}/runs", "post"),
        ("/api/runs", "get"),
        ("/api/runs/{id}", "get"),
        ("/api/runs/{id}/tokens", "get"),
        ("/api/runs/{id}/tokens/{token_id}", "get"),
        ("/api/runs/{id}/events", "get"),
        ("/api/runs/{id}/nodes", "get"),
        ("/api/runs/{id}/sibling-sets", "get"),
        ("/api/runs/{id}/cancel", "post"),
        ("/api/runs/{id}/fork", "post"),
        ("/api/runs/{a}/compare/{b}", "get"),
        ("/api/runs/{id}/live", "get"),
        ("/api/live", "get"),
        ("/api/artifacts", "get"),
        ("/api/artifacts/{id}", "get"),
        ("/healthz", "get"),
        ("/api/openapi.json", "get"),
        ("/metrics", "get"),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_string(), m.to_string()))
    .collect();
    assert_eq!(listed, expected);
    let schemas = doc.body["components"]["schemas"]
        .as_object()
        .expect("schemas");
    for name in [
        "ErrorBody",
        "Run",
        "RunSummary",
        "Event",
        "Token",
        "TokenDetail",
        "Artifact",
        "SavedDefinition",
        "StartRun",
        "DefinitionProblem",
        "InputProblem",
        "LiveFrame",
        "RunChange",
        "ForkRequest",
        "ForkCreated",
        "RunComparison",
        "ComparedVisit",
        "VisitSide",
        "VisitKey",
        "ComparisonTotals",
    ] {
        assert!(schemas.contains_key(name), "schema {name} is documented");
    }
    // Every operation documents its answers, every error with the error body.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path} has responses"));
            assert!(
                // A WebSocket route succeeds with 101 (switching protocols).
                responses.keys().any(|s| s.starts_with('2') || s == "101"),
                "{method} {path}"
            );
            for (status, r) in responses.iter().filter(|(s, _)| s.starts_with('4')) {
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }

    let a = server.get("/api/nothing/here").await;
    a.error(404, "NOT_FOUND");
    assert!(a.message().contains("/api/nothing/here"), "{}", a.message());
    let a = server.request(Method::DELETE, "/api/runs").await;
    a.error(405, "METHOD_NOT_ALLOWED");
    // An embedded engine records no metrics: `braid serve` serves them.
    let a = server.get("/metrics").await;
    a.error(404, "NOT_FOUND");
    assert!(a.message().contains("braid serve"), "{}", a.message());
}

/// The app is a function: the router answers without a socket.
#[tokio::test]
async fn the_router_answers_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let store = braid_store_sqlite::SqliteStore::open_path(dir.path().join("b.db"))
        .await
        .unwrap();
    let engine = braid_runtime::Engine::start(std::sync::Arc::new(store), Default::default())
        .await
        .unwrap();
    let app = braid_server::router(braid_server::AppState::new(engine));
    let resp = app
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app
        .oneshot(
            Request::post("/api/workflow-defs")
                .header("content-type", "application/json")
                .body(Body::from("{oops"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "MALFORMED_BODY");
}

#[tokio::test]
async fn runs_and_events_page_with_limit_and_cursor() {
    let server = Server::start().await;
    let bundle = json!({
        "name": "steps",
        "initial_node": "a",
        "nodes": [
            { "ref": "a", "action": { "kind": "update_context", "updates": [ { "path": "state.a", "expr": "1" } ] } },
            { "ref": "b", "action": { "kind": "update_context", "updates": [ { "path": "state.b", "expr": "state.a + 1" } ] } }
        ],
        "transitions": [ { "from": "a", "to": "b" } ]
    });
    assert_eq!(server.post("/api/workflow-defs", &bundle).await.status, 201);
    let mut ids = Vec::new();
    for _ in 0..5 {
        let r = server
            .post("/api/workflow-defs/steps/runs?wait=true", &json!({}))
            .await;
        assert_eq!(
            (r.status, &r.body["status"]),
            (201, &json!("completed")),
            "{}",
            r.text
        );
        assert_eq!(r.body["context"]["state"], json!({ "a": 1, "b": 2 }));
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }

    // Runs: newest first, pages of 2 → 2, 2, 1.
    let first = server.get("/api/runs?limit=2").await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    assert!(first.body["next_cursor"].as_str().is_some());
    let all = server.all_pages("/api/runs", 2).await;
    let listed: Vec<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    assert_eq!(
        server
            .all_pages("/api/runs?workflow=steps&status=completed", 3)
            .await
            .len(),
        5
    );
    assert_eq!(
        server.all_pages("/api/runs?status=failed", 3).await.len(),
        0
    );

    // Events: pages of 3; next_cursor is the last seq of a full page.
    let run = &ids[0];
    let everything = server
        .get(&format!("/api/runs/{run}/events?limit=1000"))
        .await;
    assert_eq!(everything.body["next_cursor"], Value::Null);
    let events = everything.body["items"].as_array().unwrap().clone();
    assert!(events.len() >= 4, "{}", everything.text);
    let page = server.get(&format!("/api/runs/{run}/events?limit=3")).await;
    assert_eq!(page.body["next_cursor"], "3");
    let rest = server
        .get(&format!("/api/runs/{run}/events?after=3&limit=1000"))
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap()[..], events[3..]);
    assert_eq!(
        server
            .all_pages(&format!("/api/runs/{run}/events"), 3)
            .await,
        events
    );
    let past_end = server
        .get(&format!("/api/runs/{run}/events?after={}", events.len()))
        .await;
    assert_eq!(past_end.body, json!({ "items": [], "next_cursor": null }));

    // Tokens: pages of 1.
    let tokens = server
        .all_pages(&format!("/api/runs/{run}/tokens"), 1)
        .await;
    let nodes: Vec<&str> = tokens.iter().map(|t| t["node"].as_str().unwrap()).collect();
    assert_eq!(nodes, ["a", "b"]);
}
