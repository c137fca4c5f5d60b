//! A fresh PostgreSQL database per bench case, created on the server the
//! bench is pointed at (`--database-url` / `BRAID_BENCH_DATABASE_URL`) and
//! dropped afterwards, as `braid_store_postgres::testing::TestDb` does for
//! the tests: every case starts from an empty, freshly migrated schema, so
//! no case pays for the tables another one filled.

use anyhow::{Context, Result};
use braid_store_postgres::url::{mask, with_database};
use sqlx::{Connection, Executor, PgConnection};

/// The environment variable naming the bench's PostgreSQL server.
pub const URL_VAR: &str = "BRAID_BENCH_DATABASE_URL";

/// A database created for one case. [`BenchDb::drop_now`] drops it; if the
/// process dies first it stays behind (named `braid_bench_…`) with the rest
/// of the throw-away server.
#[derive(Debug)]
pub struct BenchDb {
    server: String,
    name: String,
    url: String,
}

impl BenchDb {
    /// Creates an empty database on the server of `server_url` (whose own
    /// database is only used to connect).
    pub async fn create(server_url: &str) -> Result<BenchDb> {
        let name = format!("braid_bench_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(server_url)
            .await
            .with_context(|| format!("connecting to {}", mask(server_url)))?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .with_context(|| format!("creating the database {name}"))?;
        let _ = admin.close().await;
        Ok(BenchDb {
            server: server_url.to_string(),
            url: with_database(server_url, &name),
            name,
        })
    }

    /// The URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, closing whatever connections are left on it.
    pub async fn drop_now(self) -> Result<()> {
        drop_database(&self.server, &self.name).await
    }
}

/// `DROP DATABASE IF EXISTS name WITH (FORCE)` on the server of `server_url`.
pub async fn drop_database(server_url: &str, name: &str) -> Result<()> {
    let mut admin = PgConnection::connect(server_url)
        .await
        .with_context(|| format!("connecting to {}", mask(server_url)))?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await
        .with_context(|| format!("dropping the database {name}"))?;
    let _ = admin.close().await;
    Ok(())
}

/// The names of the server's databases starting with `prefix`.
pub async fn databases_with_prefix(server_url: &str, prefix: &str) -> Result<Vec<String>> {
    let mut admin = PgConnection::connect(server_url)
        .await
        .with_context(|| format!("connecting to {}", mask(server_url)))?;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind(prefix)
            .fetch_all(&mut admin)
            .await?;
    let _ = admin.close().await;
    Ok(names)
}

/// The server's version string and the settings that decide commit cost.
pub async fn server_settings(server_url: &str) -> Result<Vec<(String, String)>> {
    let mut admin = PgConnection::connect(server_url)
        .await
        .with_context(|| format!("connecting to {}", mask(server_url)))?;
    let mut out = Vec::new();
    for name in [
        "server_version",
        "fsync",
        "synchronous_commit",
        "wal_sync_method",
        "max_connections",
        "shared_buffers",
        "commit_delay",
    ] {
        let v: String = sqlx::query_scalar("SELECT current_setting($1)")
            .bind(name)
            .fetch_one(&mut admin)
            .await?;
        out.push((name.to_string(), v));
    }
    let _ = admin.close().await;
    Ok(out)
}
