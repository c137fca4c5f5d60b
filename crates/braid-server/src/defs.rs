//! `/api/workflow-defs`: saving and reading workflow bundles, starting runs.

use crate::error::{ApiError, problem};
use crate::extract::{self, Body, JsonBody, Path, Query};
use crate::{AppState, Draining, convert, project_id};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use braid_api::{
    ErrorBody, Page, RunStarted, SavedDefinition, StartRun, StartRunAnswer, WorkflowSummary,
};
use braid_core::definition::{Bundle, Limits, Syntax};
use braid_store::RunStatus;
use serde::Deserialize;
use std::time::Duration;
use utoipa::IntoParams;

/// Response header carrying the workflow id of a bundle read with `GET`.
pub const WORKFLOW_ID_HEADER: &str = "x-braid-workflow-id";
/// Response header carrying the version of a bundle read with `GET`.
pub const VERSION_HEADER: &str = "x-braid-version";
/// Response header saying whether a bundle read with `GET` is an experiment.
pub const EXPERIMENT_HEADER: &str = "x-braid-experiment";

/// Default `timeout_s` of `?wait=true`.
const DEFAULT_WAIT_S: i64 = 60;
/// Longest `timeout_s` of `?wait=true` (larger values are clamped).
const MAX_WAIT_S: i64 = 3600;

/// `?project=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProjectQuery {
    /// Project name or id (default `default`).
    project: Option<String>,
}

/// `?project=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Project name or id (default `default`).
    project: Option<String>,
    /// Page size (default 100, clamped to 1..=1000).
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `?project=&version=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetQuery {
    /// Project name or id (default `default`).
    project: Option<String>,
    /// Version number (default: the latest).
    #[param(value_type = Option<i64>)]
    version: Option<String>,
}

/// `?project=&wait=&timeout_s=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// Project name or id (default `default`).
    project: Option<String>,
    /// Wait for the run to end (up to `timeout_s`) and answer with the run.
    #[param(value_type = Option<bool>)]
    wait: Option<String>,
    /// How long `wait=true` waits, in seconds (default 60, at most 3600).
    #[param(value_type = Option<i64>)]
    timeout_s: Option<String>,
}

/// The syntax the `Content-Type` names; `None` when it names neither JSON
/// nor YAML (the body is then sniffed: `{` → JSON).
fn body_syntax(headers: &HeaderMap) -> Option<Syntax> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())?;
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
            Some(Syntax::Yaml)
        }
        "application/json" | "text/json" => Some(Syntax::Json),
        e if e.ends_with("+json") => Some(Syntax::Json),
        e if e.ends_with("+yaml") => Some(Syntax::Yaml),
        _ => None,
    }
}

/// Reads a bundle body with the parser files go through (docs/definitions.md).
fn parse_bundle(body: &[u8], syntax: Option<Syntax>) -> Result<Bundle, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::malformed(format!("the body is not UTF-8 text: {e}")))?;
    let syntax = syntax.unwrap_or_else(|| Syntax::sniff(text));
    Ok(Bundle::parse_as(text, syntax)?)
}

/// Save a workflow bundle.
///
/// The body is a bundle (docs/definitions.md) as JSON or YAML: `Content-Type:
/// application/yaml` (or `text/yaml`, `application/x-yaml`) reads YAML,
/// `application/json` reads JSON, anything else is sniffed (`{` → JSON).
/// Content equal to the latest version (key order and format do not matter)
/// keeps that version.
#[utoipa::path(
    post, path = "/api/workflow-defs", tag = "workflow-defs", operation_id = "save_workflow_def",
    params(ProjectQuery),
    request_body(description = "A workflow bundle (docs/definitions.md), as JSON or as YAML of the same shape", content(
        (Bundle = "application/json"),
        (Bundle = "application/yaml"),
    )),
    responses(
        (status = 201, description = "A new version was created", body = SavedDefinition),
        (status = 200, description = "The content equals the latest version, which is kept", body = SavedDefinition),
        (status = 400, description = "`MALFORMED_BODY`: the body is empty or not JSON/YAML at all", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: unknown project", body = ErrorBody),
        (status = 413, description = "`BODY_TOO_LARGE`", body = ErrorBody),
        (status = 422, description = "`INVALID_DEFINITION`: a document of the wrong shape (missing or unknown fields, wrong types, unknown `kind` or `strategy`; `field` is the path from the root, e.g. `nodes[2].action.kind`) or a bundle that does not validate; every problem in `details.errors` (`DefinitionProblem`)", body = ErrorBody),
    )
)]
pub async fn save(
    State(state): State<AppState>,
    Query(q): Query<ProjectQuery>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let bundle = parse_bundle(&body, body_syntax(&headers))?;
    let project = project_id(&state, q.project.as_deref()).await?;
    let (outcome, warnings) = state.engine.save_definition(&project, &bundle).await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = SavedDefinition {
        id: outcome.workflow_id,
        name: bundle.name,
        version: outcome.version,
        created: outcome.created,
        warnings: warnings.iter().map(problem).collect(),
    };
    Ok((status, Json(body)).into_response())
}

/// List the workflows of a project, by name.
#[utoipa::path(
    get, path = "/api/workflow-defs", tag = "workflow-defs", operation_id = "list_workflow_defs",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of workflows, by name", body = Page<WorkflowSummary>),
        (status = 400, description = "`MALFORMED_BODY`: a bad query parameter", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: unknown project", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<WorkflowSummary>>, ApiError> {
    let limit = extract::limit(q.limit.as_deref())?;
    let project = project_id(&state, q.project.as_deref()).await?;
    let page = state
        .engine
        .store()
        .list_workflows(&project, q.cursor.as_deref(), limit)
        .await
        .map_err(crate::cursor_error)?;
    Ok(crate::page(page, convert::workflow_summary))
}

/// Read one version of a workflow as a bundle.
///
/// The body is the bundle itself, exactly what `POST /api/workflow-defs`
/// takes: saving it back keeps the version. The workflow id and the version
/// are in the `x-braid-workflow-id` and `x-braid-version` headers, and
/// `x-braid-experiment` says whether the version was saved as the target
/// of a fork (an experiment is never the latest version). With
/// `Accept: application/yaml` the bundle is written as YAML.
#[utoipa::path(
    get, path = "/api/workflow-defs/{workflow}", tag = "workflow-defs", operation_id = "get_workflow_def",
    params(
        ("workflow" = String, Path, description = "Workflow id (`wf_…`) or name"),
        GetQuery,
    ),
    responses(
        (status = 200, description = "The bundle, as JSON or (with `Accept: application/yaml`) as YAML of the same shape", content(
            (Bundle = "application/json"),
            (Bundle = "application/yaml"),
        ), headers(
            ("x-braid-workflow-id" = String, description = "The workflow's id (`wf_…`)"),
            ("x-braid-version" = i64, description = "The version returned"),
            ("x-braid-experiment" = bool, description = "`true` for a version saved as a fork's target (never the latest)"),
        )),
        (status = 400, description = "`MALFORMED_BODY`: a bad query parameter", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: unknown project, workflow or version", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(workflow): Path<String>,
    Query(q): Query<GetQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let version = version_param(q.version.as_deref())?;
    let project = project_id(&state, q.project.as_deref()).await?;
    let def = state
        .engine
        .store()
        .get_def(&project, &workflow, version)
        .await?
        .ok_or_else(|| not_found(&workflow, version))?;
    let wants_yaml = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',').any(|t| {
                matches!(
                    t.split(';').next().unwrap_or("").trim(),
                    "application/yaml" | "application/x-yaml" | "text/yaml"
                )
            })
        });
    let mut response = if wants_yaml {
        let text = serde_saphyr::to_string(&def.bundle).map_err(ApiError::internal)?;
        ([(header::CONTENT_TYPE, "application/yaml")], text).into_response()
    } else {
        Json(&def.bundle).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&def.workflow_id) {
        h.insert(WORKFLOW_ID_HEADER, v);
    }
    h.insert(VERSION_HEADER, HeaderValue::from(def.version));
    h.insert(
        EXPERIMENT_HEADER,
        HeaderValue::from_static(if def.experiment { "true" } else { "false" }),
    );
    Ok(response)
}

fn version_param(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    raw.map(|raw| {
        raw.trim().parse::<i64>().map_err(|_| {
            ApiError::malformed(format!(
                "query parameter `version`: expected an integer, got {raw:?}"
            ))
        })
    })
    .transpose()
}

fn not_found(workflow: &str, version: Option<i64>) -> ApiError {
    match version {
        Some(v) => ApiError::not_found(format!(
            "workflow `{workflow}` has no version {v} in this project"
        )),
        None => ApiError::not_found(format!(
            "workflow `{workflow}` does not exist in this project"
        )),
    }
}

/// Start a run of a workflow.
///
/// The body is `{ input, version?, limits? }` (an empty body runs the latest
/// version with `{}`). With `?wait=true` the answer waits until the run has
/// ended (at most `timeout_s`, default 60): 201 with the run whatever its
/// status, or 202 `{ run_id }` when it is still running.
#[utoipa::path(
    post, path = "/api/workflow-defs/{workflow}/runs", tag = "runs", operation_id = "start_run",
    params(
        ("workflow" = String, Path, description = "Workflow id (`wf_…`) or name"),
        StartQuery,
    ),
    request_body = StartRun,
    responses(
        (status = 201, description = "Started: `{ run_id }`; with `wait=true`, the ended run", body = StartRunAnswer,
            headers(("location" = String, description = "`/api/runs/{id}`"))),
        (status = 202, description = "`wait=true` and the run is still running", body = RunStarted,
            headers(("location" = String, description = "`/api/runs/{id}`"))),
        (status = 400, description = "`MALFORMED_BODY` (the message names the field path)", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: unknown project, workflow or version", body = ErrorBody),
        (status = 413, description = "`BODY_TOO_LARGE`", body = ErrorBody),
        (status = 422, description = "`INPUT_SCHEMA`: `input` is not an object or violates `input_schema` (`details.errors: [{ path, message }]`); `INVALID_DEFINITION` for a stored version that does not validate, or for `limits` out of range (a negative `max_cost_usd`; `details.errors` names the field)", body = ErrorBody),
    )
)]
pub async fn start_run(
    State(state): State<AppState>,
    Path(workflow): Path<String>,
    Query(q): Query<StartQuery>,
    draining: Option<Extension<Draining>>,
    JsonBody(body): JsonBody<StartRun>,
) -> Result<Response, ApiError> {
    let wait = extract::boolean("wait", q.wait.as_deref())?;
    let timeout_s = extract::non_negative("timeout_s", q.timeout_s.as_deref())?
        .unwrap_or(DEFAULT_WAIT_S)
        .min(MAX_WAIT_S);
    let project = project_id(&state, q.project.as_deref()).await?;
    let limits = body.limits.map(|l| Limits {
        timeout_ms: l.timeout_ms,
        max_run_tokens: l.max_run_tokens,
        max_cost_usd: l.max_cost_usd,
        max_llm_tokens: l.max_llm_tokens,
    });
    let run_id = state
        .engine
        .start_run(&project, &workflow, body.version, body.input, limits)
        .await?;
    let location = [(header::LOCATION, format!("/api/runs/{run_id}"))];
    if wait {
        let waiting = state
            .engine
            .wait(&run_id, Duration::from_secs(timeout_s as u64));
        let ended = match draining {
            // Shutting down: answer 202 now rather than hold the shutdown up.
            Some(Extension(draining)) => tokio::select! {
                r = waiting => r?,
                () = draining.started() => None,
            },
            None => waiting.await?,
        };
        if let Some(record) = ended.filter(|r| r.status != RunStatus::Running) {
            let run = crate::runs::run_body(&state, &record).await?;
            return Ok((
                StatusCode::CREATED,
                location,
                Json(StartRunAnswer::Ended(Box::new(run))),
            )
                .into_response());
        }
        return Ok((StatusCode::ACCEPTED, location, Json(RunStarted { run_id })).into_response());
    }
    Ok((
        StatusCode::CREATED,
        location,
        Json(StartRunAnswer::Started(RunStarted { run_id })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_follows_content_type_then_sniffs() {
        let mut h = HeaderMap::new();
        assert_eq!(body_syntax(&h), None);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/yaml; charset=utf-8"),
        );
        assert_eq!(body_syntax(&h), Some(Syntax::Yaml));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert_eq!(body_syntax(&h), Some(Syntax::Json));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(body_syntax(&h), None);
        // A YAML body sent as JSON is a JSON error, not silently YAML.
        let e = parse_bundle(b"name: x\n", Some(Syntax::Json)).unwrap_err();
        assert!(e.message.starts_with("invalid JSON"), "{}", e.message);
        let e = parse_bundle(b"name: [unclosed\n", None).unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{}", e.message);
        let e = parse_bundle(b"name: x\n", None).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                braid_api::ErrorCode::InvalidDefinition
            )
        );
        let e = parse_bundle(&[0xff, 0xfe], None).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
