//! What a hostile web page could make a browser send to a server on this
//! machine is refused (SPEC §10, docs/web.md "Origin and Host checks"):
//!
//! - a request whose `Host` is not one of the server's names is refused:
//!   a page of `evil.example` whose name was made to resolve to 127.0.0.1
//!   (DNS rebinding) reaches the server with `Host: evil.example:8080`;
//! - a request whose `Origin` is neither the server's own (`http://` + the
//!   `Host` it was sent to) nor a configured one is refused: a page of
//!   another site posting to `http://127.0.0.1:8080/api/…` sends its own
//!   origin.
//!
//! Both answer 403 `CROSS_ORIGIN` before any handler runs, so nothing is
//! read or written (WebSocket upgrades included). A request without
//! `Origin` (curl, the CLI, SDKs) or without `Host` (an in-process call) is
//! not a browser's and passes that check.
//!
//! The server's names are `localhost`, `127.0.0.1` and `[::1]` and the
//! address it is bound to, each with the bound port. Bound to an unspecified
//! address (`0.0.0.0`, `[::]`: a container, a machine on a network), it
//! accepts any IP address and `localhost` on any port: such servers are
//! reached through port mappings, and a rebinding attack needs a domain name
//! (decisions.md). Other names (the machine's DNS name, a reverse proxy's)
//! come from `server.allowed_hosts`.

use crate::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

/// The names and origins a server accepts.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The address the server listens on (unknown for an in-process router:
    /// then only configured names and loopback names on any port pass).
    pub bound: Option<SocketAddr>,
    /// `server.allowed_hosts`: `name` (any port) or `name:port`.
    pub allowed_hosts: Vec<String>,
    /// `server.allowed_origins`: `scheme://host[:port]`.
    pub allowed_origins: Vec<String>,
}

/// The middleware: refuses foreign hosts and origins.
pub async fn check(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match state.access.verdict(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// `host[:port]` split, the host lower-cased (brackets of an IPv6 address
/// kept); `None` when it is not a host at all.
fn split_host(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim().to_ascii_lowercase();
    let (host, port) = match authority.rfind(':') {
        // `[::1]` alone: the colon is inside the brackets.
        Some(i) if !authority[i..].contains(']') => {
            (&authority[..i], Some(authority[i + 1..].parse().ok()?))
        }
        _ => (authority.as_str(), None),
    };
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.[]:_".contains(c));
    valid.then(|| (host.to_string(), port))
}

/// `scheme://host[:port]` in one form: lower case, the default port dropped.
pub fn normalize_origin(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = split_host(rest.strip_suffix('/').unwrap_or(rest))?;
    Some(match port {
        Some(p) if p != default => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// The IP address a host names, brackets removed.
fn ip_of(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

impl Access {
    fn verdict(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
        if let Some(host) = text(header::HOST)
            && !self.host_allowed(host)
        {
            return Err(ApiError::cross_origin(format!(
                "host `{host}` is not one of this server's names; a browser that reaches it under \
                 another name may be the target of DNS rebinding. To serve under that name, add \
                 it to server.allowed_hosts"
            )));
        }
        let Some(origin) = text(header::ORIGIN) else {
            return Ok(());
        };
        let own = text(header::HOST).map(|h| format!("http://{h}"));
        let given = normalize_origin(origin);
        let allowed = given.as_ref().is_some_and(|o| {
            own.as_deref().and_then(normalize_origin).as_ref() == Some(o)
                || self
                    .allowed_origins
                    .iter()
                    .any(|a| normalize_origin(a).as_ref() == Some(o))
        });
        if allowed {
            Ok(())
        } else {
            Err(ApiError::cross_origin(format!(
                "requests from origin `{origin}` are refused: only pages served by this server \
                 (or an origin in server.allowed_origins) may call it"
            )))
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        // Browsers leave out the default port.
        let port = port.unwrap_or(80);
        let configured = self.allowed_hosts.iter().any(|entry| {
            split_host(entry).is_some_and(|(n, p)| n == name && p.is_none_or(|p| p == port))
        });
        if configured {
            return true;
        }
        let Some(bound) = self.bound else {
            return is_loopback_name(&name);
        };
        if bound.ip().is_unspecified() {
            return name == "localhost" || ip_of(&name).is_some_and(|ip| !ip.is_unspecified());
        }
        port == bound.port()
            && (is_loopback_name(&name) || ip_of(&name).is_some_and(|ip| ip == bound.ip()))
    }
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost" || ip_of(name).is_some_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn access(bound: &str) -> Access {
        Access {
            bound: Some(bound.parse().unwrap()),
            allowed_hosts: vec!["braid.example.com".into(), "box.lan:9000".into()],
            allowed_origins: vec!["https://braid.example.com/".into()],
        }
    }

    fn verdict(a: &Access, host: Option<&str>, origin: Option<&str>) -> Result<(), String> {
        let mut h = HeaderMap::new();
        if let Some(v) = host {
            h.insert(header::HOST, HeaderValue::from_str(v).unwrap());
        }
        if let Some(v) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(v).unwrap());
        }
        a.verdict(&h).map_err(|e| e.message)
    }

    #[test]
    fn hosts() {
        let local = access("127.0.0.1:8080");
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
            "braid.example.com",
            "braid.example.com:443",
            "box.lan:9000",
        ] {
            assert_eq!(verdict(&local, Some(ok), None), Ok(()), "{ok}");
        }
        for refused in [
            "evil.example:8080",
            "127.0.0.1:8081",
            "localhost",
            "10.0.0.5:8080",
            "box.lan:8080",
            "127.0.0.1:x",
            "a b",
        ] {
            let e = verdict(&local, Some(refused), None).unwrap_err();
            assert!(e.contains("server.allowed_hosts"), "{refused}: {e}");
        }
        // Bound to every address: any IP address and localhost on any port
        // (port mappings), but no other name.
        let any = access("0.0.0.0:8080");
        for ok in [
            "10.0.0.5:8080",
            "[fe80::1]:8080",
            "127.0.0.1:9000",
            "localhost:9000",
        ] {
            assert_eq!(verdict(&any, Some(ok), None), Ok(()), "{ok}");
        }
        assert!(verdict(&any, Some("evil.example:8080"), None).is_err());
        assert!(verdict(&any, Some("0.0.0.0:8080"), None).is_err());
        // No Host (an in-process call): nothing to check.
        assert_eq!(verdict(&local, None, None), Ok(()));
    }

    #[test]
    fn origins() {
        let a = access("127.0.0.1:8080");
        let at = |host, origin| verdict(&a, Some(host), Some(origin));
        assert_eq!(at("127.0.0.1:8080", "http://127.0.0.1:8080"), Ok(()));
        assert_eq!(at("localhost:8080", "http://LocalHost:8080"), Ok(()));
        assert_eq!(at("127.0.0.1:8080", "https://braid.example.com"), Ok(()));
        assert_eq!(
            at("braid.example.com", "https://braid.example.com:443"),
            Ok(())
        );
        for refused in [
            "http://evil.example",
            "http://localhost:8080",
            "https://127.0.0.1:8080",
            "null",
            "http://127.0.0.1:8081",
        ] {
            let e = at("127.0.0.1:8080", refused).unwrap_err();
            assert!(e.contains(&format!("`{refused}`")), "{e}");
        }
    }

    #[test]
    fn origin_forms() {
        assert_eq!(
            normalize_origin("HTTP://Example.com:80/").as_deref(),
            Some("http://example.com")
        );
        assert_eq!(
            normalize_origin("http://[::1]:8080").as_deref(),
            Some("http://[::1]:8080")
        );
        assert_eq!(normalize_origin("ftp://x"), None);
        assert_eq!(normalize_origin("http://x/path"), None);
    }
}
