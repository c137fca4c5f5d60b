//! The `braid` binary: demo, run, validate — data on stdout, diagnostics on
//! stderr, exit codes by outcome.

use std::process::{Command, Output};

fn braid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .expect("braid runs")
}

fn stdout_json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn demo_prints_its_output_without_any_api_key() {
    let o = braid(&["demo"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout_json(&o);
    assert_eq!(out["title"], "Durable workflows for LLM pipelines");
    assert_eq!(
        out["votes"],
        serde_json::json!(["accept", "reject", "accept"])
    );
    assert!(out["artifact"].as_str().unwrap().starts_with("art_"));
    assert!(stderr(&o).contains("run completed"), "{}", stderr(&o));
}

const DOUBLE: &str = r#"
name: double
input_schema: { type: object, required: [n], properties: { n: { type: integer } } }
initial_node: a
nodes:
  - { ref: a, action: { kind: update_context, updates: [ { path: output.twice, expr: "input.n * 2" } ] } }
  - { ref: boom, action: { kind: update_context, updates: [ { path: output.x, expr: "1 / 0" } ] } }
  - { ref: fine, action: { kind: update_context } }
transitions:
  - { from: a, to: boom, condition: "input.n < 0" }
  - { from: a, to: fine, priority: 1 }
"#;

#[test]
fn run_takes_input_inline_or_from_a_file_and_exits_by_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let wf = write(&dir, "wf.yaml", DOUBLE);
    let o = braid(&["run", &wf, "--input", r#"{"n": 21}"#]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout_json(&o), serde_json::json!({ "twice": 42 }));

    let input = write(&dir, "in.json", r#"{"n": 5}"#);
    let o = braid(&["run", &wf, "--input", &format!("@{input}"), "--json"]);
    let run = stdout_json(&o);
    assert_eq!(run["status"], "completed");
    assert_eq!(run["context"]["output"]["twice"], 10);

    // A failing run: exit 1, the error on stderr.
    let o = braid(&["run", &wf, "--input", r#"{"n": -1}"#]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("EXPRESSION"), "{}", stderr(&o));

    // Input that violates input_schema: exit 2, naming the field; no data on stdout.
    let o = braid(&["run", &wf, "--input", r#"{"n": "x"}"#]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/n"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());

    // Input that is not JSON.
    let o = braid(&["run", &wf, "--input", "{n:"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--input is not valid JSON"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn validate_reports_every_problem_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo.yaml");
    let good = braid(&["validate", demo]);
    assert!(good.status.success(), "{}", stderr(&good));
    let bad = write(
        &dir,
        "bad.yaml",
        "name: bad\ninitial_node: a\nnodes:\n  - { ref: a, action: { kind: update_context, updates: [ { path: state.x, expr: \"1 +\" } ] } }\n  - { ref: lonely, action: { kind: update_context } }\ntransitions:\n  - { from: a, to: ghost }\n",
    );
    let o = braid(&["validate", &bad, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = stdout_json(&o);
    assert_eq!(v["valid"], false);
    let fields: Vec<String> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}/{}/{}",
                e["kind"].as_str().unwrap(),
                e["ref"].as_str().unwrap(),
                e["field"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "action/a.action/updates[0].expr",
        "transition/a->ghost/to",
        "node/lonely/ref",
    ] {
        assert!(
            fields.contains(&expected.to_string()),
            "{expected} missing from {fields:?}"
        );
    }
    let malformed = write(&dir, "m.yaml", "name: [unclosed");
    let o = braid(&["validate", &malformed]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("invalid YAML"), "{}", stderr(&o));
}
