//! One parser (SPEC §2 "Parsing"): the same file means the same thing to
//! `braid validate`, `braid run` and `POST /api/workflow-defs` — valid or
//! invalid, with the same problems — and YAML 1.1 words (`yes`, `no`, `on`,
//! `off`) are strings everywhere.

use braid_runtime::{Engine, Options};
use braid_store_sqlite::SqliteStore;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::sync::Arc;

/// YAML 1.1 words in string fields (and `on` as a transition key): valid.
const WORDS_AS_STRINGS: &str = r#"
name: yes_words
description: yes
initial_node: on
nodes:
  - ref: on
    name: off
    action: { kind: update_context, updates: [ { path: state.said, expr: "'no'" } ] }
  - ref: done
    action: { kind: update_context, updates: [ { path: output.said, expr: "state.said" } ] }
transitions:
  - { from: on, to: done, on: success }
"#;

/// The same words where a boolean or an enum value is expected: shape problems.
const WORDS_AS_BOOLEANS: &str = r#"
name: yes_flags
initial_node: a
nodes:
  - { ref: a, action: call_child }
  - { ref: b, action: { kind: update_context }, fan_in: yes, joins: a }
transitions:
  - { from: a, to: b }
actions:
  - { ref: call_child, kind: workflow_call, workflow: child, inherit_artifacts: no }
"#;

/// Missing name, unknown action kind, unknown merge strategy, unknown field.
const BROKEN_SHAPE: &str = r#"
initial_node: a
nodes:
  - { ref: a, action: { kind: shout } }
  - ref: j
    action: { kind: update_context }
    merge: { source: x, target: state.x, strategy: zip }
nodez: []
"#;

/// The right shape, but it does not validate.
const DOES_NOT_VALIDATE: &str = r#"
name: ghostly
initial_node: a
nodes:
  - { ref: a, action: { kind: update_context } }
transitions:
  - { from: a, to: ghost }
"#;

/// What one way of reading a file answered: valid, or these problems.
type Verdict = Result<(), BTreeSet<String>>;

fn problem_line(p: &Value) -> String {
    format!(
        "{} `{}`, field `{}`: {}",
        p["kind"].as_str().unwrap(),
        p["ref"].as_str().unwrap(),
        p["field"].as_str().unwrap(),
        p["message"].as_str().unwrap()
    )
}

fn braid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(args)
        .output()
        .expect("braid runs")
}

fn validate(file: &str) -> Verdict {
    let o = braid(&["validate", file, "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).expect("validate --json prints JSON");
    match (o.status.code(), v["valid"].as_bool()) {
        (Some(0), Some(true)) => Ok(()),
        (Some(1), Some(false)) => Err(v["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(problem_line)
            .collect()),
        other => panic!("validate {file}: {other:?} {v}"),
    }
}

/// `braid run`: exit 0 with the output, or exit 2 listing the problems.
fn run(file: &str) -> Verdict {
    let o = braid(&["run", file]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    match o.status.code() {
        Some(0) => Ok(()),
        Some(2) => {
            assert!(stderr.contains("the workflow is invalid"), "{stderr}");
            Err(stderr
                .lines()
                .filter_map(|l| l.strip_prefix("  "))
                .map(str::to_string)
                .collect())
        }
        other => panic!("run {file}: {other:?}\n{stderr}"),
    }
}

async fn post(http: &reqwest::Client, base: &str, text: &str) -> (Verdict, Value) {
    let resp = http
        .post(format!("{base}/api/workflow-defs"))
        .header("content-type", "application/yaml")
        .body(text.to_string())
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("a JSON answer");
    let verdict = match status {
        201 => Ok(()),
        422 => {
            assert_eq!(body["error"]["code"], "INVALID_DEFINITION", "{body}");
            Err(body["error"]["details"]["errors"]
                .as_array()
                .expect("details.errors")
                .iter()
                .map(problem_line)
                .collect())
        }
        _ => panic!("POST answered {status}: {body}"),
    };
    (verdict, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_means_the_same_to_validate_run_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_path(&dir.path().join("api.db"))
        .await
        .unwrap();
    let engine = Engine::start(Arc::new(store), Options::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(braid_server::serve(
        listener,
        braid_server::AppState::new(engine.clone()),
        async {
            let _ = stopped.await;
        },
    ));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();

    let files = [
        ("words_as_strings", WORDS_AS_STRINGS, 0),
        ("words_as_booleans", WORDS_AS_BOOLEANS, 2),
        ("broken_shape", BROKEN_SHAPE, 4),
        ("does_not_validate", DOES_NOT_VALIDATE, 1),
    ];
    for (name, text, problems) in files {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        let path = path.to_string_lossy().into_owned();
        let by_validate = validate(&path);
        let (by_api, body) = post(&http, &base, text).await;
        assert_eq!(by_validate, by_api, "{name}: validate vs the API");
        assert_eq!(by_validate, run(&path), "{name}: validate vs run");
        let count = by_validate.as_ref().err().map_or(0, BTreeSet::len);
        assert_eq!(count, problems, "{name}: {by_validate:?}");
        if name == "words_as_strings" {
            assert_eq!(body["name"], "yes_words");
        }
    }

    // The problems name their paths and objects.
    let (shape, _) = post(&http, &base, BROKEN_SHAPE).await;
    let shape = shape.unwrap_err();
    for expected in [
        "workflow ``, field `name`: missing field `name`",
        "node `j`, field `nodes[1].merge.strategy`: unknown variant `zip`",
        "workflow ``, field `nodez`: unknown field `nodez`",
    ] {
        assert!(
            shape.iter().any(|p| p.starts_with(expected)),
            "{expected} missing from {shape:#?}"
        );
    }
    assert!(
        shape.iter().any(|p| p.starts_with(
            "action `a.action`, field `nodes[0].action.kind`: unknown action kind `shout`"
        )),
        "{shape:#?}"
    );
    let (flags, _) = post(&http, &base, WORDS_AS_BOOLEANS).await;
    let flags: Vec<String> = flags.unwrap_err().into_iter().collect();
    assert!(
        flags[0].starts_with(
            "action `call_child`, field `actions[0].inherit_artifacts`: invalid type: string \"no\""
        ),
        "{flags:?}"
    );
    assert!(
        flags[1].starts_with("node `b`, field `nodes[1].fan_in`"),
        "{flags:?}"
    );

    // YAML 1.1 words stay the strings they were written as.
    let saved = http
        .get(format!("{base}/api/workflow-defs/yes_words"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        (
            &saved["description"],
            &saved["initial_node"],
            &saved["nodes"][0]["name"]
        ),
        (&json!("yes"), &json!("on"), &json!("off"))
    );
    let o = braid(&[
        "run",
        &dir.path().join("words_as_strings.yaml").to_string_lossy(),
    ]);
    let output: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(output, json!({ "said": "no" }));

    // Not YAML at all: 400 for the API, a syntax error for the CLI.
    let resp = http
        .post(format!("{base}/api/workflow-defs"))
        .header("content-type", "application/yaml")
        .body("name: [unclosed\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "MALFORMED_BODY");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid YAML")
    );

    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    engine.shutdown(std::time::Duration::from_secs(5)).await;
}
