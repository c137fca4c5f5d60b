//! The OpenAPI document (`/api/openapi.json`) passes a standard validator,
//! is complete enough to generate typed clients from, and is true to what
//! the server really answers.

use crate::common::Server;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Properties that hold user data (a run's input, state and output, a
/// result, JSON Schemas written by users, …): the only schemas allowed to
/// be free-form, and only with a description.
const USER_DATA: &[&str] = &[
    // A run's data and what nodes and children produce.
    "input",
    "state",
    "output",
    "result",
    "content",
    "item",
    "value",
    "artifacts",
    // A provider's raw answer, as it came.
    "response",
    // JSON literals a structured condition compares with.
    "values",
    // JSON Schemas and provider settings written in a bundle.
    "input_schema",
    "output_schema",
    "produces",
    "schema",
    "parameters",
    "script",
];

/// The operations and their ids (generated clients name their methods so).
const OPERATIONS: &[(&str, &str, &str)] = &[
    ("post", "/api/workflow-defs", "save_workflow_def"),
    ("get", "/api/workflow-defs", "list_workflow_defs"),
    ("get", "/api/workflow-defs/{workflow}", "get_workflow_def"),
    ("post", "/api/workflow-defs/{workflow}/runs", "start_run"),
    ("get", "/api/runs", "list_runs"),
    ("get", "/api/runs/{id}", "get_run"),
    ("get", "/api/runs/{id}/tokens", "list_run_tokens"),
    ("get", "/api/runs/{id}/events", "list_run_events"),
    ("post", "/api/runs/{id}/cancel", "cancel_run"),
    ("post", "/api/runs/{id}/fork", "fork_run"),
    ("get", "/api/runs/{a}/compare/{b}", "compare_runs"),
    ("get", "/api/artifacts", "list_artifacts"),
    ("get", "/api/artifacts/{id}", "get_artifact"),
    ("get", "/healthz", "healthz"),
    ("get", "/api/openapi.json", "openapi"),
];

fn document() -> Value {
    serde_json::to_value(braid_server::openapi()).expect("the document serializes")
}

#[test]
fn openapi_document_passes_openapi_spec_validator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let validator = root.join(".venv-tools/bin/openapi-spec-validator");
    if !validator.exists() {
        let how = "run `scripts/tools.sh` from the repository root: it installs the pinned \
                   openapi-spec-validator (scripts/tools-requirements.txt) into .venv-tools";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "CI: {} is missing although scripts/test.sh installs it first; {how}",
                validator.display()
            );
        }
        panic!(
            "the OpenAPI validator {} is not installed; {how}",
            validator.display()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, braid_server::openapi().to_pretty_json().unwrap()).unwrap();
    let out = Command::new(&validator)
        .args(["--validation-errors", "all"])
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    assert!(
        out.status.success(),
        "openapi-spec-validator rejects the document ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn operations_have_unique_ids_and_described_answers() {
    let doc = document();
    let mut ids = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has an operationId"));
            ids.push(id.to_string());
            for (status, answer) in op["responses"].as_object().unwrap() {
                assert!(
                    answer["description"]
                        .as_str()
                        .is_some_and(|d| !d.trim().is_empty()),
                    "{method} {path} answer {status} has a description"
                );
            }
        }
    }
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "operationIds repeat: {ids:?}");
    for (method, path, id) in OPERATIONS {
        assert_eq!(
            doc["paths"][path][method]["operationId"], *id,
            "{method} {path}"
        );
    }
}

#[test]
fn schemas_describe_every_value_except_user_data() {
    let doc = document();
    let mut bare = Vec::new();
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        // A Rust name (`i64` of a type alias) would become a client type.
        assert!(
            name.starts_with(|c: char| c.is_ascii_uppercase()),
            "schema {name} is named like a Rust primitive or alias: {schema}"
        );
        find_bare(
            schema,
            &format!("#/components/schemas/{name}"),
            None,
            &mut bare,
        );
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        if path == "/api/openapi.json" {
            continue; // The document itself: described by the OpenAPI spec.
        }
        find_bare(item, &format!("paths.{path}"), None, &mut bare);
    }
    assert!(
        bare.is_empty(),
        "free-form schemas outside the user-data fields {USER_DATA:?} (or without a description):\n{}",
        bare.join("\n")
    );

    // Bundles are typed in both content types, in and out.
    let bundle = json!({ "$ref": "#/components/schemas/Bundle" });
    let save = &doc["paths"]["/api/workflow-defs"]["post"]["requestBody"]["content"];
    let read = &doc["paths"]["/api/workflow-defs/{workflow}"]["get"]["responses"]["200"]["content"];
    for content in [save, read] {
        assert_eq!(content["application/json"]["schema"], bundle);
        assert_eq!(content["application/yaml"]["schema"], bundle);
    }
    // Actions are tagged by `kind`, events by `kind` with one payload per kind.
    let schemas = &doc["components"]["schemas"];
    let kinds = |name: &str| -> BTreeSet<String> {
        schemas[name]["oneOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is a oneOf"))
            .iter()
            .map(|v| {
                v["properties"]["kind"]["enum"][0]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    for kind in [
        "update_context",
        "llm_call",
        "write_artifact",
        "workflow_call",
    ] {
        assert!(kinds("ActionKind").contains(kind), "action kind {kind}");
    }
    let events = kinds("EventBody");
    for kind in [
        "workflow_started",
        "workflow_completed",
        "node_started",
        "node_completed",
        "node_retrying",
        "fan_in_completed",
        "context_updated",
        "artifact_created",
        "subworkflow_failed",
    ] {
        assert!(events.contains(kind), "event kind {kind}: {events:?}");
    }
    for variant in schemas["EventBody"]["oneOf"].as_array().unwrap() {
        assert!(
            variant["required"] == json!(["payload", "kind"])
                || variant["required"] == json!(["kind", "payload"]),
            "{variant}"
        );
    }
}

/// Collects the schemas under `v` that say nothing about their value,
/// except described user-data properties.
fn find_bare(v: &Value, at: &str, property: Option<&str>, bare: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if is_schema(m) && is_free_form(m) {
                let described = m.get("description").and_then(Value::as_str).is_some();
                let allowed = property.is_some_and(|p| USER_DATA.contains(&p));
                if !(allowed && described) {
                    bare.push(format!("{at}: {v}"));
                }
                return; // Whatever is inside user data is user data.
            }
            for (k, child) in m {
                if k == "properties" {
                    for (name, schema) in child.as_object().into_iter().flatten() {
                        find_bare(schema, &format!("{at}.{name}"), Some(name), bare);
                    }
                } else if k == "example" || k == "examples" || k == "enum" {
                    // Values, not schemas.
                } else if k == "oneOf" || k == "anyOf" || k == "allOf" {
                    for (i, s) in child.as_array().into_iter().flatten().enumerate() {
                        // An alternative of a property keeps its name.
                        find_bare(s, &format!("{at}.{k}[{i}]"), property, bare);
                    }
                } else if k == "items" {
                    // A described list of user data holds user data.
                    let described = m.contains_key("description");
                    if !(described && property.is_some_and(|p| USER_DATA.contains(&p))) {
                        find_bare(child, &format!("{at}.items"), None, bare);
                    }
                } else {
                    find_bare(child, &format!("{at}.{k}"), None, bare);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_bare(item, &format!("{at}[{i}]"), None, bare);
            }
        }
        _ => {}
    }
}

/// Whether an object in the document is a schema (rather than a path
/// item, response, parameter, …).
fn is_schema(m: &serde_json::Map<String, Value>) -> bool {
    m.contains_key("type")
        || m.contains_key("$ref")
        || m.contains_key("oneOf")
        || m.contains_key("allOf")
        || m.contains_key("anyOf")
        || (m.is_empty())
        || (m.len() == 1 && m.contains_key("description"))
}

/// `{}`, or an object type with neither properties nor typed values.
fn is_free_form(m: &serde_json::Map<String, Value>) -> bool {
    if [
        "$ref",
        "oneOf",
        "allOf",
        "anyOf",
        "enum",
        "const",
        "properties",
    ]
    .iter()
    .any(|k| m.contains_key(*k))
    {
        return false;
    }
    let typed_values = m
        .get("additionalProperties")
        .is_some_and(|a| a.as_object().is_some_and(|a| !a.is_empty()));
    match m.get("type") {
        None => true,
        Some(t) => {
            let is_object =
                t == "object" || t.as_array().is_some_and(|a| a.contains(&json!("object")));
            is_object && !typed_values
        }
    }
}

/// Validates JSON values against the document's component schemas.
struct Schemas(Value);

impl Schemas {
    /// The problems of `value` against component `name` (empty when valid).
    fn problems(&self, name: &str, value: &Value) -> Vec<String> {
        let schema = json!({
            "$ref": format!("#/components/schemas/{name}"),
            "components": self.0["components"],
        });
        let validator = jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("schema {name} compiles: {e}"));
        validator
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    #[track_caller]
    fn check(&self, name: &str, value: &Value) {
        let problems = self.problems(name, value);
        assert!(
            problems.is_empty(),
            "the answer does not match schema {name}: {problems:#?}\n{value:#}"
        );
    }
}

#[tokio::test]
async fn real_answers_match_their_schemas() {
    let server = Server::start().await;
    let schemas = Schemas(document());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let yaml = std::fs::read_to_string(root.join("examples/demo.yaml")).unwrap();

    let saved = server
        .post_raw("/api/workflow-defs", "application/yaml", yaml)
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    schemas.check("SavedDefinition", &saved.body);
    let bundle = server.get("/api/workflow-defs/demo_brief").await;
    assert_eq!(bundle.status, 200, "{}", bundle.text);
    schemas.check("Bundle", &bundle.body);
    let defs = server.get("/api/workflow-defs").await;
    schemas.check("Page_WorkflowSummary", &defs.body);

    let run = server
        .post(
            "/api/workflow-defs/demo_brief/runs?wait=true",
            &json!({ "input": { "question": "Why do rivers meander?" } }),
        )
        .await;
    assert_eq!(
        (run.status, &run.body["status"]),
        (201, &json!("completed")),
        "{}",
        run.text
    );
    schemas.check("StartRunAnswer", &run.body);
    schemas.check("Run", &run.body);
    let id = run.body["id"].as_str().unwrap();
    let runs = server.get("/api/runs").await;
    schemas.check("Page_RunSummary", &runs.body);
    let tokens = server.get(&format!("/api/runs/{id}/tokens")).await;
    schemas.check("Page_Token", &tokens.body);
    let artifacts = server.get("/api/artifacts").await;
    schemas.check("Page_Artifact", &artifacts.body);
    let artifact_id = artifacts.body["items"][0]["id"].as_str().unwrap();
    let artifact = server.get(&format!("/api/artifacts/{artifact_id}")).await;
    schemas.check("Artifact", &artifact.body);

    let events = server
        .get(&format!("/api/runs/{id}/events?limit=1000"))
        .await;
    schemas.check("Page_Event", &events.body);
    let items = events.body["items"].as_array().unwrap();
    let kinds: BTreeSet<&str> = items.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in [
        "workflow_started",
        "node_started",
        "node_completed",
        "token_spawned",
        "fan_in_completed",
        "context_updated",
        "artifact_created",
        "workflow_completed",
    ] {
        assert!(kinds.contains(kind), "the demo run logs {kind}: {kinds:?}");
    }
    // The schema ties each payload to its kind: a payload of another kind,
    // or a kind that does not exist, is rejected.
    let started = items.iter().find(|e| e["kind"] == "node_started").unwrap();
    let completed = items
        .iter()
        .find(|e| e["kind"] == "node_completed")
        .unwrap();
    let mut swapped = started.clone();
    swapped["payload"] = completed["payload"].clone();
    assert!(!schemas.problems("Event", &swapped).is_empty(), "{swapped}");
    let mut unknown = started.clone();
    unknown["kind"] = json!("node_exploded");
    assert!(!schemas.problems("Event", &unknown).is_empty(), "{unknown}");

    // Errors, with the details of INVALID_DEFINITION and INPUT_SCHEMA.
    let invalid = server
        .post(
            "/api/workflow-defs",
            &json!({ "name": "broken", "initial_node": "nowhere", "nodes": [] }),
        )
        .await;
    invalid.error(422, "INVALID_DEFINITION");
    schemas.check("ErrorBody", &invalid.body);
    schemas.check("DefinitionProblems", &invalid.body["error"]["details"]);
    let bad_input = server
        .post(
            "/api/workflow-defs/demo_brief/runs",
            &json!({ "input": { "question": 7 } }),
        )
        .await;
    bad_input.error(422, "INPUT_SCHEMA");
    schemas.check("ErrorBody", &bad_input.body);
    schemas.check("InputProblems", &bad_input.body["error"]["details"]);
    let missing = server.get("/api/runs/run_missing").await;
    missing.error(404, "NOT_FOUND");
    schemas.check("ErrorBody", &missing.body);
    schemas.check("Health", &server.get("/healthz").await.body);
}

/// The web UI's copy of the document (`web/src/api/openapi.json`, which its
/// TypeScript types are generated from) is the one the server serves.
/// `BRAID_BLESS=1` rewrites the copy; then run `npm run gen:api` in `web/`
/// (docs/web.md).
#[tokio::test]
async fn the_web_uis_copy_of_the_document_is_current() {
    use serde::Serialize;
    let doc = braid_server::openapi();
    // Pretty-printed in the server's own key order, four spaces, a final
    // newline: the form the copy is kept in.
    let mut text = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut text,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    doc.serialize(&mut ser).expect("the document serializes");
    let text = String::from_utf8(text).unwrap() + "\n";
    let server = Server::start().await;
    let served: Value = serde_json::from_str(&server.get("/api/openapi.json").await.text).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), served);

    let copy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/src/api/openapi.json");
    if std::env::var_os("BRAID_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&copy, &text).expect("rewrite web/src/api/openapi.json");
        return;
    }
    let current = std::fs::read_to_string(&copy).unwrap_or_default();
    assert!(
        current == text,
        "web/src/api/openapi.json differs from the served document: run \
         `BRAID_BLESS=1 cargo test -p braid-server --test api the_web_uis_copy` and then \
         `npm run gen:api` in web/ (docs/web.md)"
    );
}
