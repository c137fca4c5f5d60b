//! Scale-out on PostgreSQL ([`Cluster`]): the `servers` registry and its
//! heartbeats, adoption of the run trees of processes that are gone,
//! cancels for another process's runs, and `LISTEN/NOTIFY` wake-ups.
//!
//! Correctness rests on row locks and transactions only: adoption bumps a
//! run's epoch under its row lock, and every commit of the run checks the
//! epoch ([`WriteOp::UpdateRun`](braid_store::WriteOp::UpdateRun)), so a
//! process that lost a run can never write it again. Notifications only
//! save the others a poll.

use async_trait::async_trait;
use braid_store::{CancelRequest, Cluster, Result, RunRecord, Wake};
use futures::stream::BoxStream;
use sqlx::postgres::{PgConnection, PgListener};
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::PgStore;
use crate::util::Db;

/// The database's clock in milliseconds since the epoch: leases are
/// compared with one clock whatever the processes' machines say.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Channels: runs that committed (payload: run ids, comma-separated), a
/// cancel requested (payload: the run id), a process started or stopped.
const RUNS: &str = "braid_runs";
const CANCEL: &str = "braid_cancel";
const SERVERS: &str = "braid_servers";

/// A notification payload stays under PostgreSQL's 8,000-byte limit.
const MAX_PAYLOAD: usize = 7_000;

#[async_trait]
impl Cluster for PgStore {
    async fn register(&self, server_id: &str, lease_ms: i64) -> Result<()> {
        let sql = format!(
            "INSERT INTO servers (id, started_at, heartbeat_at, lease_until)
             VALUES ($1, {NOW_MS}, {NOW_MS}, {NOW_MS} + $2)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
                 lease_until = excluded.lease_until, stopped_at = NULL"
        );
        let mut c = self.conn().await?;
        sqlx::query(AssertSqlSafe(sql))
            .bind(server_id)
            .bind(lease_ms)
            .execute(&mut *c)
            .await
            .db()?;
        notify(&mut c, SERVERS, server_id).await
    }

    async fn heartbeat(&self, server_id: &str, lease_ms: i64) -> Result<u64> {
        let sql = format!(
            "WITH beat AS (UPDATE servers SET heartbeat_at = {NOW_MS}, lease_until = {NOW_MS} + $2
                           WHERE id = $1 AND stopped_at IS NULL RETURNING id)
             SELECT (SELECT count(*) FROM beat),
                    (SELECT count(*) FROM servers WHERE stopped_at IS NULL AND lease_until > {NOW_MS})"
        );
        let (beat, live): (i64, i64) = sqlx::query_as(AssertSqlSafe(sql))
            .bind(server_id)
            .bind(lease_ms)
            .fetch_one(&mut *self.conn().await?)
            .await
            .db()?;
        if beat == 0 {
            // The row was removed by hand: this process is still serving.
            self.register(server_id, lease_ms).await?;
            return Ok(live as u64 + 1);
        }
        Ok(live.max(1) as u64)
    }

    async fn adopt(&self, server_id: &str, limit: u32) -> Result<Vec<RunRecord>> {
        let mut c = self.conn().await?;
        let mut tx = c.begin().await.db()?;
        let roots_sql = format!(
            "SELECT r.id FROM workflow_runs r
             WHERE r.status = 'running' AND r.parent_run_id IS NULL
               AND r.owner IS DISTINCT FROM $1
               AND NOT EXISTS (SELECT 1 FROM servers s
                               WHERE s.id = r.owner AND s.stopped_at IS NULL AND s.lease_until > {NOW_MS})
             ORDER BY r.created_at, r.id
             LIMIT $2
             FOR UPDATE OF r SKIP LOCKED"
        );
        let roots: Vec<String> = sqlx::query_scalar(AssertSqlSafe(roots_sql))
            .bind(server_id)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .db()?;
        if roots.is_empty() {
            return Ok(Vec::new());
        }
        // The whole tree moves: a child run is owned with its parent, which
        // talks to it in-process.
        let adopt_sql = format!(
            "WITH RECURSIVE tree(id) AS (
                 SELECT unnest($1::text[]) COLLATE \"C\"
                 UNION ALL
                 SELECT c.id FROM workflow_runs c JOIN tree t ON c.parent_run_id = t.id
                 WHERE c.status = 'running')
             UPDATE workflow_runs r SET owner = $2, epoch = r.epoch + 1
             FROM tree WHERE r.id = tree.id
             RETURNING r.id, r.epoch, {NOW_MS} AS since"
        );
        let rows = sqlx::query(AssertSqlSafe(adopt_sql))
            .bind(&roots)
            .bind(server_id)
            .fetch_all(&mut *tx)
            .await
            .db()?;
        let mut owners = Vec::with_capacity(rows.len());
        for r in &rows {
            owners.push((
                r.try_get::<String, _>("id").db()?,
                r.try_get::<i64, _>("epoch").db()?,
                server_id.to_string(),
                r.try_get::<i64, _>("since").db()?,
            ));
        }
        let ids: Vec<String> = owners.iter().map(|o| o.0.clone()).collect();
        record_owners(&mut tx, owners).await?;
        // Tasks claimed by the old owner are claimable again at once.
        sqlx::query(
            "UPDATE tasks SET lease_until = NULL, claimed_by = NULL WHERE run_id = ANY($1)",
        )
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .db()?;
        let adopted = crate::runs::runs_by_ids(&mut tx, &ids).await?;
        tx.commit().await.db()?;
        Ok(adopted)
    }

    async fn lost(&self, server_id: &str, run_ids: &[String]) -> Result<Vec<String>> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar(
            "SELECT id FROM workflow_runs WHERE id = ANY($1) AND owner IS DISTINCT FROM $2",
        )
        .bind(run_ids)
        .bind(server_id)
        .fetch_all(&mut *self.conn().await?)
        .await
        .db()
    }

    async fn stop(&self, server_id: &str) -> Result<()> {
        let sql = format!(
            "UPDATE servers SET stopped_at = {NOW_MS}, lease_until = {NOW_MS} WHERE id = $1"
        );
        let mut c = self.conn().await?;
        sqlx::query(AssertSqlSafe(sql))
            .bind(server_id)
            .execute(&mut *c)
            .await
            .db()?;
        notify(&mut c, SERVERS, server_id).await
    }

    async fn request_cancel(&self, run_id: &str, reason: &str) -> Result<bool> {
        let sql = format!(
            "UPDATE workflow_runs SET cancel_requested_at = {NOW_MS}, cancel_reason = $2
             WHERE id = $1 AND status = 'running'"
        );
        let mut c = self.conn().await?;
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(run_id)
            .bind(reason)
            .execute(&mut *c)
            .await
            .db()?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        notify(&mut c, CANCEL, run_id).await?;
        Ok(true)
    }

    async fn cancel_requests(&self, server_id: &str) -> Result<Vec<CancelRequest>> {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT id, cancel_reason FROM workflow_runs
             WHERE owner = $1 AND status = 'running' AND cancel_requested_at IS NOT NULL",
        )
        .bind(server_id)
        .fetch_all(&mut *self.conn().await?)
        .await
        .db()?;
        Ok(rows
            .into_iter()
            .map(|(run_id, reason)| CancelRequest {
                run_id,
                reason: reason.unwrap_or_else(|| "cancelled".into()),
            })
            .collect())
    }

    async fn wakes(&self) -> Result<BoxStream<'static, Wake>> {
        let mut listener = PgListener::connect_with(self.pool()).await.db()?;
        listener.listen_all([RUNS, CANCEL, SERVERS]).await.db()?;
        let stream = futures::stream::unfold(listener, |mut l| async move {
            let wake = match l.try_recv().await {
                Ok(Some(n)) => match n.channel() {
                    RUNS => Wake::Runs(n.payload().split(',').map(str::to_string).collect()),
                    CANCEL => Wake::Cancel(n.payload().to_string()),
                    _ => Wake::Servers,
                },
                // The connection dropped; the next call reconnects.
                Ok(None) => Wake::Reconnected,
                Err(e) => {
                    tracing::warn!(error = %e, "the notification connection failed; retrying");
                    // Real time: a back-off for an unreachable database.
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    Wake::Reconnected
                }
            };
            Some((wake, l))
        });
        Ok(Box::pin(stream))
    }
}

async fn notify(c: &mut PgConnection, channel: &str, payload: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(&mut *c)
        .await
        .db()?;
    Ok(())
}

/// Tells the other processes that these runs committed, in the commit's
/// transaction (delivered when it commits, dropped if it rolls back).
pub(crate) async fn notify_runs<'a>(
    c: &mut PgConnection,
    runs: impl Iterator<Item = &'a str>,
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let mut payloads: Vec<String> = Vec::new();
    for run in runs.filter(|r| seen.insert(*r)) {
        match payloads.last_mut() {
            Some(p) if p.len() + run.len() < MAX_PAYLOAD => {
                p.push(',');
                p.push_str(run);
            }
            _ => payloads.push(run.to_string()),
        }
    }
    if payloads.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
        .bind(RUNS)
        .bind(payloads)
        .execute(&mut *c)
        .await
        .db()?;
    Ok(())
}

/// `run_owners` rows: (run, epoch, owner, since).
pub(crate) async fn record_owners(
    c: &mut PgConnection,
    rows: Vec<(String, i64, String, i64)>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut runs = Vec::with_capacity(rows.len());
    let mut epochs = Vec::with_capacity(rows.len());
    let mut owners = Vec::with_capacity(rows.len());
    let mut since = Vec::with_capacity(rows.len());
    for (r, e, o, s) in rows {
        runs.push(r);
        epochs.push(e);
        owners.push(o);
        since.push(s);
    }
    sqlx::query(
        "INSERT INTO run_owners (run_id, epoch, owner, since)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[])
         ON CONFLICT DO NOTHING",
    )
    .bind(runs)
    .bind(epochs)
    .bind(owners)
    .bind(since)
    .execute(&mut *c)
    .await
    .db()?;
    Ok(())
}
