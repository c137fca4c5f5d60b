//! Telemetry of `braid serve` as a real process over a SQLite file
//! (docs/observability.md):
//!
//! - `/metrics`, parsed with a Prometheus text-format parser
//!   (`prometheus-parse`), counts exactly what was run: runs by status (a
//!   failed one too), attempts by outcome (a retry too), LLM requests, tokens
//!   and cost by model against the local OpenAI-format mock, every event
//!   written; histograms render as histograms with their fixed buckets; no
//!   label holds a run id.
//! - With `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an OTLP/HTTP receiver in
//!   this test, a run with a fan-out and a child run arrives as one trace:
//!   run, visit and attempt spans with their parent links, the child run's
//!   span under the calling node's visit, GenAI attributes on LLM attempts.

use axum::body::Bytes;
use braid_testkit::{MockLlm, Plan, openai_profile};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prometheus_parse::{Sample, Scrape, Value as Metric};
use prost::Message as _;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `braid serve` child process; killed when dropped.
struct Braid {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Braid {
    /// Starts `braid serve --db DB --bind 127.0.0.1:0` with `env` set and
    /// waits for its `braid listening on http://ADDR` line.
    async fn start(db: &Path, env: &[(&str, &str)]) -> Braid {
        let mut child = Command::new(env!("CARGO_BIN_EXE_braid"))
            .arg("serve")
            .arg("--db")
            .arg(db)
            .args(["--bind", "127.0.0.1:0"])
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("BRAID_TELEMETRY__OTLP_ENDPOINT")
            .env_remove("DATABASE_URL")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn `braid serve`");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[braid] {line}");
                if let Some(rest) = line.strip_prefix("braid listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().into());
                }
            }
        });
        let base = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .expect("`braid serve` reports its address")
            .expect("the address line");
        // reqwest is built without a crypto provider (docs/decisions.md).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Braid {
            child,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await;
        let resp = resp.expect("GET");
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json().await.expect("a JSON body")
    }

    async fn save(&self, bundle: String) {
        let resp = self
            .http
            .post(format!("{}/api/workflow-defs", self.base))
            .header("content-type", "application/yaml")
            .body(bundle)
            .send()
            .await
            .expect("POST a bundle");
        let status = resp.status();
        assert_eq!(status, 201, "saving: {}", resp.text().await.unwrap());
    }

    /// Starts a run and waits for its end; returns the run body.
    async fn run(&self, workflow: &str) -> Value {
        let resp = self
            .http
            .post(format!(
                "{}/api/workflow-defs/{workflow}/runs?wait=true",
                self.base
            ))
            .json(&json!({ "input": {} }))
            .send()
            .await
            .expect("start a run");
        assert_eq!(resp.status(), 201);
        resp.json().await.expect("the run")
    }

    /// Starts a run; returns its id at once.
    async fn start_run(&self, workflow: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/api/workflow-defs/{workflow}/runs", self.base))
            .json(&json!({ "input": {} }))
            .send()
            .await
            .expect("start a run");
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.expect("the run id");
        body["run_id"].as_str().expect("run_id").to_string()
    }

    /// Every item of a list.
    async fn all(&self, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page = self.get(&format!("{path}{sep}limit=1000")).await;
        assert!(page["next_cursor"].is_null(), "one page is enough here");
        page["items"].as_array().expect("items").clone()
    }

    /// SIGKILL: nothing is flushed.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit (traces are flushed before it).
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let st = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(st.expect("kill -TERM").success());
        let status = self.child.wait().expect("wait for braid serve");
        assert!(status.success(), "braid serve exited with {status}");
    }
}

impl Drop for Braid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-node workflow calling the mock with `prompt`.
fn one_call(name: &str, prompt: &str, retry: &str, url: &str) -> String {
    format!(
        r#"
name: {name}
initial_node: call
nodes:
  - ref: call
    action: {{ kind: llm_call, prompt: p, model: m, execution: {{ timeout_ms: 10000, retry_policy: {retry} }} }}
    output_mapping: {{ output.text: "result.text" }}
prompt_specs:
  - {{ ref: p, template: "{prompt}" }}
model_profiles:
{}
"#,
        openai_profile(url, "")
    )
}

/// The samples of `metric` whose labels include every pair of `labels`.
fn samples<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect()
}

/// The one value of a counter or gauge (0 when absent, as Prometheus reads it).
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found = samples(scrape, metric, labels);
    assert!(
        found.len() <= 1,
        "{metric}{labels:?}: {} series",
        found.len()
    );
    match found.first().map(|s| &s.value) {
        None => 0.0,
        Some(Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v)) => *v,
        Some(other) => panic!("{metric}: not a counter or gauge: {other:?}"),
    }
}

/// A histogram's bucket bounds (without +Inf) and its count.
fn histogram(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> (Vec<f64>, f64) {
    let found = samples(scrape, metric, labels);
    assert_eq!(found.len(), 1, "{metric}{labels:?} is one histogram series");
    let Metric::Histogram(buckets) = &found[0].value else {
        panic!("{metric} renders as a histogram, not {:?}", found[0].value);
    };
    let count = buckets
        .iter()
        .find(|b| b.less_than.is_infinite())
        .expect("a +Inf bucket")
        .count;
    let bounds = buckets
        .iter()
        .map(|b| b.less_than)
        .filter(|b| b.is_finite())
        .collect();
    (bounds, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_was_run() {
    // `flaky` fails once with 503 (retried), `doomed` always gets 400.
    let flaky_calls = Arc::new(AtomicUsize::new(0));
    let calls = flaky_calls.clone();
    let mock = MockLlm::start(move |_, body| {
        let prompt = body["messages"].to_string();
        if prompt.contains("doomed") {
            Plan::status(400)
        } else if prompt.contains("flaky") && calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Plan::status(503)
        } else {
            Plan::ok(r#"{"text": "fine"}"#)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let braid = Braid::start(&dir.path().join("braid.db"), &[]).await;
    let once = "{ max_attempts: 1 }";
    let twice = "{ max_attempts: 2, initial_delay_ms: 10 }";
    braid
        .save(one_call("greet", "hello", once, &mock.url))
        .await;
    braid
        .save(one_call("flaky", "flaky", twice, &mock.url))
        .await;
    braid
        .save(one_call("doomed", "doomed", once, &mock.url))
        .await;
    let mut runs = Vec::new();
    for (workflow, status) in [
        ("greet", "completed"),
        ("greet", "completed"),
        ("flaky", "completed"),
        ("doomed", "failed"),
    ] {
        let run = braid.run(workflow).await;
        assert_eq!(run["status"], status, "{workflow}: {run}");
        runs.push(run);
    }
    let doomed_code = runs[3]["error"]["code"].as_str().expect("an error code");
    assert_eq!(doomed_code, "INVALID_REQUEST");

    let resp = braid
        .http
        .get(format!("{}/metrics", braid.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4",
        "the Prometheus text format"
    );
    let text = resp.text().await.unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");

    // Runs, by workflow and status.
    let v = |m: &str, l: &[(&str, &str)]| value(&scrape, m, l);
    assert_eq!(v("braid_runs_started_total", &[("workflow", "greet")]), 2.0);
    assert_eq!(v("braid_runs_started_total", &[("workflow", "flaky")]), 1.0);
    assert_eq!(
        v("braid_runs_started_total", &[("workflow", "doomed")]),
        1.0
    );
    let ended = "braid_runs_ended_total";
    assert_eq!(
        v(ended, &[("workflow", "greet"), ("status", "completed")]),
        2.0
    );
    assert_eq!(
        v(ended, &[("workflow", "flaky"), ("status", "completed")]),
        1.0
    );
    assert_eq!(
        v(ended, &[("workflow", "doomed"), ("status", "failed")]),
        1.0
    );
    assert_eq!(
        v(ended, &[("workflow", "doomed"), ("status", "completed")]),
        0.0
    );
    assert_eq!(v("braid_runs_live", &[]), 0.0);

    // Attempts, by outcome; errors by code.
    let attempts = |workflow: &str, outcome: &str| {
        v(
            "braid_node_attempts_total",
            &[
                ("workflow", workflow),
                ("node", "call"),
                ("kind", "llm_call"),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(attempts("greet", "completed"), 2.0);
    assert_eq!(attempts("flaky", "retrying"), 1.0);
    assert_eq!(attempts("flaky", "completed"), 1.0);
    assert_eq!(attempts("doomed", "failed"), 1.0);
    assert_eq!(attempts("greet", "failed"), 0.0);
    assert_eq!(v("braid_errors_total", &[("code", "UNAVAILABLE")]), 1.0);
    assert_eq!(v("braid_errors_total", &[("code", doomed_code)]), 1.0);

    // LLM requests, tokens and cost of the model (12 in, 3 out per answer).
    let model = [("provider", "openai_compatible"), ("model", "gpt-test")];
    let with = |extra: (&'static str, &'static str)| {
        let mut l = model.to_vec();
        l.push(extra);
        l
    };
    assert_eq!(mock.requests().len(), 5);
    assert_eq!(v("braid_llm_requests_total", &with(("code", "OK"))), 3.0);
    assert_eq!(
        v("braid_llm_requests_total", &with(("code", "UNAVAILABLE"))),
        1.0
    );
    assert_eq!(
        v(
            "braid_llm_requests_total",
            &with(("code", "INVALID_REQUEST"))
        ),
        1.0
    );
    assert_eq!(v("braid_llm_tokens_total", &with(("type", "input"))), 36.0);
    assert_eq!(v("braid_llm_tokens_total", &with(("type", "output"))), 9.0);
    let cost = v("braid_llm_cost_usd_total", &model);
    assert!(
        (cost - (36.0 * 0.5 + 9.0 * 1.5) / 1000.0).abs() < 1e-9,
        "{cost}"
    );

    // Every event written, and nothing queued once all is done.
    let mut events = 0;
    for run in &runs {
        let id = run["id"].as_str().unwrap();
        events += braid.all(&format!("/api/runs/{id}/events")).await.len();
    }
    assert_eq!(v("braid_events_written_total", &[]), events as f64);
    assert_eq!(v("braid_tasks_queued", &[]), 0.0);

    // Histograms with their fixed buckets, counting what happened.
    let buckets = |name: &str| {
        braid_runtime::HISTOGRAM_BUCKETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b.to_vec())
            .unwrap()
    };
    let h = |m: &str, l: &[(&str, &str)]| histogram(&scrape, m, l);
    let run_duration = "braid_run_duration_seconds";
    let (bounds, count) = h(
        run_duration,
        &[("workflow", "greet"), ("status", "completed")],
    );
    assert_eq!((bounds, count), (buckets(run_duration), 2.0));
    let attempt = "braid_node_attempt_duration_seconds";
    assert_eq!(h(attempt, &[("kind", "llm_call")]), (buckets(attempt), 5.0));
    let request = "braid_llm_request_duration_seconds";
    assert_eq!(h(request, &model), (buckets(request), 5.0));
    let limiter = "braid_llm_limiter_wait_seconds";
    assert_eq!(h(limiter, &model), (buckets(limiter), 5.0));
    let queue = "braid_task_queue_wait_seconds";
    assert_eq!(h(queue, &[]), (buckets(queue), 5.0));
    let commit = "braid_store_commit_duration_seconds";
    let (bounds, commits) = h(commit, &[]);
    assert_eq!(bounds, buckets(commit));
    assert!(commits >= 4.0, "at least one commit per run: {commits}");
    assert!(!text.contains("quantile="), "no summaries:\n{text}");

    // No label value is a run id (nor holds one).
    let ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|id| id.starts_with("run_")), "{ids:?}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let labels = line.split_once('{').map_or("", |(_, rest)| rest);
        assert!(!labels.contains("run_"), "a run id in a label: {line}");
        assert!(!labels.contains("tk_"), "a token id in a label: {line}");
    }
    braid.terminate();
}

/// What the OTLP receiver got, and a signal for each request.
#[derive(Default)]
struct Received {
    spans: Mutex<Vec<Span>>,
    requests: AtomicUsize,
}

/// An OTLP/HTTP trace receiver on 127.0.0.1:0; returns its base URL.
async fn otlp_receiver(received: Arc<Received>) -> String {
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let received = received.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP request");
                let mut spans = received.spans.lock().unwrap();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        spans.extend(scope.spans);
                    }
                }
                received.requests.fetch_add(1, Ordering::SeqCst);
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn text<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attribute(span, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn int(span: &Span, key: &str) -> Option<i64> {
    match attribute(span, key) {
        Some(any_value::Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_follow_runs_fan_outs_and_child_runs() {
    let mock = MockLlm::start(|_, _| Plan::ok(r#"{"text": "fine"}"#)).await;
    let received = Arc::new(Received::default());
    let endpoint = otlp_receiver(received.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let braid = Braid::start(
        &dir.path().join("braid.db"),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
    )
    .await;
    braid
        .save(one_call("helper", "help", "{ max_attempts: 1 }", &mock.url))
        .await;
    let parent = format!(
        r#"
name: parent
initial_node: split
nodes:
  - ref: split
    action: {{ kind: update_context, updates: [ {{ path: state.n, expr: "2" }} ] }}
  - ref: judge
    action: {{ kind: llm_call, prompt: p, model: m }}
    output_mapping: {{ state.text: "result.text" }}
  - ref: gather
    fan_in: all
    joins: split
    merge: {{ source: text, target: state.texts, strategy: append }}
    action: {{ kind: update_context, updates: [ {{ path: state.k, expr: "size(state.texts)" }} ] }}
  - ref: delegate
    action: {{ kind: workflow_call, workflow: helper }}
    output_mapping: {{ output.child: "result" }}
transitions:
  - {{ from: split, to: judge, spawn_count: 2 }}
  - {{ from: judge, to: gather }}
  - {{ from: gather, to: delegate }}
prompt_specs:
  - {{ ref: p, template: "judge {{{{_branch.index}}}}" }}
model_profiles:
{}
"#,
        openai_profile(&mock.url, "")
    );
    braid.save(parent).await;
    let run = braid.run("parent").await;
    assert_eq!(run["status"], "completed", "{run}");
    let run_id = run["id"].as_str().unwrap().to_string();
    let children = braid.all(&format!("/api/runs?parent={run_id}")).await;
    assert_eq!(children.len(), 1, "{children:?}");
    let child_id = children[0]["id"].as_str().unwrap().to_string();
    let parent_tokens = braid.all(&format!("/api/runs/{run_id}/tokens")).await;
    let child_tokens = braid.all(&format!("/api/runs/{child_id}/tokens")).await;
    // Shutting down flushes every span; the receiver has them once it exits.
    braid.terminate();
    assert!(
        received.requests.load(Ordering::SeqCst) > 0,
        "no export arrived"
    );
    let spans = received.spans.lock().unwrap().clone();

    let attempts: i64 = parent_tokens
        .iter()
        .chain(&child_tokens)
        .map(|t| t["attempts"].as_i64().unwrap())
        .sum();
    let visits = parent_tokens.len() + child_tokens.len();
    assert_eq!(
        spans.len(),
        2 + visits + attempts as usize,
        "run, visit and attempt spans"
    );
    let trace = &spans[0].trace_id;
    assert!(spans.iter().all(|s| &s.trace_id == trace), "one trace");
    let of_run = |id: &str| -> Vec<&Span> {
        spans
            .iter()
            .filter(|s| text(s, "braid.run_id") == Some(id))
            .collect()
    };
    let run_span = |id: &str| -> Span {
        let found: Vec<&Span> = of_run(id)
            .into_iter()
            .filter(|s| s.name.starts_with("run "))
            .collect();
        assert_eq!(found.len(), 1, "one run span of {id}");
        found[0].clone()
    };
    let parent_run = run_span(&run_id);
    let child_run = run_span(&child_id);
    assert_eq!(parent_run.name, "run parent");
    assert!(
        parent_run.parent_span_id.is_empty(),
        "the root run has no parent"
    );

    // A visit span per token, under its run's span; an attempt span per
    // attempt, under its visit's span.
    let mut visits_by_token: HashMap<(String, String), Span> = HashMap::new();
    for (id, tokens, run_span) in [
        (&run_id, &parent_tokens, &parent_run),
        (&child_id, &child_tokens, &child_run),
    ] {
        let spans = of_run(id);
        let visits: Vec<&&Span> = spans
            .iter()
            .filter(|s| text(s, "braid.token_id").is_some() && int(s, "braid.attempt").is_none())
            .collect();
        assert_eq!(visits.len(), tokens.len(), "a visit span per token of {id}");
        for t in tokens.iter() {
            let token = t["id"].as_str().unwrap();
            let visit = visits
                .iter()
                .find(|s| text(s, "braid.token_id") == Some(token))
                .unwrap_or_else(|| panic!("a visit span of {token}"));
            assert_eq!(visit.name, t["node"].as_str().unwrap());
            assert_eq!(text(visit, "braid.node"), t["node"].as_str());
            assert_eq!(
                visit.parent_span_id, run_span.span_id,
                "{token} under its run"
            );
            assert!(visit.start_time_unix_nano <= visit.end_time_unix_nano);
            assert!(run_span.start_time_unix_nano <= visit.start_time_unix_nano);
            visits_by_token.insert((id.to_string(), token.to_string()), (**visit).clone());
            let attempts = spans
                .iter()
                .filter(|s| {
                    int(s, "braid.attempt").is_some() && text(s, "braid.token_id") == Some(token)
                })
                .count();
            assert_eq!(attempts as i64, t["attempts"].as_i64().unwrap(), "{t}");
        }
        for attempt in spans.iter().filter(|s| int(s, "braid.attempt").is_some()) {
            let token = text(attempt, "braid.token_id").expect("an attempt names its token");
            let visit = &visits_by_token[&(id.to_string(), token.to_string())];
            assert_eq!(
                attempt.parent_span_id, visit.span_id,
                "attempt under its visit"
            );
            assert_eq!(int(attempt, "braid.attempt"), Some(1));
            assert_eq!(text(attempt, "braid.node"), text(visit, "braid.node"));
        }
    }

    // The fan-out: two judge visits, each with an LLM attempt that carries
    // the GenAI attributes.
    let judges: Vec<&Span> = of_run(&run_id)
        .into_iter()
        .filter(|s| text(s, "braid.node") == Some("judge") && int(s, "braid.attempt").is_some())
        .collect();
    assert_eq!(judges.len(), 2, "one LLM attempt per branch");
    for j in &judges {
        assert_eq!(text(j, "gen_ai.provider.name"), Some("openai_compatible"));
        assert_eq!(text(j, "gen_ai.request.model"), Some("gpt-test"));
        assert_eq!(int(j, "gen_ai.usage.input_tokens"), Some(12));
        assert_eq!(int(j, "gen_ai.usage.output_tokens"), Some(3));
    }
    let mut by_node: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &parent_tokens {
        *by_node.entry(t["node"].as_str().unwrap()).or_default() += 1;
    }
    assert_eq!(by_node["judge"], 2);

    // The child run's span sits under the calling node's visit.
    let delegate = parent_tokens
        .iter()
        .find(|t| t["node"] == "delegate")
        .expect("the delegate token");
    let calling = &visits_by_token[&(run_id.clone(), delegate["id"].as_str().unwrap().into())];
    assert_eq!(child_run.parent_span_id, calling.span_id);
    assert_eq!(child_run.trace_id, parent_run.trace_id);
    assert!(calling.start_time_unix_nano <= child_run.start_time_unix_nano);
    assert!(child_run.end_time_unix_nano <= calling.end_time_unix_nano);
}

/// Polls `cond` every 20 ms for up to `within`.
async fn until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < end, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_recovered_after_a_crash_continues_its_trace() {
    // The first call never answers (the process is killed during it); the
    // one redelivered after the restart does.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let mock = MockLlm::start(move |_, _| match seen.fetch_add(1, Ordering::SeqCst) {
        0 => Plan::never(),
        _ => Plan::ok(r#"{"text": "late"}"#),
    })
    .await;
    let received = Arc::new(Received::default());
    let endpoint = otlp_receiver(received.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("braid.db");
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];
    let first = Braid::start(&db, &env).await;
    let slow = format!(
        r#"
name: slow
initial_node: prep
nodes:
  - ref: prep
    action: {{ kind: update_context, updates: [ {{ path: state.x, expr: "1" }} ] }}
  - ref: call
    action: {{ kind: llm_call, prompt: p, model: m, execution: {{ retry_policy: {{ max_attempts: 1 }} }} }}
transitions:
  - {{ from: prep, to: call }}
prompt_specs:
  - {{ ref: p, template: "slow" }}
model_profiles:
{}
"#,
        openai_profile(&mock.url, "")
    );
    first.save(slow).await;
    let run_id = first.start_run("slow").await;
    // The first process exports the `prep` visit (its batch goes out within
    // seconds) while the call is in flight; then it dies without a flush.
    let exported_prep = || {
        let spans = received.spans.lock().unwrap();
        spans.iter().any(|s| text(s, "braid.node") == Some("prep"))
    };
    until(
        "the prep spans are exported",
        Duration::from_secs(20),
        exported_prep,
    )
    .await;
    until("the call is in flight", Duration::from_secs(20), || {
        calls.load(Ordering::SeqCst) == 1
    })
    .await;
    let before = received.spans.lock().unwrap().len();
    first.kill();

    let second = Braid::start(&db, &env).await;
    let mut status = Value::Null;
    let end = Instant::now() + Duration::from_secs(20);
    while status != "completed" {
        assert!(
            Instant::now() < end,
            "the recovered run did not complete: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        status = second.get(&format!("/api/runs/{run_id}")).await["status"].clone();
    }
    second.terminate();
    let spans = received.spans.lock().unwrap().clone();
    assert!(
        spans.len() > before,
        "the second process exported spans too"
    );
    let trace = &spans[0].trace_id;
    assert!(
        spans.iter().all(|s| &s.trace_id == trace),
        "both processes' spans are one trace"
    );
    let find = |pred: &dyn Fn(&Span) -> bool| -> Span {
        let found: Vec<&Span> = spans.iter().filter(|s| pred(s)).collect();
        assert_eq!(found.len(), 1, "exactly one such span");
        found[0].clone()
    };
    let run = find(&|s| s.name == "run slow");
    let prep =
        find(&|s| text(s, "braid.node") == Some("prep") && int(s, "braid.attempt").is_none());
    let call =
        find(&|s| text(s, "braid.node") == Some("call") && int(s, "braid.attempt").is_none());
    let attempt =
        find(&|s| text(s, "braid.node") == Some("call") && int(s, "braid.attempt") == Some(1));
    assert_eq!(text(&run, "braid.run_id"), Some(run_id.as_str()));
    // Made by the first process, parented by a span the second one made.
    assert_eq!(prep.parent_span_id, run.span_id);
    assert_eq!(call.parent_span_id, run.span_id);
    assert_eq!(attempt.parent_span_id, call.span_id);
    assert_eq!(int(&attempt, "gen_ai.usage.input_tokens"), Some(12));
}
