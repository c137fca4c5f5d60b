//! Test support shared by the integration tests of several crates: a local
//! HTTP server that speaks the OpenAI Chat Completions wire format, answers
//! each request according to a plan, and records what it saw (bodies, times,
//! calls in flight, requests the client aborted). Started with
//! [`MockLlm::start_limited`] it also enforces a provider's request rate
//! limit, answering 429 as a real provider does.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// What the mock answers to one request.
#[derive(Clone)]
pub struct Plan {
    /// `None`: never answer (until the client gives up).
    pub delay_ms: Option<u64>,
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
    /// Answer only once the test lets it go ([`MockLlm::release`]).
    pub held: bool,
}

impl Plan {
    pub fn ok(content: &str) -> Plan {
        Plan {
            delay_ms: Some(0),
            status: 200,
            headers: vec![],
            body: chat_completion(content),
            held: false,
        }
    }
    pub fn status(status: u16) -> Plan {
        Plan {
            delay_ms: Some(0),
            status,
            headers: vec![],
            body: json!({ "error": { "message": format!("mock status {status}"), "type": "server_error" } }),
            held: false,
        }
    }
    pub fn after(mut self, ms: u64) -> Plan {
        self.delay_ms = Some(ms);
        self
    }
    pub fn never() -> Plan {
        Plan {
            delay_ms: None,
            status: 200,
            headers: vec![],
            body: Value::Null,
            held: false,
        }
    }
    /// Waits for [`MockLlm::release`] before answering.
    pub fn held(mut self) -> Plan {
        self.held = true;
        self
    }
    pub fn header(mut self, k: &'static str, v: &str) -> Plan {
        self.headers.push((k, v.into()));
        self
    }
}

/// A realistic Chat Completions body.
pub fn chat_completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-test",
        "choices": [ { "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" } ],
        "usage": { "prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15 }
    })
}

type Planner = dyn Fn(usize, &Value) -> Plan + Send + Sync;

/// A provider's requests-per-minute limit as SPEC §4 defines it, written
/// apart from the engine's limiter so that one checks the other: a bucket
/// of capacity R, full at start, refilled continuously at R/60 per second;
/// a request finding less than one token in it is refused.
pub struct RateBucket {
    capacity: f64,
    level: f64,
    at: std::time::Instant,
}

impl RateBucket {
    /// Full, `per_minute` requests.
    pub fn new(per_minute: u32) -> RateBucket {
        RateBucket {
            capacity: per_minute as f64,
            level: per_minute as f64,
            at: std::time::Instant::now(),
        }
    }

    /// Takes a token if there is one; else says how many there were.
    pub fn admit(&mut self) -> Result<(), f64> {
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.capacity / 60.0;
        self.level = (self.level + refill).min(self.capacity);
        self.at = now;
        // A millionth of a token for floating-point rounding: a client that
        // waits exactly for its token must not be refused.
        if self.level >= 1.0 - 1e-6 {
            self.level -= 1.0;
            Ok(())
        } else {
            Err(self.level)
        }
    }
}

/// What the mock has seen.
pub struct MockState {
    /// Requests answered by the plan (a refused one is not among them).
    pub requests: Mutex<Vec<(std::time::Instant, Value)>>,
    pub inflight: AtomicUsize,
    pub max_inflight: AtomicUsize,
    pub aborted: AtomicUsize,
    /// Requests refused with 429 by the rate limit.
    pub rejected: AtomicUsize,
    /// The rate limit, when there is one.
    limit: Option<Mutex<RateBucket>>,
    /// The bucket's level when each refused request came.
    pub refused_at: Mutex<Vec<f64>>,
    pub changed: Notify,
    /// Permits for held answers.
    gate: tokio::sync::Semaphore,
    planner: Box<Planner>,
}

/// A running mock provider.
pub struct MockLlm {
    pub url: String,
    pub state: Arc<MockState>,
}

struct InFlight(Arc<MockState>, bool);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
        if !self.1 {
            // The client went away before the answer: the request was aborted.
            self.0.aborted.fetch_add(1, Ordering::SeqCst);
        }
        self.0.changed.notify_waiters();
    }
}

async fn handle(State(st): State<Arc<MockState>>, _headers: HeaderMap, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let admitted = st.limit.as_ref().map(|l| l.lock().unwrap().admit());
    if let Some(Err(level)) = admitted {
        st.rejected.fetch_add(1, Ordering::SeqCst);
        st.refused_at.lock().unwrap().push(level);
        st.changed.notify_waiters();
        let body = json!({ "error": { "message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded" } });
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            axum::Json(body),
        )
            .into_response();
    }
    let n = {
        let mut r = st.requests.lock().unwrap();
        r.push((std::time::Instant::now(), body.clone()));
        r.len() - 1
    };
    let now = st.inflight.fetch_add(1, Ordering::SeqCst) + 1;
    st.max_inflight.fetch_max(now, Ordering::SeqCst);
    st.changed.notify_waiters();
    let mut guard = InFlight(st.clone(), false);
    let plan = (st.planner)(n, &body);
    match plan.delay_ms {
        // No timer for an immediate answer: tokio's sleep rounds up to its
        // next millisecond tick, so `sleep(0)` would add up to 1 ms.
        Some(0) => {}
        Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        None => std::future::pending::<()>().await,
    }
    if plan.held {
        st.gate.acquire().await.expect("gate open").forget();
    }
    guard.1 = true;
    let mut resp = (
        StatusCode::from_u16(plan.status).unwrap(),
        axum::Json(plan.body),
    )
        .into_response();
    for (k, v) in plan.headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

impl MockLlm {
    pub async fn start(planner: impl Fn(usize, &Value) -> Plan + Send + Sync + 'static) -> MockLlm {
        MockLlm::serve(None, Box::new(planner)).await
    }

    /// A mock that also refuses requests beyond `requests_per_minute` with
    /// 429 ([`RateBucket`]), counting them in [`MockState::rejected`].
    pub async fn start_limited(
        requests_per_minute: u32,
        planner: impl Fn(usize, &Value) -> Plan + Send + Sync + 'static,
    ) -> MockLlm {
        MockLlm::serve(
            Some(RateBucket::new(requests_per_minute)),
            Box::new(planner),
        )
        .await
    }

    async fn serve(limit: Option<RateBucket>, planner: Box<Planner>) -> MockLlm {
        let state = Arc::new(MockState {
            requests: Mutex::new(Vec::new()),
            inflight: AtomicUsize::new(0),
            max_inflight: AtomicUsize::new(0),
            aborted: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            limit: limit.map(Mutex::new),
            refused_at: Mutex::new(Vec::new()),
            changed: Notify::new(),
            gate: tokio::sync::Semaphore::new(0),
            planner,
        });
        let app = Router::new()
            .route("/v1/chat/completions", axum::routing::post(handle))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        MockLlm { url, state }
    }

    /// Lets `n` held answers go.
    pub fn release(&self, n: usize) {
        self.state.gate.add_permits(n);
    }

    pub fn requests(&self) -> Vec<Value> {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.1.clone())
            .collect()
    }

    pub fn request_times(&self) -> Vec<std::time::Instant> {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.0)
            .collect()
    }

    /// Waits (on signals, bounded) until `cond` holds.
    pub async fn until(&self, cond: impl Fn(&MockState) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.state.changed.notified();
            if cond(&self.state) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("condition not reached in 20 s");
            }
        }
    }
}

/// A model profile block pointing at the mock.
pub fn openai_profile(url: &str, extra: &str) -> String {
    format!(
        "  - {{ ref: m, provider: openai_compatible, model: gpt-test, base_url: \"{url}\", cost_per_1k_input_tokens: 0.5, cost_per_1k_output_tokens: 1.5{extra} }}"
    )
}

/// The research pipeline of the fork tests: an outline, five sections in
/// parallel, a join, a summary, all on the mock at `url`. Input `{ topic }`;
/// output `{ summary, count }`. With [`answer_by_prompt`] every answer is a
/// function of its prompt, so two runs of it are equal where their prompts are.
pub fn research_pipeline(url: &str) -> String {
    format!(
        r#"name: research
input_schema: {{ type: object, required: [topic], properties: {{ topic: {{ type: string }} }} }}
initial_node: outline
nodes:
  - ref: outline
    action: {{ kind: llm_call, prompt: outline_p, model: m }}
    output_mapping: {{ state.outline: "result.text" }}
  - ref: section
    action: {{ kind: llm_call, prompt: section_p, model: m }}
    output_mapping: {{ state.text: "result.text" }}
  - ref: join
    fan_in: all
    joins: outline
    merge: {{ source: text, target: state.sections, strategy: collect }}
    action: {{ kind: update_context, updates: [ {{ path: state.count, expr: "state.sections.size()" }} ] }}
  - ref: summary
    action: {{ kind: llm_call, prompt: summary_p, model: m }}
    output_mapping: {{ output.summary: "result.text", output.count: "state.count" }}
transitions:
  - {{ from: outline, to: section, spawn_count: 5 }}
  - {{ from: section, to: join }}
  - {{ from: join, to: summary }}
prompt_specs:
  - {{ ref: outline_p, template: "Outline {{{{input.topic}}}}" }}
  - {{ ref: section_p, template: "Section {{{{_branch.index}}}} of {{{{state.outline}}}}" }}
  - {{ ref: summary_p, template: "Summarize {{{{state.sections}}}}" }}
model_profiles:
{}
"#,
        openai_profile(url, "")
    )
}

/// The prompt of a recorded Chat Completions request (its last message).
pub fn last_prompt(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A plan answering every request with text derived from its prompt.
pub fn answer_by_prompt(body: &Value) -> Plan {
    Plan::ok(&format!("answer to [{}]", last_prompt(body)))
}
