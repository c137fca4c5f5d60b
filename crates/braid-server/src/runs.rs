//! `/api/runs`: runs, their tokens and events, cancellation.

use crate::error::ApiError;
use crate::extract::{self, JsonBody, Path, Query};
use crate::run_view;
use crate::{AppState, convert, cursor_error, project_id};
use axum::Json;
use axum::extract::State;
use braid_api::{
    CancelRun, ErrorBody, Event, Page, Run, RunStatus, RunSummary, Token, TokenStatus,
};
use braid_store::{MAX_EVENTS_PAGE, RunFilter, RunRecord};
use serde::Deserialize;
use utoipa::IntoParams;

/// `?status=&workflow=&parent=&project=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Project name or id (default `default`).
    project: Option<String>,
    /// `running`, `completed`, `failed` or `cancelled`.
    #[param(value_type = Option<RunStatus>)]
    status: Option<String>,
    /// Workflow id or name.
    workflow: Option<String>,
    /// Parent run id (lists its child runs).
    parent: Option<String>,
    /// Page size (default 100, clamped to 1..=1000).
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `?node=&status=&sibling_set=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TokensQuery {
    /// Only the visits of this node (a node ref of the run's workflow).
    node: Option<String>,
    /// Only tokens with this status.
    #[param(value_type = Option<TokenStatus>)]
    status: Option<String>,
    /// Only the members of this sibling set (`ss_<n>`): every token of its branches.
    sibling_set: Option<String>,
    /// Page size (default 100, clamped to 1..=1000).
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `?after=&limit=&kind=&node=&failed=` (or `cursor=` instead of `after=`).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Return events with `seq` greater than this (default 0).
    #[param(value_type = Option<i64>)]
    after: Option<String>,
    /// Same as `after` (the `next_cursor` of the previous page is the last seq).
    cursor: Option<String>,
    /// Page size (default 100, clamped to 1..=10000).
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    /// Only these kinds: one event kind, or several separated by commas.
    kind: Option<String>,
    /// Only the events of this node (a node ref of the run's workflow).
    node: Option<String>,
    /// `true`: only failures (`node_failed`, `node_retrying`, `workflow_failed`,
    /// `subworkflow_failed`).
    #[param(value_type = Option<bool>)]
    failed: Option<String>,
}

/// The full run body, with its children.
pub async fn run_body(state: &AppState, record: &RunRecord) -> Result<Run, ApiError> {
    let store = state.engine.store();
    let children = store.children(&record.id).await?;
    let usage_total = store.usage_total(&record.id).await?;
    Ok(convert::run(
        record,
        children,
        convert::usage_totals(&usage_total),
    ))
}

pub(crate) async fn run_record(state: &AppState, id: &str) -> Result<RunRecord, ApiError> {
    state
        .engine
        .store()
        .get_run(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run `{id}` does not exist")))
}

/// List runs, newest first.
#[utoipa::path(
    get, path = "/api/runs", tag = "runs", operation_id = "list_runs",
    params(RunsQuery),
    responses(
        (status = 200, description = "One page of runs, newest first", body = Page<RunSummary>),
        (status = 400, description = "`MALFORMED_BODY`: a bad query parameter", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: unknown project", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Page<RunSummary>>, ApiError> {
    let limit = extract::limit(q.limit.as_deref())?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse::<RunStatus>().map_err(|_| {
                let all: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::malformed(format!(
                    "query parameter `status`: {s:?} is not one of {}",
                    all.join(", ")
                ))
            })
        })
        .transpose()?;
    let project = project_id(&state, q.project.as_deref()).await?;
    let filter = RunFilter {
        project_id: Some(project),
        status,
        workflow: q.workflow,
        parent: q.parent,
    };
    let page = state
        .engine
        .store()
        .list_runs(&filter, q.cursor.as_deref(), limit)
        .await
        .map_err(cursor_error)?;
    Ok(crate::page(page, |r| convert::run_summary(&r)))
}

/// Read one run.
#[utoipa::path(
    get, path = "/api/runs/{id}", tag = "runs", operation_id = "get_run",
    params(("id" = String, Path, description = "Run id (`run_…`)")),
    responses(
        (status = 200, description = "The run", body = Run),
        (status = 404, description = "`NOT_FOUND`: unknown run", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    let record = run_record(&state, &id).await?;
    Ok(Json(run_body(&state, &record).await?))
}

/// The tokens (node visits) of a run, in creation order.
#[utoipa::path(
    get, path = "/api/runs/{id}/tokens", tag = "runs", operation_id = "list_run_tokens",
    params(("id" = String, Path, description = "Run id (`run_…`)"), TokensQuery),
    responses(
        (status = 200, description = "One page of tokens, in creation order", body = Page<Token>),
        (status = 400, description = "`MALFORMED_BODY`: a bad query parameter", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: unknown run", body = ErrorBody),
    )
)]
pub async fn tokens(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TokensQuery>,
) -> Result<Json<Page<Token>>, ApiError> {
    let limit = extract::limit(q.limit.as_deref())?;
    let run = run_record(&state, &id).await?;
    let filter = run_view::token_filter(
        &state,
        &run,
        q.node.as_deref(),
        q.status.as_deref(),
        q.sibling_set.as_deref(),
    )
    .await?;
    let page = state
        .engine
        .store()
        .filtered_tokens(&id, &filter, q.cursor.as_deref(), limit)
        .await
        .map_err(cursor_error)?;
    Ok(crate::page(page, convert::token))
}

/// The event log of a run (docs/lifecycles.md), in `seq` order, optionally
/// filtered by kind, node and failures (every filter given must hold).
///
/// `next_cursor` is the last `seq` of a full page; pass it as `after` (or
/// `cursor`). A page shorter than `limit` has `next_cursor: null`; a running
/// run may still append events after it.
#[utoipa::path(
    get, path = "/api/runs/{id}/events", tag = "runs", operation_id = "list_run_events",
    params(("id" = String, Path, description = "Run id (`run_…`)"), EventsQuery),
    responses(
        (status = 200, description = "One page of events, in `seq` order", body = Page<Event>),
        (status = 400, description = "`MALFORMED_BODY`: a bad query parameter", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: unknown run", body = ErrorBody),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Page<Event>>, ApiError> {
    let limit = extract::limit_within(q.limit.as_deref(), MAX_EVENTS_PAGE)?;
    let after = extract::non_negative("after", q.after.as_deref())?;
    let cursor = extract::non_negative("cursor", q.cursor.as_deref())?;
    let after = match (after, cursor) {
        (Some(a), Some(c)) if a != c => {
            return Err(ApiError::malformed(
                "query parameters `after` and `cursor` disagree: pass only one",
            ));
        }
        (a, c) => a.or(c).unwrap_or(0),
    };
    let run = run_record(&state, &id).await?;
    let filter = run_view::event_filter(
        &state,
        &run,
        q.kind.as_deref(),
        q.node.as_deref(),
        q.failed.as_deref(),
    )
    .await?;
    let items = state
        .engine
        .store()
        .filtered_events(&id, &filter, after, limit)
        .await?;
    let next_cursor = if items.len() as u32 == limit {
        items.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok(Json(Page {
        items: items.into_iter().map(convert::event).collect(),
        next_cursor,
    }))
}

/// Cancel a running run (and its children).
///
/// The body is optional: `{ reason }`. Answers the run once its cancellation
/// is durable.
#[utoipa::path(
    post, path = "/api/runs/{id}/cancel", tag = "runs", operation_id = "cancel_run",
    params(("id" = String, Path, description = "Run id (`run_…`)")),
    request_body(content = Option<CancelRun>, description = "Optional"),
    responses(
        (status = 200, description = "The cancelled run", body = Run),
        (status = 400, description = "`MALFORMED_BODY`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: unknown run", body = ErrorBody),
        (status = 409, description = "`RUN_ENDED`: the run has already ended", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CancelRun>,
) -> Result<Json<Run>, ApiError> {
    let reason = body
        .reason
        .unwrap_or_else(|| "cancelled through the API".to_string());
    state.engine.cancel(&id, &reason).await?;
    let record = run_record(&state, &id).await?;
    Ok(Json(run_body(&state, &record).await?))
}
