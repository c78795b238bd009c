//! The Einfache-Sprache button in the main content (after its first `h1`, or at its top): a
//! click swaps the page's text for its plain-language version in place; a second click puts
//! the original nodes back (the same nodes, so the original is restored exactly).

use std::cell::RefCell;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::{Element, Node};

use crate::api::{self, SimplifyPoll};
use crate::config::{Config, SimplifyPosition};

/// One step on the way from the widget's host up to the content element: a node on that way
/// and its siblings, taken out while the plain version is shown.
struct Level {
    node: Node,
    parent: Node,
    before: Vec<Node>,
    after: Vec<Node>,
}

/// The content element, the widget's host inside it (perhaps deeper down, next to the
/// heading), the original nodes while the plain version is shown, and the plain version's
/// container.
struct Swap {
    content: Element,
    host: Element,
    saved: Vec<Level>,
    plain: Option<Element>,
}

thread_local! {
    static SWAP: RefCell<Option<Swap>> = const { RefCell::new(None) };
}

/// Put the button's host into the content: right after the content's first `h1` (after its
/// `hgroup` if it has one) unless `position` says `Top` or there is no `h1`; else as the
/// content's first child.
pub fn place(content: &Element, host: &Element, position: SimplifyPosition) {
    let heading = match position {
        SimplifyPosition::AfterHeading => content.query_selector("h1").ok().flatten(),
        SimplifyPosition::Top => None,
    };
    let placed = heading.and_then(|h1| {
        let anchor = match h1.parent_element() {
            Some(p) if p.tag_name().eq_ignore_ascii_case("hgroup") && p != *content => p,
            _ => h1,
        };
        let parent = anchor.parent_node()?;
        parent.insert_before(host, anchor.next_sibling().as_ref()).ok()
    });
    if placed.is_none() {
        let _ = content.insert_before(host, content.first_child().as_ref());
    }
}

/// Remember where the button lives (called once when mounting).
pub fn attach(content: Element, host: Element) {
    SWAP.with(|s| *s.borrow_mut() = Some(Swap { content, host, saved: Vec::new(), plain: None }));
}

/// Replace the content (all but the widget's host) with `html`.
fn show_plain(html: &str) -> bool {
    SWAP.with(|s| {
        let mut s = s.borrow_mut();
        let Some(sw) = s.as_mut() else { return false };
        if sw.plain.is_some() {
            return true;
        }
        let Some(doc) = web_sys::window().and_then(|w| w.document()) else { return false };
        let Ok(plain) = doc.create_element("div") else { return false };
        plain.set_class_name("lotse-einfache-sprache");
        let _ = plain.set_attribute("lang", "de");
        let _ = plain.set_attribute("data-lotse-plain", "");
        plain.set_inner_html(html);
        let content: &Node = sw.content.as_ref();
        if !content.contains(Some(sw.host.as_ref())) {
            return false;
        }
        // take out everything in the content but the host and the elements around it (the
        // host stays where it is, so a focused button keeps the focus)
        let mut levels = Vec::new();
        let mut node: Node = sw.host.clone().into();
        while let Some(parent) = node.parent_node() {
            let kids = parent.child_nodes();
            let all: Vec<Node> = (0..kids.length()).filter_map(|i| kids.item(i)).collect();
            let at = all.iter().position(|n| *n == node).unwrap_or(all.len());
            let before = all[..at].to_vec();
            let after = all.get(at + 1..).map(<[Node]>::to_vec).unwrap_or_default();
            for n in before.iter().chain(&after) {
                let _ = parent.remove_child(n);
            }
            let done = parent == *content;
            levels.push(Level { node, parent: parent.clone(), before, after });
            if done {
                break;
            }
            node = parent;
        }
        // the host is now the only child of its parent: the plain version follows it
        if let Some(parent) = sw.host.parent_node() {
            let _ = parent.append_child(&plain);
        }
        sw.saved = levels;
        sw.plain = Some(plain);
        true
    })
}

/// Put the original nodes back, in their order, and drop the plain version.
fn show_original() {
    SWAP.with(|s| {
        let mut s = s.borrow_mut();
        let Some(sw) = s.as_mut() else { return };
        let Some(plain) = sw.plain.take() else { return };
        plain.remove();
        for level in sw.saved.drain(..) {
            for n in &level.before {
                let _ = level.parent.insert_before(n, Some(&level.node));
            }
            for n in &level.after {
                let _ = level.parent.append_child(n);
            }
        }
    })
}

async fn sleep(d: Duration) {
    let (tx, rx) = futures_channel();
    set_timeout(move || tx(), d);
    let _ = rx.await;
}

/// A one-shot wake-up without another dependency: a promise resolved by the timer.
fn futures_channel() -> (impl FnOnce() + 'static, wasm_bindgen_futures::JsFuture) {
    let mut resolve_fn: Option<js_sys::Function> = None;
    let promise = js_sys::Promise::new(&mut |resolve, _| resolve_fn = Some(resolve));
    let resolve = resolve_fn.expect("the Promise executor runs synchronously");
    (
        move || {
            let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
        },
        wasm_bindgen_futures::JsFuture::from(promise),
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Original,
    Loading,
    Plain,
}

#[component]
pub fn SimplifyButton(config: Config) -> impl IntoView {
    let state = RwSignal::new(State::Original);
    let message = RwSignal::new(None::<String>);
    // each click starts a new attempt; a running poll whose attempt is over stops
    let attempt = StoredValue::new(0u32);
    let api = config.api.clone();
    let page = config.page_url.clone();
    let label = config.text.simplify.clone();
    let back = config.text.original.clone();

    let click = move |_| match state.get_untracked() {
        State::Plain => {
            show_original();
            state.set(State::Original);
            message.set(Some("Sie sehen wieder den Originaltext.".into()));
        }
        State::Loading => {
            attempt.update_value(|a| *a += 1);
            state.set(State::Original);
            message.set(None);
        }
        State::Original => {
            attempt.update_value(|a| *a += 1);
            let mine = attempt.get_value();
            state.set(State::Loading);
            message.set(Some("Der Text wird in Einfache Sprache übertragen …".into()));
            let api = api.clone();
            let page = page.clone();
            spawn_local(async move {
                let mut waited = 0u32;
                loop {
                    if attempt.get_value() != mine {
                        return;
                    }
                    match api::simplify(&api, &page).await {
                        Ok(SimplifyPoll::Ready(p)) => {
                            if attempt.get_value() != mine {
                                return;
                            }
                            if show_plain(&p.html) {
                                state.set(State::Plain);
                                message.set(Some("Sie sehen jetzt die Seite in Einfacher Sprache.".into()));
                            } else {
                                state.set(State::Original);
                                message.set(Some("Die Fassung in Einfacher Sprache lässt sich hier leider nicht anzeigen.".into()));
                            }
                            return;
                        }
                        Ok(SimplifyPoll::Pending(secs)) => {
                            if waited > 0 {
                                message.set(Some(format!(
                                    "Der Text wird gerade in Einfache Sprache übertragen. Das kann einige Minuten dauern; Sie können so lange weiterlesen. (seit {} Sekunden)",
                                    waited
                                )));
                            }
                            sleep(Duration::from_secs(secs.into())).await;
                            waited += secs;
                        }
                        Err(f) => {
                            if attempt.get_value() != mine {
                                return;
                            }
                            let text = match &f {
                                api::Failure::Server { status: 404, .. } => {
                                    "Für diese Seite gibt es leider keine Fassung in Einfacher Sprache.".to_string()
                                }
                                other => other.message(),
                            };
                            state.set(State::Original);
                            message.set(Some(text));
                            return;
                        }
                    }
                }
            });
        }
    };

    view! {
        <div class="lotse simplify" lang="de">
            <button type="button" class="simplify-button"
                aria-busy=move || (state.get() == State::Loading).to_string()
                on:click=click>
                <svg aria-hidden="true" viewBox="0 0 24 24" width="20" height="20"><path fill="currentColor"
                    d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 4a1.5 1.5 0 1 1 0 3 1.5 1.5 0 0 1 0-3zm-2 5h3v6h1.5v2h-5v-2H11v-4h-1z"/></svg>
                <span>{move || match state.get() {
                    State::Original => label.clone(),
                    State::Loading => "Wird geladen … (Abbrechen)".to_string(),
                    State::Plain => back.clone(),
                }}</span>
                {move || (state.get() == State::Loading).then(|| view! { <span class="spinner" aria-hidden="true"></span> })}
            </button>
            <p class="status" role="status" aria-live="polite">{move || message.get().unwrap_or_default()}</p>
        </div>
    }
}

/// Find the main content for the button: the first element matching the selector.
pub fn content_element(selector: &str) -> Option<Element> {
    let doc = web_sys::window()?.document()?;
    for part in selector.split(',') {
        if let Ok(Some(el)) = doc.query_selector(part.trim()) {
            return Some(el);
        }
    }
    None
}

