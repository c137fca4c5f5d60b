//! The web UI (`web/`), built by this crate's build script with Vite and
//! embedded in the binary, so `braid serve` needs no web server, no CDN and
//! no files beside it (docs/web.md).
//!
//! This crate only holds the files and says what they are; how they are
//! served (caching, the client-side routes' fallback to `index.html`) is
//! `braid-server`'s `ui` module.

use std::borrow::Cow;

include!(concat!(env!("OUT_DIR"), "/embed.rs"));

/// The page every client-side route is answered with.
pub const INDEX: &str = "index.html";

/// One file of the built UI.
pub struct Asset {
    /// The file's content.
    pub bytes: Cow<'static, [u8]>,
    /// Its `Content-Type`.
    pub content_type: String,
    /// Whether its name carries a hash of its content ([`is_hashed`]).
    pub hashed: bool,
}

/// The embedded file at `path` (relative to the dist, no leading `/`).
pub fn get(path: &str) -> Option<Asset> {
    let file = Dist::get(path)?;
    Some(Asset {
        bytes: file.data,
        content_type: content_type(path),
        hashed: is_hashed(path),
    })
}

/// Every embedded file's path.
pub fn paths() -> impl Iterator<Item = Cow<'static, str>> {
    Dist::iter()
}

/// Whether the name of the file at `path` changes with its content: Vite
/// writes the bundles it hashes under `assets/` and nothing else there, so
/// such a file can be cached for good.
pub fn is_hashed(path: &str) -> bool {
    path.starts_with("assets/")
}

/// The `Content-Type` of a file, from its extension; text in UTF-8 (the
/// encoding Vite writes).
pub fn content_type(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(mime.subtype().as_str(), "javascript" | "json");
    if textual {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_ui_is_embedded() {
        let index = get(INDEX).expect("index.html is embedded");
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert!(!index.hashed);
        let html = String::from_utf8_lossy(&index.bytes);
        // The entry script index.html names is embedded (lazy chunks are
        // loaded by it, not by the page).
        let script = html
            .split("src=\"/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .find(|p| p.starts_with("assets/") && p.ends_with(".js"))
            .expect("index.html loads a hashed script bundle");
        assert!(paths().any(|p| p == script), "{script} is embedded");
        let js = get(script).unwrap();
        assert!(js.hashed);
        assert_eq!(js.content_type, "text/javascript; charset=utf-8");
        assert!(get("assets/nothing.js").is_none());
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("assets/a-1.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("x.woff2"), "font/woff2");
        assert_eq!(content_type("x.unknown"), "application/octet-stream");
    }
}
