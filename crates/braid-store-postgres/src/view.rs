//! The run view's reads: per-node aggregates, sibling sets with their member
//! counts, filtered events and tokens, and the sibling-set writes of a
//! commit. Aggregates are GROUP BY queries over the run's `tokens` rows
//! (one scan of the run's primary-key range), so their cost does not depend
//! on what the caller keeps in memory.

use std::collections::HashMap;
use std::sync::LazyLock;

use braid_store::sql_support::node_stats::{self, NodeStatsRow, VisitGroup};
use braid_store::{
    EventFilter, EventRecord, MAX_EVENTS_PAGE, NodeStats, Page, ParentFilter, Result,
    SiblingSetRecord, SiblingSetSummary, TokenFilter, TokenRecord,
};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Row};

use crate::runs::{TOKEN_COLUMNS, event_from_row, token_from_row, usage_of};
use crate::util::{
    Db, LazyMultiRow, MultiRow, bad_cursor, clamp_limit, merge_duplicates, numbered, page,
};

static UPSERT_SIBLING_SETS: LazyMultiRow = LazyLock::new(|| {
    MultiRow::new(
        "INSERT INTO sibling_sets (run_id, seq, id, fan_out_node, origin_token_id, join_node, total, fired,
                                   parent_sibling_set)",
        9,
        "ON CONFLICT (run_id, seq) DO UPDATE SET
            id = excluded.id, fan_out_node = excluded.fan_out_node, origin_token_id = excluded.origin_token_id,
            join_node = excluded.join_node, total = excluded.total, fired = excluded.fired,
            parent_sibling_set = excluded.parent_sibling_set",
    )
});

/// Writes sibling-set rows (inside the commit's transaction).
pub(crate) async fn upsert_sibling_sets(
    c: &mut PgConnection,
    sets: Vec<SiblingSetRecord>,
) -> Result<()> {
    let sets = merge_duplicates(sets, |s| (s.run_id.clone(), s.seq), |_, later| later);
    UPSERT_SIBLING_SETS
        .run(c, sets, |q, s| {
            q.bind(s.run_id)
                .bind(s.seq)
                .bind(s.id)
                .bind(s.fan_out_node)
                .bind(s.origin_token_id)
                .bind(s.join_node)
                .bind(s.total)
                .bind(s.fired)
                .bind(s.parent_sibling_set)
        })
        .await
}

/// One row per (node, status, duration) with the sums of that group: one
/// scan and one sort of the run's token rows. Durations are whole
/// milliseconds, so the groups of one (node, status) are a histogram of
/// its durations, from which `sql_support::node_stats` reads the median without
/// ranking every row (a window function ranked all 200,000 rows of a W2
/// 100,000 run: 730 ms against 290 ms for this). Nodes of the graph without a
/// visit come as one row with a NULL status.
const NODE_STATS: &str = "
WITH groups AS (
    SELECT node, status, duration, count(*) AS visits, sum(attempts)::bigint AS attempts,
           sum(greatest(attempts - 1, 0))::bigint AS retries, sum(llm_calls)::bigint AS llm_calls,
           sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens,
           sum(cost_usd) AS cost_usd
    FROM (SELECT node, status, attempts, llm_calls, input_tokens, output_tokens, cost_usd,
                 CASE WHEN started_at IS NOT NULL AND ended_at IS NOT NULL
                      THEN ended_at - started_at END AS duration
          FROM tokens WHERE run_id = $1) AS visits
    GROUP BY node, status, duration
)
SELECT n.ref AS node, g.status, g.duration, g.visits, g.attempts, g.retries,
       g.llm_calls, g.input_tokens, g.output_tokens, g.cost_usd
FROM workflow_runs r
JOIN nodes n ON n.def_id = r.def_id
LEFT JOIN groups g ON g.node = n.ref
WHERE r.id = $1
ORDER BY n.position, n.ref, g.status";

pub(crate) async fn node_stats(conn: &mut PgConnection, run_id: &str) -> Result<Vec<NodeStats>> {
    let rows = sqlx::query(NODE_STATS)
        .bind(run_id.to_owned())
        .fetch_all(&mut *conn)
        .await
        .db()?;
    let rows = rows
        .iter()
        .map(node_stats_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(node_stats::node_stats(rows))
}

/// A row of [`NODE_STATS`]; the sums are read only for a visited node.
fn node_stats_row(r: &PgRow) -> Result<NodeStatsRow> {
    let node = r.try_get("node").db()?;
    let Some(status) = r.try_get::<Option<String>, _>("status").db()? else {
        return Ok(NodeStatsRow { node, group: None });
    };
    let n = |c: &str| -> Result<u64> {
        Ok(r.try_get::<Option<i64>, _>(c).db()?.unwrap_or(0).max(0) as u64)
    };
    let group = VisitGroup {
        status,
        duration: r.try_get("duration").db()?,
        visits: n("visits")?,
        attempts: n("attempts")?,
        retries: n("retries")?,
        usage: usage_of(r)?,
    };
    Ok(NodeStatsRow {
        node,
        group: Some(group),
    })
}

/// Members by the status of each branch's latest token (its highest seq),
/// for the sets of one page.
const SET_COUNTS: &str = "
SELECT sibling_set, status, count(*) AS n FROM (
    SELECT sibling_set, status,
           row_number() OVER (PARTITION BY sibling_set, branch_index ORDER BY seq DESC) AS recency
    FROM tokens
    WHERE run_id = $1 AND sibling_set = ANY($2)
) AS latest
WHERE recency = 1
GROUP BY sibling_set, status
ORDER BY sibling_set, status";

pub(crate) async fn sibling_sets(
    conn: &mut PgConnection,
    run_id: &str,
    parent: &ParentFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<SiblingSetSummary>> {
    let limit = clamp_limit(limit);
    let after: i64 = match cursor {
        None => 0,
        Some(c) => c.parse().map_err(|_| bad_cursor(c))?,
    };
    let mut sql = String::from(
        "SELECT seq, id, fan_out_node, origin_token_id, join_node, total, fired, parent_sibling_set
         FROM sibling_sets WHERE run_id = $1 AND seq > $2",
    );
    match parent {
        ParentFilter::Any => {}
        ParentFilter::Root => sql.push_str(" AND parent_sibling_set IS NULL"),
        ParentFilter::Set(_) => sql.push_str(" AND parent_sibling_set = ?"),
    }
    sql.push_str(" ORDER BY seq LIMIT ?");
    let mut q = sqlx::query(AssertSqlSafe(numbered(&sql)))
        .bind(run_id.to_owned())
        .bind(after);
    if let ParentFilter::Set(id) = parent {
        q = q.bind(id.clone());
    }
    let rows = q.bind(limit + 1).fetch_all(&mut *conn).await.db()?;
    let sets = rows
        .iter()
        .map(|r| set_from_row(run_id, r))
        .collect::<Result<Vec<_>>>()?;
    let Page {
        items: sets,
        next_cursor,
    } = page(sets, limit, |s| s.seq.to_string());

    let ids: Vec<&str> = sets.iter().map(|s| s.id.as_str()).collect();
    let mut counts: HashMap<String, Vec<(String, u64)>> = HashMap::new();
    if !ids.is_empty() {
        let rows = sqlx::query(SET_COUNTS)
            .bind(run_id.to_owned())
            .bind(ids)
            .fetch_all(&mut *conn)
            .await
            .db()?;
        for r in &rows {
            let n: i64 = r.try_get("n").db()?;
            counts
                .entry(r.try_get("sibling_set").db()?)
                .or_default()
                .push((r.try_get("status").db()?, n.max(0) as u64));
        }
    }
    let items = sets
        .into_iter()
        .map(|set| SiblingSetSummary {
            counts: counts.remove(&set.id).unwrap_or_default(),
            set,
        })
        .collect();
    Ok(Page { items, next_cursor })
}

fn set_from_row(run_id: &str, r: &PgRow) -> Result<SiblingSetRecord> {
    Ok(SiblingSetRecord {
        run_id: run_id.to_owned(),
        seq: r.try_get("seq").db()?,
        id: r.try_get("id").db()?,
        fan_out_node: r.try_get("fan_out_node").db()?,
        origin_token_id: r.try_get("origin_token_id").db()?,
        join_node: r.try_get("join_node").db()?,
        total: r.try_get("total").db()?,
        fired: r.try_get("fired").db()?,
        parent_sibling_set: r.try_get("parent_sibling_set").db()?,
    })
}

/// Events by seq that pass `filter`. The SQL is one of a few fixed texts
/// (one per combination of filters), so the statement cache stays bounded.
pub(crate) async fn filtered_events(
    conn: &mut PgConnection,
    run_id: &str,
    filter: &EventFilter,
    after: i64,
    limit: u32,
) -> Result<Vec<EventRecord>> {
    let kinds = filter.selected_kinds();
    if kinds.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let mut sql = String::from(
        "SELECT seq, kind, ts, token_id, node, payload FROM events WHERE run_id = $1 AND seq > $2",
    );
    if kinds.is_some() {
        sql.push_str(" AND kind = ANY(?)");
    }
    if filter.node.is_some() {
        sql.push_str(" AND node = ?");
    }
    sql.push_str(" ORDER BY seq LIMIT ?");
    let mut q = sqlx::query(AssertSqlSafe(numbered(&sql)))
        .bind(run_id.to_owned())
        .bind(after);
    if let Some(k) = &kinds {
        q = q.bind(k.clone());
    }
    if let Some(n) = &filter.node {
        q = q.bind(n.clone());
    }
    let limit = i64::from(limit.clamp(1, MAX_EVENTS_PAGE));
    let rows = q.bind(limit).fetch_all(&mut *conn).await.db()?;
    rows.iter().map(|r| event_from_row(run_id, r)).collect()
}

/// Tokens by seq that pass `filter`; the cursor is the last seq of a page.
pub(crate) async fn filtered_tokens(
    conn: &mut PgConnection,
    run_id: &str,
    filter: &TokenFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<TokenRecord>> {
    let limit = clamp_limit(limit);
    let after: i64 = match cursor {
        None => 0,
        Some(c) => c.parse().map_err(|_| bad_cursor(c))?,
    };
    let mut sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE run_id = ? AND seq > ?");
    let wanted = [&filter.node, &filter.status, &filter.sibling_set];
    for (value, column) in wanted.iter().zip(["node", "status", "sibling_set"]) {
        if value.is_some() {
            sql.push_str(&format!(" AND {column} = ?"));
        }
    }
    sql.push_str(" ORDER BY seq LIMIT ?");
    let mut q = sqlx::query(AssertSqlSafe(numbered(&sql)))
        .bind(run_id.to_owned())
        .bind(after);
    for value in wanted.into_iter().flatten() {
        q = q.bind(value.clone());
    }
    let rows = q.bind(limit + 1).fetch_all(&mut *conn).await.db()?;
    let items = rows
        .iter()
        .map(|r| token_from_row(run_id, r))
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, limit, |t| t.seq.to_string()))
}
