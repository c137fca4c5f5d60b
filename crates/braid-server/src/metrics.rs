//! `GET /metrics`: the process's Prometheus metrics in the text exposition
//! format (docs/observability.md), rendered from the recorder `braid serve`
//! installs.

use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Prometheus metrics of this process.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    responses(
        (status = 200, description = "Prometheus text exposition format (0.0.4): the `braid_*` metrics of this process", content_type = "text/plain; version=0.0.4", body = String),
        (status = 404, description = "No metrics recorder in this process (an embedded engine)", body = braid_api::ErrorBody),
    )
)]
pub(crate) async fn render(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render()).into_response(),
        None => {
            ApiError::not_found("this process records no metrics: they are served by `braid serve`")
                .into_response()
        }
    }
}
