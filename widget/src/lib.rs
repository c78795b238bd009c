//! Lotse widget: one script tag brings the chat and the Einfache-Sprache button to any CMS
//! page. `loader/lotse.js` loads this module and calls [`mount`] with its script element.
//!
//! Both parts live in their own Shadow DOM, so the CMS's styles cannot break them and theirs
//! cannot leak out. The page's text in Einfache Sprache is shown in the light DOM, in place
//! of the original, so that it keeps the site's typography.

mod api;
mod chat;
mod config;
#[cfg(feature = "portal")]
mod portal;
mod simplify;
mod style;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use web_sys::{Element, HtmlElement, ShadowRootInit, ShadowRootMode};

use crate::config::Config;

/// A host element with an open shadow root holding the widget's styles and a mount point.
fn shadow_host(tag_id: &str, config: &Config) -> Option<(Element, HtmlElement)> {
    let doc = web_sys::window()?.document()?;
    let host = doc.create_element("div").ok()?;
    let _ = host.set_attribute("id", tag_id);
    let _ = host.set_attribute("data-lotse", "");
    let root = host.attach_shadow(&ShadowRootInit::new(ShadowRootMode::Open)).ok()?;
    let style = doc.create_element("style").ok()?;
    style.set_text_content(Some(&style::css(config)));
    root.append_child(&style).ok()?;
    let mount: HtmlElement = doc.create_element("div").ok()?.dyn_into().ok()?;
    root.append_child(&mount).ok()?;
    Some((host, mount))
}

/// Add the widget to the page; `script` is the `<script>` element with the `data-lotse-*`
/// options. Calling it twice does nothing the second time.
#[wasm_bindgen]
pub fn mount(script: Option<Element>) {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else { return };
    if doc.get_element_by_id("lotse-chat").is_some() || doc.get_element_by_id("lotse-simplify").is_some() {
        return;
    }
    let config = Config::from_script(script.as_ref());
    if config.simplify {
        if let Some(content) = simplify::content_element(&config.content_selector) {
            if let Some((host, mount)) = shadow_host("lotse-simplify", &config) {
                simplify::place(&content, &host, config.simplify_position);
                simplify::attach(content, host);
                let c = config.clone();
                mount_to(mount, move || view! { <simplify::SimplifyButton config=c/> }).forget();
            }
        }
    }
    if config.chat {
        if let Some(body) = doc.body() {
            if let Some((host, mount)) = shadow_host("lotse-chat", &config) {
                let _ = body.append_child(&host);
                let c = config.clone();
                mount_to(mount, move || view! { <chat::Chat config=c/> }).forget();
            }
        }
    }
}
