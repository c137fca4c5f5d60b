//! A local HTTP server that records every request and answers with a canned reply.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use braid_llm::{LlmProvider, ProviderConfig, ProviderKind};
use serde_json::Value;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lower-case header name → value.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (a string if it was not JSON).
    pub body: Value,
}

/// What the server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
        }
    }

    pub fn raw(status: u16, content_type: &str, body: &str) -> Self {
        Reply {
            status,
            headers: vec![("content-type", content_type.into())],
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

struct State {
    requests: Mutex<Vec<Recorded>>,
    /// `None`: never answer.
    reply: Option<Reply>,
}

pub struct MockServer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    state: Arc<State>,
}

impl MockServer {
    pub async fn start(reply: Reply) -> Self {
        Self::spawn(Some(reply)).await
    }

    /// A server that accepts requests and never answers them.
    pub async fn hanging() -> Self {
        Self::spawn(None).await
    }

    async fn spawn(reply: Option<Reply>) -> Self {
        let state = Arc::new(State {
            requests: Mutex::new(Vec::new()),
            reply,
        });
        let handler_state = state.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = handler_state.clone();
                async move { handle(state, method, uri, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        MockServer {
            base: format!("http://{addr}"),
            state,
        }
    }

    /// The single request received (panics if there were none or several).
    pub fn only_request(&self) -> Recorded {
        let requests = self.state.requests.lock().unwrap();
        assert_eq!(
            requests.len(),
            1,
            "expected exactly one request: {requests:#?}"
        );
        requests[0].clone()
    }
}

async fn handle(
    state: Arc<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or("<binary>").to_string(),
            )
        })
        .collect();
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    state.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers,
        body,
    });
    let Some(reply) = state.reply.clone() else {
        return std::future::pending().await;
    };
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// A provider of `kind` for `model` pointed at `base_url`.
pub fn provider(
    kind: ProviderKind,
    model: &str,
    base_url: &str,
    api_key: Option<&str>,
) -> Arc<dyn LlmProvider> {
    provider_with(kind, model, base_url, api_key, braid_llm::http_client())
}

pub fn provider_with(
    kind: ProviderKind,
    model: &str,
    base_url: &str,
    api_key: Option<&str>,
    http: reqwest::Client,
) -> Arc<dyn LlmProvider> {
    braid_llm::provider(
        ProviderConfig {
            provider: kind,
            model: model.into(),
            base_url: Some(base_url.into()),
            api_key: api_key.map(str::to_string),
            script: None,
        },
        http,
    )
    .expect("provider config is valid")
}
