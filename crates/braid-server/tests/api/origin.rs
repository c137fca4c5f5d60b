//! Browsers on other sites are refused (SPEC §10): a foreign `Origin` or a
//! `Host` that is not one of the server's names is a 403 `CROSS_ORIGIN`
//! before any handler runs — on the API, the live WebSockets and the UI —
//! while the server's own pages, configured origins and hosts, and clients
//! that send no `Origin` (curl, the CLI) pass.

use crate::common::{Answer, Server};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const FLOW: &str = r#"{ "name": "guarded", "initial_node": "a",
  "nodes": [ { "ref": "a", "action": { "kind": "update_context", "updates": [] } } ] }"#;

async fn send(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = server
        .http
        .request(method.clone(), format!("{}{path}", server.base));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if method == reqwest::Method::POST {
        req = req.header("content-type", "application/json").body(FLOW);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        body,
    }
}

/// The status of a WebSocket upgrade of `path` sent with these headers.
async fn upgrade(server: &Server, path: &str, headers: &[(&str, &str)]) -> u16 {
    let url = format!("ws{}{path}", server.base.trim_start_matches("http"));
    let mut req = url.into_client_request().unwrap();
    for (name, value) in headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap();
        req.headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body: Value =
                serde_json::from_slice(&resp.body().clone().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "CROSS_ORIGIN", "{body}");
            resp.status().as_u16()
        }
        Err(e) => panic!("{path}: {e}"),
    }
}

#[tokio::test]
async fn foreign_origins_and_hosts_are_refused_before_anything_runs() {
    let server = Server::start().await;
    let own = server.base.clone();
    let host = own.trim_start_matches("http://").to_string();
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;

    // A page of another site posting a workflow: refused, nothing written.
    let a = send(
        &server,
        post.clone(),
        "/api/workflow-defs",
        &[("origin", "http://evil.example")],
    )
    .await;
    let e = a.error(403, "CROSS_ORIGIN");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("`http://evil.example`"),
        "{}",
        a.text
    );
    let a = send(
        &server,
        post.clone(),
        "/api/workflow-defs",
        &[("origin", "null")],
    )
    .await;
    a.error(403, "CROSS_ORIGIN");
    assert_eq!(
        server.get("/api/workflow-defs").await.body["items"],
        json!([])
    );

    // DNS rebinding: the right address under another name.
    let rebound = host.replace("127.0.0.1", "evil.example");
    let a = send(
        &server,
        post.clone(),
        "/api/workflow-defs",
        &[("host", &rebound)],
    )
    .await;
    let e = a.error(403, "CROSS_ORIGIN");
    assert!(
        e["message"].as_str().unwrap().contains(&rebound),
        "{}",
        a.text
    );
    let a = send(&server, get.clone(), "/", &[("host", &rebound)]).await;
    a.error(403, "CROSS_ORIGIN");
    let a = send(
        &server,
        get.clone(),
        "/runs",
        &[("origin", "http://evil.example")],
    )
    .await;
    a.error(403, "CROSS_ORIGIN");
    assert_eq!(
        server.get("/api/workflow-defs").await.body["items"],
        json!([])
    );

    // The server's own pages, and clients that send no Origin.
    let a = send(
        &server,
        post.clone(),
        "/api/workflow-defs",
        &[("origin", &own)],
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let localhost = host.replace("127.0.0.1", "localhost");
    let a = send(
        &server,
        get.clone(),
        "/api/workflow-defs",
        &[
            ("host", &localhost),
            ("origin", &format!("http://{localhost}")),
        ],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let run = server
        .post("/api/workflow-defs/guarded/runs?wait=true", &json!({}))
        .await;
    assert_eq!(run.status, 201, "{}", run.text);
    let id = run.body["id"].as_str().unwrap().to_string();

    // The live WebSockets: refused from another origin or host, open to the server's pages.
    let live = format!("/api/runs/{id}/live");
    assert_eq!(
        upgrade(&server, &live, &[("origin", "http://evil.example")]).await,
        403
    );
    assert_eq!(
        upgrade(&server, "/api/live", &[("origin", "http://evil.example")]).await,
        403
    );
    assert_eq!(
        upgrade(&server, "/api/live", &[("host", &rebound)]).await,
        403
    );
    assert_eq!(upgrade(&server, &live, &[("origin", &own)]).await, 101);
    assert_eq!(upgrade(&server, &live, &[]).await, 101);
}

#[tokio::test]
async fn configured_origins_and_hosts_are_allowed() {
    let server = Server::start_with(|state| braid_server::AppState {
        access: braid_server::Access {
            allowed_hosts: vec!["braid.example.com".into()],
            allowed_origins: vec![
                "http://localhost:5173".into(),
                "https://braid.example.com".into(),
            ],
            ..state.access
        },
        ..state
    })
    .await;
    let post = reqwest::Method::POST;
    let a = send(
        &server,
        post.clone(),
        "/api/workflow-defs",
        &[("origin", "http://localhost:5173")],
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    // Behind a TLS proxy: the public name and origin.
    let a = send(
        &server,
        reqwest::Method::GET,
        "/api/workflow-defs/guarded",
        &[
            ("host", "braid.example.com"),
            ("origin", "https://braid.example.com"),
        ],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = send(
        &server,
        post,
        "/api/workflow-defs",
        &[("origin", "http://localhost:5174")],
    )
    .await;
    a.error(403, "CROSS_ORIGIN");
}
