//! Runs, events, tokens, snapshots and the task queue on PostgreSQL.

use std::collections::HashMap;
use std::sync::LazyLock;

use braid_store::sql_support::write_ops::{self, Batch, RunOp, TaskOp};
use braid_store::{
    Error, EventRecord, ForkedFrom, Millis, NewEvent, Page, Result, RunFilter, RunRecord,
    RunStatus, TaskRecord, TokenFilter, TokenHistory, TokenRecord, UsageTotals, WriteOp,
};
use serde_json::Value;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::util::{
    Db, LazyMultiRow, MultiRow, clamp_limit, decode_time_cursor, encode_time_cursor,
    merge_duplicates, numbered, page, parse_json, parse_json_opt,
};

static INSERT_EVENTS: LazyMultiRow = LazyLock::new(|| {
    MultiRow::new(
        "INSERT INTO events (run_id, seq, kind, ts, token_id, node, payload, epoch)",
        8,
        "",
    )
});

static UPSERT_TOKENS: LazyMultiRow = LazyLock::new(|| {
    MultiRow::new(
        "INSERT INTO tokens (run_id, seq, id, node, status, parent_token_id, sibling_set, branch_index, attempts,
                             created_at, started_at, ended_at, first_seq, last_seq)",
        14,
        "ON CONFLICT (run_id, seq) DO UPDATE SET
            id = excluded.id, node = excluded.node, status = excluded.status, parent_token_id = excluded.parent_token_id,
            sibling_set = excluded.sibling_set, branch_index = excluded.branch_index, attempts = excluded.attempts,
            created_at = excluded.created_at, started_at = excluded.started_at, ended_at = excluded.ended_at,
            first_seq = coalesce(tokens.first_seq, excluded.first_seq),
            last_seq = coalesce(excluded.last_seq, tokens.last_seq)",
    )
});

static INSERT_TASKS: LazyMultiRow = LazyLock::new(|| {
    MultiRow::new(
        "INSERT INTO tasks (id, run_id, token_id, attempt, payload, not_before, lease_until, deliveries, created_at,
                            claimed_by)",
        10,
        "",
    )
});

/// Applies a batch in one transaction (one WAL flush at its commit).
///
/// `server`: the process of a cluster committing (scale-out): the tasks it
/// inserts already leased are recorded as claimed by it, and the other
/// processes are told which runs committed (`braid_runs`, delivered at the
/// commit).
pub(crate) async fn commit(
    conn: &mut PgConnection,
    ops: Vec<WriteOp>,
    server: Option<&str>,
) -> Result<()> {
    let batch = Batch::new(ops);
    let mut tx = conn.begin().await.db()?;
    let c: &mut PgConnection = &mut tx;

    // The epoch each run is written under: every event row records it.
    let mut epochs: HashMap<String, i64> = HashMap::new();
    let mut owners = Vec::new();
    for op in batch.runs {
        match op {
            RunOp::Create(r) => {
                epochs.insert(r.id.clone(), r.epoch);
                if let Some(owner) = &r.owner {
                    owners.push((r.id.clone(), r.epoch, owner.clone(), r.created_at));
                }
                insert_run(c, r).await?
            }
            RunOp::Update(r) => {
                epochs.insert(r.id.clone(), r.epoch);
                update_run(c, r).await?
            }
        }
    }
    crate::cluster::record_owners(c, owners).await?;
    if server.is_some() {
        crate::cluster::notify_runs(c, batch.events.iter().map(|e| e.run_id.as_str())).await?;
    }

    INSERT_EVENTS
        .run(c, batch.events, |q, e| {
            let epoch = epochs.get(&e.run_id).copied().unwrap_or(0);
            q.bind(e.run_id)
                .bind(e.seq)
                .bind(e.kind)
                .bind(e.ts)
                .bind(e.token_id)
                .bind(e.node)
                .bind(e.payload)
                .bind(epoch)
        })
        .await
        .map_err(|e| match e {
            Error::Conflict(m) => Error::Conflict(format!("appending events: {m} (duplicate seq)")),
            e => e,
        })?;

    let spent = write_ops::spent(&batch.tokens);
    // A token written twice in the batch: the later row, with the event
    // range the two upserts would have kept (first seq of the earlier).
    let tokens = merge_duplicates(
        batch.tokens,
        |t| (t.run_id.clone(), t.seq),
        |earlier, later| TokenRecord {
            first_seq: earlier.first_seq.or(later.first_seq),
            last_seq: later.last_seq.or(earlier.last_seq),
            ..later
        },
    );
    UPSERT_TOKENS
        .run(c, tokens, |q, t| {
            q.bind(t.run_id)
                .bind(t.seq)
                .bind(t.id)
                .bind(t.node)
                .bind(t.status)
                .bind(t.parent_token_id)
                .bind(t.sibling_set)
                .bind(t.branch_index)
                .bind(t.attempts)
                .bind(t.created_at)
                .bind(t.started_at)
                .bind(t.ended_at)
                .bind(t.first_seq)
                .bind(t.last_seq)
        })
        .await?;
    write_ledger(c, spent).await?;
    crate::view::upsert_sibling_sets(c, batch.sibling_sets).await?;

    write_task_ops(c, batch.tasks, server).await?;

    for (id, run_id, token_id, attempt, payload) in batch.results {
        sqlx::query(
            "INSERT INTO results (id, run_id, token_id, attempt, payload) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(run_id)
        .bind(token_id)
        .bind(attempt)
        .bind(payload)
        .execute(&mut *c)
        .await
        .db()?;
    }

    for (run_id, seq, state) in batch.snapshots {
        // Only the latest snapshot is ever read: older ones are dropped.
        sqlx::query(
            "INSERT INTO snapshots (run_id, seq, state) VALUES ($1, $2, $3)
             ON CONFLICT (run_id, seq) DO UPDATE SET state = excluded.state",
        )
        .bind(run_id.clone())
        .bind(seq)
        .bind(state)
        .execute(&mut *c)
        .await
        .db()?;
        sqlx::query("DELETE FROM snapshots WHERE run_id = $1 AND seq < $2")
            .bind(run_id)
            .bind(seq)
            .execute(&mut *c)
            .await
            .db()?;
    }

    tx.commit().await.db()
}

/// The task-queue ops of a batch, in their order (an ack may follow the
/// enqueue of the same task).
async fn write_task_ops(
    c: &mut PgConnection,
    ops: Vec<TaskOp>,
    server: Option<&str>,
) -> Result<()> {
    for op in ops {
        match op {
            TaskOp::Enqueue(tasks) => {
                INSERT_TASKS
                    .run(c, tasks, |q, t| {
                        q.bind(t.id)
                            .bind(t.run_id)
                            .bind(t.token_id)
                            .bind(t.attempt)
                            .bind(t.payload.to_string())
                            .bind(t.not_before)
                            .bind(t.lease_until)
                            .bind(t.deliveries)
                            .bind(t.created_at)
                            .bind(t.lease_until.and(server).map(str::to_owned))
                    })
                    .await?
            }
            TaskOp::Ack(ids) => {
                if let [id] = ids.as_slice() {
                    sqlx::query("DELETE FROM tasks WHERE id = $1")
                        .bind(id.clone())
                        .execute(&mut *c)
                        .await
                        .db()?;
                } else {
                    sqlx::query("DELETE FROM tasks WHERE id = ANY($1)")
                        .bind(ids)
                        .execute(&mut *c)
                        .await
                        .db()?;
                }
            }
            TaskOp::DropRun(run) => {
                sqlx::query("DELETE FROM tasks WHERE run_id = $1")
                    .bind(run)
                    .execute(&mut *c)
                    .await
                    .db()?;
            }
            TaskOp::DropTokens(run, tokens) => {
                // One statement however many branches a join cancels.
                sqlx::query("DELETE FROM tasks WHERE run_id = $1 AND token_id = ANY($2)")
                    .bind(run)
                    .bind(tokens)
                    .execute(&mut *c)
                    .await
                    .db()?;
            }
        }
    }

    Ok(())
}

async fn insert_run(c: &mut PgConnection, r: RunRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO workflow_runs (id, project_id, workflow_id, workflow_name, def_id, version, status, context,
                                    error, usage, limits, parent_run_id, parent_token_id, depth, last_seq,
                                    created_at, started_at, ended_at, owner, epoch, forked_from_run_id, forked_from_seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
    )
    .bind(r.id)
    .bind(r.project_id)
    .bind(r.workflow_id)
    .bind(r.workflow_name)
    .bind(r.def_id)
    .bind(r.version)
    .bind(r.status.as_str())
    .bind(r.context.to_string())
    .bind(r.error.map(|e| e.to_string()))
    .bind(r.usage.to_string())
    .bind(r.limits.to_string())
    .bind(r.parent_run_id)
    .bind(r.parent_token_id)
    .bind(r.depth)
    .bind(r.last_seq)
    .bind(r.created_at)
    .bind(r.started_at)
    .bind(r.ended_at)
    .bind(r.owner)
    .bind(r.epoch)
    .bind(r.forked_from.as_ref().map(|f| f.run_id.clone()))
    .bind(r.forked_from.as_ref().map(|f| f.seq))
    .execute(&mut *c)
    .await
    .db()?;
    Ok(())
}

async fn update_run(c: &mut PgConnection, r: RunRecord) -> Result<()> {
    let done = sqlx::query(
        "UPDATE workflow_runs SET status = $1, context = $2, error = $3, usage = $4, last_seq = $5,
                                  started_at = $6, ended_at = $7
         WHERE id = $8 AND epoch = $9",
    )
    .bind(r.status.as_str())
    .bind(r.context.to_string())
    .bind(r.error.map(|e| e.to_string()))
    .bind(r.usage.to_string())
    .bind(r.last_seq)
    .bind(r.started_at)
    .bind(r.ended_at)
    .bind(r.id.clone())
    .bind(r.epoch)
    .execute(&mut *c)
    .await
    .db()?;
    if done.rows_affected() == 0 {
        let stored: Option<i64> =
            sqlx::query_scalar("SELECT epoch FROM workflow_runs WHERE id = $1")
                .bind(r.id.clone())
                .fetch_optional(&mut *c)
                .await
                .db()?;
        return Err(match stored {
            Some(_) => Error::Fenced(r.id),
            None => Error::NotFound(format!("run {}", r.id)),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------

const RUN_COLUMNS: &str = "id, project_id, workflow_id, workflow_name, def_id, version, status, context, error,
    usage, limits, parent_run_id, parent_token_id, depth, last_seq, created_at, started_at, ended_at, owner, epoch,
    forked_from_run_id, forked_from_seq";

/// `forked_from` from its two columns (both set, or neither).
fn forked_from(run_id: Option<String>, seq: Option<i64>) -> Option<ForkedFrom> {
    Some(ForkedFrom {
        run_id: run_id?,
        seq: seq?,
    })
}

fn run_from_row(r: &PgRow) -> Result<RunRecord> {
    let id: String = r.try_get("id").db()?;
    let what = |field: &'static str| {
        let id = id.clone();
        move || format!("run {id}: {field}")
    };
    let status: String = r.try_get("status").db()?;
    let context: String = r.try_get("context").db()?;
    let error: Option<String> = r.try_get("error").db()?;
    let usage: String = r.try_get("usage").db()?;
    let limits: String = r.try_get("limits").db()?;
    Ok(RunRecord {
        project_id: r.try_get("project_id").db()?,
        workflow_id: r.try_get("workflow_id").db()?,
        workflow_name: r.try_get("workflow_name").db()?,
        def_id: r.try_get("def_id").db()?,
        version: r.try_get("version").db()?,
        status: status
            .parse::<RunStatus>()
            .ok()
            .ok_or_else(|| Error::Backend(format!("run {id}: unknown status {status:?}")))?,
        context: parse_json(&context, &what("context"))?,
        error: parse_json_opt(error.as_deref(), &what("error"))?,
        usage: parse_json(&usage, &what("usage"))?,
        limits: parse_json(&limits, &what("limits"))?,
        parent_run_id: r.try_get("parent_run_id").db()?,
        parent_token_id: r.try_get("parent_token_id").db()?,
        depth: r.try_get("depth").db()?,
        last_seq: r.try_get("last_seq").db()?,
        created_at: r.try_get("created_at").db()?,
        started_at: r.try_get("started_at").db()?,
        ended_at: r.try_get("ended_at").db()?,
        owner: r.try_get("owner").db()?,
        epoch: r.try_get("epoch").db()?,
        forked_from: forked_from(
            r.try_get("forked_from_run_id").db()?,
            r.try_get("forked_from_seq").db()?,
        ),
        id,
    })
}

pub(crate) async fn get_run(conn: &mut PgConnection, run_id: &str) -> Result<Option<RunRecord>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {RUN_COLUMNS} FROM workflow_runs WHERE id = $1"));
    sqlx::query(AssertSqlSafe(SQL.as_str()))
        .bind(run_id.to_owned())
        .fetch_optional(&mut *conn)
        .await
        .db()?
        .as_ref()
        .map(run_from_row)
        .transpose()
}

/// Runs newest first. The SQL is assembled from fixed fragments only (one
/// text per combination of filters), so the statement cache stays bounded.
pub(crate) async fn list_runs(
    conn: &mut PgConnection,
    filter: &RunFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<RunRecord>> {
    let limit = clamp_limit(limit);
    let cursor = cursor.map(decode_time_cursor).transpose()?;
    let mut sql = format!("SELECT {RUN_COLUMNS} FROM workflow_runs WHERE 1 = 1");
    if filter.project_id.is_some() {
        sql.push_str(" AND project_id = ?");
    }
    if filter.status.is_some() {
        sql.push_str(" AND status = ?");
    }
    if filter.workflow.is_some() {
        sql.push_str(" AND workflow_id IN (SELECT id FROM workflows WHERE id = ? OR name = ?)");
    }
    if filter.parent.is_some() {
        sql.push_str(" AND parent_run_id = ?");
    }
    if cursor.is_some() {
        sql.push_str(" AND created_at <= ? AND (created_at < ? OR id < ?)");
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");

    let mut q = sqlx::query(AssertSqlSafe(numbered(&sql)));
    if let Some(p) = &filter.project_id {
        q = q.bind(p.clone());
    }
    if let Some(s) = filter.status {
        q = q.bind(s.as_str());
    }
    if let Some(w) = &filter.workflow {
        q = q.bind(w.clone()).bind(w.clone());
    }
    if let Some(p) = &filter.parent {
        q = q.bind(p.clone());
    }
    if let Some((t, id)) = cursor {
        q = q.bind(t).bind(t).bind(id);
    }
    let rows = q.bind(limit + 1).fetch_all(&mut *conn).await.db()?;
    let items = rows.iter().map(run_from_row).collect::<Result<Vec<_>>>()?;
    Ok(page(items, limit, |r| {
        encode_time_cursor(r.created_at, &r.id)
    }))
}

/// The runs of `ids`, parents before children (by depth, then age).
pub(crate) async fn runs_by_ids(conn: &mut PgConnection, ids: &[String]) -> Result<Vec<RunRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs WHERE id = ANY($1) ORDER BY depth, created_at, id"
        )
    });
    let rows = sqlx::query(AssertSqlSafe(SQL.as_str()))
        .bind(ids)
        .fetch_all(&mut *conn)
        .await
        .db()?;
    rows.iter().map(run_from_row).collect()
}

pub(crate) async fn children(conn: &mut PgConnection, run_id: &str) -> Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT id FROM workflow_runs WHERE parent_run_id = $1 ORDER BY created_at, id",
    )
    .bind(run_id.to_owned())
    .fetch_all(&mut *conn)
    .await
    .db()
}

pub(crate) async fn live_runs(conn: &mut PgConnection) -> Result<Vec<RunRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs WHERE status = 'running' ORDER BY created_at, id"
        )
    });
    let rows = sqlx::query(AssertSqlSafe(SQL.as_str()))
        .fetch_all(&mut *conn)
        .await
        .db()?;
    rows.iter().map(run_from_row).collect()
}

pub(crate) async fn events(
    conn: &mut PgConnection,
    run_id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<EventRecord>> {
    let rows = event_rows(conn, run_id, after, limit).await?;
    rows.iter().map(|r| event_from_row(run_id, r)).collect()
}

/// Up to `limit` `events` rows of a run after `after`, by seq.
async fn event_rows(
    conn: &mut PgConnection,
    run_id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<PgRow>> {
    sqlx::query(
        "SELECT seq, kind, ts, token_id, node, payload FROM events
         WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(run_id.to_owned())
    .bind(after)
    .bind(clamp_limit(limit))
    .fetch_all(&mut *conn)
    .await
    .db()
}

/// [`events`], with the payloads as stored (JSON text, not parsed).
pub(crate) async fn events_text(
    conn: &mut PgConnection,
    run_id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<NewEvent>> {
    let rows = event_rows(conn, run_id, after, limit).await?;
    rows.iter()
        .map(|r| {
            Ok(NewEvent {
                run_id: run_id.to_owned(),
                seq: r.try_get("seq").db()?,
                kind: r.try_get::<String, _>("kind").db()?.into(),
                ts: r.try_get("ts").db()?,
                token_id: r.try_get("token_id").db()?,
                node: r.try_get("node").db()?,
                payload: r.try_get("payload").db()?,
            })
        })
        .collect()
}

/// An `events` row (`seq, kind, ts, token_id, node, payload`).
pub(crate) fn event_from_row(run_id: &str, r: &PgRow) -> Result<EventRecord> {
    let seq: i64 = r.try_get("seq").db()?;
    let payload: String = r.try_get("payload").db()?;
    Ok(EventRecord {
        run_id: run_id.to_owned(),
        seq,
        kind: r.try_get("kind").db()?,
        ts: r.try_get("ts").db()?,
        token_id: r.try_get("token_id").db()?,
        node: r.try_get("node").db()?,
        payload: parse_json(&payload, &|| format!("run {run_id}: event {seq}: payload"))?,
    })
}

pub(crate) async fn tokens(
    conn: &mut PgConnection,
    run_id: &str,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<TokenRecord>> {
    crate::view::filtered_tokens(conn, run_id, &TokenFilter::default(), cursor, limit).await
}

pub(crate) const TOKEN_COLUMNS: &str = "seq, id, node, status, parent_token_id, sibling_set, branch_index, attempts,
    created_at, started_at, ended_at, llm_calls, input_tokens, output_tokens, cost_usd, first_seq, last_seq";

/// A `tokens` row with its ledger columns and event range.
pub(crate) fn token_from_row(run_id: &str, r: &PgRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        run_id: run_id.to_owned(),
        seq: r.try_get("seq").db()?,
        id: r.try_get("id").db()?,
        node: r.try_get("node").db()?,
        status: r.try_get("status").db()?,
        parent_token_id: r.try_get("parent_token_id").db()?,
        sibling_set: r.try_get("sibling_set").db()?,
        branch_index: r.try_get("branch_index").db()?,
        attempts: r.try_get("attempts").db()?,
        created_at: r.try_get("created_at").db()?,
        started_at: r.try_get("started_at").db()?,
        ended_at: r.try_get("ended_at").db()?,
        usage: usage_of(r)?,
        first_seq: r.try_get("first_seq").db()?,
        last_seq: r.try_get("last_seq").db()?,
    })
}

/// One token's row, then its events: a range of the run's event key
/// between the row's first and last seq (the whole run for a row written
/// before those columns existed).
pub(crate) async fn token_history(
    conn: &mut PgConnection,
    run_id: &str,
    token_id: &str,
) -> Result<Option<TokenHistory>> {
    // `tk_7` is row 7 of its run: a key lookup; other ids are searched.
    let by_key = token_id
        .strip_prefix("tk_")
        .and_then(|n| n.parse::<i64>().ok());
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE run_id = $1 AND id = $2{}",
        if by_key.is_some() {
            " AND seq = $3"
        } else {
            ""
        }
    );
    let mut query = sqlx::query(AssertSqlSafe(numbered(&sql)))
        .bind(run_id.to_owned())
        .bind(token_id.to_owned());
    if let Some(seq) = by_key {
        query = query.bind(seq);
    }
    let Some(row) = query.fetch_optional(&mut *conn).await.db()? else {
        return Ok(None);
    };
    let token = token_from_row(run_id, &row)?;
    let (first, last) = match (token.first_seq, token.last_seq) {
        (Some(first), Some(last)) => (first, last),
        _ => (0, i64::MAX),
    };
    let rows = sqlx::query(
        "SELECT seq, kind, ts, token_id, node, payload FROM events
         WHERE run_id = $1 AND seq BETWEEN $2 AND $3 AND token_id = $4 ORDER BY seq",
    )
    .bind(run_id.to_owned())
    .bind(first)
    .bind(last)
    .bind(token_id.to_owned())
    .fetch_all(&mut *conn)
    .await
    .db()?;
    let events = rows
        .iter()
        .map(|r| event_from_row(run_id, r))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(TokenHistory { token, events }))
}

pub(crate) async fn latest_snapshot(
    conn: &mut PgConnection,
    run_id: &str,
) -> Result<Option<(i64, Value)>> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT seq, state FROM snapshots WHERE run_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(run_id.to_owned())
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    row.map(|(seq, state)| {
        Ok((
            seq,
            parse_json(&state, &|| format!("run {run_id}: snapshot {seq}"))?,
        ))
    })
    .transpose()
}

// ---------------------------------------------------------------------------
// Task queue
// ---------------------------------------------------------------------------

fn task_from_row(r: &PgRow) -> Result<TaskRecord> {
    let id: String = r.try_get("id").db()?;
    let payload: String = r.try_get("payload").db()?;
    Ok(TaskRecord {
        run_id: r.try_get("run_id").db()?,
        token_id: r.try_get("token_id").db()?,
        attempt: r.try_get("attempt").db()?,
        payload: parse_json(&payload, &|| format!("task {id}: payload"))?,
        not_before: r.try_get("not_before").db()?,
        lease_until: r.try_get("lease_until").db()?,
        deliveries: r.try_get("deliveries").db()?,
        created_at: r.try_get("created_at").db()?,
        id,
    })
}

/// Claims ready tasks: due (`not_before` passed) and not leased (no lease
/// or an expired one). Uses the `tasks_due` expression index. With
/// `server` (a process of a cluster), only the tasks of runs it owns, and
/// each claim records it.
pub(crate) async fn claim_tasks(
    conn: &mut PgConnection,
    now: Millis,
    lease_ms: i64,
    limit: u32,
    server: Option<&str>,
) -> Result<Vec<TaskRecord>> {
    // `SKIP LOCKED`: a claimer passes over the rows another transaction
    // (another process's claim, or a commit acking them) holds, instead of
    // waiting for it and then claiming the same task under a second lease.
    let rows = sqlx::query(
        "UPDATE tasks SET lease_until = $1, deliveries = deliveries + 1, claimed_by = $4
         WHERE id IN (SELECT id FROM tasks
                      WHERE greatest(not_before, coalesce(lease_until, 0)) <= $2
                        AND ($4::text IS NULL
                             OR run_id IN (SELECT id FROM workflow_runs WHERE owner = $4 AND status = 'running'))
                      ORDER BY greatest(not_before, coalesce(lease_until, 0)), created_at
                      LIMIT $3
                      FOR UPDATE SKIP LOCKED)
         RETURNING id, run_id, token_id, attempt, payload, not_before, lease_until, deliveries, created_at",
    )
    .bind(now.saturating_add(lease_ms))
    .bind(now)
    .bind(i64::from(limit))
    .bind(server)
    .fetch_all(&mut *conn)
    .await
    .db()?;
    let mut tasks = rows.iter().map(task_from_row).collect::<Result<Vec<_>>>()?;
    tasks.sort_by(|a, b| {
        (a.not_before, a.created_at, &a.id).cmp(&(b.not_before, b.created_at, &b.id))
    });
    Ok(tasks)
}

pub(crate) async fn renew_leases(
    conn: &mut PgConnection,
    task_ids: &[String],
    lease_until: Millis,
) -> Result<()> {
    sqlx::query("UPDATE tasks SET lease_until = $1 WHERE id = ANY($2)")
        .bind(lease_until)
        .bind(task_ids)
        .execute(&mut *conn)
        .await
        .db()?;
    Ok(())
}

/// The earliest time a task becomes claimable: its `not_before`, or for a
/// claimed task the expiry of its lease (so that a task whose executor died
/// is re-delivered without polling). With `server`, among the tasks of the
/// runs it owns.
pub(crate) async fn next_task_due(
    conn: &mut PgConnection,
    server: Option<&str>,
) -> Result<Option<Millis>> {
    sqlx::query_scalar(
        "SELECT greatest(not_before, coalesce(lease_until, 0)) FROM tasks
         WHERE $1::text IS NULL
            OR run_id IN (SELECT id FROM workflow_runs WHERE owner = $1 AND status = 'running')
         ORDER BY greatest(not_before, coalesce(lease_until, 0)), created_at LIMIT 1",
    )
    .bind(server)
    .fetch_optional(&mut *conn)
    .await
    .db()
}

/// The ledger columns of the token rows that spent something, after their
/// upsert in the same transaction.
async fn write_ledger(c: &mut PgConnection, spent: Vec<(String, i64, UsageTotals)>) -> Result<()> {
    for (run_id, seq, usage) in spent {
        sqlx::query(
            "UPDATE tokens SET llm_calls = $1, input_tokens = $2, output_tokens = $3, cost_usd = $4
             WHERE run_id = $5 AND seq = $6",
        )
        .bind(count(usage.llm_calls))
        .bind(count(usage.input_tokens))
        .bind(count(usage.output_tokens))
        .bind(usage.cost_usd)
        .bind(run_id)
        .bind(seq)
        .execute(&mut *c)
        .await
        .db()?;
    }
    Ok(())
}

/// PostgreSQL BIGINTs are signed: counts past `i64::MAX` are clamped.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The usage columns of a `tokens` row or of a sum over them.
pub(crate) fn usage_of(r: &sqlx::postgres::PgRow) -> Result<UsageTotals> {
    let n = |c: &str| -> Result<u64> {
        Ok(r.try_get::<Option<i64>, _>(c).db()?.unwrap_or(0).max(0) as u64)
    };
    Ok(UsageTotals {
        llm_calls: n("llm_calls")?,
        input_tokens: n("input_tokens")?,
        output_tokens: n("output_tokens")?,
        cost_usd: r.try_get::<Option<f64>, _>("cost_usd").db()?.unwrap_or(0.0),
    })
}

/// The usage of a run and all its descendants, summed over their tokens.
pub(crate) async fn usage_total(conn: &mut PgConnection, run_id: &str) -> Result<UsageTotals> {
    let row = sqlx::query(
        "WITH RECURSIVE tree(id) AS (
             SELECT id FROM workflow_runs WHERE id = $1
             UNION ALL
             SELECT r.id FROM workflow_runs r JOIN tree ON r.parent_run_id = tree.id
         )
         SELECT sum(t.llm_calls)::bigint AS llm_calls, sum(t.input_tokens)::bigint AS input_tokens,
                sum(t.output_tokens)::bigint AS output_tokens, sum(t.cost_usd) AS cost_usd
         FROM tree JOIN tokens t ON t.run_id = tree.id",
    )
    .bind(run_id.to_owned())
    .fetch_one(&mut *conn)
    .await
    .db()?;
    usage_of(&row)
}
