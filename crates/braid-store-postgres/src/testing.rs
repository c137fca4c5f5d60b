//! Test support: a fresh database per test on the PostgreSQL server that
//! `scripts/pg.sh` started (or any server the developer points at), so
//! tests run in parallel, each process on its own database.
//!
//! The server's URL comes from `BRAID_TEST_DATABASE_URL`, else from the
//! file `target/braid-test-pg.url` that `scripts/pg.sh start` writes. With
//! neither, [`TestDb::create`] returns `None` after printing why (the test
//! then skips), except under `CI=true`, where it panics: a CI run must
//! never pass by skipping the PostgreSQL tests.

use std::path::PathBuf;

use crate::url::with_database;

use sqlx::{Connection, Executor, PgConnection};

/// The environment variable naming the test server.
pub const URL_VAR: &str = "BRAID_TEST_DATABASE_URL";

/// A database created for one test, dropped (with its connections) when
/// this is dropped.
#[derive(Debug)]
pub struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDb {
    /// Creates an empty database on the test server; `None` (after printing
    /// the reason) when there is no server and `CI` is not `true`.
    pub async fn create() -> Option<TestDb> {
        let Some(admin_url) = server_url() else {
            let why = format!(
                "no PostgreSQL test server: set {URL_VAR} or run `scripts/pg.sh start` \
                 (scripts/test.sh does)"
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{why}; CI=true, so this test fails instead of skipping");
            }
            eprintln!("skipped: {why}");
            return None;
        };
        let name = format!("braid_t_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test server {admin_url}: {e}"));
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("creating the test database {name}: {e}"));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        Some(TestDb {
            admin_url,
            name,
            url,
        })
    }

    /// The URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on:
        // the database is dropped from a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await?;
                admin.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("dropping the test database {}: {e}", self.name);
        }
    }
}

/// The test server's URL: the environment, else the file `scripts/pg.sh` wrote.
fn server_url() -> Option<String> {
    if let Ok(url) = std::env::var(URL_VAR)
        && !url.trim().is_empty()
    {
        return Some(url.trim().to_owned());
    }
    let file = url_file();
    std::fs::read_to_string(file)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// `target/braid-test-pg.url` of the workspace.
pub fn url_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/braid-test-pg.url")
}
