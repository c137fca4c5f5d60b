//! `openai` and `openai_compatible` against a Chat Completions server.

use braid_llm::{ErrorCode, LlmRequest, Parameters, ProviderKind, Usage};
use serde_json::{Value, json};

use crate::server::{MockServer, Reply, provider};

const KEY: &str = "sk-test-openai-0123456789";

/// A full Chat Completions answer as OpenAI sends it.
pub fn completion(content: &str, finish_reason: &str) -> Value {
    json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": content,
                "refusal": null,
                "annotations": []
            },
            "logprobs": null,
            "finish_reason": finish_reason
        }],
        "usage": {
            "prompt_tokens": 19,
            "completion_tokens": 10,
            "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0
            }
        },
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306"
    })
}

fn vote_schema(strict_ready: bool) -> Value {
    let mut schema = json!({
        "type": "object",
        "required": ["vote", "reason"],
        "properties": {
            "vote": {"type": "string", "enum": ["A", "B"]},
            "reason": {"type": "string"}
        }
    });
    if strict_ready {
        schema["additionalProperties"] = json!(false);
    }
    schema
}

#[tokio::test]
async fn text_call_sends_chat_completions_and_parses_the_answer() {
    let server = MockServer::start(
        Reply::json(200, completion("Paris is the capital of France.", "stop"))
            .header("x-request-id", "req_7f3a9c0e1d2b"),
    )
    .await;
    let llm = provider(
        ProviderKind::Openai,
        "gpt-4o-mini",
        &format!("{}/v1", server.base),
        Some(KEY),
    );
    let req = LlmRequest {
        system: Some("You are terse.".into()),
        parameters: Parameters {
            temperature: Some(0.2),
            max_tokens: Some(200),
            top_p: Some(0.9),
            stop: Some(vec!["\n\n".into()]),
        },
        ..LlmRequest::new("gpt-4o-mini", "What is the capital of France?")
    };
    let res = llm.call(&req).await.unwrap();

    let seen = server.only_request();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(
        seen.body,
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "What is the capital of France?"}
            ],
            "temperature": 0.2,
            "max_completion_tokens": 200,
            "top_p": 0.9,
            "stop": ["\n\n"]
        })
    );

    assert_eq!(
        res.output,
        json!({"text": "Paris is the capital of France."})
    );
    assert_eq!(res.text, "Paris is the capital of France.");
    assert_eq!(
        res.usage,
        Usage {
            input_tokens: 19,
            output_tokens: 10
        }
    );
    assert_eq!(res.request_id.as_deref(), Some("req_7f3a9c0e1d2b"));
    assert_eq!(res.model, "gpt-4o-mini-2024-07-18");
    // What `llm_request` records: the messages exactly as sent, the body as received.
    assert_eq!(req.messages(), seen.body["messages"]);
    assert_eq!(
        res.raw,
        completion("Paris is the capital of France.", "stop")
    );
}

#[tokio::test]
async fn structured_call_uses_strict_json_schema_when_the_schema_qualifies() {
    let content = r#"{"vote":"A","reason":"A is consistent with the evidence."}"#;
    let server = MockServer::start(
        Reply::json(200, completion(content, "stop")).header("x-request-id", "req_strict"),
    )
    .await;
    let llm = provider(
        ProviderKind::Openai,
        "gpt-4o-mini",
        &format!("{}/v1", server.base),
        Some(KEY),
    );
    let req = LlmRequest {
        output_schema: Some(vote_schema(true)),
        ..LlmRequest::new("gpt-4o-mini", "Judge: A or B?")
    };
    let res = llm.call(&req).await.unwrap();

    let body = server.only_request().body;
    assert_eq!(
        body["response_format"],
        json!({
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": vote_schema(true), "strict": true}
        })
    );
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "Judge: A or B?"}])
    );
    assert_eq!(
        res.output,
        json!({"vote": "A", "reason": "A is consistent with the evidence."})
    );
    assert_eq!(res.text, content);
}

#[tokio::test]
async fn structured_call_is_not_strict_for_an_open_schema_and_falls_back_to_body_id() {
    let server = MockServer::start(Reply::json(
        200,
        completion(r#"{"vote":"B","reason":"r"}"#, "stop"),
    ))
    .await;
    let llm = provider(
        ProviderKind::Openai,
        "gpt-4o-mini",
        &format!("{}/v1", server.base),
        Some(KEY),
    );
    let req = LlmRequest {
        output_schema: Some(vote_schema(false)),
        ..LlmRequest::new("gpt-4o-mini", "Judge")
    };
    let res = llm.call(&req).await.unwrap();
    let body = server.only_request().body;
    assert_eq!(
        body["response_format"]["json_schema"]["strict"],
        json!(false)
    );
    assert_eq!(
        body["response_format"]["json_schema"]["schema"],
        vote_schema(false)
    );
    assert_eq!(res.output["vote"], "B");
    assert_eq!(
        res.request_id.as_deref(),
        Some("chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT")
    );
}

#[tokio::test]
async fn truncated_structured_output_is_bad_response() {
    let server = MockServer::start(Reply::json(
        200,
        completion(r#"{"vote":"A","rea"#, "length"),
    ))
    .await;
    let llm = provider(
        ProviderKind::Openai,
        "gpt-4o-mini",
        &format!("{}/v1", server.base),
        Some(KEY),
    );
    let req = LlmRequest {
        output_schema: Some(vote_schema(true)),
        ..LlmRequest::new("gpt-4o-mini", "Judge")
    };
    let err = llm.call(&req).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::BadResponse);
    assert_eq!(err.http_status, Some(200));
    assert_eq!(
        err.response,
        Some(completion(r#"{"vote":"A","rea"#, "length")),
        "the unusable answer travels with the error"
    );
    assert!(err.message.contains("not valid JSON"), "{}", err.message);
    assert!(
        err.message.contains("finish_reason: length"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("openai model gpt-4o-mini"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn structured_output_that_is_not_an_object_is_bad_response() {
    let server = MockServer::start(Reply::json(200, completion(r#"["A"]"#, "stop"))).await;
    let llm = provider(
        ProviderKind::Openai,
        "gpt-4o-mini",
        &format!("{}/v1", server.base),
        Some(KEY),
    );
    let req = LlmRequest {
        output_schema: Some(vote_schema(true)),
        ..LlmRequest::new("gpt-4o-mini", "Judge")
    };
    let err = llm.call(&req).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::BadResponse);
    assert!(
        err.message.contains("expected a JSON object"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn refusal_is_bad_response() {
    let mut body = completion("", "stop");
    body["choices"][0]["message"]["content"] = Value::Null;
    body["choices"][0]["message"]["refusal"] = json!("I can't help with that.");
    let server = MockServer::start(Reply::json(200, body)).await;
    let llm = provider(
        ProviderKind::Openai,
        "gpt-4o-mini",
        &format!("{}/v1", server.base),
        Some(KEY),
    );
    let err = llm
        .call(&LlmRequest::new("gpt-4o-mini", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadResponse);
    assert!(
        err.message.contains("refused: I can't help with that."),
        "{}",
        err.message
    ); // The refusal was charged: the reported tokens travel with the error.
    let usage = err.usage.expect("the usage of a charged answer");
    assert_eq!(usage.input_tokens, 19);
    assert!(usage.output_tokens > 0, "{usage:?}");
}

#[tokio::test]
async fn compatible_server_gets_no_auth_header_max_tokens_and_the_profile_model() {
    let mut body = completion("hello from llama", "stop");
    body["model"] = json!("llama3.2:3b");
    body.as_object_mut().unwrap().remove("usage");
    let server = MockServer::start(Reply::json(200, body)).await;
    // Trailing slash on base_url, no key, empty request model.
    let llm = provider(
        ProviderKind::OpenaiCompatible,
        "llama3.2:3b",
        &format!("{}/v1/", server.base),
        None,
    );
    let req = LlmRequest {
        parameters: Parameters {
            max_tokens: Some(64),
            ..Parameters::default()
        },
        ..LlmRequest::new("", "hi")
    };
    let res = llm.call(&req).await.unwrap();
    let seen = server.only_request();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert!(
        !seen.headers.contains_key("authorization"),
        "{:?}",
        seen.headers
    );
    assert_eq!(
        seen.body,
        json!({
            "model": "llama3.2:3b",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 64
        })
    );
    assert_eq!(res.text, "hello from llama");
    assert_eq!(res.model, "llama3.2:3b");
    // No usage reported: zero, not a failure.
    assert_eq!(res.usage, Usage::default());
}

#[tokio::test]
async fn compatible_server_with_a_key_gets_bearer_auth() {
    let server = MockServer::start(Reply::json(200, completion("ok", "stop"))).await;
    let llm = provider(
        ProviderKind::OpenaiCompatible,
        "m",
        &format!("{}/api/v1", server.base),
        Some("or-key"),
    );
    llm.call(&LlmRequest::new("m", "hi")).await.unwrap();
    let seen = server.only_request();
    assert_eq!(seen.path, "/api/v1/chat/completions");
    assert_eq!(seen.headers["authorization"], "Bearer or-key");
}
