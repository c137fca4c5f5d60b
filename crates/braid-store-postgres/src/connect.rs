//! Connecting at start: how long it may take, and what its errors say.
//!
//! sqlx has no connect timeout of its own: a host that drops packets, or a
//! port that accepts and never answers (a stuck server, a proxy whose
//! backend is gone), kept `braid serve` waiting forever at start, saying
//! nothing. The bound is libpq's `connect_timeout` URL parameter (seconds;
//! `0` waits indefinitely, as in libpq), taken out of the URL before sqlx
//! parses it (sqlx would warn that it ignores it), with a default of
//! [`DEFAULT_CONNECT_TIMEOUT`] where libpq has none: a server start should
//! fail with a message rather than hang.
//!
//! sqlx's text of a server error ends in ` at line N`: the line of
//! PostgreSQL's own C source that raised it, which a reader takes for a
//! line of the URL or of a migration. The messages here leave it out.

use std::future::Future;
use std::time::Duration;

use braid_store::{Error, Result};

/// The bound when the URL sets no `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The URL parameter, as libpq names it.
const PARAM: &str = "connect_timeout";

/// `url` without its `connect_timeout` parameter, and the bound it asks
/// for (`None`: no bound).
pub(crate) fn split_connect_timeout(url: &str) -> Result<(String, Option<Duration>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), Some(DEFAULT_CONNECT_TIMEOUT)));
    };
    let mut timeout = Some(DEFAULT_CONNECT_TIMEOUT);
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some((PARAM, value)) => {
                let seconds: i64 = value.trim().parse().map_err(|_| {
                    Error::Invalid(format!(
                        "database URL: {PARAM}={value} is not a whole number of seconds"
                    ))
                })?;
                timeout = (seconds > 0).then(|| Duration::from_secs(seconds as u64));
            }
            _ if pair.is_empty() => {}
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, timeout))
}

/// `connecting` within `timeout`; an expired bound is a backend error that
/// says so (rather than sqlx's silence).
pub(crate) async fn bounded<T>(
    timeout: Option<Duration>,
    connecting: impl Future<Output = std::result::Result<T, sqlx::Error>>,
) -> Result<T> {
    let connected = match timeout {
        None => connecting.await,
        Some(limit) => match tokio::time::timeout(limit, connecting).await {
            Ok(connected) => connected,
            Err(_) => {
                return Err(Error::Backend(format!(
                    "connecting to PostgreSQL: no answer within {} s (the URL's \
                     {PARAM}, {} s by default)",
                    limit.as_secs(),
                    DEFAULT_CONNECT_TIMEOUT.as_secs()
                )));
            }
        },
    };
    connected.map_err(|e| {
        let why = match &e {
            sqlx::Error::Io(io) => format!("cannot reach the server: {io}"),
            e => server_text(e),
        };
        Error::Backend(format!("connecting to PostgreSQL: {why}"))
    })
}

/// A server error's message (without sqlx's ` at line N`); other errors
/// as sqlx says them.
fn server_text(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_owned(),
        e => e.to_string(),
    }
}

/// A failed migration, said plainly; a missing privilege (PostgreSQL 15
/// no longer lets every user create tables in `public`) says what the user
/// needs.
pub(crate) fn migrate_error(e: &sqlx::migrate::MigrateError) -> Error {
    use sqlx::migrate::MigrateError;
    let (inner, what) = match e {
        MigrateError::Execute(inner) => (inner, String::new()),
        MigrateError::ExecuteMigration(inner, version) => (inner, format!(" {version}")),
        e => {
            return Error::Backend(format!("migrating the PostgreSQL database: {e}"));
        }
    };
    let hint = match inner {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("42501") => {
            " (braid creates its tables in the schema `public` at the first start: the user \
             needs to own the database, or have CREATE on that schema)"
        }
        _ => "",
    };
    Error::Backend(format!(
        "migrating the PostgreSQL database{what}: {}{hint}",
        server_text(inner)
    ))
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_CONNECT_TIMEOUT, split_connect_timeout};
    use std::time::Duration;

    #[test]
    fn connect_timeout_is_taken_out_of_the_url_and_defaults_to_ten_seconds() {
        let split = |url: &str| split_connect_timeout(url).unwrap();
        assert_eq!(
            split("postgres://u@h/db"),
            ("postgres://u@h/db".into(), Some(DEFAULT_CONNECT_TIMEOUT))
        );
        assert_eq!(
            split("postgres://u@h/db?connect_timeout=3"),
            ("postgres://u@h/db".into(), Some(Duration::from_secs(3)))
        );
        assert_eq!(
            split("postgres://u@h/db?sslmode=disable&connect_timeout=0&application_name=x"),
            (
                "postgres://u@h/db?sslmode=disable&application_name=x".into(),
                None
            )
        );
        assert_eq!(
            split("postgres://u@h/db?sslmode=disable"),
            (
                "postgres://u@h/db?sslmode=disable".into(),
                Some(DEFAULT_CONNECT_TIMEOUT)
            )
        );
        let err = split_connect_timeout("postgres://u@h/db?connect_timeout=soon").unwrap_err();
        assert!(err.to_string().contains("connect_timeout=soon"), "{err}");
    }
}
