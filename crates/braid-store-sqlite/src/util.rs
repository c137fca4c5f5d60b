//! Small helpers shared by the modules: error mapping, ids and multi-row
//! statements. JSON columns, cursors and batching are not SQL and live in
//! `braid_store::sql_support`, shared with the other backend; they are
//! re-exported here so that the modules import them from one place.

use std::sync::LazyLock;

use braid_store::sql_support::batch::{CHUNK_SIZES, next_chunk};
use braid_store::{Error, Result};
use sqlx::Sqlite;
use sqlx::sqlite::{SqliteArguments, SqliteConnection};

pub(crate) use braid_store::sql_support::json::{parse_json, parse_json_opt, to_json};
pub(crate) use braid_store::sql_support::page::{
    bad_cursor, clamp_limit, decode_time_cursor, encode_time_cursor, page,
};

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

pub(crate) type Query = sqlx::query::Query<'static, Sqlite, SqliteArguments>;

/// A multi-row `INSERT … VALUES (…), (…) …` in a few fixed sizes, so that a
/// batch of any length runs as few statements as possible while the set of
/// distinct SQL texts (and so of cached prepared statements) stays small.
pub(crate) struct MultiRow {
    /// The SQL text for each of [`CHUNK_SIZES`].
    sql: Vec<&'static str>,
}

impl MultiRow {
    /// `head` is `INSERT INTO t (a, b, c)`, `tail` an optional `ON CONFLICT …`.
    pub(crate) fn new(head: &str, columns: usize, tail: &str) -> MultiRow {
        let row = format!("({})", vec!["?"; columns].join(", "));
        let sql = CHUNK_SIZES
            .iter()
            .map(|&n| {
                let text = format!("{head} VALUES {} {tail}", vec![row.as_str(); n].join(", "));
                &*Box::leak(text.into_boxed_str())
            })
            .collect();
        MultiRow { sql }
    }

    /// Inserts `rows`, binding each with `bind` (which takes the row, so
    /// its strings are moved into the statement rather than copied).
    pub(crate) async fn run<T>(
        &self,
        conn: &mut SqliteConnection,
        rows: Vec<T>,
        bind: impl Fn(Query, T) -> Query,
    ) -> Result<()> {
        let mut left = rows.len();
        let mut rows = rows.into_iter();
        while left > 0 {
            let (i, n) = next_chunk(left);
            let q = rows.by_ref().take(n).fold(sqlx::query(self.sql[i]), &bind);
            q.execute(&mut *conn).await.db()?;
            left -= n;
        }
        Ok(())
    }
}

/// Lazily built [`MultiRow`] statements.
pub(crate) type LazyMultiRow = LazyLock<MultiRow>;
