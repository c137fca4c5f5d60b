//! Page sizes and cursors. A cursor is opaque to clients; a backend only
//! ever parses the ones it handed out, and one it did not is the same
//! [`Error::Invalid`] on every backend.

use crate::{Error, Page, Result};

/// Lists are clamped to `1..=MAX_PAGE` items.
pub const MAX_PAGE: u32 = 1000;

/// The clamped page size, as SQL integers are bound.
pub fn clamp_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_PAGE))
}

/// A `created_at:id` cursor (newest-first lists).
pub fn encode_time_cursor(created_at: i64, id: &str) -> String {
    format!("{created_at}:{id}")
}

/// Parses a `created_at:id` cursor.
pub fn decode_time_cursor(cursor: &str) -> Result<(i64, String)> {
    cursor
        .split_once(':')
        .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_owned())))
        .ok_or_else(|| bad_cursor(cursor))
}

/// The error for a cursor this store did not hand out.
pub fn bad_cursor(cursor: &str) -> Error {
    Error::Invalid(format!(
        "cursor {cursor:?} was not issued by this server: pass back a `next_cursor` value"
    ))
}

/// A page from the rows of a query run with `LIMIT limit + 1`: the first
/// `limit` items and, when there was one more, the cursor of the last item
/// kept (the extra row only says that another page exists).
pub fn page<T>(mut items: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next_cursor }
}
