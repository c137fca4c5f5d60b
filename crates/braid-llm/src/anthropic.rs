//! `anthropic`: the Messages API at `{base_url}/v1/messages`.

use async_trait::async_trait;
use reqwest::header::HeaderValue;
use serde_json::{Map, Value, json};

use crate::http::{self, JsonResponse, Label};
use crate::{
    ErrorCode, LlmError, LlmProvider, LlmRequest, LlmResponse, ProviderConfig, ProviderKind,
    effective_model,
};

/// Anthropic's endpoint, as in its SDKs.
pub(crate) const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The API version header value.
pub(crate) const API_VERSION: &str = "2023-06-01";
/// `max_tokens` is required by the Messages API; sent when the profile sets none.
pub(crate) const DEFAULT_MAX_TOKENS: u32 = 1024;
/// Name of the forced tool carrying structured output.
const TOOL_NAME: &str = "output";

/// The Anthropic Messages adapter.
pub(crate) struct Anthropic {
    http: reqwest::Client,
    model: String,
    url: String,
    api_key: HeaderValue,
}

impl Anthropic {
    pub(crate) fn new(config: ProviderConfig, http: reqwest::Client) -> Result<Self, LlmError> {
        let label = Label {
            provider: ProviderKind::Anthropic,
            model: config.model.clone(),
        };
        let no_key = || {
            LlmError::new(
                ErrorCode::Auth,
                format!("{label}: no API key; set ANTHROPIC_API_KEY or the profile's api_key_env"),
            )
        };
        let key = config
            .api_key
            .filter(|k| !k.is_empty())
            .ok_or_else(no_key)?;
        let mut api_key = HeaderValue::from_str(&key).map_err(|_| {
            LlmError::new(
                ErrorCode::Auth,
                format!("{label}: the API key contains characters not allowed in an HTTP header"),
            )
        })?;
        api_key.set_sensitive(true);
        let base_url = config
            .base_url
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        Ok(Anthropic {
            http,
            model: config.model,
            url: format!("{}/v1/messages", base_url.trim_end_matches('/')),
            api_key,
        })
    }
}

fn request_body(req: &LlmRequest, model: &str) -> Value {
    let p = &req.parameters;
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert(
        "max_tokens".into(),
        json!(p.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    if let Some(system) = &req.system {
        body.insert("system".into(), json!(system));
    }
    body.insert(
        "messages".into(),
        json!([{"role": "user", "content": req.prompt}]),
    );
    if let Some(t) = p.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(t) = p.top_p {
        body.insert("top_p".into(), json!(t));
    }
    if let Some(stop) = &p.stop {
        body.insert("stop_sequences".into(), json!(stop));
    }
    if let Some(schema) = &req.output_schema {
        body.insert(
            "tools".into(),
            json!([{
                "name": TOOL_NAME,
                "description": "Give the final answer as this tool's input, which must match its input schema.",
                "input_schema": schema,
            }]),
        );
        body.insert(
            "tool_choice".into(),
            json!({"type": "tool", "name": TOOL_NAME}),
        );
    }
    Value::Object(body)
}

#[async_trait]
impl LlmProvider for Anthropic {
    async fn call(&self, req: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let model = effective_model(req, &self.model);
        let label = Label {
            provider: ProviderKind::Anthropic,
            model: model.to_string(),
        };
        let request = self
            .http
            .post(&self.url)
            .header("x-api-key", self.api_key.clone())
            .header("anthropic-version", API_VERSION)
            .json(&request_body(req, model));
        let response = http::send(&label, &self.url, request).await?;
        parse_response(&label, req.output_schema.is_some(), response)
    }
}

fn parse_response(
    label: &Label,
    structured: bool,
    response: JsonResponse,
) -> Result<LlmResponse, LlmError> {
    let JsonResponse {
        status,
        headers,
        body,
    } = response;
    // Read first: an answer that cannot be used was still charged.
    let usage = http::reported_usage(&body, "input_tokens", "output_tokens");
    let request_id = http::request_id(&headers, Some(&body));
    let bad = |what: String| {
        label
            .bad_response(status, what)
            .with_usage(usage)
            .with_response(body.clone())
            .with_request_id(request_id.clone())
    };
    let blocks = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            bad(format!(
                "response has no content array: {}",
                http::truncate(&body.to_string())
            ))
        })?;
    let stop_reason = body
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("none");
    let of_type = |t: &'static str| {
        blocks
            .iter()
            .filter(move |b| b.get("type").and_then(Value::as_str) == Some(t))
    };
    let (output, text) = if structured {
        let tool_use = of_type("tool_use")
            .find(|b| b.get("name").and_then(Value::as_str) == Some(TOOL_NAME))
            .or_else(|| of_type("tool_use").next())
            .ok_or_else(|| {
                let said: String = of_type("text")
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect();
                bad(format!(
                    "expected a tool_use block for tool `{TOOL_NAME}` (stop_reason: {stop_reason}); the model said: {}",
                    http::truncate(&said)
                ))
            })?;
        match tool_use.get("input") {
            Some(input @ Value::Object(_)) => (input.clone(), input.to_string()),
            other => {
                return Err(bad(format!(
                    "tool_use input is not a JSON object (stop_reason: {stop_reason}): {}",
                    http::truncate(&other.unwrap_or(&Value::Null).to_string())
                )));
            }
        }
    } else {
        let text: String = of_type("text")
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect();
        (json!({ "text": text }), text)
    };
    Ok(LlmResponse {
        output,
        text,
        usage,
        request_id,
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(&label.model)
            .to_string(),
        raw: body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Parameters;

    #[test]
    fn body_defaults_max_tokens_and_omits_unset_fields() {
        let req = LlmRequest::new("claude", "hi");
        let body = request_body(&req, "claude");
        assert_eq!(
            body,
            json!({
                "model": "claude",
                "max_tokens": DEFAULT_MAX_TOKENS,
                "messages": [{"role": "user", "content": "hi"}],
            })
        );
        let req = LlmRequest {
            parameters: Parameters {
                max_tokens: Some(7),
                ..Parameters::default()
            },
            ..req
        };
        assert_eq!(request_body(&req, "claude")["max_tokens"], json!(7));
    }
}
