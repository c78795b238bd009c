//! `GET /widget/{file}`: the citizens' widget, from the built `widget/dist`.
//!
//! The few files are read once at start, with a gzip copy and an ETag each. Every town page
//! that embeds the widget asks for them, so they are served from memory with caching headers
//! and `Access-Control-Allow-Origin: *` (the loader imports the module across origins).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;

use crate::AppState;

/// One served file.
#[derive(Debug)]
struct Asset {
    content_type: &'static str,
    raw: Bytes,
    gzip: Option<Bytes>,
    etag: String,
}

/// The widget's files, by name.
#[derive(Debug, Default)]
pub struct WidgetAssets {
    files: HashMap<String, Asset>,
    dir: Option<PathBuf>,
}

fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        _ => return None,
    })
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).ok()?;
    enc.finish().ok()
}

impl WidgetAssets {
    /// Read the files of `dir` (not its subdirectories). A missing directory gives an empty
    /// set (every request answers 404, and a warning says how to build the widget).
    pub fn load(dir: &Path) -> WidgetAssets {
        let mut files = HashMap::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            tracing::warn!(dir = %dir.display(), "widget not built: /widget/* answers 404 (run scripts/build-widget.sh)");
            return WidgetAssets { files, dir: Some(dir.to_path_buf()) };
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(ct) = content_type(&name) else { continue };
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            match std::fs::read(entry.path()) {
                Ok(raw) => {
                    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&raw))[..16]);
                    let gzip = if ct.starts_with("image/png") { None } else { gzip(&raw).map(Bytes::from) };
                    files.insert(name, Asset { content_type: ct, raw: Bytes::from(raw), gzip, etag });
                }
                Err(e) => tracing::warn!(file = %name, error = %e, "cannot read a widget file"),
            }
        }
        tracing::info!(dir = %dir.display(), files = files.len(), "widget files loaded");
        WidgetAssets { files, dir: Some(dir.to_path_buf()) }
    }

    /// From `[widget] dir`, else `widget/dist` when it exists.
    pub fn from_config(config: &crate::Config) -> WidgetAssets {
        match &config.widget.dir {
            Some(d) => WidgetAssets::load(d),
            None if Path::new("widget/dist").is_dir() => WidgetAssets::load(Path::new("widget/dist")),
            None => WidgetAssets::default(),
        }
    }

    /// Whether `/widget/{name}` is there to serve.
    pub fn has(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    /// Whether the loader is there.
    pub fn is_built(&self) -> bool {
        self.files.contains_key("lotse.js")
    }
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !q_zero
        })
}

/// Serve a widget file.
pub async fn asset(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let Some(asset) = state.widget.files.get(&name) else {
        if state.widget.files.is_empty() {
            tracing::debug!(dir = ?state.widget.dir, "widget file asked for, but the widget is not built");
        }
        return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "not found").into_response();
    };
    // the loader's address never changes: browsers check it again after a few minutes; the
    // module and the WebAssembly are asked for with the build's version in the query
    let cache = if name == "lotse.js" {
        "public, max-age=300, stale-while-revalidate=86400"
    } else {
        "public, max-age=86400, stale-while-revalidate=604800"
    };
    let mut resp = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag || t.trim() == "*"))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else if let Some(gz) = asset.gzip.as_ref().filter(|_| accepts_gzip(&headers)) {
        let mut r = Response::new(Body::from(gz.clone()));
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        Response::new(Body::from(asset.raw.clone()))
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(&asset.etag) {
        h.insert(header::ETAG, v);
    }
    resp
}
