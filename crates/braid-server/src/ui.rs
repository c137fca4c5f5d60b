//! The web UI under `/` (docs/web.md): the files `braid-web` embeds, or
//! those of a directory on disk when `server.ui_dir` is set (a development
//! aid: a fresh `npm run build` is served without rebuilding the binary).
//!
//! Every path the API does not route comes here. A file that exists is
//! served with its content type; Vite's content-hashed bundles under
//! `/assets/` may be cached for good, everything else is revalidated. Any
//! other path is a client-side route (`/runs/r_1`, `/workflows/x`) and gets
//! `index.html`, so a deep link or a reload opens the right page. Two kinds
//! of path never fall back to the page: `/api/…` (a JSON 404, as before the
//! UI existed) and `/assets/…` (a missing bundle is a 404: answering HTML
//! for a script would only make the browser report a confusing MIME error).

use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;
use std::path::Path;

/// `Cache-Control` of a file whose name changes with its content.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else: revalidate on every use, so a new
/// binary's UI is picked up at the next load.
pub const NO_CACHE: &str = "no-cache";

/// The fallback of the router: the UI, or the API's JSON 404 / 405.
pub async fn serve(State(state): State<AppState>, method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return crate::not_found(method, uri).await.into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return ApiError::method_not_allowed(format!(
            "{path} is a page of the web UI, read with GET; the API is under /api (see /api/openapi.json)"
        ))
        .into_response();
    }
    let Some(rel) = relative(path) else {
        return ApiError::not_found(format!("no file or page at {path}")).into_response();
    };
    let dir = state.ui_dir.as_deref();
    if !rel.is_empty()
        && let Some(file) = lookup(dir, rel).await
    {
        return file;
    }
    if braid_web::is_hashed(rel) {
        return ApiError::not_found(format!(
            "no UI asset at {path}: the page that asked for it is older than this server; reload it"
        ))
        .into_response();
    }
    match lookup(dir, braid_web::INDEX).await {
        Some(index) => index,
        None => ApiError::internal(format!(
            "the UI has no {} (server.ui_dir = {:?})",
            braid_web::INDEX,
            dir
        ))
        .into_response(),
    }
}

/// The path relative to the UI's root, or `None` when it could step out of
/// it or name a hidden file (only for the on-disk directory does it matter,
/// but both sources answer the same).
fn relative(path: &str) -> Option<&str> {
    let rel = path.trim_start_matches('/');
    let safe = rel
        .split('/')
        .all(|seg| !seg.starts_with('.') && !seg.contains('\\'));
    safe.then_some(rel)
}

/// The file at `rel` as a response, if it exists.
async fn lookup(dir: Option<&Path>, rel: &str) -> Option<Response> {
    let bytes: Cow<'static, [u8]> = match dir {
        None => braid_web::get(rel)?.bytes,
        Some(dir) => Cow::Owned(tokio::fs::read(dir.join(rel)).await.ok()?),
    };
    let cache = if braid_web::is_hashed(rel) {
        IMMUTABLE
    } else {
        NO_CACHE
    };
    let content_type = HeaderValue::from_str(&braid_web::content_type(rel)).ok()?;
    Some(
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            bytes,
        )
            .into_response(),
    )
}
