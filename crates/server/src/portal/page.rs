//! The portal's HTML shell that loads the leptos module.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use crate::AppState;
use super::context::disabled;
use super::document_page::html_error;

// ---- the page -----------------------------------------------------------------------------

const PORTAL_CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:1rem;line-height:1.5;color:#1a1a1a;background:#f4f5f7}
.top{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:.5rem;padding:.75rem 1.25rem;background:#0b4f8a;color:#fff}
.top p{margin:0}.brand{font-weight:600}
main{max-width:60rem;margin:0 auto;padding:1rem}
.card{background:#fff;border:1px solid #c9ccd1;border-radius:.5rem;padding:1rem 1.25rem;margin:1rem 0}
h2{margin-top:0;font-size:1.3rem}h3{font-size:1.05rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
.option label{display:inline;font-weight:normal;margin-left:.4rem}
.option{margin:.3rem 0}
input[type=text],input:not([type]),input[type=password],select,textarea{width:100%;padding:.5rem;font:inherit;border:1px solid #6b7280;border-radius:.25rem;background:#fff;color:#1a1a1a}
button{font:inherit;margin-top:.75rem;padding:.5rem 1rem;border-radius:.25rem;border:1px solid #0b4f8a;background:#0b4f8a;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#0b4f8a}
a.button{display:inline-block;padding:.5rem 1rem;border-radius:.25rem;background:#0b4f8a;color:#fff;text-decoration:none;font-weight:600}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border-bottom:1px solid #e5e7eb;padding:.35rem .5rem;text-align:left;vertical-align:top}
td select{width:auto}.exports a{color:#0b4f8a}
table.review td.pre{white-space:pre-line;width:45%}
.prompts{margin:.5rem 0}.save-prompt{margin:.75rem 0}.save-prompt summary{cursor:pointer;color:#0b4f8a;font-weight:600}
.top button.secondary{margin:0 0 0 .75rem;padding:.25rem .75rem}
button:disabled{opacity:.6;cursor:wait}
:focus-visible{outline:3px solid #f2a900;outline-offset:2px}
fieldset{border:1px solid #c9ccd1;border-radius:.25rem;margin:.75rem 0;padding:.5rem .75rem}
legend{font-weight:600;padding:0 .25rem}
.buttons{display:flex;flex-wrap:wrap;gap:.5rem}
.error{color:#a4000f}.ok{color:#0b5d1e}.notice{color:#0b5d1e}
.exchange{border-top:1px solid #e5e7eb;padding:.5rem 0}
.question{font-weight:600}
.answer .label{display:inline-block;margin:0;padding:0 .4rem;border-radius:.25rem;background:#e8eef6;color:#0b3a66;font-size:.85rem;font-weight:600}
.answer .hint,.policy{color:#4b5563;font-size:.9rem}
.sources a{color:#0b4f8a}
.kompass-text{max-height:24rem;overflow:auto;border:1px solid #e5e7eb;padding:.5rem 1rem;margin-bottom:1rem}
.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);border:0}
"#;

/// The portal's page: a shell that loads the leptos module (`/widget/lotse_portal.js`).
#[utoipa::path(get, path = "/portal/", tag = "portal",
    responses((status = 200, content_type = "text/html", body = String)))]
pub async fn page(State(state): State<Arc<AppState>>) -> Response {
    if state.portal().is_none() {
        return html_error(disabled());
    }
    let body = if state.widget.has("lotse_portal.js") {
        "<div id=\"lotse-portal\"><p>Das Portal wird geladen …</p><noscript><p>Bitte schalten Sie JavaScript ein, um das Portal zu nutzen.</p></noscript></div>\
<script type=\"module\">import init, { mount_portal } from \"/widget/lotse_portal.js\"; await init(); mount_portal();</script>"
            .to_string()
    } else {
        tracing::warn!("portal page not built: run scripts/build-widget.sh");
        "<main><h1>KI-Portal</h1><p>Die Oberfläche des Portals ist auf diesem Server nicht installiert. Bitte wenden Sie sich an die IT.</p></main>".to_string()
    };
    let html = format!(
        "<!doctype html><html lang=\"de\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>KI-Portal</title><style>{PORTAL_CSS}</style></head><body>{body}</body></html>"
    );
    let mut r = Html(html).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // the shell's one inline module script starts the portal's WebAssembly; everything else
    // comes from this server
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    r
}
