//! Bad requests: the right status and code, a message naming the problem,
//! and nothing written.

use crate::common::Server;
use reqwest::Method;
use serde_json::{Value, json};

/// A small valid workflow: one update_context node.
fn echo_bundle(name: &str) -> Value {
    json!({
        "name": name,
        "input_schema": { "type": "object", "required": ["topic"], "properties": { "topic": { "type": "string" } } },
        "initial_node": "copy",
        "nodes": [
            { "ref": "copy", "action": { "kind": "update_context", "updates": [ { "path": "output.topic", "expr": "input.topic" } ] } }
        ]
    })
}

/// `echo_bundle` with a second node `b` and the given transitions.
fn two_nodes(b_expr: &str, transitions: Value) -> Value {
    let mut bundle = echo_bundle("broken");
    bundle["nodes"].as_array_mut().unwrap().push(json!({
        "ref": "b", "action": { "kind": "update_context", "updates": [ { "path": "state.x", "expr": b_expr } ] }
    }));
    bundle["transitions"] = transitions;
    bundle
}

/// Row counts of every table an API call could write.
async fn table_counts(server: &Server) -> Vec<(String, i64)> {
    use sqlx::Connection;
    let mut db = sqlx::sqlite::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&server.db)
            .read_only(true),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    for t in [
        "workflows",
        "workflow_defs",
        "nodes",
        "transitions",
        "actions",
        "artifact_types",
        "workflow_runs",
        "tokens",
        "events",
        "tasks",
        "artifacts",
    ] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}")))
            .fetch_one(&mut db)
            .await
            .unwrap();
        out.push((t.to_string(), n));
    }
    db.close().await.unwrap();
    out
}

/// The errors of a 422 `INVALID_DEFINITION`.
#[track_caller]
fn definition_errors(a: &crate::common::Answer) -> Vec<Value> {
    let e = a.error(422, "INVALID_DEFINITION");
    let errors = e["details"]["errors"]
        .as_array()
        .expect("details.errors")
        .clone();
    assert!(!errors.is_empty());
    for err in &errors {
        for f in ["kind", "ref", "field", "message"] {
            assert!(err[f].as_str().is_some(), "every problem has `{f}`: {err}");
        }
    }
    errors
}

#[tokio::test]
async fn bad_requests_answer_precise_errors_and_write_nothing() {
    let server = Server::start_with_limit(16 * 1024).await;
    // One valid workflow and one ended run to aim the bad requests at.
    let saved = server
        .post("/api/workflow-defs", &echo_bundle("echo"))
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    let ended = server
        .post(
            "/api/workflow-defs/echo/runs?wait=true",
            &json!({ "input": { "topic": "t" } }),
        )
        .await;
    assert_eq!(
        (ended.status, &ended.body["status"]),
        (201, &json!("completed")),
        "{}",
        ended.text
    );
    let ended_id = ended.body["id"].as_str().unwrap().to_string();

    let defs_before = server.count("/api/workflow-defs").await;
    let runs_before = server.count("/api/runs").await;
    let tables_before = table_counts(&server).await;

    // Malformed JSON.
    let a = server
        .post_raw(
            "/api/workflow-defs",
            "application/json",
            r#"{"name": "x", "nodes": ["#,
        )
        .await;
    a.error(400, "MALFORMED_BODY");
    assert!(
        a.message().contains("invalid JSON") && a.message().contains("line 1"),
        "{}",
        a.message()
    );

    // Malformed YAML.
    let a = server
        .post_raw(
            "/api/workflow-defs",
            "application/yaml",
            "name: x\nnodes: [unclosed\n  - ref: a\n",
        )
        .await;
    a.error(400, "MALFORMED_BODY");
    assert!(a.message().contains("invalid YAML"), "{}", a.message());

    // A field of the wrong type: 422, the problem names its path.
    let mut wrong = echo_bundle("wrong");
    wrong["transitions"] = json!([{ "from": "copy", "to": "copy", "priority": "high" }]);
    let a = server.post("/api/workflow-defs", &wrong).await;
    let errors = definition_errors(&a);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (&errors[0]["kind"], &errors[0]["ref"], &errors[0]["field"]),
        (
            &json!("transition"),
            &json!("copy->copy"),
            &json!("transitions[0].priority")
        )
    );
    // A missing name, an unknown action kind, an unknown merge strategy and
    // an unknown field, in YAML: every one listed with its path.
    let a = server
        .post_raw(
            "/api/workflow-defs",
            "application/yaml",
            "initial_node: a\nnodes:\n  - { ref: a, action: { kind: shout } }\n  - ref: j\n    action: { kind: update_context }\n    merge: { source: x, target: state.x, strategy: zip }\nnodez: []\n",
        )
        .await;
    let errors = definition_errors(&a);
    let fields: Vec<&str> = errors
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "name",
            "nodes[0].action.kind",
            "nodes[1].merge.strategy",
            "nodez"
        ],
        "{errors:?}"
    );
    assert_eq!(
        (&errors[1]["kind"], &errors[1]["ref"]),
        (&json!("action"), &json!("a.action"))
    );
    assert_eq!(
        (&errors[2]["kind"], &errors[2]["ref"]),
        (&json!("node"), &json!("j"))
    );
    assert!(
        errors[1]["message"]
            .as_str()
            .unwrap()
            .contains("`update_context`")
    );
    // A document that is not an object is a wrong shape too; empty is malformed.
    definition_errors(&server.post("/api/workflow-defs", &json!([1, 2])).await);
    let a = server
        .post_raw("/api/workflow-defs", "application/json", "")
        .await;
    a.error(400, "MALFORMED_BODY");
    assert!(a.message().contains("empty"), "{}", a.message());

    // A transition to an unknown node.
    let a = server
        .post(
            "/api/workflow-defs",
            &two_nodes(
                "1",
                json!([{ "from": "copy", "to": "b" }, { "from": "b", "to": "ghost" }]),
            ),
        )
        .await;
    let errors = definition_errors(&a);
    assert!(
        errors.iter().any(|e| e["kind"] == "transition"
            && e["field"] == "to"
            && e["message"].as_str().unwrap().contains("ghost")),
        "{errors:?}"
    );
    assert!(
        a.message().contains("ghost"),
        "the message names the problem: {}",
        a.message()
    );

    // An unreachable node.
    let a = server
        .post("/api/workflow-defs", &two_nodes("1", json!([])))
        .await;
    let errors = definition_errors(&a);
    assert!(
        errors.iter().any(|e| e["kind"] == "node"
            && e["ref"] == "b"
            && e["message"].as_str().unwrap().contains("unreachable")),
        "{errors:?}"
    );

    // CEL that does not parse.
    let a = server
        .post(
            "/api/workflow-defs",
            &two_nodes("state.x +", json!([{ "from": "copy", "to": "b" }])),
        )
        .await;
    let errors = definition_errors(&a);
    assert!(
        errors
            .iter()
            .any(|e| e["ref"] == "b.action" && e["field"] == "updates[0].expr"),
        "{errors:?}"
    );

    // CEL with an unknown identifier.
    let a = server
        .post(
            "/api/workflow-defs",
            &two_nodes("nonsense.field", json!([{ "from": "copy", "to": "b" }])),
        )
        .await;
    let errors = definition_errors(&a);
    assert!(
        errors.iter().any(|e| e["field"] == "updates[0].expr"
            && e["message"].as_str().unwrap().contains("nonsense")),
        "{errors:?}"
    );

    // Every problem at once.
    let a = server
        .post(
            "/api/workflow-defs",
            &two_nodes("nonsense", json!([{ "from": "copy", "to": "ghost" }])),
        )
        .await;
    assert!(definition_errors(&a).len() >= 3, "{}", a.text);

    // Input that violates input_schema; input that is not an object.
    let a = server
        .post(
            "/api/workflow-defs/echo/runs",
            &json!({ "input": { "topic": 5 } }),
        )
        .await;
    let e = a.error(422, "INPUT_SCHEMA");
    let errors = e["details"]["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["path"] == "/topic" && e["message"].as_str().is_some()),
        "{}",
        a.text
    );
    let a = server
        .post("/api/workflow-defs/echo/runs", &json!({ "input": {} }))
        .await;
    a.error(422, "INPUT_SCHEMA");
    for input in [json!([1, 2]), json!("text"), Value::Null] {
        let a = server
            .post("/api/workflow-defs/echo/runs", &json!({ "input": input }))
            .await;
        a.error(422, "INPUT_SCHEMA");
        assert!(a.message().contains("object"), "{}", a.message());
    }
    // A run body of the wrong shape names the field.
    let a = server
        .post(
            "/api/workflow-defs/echo/runs",
            &json!({ "inputs": { "topic": "t" } }),
        )
        .await;
    a.error(400, "MALFORMED_BODY");
    assert!(a.message().contains("inputs"), "{}", a.message());
    let a = server
        .post(
            "/api/workflow-defs/echo/runs",
            &json!({ "input": { "topic": "t" }, "limits": { "timeout_ms": "soon" } }),
        )
        .await;
    a.error(400, "MALFORMED_BODY");
    assert!(a.message().contains("limits.timeout_ms"), "{}", a.message());

    // Unknown workflow, version, run, artifact, project.
    let a = server
        .post(
            "/api/workflow-defs/nope/runs",
            &json!({ "input": { "topic": "t" } }),
        )
        .await;
    a.error(404, "NOT_FOUND");
    assert!(a.message().contains("nope"), "{}", a.message());
    server
        .get("/api/workflow-defs/nope")
        .await
        .error(404, "NOT_FOUND");
    let a = server
        .post(
            "/api/workflow-defs/echo/runs",
            &json!({ "input": { "topic": "t" }, "version": 9 }),
        )
        .await;
    a.error(404, "NOT_FOUND");
    assert!(a.message().contains('9'), "{}", a.message());
    server
        .get("/api/workflow-defs/echo?version=9")
        .await
        .error(404, "NOT_FOUND");
    for path in [
        "/api/runs/run_nope",
        "/api/runs/run_nope/events",
        "/api/runs/run_nope/tokens",
        "/api/artifacts/art_nope",
    ] {
        let a = server.get(path).await;
        a.error(404, "NOT_FOUND");
    }
    let a = server
        .request(Method::POST, "/api/runs/run_nope/cancel")
        .await;
    a.error(404, "NOT_FOUND");
    assert!(a.message().contains("run_nope"), "{}", a.message());
    let a = server
        .post(
            "/api/workflow-defs?project=nowhere",
            &echo_bundle("elsewhere"),
        )
        .await;
    a.error(404, "NOT_FOUND");
    assert!(a.message().contains("nowhere"), "{}", a.message());
    server
        .get("/api/runs?project=nowhere")
        .await
        .error(404, "NOT_FOUND");

    // Bad query parameters name the parameter; `limit` out of range is clamped, not an error.
    for (path, name) in [
        ("/api/runs?limit=ten", "limit"),
        ("/api/runs?status=done", "status"),
        ("/api/runs?stauts=failed", "stauts"),
        ("/api/workflow-defs/echo?version=two", "version"),
        ("/api/workflow-defs/echo/runs?wait=maybe", "wait"),
        (&format!("/api/runs/{ended_id}/events?after=-1"), "after"),
        ("/api/runs?cursor=garbage", "cursor"),
    ] {
        let a = if path.ends_with("wait=maybe") {
            server.post(path, &json!({})).await
        } else {
            server.get(path).await
        };
        a.error(400, "MALFORMED_BODY");
        assert!(a.message().contains(name), "{path}: {}", a.message());
    }
    for limit in ["0", "-3", "100000"] {
        let a = server.get(&format!("/api/runs?limit={limit}")).await;
        assert_eq!(a.status, 200, "limit={limit}: {}", a.text);
    }

    // An oversize body: 413 with the JSON error shape, for bundles and run input.
    let big = "x".repeat(32 * 1024);
    let a = server
        .post(
            "/api/workflow-defs",
            &json!({ "name": "big", "description": big }),
        )
        .await;
    a.error(413, "BODY_TOO_LARGE");
    let a = server
        .post(
            "/api/workflow-defs/echo/runs",
            &json!({ "input": { "topic": big } }),
        )
        .await;
    a.error(413, "BODY_TOO_LARGE");
    assert!(a.message().contains("16384"), "{}", a.message());

    // Cancelling an ended run.
    let a = server
        .request(Method::POST, &format!("/api/runs/{ended_id}/cancel"))
        .await;
    a.error(409, "RUN_ENDED");
    assert!(a.message().contains(&ended_id), "{}", a.message());

    // Nothing was written by any of them.
    assert_eq!(server.count("/api/workflow-defs").await, defs_before);
    assert_eq!(server.count("/api/runs").await, runs_before);
    assert_eq!(table_counts(&server).await, tables_before);
}
