//! `POST /api/runs/{id}/fork` and `GET /api/runs/{a}/compare/{b}`
//! (docs/api.md, docs/lifecycles.md).

use crate::AppState;
use crate::compare as comparison;
use crate::error::ApiError;
use crate::extract::{Body, Path, parse_json};
use crate::runs::run_record;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use braid_api::{ErrorBody, ForkCreated, ForkFrom, ForkRequest, RunComparison};
use braid_core::fork::ForkPoint;
use braid_runtime::{ForkChanges, ForkSpec};

/// Fork a run: a new run whose history is a copy of this one's up to the
/// fork point, going on live from there.
///
/// `from` is `{ node }` (just before the first visit of that node starts)
/// or `{ seq }` (the last step boundary at or before that event). The new
/// run continues on `version` (default: the source run's) with `changes`
/// applied, each object replacing the one with the same `ref`; a changed
/// version that equals no stored version is saved as a new version marked
/// `experiment`, which never becomes the latest. Nothing before the fork
/// point runs again, and the new run's usage counts only its own attempts.
#[utoipa::path(
    post, path = "/api/runs/{id}/fork", tag = "runs", operation_id = "fork_run",
    params(("id" = String, Path, description = "The source run (`run_…`)")),
    request_body(content = ForkRequest),
    responses(
        (status = 201, description = "The forked run is durable", body = ForkCreated),
        (status = 400, description = "`MALFORMED_BODY`: the body is not JSON or has the wrong shape (the message names the field)", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: unknown run", body = ErrorBody),
        (status = 422, description = "`INVALID_REQUEST` naming the field (`from.node` never started, `from.seq` out of range, unknown `version`, a change that replaces nothing); `INVALID_DEFINITION` when the changed version does not validate; `FORK_INCOMPATIBLE` when the target version lacks a node, action or join the copied history refers to (`details.missing`)", body = ErrorBody),
    )
)]
pub async fn fork(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(bytes): Body,
) -> Result<(StatusCode, Json<ForkCreated>), ApiError> {
    let body: ForkRequest = parse_json(&bytes)?;
    let changes = body.changes.unwrap_or_default();
    let spec = ForkSpec {
        from: match body.from {
            ForkFrom::Node { node } => ForkPoint::Node(node),
            ForkFrom::Seq { seq } => ForkPoint::Seq(seq),
        },
        changes: ForkChanges {
            prompt_specs: changes.prompt_specs,
            model_profiles: changes.model_profiles,
            actions: changes.actions,
        },
        version: body.version,
    };
    let forked = state.engine.fork_run(&id, spec).await?;
    Ok((
        StatusCode::CREATED,
        Json(ForkCreated {
            run_id: forked.run_id,
            version: forked.version,
        }),
    ))
}

/// Compare two runs of the same workflow, visit by visit.
///
/// Visits line up by node ref, branch index path and, for visits repeated
/// with the same node and path (loops), their order. Each visit shows both
/// sides (`null` where a run has no such visit) and whether they are equal
/// (same status and output); a forked run's copied visits have the source's
/// outputs, so they are equal, and cost the fork nothing.
#[utoipa::path(
    get, path = "/api/runs/{a}/compare/{b}", tag = "runs", operation_id = "compare_runs",
    params(
        ("a" = String, Path, description = "One run (`run_…`)"),
        ("b" = String, Path, description = "The other run, of the same workflow"),
    ),
    responses(
        (status = 200, description = "The runs' visits side by side", body = RunComparison),
        (status = 404, description = "`NOT_FOUND`: unknown run", body = ErrorBody),
        (status = 422, description = "`INVALID_REQUEST`: the runs are of different workflows (`details.field` is `b`)", body = ErrorBody),
    )
)]
pub async fn compare(
    State(state): State<AppState>,
    Path((a, b)): Path<(String, String)>,
) -> Result<Json<RunComparison>, ApiError> {
    let run_a = run_record(&state, &a).await?;
    let run_b = run_record(&state, &b).await?;
    if run_a.workflow_id != run_b.workflow_id {
        return Err(ApiError::invalid_request(
            "b",
            format!(
                "run `{b}` is a run of workflow `{}`, run `{a}` of `{}`: only runs of the same workflow compare",
                run_b.workflow_name, run_a.workflow_name
            ),
        ));
    }
    let store = state.engine.store().as_ref();
    let side_a = comparison::load(store, &run_a).await?;
    let side_b = comparison::load(store, &run_b).await?;
    Ok(Json(comparison::compare(&side_a, &side_b)))
}
