//! Extractors whose rejections are [`ApiError`]s, so that a bad body, query
//! string or path answers with the same JSON shape as every other error and
//! names the field at fault.

use crate::AppState;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The raw body, within the server's body limit (413 `BODY_TOO_LARGE` beyond it).
pub struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|r| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::body_too_large(state.body_limit)
                } else {
                    ApiError::malformed(format!(
                        "the request body could not be read: {}",
                        r.body_text()
                    ))
                }
            })
    }
}

/// A JSON body. An empty body reads as `T::default()`; any content type is
/// accepted (a `curl -d` body is JSON too). Shape errors name the field's path.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let Body(bytes) = Body::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(T::default()));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

/// Deserializes JSON, naming the path of a shape error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::malformed(format!("the body is not valid JSON: {inner}"))
        } else if path == "." {
            ApiError::malformed(format!("invalid body: {inner}"))
        } else {
            ApiError::malformed(format!("invalid body at `{path}`: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// A query string. Parameters are read as text (and converted by the
/// handler, which names the parameter on error); unknown parameters are
/// rejected so that a typo does not silently widen a listing.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|r| {
                let text = r.body_text();
                let text = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                ApiError::malformed(format!("invalid query string: {text}"))
            })
    }
}

/// A path parameter.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|r| ApiError::malformed(format!("invalid path: {}", r.body_text())))
    }
}

/// Default page size of lists.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest page size; larger requests are clamped.
pub const MAX_LIMIT: u32 = 1000;

/// `limit`: clamped into `1..=MAX_LIMIT`, never an error when it is an integer.
pub fn limit(raw: Option<&str>) -> Result<u32, ApiError> {
    limit_within(raw, MAX_LIMIT)
}

/// `limit` of a listing whose pages may be larger: clamped into `1..=max`.
pub fn limit_within(raw: Option<&str>, max: u32) -> Result<u32, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    let t = raw.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::malformed(format!(
            "query parameter `limit`: expected an integer, got {raw:?}"
        )));
    }
    if t.starts_with('-') {
        return Ok(1);
    }
    // Any digit string that does not fit is far above the maximum.
    Ok(digits
        .parse::<u64>()
        .map_or(max, |n| n.clamp(1, u64::from(max)) as u32))
}

/// A non-negative integer parameter.
pub fn non_negative(name: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    raw.map(|raw| {
        raw.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::malformed(format!(
                    "query parameter `{name}`: expected a non-negative integer, got {raw:?}"
                ))
            })
    })
    .transpose()
}

/// A boolean parameter (`true`/`false`/`1`/`0`; a bare `?wait` is true).
pub fn boolean(name: &str, raw: Option<&str>) -> Result<bool, ApiError> {
    match raw.map(str::trim) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(ApiError::malformed(format!(
            "query parameter `{name}`: expected true or false, got {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_clamped_not_rejected() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(Some("0")).unwrap(), 1);
        assert_eq!(limit(Some("-7")).unwrap(), 1);
        assert_eq!(limit(Some("25")).unwrap(), 25);
        assert_eq!(limit(Some("5000")).unwrap(), MAX_LIMIT);
        assert_eq!(limit(Some("99999999999999999999999")).unwrap(), MAX_LIMIT);
        let e = limit(Some("ten")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("`limit`"), "{}", e.message);
    }

    #[test]
    fn json_errors_name_the_path() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct B {
            limits: L,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct L {
            timeout_ms: u64,
        }
        let e = parse_json::<B>(br#"{"limits": {"timeout_ms": "soon"}}"#).unwrap_err();
        assert!(e.message.contains("`limits.timeout_ms`"), "{}", e.message);
        let e = parse_json::<B>(br#"{"limits": "#).unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{}", e.message);
        let e = parse_json::<B>(br#"{"limits": {"timeout_ms": 1}} trailing"#).unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{}", e.message);
        assert!(boolean("wait", Some("yes")).is_err());
        assert!(boolean("wait", Some("true")).unwrap());
        assert!(non_negative("after", Some("-1")).is_err());
    }
}
