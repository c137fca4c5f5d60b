//! `/api/artifacts`: typed outputs kept after their runs.

use crate::error::ApiError;
use crate::extract::{self, Path, Query};
use crate::{AppState, convert, cursor_error, project_id};
use axum::Json;
use axum::extract::State;
use braid_api::{Artifact, ErrorBody, Page};
use braid_store::ArtifactFilter;
use serde::Deserialize;
use utoipa::IntoParams;

/// `?project=&type=&run=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ArtifactsQuery {
    /// Project name or id (default `default`).
    project: Option<String>,
    /// Artifact type name.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    type_name: Option<String>,
    /// Id of the run that wrote them.
    run: Option<String>,
    /// Page size (default 100, clamped to 1..=1000).
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List artifacts, newest first.
#[utoipa::path(
    get, path = "/api/artifacts", tag = "artifacts", operation_id = "list_artifacts",
    params(ArtifactsQuery),
    responses(
        (status = 200, description = "One page of artifacts, newest first", body = Page<Artifact>),
        (status = 400, description = "`MALFORMED_BODY`: a bad query parameter", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: unknown project", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ArtifactsQuery>,
) -> Result<Json<Page<Artifact>>, ApiError> {
    let limit = extract::limit(q.limit.as_deref())?;
    let project = project_id(&state, q.project.as_deref()).await?;
    let filter = ArtifactFilter {
        project_id: Some(project),
        type_name: q.type_name,
        run_id: q.run,
    };
    let page = state
        .engine
        .store()
        .list_artifacts(&filter, q.cursor.as_deref(), limit)
        .await
        .map_err(cursor_error)?;
    Ok(crate::page(page, convert::artifact))
}

/// Read one artifact.
#[utoipa::path(
    get, path = "/api/artifacts/{id}", tag = "artifacts", operation_id = "get_artifact",
    params(("id" = String, Path, description = "Artifact id (`art_…`)")),
    responses(
        (status = 200, description = "The artifact", body = Artifact),
        (status = 404, description = "`NOT_FOUND`: unknown artifact", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Artifact>, ApiError> {
    let a = state
        .engine
        .store()
        .get_artifact(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("artifact `{id}` does not exist")))?;
    Ok(Json(convert::artifact(a)))
}
