//! What the run view reads: `/api/runs/{id}/nodes` (per-node summaries),
//! `/api/runs/{id}/sibling-sets`, and the query filters of the event and
//! token listings, turned into store filters with every bad value named.
//! The aggregating and filtering happen in the store's queries.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use braid_api::{ErrorBody, NodeDurations, NodeList, NodeSummary, Page, SiblingSet, TokenStatus};
use braid_core::event::EventBody;
use braid_store::{
    EventFilter, NodeStats, ParentFilter, RunRecord, SiblingSetSummary, TokenFilter,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::extract::{self, Path, Query};
use crate::runs::run_record;
use crate::{AppState, convert, cursor_error};

/// `?parent=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SiblingSetsQuery {
    /// Only the sets spawned inside a branch of this set (`ss_<n>`), or
    /// `root` for the sets spawned in the root scope. Default: every set.
    parent: Option<String>,
    /// Page size (default 100, clamped to 1..=1000).
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Per-node summaries of a run: what the run view colours the graph with.
///
/// One item per node of the run's graph, in the definition's node order;
/// a node never visited has zero counts. Aggregated by the store over the
/// run's token rows, so it answers in milliseconds at any size.
#[utoipa::path(
    get, path = "/api/runs/{id}/nodes", tag = "runs", operation_id = "list_run_nodes",
    params(("id" = String, Path, description = "Run id (`run_…`)")),
    responses(
        (status = 200, description = "One summary per node of the run's graph", body = NodeList),
        (status = 404, description = "`NOT_FOUND`: unknown run", body = ErrorBody),
    )
)]
pub async fn nodes(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<NodeList>, ApiError> {
    run_record(&state, &id).await?;
    let stats = state.engine.store().node_stats(&id).await?;
    Ok(Json(NodeList {
        items: stats.into_iter().map(node_summary).collect(),
    }))
}

/// The sibling sets of a run, in creation order: one line per fan-out,
/// however many branches it has, with its members counted by status.
#[utoipa::path(
    get, path = "/api/runs/{id}/sibling-sets", tag = "runs", operation_id = "list_sibling_sets",
    params(("id" = String, Path, description = "Run id (`run_…`)"), SiblingSetsQuery),
    responses(
        (status = 200, description = "A page of the run's sibling sets", body = Page<SiblingSet>),
        (status = 400, description = "`MALFORMED_BODY`: a bad query parameter", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: unknown run", body = ErrorBody),
    )
)]
pub async fn sibling_sets(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SiblingSetsQuery>,
) -> Result<Json<Page<SiblingSet>>, ApiError> {
    let limit = extract::limit(q.limit.as_deref())?;
    let parent = match q.parent.as_deref().map(str::trim) {
        None => ParentFilter::Any,
        Some("root") => ParentFilter::Root,
        Some(set) if braid_core::state::set_index(set).is_some() => {
            ParentFilter::Set(set.to_string())
        }
        Some(other) => {
            return Err(ApiError::malformed(format!(
                "query parameter `parent`: expected a sibling set id (`ss_<n>`) or `root`, got {other:?}"
            )));
        }
    };
    run_record(&state, &id).await?;
    let page = state
        .engine
        .store()
        .sibling_sets(&id, &parent, q.cursor.as_deref(), limit)
        .await
        .map_err(cursor_error)?;
    Ok(crate::page(page, sibling_set))
}

/// The event filter of `?kind=&node=&failed=`. `kind` is one kind or several
/// separated by commas; each must be a kind of docs/lifecycles.md.
pub(crate) async fn event_filter(
    state: &AppState,
    run: &RunRecord,
    kind: Option<&str>,
    node: Option<&str>,
    failed: Option<&str>,
) -> Result<EventFilter, ApiError> {
    let mut kinds = Vec::new();
    for k in kind.into_iter().flat_map(|k| k.split(',')).map(str::trim) {
        if !EventBody::KINDS.contains(&k) {
            return Err(ApiError::malformed(format!(
                "query parameter `kind`: {k:?} is not an event kind; the kinds are {}",
                EventBody::KINDS.join(", ")
            )));
        }
        kinds.push(k.to_string());
    }
    Ok(EventFilter {
        kinds,
        node: checked_node(state, run, node).await?,
        failed: extract::boolean("failed", failed)?,
    })
}

/// The token filter of `?node=&status=&sibling_set=`.
pub(crate) async fn token_filter(
    state: &AppState,
    run: &RunRecord,
    node: Option<&str>,
    status: Option<&str>,
    sibling_set: Option<&str>,
) -> Result<TokenFilter, ApiError> {
    let status = status
        .map(|s| {
            s.trim().parse::<TokenStatus>().map_err(|_| {
                let all: Vec<&str> = TokenStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::malformed(format!(
                    "query parameter `status`: {s:?} is not a token status; the statuses are {}",
                    all.join(", ")
                ))
            })
        })
        .transpose()?;
    let sibling_set = sibling_set
        .map(|s| {
            let s = s.trim();
            braid_core::state::set_index(s)
                .map(|_| s.to_string())
                .ok_or_else(|| {
                    ApiError::malformed(format!(
                        "query parameter `sibling_set`: expected a sibling set id (`ss_<n>`), got {s:?}"
                    ))
                })
        })
        .transpose()?;
    Ok(TokenFilter {
        node: checked_node(state, run, node).await?,
        status: status.map(|s| s.as_str().to_string()),
        sibling_set,
    })
}

/// A node ref of the run's workflow version; another name is a 400 that
/// lists the nodes (an empty listing would hide the typo).
async fn checked_node(
    state: &AppState,
    run: &RunRecord,
    node: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(node) = node.map(str::trim) else {
        return Ok(None);
    };
    let def = state
        .engine
        .store()
        .get_def_by_id(&run.def_id)
        .await?
        .ok_or_else(|| {
            ApiError::internal(format!("run {}: version {} is missing", run.id, run.def_id))
        })?;
    if def.bundle.nodes.iter().any(|n| n.ref_ == node) {
        return Ok(Some(node.to_string()));
    }
    let refs: Vec<&str> = def.bundle.nodes.iter().map(|n| n.ref_.as_str()).collect();
    Err(ApiError::malformed(format!(
        "query parameter `node`: workflow `{}` version {} has no node {node:?}; its nodes are {}",
        run.workflow_name,
        run.version,
        refs.join(", ")
    )))
}

/// Every token status with its count, 0 for the absent ones.
fn by_status(counts: Vec<(String, u64)>) -> BTreeMap<String, u64> {
    let mut all: BTreeMap<String, u64> = TokenStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    for (status, n) in counts {
        *all.entry(status).or_insert(0) += n;
    }
    all
}

fn node_summary(s: NodeStats) -> NodeSummary {
    NodeSummary {
        node: s.node,
        visits: by_status(s.visits),
        attempts: s.attempts,
        retries: s.retries,
        failures: s.failures,
        duration_ms: NodeDurations {
            sum: s.duration_sum_ms,
            median: s.duration_median_ms,
            max: s.duration_max_ms,
        },
        usage: convert::usage_totals(&s.usage),
    }
}

fn sibling_set(s: SiblingSetSummary) -> SiblingSet {
    SiblingSet {
        id: s.set.id,
        fan_out_node: s.set.fan_out_node,
        origin_token_id: s.set.origin_token_id,
        join_node: s.set.join_node,
        total: s.set.total.max(0) as u64,
        counts: by_status(s.counts),
        fired: s.set.fired,
        parent_sibling_set: s.set.parent_sibling_set,
    }
}
