//! The bundle's `layout` (the editor's node positions) over HTTP: kept with
//! its version, not part of its content, naming only nodes.

use crate::common::Server;
use serde_json::{Value, json};

const FLOW: &str = r#"
name: laid_out
initial_node: a
nodes:
  - { ref: a, action: { kind: update_context, updates: [ { path: state.x, expr: "1" } ] } }
  - { ref: b, action: { kind: update_context, updates: [] } }
transitions:
  - { from: a, to: b }
"#;

fn with_layout(layout: &str) -> String {
    format!("{FLOW}layout: {layout}\n")
}

#[tokio::test]
async fn a_layout_change_keeps_the_version_and_is_read_back() {
    let server = Server::start().await;
    let saved = server
        .post_raw(
            "/api/workflow-defs",
            "application/yaml",
            with_layout("{ a: { x: 0, y: 0 }, b: { x: 0, y: 120 } }"),
        )
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    let read = server.get("/api/workflow-defs/laid_out").await;
    assert_eq!(
        read.body["layout"],
        json!({ "a": { "x": 0.0, "y": 0.0 }, "b": { "x": 0.0, "y": 120.0 } })
    );

    // The editor moved b: same version, new positions.
    let mut bundle = read.body.clone();
    bundle["layout"]["b"] = json!({ "x": 250.5, "y": 40 });
    let moved = server.post("/api/workflow-defs", &bundle).await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(
        (&moved.body["created"], &moved.body["version"]),
        (&json!(false), &json!(1))
    );
    let read = server.get("/api/workflow-defs/laid_out?version=1").await;
    assert_eq!(read.body["layout"]["b"], json!({ "x": 250.5, "y": 40.0 }));
    // A file without a layout keeps the stored one.
    let bare = server
        .post_raw("/api/workflow-defs", "application/yaml", FLOW)
        .await;
    assert_eq!((bare.status, &bare.body["version"]), (200, &json!(1)));
    let read = server.get("/api/workflow-defs/laid_out").await;
    assert_eq!(read.body["layout"]["b"], json!({ "x": 250.5, "y": 40.0 }));

    // A content change is a new version, with its own layout.
    let changed = with_layout("{ a: { x: 9, y: 9 } }").replace("expr: \"1\"", "expr: \"2\"");
    let v2 = server
        .post_raw("/api/workflow-defs", "application/yaml", changed)
        .await;
    assert_eq!((v2.status, &v2.body["version"]), (201, &json!(2)));
    let read = server.get("/api/workflow-defs/laid_out").await;
    assert_eq!(read.body["layout"], json!({ "a": { "x": 9.0, "y": 9.0 } }));
    let read = server.get("/api/workflow-defs/laid_out?version=1").await;
    assert_eq!(read.body["layout"]["b"], json!({ "x": 250.5, "y": 40.0 }));
}

#[tokio::test]
async fn a_layout_naming_an_unknown_node_or_of_the_wrong_shape_is_refused() {
    let server = Server::start().await;
    let a = server
        .post_raw(
            "/api/workflow-defs",
            "application/yaml",
            with_layout("{ a: { x: 0, y: 0 }, ghost: { x: 1, y: 1 } }"),
        )
        .await;
    let e = a.error(422, "INVALID_DEFINITION");
    assert_eq!(
        e["details"]["errors"],
        json!([{
            "kind": "workflow", "ref": "laid_out", "field": "layout.ghost",
            "message": "layout names `ghost`, which is not a node of this workflow: remove it"
        }])
    );
    let a = server
        .post_raw(
            "/api/workflow-defs",
            "application/yaml",
            with_layout("{ a: { x: 0 } }"),
        )
        .await;
    let e = a.error(422, "INVALID_DEFINITION");
    let fields: Vec<&str> = e["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["field"].as_str())
        .collect();
    assert!(fields.iter().all(|f| f.starts_with("layout")), "{}", a.text);
    // Nothing was written.
    let list = server.get("/api/workflow-defs").await;
    assert_eq!(list.body["items"], Value::Array(vec![]));
}
