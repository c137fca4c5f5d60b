//! The embedded SQLite backend of Braid's storage traits
//! ([`DefinitionStore`], [`RunStore`], [`TaskQueue`], [`ArtifactStore`]).
//!
//! One file, WAL journal, `synchronous=FULL` by default (every acknowledged
//! commit survives power loss; throughput comes from group commits). All
//! writes go through one dedicated writer connection behind an async mutex —
//! SQLite has a single writer anyway, and this avoids `SQLITE_BUSY` storms —
//! while reads use a small pool of read-only (`query_only`) connections.
//!
//! The schema (`migrations/0001_init.sql`) is documented in `docs/schema.md`;
//! definitions are stored normalized (one row per node, transition, action …)
//! so that they can be written by hand with SQL.

mod artifacts;
mod checkpoint;
mod defs;
mod runs;
mod util;
mod view;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use braid_core::definition::Bundle;
use braid_store::{
    ArtifactFilter, ArtifactRecord, ArtifactStore, ArtifactType, DefinitionStore, Error,
    EventFilter, EventRecord, Millis, NewEvent, NodeStats, Page, ParentFilter, Result, RunFilter,
    RunRecord, RunStore, SaveOutcome, SiblingSetSummary, StoredDef, TaskQueue, TaskRecord,
    TokenFilter, TokenHistory, TokenRecord, UsageTotals, WorkflowSummary, WriteOp,
};
use serde_json::Value;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, SqlStr};
use tokio::sync::Mutex;

use crate::util::Db;

/// How to open a database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file (created when missing).
    pub path: PathBuf,
    /// `synchronous=FULL` (default, durable across power loss) rather than
    /// `NORMAL` (durable across process crashes only).
    pub synchronous_full: bool,
}

impl SqliteOptions {
    /// Options for `path` with the defaults.
    pub fn new(path: impl Into<PathBuf>) -> SqliteOptions {
        SqliteOptions {
            path: path.into(),
            synchronous_full: true,
        }
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions::new("braid.db")
    }
}

/// Connections of the read pool.
const READ_CONNECTIONS: u32 = 4;
/// How long a connection waits for a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Prepared statements kept per connection (statements are cached by SQL text).
const STATEMENT_CACHE: usize = 256;

/// The migrations, embedded at compile time.
///
/// Built by hand rather than with `sqlx::migrate!()`, which needs sqlx's
/// `macros` feature (a second build of the drivers for the proc macro); the
/// result is the same `Migrator` (same `_sqlx_migrations` table, versions and
/// checksums) as the macro would produce for this folder.
fn migrator() -> Migrator {
    let m = |version: i64, name: &str, sql: &'static str| {
        Migration::new(
            version,
            name.to_string().into(),
            MigrationType::Simple,
            SqlStr::from_static(sql),
            false,
        )
    };
    Migrator::with_migrations(vec![
        m(1, "init", include_str!("../migrations/0001_init.sql")),
        m(
            2,
            "project_settings",
            include_str!("../migrations/0002_project_settings.sql"),
        ),
        m(
            3,
            "keyed_event_tables",
            include_str!("../migrations/0003_keyed_event_tables.sql"),
        ),
        m(
            4,
            "token_usage",
            include_str!("../migrations/0004_token_usage.sql"),
        ),
        m(
            5,
            "token_seqs",
            include_str!("../migrations/0005_token_seqs.sql"),
        ),
        m(
            6,
            "sibling_sets",
            include_str!("../migrations/0006_sibling_sets.sql"),
        ),
        m(7, "layout", include_str!("../migrations/0007_layout.sql")),
        m(
            8,
            "scale_out",
            include_str!("../migrations/0008_scale_out.sql"),
        ),
        m(
            9,
            "rate_limits",
            include_str!("../migrations/0009_rate_limits.sql"),
        ),
        m(10, "fork", include_str!("../migrations/0010_fork.sql")),
    ])
}

/// The SQLite store. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    writer: Mutex<SqliteConnection>,
    readers: SqlitePool,
    checkpointer: Mutex<checkpoint::Checkpointer>,
    written: std::sync::Arc<checkpoint::Signal>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating when missing) the database: WAL journal, foreign
    /// keys, busy timeout, migrations, and the `default` workspace and project.
    pub async fn open(opts: SqliteOptions) -> Result<SqliteStore> {
        let sync = if opts.synchronous_full {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        };
        let base = SqliteConnectOptions::new()
            .filename(&opts.path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .statement_cache_capacity(STATEMENT_CACHE);

        // Checkpoints run on a connection of their own, off the commit path.
        let mut writer = base
            .clone()
            .create_if_missing(true)
            .pragma("wal_autocheckpoint", "0")
            .connect()
            .await
            .db()?;
        migrator()
            .run(&mut writer)
            .await
            .map_err(|e| Error::Backend(format!("migrating {}: {e}", opts.path.display())))?;
        // The migration creates them; this puts them back if they were deleted.
        sqlx::raw_sql(
            "INSERT OR IGNORE INTO workspaces (id, name) VALUES ('ws_default', 'default');
             INSERT OR IGNORE INTO projects (id, workspace_id, name) VALUES ('proj_default', 'ws_default', 'default')",
        )
        .execute(&mut writer)
        .await
        .db()?;

        let checkpointer = checkpoint::Checkpointer::start(
            base.clone().create_if_missing(false).connect().await.db()?,
        );
        let readers = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .min_connections(0)
            .connect_with(base.create_if_missing(false).pragma("query_only", "ON"))
            .await
            .db()?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            readers,
            written: checkpointer.signal.clone(),
            checkpointer: Mutex::new(checkpointer),
        })
    }

    /// [`SqliteStore::open`] with the default options.
    pub async fn open_path(path: impl AsRef<Path>) -> Result<SqliteStore> {
        SqliteStore::open(SqliteOptions::new(path.as_ref())).await
    }

    /// Closes every connection (checkpointing the WAL).
    pub async fn close(self) -> Result<()> {
        self.checkpointer.lock().await.stop().await;
        self.readers.close().await;
        self.writer.into_inner().close().await.db()
    }

    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        self.readers.acquire().await.db()
    }
}

#[async_trait]
impl DefinitionStore for SqliteStore {
    async fn project_id(&self, project: &str) -> Result<String> {
        defs::project_id(&mut *self.reader().await?, project).await
    }

    async fn project_settings(&self, project_id: &str) -> Result<braid_store::ProjectSettings> {
        let row: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT snapshot_every_events FROM projects WHERE id = ?")
                .bind(project_id.to_owned())
                .fetch_optional(&mut *self.reader().await?)
                .await
                .map_err(|e| braid_store::Error::Backend(e.to_string()))?;
        let Some((snapshot_every_events,)) = row else {
            return Err(braid_store::Error::NotFound(format!(
                "project {project_id}"
            )));
        };
        Ok(braid_store::ProjectSettings {
            snapshot_every_events: snapshot_every_events.map(|n| n as u64),
        })
    }

    async fn save_bundle(
        &self,
        project_id: &str,
        bundle: &Bundle,
        now: Millis,
    ) -> Result<SaveOutcome> {
        let mut w = self.writer.lock().await;
        let saved = defs::save_bundle(&mut w, project_id, bundle, now, false).await?;
        // A version is one row per node, transition, action …: a few pages.
        self.written.wrote(16 * 4096);
        Ok(saved)
    }

    async fn save_experiment(
        &self,
        project_id: &str,
        bundle: &Bundle,
        now: Millis,
    ) -> Result<SaveOutcome> {
        let mut w = self.writer.lock().await;
        let saved = defs::save_bundle(&mut w, project_id, bundle, now, true).await?;
        self.written.wrote(16 * 4096);
        Ok(saved)
    }

    async fn get_def(
        &self,
        project_id: &str,
        id_or_name: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredDef>> {
        defs::get_def(&mut *self.reader().await?, project_id, id_or_name, version).await
    }

    async fn resolve_def(
        &self,
        project_id: &str,
        id_or_name: &str,
        version: Option<i64>,
    ) -> Result<Option<String>> {
        defs::resolve_def(&mut *self.reader().await?, project_id, id_or_name, version).await
    }

    async fn get_def_by_id(&self, def_id: &str) -> Result<Option<StoredDef>> {
        defs::load_def(&mut *self.reader().await?, def_id).await
    }

    async fn list_workflows(
        &self,
        project_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<WorkflowSummary>> {
        defs::list_workflows(&mut *self.reader().await?, project_id, cursor, limit).await
    }

    async fn artifact_types(&self, project_id: &str) -> Result<Vec<ArtifactType>> {
        defs::artifact_types(&mut *self.reader().await?, project_id).await
    }

    async fn workflow_names(&self, project_id: &str) -> Result<Vec<String>> {
        defs::workflow_names(&mut *self.reader().await?, project_id).await
    }
}

#[async_trait]
impl RunStore for SqliteStore {
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut w = self.writer.lock().await;
        let bytes = runs::commit(&mut w, ops).await?;
        self.written.wrote(bytes);
        Ok(())
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        runs::get_run(&mut *self.reader().await?, run_id).await
    }

    async fn list_runs(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<RunRecord>> {
        runs::list_runs(&mut *self.reader().await?, filter, cursor, limit).await
    }

    async fn children(&self, run_id: &str) -> Result<Vec<String>> {
        runs::children(&mut *self.reader().await?, run_id).await
    }

    async fn live_runs(&self) -> Result<Vec<RunRecord>> {
        runs::live_runs(&mut *self.reader().await?).await
    }

    async fn events(&self, run_id: &str, after: i64, limit: u32) -> Result<Vec<EventRecord>> {
        runs::events(&mut *self.reader().await?, run_id, after, limit).await
    }

    async fn events_text(&self, run_id: &str, after: i64, limit: u32) -> Result<Vec<NewEvent>> {
        runs::events_text(&mut *self.reader().await?, run_id, after, limit).await
    }

    async fn tokens(
        &self,
        run_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<TokenRecord>> {
        runs::tokens(&mut *self.reader().await?, run_id, cursor, limit).await
    }

    async fn token_history(&self, run_id: &str, token_id: &str) -> Result<Option<TokenHistory>> {
        runs::token_history(&mut *self.reader().await?, run_id, token_id).await
    }

    async fn usage_total(&self, run_id: &str) -> Result<UsageTotals> {
        runs::usage_total(&mut *self.reader().await?, run_id).await
    }

    async fn node_stats(&self, run_id: &str) -> Result<Vec<NodeStats>> {
        view::node_stats(&mut *self.reader().await?, run_id).await
    }

    async fn sibling_sets(
        &self,
        run_id: &str,
        parent: &ParentFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<SiblingSetSummary>> {
        view::sibling_sets(&mut *self.reader().await?, run_id, parent, cursor, limit).await
    }

    async fn filtered_events(
        &self,
        run_id: &str,
        filter: &EventFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<EventRecord>> {
        view::filtered_events(&mut *self.reader().await?, run_id, filter, after, limit).await
    }

    async fn filtered_tokens(
        &self,
        run_id: &str,
        filter: &TokenFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<TokenRecord>> {
        view::filtered_tokens(&mut *self.reader().await?, run_id, filter, cursor, limit).await
    }

    async fn result(&self, id: &str) -> Result<Option<Value>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT payload FROM results WHERE id = ?")
            .bind(id.to_owned())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(|e| braid_store::Error::Backend(e.to_string()))?;
        row.map(|(p,)| {
            serde_json::from_str(&p)
                .map_err(|e| braid_store::Error::Backend(format!("result {id}: {e}")))
        })
        .transpose()
    }

    async fn latest_snapshot(&self, run_id: &str) -> Result<Option<(i64, Value)>> {
        runs::latest_snapshot(&mut *self.reader().await?, run_id).await
    }
}

#[async_trait]
impl TaskQueue for SqliteStore {
    async fn claim_tasks(&self, now: Millis, lease_ms: i64, limit: u32) -> Result<Vec<TaskRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut w = self.writer.lock().await;
        runs::claim_tasks(&mut w, now, lease_ms, limit).await
    }

    async fn release_all_leases(&self) -> Result<u64> {
        let mut w = self.writer.lock().await;
        let r = sqlx::query("UPDATE tasks SET lease_until = NULL WHERE lease_until IS NOT NULL")
            .execute(&mut *w)
            .await
            .map_err(|e| braid_store::Error::Backend(e.to_string()))?;
        Ok(r.rows_affected())
    }

    async fn renew_leases(&self, task_ids: &[String], lease_until: Millis) -> Result<()> {
        if task_ids.is_empty() {
            return Ok(());
        }
        let mut w = self.writer.lock().await;
        runs::renew_leases(&mut w, task_ids, lease_until).await
    }

    async fn next_task_due(&self) -> Result<Option<Millis>> {
        runs::next_task_due(&mut *self.reader().await?).await
    }
}

#[async_trait]
impl ArtifactStore for SqliteStore {
    async fn put_artifact(&self, artifact: &ArtifactRecord) -> Result<String> {
        let mut w = self.writer.lock().await;
        let id = artifacts::put_artifact(&mut w, artifact).await?;
        // Artifacts can be large: they count towards the next checkpoint.
        self.written
            .wrote(artifact.content.to_string().len() as u64 + 512);
        Ok(id)
    }

    async fn get_artifact(&self, id: &str) -> Result<Option<ArtifactRecord>> {
        artifacts::get_artifact(&mut *self.reader().await?, id).await
    }

    async fn list_artifacts(
        &self,
        filter: &ArtifactFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<ArtifactRecord>> {
        artifacts::list_artifacts(&mut *self.reader().await?, filter, cursor, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pragma's value as text (some are integers, some text).
    async fn pragma_text(conn: &mut SqliteConnection, pragma: &'static str) -> String {
        use sqlx::Row;
        let row = sqlx::query(pragma).fetch_one(conn).await.unwrap();
        row.try_get::<String, _>(0)
            .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
            .unwrap()
    }

    #[tokio::test]
    async fn connections_use_wal_full_sync_and_foreign_keys_and_readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_path(dir.path().join("braid.db"))
            .await
            .unwrap();
        {
            let mut w = store.writer.lock().await;
            assert_eq!(pragma_text(&mut w, "PRAGMA journal_mode").await, "wal");
            assert_eq!(pragma_text(&mut w, "PRAGMA synchronous").await, "2", "FULL");
            assert_eq!(pragma_text(&mut w, "PRAGMA foreign_keys").await, "1");
            assert_eq!(pragma_text(&mut w, "PRAGMA query_only").await, "0");
        }
        let mut r = store.reader().await.unwrap();
        assert_eq!(pragma_text(&mut r, "PRAGMA query_only").await, "1");
        assert_eq!(pragma_text(&mut r, "PRAGMA foreign_keys").await, "1");
        let write = sqlx::query("INSERT INTO workspaces (id, name) VALUES ('ws_x', 'x')")
            .execute(&mut *r)
            .await;
        assert!(write.is_err());
        drop(r);
        store.close().await.unwrap();

        let store = SqliteStore::open(SqliteOptions {
            path: dir.path().join("braid.db"),
            synchronous_full: false,
        })
        .await
        .unwrap();
        let mut w = store.writer.lock().await;
        assert_eq!(
            pragma_text(&mut w, "PRAGMA synchronous").await,
            "1",
            "NORMAL"
        );
    }
}
