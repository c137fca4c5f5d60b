//! Small helpers shared by the modules: error mapping, ids, JSON columns,
//! cursors and multi-row statements.

use std::sync::LazyLock;

use braid_store::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::Postgres;
use sqlx::postgres::{PgArguments, PgConnection};

/// Lists are clamped to `1..=MAX_PAGE` items.
pub(crate) const MAX_PAGE: u32 = 1000;

/// The clamped page size.
pub(crate) fn clamp_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_PAGE))
}

/// Numbers the `?` placeholders of SQL assembled from fragments as `$n`,
/// continuing after the highest `$n` already in the text (a fixed prefix).
pub(crate) fn numbered(sql: &str) -> String {
    let mut next = (1..=32)
        .rev()
        .find(|n| sql.contains(&format!("${n}")))
        .unwrap_or(0);
    let mut out = String::with_capacity(sql.len() + 16);
    for ch in sql.chars() {
        if ch == '?' {
            next += 1;
            out.push_str(&format!("${next}"));
        } else {
            out.push(ch);
        }
    }
    out
}

/// Maps sqlx errors to the store's errors: constraint violations are
/// conflicts, everything else is a backend failure.
pub(crate) fn db_error(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d)
            if d.is_unique_violation()
                || d.is_foreign_key_violation()
                || d.is_check_violation() =>
        {
            Error::Conflict(d.message().to_owned())
        }
        _ => Error::Backend(e.to_string()),
    }
}

/// `.db()?` on sqlx results.
pub(crate) trait Db<T> {
    fn db(self) -> Result<T>;
}

impl<T> Db<T> for std::result::Result<T, sqlx::Error> {
    fn db(self) -> Result<T> {
        self.map_err(db_error)
    }
}

/// A new id: `<prefix>_<uuid v7, simple form>`.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// JSON text of a value.
pub(crate) fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Backend(format!("serializing: {e}")))
}

/// Parses a JSON column.
pub(crate) fn parse_json(text: &str, what: &dyn Fn() -> String) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::Backend(format!("{}: invalid JSON: {e}", what())))
}

/// Parses an optional JSON column.
pub(crate) fn parse_json_opt(
    text: Option<&str>,
    what: &dyn Fn() -> String,
) -> Result<Option<Value>> {
    text.map(|t| parse_json(t, what)).transpose()
}

/// Deserializes a typed value from JSON.
pub(crate) fn from_value<T: DeserializeOwned>(v: Value, what: &dyn Fn() -> String) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::Backend(format!("{}: {e}", what())))
}

/// The serde name of a unit enum variant (`first_match`, `success` …).
pub(crate) fn enum_name<T: Serialize>(v: &T) -> Result<String> {
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
pub(crate) fn lenient_json(text: &str, accept: fn(&Value) -> bool) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v) if accept(&v) => v,
        _ => Value::String(text.to_owned()),
    }
}

/// A `created_at:id` cursor (newest-first lists).
pub(crate) fn encode_time_cursor(created_at: i64, id: &str) -> String {
    format!("{created_at}:{id}")
}

/// Parses a `created_at:id` cursor.
pub(crate) fn decode_time_cursor(cursor: &str) -> Result<(i64, String)> {
    cursor
        .split_once(':')
        .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_owned())))
        .ok_or_else(|| bad_cursor(cursor))
}

/// The error for a cursor this store did not hand out.
pub(crate) fn bad_cursor(cursor: &str) -> Error {
    Error::Invalid(format!(
        "cursor {cursor:?} was not issued by this server: pass back a `next_cursor` value"
    ))
}

pub(crate) type Query = sqlx::query::Query<'static, Postgres, PgArguments>;

/// A multi-row `INSERT … VALUES (…), (…) …` in a few fixed sizes, so that a
/// batch of any length runs as few statements as possible while the set of
/// distinct SQL texts (and so of cached prepared statements) stays small.
pub(crate) struct MultiRow {
    /// Rows per statement, descending, ending with 1.
    sizes: &'static [usize],
    /// The SQL text for each size.
    sql: Vec<&'static str>,
}

/// Rows per statement: a batch of n rows takes n / 256 statements plus at
/// most three of each smaller size, with five SQL texts per table (each a
/// prepared statement cached per connection). 256 rows × 14 columns stays
/// far below PostgreSQL's limit of 65 535 parameters.
const CHUNK_SIZES: &[usize] = &[256, 64, 16, 4, 1];

impl MultiRow {
    /// `head` is `INSERT INTO t (a, b, c)`, `tail` an optional `ON CONFLICT …`.
    pub(crate) fn new(head: &str, columns: usize, tail: &str) -> MultiRow {
        let sql = CHUNK_SIZES
            .iter()
            .map(|&n| {
                let rows: Vec<String> = (0..n)
                    .map(|r| {
                        let params: Vec<String> = (1..=columns)
                            .map(|c| format!("${}", r * columns + c))
                            .collect();
                        format!("({})", params.join(", "))
                    })
                    .collect();
                let text = format!("{head} VALUES {} {tail}", rows.join(", "));
                &*Box::leak(text.into_boxed_str())
            })
            .collect();
        MultiRow {
            sizes: CHUNK_SIZES,
            sql,
        }
    }

    /// Inserts `rows`, binding each with `bind` (which takes the row, so
    /// its strings are moved into the statement rather than copied).
    pub(crate) async fn run<T>(
        &self,
        conn: &mut PgConnection,
        rows: Vec<T>,
        bind: impl Fn(Query, T) -> Query,
    ) -> Result<()> {
        let mut left = rows.len();
        let mut rows = rows.into_iter();
        while left > 0 {
            let (i, &n) = self
                .sizes
                .iter()
                .enumerate()
                .find(|&(_, &n)| n <= left)
                .expect("sizes end with 1");
            let q = rows.by_ref().take(n).fold(sqlx::query(self.sql[i]), &bind);
            q.execute(&mut *conn).await.db()?;
            left -= n;
        }
        Ok(())
    }
}

/// Lazily built [`MultiRow`] statements.
pub(crate) type LazyMultiRow = LazyLock<MultiRow>;

/// One row per key, for a multi-row upsert: PostgreSQL refuses an
/// `ON CONFLICT DO UPDATE` that touches the same row twice in one
/// statement, while a batch may write a key several times (the last write
/// wins). `merge(earlier, later)` gives what applying both in order would
/// store; the merged row keeps the first occurrence's place.
pub(crate) fn merge_duplicates<T, K: std::hash::Hash + Eq>(
    rows: Vec<T>,
    key: impl Fn(&T) -> K,
    merge: impl Fn(T, T) -> T,
) -> Vec<T> {
    let mut at: std::collections::HashMap<K, usize> =
        std::collections::HashMap::with_capacity(rows.len());
    let mut out: Vec<Option<T>> = Vec::with_capacity(rows.len());
    for row in rows {
        match at.entry(key(&row)) {
            std::collections::hash_map::Entry::Occupied(i) => {
                let slot = &mut out[*i.get()];
                let earlier = slot.take().expect("filled");
                *slot = Some(merge(earlier, row));
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(out.len());
                out.push(Some(row));
            }
        }
    }
    out.into_iter().flatten().collect()
}
