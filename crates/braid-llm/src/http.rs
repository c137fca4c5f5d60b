//! Transport and error mapping shared by the HTTP adapters.

use std::error::Error as _;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;

use crate::{ErrorCode, LlmError, ProviderKind, Usage};

/// Longest provider message (in characters) copied into an error.
pub(crate) const MAX_DETAIL_CHARS: usize = 300;

/// Names the call in error messages: `openai model gpt-4o-mini`.
#[derive(Debug, Clone)]
pub(crate) struct Label {
    pub(crate) provider: ProviderKind,
    pub(crate) model: String,
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} model {}", self.provider.as_str(), self.model)
    }
}

impl Label {
    /// A `BAD_RESPONSE` error for a 2xx answer we cannot use.
    pub(crate) fn bad_response(&self, status: StatusCode, what: impl fmt::Display) -> LlmError {
        LlmError {
            http_status: Some(status.as_u16()),
            ..LlmError::new(
                ErrorCode::BadResponse,
                format!("{self}: HTTP {}: {what}", status.as_u16()),
            )
        }
    }
}

/// A successful (2xx) answer whose body is JSON.
pub(crate) struct JsonResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

/// Sends `request` (already carrying URL, headers and JSON body) and returns the parsed
/// JSON body of a 2xx answer, or the mapped error.
pub(crate) async fn send(
    label: &Label,
    url: &str,
    request: RequestBuilder,
) -> Result<JsonResponse, LlmError> {
    let started = std::time::Instant::now();
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(label, url, e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| transport_error(label, url, e))?;
    tracing::debug!(
        provider = label.provider.as_str(),
        model = %label.model,
        status = status.as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "llm call answered"
    );
    let request_id = request_id(&headers, None);
    if !status.is_success() {
        return Err(status_error(label, status, &headers, &bytes).with_request_id(request_id));
    }
    let body = serde_json::from_slice(&bytes).map_err(|e| {
        label
            .bad_response(
                status,
                format_args!(
                    "response body is not JSON ({e}): {}",
                    truncate(&String::from_utf8_lossy(&bytes))
                ),
            )
            .with_response(raw_body(&bytes))
            .with_request_id(request_id)
    })?;
    Ok(JsonResponse {
        status,
        headers,
        body,
    })
}

/// Maps a failure to send or to read the answer: timeouts → `TIMEOUT`, the rest → `NETWORK`.
fn transport_error(label: &Label, url: &str, err: reqwest::Error) -> LlmError {
    let url = redact_url(url);
    let (code, what) = if err.is_timeout() {
        (ErrorCode::Timeout, "timed out waiting for")
    } else if err.is_connect() {
        (ErrorCode::Network, "cannot connect to")
    } else {
        (ErrorCode::Network, "request failed:")
    };
    let err = err.without_url();
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !chain.contains(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        source = cause.source();
    }
    LlmError::new(code, format!("{label}: {what} POST {url}: {chain}"))
}

/// Maps a non-2xx answer (docs/definitions.md).
pub(crate) fn status_error(
    label: &Label,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> LlmError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let detail = parsed
        .as_ref()
        .and_then(error_message)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let error_type = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/type"))
        .and_then(Value::as_str);
    let error_code = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/code"))
        .and_then(Value::as_str);
    let retry_after_ms = retry_after_ms(headers);
    let s = status.as_u16();
    let key_hint;
    let (code, what): (ErrorCode, &str) = match s {
        429 => (ErrorCode::RateLimited, "rate limited"),
        _ if error_type == Some("overloaded_error") => {
            (ErrorCode::Unavailable, "provider overloaded")
        }
        401 | 403 => {
            key_hint = format!(
                "{} (check the API key: {})",
                if s == 401 {
                    "authentication failed"
                } else {
                    "permission denied"
                },
                match label.provider {
                    ProviderKind::Openai => "OPENAI_API_KEY or the profile's api_key_env",
                    ProviderKind::Anthropic => "ANTHROPIC_API_KEY or the profile's api_key_env",
                    _ => "the profile's api_key_env",
                }
            );
            (ErrorCode::Auth, key_hint.as_str())
        }
        408 => (ErrorCode::Timeout, "provider request timeout"),
        400 | 413 if is_context_length(error_code, &detail) => (
            ErrorCode::ContextLength,
            "prompt exceeds the model's context length",
        ),
        400..=499 => (ErrorCode::InvalidRequest, "request rejected"),
        500..=599 => (ErrorCode::Unavailable, "provider unavailable"),
        _ => (ErrorCode::BadResponse, "unexpected HTTP status"),
    };
    let mut message = format!("{label}: HTTP {s}: {what}");
    if let Some(ms) = retry_after_ms {
        message.push_str(&format!(" (retry after {ms} ms)"));
    }
    if !detail.is_empty() {
        message.push_str(": ");
        message.push_str(&truncate(&detail));
    }
    LlmError {
        code,
        message,
        retry_after_ms,
        http_status: Some(s),
        usage: None,
        response: Some(parsed.unwrap_or_else(|| raw_body(body))),
        request_id: None,
    }
}

/// A response body as recorded: its JSON, or its text when it is not JSON.
pub(crate) fn raw_body(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// The provider's own error message: OpenAI and Anthropic use `{"error": {"message"}}`;
/// compatible servers also use `{"error": "..."}`, `{"message"}` or `{"detail"}`.
fn error_message(body: &Value) -> Option<String> {
    [
        body.pointer("/error/message"),
        body.get("error"),
        body.get("message"),
        body.get("detail"),
    ]
    .into_iter()
    .flatten()
    .find_map(|v| v.as_str().map(str::to_string))
}

fn is_context_length(error_code: Option<&str>, message: &str) -> bool {
    if error_code == Some("context_length_exceeded") {
        return true;
    }
    let m = message.to_ascii_lowercase();
    [
        "context_length_exceeded",
        "maximum context length",
        "context length",
        "context window",
        "prompt is too long",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// `retry-after-ms` (OpenAI) first, then `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after_ms(headers: &HeaderMap) -> Option<u64> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(ms.ceil() as u64);
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).ceil() as u64);
    }
    let at = parse_http_date(value)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(at.saturating_sub(now) * 1000)
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into Unix seconds.
fn parse_http_date(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + sec).ok()
}

/// Collapses whitespace (so a message stays on one line) and cuts `s` to at most
/// [`MAX_DETAIL_CHARS`] characters.
pub(crate) fn truncate(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() <= MAX_DETAIL_CHARS {
        return s;
    }
    let mut out: String = s.chars().take(MAX_DETAIL_CHARS - 1).collect();
    out.push('…');
    out
}

/// The URL without user info, so credentials embedded in a `base_url` never reach a message.
fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// A header's value as a string, when present and printable.
/// The provider's id of a request: OpenAI's `x-request-id` or Anthropic's
/// `request-id` header, else the body's `id`.
pub(crate) fn request_id(headers: &HeaderMap, body: Option<&serde_json::Value>) -> Option<String> {
    header_str(headers, "x-request-id")
        .or_else(|| header_str(headers, "request-id"))
        .or_else(|| {
            body.and_then(|b| b.get("id"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        })
}

pub(crate) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The tokens a provider reported in the body's `usage` object under its own
/// names (zero when absent).
pub(crate) fn reported_usage(body: &Value, input: &str, output: &str) -> Usage {
    let count = |name: &str| {
        body.get("usage")
            .and_then(|u| u.get(name))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Usage {
        input_tokens: count(input),
        output_tokens: count(output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            retry_after_ms(&headers(&[("retry-after", "2")])),
            Some(2000)
        );
        assert_eq!(
            retry_after_ms(&headers(&[("retry-after", "0.5")])),
            Some(500)
        );
        assert_eq!(
            retry_after_ms(&headers(&[("retry-after", "2"), ("retry-after-ms", "150")])),
            Some(150)
        );
        assert_eq!(retry_after_ms(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after_ms(&headers(&[])), None);
        // A date in the past means "now".
        assert_eq!(
            retry_after_ms(&headers(&[(
                "retry-after",
                "Sun, 06 Nov 1994 08:49:37 GMT"
            )])),
            Some(0)
        );
        let later = retry_after_ms(&headers(&[(
            "retry-after",
            "Fri, 01 Jan 2100 00:00:00 GMT",
        )]));
        assert!(later.unwrap() > 365 * 86_400 * 1000);
    }

    #[test]
    fn http_date_parses_to_unix_seconds() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
    }

    #[test]
    fn truncate_limits_characters() {
        let long = "é".repeat(1000);
        let t = truncate(&long);
        assert_eq!(t.chars().count(), MAX_DETAIL_CHARS);
        assert!(t.ends_with('…'));
        assert_eq!(truncate("  short\n\n  line  "), "short line");
    }

    #[test]
    fn redact_url_drops_credentials() {
        assert_eq!(
            redact_url("https://user:secret@example.com/v1/chat/completions"),
            "https://example.com/v1/chat/completions"
        );
    }
}
