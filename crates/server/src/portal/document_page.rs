//! A portal document as an HTML page with section anchors (`/portal/dokumente/{id}`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{Html, IntoResponse, Response};
use lotse_core::{Block, CollectionScope};
use lotse_portal::auth::Action;

use crate::AppState;
use crate::error::ApiError;
use super::collections::readable_document;
use super::context::{blocking, ctx, not_found};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"de\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}}table{{border-collapse:collapse}}td,th{{border:1px solid #888;padding:.25rem .5rem}}:target{{background:#fff3b0}}.meta{{color:#444}}</style></head>\
<body><main>{body}</main></body></html>",
        t = esc(title)
    )
}

pub(super) fn html_error(e: ApiError) -> Response {
    let body = format!("<h1>{}</h1><p><a href=\"/portal/\">Zum Portal</a></p>", esc(&e.message));
    let mut r = (e.status, Html(html_page("Lotse-Portal", &body))).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A document as the portal shows it (and cites it), with section anchors.
#[utoipa::path(get, path = "/portal/dokumente/{id}", tag = "portal",
    params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/html", body = String), (status = 401), (status = 403), (status = 404)))]
pub async fn document_page(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let result: Result<String, ApiError> = async {
        let c = ctx(&state, &method, &headers).await?;
        c.allow(&Action::Portal)?;
        let (doc, col) = readable_document(&c, id).await?;
        let answerer = state.answerer().ok_or_else(ApiError::starting)?;
        let url = doc.url.clone();
        let scope = CollectionScope::new([col.index_id()]);
        let found = blocking(move || {
            answerer.index().page(&url, &scope).map_err(|e| {
                tracing::error!(error = %e, "cannot read a document from the index");
                ApiError::internal()
            })
        })
        .await?;
        let Some((_, page)) = found else { return Err(not_found("document")) };
        let mut body = format!(
            "<p class=\"meta\"><a href=\"/portal/\">Portal</a> · Sammlung „{}“ · Datei {}</p><h1>{}</h1>",
            esc(&col.title),
            esc(&doc.file_name),
            esc(&doc.title)
        );
        for b in &page.blocks {
            match b {
                Block::Heading { level, text, anchor } => {
                    let l = (*level).clamp(2, 6);
                    let id = anchor.as_deref().map(|a| format!(" id=\"{}\"", esc(a))).unwrap_or_default();
                    body.push_str(&format!("<h{l}{id}>{}</h{l}>", esc(text)));
                }
                Block::Paragraph { text } => body.push_str(&format!("<p>{}</p>", esc(text))),
                Block::List { ordered, items } => {
                    let t = if *ordered { "ol" } else { "ul" };
                    body.push_str(&format!("<{t}>"));
                    for i in items {
                        body.push_str(&format!("<li>{}</li>", esc(i)));
                    }
                    body.push_str(&format!("</{t}>"));
                }
                Block::Table { rows } => {
                    body.push_str("<table>");
                    for r in rows {
                        body.push_str("<tr>");
                        for cell in r {
                            body.push_str(&format!("<td>{}</td>", esc(cell)));
                        }
                        body.push_str("</tr>");
                    }
                    body.push_str("</table>");
                }
            }
        }
        Ok(html_page(&doc.title, &body))
    }
    .await;
    match result {
        Ok(html) => {
            let mut r = Html(html).into_response();
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
            r
        }
        Err(e) => html_error(e),
    }
}
