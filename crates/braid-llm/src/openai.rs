//! `openai` and `openai_compatible`: Chat Completions at `{base_url}/chat/completions`.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::http::{self, JsonResponse, Label};
use crate::{
    ErrorCode, LlmError, LlmProvider, LlmRequest, LlmResponse, ProviderConfig, ProviderKind,
    effective_model, parse_structured,
};

/// OpenAI's endpoint, as in its SDKs.
pub(crate) const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// A Chat Completions adapter (OpenAI itself or a compatible server).
pub(crate) struct OpenAi {
    http: reqwest::Client,
    kind: ProviderKind,
    model: String,
    url: String,
    api_key: Option<String>,
}

impl OpenAi {
    pub(crate) fn new(config: ProviderConfig, http: reqwest::Client) -> Result<Self, LlmError> {
        let label = Label {
            provider: config.provider,
            model: config.model.clone(),
        };
        let base_url = match (config.provider, config.base_url) {
            (_, Some(url)) if !url.trim().is_empty() => url,
            (ProviderKind::OpenaiCompatible, _) => {
                return Err(LlmError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "{label}: openai_compatible needs a base_url (e.g. http://localhost:11434/v1)"
                    ),
                ));
            }
            _ => DEFAULT_BASE_URL.to_string(),
        };
        let api_key = config.api_key.filter(|k| !k.is_empty());
        if config.provider == ProviderKind::Openai && api_key.is_none() {
            return Err(LlmError::new(
                ErrorCode::Auth,
                format!("{label}: no API key; set OPENAI_API_KEY or the profile's api_key_env"),
            ));
        }
        Ok(OpenAi {
            http,
            kind: config.provider,
            model: config.model,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key,
        })
    }

    fn body(&self, req: &LlmRequest, model: &str) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(model));
        body.insert("messages".into(), req.messages());
        let p = &req.parameters;
        if let Some(t) = p.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if let Some(n) = p.max_tokens {
            // OpenAI deprecated `max_tokens` (its reasoning models reject it); compatible
            // servers generally only know `max_tokens`.
            let field = match self.kind {
                ProviderKind::Openai => "max_completion_tokens",
                _ => "max_tokens",
            };
            body.insert(field.into(), json!(n));
        }
        if let Some(t) = p.top_p {
            body.insert("top_p".into(), json!(t));
        }
        if let Some(stop) = &p.stop {
            body.insert("stop".into(), json!(stop));
        }
        if let Some(schema) = &req.output_schema {
            body.insert(
                "response_format".into(),
                json!({
                    "type": "json_schema",
                    "json_schema": {
                        "name": "output",
                        "schema": schema,
                        "strict": qualifies_for_strict(schema),
                    }
                }),
            );
        }
        Value::Object(body)
    }
}

#[async_trait]
impl LlmProvider for OpenAi {
    async fn call(&self, req: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let model = effective_model(req, &self.model);
        let label = Label {
            provider: self.kind,
            model: model.to_string(),
        };
        let mut request = self.http.post(&self.url).json(&self.body(req, model));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
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
    let usage = http::reported_usage(&body, "prompt_tokens", "completion_tokens");
    let request_id = http::request_id(&headers, Some(&body));
    let bad = |what: String| {
        label
            .bad_response(status, what)
            .with_usage(usage)
            .with_response(body.clone())
            .with_request_id(request_id.clone())
    };
    let choice = body
        .pointer("/choices/0")
        .ok_or_else(|| bad(format!("response has no choices[0]: {}", snippet(&body))))?;
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("none");
    let message = choice
        .get("message")
        .ok_or_else(|| bad("choices[0] has no message".into()))?;
    if let Some(refusal) = message.get("refusal").and_then(Value::as_str)
        && !refusal.is_empty()
    {
        return Err(bad(format!(
            "the model refused: {}",
            http::truncate(refusal)
        )));
    }
    let text = content_text(message.get("content")).ok_or_else(|| {
        bad(format!(
            "choices[0].message.content is missing (finish_reason: {finish_reason})"
        ))
    })?;
    let output = if structured {
        parse_structured(&text).map_err(|e| bad(format!("{e} (finish_reason: {finish_reason})")))?
    } else {
        json!({ "text": text })
    };
    Ok(LlmResponse {
        output,
        usage,
        request_id,
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(&label.model)
            .to_string(),
        text,
        raw: body,
    })
}

/// `content` as a string, or the concatenated `text` of content parts.
fn content_text(content: Option<&Value>) -> Option<String> {
    match content? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

fn snippet(body: &Value) -> String {
    http::truncate(&body.to_string())
}

/// Whether OpenAI's strict structured-output mode accepts `schema`: the root is an object,
/// every object schema (recursively) has `additionalProperties: false` and lists all its
/// `properties` in `required`, and no keyword strict mode rejects (`allOf`, `oneOf`, `not`,
/// `if`/`then`/`else`, `patternProperties`, `dependent*`) appears.
pub fn qualifies_for_strict(schema: &Value) -> bool {
    is_object_schema(schema) && strict_ok(schema)
}

fn is_object_schema(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        _ => schema.get("properties").is_some(),
    }
}

fn strict_ok(schema: &Value) -> bool {
    let Some(obj) = schema.as_object() else {
        // `true`/`false` schemas are not accepted by strict mode.
        return false;
    };
    const REJECTED: [&str; 8] = [
        "allOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "patternProperties",
        "dependentSchemas",
    ];
    if REJECTED.iter().any(|k| obj.contains_key(*k)) || obj.contains_key("dependentRequired") {
        return false;
    }
    if is_object_schema(schema) {
        if obj.get("additionalProperties") != Some(&Value::Bool(false)) {
            return false;
        }
        let required: Vec<&str> = obj
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(props) = obj.get("properties") {
            let Some(props) = props.as_object() else {
                return false;
            };
            if !props.keys().all(|k| required.contains(&k.as_str())) {
                return false;
            }
            if !props.values().all(strict_ok) {
                return false;
            }
        }
    }
    let in_list = |key: &str| {
        obj.get(key).is_none_or(|v| {
            v.as_array()
                .is_some_and(|items| items.iter().all(strict_ok))
        })
    };
    let in_map = |key: &str| {
        obj.get(key)
            .is_none_or(|v| v.as_object().is_some_and(|m| m.values().all(strict_ok)))
    };
    let items_ok = match obj.get("items") {
        None => true,
        Some(Value::Array(items)) => items.iter().all(strict_ok),
        Some(item) => strict_ok(item),
    };
    items_ok
        && in_list("anyOf")
        && in_list("prefixItems")
        && in_map("$defs")
        && in_map("definitions")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_requires_closed_objects_with_all_properties_required() {
        let ok = json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["vote", "reasons", "meta"],
            "properties": {
                "vote": {"type": "string", "enum": ["A", "B"]},
                "reasons": {"type": "array", "items": {
                    "type": "object", "additionalProperties": false,
                    "required": ["text"], "properties": {"text": {"type": "string"}}
                }},
                "meta": {"anyOf": [{"type": "null"}, {
                    "type": "object", "additionalProperties": false, "required": [], "properties": {}
                }]}
            }
        });
        assert!(qualifies_for_strict(&ok));

        let mut open_root = ok.clone();
        open_root
            .as_object_mut()
            .unwrap()
            .remove("additionalProperties");
        assert!(!qualifies_for_strict(&open_root));

        let mut optional = ok.clone();
        optional["required"] = json!(["vote", "reasons"]);
        assert!(!qualifies_for_strict(&optional));

        let mut nested_open = ok.clone();
        nested_open["properties"]["reasons"]["items"]
            .as_object_mut()
            .unwrap()
            .remove("additionalProperties");
        assert!(!qualifies_for_strict(&nested_open));

        let mut nested_in_any_of = ok.clone();
        nested_in_any_of["properties"]["meta"]["anyOf"][1]["additionalProperties"] = json!(true);
        assert!(!qualifies_for_strict(&nested_in_any_of));

        let mut one_of = ok.clone();
        one_of["properties"]["vote"] = json!({"oneOf": [{"type": "string"}]});
        assert!(!qualifies_for_strict(&one_of));

        assert!(!qualifies_for_strict(&json!({"type": "string"})));
        assert!(!qualifies_for_strict(&json!({"type": "object"})));
    }

    #[test]
    fn strict_recurses_into_defs() {
        let schema = json!({
            "type": "object", "additionalProperties": false, "required": ["a"],
            "properties": {"a": {"$ref": "#/$defs/A"}},
            "$defs": {"A": {"type": "object", "properties": {"x": {"type": "integer"}}}}
        });
        assert!(!qualifies_for_strict(&schema));
    }

    #[test]
    fn content_parts_are_concatenated() {
        let parts = json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]);
        assert_eq!(content_text(Some(&parts)).as_deref(), Some("ab"));
        assert_eq!(content_text(Some(&Value::Null)), None);
    }
}
