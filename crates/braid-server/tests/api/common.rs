//! Test harness: a real server on 127.0.0.1:0 over a fresh SQLite file, a
//! reqwest client, and a local OpenAI Chat Completions server.
//!
//! With `BRAID_TEST_STORE=postgres` the server runs (as one process of a
//! cluster, like `braid serve`) on a fresh PostgreSQL
//! database instead (`braid_store_postgres::testing`; scripts/test.sh runs
//! the API tests that do not open the SQLite file themselves that way).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use braid_runtime::{Engine, Options};
use braid_server::AppState;
use braid_store::Store;
use braid_store_sqlite::SqliteStore;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running server and a client for it.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The client.
    pub http: reqwest::Client,
    /// The SQLite file behind the server (absent on PostgreSQL).
    pub db: PathBuf,
    /// The engine behind the server.
    pub engine: Engine,
    stop: Option<oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
    /// The PostgreSQL database behind the server, when it runs on one
    /// (last: dropped after everything that uses it).
    _pg: Option<braid_store_postgres::testing::TestDb>,
}

/// One answer: status, headers and body (JSON, or `Value::String` when not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Answer {
    /// Asserts the error shape, status and code; returns the error object.
    #[track_caller]
    pub fn error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "errors are JSON: {}",
            self.text
        );
        let e = &self.body["error"];
        assert_eq!(e["code"], code, "unexpected code: {}", self.text);
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "an error has a message: {}",
            self.text
        );
        e
    }

    /// The error message (after [`Answer::error`]).
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }
}

/// Whether this test process runs its servers on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("BRAID_TEST_STORE").is_ok_and(|v| v == "postgres")
}

impl Server {
    /// A server with the default body limit.
    pub async fn start() -> Server {
        Server::start_with_limit(braid_server::DEFAULT_BODY_LIMIT).await
    }

    /// A server with the given body limit.
    pub async fn start_with_limit(body_limit: usize) -> Server {
        Server::start_with(|state| AppState {
            body_limit,
            ..state
        })
        .await
    }

    /// A server whose state `configure` adjusts (body limit, UI directory …).
    pub async fn start_with(configure: impl FnOnce(AppState) -> AppState) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("braid.db");
        let mut options = Options::default();
        let (store, pg): (Arc<dyn Store>, _) = if on_postgres() {
            let pg = braid_store_postgres::testing::TestDb::create()
                .await
                .expect("BRAID_TEST_STORE=postgres needs a PostgreSQL test server");
            let mut store = braid_store_postgres::PgStore::connect_url(pg.url())
                .await
                .expect("open the PostgreSQL store");
            // As `braid serve` runs on PostgreSQL: one process of a cluster.
            store.serve_as("srv_test");
            let store = Arc::new(store);
            options.exclusive = false;
            options.cluster = Some(braid_runtime::ClusterOptions {
                store: store.clone(),
                server_id: "srv_test".into(),
                heartbeat_ms: 200,
                lease_ms: 5_000,
            });
            (store, Some(pg))
        } else {
            let store = SqliteStore::open_path(&db)
                .await
                .expect("open the SQLite store");
            (Arc::new(store), None)
        };
        let engine = Engine::start(store, options)
            .await
            .expect("start the engine");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let state = configure(AppState::new(engine.clone()));
        let serving = tokio::spawn(braid_server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Server {
            base,
            http: braid_llm::http_client(),
            db,
            _pg: pg,
            engine,
            stop: Some(stop),
            serving: Some(serving),
            _dir: dir,
        }
    }

    /// Signals shutdown; returns the serving task, which ends once the
    /// requests in flight are answered.
    pub fn shutdown(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.serving.take().expect("the server is running")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn answer(resp: reqwest::Response) -> Answer {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("read the body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Answer {
            status,
            headers,
            text,
            body,
        }
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Answer {
        Server::answer(self.http.get(self.url(path)).send().await.expect("GET")).await
    }

    /// GET with an `Accept` header.
    pub async fn get_accept(&self, path: &str, accept: &str) -> Answer {
        Server::answer(
            self.http
                .get(self.url(path))
                .header("accept", accept)
                .send()
                .await
                .expect("GET"),
        )
        .await
    }

    /// POST a JSON value.
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        Server::answer(
            self.http
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// POST raw text with a content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        Server::answer(
            self.http
                .post(self.url(path))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// Any method without a body.
    pub async fn request(&self, method: reqwest::Method, path: &str) -> Answer {
        Server::answer(
            self.http
                .request(method, self.url(path))
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    /// Every item of a list, following `next_cursor` with pages of `limit`.
    pub async fn all_pages(&self, path: &str, limit: u32) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                None => format!("{path}{sep}limit={limit}"),
                Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            };
            let page = self.get(&url).await;
            assert_eq!(page.status, 200, "{}", page.text);
            let got = page.body["items"].as_array().expect("items").clone();
            assert!(
                got.len() <= limit as usize,
                "a page holds at most `limit` items"
            );
            items.extend(got);
            match page.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return items,
            }
        }
    }

    /// How many items a list has (all pages).
    pub async fn count(&self, path: &str) -> usize {
        self.all_pages(path, 1000).await.len()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A request the LLM server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub authorization: Option<String>,
    pub body: Value,
}

/// A local server speaking OpenAI's Chat Completions wire format.
pub struct MockLlm {
    /// `http://127.0.0.1:PORT/v1`: the profile's `base_url`.
    pub base_url: String,
    /// Requests received, in order.
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

#[derive(Clone)]
struct MockState {
    requests: Arc<Mutex<Vec<Recorded>>>,
    reply: Option<Value>,
}

async fn chat_completions(
    State(s): State<MockState>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    s.requests.lock().unwrap().push(Recorded {
        authorization,
        body,
    });
    match s.reply {
        Some(reply) => (
            StatusCode::OK,
            [("x-request-id", "req_mock_0001")],
            axum::Json(reply),
        )
            .into_response(),
        // Never answers: the caller's timeout or cancellation ends the call.
        None => std::future::pending().await,
    }
}

impl MockLlm {
    /// Answers every call with `content` as the assistant message and the given usage.
    pub async fn start(content: &Value, prompt_tokens: u64, completion_tokens: u64) -> MockLlm {
        let reply = json!({
            "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
            "object": "chat.completion",
            "created": 1_741_569_952,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": content.to_string(), "refusal": null, "annotations": [] },
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": { "cached_tokens": 0, "audio_tokens": 0 },
                "completion_tokens_details": { "reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0 }
            },
            "service_tier": "default",
            "system_fingerprint": "fp_06737a9306"
        });
        MockLlm::serve(Some(reply)).await
    }

    /// Accepts calls and never answers.
    pub async fn hanging() -> MockLlm {
        MockLlm::serve(None).await
    }

    async fn serve(reply: Option<Value>) -> MockLlm {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .with_state(MockState {
                requests: requests.clone(),
                reply,
            });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("local addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockLlm { base_url, requests }
    }

    /// The requests received so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

/// Runs the test `name` of this binary again in a child process with the
/// environment variable `var` set to `value`, and asserts it passed.
/// Returns `true` in the child (go on with the test), `false` in the parent.
///
/// Why: the runtime reads a model profile's key from the variable its
/// `api_key_env` names, and setting a variable of this (multi-threaded)
/// process needs `unsafe`, which the workspace forbids.
pub fn in_child_with_env(name: &str, var: &str, value: &str) -> bool {
    if std::env::var(var).as_deref() == Ok(value) {
        return true;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = std::process::Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(var, value)
        .output()
        .expect("run the test in a child process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child test `{name}` failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "child test `{name}` did not run:\n{stdout}"
    );
    false
}

/// Asserts that `secret` appears in none of the texts.
#[track_caller]
pub fn assert_no_secret(secret: &str, texts: &[&str]) {
    for t in texts {
        assert!(!t.contains(secret), "a response leaks the API key: {t}");
    }
}
