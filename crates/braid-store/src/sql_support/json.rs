//! JSON held as text in a column: writing it, and reading it back with
//! errors that say which column of which object was bad (rows may be
//! written by hand with SQL).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Error, Result};

/// JSON text of a value.
pub fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Backend(format!("serializing: {e}")))
}

/// Parses a JSON column; `what` names it in the error.
pub fn parse_json(text: &str, what: &dyn Fn() -> String) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::Backend(format!("{}: invalid JSON: {e}", what())))
}

/// Parses an optional JSON column.
pub fn parse_json_opt(text: Option<&str>, what: &dyn Fn() -> String) -> Result<Option<Value>> {
    text.map(|t| parse_json(t, what)).transpose()
}

/// Deserializes a typed value from JSON.
pub fn from_value<T: DeserializeOwned>(v: Value, what: &dyn Fn() -> String) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::Backend(format!("{}: {e}", what())))
}

/// Parses an optional JSON column into a typed value.
pub fn typed_opt<T: DeserializeOwned>(
    text: Option<String>,
    what: &dyn Fn() -> String,
) -> Result<Option<T>> {
    match text {
        None => Ok(None),
        Some(t) => Ok(Some(from_value(parse_json(&t, what)?, what)?)),
    }
}

/// The serde name of a unit enum variant (`first_match`, `success` …),
/// stored as bare text rather than as a JSON string.
pub fn enum_name<T: Serialize>(v: &T) -> Result<String> {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => Ok(s),
        Ok(other) => Err(Error::Backend(format!(
            "expected an enum name, got {other}"
        ))),
        Err(e) => Err(Error::Backend(format!("serializing: {e}"))),
    }
}

/// A column that holds JSON but also accepts bare text for strings (hand
/// written rows): the text is parsed as JSON when that gives a value `accept`
/// allows, else taken as a string.
pub fn lenient_json(text: &str, accept: fn(&Value) -> bool) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v) if accept(&v) => v,
        _ => Value::String(text.to_owned()),
    }
}
