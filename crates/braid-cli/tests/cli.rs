//! The `braid` binary: demo, run, validate, runs tail — data on stdout,
//! diagnostics on stderr, exit codes by outcome.

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

/// A TCP proxy in front of `target` whose connections the test can cut.
struct Proxy {
    addr: std::net::SocketAddr,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let list = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut server = tokio::net::TcpStream::connect(target).await.unwrap();
                let piping = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                list.lock().unwrap().push(piping.abort_handle());
            }
        });
        Proxy { addr, connections }
    }

    fn accepted(&self) -> usize {
        self.connections.lock().unwrap().len()
    }

    /// Cuts every open connection (both sockets are dropped).
    fn cut(&self) {
        for c in self.connections.lock().unwrap().iter() {
            c.abort();
        }
    }
}

/// Polls `cond` (bounded) until it holds.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_tail_follows_the_live_stream_across_a_dropped_connection() {
    use braid_testkit::{MockLlm, Plan, openai_profile};
    use tokio::io::AsyncBufReadExt;

    let llm = MockLlm::start(|_, _| Plan::ok("go").held()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = braid_store_sqlite::SqliteStore::open_path(&dir.path().join("api.db"))
        .await
        .unwrap();
    let engine = braid_runtime::Engine::start(
        std::sync::Arc::new(store),
        braid_runtime::Options::default(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The proxy below forwards requests under its own address (another port).
    let mut state = braid_server::AppState::new(engine.clone());
    state.access.allowed_hosts = vec!["127.0.0.1".into()];
    let serving = tokio::spawn(braid_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let base = format!("http://{server_addr}");
    let bundle = format!(
        r#"
name: gated
initial_node: gate
nodes:
  - {{ ref: gate, action: {{ kind: llm_call, prompt: p, model: m }} }}
  - {{ ref: branch, action: {{ kind: update_context, updates: [ {{ path: state.i, expr: "_branch.index" }} ] }} }}
  - {{ ref: join, fan_in: all, joins: gate, merge: {{ source: i, target: state.is, strategy: append }}, action: {{ kind: update_context }} }}
transitions:
  - {{ from: gate, to: branch, spawn_count: 20 }}
  - {{ from: branch, to: join }}
prompt_specs:
  - {{ ref: p, template: "go" }}
model_profiles:
{}
"#,
        openai_profile(&llm.url, "")
    );
    let saved = http
        .post(format!("{base}/api/workflow-defs"))
        .header("content-type", "application/yaml")
        .body(bundle)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status().as_u16(), 201);
    let started: serde_json::Value = http
        .post(format!("{base}/api/workflow-defs/gated/runs"))
        .json(&serde_json::json!({ "input": {} }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run = started["run_id"].as_str().unwrap().to_string();

    let proxy = Proxy::start(server_addr).await;
    let via_proxy = format!("http://{}", proxy.addr);
    let mut tail = tokio::process::Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(["runs", "tail", &run, "--json", "--server", &via_proxy])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let reading = {
        let printed = printed.clone();
        let mut lines = tokio::io::BufReader::new(tail.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let event = serde_json::from_str(&line).expect("--json prints JSON lines");
                printed.lock().unwrap().push(event);
            }
        })
    };
    // The run waits at its gate; the stream is cut under `tail`, which
    // reconnects from the last seq it printed.
    until("tail printed node_started", || {
        printed
            .lock()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "node_started")
    })
    .await;
    proxy.cut();
    until("tail reconnected", || proxy.accepted() >= 2).await;
    llm.release(1);
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), tail.wait())
        .await
        .expect("tail ends with the run")
        .unwrap();
    reading.await.unwrap();
    let mut stderr_text = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut tail.stderr.take().unwrap(), &mut stderr_text)
        .await
        .unwrap();
    assert!(status.success(), "tail: {status:?}\n{stderr_text}");
    assert!(stderr_text.contains("reconnecting"), "{stderr_text}");

    let stored: serde_json::Value = http
        .get(format!("{base}/api/runs/{run}/events?limit=1000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored = stored["items"].as_array().unwrap().clone();
    assert_eq!(stored.last().unwrap()["kind"], "workflow_completed");
    assert_eq!(
        *printed.lock().unwrap(),
        stored,
        "every event once, in order, across the reconnect"
    );

    // `--after` starts later; an unknown run is an error naming the code.
    let last = stored.len();
    let after = (last - 3).to_string();
    let o = braid(&["runs", "tail", &run, "--after", &after, "--server", &base]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("workflow_completed"), "{text}");
    let o = braid(&["runs", "tail", "run_nope", "--server", &base]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("NOT_FOUND"), "{}", stderr(&o));

    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    engine.shutdown(std::time::Duration::from_secs(5)).await;
}
