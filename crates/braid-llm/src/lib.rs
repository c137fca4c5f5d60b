//! LLM providers for Braid: the [`LlmProvider`] trait and its adapters
//! (`openai`, `anthropic`, `openai_compatible`, `scripted`; docs/definitions.md).
//!
//! An adapter turns one [`LlmRequest`] into one HTTP call (or one scripted answer) and
//! maps the outcome to an [`LlmResponse`] or an [`LlmError`] with an error code of docs/errors.md.
//! It does not retry, validate structured output against `produces`, persist anything or
//! compute costs: retries, schema validation, usage accounting and events are the
//! runtime's job.
//!
//! ```no_run
//! # async fn demo() -> Result<(), braid_llm::LlmError> {
//! use braid_llm::{LlmRequest, ProviderConfig, ProviderKind};
//! let config = ProviderConfig {
//!     provider: ProviderKind::Openai,
//!     model: "gpt-4o-mini".into(),
//!     base_url: None,
//!     api_key: std::env::var("OPENAI_API_KEY").ok(),
//!     script: None,
//! };
//! let llm = braid_llm::provider(config, braid_llm::http_client())?;
//! let answer = llm.call(&LlmRequest::new("gpt-4o-mini", "Say hi")).await?;
//! println!("{}", answer.text);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod anthropic;
mod error;
mod http;
mod openai;
mod scripted;

use std::fmt;
use std::sync::{Arc, Once};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use error::{ErrorCode, LlmError};
pub use openai::qualifies_for_strict;
pub use scripted::validate_script;

/// Sampling parameters of a model profile (`parameters` in a definition).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Parameters {
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Most tokens to generate. Anthropic requires a value; 1024 is sent when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
}

/// One LLM call: a rendered prompt plus what the runtime knows about the attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    /// Model name sent to the provider; when empty, the profile's model is used.
    pub model: String,
    /// System prompt, if any.
    pub system: Option<String>,
    /// The rendered user message.
    pub prompt: String,
    /// The prompt spec's `produces` JSON Schema (structured output), or `None` for text.
    pub output_schema: Option<Value>,
    /// Sampling parameters.
    pub parameters: Parameters,
    /// The token's branch index (`_branch.index`), used by the scripted provider.
    pub branch_index: Option<u64>,
    /// The attempt number, starting at 1, used by the scripted provider.
    pub attempt: u32,
}

impl LlmRequest {
    /// The rendered messages, as a Chat Completions list: `{ role: "system" }`
    /// (when there is a system prompt) then `{ role: "user" }`. Exactly what
    /// `openai`/`openai_compatible` send as `messages`; `anthropic` sends the
    /// same contents with the system prompt as its top-level `system` field.
    /// What `llm_request` records as the messages sent.
    pub fn messages(&self) -> Value {
        let mut messages = Vec::with_capacity(2);
        if let Some(system) = &self.system {
            messages.push(serde_json::json!({"role": "system", "content": system}));
        }
        messages.push(serde_json::json!({"role": "user", "content": self.prompt}));
        Value::Array(messages)
    }

    /// A text request for `model` on attempt 1, with no system prompt, schema or branch.
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> Self {
        LlmRequest {
            model: model.into(),
            system: None,
            prompt: prompt.into(),
            output_schema: None,
            parameters: Parameters::default(),
            branch_index: None,
            attempt: 1,
        }
    }
}

/// Token counts reported by the provider (or estimated by the scripted provider).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

/// A successful LLM call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmResponse {
    /// The parsed JSON object when the request had an `output_schema`, else `{"text": "..."}`.
    pub output: Value,
    /// The raw text: the model's text, the JSON text, or the serialized tool input.
    pub text: String,
    /// Token usage (zero when the provider reports none).
    pub usage: Usage,
    /// The provider's request id (`x-request-id` / `request-id` header, else the body's `id`).
    pub request_id: Option<String>,
    /// The model the provider reports having used.
    pub model: String,
    /// The response body as received (the scripted provider: its answer).
    pub raw: Value,
}

/// Which adapter a model profile uses (`provider` in a definition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI Chat Completions.
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// Any server speaking Chat Completions (Ollama, vLLM, llama.cpp, LiteLLM, OpenRouter).
    OpenaiCompatible,
    /// Deterministic offline answers declared in the profile.
    Scripted,
}

impl ProviderKind {
    /// The name used in definitions: `openai`, `anthropic`, `openai_compatible`, `scripted`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenaiCompatible => "openai_compatible",
            ProviderKind::Scripted => "scripted",
        }
    }

    /// The endpoint used when a profile gives no `base_url` (`None`: the
    /// provider needs one, or calls nothing).
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some(openai::DEFAULT_BASE_URL),
            ProviderKind::Anthropic => Some(anthropic::DEFAULT_BASE_URL),
            ProviderKind::OpenaiCompatible | ProviderKind::Scripted => None,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything an adapter needs, built from a model profile by the runtime.
#[derive(Clone)]
pub struct ProviderConfig {
    /// The adapter.
    pub provider: ProviderKind,
    /// Default model (used when [`LlmRequest::model`] is empty).
    pub model: String,
    /// Overrides the vendor's endpoint; required for `openai_compatible`.
    pub base_url: Option<String>,
    /// The API key, resolved by the caller. Never logged: `Debug` redacts it.
    pub api_key: Option<String>,
    /// The scripted provider's script (see the `scripted` format in `docs/providers.md`).
    pub script: Option<Value>,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("script", &self.script)
            .finish()
    }
}

/// A model endpoint that answers one request at a time (implementations are shared across tasks).
#[async_trait]
pub trait LlmProvider: Send + Sync {
    /// Performs one call. Never retries: the runtime decides from [`LlmError::code`].
    async fn call(&self, req: &LlmRequest) -> Result<LlmResponse, LlmError>;
}

/// Builds the adapter for `config`, sending HTTP requests through `http`.
///
/// Fails with `AUTH` when `openai`/`anthropic` have no key, and with `INVALID_REQUEST`
/// when `openai_compatible` has no `base_url` or a `scripted` profile has no valid script.
pub fn provider(
    config: ProviderConfig,
    http: reqwest::Client,
) -> Result<Arc<dyn LlmProvider>, LlmError> {
    Ok(match config.provider {
        ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
            Arc::new(openai::OpenAi::new(config, http)?)
        }
        ProviderKind::Anthropic => Arc::new(anthropic::Anthropic::new(config, http)?),
        ProviderKind::Scripted => Arc::new(scripted::Scripted::new(config)?),
    })
}

/// Connect timeout of [`http_client`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Installs ring as the process-wide rustls crypto provider (once; a provider installed
/// earlier by someone else is kept).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client builder with Braid's defaults (crypto provider installed, connect timeout,
/// user agent). No overall timeout: the runtime bounds each attempt with the action's
/// `timeout_ms`. Use it to add e.g. `.timeout(..)`.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("braid/", env!("CARGO_PKG_VERSION")))
}

/// The HTTP client shared by the adapters; see [`http_client_builder`].
pub fn http_client() -> reqwest::Client {
    http_client_builder()
        .build()
        .expect("building the HTTP client (TLS configuration with ring) cannot fail")
}

/// The model to send: the request's, else the profile's.
fn effective_model<'a>(req: &'a LlmRequest, default: &'a str) -> &'a str {
    if req.model.is_empty() {
        default
    } else {
        &req.model
    }
}

/// Parses structured output text into a JSON object, tolerating a Markdown code fence
/// (some `openai_compatible` servers add one).
fn parse_structured(text: &str) -> Result<Value, String> {
    let trimmed = text.trim();
    let unfenced = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.trim_end().strip_suffix("```"))
        .unwrap_or(trimmed);
    match serde_json::from_str::<Value>(unfenced) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(other) => Err(format!(
            "structured output is {}, expected a JSON object: {}",
            json_kind(&other),
            http::truncate(trimmed)
        )),
        Err(e) => Err(format!(
            "structured output is not valid JSON ({e}): {}",
            http::truncate(trimmed)
        )),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn debug_redacts_api_key() {
        let config = ProviderConfig {
            provider: ProviderKind::Openai,
            model: "m".into(),
            base_url: None,
            api_key: Some("sk-very-secret".into()),
            script: None,
        };
        let dbg = format!("{config:?}");
        assert!(!dbg.contains("sk-very-secret"), "{dbg}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
    }

    #[test]
    fn provider_kind_serde_is_snake_case() {
        assert_eq!(
            serde_json::to_value(ProviderKind::OpenaiCompatible).unwrap(),
            json!("openai_compatible")
        );
        let k: ProviderKind = serde_json::from_value(json!("scripted")).unwrap();
        assert_eq!(k, ProviderKind::Scripted);
        assert_eq!(ProviderKind::Anthropic.to_string(), "anthropic");
    }

    #[test]
    fn parameters_serde_omits_unset_fields() {
        let p: Parameters =
            serde_json::from_value(json!({"temperature": 0.2, "max_tokens": 200})).unwrap();
        assert_eq!(p.max_tokens, Some(200));
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"temperature": 0.2, "max_tokens": 200})
        );
    }

    #[test]
    fn structured_output_parsing() {
        assert_eq!(parse_structured(r#"{"a":1}"#).unwrap(), json!({"a": 1}));
        assert_eq!(
            parse_structured("```json\n{\"a\":1}\n```").unwrap(),
            json!({"a": 1})
        );
        assert!(parse_structured("[1]").unwrap_err().contains("an array"));
        assert!(
            parse_structured("{\"a\":")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }

    #[test]
    fn provider_config_errors() {
        let base = ProviderConfig {
            provider: ProviderKind::Openai,
            model: "m".into(),
            base_url: None,
            api_key: None,
            script: None,
        };
        let err = |c: ProviderConfig| match provider(c, reqwest::Client::new()) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        };
        install_crypto_provider();
        let e = err(base.clone());
        assert_eq!(e.code, ErrorCode::Auth);
        assert!(e.message.contains("OPENAI_API_KEY"), "{}", e.message);
        let e = err(ProviderConfig {
            provider: ProviderKind::Anthropic,
            ..base.clone()
        });
        assert_eq!(e.code, ErrorCode::Auth);
        assert!(e.message.contains("ANTHROPIC_API_KEY"), "{}", e.message);
        let e = err(ProviderConfig {
            provider: ProviderKind::OpenaiCompatible,
            ..base.clone()
        });
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.message.contains("base_url"), "{}", e.message);
        let e = err(ProviderConfig {
            provider: ProviderKind::Scripted,
            ..base.clone()
        });
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.message.contains("script"), "{}", e.message);
        // A compatible server without a key is fine.
        assert!(
            provider(
                ProviderConfig {
                    provider: ProviderKind::OpenaiCompatible,
                    base_url: Some("http://127.0.0.1:1/v1".into()),
                    ..base
                },
                reqwest::Client::new()
            )
            .is_ok()
        );
    }
}
