//! The web UI under `/`: embedded files with their content types and
//! caching, the client-side routes' fallback to index.html, and the paths
//! that never fall back (the API, missing bundles).

use crate::common::{Answer, Server};
use braid_server::{IMMUTABLE, NO_CACHE};
use reqwest::Method;

fn header<'a>(a: &'a Answer, name: &str) -> &'a str {
    a.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[track_caller]
fn assert_page(a: &Answer, marker: &str) {
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(header(a, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(a, "cache-control"), NO_CACHE);
    assert!(a.text.contains(marker), "the page: {}", a.text);
}

#[tokio::test]
async fn the_embedded_ui_is_served_with_its_routes_and_caching() {
    let server = Server::start().await;
    let index = server.get("/").await;
    assert_page(&index, r#"<div id="root">"#);
    // Client-side routes, opened directly (a deep link or a reload).
    for path in [
        "/index.html",
        "/runs",
        "/runs/r_1",
        "/workflows/judge?version=2",
    ] {
        let a = server.get(path).await;
        assert_page(&a, r#"<div id="root">"#);
        assert_eq!(a.text, index.text, "{path} is the same page");
    }
    let head = server.request(Method::HEAD, "/runs/r_1").await;
    assert_eq!((head.status, head.text.as_str()), (200, ""));
    assert_eq!(header(&head, "content-type"), "text/html; charset=utf-8");

    // The bundles the page loads: hashed names, cached for good.
    let script = index
        .text
        .split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
        .expect("index.html loads a script from /assets/");
    let js = server.get(script).await;
    assert_eq!(js.status, 200);
    assert_eq!(
        header(&js, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(header(&js, "cache-control"), IMMUTABLE);
    assert!(js.text.len() > 1000, "the bundle has content");
    let head = server.request(Method::HEAD, script).await;
    assert_eq!((head.status, head.text.as_str()), (200, ""));
    assert_eq!(header(&head, "cache-control"), IMMUTABLE);
    let css = index
        .text
        .split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with(".css"))
        .expect("index.html loads a style sheet");
    let css = server.get(css).await;
    assert_eq!(header(&css, "content-type"), "text/css; charset=utf-8");

    // A missing bundle is a 404, never the page.
    let a = server.get("/assets/index-00000000.js").await;
    a.error(404, "NOT_FOUND");
    assert!(
        a.message().contains("/assets/index-00000000.js"),
        "{}",
        a.message()
    );
    // Hidden files and steps out of the root are not served.
    server.get("/.env").await.error(404, "NOT_FOUND");
    server
        .get("/runs/.git/config")
        .await
        .error(404, "NOT_FOUND");

    // The API keeps its own answers.
    let a = server.get("/api/nothing").await;
    a.error(404, "NOT_FOUND");
    assert!(a.message().contains("/api/nothing"), "{}", a.message());
    server.get("/api").await.error(404, "NOT_FOUND");
    assert_eq!(server.get("/healthz").await.body["status"], "ok");
    server.get("/metrics").await.error(404, "NOT_FOUND");
    let a = server.get("/api/workflow-defs").await;
    assert_eq!(header(&a, "content-type"), "application/json");
    // Pages are read, not written to.
    let a = server.request(Method::POST, "/runs/r_1").await;
    a.error(405, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn a_ui_directory_on_disk_replaces_the_embedded_copy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    std::fs::write(dir.path().join("index.html"), "<p>from disk</p>").unwrap();
    std::fs::write(dir.path().join("assets/app-1a2b.js"), "console.log(1)").unwrap();
    std::fs::write(dir.path().join("favicon.svg"), "<svg/>").unwrap();
    std::fs::write(dir.path().join(".secret"), "no").unwrap();
    let ui_dir = dir.path().to_path_buf();
    let server = Server::start_with(|state| braid_server::AppState {
        ui_dir: Some(ui_dir),
        ..state
    })
    .await;

    assert_page(&server.get("/").await, "from disk");
    assert_page(&server.get("/runs/r_9").await, "from disk");
    let js = server.get("/assets/app-1a2b.js").await;
    assert_eq!((js.status, js.text.as_str()), (200, "console.log(1)"));
    assert_eq!(header(&js, "cache-control"), IMMUTABLE);
    let icon = server.get("/favicon.svg").await;
    assert_eq!(header(&icon, "content-type"), "image/svg+xml");
    assert_eq!(header(&icon, "cache-control"), NO_CACHE);
    // A new build's file is served without a restart.
    std::fs::write(dir.path().join("assets/app-3c4d.js"), "2").unwrap();
    assert_eq!(server.get("/assets/app-3c4d.js").await.text, "2");
    server
        .get("/assets/app-0000.js")
        .await
        .error(404, "NOT_FOUND");
    server.get("/.secret").await.error(404, "NOT_FOUND");
    server
        .get("/assets/../.secret")
        .await
        .error(404, "NOT_FOUND");
    server.get("/api/x").await.error(404, "NOT_FOUND");
}
