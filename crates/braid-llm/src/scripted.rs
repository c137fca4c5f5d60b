//! `scripted`: deterministic offline answers declared in the model profile, for demos,
//! tests and benchmarks. The same request (branch index, attempt) always gets the same
//! answer, so a replay or a crash-and-retry sees what the first run saw.
//!
//! # Script format
//!
//! ```json
//! {
//!   "responses":  [ {"vote": "A"}, {"vote": "B"} ],
//!   "by_branch":  { "2": {"vote": "B"} },
//!   "failures":   [ { "attempt": 1, "branch": 0, "code": "UNAVAILABLE",
//!                     "message": "injected outage", "retry_after_ms": 100 } ],
//!   "latency_ms": 25,
//!   "usage":      { "input_tokens": 100, "output_tokens": 20 }
//! }
//! ```
//!
//! Every field is optional, but `responses` or `by_branch` must hold at least one answer;
//! unknown fields are rejected.
//!
//! * **Choosing the answer.** With a branch index `i`: `by_branch["i"]` if present, else
//!   `responses[i % len]`. Without a branch: `responses[0]`. No applicable answer is
//!   `INVALID_REQUEST`.
//! * **Answers.** An answer is any JSON value. With an output schema, an object is the
//!   output and a string is parsed as the model's JSON text (so invalid JSON yields
//!   `BAD_RESPONSE`, as it would from a real provider); anything else is `BAD_RESPONSE`.
//!   The runtime still validates the object against `produces`. Without an output schema, a
//!   string `s` or an object `{"text": s}` gives output `{"text": s}`; any other value is
//!   serialized as the text.
//! * **Failures.** The first entry whose `attempt` (1-based; absent = every attempt) and
//!   `branch` (absent = every branch) match the request fails the call with `code` (an
//!   LLM error code), `message` and optional `retry_after_ms`.
//! * **Latency.** `latency_ms` is slept before answering or failing.
//! * **Usage.** `usage` if given, else estimated as one token per 4 characters of
//!   system + prompt (input) and of the answer text (output).
//! * The response's `model` is the requested model and its `request_id` is
//!   `scripted-b{branch}-a{attempt}` (`scripted-a{attempt}` without a branch).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::Label;
use crate::{
    ErrorCode, LlmError, LlmProvider, LlmRequest, LlmResponse, ProviderConfig, ProviderKind, Usage,
    effective_model, parse_structured,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    #[serde(default)]
    responses: Vec<Value>,
    #[serde(default)]
    by_branch: BTreeMap<String, Value>,
    #[serde(default)]
    failures: Vec<Failure>,
    #[serde(default)]
    latency_ms: u64,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Failure {
    #[serde(default)]
    attempt: Option<u32>,
    #[serde(default)]
    branch: Option<u64>,
    code: ErrorCode,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    retry_after_ms: Option<u64>,
}

/// A parsed, checked script.
#[derive(Debug)]
struct Script {
    responses: Vec<Value>,
    by_branch: BTreeMap<u64, Value>,
    failures: Vec<Failure>,
    latency: Duration,
    usage: Option<Usage>,
}

fn parse_script(script: &Value) -> Result<Script, String> {
    let raw = RawScript::deserialize(script).map_err(|e| format!("invalid script: {e}"))?;
    if raw.responses.is_empty() && raw.by_branch.is_empty() {
        return Err(
            "invalid script: needs at least one answer in `responses` or `by_branch`".into(),
        );
    }
    let by_branch = raw
        .by_branch
        .into_iter()
        .map(|(k, v)| match k.parse::<u64>() {
            Ok(i) => Ok((i, v)),
            Err(_) => Err(format!(
                "invalid script: by_branch key {k:?} is not a branch index (0, 1, 2, …)"
            )),
        })
        .collect::<Result<_, _>>()?;
    if let Some(i) = raw.failures.iter().position(|f| f.attempt == Some(0)) {
        return Err(format!(
            "invalid script: failures[{i}].attempt is 0; attempts start at 1"
        ));
    }
    Ok(Script {
        responses: raw.responses,
        by_branch,
        failures: raw.failures,
        latency: Duration::from_millis(raw.latency_ms),
        usage: raw.usage,
    })
}

/// Checks a `scripted` profile's script (for validation at save time). The error names the
/// offending field.
pub fn validate_script(script: &Value) -> Result<(), String> {
    parse_script(script).map(|_| ())
}

/// The scripted adapter.
pub(crate) struct Scripted {
    model: String,
    script: Script,
}

impl Scripted {
    pub(crate) fn new(config: ProviderConfig) -> Result<Self, LlmError> {
        let label = Label {
            provider: ProviderKind::Scripted,
            model: config.model.clone(),
        };
        let script = config
            .script
            .as_ref()
            .ok_or_else(|| "the profile has no script".to_string())
            .and_then(parse_script)
            .map_err(|e| LlmError::new(ErrorCode::InvalidRequest, format!("{label}: {e}")))?;
        Ok(Scripted {
            model: config.model,
            script,
        })
    }
}

fn estimate_tokens(chars: usize) -> u64 {
    chars.div_ceil(4) as u64
}

#[async_trait]
impl LlmProvider for Scripted {
    async fn call(&self, req: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let model = effective_model(req, &self.model);
        let label = Label {
            provider: ProviderKind::Scripted,
            model: model.to_string(),
        };
        let s = &self.script;
        if !s.latency.is_zero() {
            tokio::time::sleep(s.latency).await;
        }
        let where_ = match req.branch_index {
            Some(b) => format!("branch {b}, attempt {}", req.attempt),
            None => format!("attempt {}", req.attempt),
        };
        if let Some(f) = s.failures.iter().find(|f| {
            f.attempt.is_none_or(|a| a == req.attempt)
                && f.branch.is_none_or(|b| Some(b) == req.branch_index)
        }) {
            return Err(LlmError {
                retry_after_ms: f.retry_after_ms,
                ..LlmError::new(
                    f.code,
                    format!(
                        "{label}: injected {} ({where_}): {}",
                        f.code,
                        f.message.as_deref().unwrap_or("scripted failure")
                    ),
                )
            });
        }
        let answer = match req.branch_index {
            Some(b) => s.by_branch.get(&b).or_else(|| {
                let n = s.responses.len() as u64;
                (n > 0).then(|| &s.responses[(b % n) as usize])
            }),
            None => s.responses.first(),
        }
        .ok_or_else(|| {
            LlmError::new(
                ErrorCode::InvalidRequest,
                format!("{label}: the script has no answer for {where_} (add it to by_branch or responses)"),
            )
        })?;
        let (output, text) = if req.output_schema.is_some() {
            match answer {
                Value::Object(_) => (answer.clone(), answer.to_string()),
                Value::String(s) => (
                    parse_structured(s).map_err(|e| {
                        LlmError::new(ErrorCode::BadResponse, format!("{label}: {e}"))
                            .with_response(answer.clone())
                    })?,
                    s.clone(),
                ),
                other => {
                    return Err(LlmError::new(
                        ErrorCode::BadResponse,
                        format!(
                            "{label}: scripted answer for {where_} is {}, expected a JSON object",
                            crate::json_kind(other)
                        ),
                    )
                    .with_response(other.clone()));
                }
            }
        } else {
            let text = match (answer, answer.get("text")) {
                (Value::String(s), _) | (_, Some(Value::String(s))) => s.clone(),
                (other, _) => other.to_string(),
            };
            (json!({ "text": text }), text)
        };
        let usage = s.usage.unwrap_or_else(|| Usage {
            input_tokens: estimate_tokens(
                req.system.as_deref().map_or(0, |t| t.chars().count()) + req.prompt.chars().count(),
            ),
            output_tokens: estimate_tokens(text.chars().count()),
        });
        Ok(LlmResponse {
            output,
            text,
            usage,
            request_id: Some(match req.branch_index {
                Some(b) => format!("scripted-b{b}-a{}", req.attempt),
                None => format!("scripted-a{}", req.attempt),
            }),
            model: model.to_string(),
            raw: answer.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn scripted(script: Value) -> Arc<dyn LlmProvider> {
        let config = ProviderConfig {
            provider: ProviderKind::Scripted,
            model: "demo-model".into(),
            base_url: None,
            api_key: None,
            script: Some(script),
        };
        crate::provider(config, reqwest::Client::new()).expect("valid script")
    }

    fn req(branch: Option<u64>, attempt: u32, schema: bool) -> LlmRequest {
        LlmRequest {
            branch_index: branch,
            attempt,
            output_schema: schema.then(|| json!({"type": "object"})),
            ..LlmRequest::new("", "Question: 2+2? Answer A or B.")
        }
    }

    fn judge_script() -> Value {
        json!({
            "responses": [{"vote": "A"}, {"vote": "B"}, {"vote": "A"}],
            "by_branch": {"1": {"vote": "override"}},
        })
    }

    #[tokio::test]
    async fn chooses_by_branch_then_responses_modulo() {
        crate::install_crypto_provider();
        let p = scripted(judge_script());
        let vote = |r: LlmResponse| r.output["vote"].as_str().unwrap().to_string();
        assert_eq!(vote(p.call(&req(Some(0), 1, true)).await.unwrap()), "A");
        assert_eq!(
            vote(p.call(&req(Some(1), 1, true)).await.unwrap()),
            "override"
        );
        assert_eq!(vote(p.call(&req(Some(2), 1, true)).await.unwrap()), "A");
        // 4 % 3 == 1 → responses[1]; by_branch only applies to its own index.
        assert_eq!(vote(p.call(&req(Some(4), 1, true)).await.unwrap()), "B");
        assert_eq!(vote(p.call(&req(None, 1, true)).await.unwrap()), "A");
    }

    #[tokio::test]
    async fn by_branch_only_script_without_a_match_is_invalid_request() {
        crate::install_crypto_provider();
        let p = scripted(json!({"by_branch": {"0": "zero"}}));
        assert_eq!(p.call(&req(Some(0), 1, false)).await.unwrap().text, "zero");
        let e = p.call(&req(Some(1), 1, false)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.message.contains("branch 1"), "{}", e.message);
    }

    #[tokio::test]
    async fn failures_are_injected_by_attempt_and_branch() {
        crate::install_crypto_provider();
        let p = scripted(json!({
            "responses": ["ok"],
            "failures": [
                {"attempt": 1, "code": "UNAVAILABLE", "message": "outage", "retry_after_ms": 250},
                {"attempt": 2, "branch": 1, "code": "RATE_LIMITED"},
                {"branch": 7, "code": "AUTH", "message": "always"},
            ]
        }));
        let e = p.call(&req(Some(0), 1, false)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Unavailable);
        assert_eq!(e.retry_after_ms, Some(250));
        assert!(
            e.message.contains("attempt 1") && e.message.contains("outage"),
            "{}",
            e.message
        );
        assert!(e.retryable());

        assert_eq!(p.call(&req(Some(0), 2, false)).await.unwrap().text, "ok");
        let e = p.call(&req(Some(1), 2, false)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert_eq!(p.call(&req(Some(1), 3, false)).await.unwrap().text, "ok");

        for attempt in 2..5 {
            let e = p.call(&req(Some(7), attempt, false)).await.unwrap_err();
            assert_eq!(e.code, ErrorCode::Auth);
            assert!(!e.retryable());
        }
    }

    #[tokio::test]
    async fn answers_are_deterministic_across_calls_and_instances() {
        crate::install_crypto_provider();
        let a = scripted(judge_script());
        let b = scripted(judge_script());
        for branch in [None, Some(0), Some(1), Some(5)] {
            let first = a.call(&req(branch, 1, true)).await.unwrap();
            assert_eq!(a.call(&req(branch, 1, true)).await.unwrap(), first);
            assert_eq!(b.call(&req(branch, 1, true)).await.unwrap(), first);
        }
    }

    #[tokio::test]
    async fn text_and_structured_answer_forms() {
        crate::install_crypto_provider();
        let p = scripted(
            json!({"responses": ["plain", {"text": "wrapped"}, {"vote": "A"}, "{\"vote\":\"B\"}", "not json", 3]}),
        );
        let text = p.call(&req(Some(0), 1, false)).await.unwrap();
        assert_eq!(text.output, json!({"text": "plain"}));
        assert_eq!(text.text, "plain");
        assert_eq!(
            p.call(&req(Some(1), 1, false)).await.unwrap().output,
            json!({"text": "wrapped"})
        );
        assert_eq!(
            p.call(&req(Some(2), 1, false)).await.unwrap().output,
            json!({"text": "{\"vote\":\"A\"}"})
        );
        assert_eq!(
            p.call(&req(Some(3), 1, true)).await.unwrap().output,
            json!({"vote": "B"})
        );
        let e = p.call(&req(Some(4), 1, true)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::BadResponse);
        let e = p.call(&req(Some(5), 1, true)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::BadResponse);
        assert!(e.message.contains("a number"), "{}", e.message);
    }

    #[tokio::test]
    async fn usage_is_given_or_estimated_and_ids_are_stable() {
        crate::install_crypto_provider();
        let given = scripted(
            json!({"responses": ["x"], "usage": {"input_tokens": 11, "output_tokens": 3}}),
        );
        let r = given.call(&req(Some(2), 3, false)).await.unwrap();
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 11,
                output_tokens: 3
            }
        );
        assert_eq!(r.request_id.as_deref(), Some("scripted-b2-a3"));
        assert_eq!(r.model, "demo-model");

        let estimated = scripted(json!({"responses": ["12345678"]}));
        let mut request = req(None, 1, false);
        request.system = Some("abcd".into()); // 4 chars + 30-char prompt = 34 → 9 tokens
        let r = estimated.call(&request).await.unwrap();
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 9,
                output_tokens: 2
            }
        );
        assert_eq!(r.request_id.as_deref(), Some("scripted-a1"));
    }

    #[tokio::test]
    async fn latency_is_applied() {
        crate::install_crypto_provider();
        let p = scripted(json!({"responses": ["x"], "latency_ms": 60}));
        let started = std::time::Instant::now();
        p.call(&req(None, 1, false)).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(60));
    }

    #[test]
    fn validate_script_reports_problems() {
        assert!(validate_script(&judge_script()).is_ok());
        let err = |v: Value| validate_script(&v).unwrap_err();
        assert!(err(json!({})).contains("at least one answer"));
        assert!(err(json!({"responses": []})).contains("at least one answer"));
        assert!(err(json!({"respones": ["x"]})).contains("respones"));
        assert!(err(json!({"by_branch": {"first": "x"}})).contains("\"first\""));
        assert!(
            err(json!({"responses": ["x"], "failures": [{"attempt": 1, "code": "BOOM"}]}))
                .contains("BOOM")
        );
        assert!(
            err(json!({"responses": ["x"], "failures": [{"attempt": 0, "code": "AUTH"}]}))
                .contains("failures[0].attempt")
        );
        assert!(err(json!({"responses": ["x"], "latency_ms": -1})).contains("invalid script"));
        assert!(err(json!("just a string")).contains("invalid script"));
    }
}
