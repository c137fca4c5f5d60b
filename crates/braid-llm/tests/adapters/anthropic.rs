//! `anthropic` against a Messages API server.

use braid_llm::{ErrorCode, LlmRequest, Parameters, ProviderKind, Usage};
use serde_json::{Value, json};

use crate::server::{MockServer, Reply, provider};

const KEY: &str = "sk-ant-api03-test-key";
const MODEL: &str = "claude-sonnet-4-5";

/// A full Messages answer as Anthropic sends it.
pub fn message(content: Value, stop_reason: &str) -> Value {
    json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {
            "input_tokens": 42,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 17,
            "service_tier": "standard"
        }
    })
}

fn schema() -> Value {
    json!({
        "type": "object",
        "required": ["vote"],
        "properties": {"vote": {"type": "string", "enum": ["A", "B"]}}
    })
}

#[tokio::test]
async fn text_call_sends_messages_request_and_joins_text_blocks() {
    let server = MockServer::start(
        Reply::json(
            200,
            message(
                json!([
                    {"type": "text", "text": "Paris is the capital "},
                    {"type": "text", "text": "of France."}
                ]),
                "end_turn",
            ),
        )
        .header("request-id", "req_018EeWyXxfu5pfWkrYcMdjWG"),
    )
    .await;
    let llm = provider(ProviderKind::Anthropic, MODEL, &server.base, Some(KEY));
    let req = LlmRequest {
        system: Some("You are terse.".into()),
        parameters: Parameters {
            temperature: Some(0.3),
            max_tokens: None,
            top_p: Some(0.8),
            stop: Some(vec!["END".into()]),
        },
        ..LlmRequest::new(MODEL, "What is the capital of France?")
    };
    let res = llm.call(&req).await.unwrap();

    let seen = server.only_request();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.headers["x-api-key"], KEY);
    assert_eq!(seen.headers["anthropic-version"], "2023-06-01");
    assert_eq!(seen.headers["content-type"], "application/json");
    assert!(!seen.headers.contains_key("authorization"));
    assert_eq!(
        seen.body,
        json!({
            "model": MODEL,
            "max_tokens": 1024,
            "system": "You are terse.",
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "temperature": 0.3,
            "top_p": 0.8,
            "stop_sequences": ["END"]
        })
    );

    assert_eq!(res.text, "Paris is the capital of France.");
    assert_eq!(
        res.output,
        json!({"text": "Paris is the capital of France."})
    );
    assert_eq!(
        res.usage,
        Usage {
            input_tokens: 42,
            output_tokens: 17
        }
    );
    assert_eq!(
        res.request_id.as_deref(),
        Some("req_018EeWyXxfu5pfWkrYcMdjWG")
    );
    assert_eq!(res.model, "claude-sonnet-4-5-20250929");
}

#[tokio::test]
async fn structured_call_forces_the_output_tool_and_reads_its_input() {
    let server = MockServer::start(Reply::json(
        200,
        message(
            json!([{
                "type": "tool_use",
                "id": "toolu_01A09q90qw90lq917835lq9",
                "name": "output",
                "input": {"vote": "B"}
            }]),
            "tool_use",
        ),
    ))
    .await;
    let llm = provider(
        ProviderKind::Anthropic,
        MODEL,
        &format!("{}/", server.base),
        Some(KEY),
    );
    let req = LlmRequest {
        output_schema: Some(schema()),
        parameters: Parameters {
            max_tokens: Some(300),
            ..Parameters::default()
        },
        ..LlmRequest::new(MODEL, "Judge: A or B?")
    };
    let res = llm.call(&req).await.unwrap();

    let body = server.only_request().body;
    assert_eq!(body["max_tokens"], json!(300));
    assert!(body.get("system").is_none());
    let tools = body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["name"], "output");
    assert_eq!(tools[0]["input_schema"], schema());
    assert!(
        tools[0]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "output"})
    );

    assert_eq!(res.output, json!({"vote": "B"}));
    assert_eq!(
        serde_json::from_str::<Value>(&res.text).unwrap(),
        json!({"vote": "B"})
    );
    // No request-id header: the body's id.
    assert_eq!(
        res.request_id.as_deref(),
        Some("msg_01XFDUDYJgAACzvnptvVoYEL")
    );
}

#[tokio::test]
async fn structured_call_without_tool_use_is_bad_response() {
    let server = MockServer::start(Reply::json(
        200,
        message(
            json!([{"type": "text", "text": "I think A."}]),
            "max_tokens",
        ),
    ))
    .await;
    let llm = provider(ProviderKind::Anthropic, MODEL, &server.base, Some(KEY));
    let req = LlmRequest {
        output_schema: Some(schema()),
        ..LlmRequest::new(MODEL, "Judge")
    };
    let err = llm.call(&req).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::BadResponse);
    assert!(
        err.message.contains("stop_reason: max_tokens"),
        "{}",
        err.message
    );
    assert!(err.message.contains("I think A."), "{}", err.message);
    assert!(
        err.message.contains("anthropic model claude-sonnet-4-5"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn missing_content_is_bad_response() {
    let mut body = message(json!([]), "end_turn");
    body.as_object_mut().unwrap().remove("content");
    let server = MockServer::start(Reply::json(200, body)).await;
    let llm = provider(ProviderKind::Anthropic, MODEL, &server.base, Some(KEY));
    let err = llm.call(&LlmRequest::new(MODEL, "x")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::BadResponse);
    assert!(err.message.contains("no content array"), "{}", err.message);
}
