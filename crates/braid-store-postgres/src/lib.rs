//! The PostgreSQL backend of Braid's storage traits
//! ([`DefinitionStore`], [`RunStore`], [`TaskQueue`], [`ArtifactStore`]),
//! through sqlx's PostgreSQL driver.
//!
//! The same tables, columns and migration numbers as the SQLite backend
//! (`migrations/`, docs/schema.md), with PostgreSQL's own SQL: `$n`
//! parameters, arrays instead of `json_each`, `FOR UPDATE SKIP LOCKED`
//! claims, JSONB for the definition tables (docs/postgres.md says which
//! columns and why). Every call takes a connection from one pool: PostgreSQL
//! has many writers, so there is no writer lock; a group commit
//! ([`RunStore::commit`]) is one transaction on one connection.
//!
//! Migrations run at [`PgStore::connect`] under an advisory lock, so that
//! several `braid serve` processes starting together migrate once; a
//! database migrated by a newer binary is refused.

mod artifacts;
mod cluster;
mod connect;
mod defs;
mod runs;
pub mod testing;
pub mod url;
mod util;
mod view;

pub use connect::DEFAULT_CONNECT_TIMEOUT;

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
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, SqlStr};

use crate::util::Db;

/// How to connect.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database?…` (libpq URL syntax;
    /// `connect_timeout=<seconds>` bounds connecting, [`DEFAULT_CONNECT_TIMEOUT`]
    /// when absent).
    pub url: String,
    /// Connections of the pool.
    pub max_connections: u32,
}

impl PgOptions {
    /// Options for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: url.into(),
            max_connections: DEFAULT_CONNECTIONS,
        }
    }
}

/// Connections of the pool by default: the group committer holds one, the
/// executor's claims and the API's reads share the rest.
const DEFAULT_CONNECTIONS: u32 = 8;

/// Key of the session advisory lock held while migrating (any fixed number
/// of our own; sqlx's migrator lock is turned off so there is one lock).
const MIGRATION_LOCK: i64 = 0x6272_6169_645f_6d67; // "braid_mg"

/// The migrations, embedded at compile time: the same numbers and names as
/// the SQLite backend's, each with the same meaning. Built by hand rather
/// than with `sqlx::migrate!()`, which needs sqlx's `macros` feature.
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
    let mut migrator = Migrator::with_migrations(vec![
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
    ]);
    migrator.set_locking(false);
    migrator
}

/// The highest migration this binary knows.
pub fn latest_migration() -> i64 {
    migrator().iter().map(|m| m.version).max().unwrap_or(0)
}

/// The PostgreSQL store. Cheap to share behind an `Arc`.
pub struct PgStore {
    pool: PgPool,
    /// This process's `servers` id when it is one of a cluster
    /// ([`PgStore::serve_as`]).
    server: Option<String>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects, migrates (once, under an advisory lock, however many
    /// processes start together) and opens the pool. A database whose
    /// schema is newer than this binary knows is refused. Connecting is
    /// bounded by the URL's `connect_timeout` (seconds, libpq's name;
    /// [`DEFAULT_CONNECT_TIMEOUT`] when absent, `0` for no bound).
    pub async fn connect(opts: PgOptions) -> Result<PgStore> {
        let (url, timeout) = connect::split_connect_timeout(&opts.url)?;
        let connect: PgConnectOptions = url.parse().map_err(|e| {
            Error::Invalid(format!(
                "database URL: {e} (expected postgres://user@host:port/database)"
            ))
        })?;
        let mut conn = connect::bounded(timeout, connect.connect()).await?;
        let migrated = migrate(&mut conn).await;
        // The lock is the session's: closing the connection releases it
        // whatever happened.
        let _ = conn.close().await;
        migrated?;
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(2))
            .min_connections(0)
            .connect_with(connect);
        let pool = connect::bounded(timeout, pool).await?;
        Ok(PgStore { pool, server: None })
    }

    /// Makes this store the one of process `server_id` of a cluster
    /// (`braid_store::Cluster`): it claims only the tasks of the runs the
    /// process owns, records its claims, and tells the other processes
    /// which runs each commit touched.
    pub fn serve_as(&mut self, server_id: &str) {
        self.server = Some(server_id.to_string());
    }

    /// [`PgStore::connect`] with the default options.
    pub async fn connect_url(url: &str) -> Result<PgStore> {
        PgStore::connect(PgOptions::new(url)).await
    }

    /// Closes every connection of the pool.
    pub async fn close(self) {
        self.pool.close().await;
    }

    /// The pool (for tests and tools that read the tables directly).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        self.pool.acquire().await.db()
    }
}

/// Applies the pending migrations under [`MIGRATION_LOCK`]; refuses a
/// schema newer than [`latest_migration`].
async fn migrate(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await
        .db()?;
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(&mut *conn)
        .await
        .db()?;
    let applied: Option<i64> = match table {
        None => None,
        Some(_) => sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
            .fetch_one(&mut *conn)
            .await
            .db()?,
    };
    let known = latest_migration();
    if let Some(applied) = applied.filter(|&v| v > known) {
        return Err(Error::Backend(format!(
            "the database schema is at migration {applied}, newer than this braid knows \
             (up to {known}): a newer braid migrated it; run that version, or point this one \
             at another database"
        )));
    }
    migrator()
        .run_direct(None, &mut *conn, false)
        .await
        .map_err(|e| connect::migrate_error(&e))?;
    // The migration creates them; this puts them back if they were deleted.
    sqlx::raw_sql(
        "INSERT INTO workspaces (id, name) VALUES ('ws_default', 'default') ON CONFLICT DO NOTHING;
         INSERT INTO projects (id, workspace_id, name) VALUES ('proj_default', 'ws_default', 'default')
             ON CONFLICT DO NOTHING",
    )
    .execute(&mut *conn)
    .await
    .db()?;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await
        .db()?;
    Ok(())
}

#[async_trait]
impl DefinitionStore for PgStore {
    async fn project_id(&self, project: &str) -> Result<String> {
        defs::project_id(&mut *self.conn().await?, project).await
    }

    async fn project_settings(&self, project_id: &str) -> Result<braid_store::ProjectSettings> {
        let row: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT snapshot_every_events FROM projects WHERE id = $1")
                .bind(project_id.to_owned())
                .fetch_optional(&mut *self.conn().await?)
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
        let mut w = self.conn().await?;
        defs::save_bundle(&mut w, project_id, bundle, now, false).await
    }

    async fn save_experiment(
        &self,
        project_id: &str,
        bundle: &Bundle,
        now: Millis,
    ) -> Result<SaveOutcome> {
        let mut w = self.conn().await?;
        defs::save_bundle(&mut w, project_id, bundle, now, true).await
    }

    async fn get_def(
        &self,
        project_id: &str,
        id_or_name: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredDef>> {
        defs::get_def(&mut *self.conn().await?, project_id, id_or_name, version).await
    }

    async fn resolve_def(
        &self,
        project_id: &str,
        id_or_name: &str,
        version: Option<i64>,
    ) -> Result<Option<String>> {
        defs::resolve_def(&mut *self.conn().await?, project_id, id_or_name, version).await
    }

    async fn get_def_by_id(&self, def_id: &str) -> Result<Option<StoredDef>> {
        defs::load_def(&mut *self.conn().await?, def_id).await
    }

    async fn list_workflows(
        &self,
        project_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<WorkflowSummary>> {
        defs::list_workflows(&mut *self.conn().await?, project_id, cursor, limit).await
    }

    async fn artifact_types(&self, project_id: &str) -> Result<Vec<ArtifactType>> {
        defs::artifact_types(&mut *self.conn().await?, project_id).await
    }

    async fn workflow_names(&self, project_id: &str) -> Result<Vec<String>> {
        defs::workflow_names(&mut *self.conn().await?, project_id).await
    }
}

#[async_trait]
impl RunStore for PgStore {
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut w = self.conn().await?;
        runs::commit(&mut w, ops, self.server.as_deref()).await
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        runs::get_run(&mut *self.conn().await?, run_id).await
    }

    async fn list_runs(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<RunRecord>> {
        runs::list_runs(&mut *self.conn().await?, filter, cursor, limit).await
    }

    async fn children(&self, run_id: &str) -> Result<Vec<String>> {
        runs::children(&mut *self.conn().await?, run_id).await
    }

    async fn live_runs(&self) -> Result<Vec<RunRecord>> {
        runs::live_runs(&mut *self.conn().await?).await
    }

    async fn events(&self, run_id: &str, after: i64, limit: u32) -> Result<Vec<EventRecord>> {
        runs::events(&mut *self.conn().await?, run_id, after, limit).await
    }

    async fn events_text(&self, run_id: &str, after: i64, limit: u32) -> Result<Vec<NewEvent>> {
        runs::events_text(&mut *self.conn().await?, run_id, after, limit).await
    }

    async fn tokens(
        &self,
        run_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<TokenRecord>> {
        runs::tokens(&mut *self.conn().await?, run_id, cursor, limit).await
    }

    async fn token_history(&self, run_id: &str, token_id: &str) -> Result<Option<TokenHistory>> {
        runs::token_history(&mut *self.conn().await?, run_id, token_id).await
    }

    async fn usage_total(&self, run_id: &str) -> Result<UsageTotals> {
        runs::usage_total(&mut *self.conn().await?, run_id).await
    }

    async fn node_stats(&self, run_id: &str) -> Result<Vec<NodeStats>> {
        view::node_stats(&mut *self.conn().await?, run_id).await
    }

    async fn sibling_sets(
        &self,
        run_id: &str,
        parent: &ParentFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<SiblingSetSummary>> {
        view::sibling_sets(&mut *self.conn().await?, run_id, parent, cursor, limit).await
    }

    async fn filtered_events(
        &self,
        run_id: &str,
        filter: &EventFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<EventRecord>> {
        view::filtered_events(&mut *self.conn().await?, run_id, filter, after, limit).await
    }

    async fn filtered_tokens(
        &self,
        run_id: &str,
        filter: &TokenFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<TokenRecord>> {
        view::filtered_tokens(&mut *self.conn().await?, run_id, filter, cursor, limit).await
    }

    async fn result(&self, id: &str) -> Result<Option<Value>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT payload FROM results WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(&mut *self.conn().await?)
            .await
            .map_err(|e| braid_store::Error::Backend(e.to_string()))?;
        row.map(|(p,)| {
            serde_json::from_str(&p)
                .map_err(|e| braid_store::Error::Backend(format!("result {id}: {e}")))
        })
        .transpose()
    }

    async fn latest_snapshot(&self, run_id: &str) -> Result<Option<(i64, Value)>> {
        runs::latest_snapshot(&mut *self.conn().await?, run_id).await
    }
}

#[async_trait]
impl TaskQueue for PgStore {
    async fn claim_tasks(&self, now: Millis, lease_ms: i64, limit: u32) -> Result<Vec<TaskRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut w = self.conn().await?;
        runs::claim_tasks(&mut w, now, lease_ms, limit, self.server.as_deref()).await
    }

    /// Clears every lease in the database. Only right while one process
    /// serves the database; `braid serve` on PostgreSQL never calls it: it
    /// releases only the leases of the runs it adopts (`Cluster::adopt`).
    async fn release_all_leases(&self) -> Result<u64> {
        let mut w = self.conn().await?;
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
        let mut w = self.conn().await?;
        runs::renew_leases(&mut w, task_ids, lease_until).await
    }

    async fn next_task_due(&self) -> Result<Option<Millis>> {
        runs::next_task_due(&mut *self.conn().await?, self.server.as_deref()).await
    }
}

#[async_trait]
impl ArtifactStore for PgStore {
    async fn put_artifact(&self, artifact: &ArtifactRecord) -> Result<String> {
        let mut w = self.conn().await?;
        artifacts::put_artifact(&mut w, artifact).await
    }

    async fn get_artifact(&self, id: &str) -> Result<Option<ArtifactRecord>> {
        artifacts::get_artifact(&mut *self.conn().await?, id).await
    }

    async fn list_artifacts(
        &self,
        filter: &ArtifactFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<ArtifactRecord>> {
        artifacts::list_artifacts(&mut *self.conn().await?, filter, cursor, limit).await
    }
}
