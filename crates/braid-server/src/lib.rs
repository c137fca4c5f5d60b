//! Braid's HTTP API (docs/api.md): an axum [`Router`] over an [`Engine`].
//!
//! The app is a function, [`router`]; [`serve`] runs it on a listener until
//! a shutdown signal. Request and response bodies are the DTOs of
//! `braid-api`; every failure becomes `{ "error": { code, message,
//! details? } }` in one place ([`ApiError`]), including extractor
//! rejections, unknown routes, oversize bodies and panics. The OpenAPI
//! document (`/api/openapi.json`) is generated from the same handler
//! annotations that register the routes, so the two cannot drift apart.
//! Every path outside the API is the web UI (`ui`: the files `braid-web`
//! embeds, index.html for the client-side routes).

mod artifacts;
mod compare;
mod convert;
mod defs;
mod error;
mod extract;
mod fork;
mod inspect;
mod live;
mod metrics;
mod origin;
mod run_view;
mod runs;
mod ui;

pub use defs::{VERSION_HEADER, WORKFLOW_ID_HEADER};
pub use error::ApiError;
pub use metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
pub use origin::{Access, normalize_origin};
pub use ui::{IMMUTABLE, NO_CACHE};

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use braid_api::Health;
use braid_runtime::Engine;
use std::future::Future;
use std::sync::OnceLock;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Default request body limit: 10 MiB (docs/api.md).
pub const DEFAULT_BODY_LIMIT: usize = 10 * 1024 * 1024;

/// What every handler sees.
#[derive(Clone)]
pub struct AppState {
    /// The engine: writes go through it, reads through its store.
    pub engine: Engine,
    /// Largest accepted request body, in bytes (413 `BODY_TOO_LARGE` beyond).
    pub body_limit: usize,
    /// The Prometheus recorder's handle, rendered by `GET /metrics` (none: 404).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Serve the UI from this directory (a built `web/dist`) instead of the
    /// copy embedded in the binary: `server.ui_dir`, a development aid.
    pub ui_dir: Option<std::path::PathBuf>,
    /// The hosts and origins browsers may call from ([`Access`]); [`serve`]
    /// fills in the bound address.
    pub access: Access,
}

impl AppState {
    /// State with the default body limit.
    pub fn new(engine: Engine) -> AppState {
        AppState {
            engine,
            body_limit: DEFAULT_BODY_LIMIT,
            metrics: None,
            ui_dir: None,
            access: Access::default(),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Braid",
        description = "Durable workflow engine for AI pipelines. Errors are `{ \"error\": { code, message, details? } }` (`ErrorBody`); lists are `{ items, next_cursor }` and take `limit` (clamped to 1..=1000) and `cursor`. Times are RFC 3339 UTC. Any request whose `Origin` is not the server's own (or a configured one), or whose `Host` is not one of its names, is refused with 403 `CROSS_ORIGIN`.",
    ),
    components(schemas(braid_api::ErrorDetails, braid_api::EventBody)),
    tags(
        (name = "workflow-defs", description = "Workflow definitions (bundles) and their versions"),
        (name = "runs", description = "Runs, their tokens and events"),
        (name = "artifacts", description = "Typed, project-scoped outputs"),
        (name = "meta", description = "Health and this document"),
    )
)]
struct ApiDoc;

/// Every documented route, with its OpenAPI description.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(defs::save, defs::list))
        .routes(routes!(defs::get))
        .routes(routes!(defs::start_run))
        .routes(routes!(runs::list))
        .routes(routes!(runs::get))
        .routes(routes!(runs::tokens))
        .routes(routes!(inspect::get_token))
        .routes(routes!(runs::events))
        .routes(routes!(run_view::nodes))
        .routes(routes!(run_view::sibling_sets))
        .routes(routes!(runs::cancel))
        .routes(routes!(fork::fork))
        .routes(routes!(fork::compare))
        .routes(routes!(live::run_events))
        .routes(routes!(live::runs))
        .routes(routes!(artifacts::list))
        .routes(routes!(artifacts::get))
        .routes(routes!(healthz))
        .routes(routes!(openapi_json))
        .routes(routes!(metrics::render))
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

/// The HTTP app.
pub fn router(state: AppState) -> Router {
    let (router, _) = api().split_for_parts();
    router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(ui::serve)
        .layer(DefaultBodyLimit::max(state.body_limit))
        .layer(CatchPanicLayer::custom(panicked))
        // Outermost: a foreign host or origin reaches no handler.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            origin::check,
        ))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` resolves, then finishes
/// the requests in flight. Requests waiting for a run (`?wait=true`) stop
/// waiting at once and answer 202 `{ run_id }`, so shutdown is not held up
/// by their timeouts.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (draining, drained) = tokio::sync::watch::channel(false);
    let mut state = state;
    state.access.bound = Some(listener.local_addr()?);
    let app = router(state).layer(axum::Extension(Draining(drained)));
    let signal = async move {
        shutdown.await;
        let _ = draining.send(true);
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await
}

/// Set once [`serve`] is shutting down.
#[derive(Clone)]
struct Draining(tokio::sync::watch::Receiver<bool>);

impl Draining {
    /// Resolves once the server is shutting down (or has stopped).
    async fn started(mut self) {
        let _ = self.0.wait_for(|draining| *draining).await;
    }
}

/// Liveness.
#[utoipa::path(
    get, path = "/healthz", tag = "meta", operation_id = "healthz",
    responses((status = 200, description = "The server answers", body = Health))
)]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// This document.
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "meta", operation_id = "openapi",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json"))
)]
async fn openapi_json() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| {
        openapi()
            .to_json()
            .expect("the OpenAPI document serializes")
    });
    ([(header::CONTENT_TYPE, "application/json")], doc.as_str()).into_response()
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route for {method} {}; the routes are listed in /api/openapi.json",
        uri.path()
    ))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(format!(
        "{} does not accept {method}; see /api/openapi.json",
        uri.path()
    ))
}

fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::internal(format!("a request handler panicked: {what}")).into_response()
}

/// Resolves `?project=` (default `default`); unknown → 404.
async fn project_id(state: &AppState, project: Option<&str>) -> Result<String, ApiError> {
    let name = project.unwrap_or("default");
    state
        .engine
        .store()
        .project_id(name)
        .await
        .map_err(|e| match e {
            braid_store::Error::NotFound(_) => {
                ApiError::not_found(format!("project `{name}` does not exist"))
            }
            e => e.into(),
        })
}

/// A store page as the API's page, each item converted by `f`.
fn page<T, U>(p: braid_store::Page<T>, f: impl FnMut(T) -> U) -> Json<braid_api::Page<U>> {
    Json(braid_api::Page {
        items: p.items.into_iter().map(f).collect(),
        next_cursor: p.next_cursor,
    })
}

/// In a listing, an invalid argument is a cursor the store did not hand out.
fn cursor_error(e: braid_store::Error) -> ApiError {
    match e {
        braid_store::Error::Invalid(m) => {
            ApiError::malformed(format!("query parameter `cursor`: {m}"))
        }
        e => e.into(),
    }
}
