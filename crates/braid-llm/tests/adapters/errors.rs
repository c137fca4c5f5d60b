//! Error mapping (SPEC §4) over real HTTP.

use std::time::Duration;

use braid_llm::{ErrorCode, LlmError, LlmRequest, ProviderKind};
use serde_json::json;

use crate::server::{MockServer, Reply, provider, provider_with};

const OPENAI_KEY: &str = "sk-test-secret-1234";
const ANTHROPIC_KEY: &str = "sk-ant-secret-5678";

async fn openai_error(reply: Reply) -> LlmError {
    let server = MockServer::start(reply).await;
    let llm = provider(
        ProviderKind::Openai,
        "gpt-4o-mini",
        &format!("{}/v1", server.base),
        Some(OPENAI_KEY),
    );
    let err = llm
        .call(&LlmRequest::new("gpt-4o-mini", "hi"))
        .await
        .unwrap_err();
    assert!(
        !err.message.contains(OPENAI_KEY),
        "key leaked: {}",
        err.message
    );
    assert!(
        err.message.contains("openai model gpt-4o-mini"),
        "{}",
        err.message
    );

    err
}

async fn anthropic_error(reply: Reply) -> LlmError {
    let server = MockServer::start(reply).await;
    let llm = provider(
        ProviderKind::Anthropic,
        "claude-haiku-4-5",
        &server.base,
        Some(ANTHROPIC_KEY),
    );
    let err = llm
        .call(&LlmRequest::new("claude-haiku-4-5", "hi"))
        .await
        .unwrap_err();
    assert!(
        !err.message.contains(ANTHROPIC_KEY),
        "key leaked: {}",
        err.message
    );
    assert!(
        err.message.contains("anthropic model claude-haiku-4-5"),
        "{}",
        err.message
    );

    err
}

fn openai_body(message: &str, kind: &str, code: Option<&str>) -> serde_json::Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

fn anthropic_body(kind: &str, message: &str) -> serde_json::Value {
    json!({
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"
    })
}

#[tokio::test]
async fn openai_429_is_rate_limited_with_retry_after_seconds() {
    let msg = "Rate limit reached for gpt-4o-mini in organization org-abc on tokens per min (TPM): Limit 200000, Used 199500, Requested 1200.";
    let err = openai_error(
        Reply::json(429, openai_body(msg, "tokens", Some("rate_limit_exceeded")))
            .header("retry-after", "2"),
    )
    .await;
    assert_eq!(err.code, ErrorCode::RateLimited);
    assert_eq!(err.retry_after_ms, Some(2000));
    assert_eq!(err.http_status, Some(429));
    assert_eq!(
        err.response,
        Some(openai_body(msg, "tokens", Some("rate_limit_exceeded"))),
        "an error's body is kept as JSON"
    );
    assert!(err.retryable());
    assert!(err.message.contains("HTTP 429"), "{}", err.message);
    assert!(err.message.contains(msg), "{}", err.message);
}

#[tokio::test]
async fn openai_retry_after_ms_header_wins() {
    let err = openai_error(
        Reply::json(
            429,
            openai_body("slow down", "requests", Some("rate_limit_exceeded")),
        )
        .header("retry-after", "1")
        .header("retry-after-ms", "350"),
    )
    .await;
    assert_eq!(err.code, ErrorCode::RateLimited);
    assert_eq!(err.retry_after_ms, Some(350));
}

#[tokio::test]
async fn anthropic_429_is_rate_limited_with_retry_after() {
    let err = anthropic_error(
        Reply::json(
            429,
            anthropic_body(
                "rate_limit_error",
                "This request would exceed the rate limit for your organization of 50,000 input tokens per minute.",
            ),
        )
        .header("retry-after", "7"),
    )
    .await;
    assert_eq!(err.code, ErrorCode::RateLimited);
    assert_eq!(err.retry_after_ms, Some(7000));
    assert!(
        err.message.contains("rate limit for your organization"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn openai_503_is_unavailable() {
    let err = openai_error(Reply::json(
        503,
        openai_body(
            "The server is overloaded or not ready yet.",
            "server_error",
            None,
        ),
    ))
    .await;
    assert_eq!(err.code, ErrorCode::Unavailable);
    assert_eq!(err.http_status, Some(503));
    assert_eq!(err.retry_after_ms, None);
    assert!(err.message.contains("HTTP 503"), "{}", err.message);
    assert!(err.message.contains("not ready yet"), "{}", err.message);
}

#[tokio::test]
async fn html_502_from_a_proxy_is_unavailable_with_the_body_snippet() {
    let err = openai_error(Reply::raw(
        502,
        "text/html",
        "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>cloudflare</body>\n</html>\n",
    ))
    .await;
    assert_eq!(err.code, ErrorCode::Unavailable);
    assert!(err.message.contains("502 Bad Gateway"), "{}", err.message);
    assert!(!err.message.contains('\n'), "{:?}", err.message);
}

#[tokio::test]
async fn anthropic_529_overloaded_is_unavailable() {
    let err = anthropic_error(Reply::json(
        529,
        anthropic_body("overloaded_error", "Overloaded"),
    ))
    .await;
    assert_eq!(err.code, ErrorCode::Unavailable);
    assert_eq!(err.http_status, Some(529));
    assert!(err.retryable());
    assert!(err.message.contains("HTTP 529"), "{}", err.message);
    assert!(err.message.contains("Overloaded"), "{}", err.message);
}

#[tokio::test]
async fn openai_401_is_auth_and_never_echoes_the_key() {
    let err = openai_error(Reply::json(
        401,
        openai_body(
            "Incorrect API key provided: sk-test-***********1234. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
    ))
    .await;
    assert_eq!(err.code, ErrorCode::Auth);
    assert!(!err.retryable());
    assert!(err.message.contains("OPENAI_API_KEY"), "{}", err.message);
    assert!(
        err.message.contains("Incorrect API key provided"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn anthropic_401_and_403_are_auth() {
    let err = anthropic_error(Reply::json(
        401,
        anthropic_body("authentication_error", "invalid x-api-key"),
    ))
    .await;
    assert_eq!(err.code, ErrorCode::Auth);
    assert!(err.message.contains("ANTHROPIC_API_KEY"), "{}", err.message);
    let err = anthropic_error(Reply::json(
        403,
        anthropic_body(
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
    ))
    .await;
    assert_eq!(err.code, ErrorCode::Auth);
    assert_eq!(err.http_status, Some(403));
    assert!(
        err.message.contains("HTTP 403: permission denied"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn openai_400_context_length_is_context_length() {
    let err = openai_error(Reply::json(
        400,
        openai_body(
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130532 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            Some("context_length_exceeded"),
        ),
    ))
    .await;
    assert_eq!(err.code, ErrorCode::ContextLength);
    assert_eq!(err.http_status, Some(400));
    assert!(!err.retryable());
    assert!(err.message.contains("130532 tokens"), "{}", err.message);
}

#[tokio::test]
async fn anthropic_400_prompt_too_long_is_context_length() {
    let err = anthropic_error(Reply::json(
        400,
        anthropic_body(
            "invalid_request_error",
            "prompt is too long: 215345 tokens > 200000 maximum",
        ),
    ))
    .await;
    assert_eq!(err.code, ErrorCode::ContextLength);
}

#[tokio::test]
async fn other_400_is_invalid_request_with_a_truncated_message() {
    let long = format!(
        "Invalid schema for response_format 'output': {}",
        "In context=('properties', 'vote'), 'enum' must be an array. ".repeat(40)
    );
    let err = openai_error(Reply::json(
        400,
        openai_body(&long, "invalid_request_error", None),
    ))
    .await;
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert_eq!(err.http_status, Some(400));
    assert!(
        err.message.contains("Invalid schema for response_format"),
        "{}",
        err.message
    );
    let detail = err.message.split_once("request rejected: ").unwrap().1;
    assert_eq!(detail.chars().count(), 300, "{detail}");
    assert!(detail.ends_with('…'));

    let err = anthropic_error(Reply::json(
        400,
        anthropic_body("invalid_request_error", "temperature: range: 0..1"),
    ))
    .await;
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert!(
        err.message.ends_with("temperature: range: 0..1"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn garbage_success_bodies_are_bad_response() {
    let err = openai_error(Reply::raw(200, "text/html", "<html>captive portal</html>")).await;
    assert_eq!(err.code, ErrorCode::BadResponse);
    assert_eq!(err.http_status, Some(200));
    assert!(err.message.contains("not JSON"), "{}", err.message);
    assert_eq!(
        err.response,
        Some(json!("<html>captive portal</html>")),
        "a body that is not JSON is kept as its text"
    );
    assert!(err.message.contains("captive portal"), "{}", err.message);

    let err = openai_error(Reply::json(
        200,
        json!({"object": "chat.completion", "choices": []}),
    ))
    .await;
    assert_eq!(err.code, ErrorCode::BadResponse);
    assert!(err.message.contains("no choices[0]"), "{}", err.message);

    let err = anthropic_error(Reply::raw(
        200,
        "application/json",
        "{\"type\":\"message\",",
    ))
    .await;
    assert_eq!(err.code, ErrorCode::BadResponse);
}

#[tokio::test]
async fn connection_refused_is_network() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    for kind in [ProviderKind::Openai, ProviderKind::Anthropic] {
        let llm = provider(kind, "m", &format!("http://{addr}"), Some(OPENAI_KEY));
        let err = llm.call(&LlmRequest::new("m", "hi")).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Network, "{kind}: {err}");
        assert_eq!(err.http_status, None);
        assert!(err.retryable());
        assert!(err.message.contains("cannot connect to"), "{}", err.message);
        assert!(err.message.contains(&addr.to_string()), "{}", err.message);
        assert!(!err.message.contains(OPENAI_KEY));
    }
}

#[tokio::test]
async fn no_answer_within_the_client_timeout_is_timeout() {
    let server = MockServer::hanging().await;
    let http = braid_llm::http_client_builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let llm = provider_with(
        ProviderKind::Openai,
        "gpt-4o-mini",
        &format!("{}/v1", server.base),
        Some(OPENAI_KEY),
        http,
    );
    let err = llm
        .call(&LlmRequest::new("gpt-4o-mini", "hi"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Timeout, "{err}");
    assert!(err.retryable());
    assert!(err.message.contains("timed out"), "{}", err.message);
    // The request did reach the server.
    assert_eq!(server.only_request().path, "/v1/chat/completions");
}

/// A failed answer still names the request the provider logged, so the
/// inspector can show what its support asks for.
#[tokio::test]
async fn failed_answers_keep_the_providers_request_id() {
    let unavailable = Reply::json(503, openai_body("overloaded", "server_error", None))
        .header("x-request-id", "req_503_abc");
    let err = openai_error(unavailable).await;
    assert_eq!(err.code, ErrorCode::Unavailable);
    assert_eq!(err.request_id.as_deref(), Some("req_503_abc"));

    // A 2xx answer that cannot be used: the header, else the body's `id`.
    let garbage =
        Reply::raw(200, "application/json", "not json at all").header("x-request-id", "req_bad_1");
    let err = openai_error(garbage).await;
    assert_eq!(err.code, ErrorCode::BadResponse);
    assert_eq!(err.request_id.as_deref(), Some("req_bad_1"));
    let err = openai_error(Reply::json(
        200,
        json!({ "id": "chatcmpl-9", "choices": [] }),
    ))
    .await;
    assert_eq!(err.code, ErrorCode::BadResponse);
    assert_eq!(err.request_id.as_deref(), Some("chatcmpl-9"));

    let overloaded = Reply::json(529, anthropic_body("overloaded_error", "Overloaded"))
        .header("request-id", "req_011_anth");
    let err = anthropic_error(overloaded).await;
    assert_eq!(err.request_id.as_deref(), Some("req_011_anth"));
}
