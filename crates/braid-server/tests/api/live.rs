//! The live WebSockets against the real server, with tokio-tungstenite as
//! the client: `/api/runs/{id}/live` (every event once, in order, across a
//! late join, a reconnect and a stalled reader) and `/api/live` (run
//! changes, coalesced).

use crate::common::Server;
use braid_testkit::{MockLlm, Plan, openai_profile};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long any one frame may take to arrive before the test fails.
const FRAME_DEADLINE: Duration = Duration::from_secs(30);
const MAX_FRAME_EVENTS: usize = 1_000;
const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// A held LLM call, then `input.n` branches of `update_context`, joined.
fn gated_fan_out(url: &str) -> String {
    format!(
        r#"
name: gated_fan_out
initial_node: gate
nodes:
  - ref: gate
    action: ask
  - ref: branch
    action: {{ kind: update_context, updates: [ {{ path: state.i, expr: "_branch.index" }} ] }}
  - ref: join
    fan_in: all
    joins: gate
    merge: {{ source: i, target: state.is, strategy: append }}
    action: {{ kind: update_context, updates: [ {{ path: output.count, expr: "state.is.size()" }} ] }}
transitions:
  - {{ from: gate, to: branch, spawn_count: "input.n" }}
  - {{ from: branch, to: join }}
actions:
  - {{ ref: ask, kind: llm_call, prompt: p, model: m }}
prompt_specs:
  - {{ ref: p, template: "go" }}
model_profiles:
{}
"#,
        openai_profile(url, "")
    )
}

/// `input.n` branches, each an offline (`scripted`) LLM call answering
/// `input`-independent text of about 40 KiB: large events.
fn wordy_fan_out() -> String {
    format!(
        r#"
name: wordy_fan_out
initial_node: fan
nodes:
  - ref: fan
    action: {{ kind: update_context }}
  - ref: speak
    action: {{ kind: llm_call, prompt: p, model: wordy }}
  - ref: join
    fan_in: all
    joins: fan
    action: {{ kind: update_context, updates: [ {{ path: output.done, expr: "true" }} ] }}
transitions:
  - {{ from: fan, to: speak, spawn_count: "input.n" }}
  - {{ from: speak, to: join }}
prompt_specs:
  - {{ ref: p, template: "speak" }}
model_profiles:
  - ref: wordy
    provider: scripted
    model: wordy-v1
    cost_per_1k_output_tokens: 0.001
    script: {{ responses: [ "{}" ], usage: {{ input_tokens: 1, output_tokens: 2000 }} }}
"#,
        "lorem ipsum ".repeat(3400)
    )
}

fn ws_url(server: &Server, path: &str) -> String {
    format!("ws{}{path}", server.base.trim_start_matches("http"))
}

async fn connect(server: &Server, path: &str) -> Ws {
    let (ws, resp) = tokio_tungstenite::connect_async(ws_url(server, path))
        .await
        .unwrap_or_else(|e| panic!("connect {path}: {e}"));
    assert_eq!(resp.status().as_u16(), 101);
    ws
}

/// A client whose socket takes at most 64 KiB before the server must wait
/// (a fixed receive buffer turns off the kernel's autotuning, which would
/// otherwise absorb megabytes of a stalled stream).
async fn connect_small_buffer(server: &Server, path: &str) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let addr = server.base.trim_start_matches("http://").parse().unwrap();
    let tcp = socket.connect(addr).await.expect("connect");
    let (ws, resp) =
        tokio_tungstenite::client_async(ws_url(server, path), MaybeTlsStream::Plain(tcp))
            .await
            .unwrap_or_else(|e| panic!("handshake {path}: {e}"));
    assert_eq!(resp.status().as_u16(), 101);
    ws
}

/// The refusal of a handshake: status and JSON body.
async fn refused(server: &Server, path: &str) -> (u16, Value) {
    match tokio_tungstenite::connect_async(ws_url(server, path)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp.body().clone().unwrap_or_default();
            let body = serde_json::from_slice(&body).expect("a JSON error body");
            (resp.status().as_u16(), body)
        }
        Err(e) => panic!("{path}: expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("{path}: the upgrade was accepted"),
    }
}

/// What a client read from `/api/runs/{id}/live`.
#[derive(Default)]
struct Received {
    events: Vec<Value>,
    frames: usize,
    largest_frame_events: usize,
    largest_frame_bytes: usize,
    end: Option<Value>,
    close: Option<CloseCode>,
}

impl Received {
    /// Reads frames until the close, or until `stop_after` events were read.
    async fn read(&mut self, ws: &mut Ws, stop_after: Option<usize>) {
        loop {
            if stop_after.is_some_and(|n| self.events.len() >= n) {
                return;
            }
            let msg = tokio::time::timeout(FRAME_DEADLINE, ws.next())
                .await
                .expect("a frame within the deadline");
            match msg {
                Some(Ok(Message::Text(text))) => self.frame(text.as_str()),
                Some(Ok(Message::Close(frame))) => {
                    self.close = frame.map(|f| f.code);
                    return;
                }
                Some(Ok(other)) => panic!("unexpected message {other:?}"),
                Some(Err(e)) => panic!("the socket failed: {e}"),
                None => return,
            }
        }
    }

    fn frame(&mut self, text: &str) {
        assert!(self.end.is_none(), "nothing comes after `end`: {text:.200}");
        let v: Value = serde_json::from_str(text).expect("a JSON frame");
        match v["type"].as_str() {
            Some("events") => {
                let events = v["events"].as_array().expect("events");
                assert!(!events.is_empty(), "an empty frame was sent");
                assert!(events.len() <= MAX_FRAME_EVENTS, "{} events", events.len());
                assert!(text.len() <= MAX_FRAME_BYTES, "{} bytes", text.len());
                self.frames += 1;
                self.largest_frame_events = self.largest_frame_events.max(events.len());
                self.largest_frame_bytes = self.largest_frame_bytes.max(text.len());
                self.events.extend(events.iter().cloned());
            }
            Some("end") => self.end = Some(v),
            _ => panic!("unknown frame {text:.200}"),
        }
    }

    fn last_seq(&self) -> i64 {
        self.events.last().map_or(0, |e| e["seq"].as_i64().unwrap())
    }
}

/// Polls the event log (bounded) until `cond` holds for it.
async fn events_until(server: &Server, run: &str, cond: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = server
            .all_pages(&format!("/api/runs/{run}/events"), 1000)
            .await;
        if cond(&events) {
            return;
        }
        assert!(Instant::now() < deadline, "the event log never got there");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A server running `gated_fan_out` with `n` branches, its gate's LLM call
/// held until the test releases it: (the provider, the server, the run id).
async fn start_gated_fan_out(n: u64) -> (MockLlm, Server, String) {
    let llm = MockLlm::start(|_, _| Plan::ok("go").held()).await;
    let server = Server::start().await;
    let saved = server
        .post_raw(
            "/api/workflow-defs",
            "application/yaml",
            gated_fan_out(&llm.url),
        )
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    let started = server
        .post(
            "/api/workflow-defs/gated_fan_out/runs",
            &json!({ "input": { "n": n } }),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.text);
    let run = started.body["run_id"].as_str().unwrap().to_string();
    (llm, server, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_join_late_or_reconnect_receive_every_event_once_in_order() {
    let (llm, server, run) = start_gated_fan_out(1000).await;

    // The run is in its middle: the gate's call is in flight, held.
    events_until(&server, &run, |e| {
        e.iter().any(|e| e["kind"] == "node_started")
    })
    .await;
    let path = format!("/api/runs/{run}/live");
    let mut late = connect(&server, &path).await;
    let mut dropping = connect(&server, &format!("{path}?after=0")).await;
    let mut late_got = Received::default();
    late_got.read(&mut late, Some(2)).await;
    assert_eq!(late_got.events[0]["kind"], "workflow_started");
    llm.release(1);

    // The second client reads half the run, drops the connection, and
    // comes back with the last seq it saw.
    let mut first_half = Received::default();
    first_half.read(&mut dropping, Some(2000)).await;
    assert!(first_half.end.is_none());
    drop(dropping);
    let resume = first_half.last_seq();
    let mut again = connect(&server, &format!("{path}?after={resume}")).await;
    let mut second_half = Received::default();
    second_half.read(&mut again, None).await;
    late_got.read(&mut late, None).await;

    let stored = server
        .all_pages(&format!("/api/runs/{run}/events"), 1000)
        .await;
    let last_seq = stored.len() as i64;
    assert!(last_seq > 4000, "1,000 branches: {last_seq} events");
    assert_eq!(stored.last().unwrap()["kind"], "workflow_completed");
    let seqs: Vec<i64> = late_got
        .events
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=last_seq).collect::<Vec<_>>(),
        "1..=last, once each"
    );
    assert_eq!(
        late_got.events, stored,
        "the envelopes are those of /events"
    );
    let end = json!({ "type": "end", "status": "completed", "last_seq": last_seq });
    for got in [&late_got, &second_half] {
        assert_eq!(got.end.as_ref(), Some(&end));
        assert_eq!(got.close, Some(CloseCode::Normal));
    }
    let mut rejoined = first_half.events.clone();
    rejoined.extend(second_half.events.iter().cloned());
    assert_eq!(
        rejoined, stored,
        "a reconnect with the last seq loses nothing"
    );
    println!(
        "late client: {} events in {} frames (largest {} events, {} bytes)",
        late_got.events.len(),
        late_got.frames,
        late_got.largest_frame_events,
        late_got.largest_frame_bytes
    );

    // The run has ended: `after` = its last seq is `end` at once.
    let mut done = connect(&server, &format!("{path}?after={last_seq}")).await;
    let mut nothing_left = Received::default();
    nothing_left.read(&mut done, None).await;
    assert!(nothing_left.events.is_empty());
    assert_eq!(nothing_left.end.as_ref(), Some(&end));
    assert_eq!(nothing_left.close, Some(CloseCode::Normal));

    // Refusals come before the upgrade, as JSON errors naming the culprit.
    let (status, body) = refused(&server, "/api/runs/run_nope/live").await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("NOT_FOUND")));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("run_nope")
    );
    for bad in ["abc", "-1", "1.5"] {
        let (status, body) = refused(&server, &format!("{path}?after={bad}")).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("MALFORMED_BODY"))
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`after`"),
            "{body}"
        );
    }
    let (status, body) = refused(&server, &format!("{path}?afterr=1")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("MALFORMED_BODY"))
    );
    let plain = server.get(&path).await;
    plain.error(400, "MALFORMED_BODY");
    assert!(plain.message().contains("WebSocket"), "{}", plain.text);
    server
        .get("/api/live?project=nope")
        .await
        .error(404, "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_nothing_does_not_grow_the_server_memory() {
    let server = Server::start().await;
    let saved = server
        .post_raw("/api/workflow-defs", "application/yaml", wordy_fan_out())
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    let run = server
        .post(
            "/api/workflow-defs/wordy_fan_out/runs?wait=true",
            &json!({ "input": { "n": 1500 } }),
        )
        .await;
    assert_eq!(run.body["status"], "completed", "{}", run.text);
    let id = run.body["id"].as_str().unwrap();
    let last_seq = run.body["last_seq"].as_i64().unwrap();

    // A client connects for the whole log and reads nothing while the server
    // pushes as much as the socket takes: the stall lasts until the server's
    // memory has stopped moving for 500 ms (bounded).
    let before = vm_rss_kib();
    let mut stalled = connect_small_buffer(&server, &format!("/api/runs/{id}/live")).await;
    let mut series = vec![before / 1024];
    let (mut peak, mut steady_since) = (before, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(20);
    while steady_since.elapsed() < Duration::from_millis(500) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = vm_rss_kib();
        series.push(now / 1024);
        if now > peak + 1024 {
            steady_since = Instant::now();
        }
        peak = peak.max(now);
    }
    println!("VmRSS MiB while stalled: {series:?}");
    let mut got = Received::default();
    got.read(&mut stalled, None).await;
    let bytes: usize = got.events.iter().map(|e| e.to_string().len()).sum();
    let growth_kib = peak.saturating_sub(before);
    println!(
        "stalled client: {} events, {} MiB of JSON in {} frames; server process VmRSS {} MiB before, peak {} MiB while stalled (+{} KiB)",
        got.events.len(),
        bytes / (1024 * 1024),
        got.frames,
        before / 1024,
        peak / 1024,
        growth_kib
    );
    assert_eq!(
        got.events.len() as i64,
        last_seq,
        "every event, after the stall"
    );
    assert_eq!(got.end.as_ref().unwrap()["last_seq"], json!(last_seq));
    assert!(
        bytes > 48 * 1024 * 1024,
        "a log large enough to tell: {bytes}"
    );
    assert!(
        (growth_kib as usize) * 1024 < bytes / 2,
        "the server buffered for the stalled socket: +{growth_kib} KiB for a {bytes}-byte log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_changes_are_sent_when_runs_start_and_end_coalesced() {
    let server = Server::start().await;
    let saved = server
        .post_raw("/api/workflow-defs", "application/yaml", wordy_fan_out())
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    let mut all = connect(&server, "/api/live").await;
    let mut other_workflow = connect(&server, "/api/live?workflow=not_this_one").await;

    let t0 = Instant::now();
    let run = server
        .post(
            "/api/workflow-defs/wordy_fan_out/runs?wait=true",
            &json!({ "input": { "n": 300 } }),
        )
        .await;
    assert_eq!(run.body["status"], "completed", "{}", run.text);
    let id = run.body["id"].as_str().unwrap();
    let mut changes = Vec::new();
    while changes
        .last()
        .is_none_or(|c: &Value| c["run"]["status"] == "running")
    {
        let msg = tokio::time::timeout(FRAME_DEADLINE, all.next())
            .await
            .expect("a change within the deadline")
            .expect("open")
            .expect("a frame");
        let Message::Text(text) = msg else {
            panic!("unexpected {msg:?}")
        };
        changes.push(serde_json::from_str::<Value>(text.as_str()).unwrap());
    }
    let elapsed = t0.elapsed();
    for c in &changes {
        assert_eq!(c["type"], "run");
        assert_eq!(c["run"]["id"], id, "{c}");
        assert_eq!(c["run"]["workflow"]["name"], "wordy_fan_out");
    }
    assert_eq!(changes[0]["run"]["status"], "running");
    let last = changes.last().unwrap();
    assert_eq!(last["run"]["status"], "completed");
    assert_eq!(last["run"]["usage"], run.body["usage"]);
    assert_eq!(last["run"]["ended_at"], run.body["ended_at"]);
    assert_eq!(last["run"]["parent_run_id"], Value::Null);
    // 300 calls changed the usage 300 times; one message per 250 ms at most.
    let periods = (elapsed.as_millis() / 250) as usize + 2;
    assert!(
        changes.len() <= periods,
        "{} messages in {elapsed:?}",
        changes.len()
    );
    println!("{} run changes in {elapsed:?}", changes.len());
    for pair in changes.windows(2) {
        assert_ne!(
            (&pair[0]["run"]["status"], &pair[0]["run"]["usage"]),
            (&pair[1]["run"]["status"], &pair[1]["run"]["usage"]),
            "only real changes are sent"
        );
    }

    // The filtered socket saw nothing: a ping is answered before any change.
    other_workflow
        .send(Message::Ping(vec![1].into()))
        .await
        .unwrap();
    let first = tokio::time::timeout(FRAME_DEADLINE, other_workflow.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(first, Message::Pong(_)), "{first:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_live_sockets_as_going_away() {
    let (llm, mut server, run) = start_gated_fan_out(3).await;
    let mut events = connect(&server, &format!("/api/runs/{run}/live")).await;
    let mut runs = connect(&server, "/api/live").await;
    let mut got = Received::default();
    got.read(&mut events, Some(1)).await;

    let serving = server.shutdown();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("shutdown does not wait for open sockets")
        .unwrap()
        .unwrap();
    got.read(&mut events, None).await;
    assert_eq!(got.close, Some(CloseCode::Away));
    let mut closed = None;
    while let Some(Ok(msg)) = tokio::time::timeout(FRAME_DEADLINE, runs.next())
        .await
        .unwrap()
    {
        if let Message::Close(frame) = msg {
            closed = frame.map(|f| f.code);
            break;
        }
    }
    assert_eq!(closed, Some(CloseCode::Away));
    llm.release(1);
}
