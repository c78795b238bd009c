//! The chat: a launcher button and an accessible dialog in which answers stream in, with their
//! sources, the passages quoted word for word ("Im Wortlaut"), the "KI-generiert" label and
//! thumbs up/down.

use leptos::ev;
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use crate::api::{self, Answer, ChatEvent, Failure, Quote, Source, Speaker, Turn};
use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Waiting for the first event.
    Waiting,
    /// Tokens are arriving.
    Streaming,
    Done,
    Failed,
}

/// One exchange: the citizen's question and the assistant's answer to it.
#[derive(Debug, Clone, Copy)]
struct Exchange {
    id: usize,
    question: RwSignal<String>,
    text: RwSignal<String>,
    sources: RwSignal<Vec<Source>>,
    /// The verbatim passages: from the `quotes` event first, then from the final answer.
    quotes: RwSignal<Vec<Quote>>,
    answer: RwSignal<Option<Answer>>,
    error: RwSignal<Option<String>>,
    phase: RwSignal<Phase>,
    /// `Some(true)` helpful, `Some(false)` not; `None` no feedback yet.
    feedback: RwSignal<Option<bool>>,
    feedback_note: RwSignal<Option<String>>,
}

/// Split an answer into text and `[n]` markers.
fn segments(text: &str) -> Vec<(String, Option<usize>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('[') {
        let after = &rest[start + 1..];
        let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
        if !digits.is_empty() && after[digits.len()..].starts_with(']') {
            if start > 0 {
                out.push((rest[..start].to_string(), None));
            }
            out.push((format!("[{digits}]"), digits.parse().ok()));
            rest = &after[digits.len() + 1..];
        } else {
            out.push((rest[..start + 1].to_string(), None));
            rest = after;
        }
    }
    if !rest.is_empty() {
        out.push((rest.to_string(), None));
    }
    out
}

fn source_href(s: &Source) -> String {
    if s.deep_link.is_empty() { s.url.clone() } else { s.deep_link.clone() }
}

/// The two thumbs share one icon (Material Design's "thumb up", Apache-2.0); thumbs down is
/// the same path turned by 180 degrees.
const THUMB_PATH: &str = "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z";

/// Only web addresses become links: a quote's address comes from the server, but a
/// `javascript:` URL must never reach an `href`.
fn web_url(url: &str) -> Option<&str> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then_some(url)
}

/// "Im Wortlaut": each quote as a `figure` with the passage in a `blockquote` (German, the
/// binding wording, whatever language the answer is in) and a link to its place in the page.
/// The text goes in as a text node, never as HTML.
#[component]
fn QuotesView(quotes: RwSignal<Vec<Quote>>, sources: RwSignal<Vec<Source>>) -> impl IntoView {
    move || {
        let quotes = quotes.get();
        if quotes.is_empty() {
            return None;
        }
        let sources = sources.get();
        let figures = quotes
            .into_iter()
            .filter(|q| !q.text.trim().is_empty())
            .map(|q| {
                let source = sources.iter().find(|s| s.n == q.n);
                let href = web_url(&q.url)
                    .map(str::to_string)
                    .or_else(|| source.map(source_href).filter(|h| web_url(h).is_some()));
                let name = match source {
                    Some(s) if !s.title.is_empty() => format!("Quelle [{}]: {}", q.n, s.title),
                    _ => format!("Quelle [{}]", q.n),
                };
                let caption = match href.clone() {
                    Some(h) => view! {
                        <a href=h target="_blank" rel="noopener">{name}
                            <span class="sr">" (öffnet in einem neuen Fenster)"</span></a>
                    }
                    .into_any(),
                    None => view! { <span>{name}</span> }.into_any(),
                };
                view! {
                    <figure class="quote">
                        <blockquote cite=href lang="de"><p>{q.text.trim().to_string()}</p></blockquote>
                        <figcaption>"— "{caption}</figcaption>
                    </figure>
                }
            })
            .collect_view();
        Some(view! {
            <div class="quotes"><p class="quotes-title">"Im Wortlaut:"</p>{figures}</div>
        })
    }
}

/// The sources to list under an answer: those it cites, or all when it cites none.
fn shown_sources(a: &Answer) -> Vec<Source> {
    let cited: Vec<Source> = a.sources.iter().filter(|s| s.cited).cloned().collect();
    if cited.is_empty() && !a.refused { a.sources.clone() } else { cited }
}

#[component]
fn AnswerView(x: Exchange, api: String) -> impl IntoView {
    let api = StoredValue::new(api);
    let body = move || {
        match x.phase.get() {
            Phase::Waiting => view! {
                <p class="pending"><span class="dots" aria-hidden="true"></span>
                "Einen Moment bitte, ich suche auf den Seiten nach einer Antwort …"</p>
                <QuotesView quotes=x.quotes sources=x.sources/>
            }
            .into_any(),
            Phase::Streaming => view! {
                <p class="text">{move || x.text.get()}</p>
                <QuotesView quotes=x.quotes sources=x.sources/>
            }
            .into_any(),
            Phase::Failed => view! {
                <p class="error">{move || x.error.get().unwrap_or_default()}</p>
            }
            .into_any(),
            Phase::Done => {
                let a = x.answer.get().unwrap_or_else(|| Answer {
                    id: String::new(),
                    answer: x.text.get(),
                    sources: Vec::new(),
                    refused: false,
                    label: "KI-generiert".into(),
                    hint: String::new(),
                    flagged: false,
                    quotes: Vec::new(),
                });
                let sources = a.sources.clone();
                let parts = segments(&a.answer)
                    .into_iter()
                    .map(|(t, n)| match n.and_then(|n| sources.iter().find(|s| s.n == n)) {
                        Some(s) => view! {
                            <a class="cite" href=source_href(s) target="_blank" rel="noopener"
                               title=s.title.clone() aria-label=format!("Quelle {}: {}", s.n, s.title)>{t}</a>
                        }
                        .into_any(),
                        None => view! { <span>{t}</span> }.into_any(),
                    })
                    .collect_view();
                let listed = shown_sources(&a);
                let has_sources = !listed.is_empty();
                let items = listed
                    .into_iter()
                    .map(|s| {
                        let label = if s.heading.is_empty() || s.heading == s.title {
                            s.title.clone()
                        } else {
                            format!("{} – {}", s.title, s.heading)
                        };
                        view! {
                            <li><a href=source_href(&s) target="_blank" rel="noopener">
                                <span class="n">{format!("[{}]", s.n)}</span>" "{label}
                                <span class="sr">" (öffnet in einem neuen Fenster)"</span>
                            </a></li>
                        }
                    })
                    .collect_view();
                let label = if a.label.is_empty() { "KI-generiert".to_string() } else { a.label.clone() };
                let hint = api::hint_without_label(&a.hint, &label);
                let flagged = a.flagged;
                let answer_id = a.id.clone();
                // one rating per answer
                let rate = move |helpful: bool| {
                    if x.feedback.get_untracked().is_some() {
                        return;
                    }
                    let id = answer_id.clone();
                    let api = api.get_value();
                    let question = x.question.get_untracked();
                    x.feedback.set(Some(helpful));
                    spawn_local(async move {
                        let note = match api::feedback(&api, &id, helpful, &question).await {
                            Ok(()) => "Danke für Ihre Rückmeldung!".to_string(),
                            Err(_) => "Ihre Rückmeldung konnte leider nicht gesendet werden.".to_string(),
                        };
                        x.feedback_note.set(Some(note));
                    });
                };
                let rate_up = rate.clone();
                let can_rate = !a.id.is_empty();
                view! {
                    <p class="text">{parts}</p>
                    {flagged.then(|| view! {
                        <p class="flag">"Nicht jede Aussage ließ sich einer Quelle zuordnen. Bitte prüfen Sie die Angaben."</p>
                    })}
                    <QuotesView quotes=x.quotes sources=x.sources/>
                    {has_sources.then(|| view! {
                        <div class="sources"><p class="sources-title">"Quellen"</p><ol>{items}</ol></div>
                    })}
                    <p class="meta"><span class="label">{label}</span>" "<span class="hint">{hint}</span></p>
                    {can_rate.then(|| view! {
                        <div class="feedback" role="group" aria-label="War diese Antwort hilfreich?">
                            <span class="feedback-q" aria-hidden="true">"Hilfreich?"</span>
                            <button type="button" class="thumb" aria-label="Ja, hilfreich"
                                aria-pressed=move || (x.feedback.get() == Some(true)).to_string()
                                on:click=move |_| rate_up(true)>
                                <svg aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="20" height="20">
                                    <path fill="currentColor" d=THUMB_PATH/></svg>
                            </button>
                            <button type="button" class="thumb" aria-label="Nein, nicht hilfreich"
                                aria-pressed=move || (x.feedback.get() == Some(false)).to_string()
                                on:click=move |_| rate(false)>
                                <svg aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="20" height="20">
                                    <path fill="currentColor" transform="rotate(180 12 12)" d=THUMB_PATH/></svg>
                            </button>
                            <span class="feedback-note">{move || x.feedback_note.get().unwrap_or_default()}</span>
                        </div>
                    })}
                }
                .into_any()
            }
        }
    };
    view! {
        <div class="exchange">
            <div class="msg user"><span class="sr">"Ihre Frage: "</span>{move || x.question.get()}</div>
            <div class="msg bot"><span class="sr">"Antwort: "</span>{body}</div>
        </div>
    }
}

/// The elements of `root` that Tab can reach.
fn focusables(root: &web_sys::Element) -> Vec<web_sys::HtmlElement> {
    let Ok(list) = root.query_selector_all(
        "a[href], button:not([disabled]), input:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])",
    ) else {
        return Vec::new();
    };
    (0..list.length())
        .filter_map(|i| list.item(i))
        .filter_map(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
        .filter(|e| e.offset_parent().is_some())
        .collect()
}

/// The element that has the focus inside the widget's shadow root.
fn active_in(el: &web_sys::Element) -> Option<web_sys::Element> {
    let root = el.get_root_node().dyn_into::<web_sys::ShadowRoot>().ok()?;
    root.active_element()
}

#[component]
pub fn Chat(config: Config) -> impl IntoView {
    let open = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let online = RwSignal::new(web_sys::window().is_none_or(|w| w.navigator().on_line()));
    let exchanges: RwSignal<Vec<Exchange>> = RwSignal::new(Vec::new());
    let draft = RwSignal::new(String::new());
    let notice = RwSignal::new(None::<String>);
    let next_id = StoredValue::new(0usize);
    let launcher: NodeRef<html::Button> = NodeRef::new();
    let input: NodeRef<html::Input> = NodeRef::new();
    let dialog: NodeRef<html::Div> = NodeRef::new();
    let scroller: NodeRef<html::Div> = NodeRef::new();
    // keep the newest text in view while it streams, unless the reader has scrolled up
    let follow = move || {
        if let Some(b) = scroller.get_untracked() {
            let near_end = b.scroll_height() - b.scroll_top() - b.client_height() < 120;
            if near_end {
                request_animation_frame(move || b.set_scroll_top(b.scroll_height()));
            }
        }
    };
    let to_end = move || {
        if let Some(b) = scroller.get_untracked() {
            request_animation_frame(move || b.set_scroll_top(b.scroll_height()));
        }
    };
    let api = config.api.clone();
    let t = config.text.clone();

    let on_line = window_event_listener(ev::online, move |_| online.set(true));
    let off_line = window_event_listener(ev::offline, move |_| online.set(false));
    // the widget lives as long as the page
    std::mem::forget(on_line);
    std::mem::forget(off_line);

    let show = move || {
        open.set(true);
        request_animation_frame(move || {
            if let Some(i) = input.get_untracked() {
                let _ = i.focus();
            }
        });
    };
    let hide = move || {
        open.set(false);
        request_animation_frame(move || {
            if let Some(b) = launcher.get_untracked() {
                let _ = b.focus();
            }
        });
    };

    let api_ask = api.clone();
    let ask = move || {
        let question = draft.get_untracked().trim().to_string();
        if question.is_empty() || busy.get_untracked() {
            return;
        }
        if !online.get_untracked() {
            notice.set(Some(Failure::Offline.message()));
            return;
        }
        if question.chars().count() > 1000 {
            notice.set(Some("Ihre Frage ist zu lang. Bitte fassen Sie sich kürzer (höchstens 1000 Zeichen).".into()));
            return;
        }
        notice.set(None);
        // earlier answered exchanges, newest last, for follow-up questions
        let mut history: Vec<Turn> = Vec::new();
        for x in exchanges.get_untracked().iter().filter(|x| x.phase.get_untracked() == Phase::Done) {
            if let Some(a) = x.answer.get_untracked().filter(|a| !a.refused) {
                history.push(Turn { role: Speaker::User, content: x.question.get_untracked() });
                history.push(Turn { role: Speaker::Assistant, content: a.answer });
            }
        }
        let keep = history.len().saturating_sub(6);
        let history = history.split_off(keep);
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        let x = Exchange {
            id,
            question: RwSignal::new(question.clone()),
            text: RwSignal::new(String::new()),
            sources: RwSignal::new(Vec::new()),
            quotes: RwSignal::new(Vec::new()),
            answer: RwSignal::new(None),
            error: RwSignal::new(None),
            phase: RwSignal::new(Phase::Waiting),
            feedback: RwSignal::new(None),
            feedback_note: RwSignal::new(None),
        };
        exchanges.update(|v| v.push(x));
        to_end();
        draft.set(String::new());
        if let Some(i) = input.get_untracked() {
            i.set_value("");
        }
        busy.set(true);
        let api = api_ask.clone();
        spawn_local(async move {
            let result = api::chat(&api, &question, &history, |ev| match ev {
                ChatEvent::Sources(s) => x.sources.set(s),
                ChatEvent::Quotes(q) => {
                    x.quotes.set(q);
                    follow();
                }
                ChatEvent::Token(t) => {
                    x.phase.set(Phase::Streaming);
                    x.text.update(|s| s.push_str(&t));
                    follow();
                }
                ChatEvent::Done(a) => {
                    // the final answer's lists replace what the stream sent before
                    x.sources.set(a.sources.clone());
                    x.quotes.set(a.quotes.clone());
                    x.answer.set(Some(*a));
                    x.phase.set(Phase::Done);
                    follow();
                }
            })
            .await;
            if let Err(f) = result {
                x.error.set(Some(f.message()));
                x.phase.set(Phase::Failed);
            }
            busy.set(false);
        });
    };

    let on_keydown = move |e: web_sys::KeyboardEvent| {
        if e.key() == "Escape" {
            e.prevent_default();
            hide();
            return;
        }
        if e.key() != "Tab" {
            return;
        }
        let Some(d) = dialog.get_untracked() else { return };
        let items = focusables(&d);
        let (Some(first), Some(last)) = (items.first(), items.last()) else { return };
        let active = active_in(&d);
        let first_el: &web_sys::Element = first.as_ref();
        let last_el: &web_sys::Element = last.as_ref();
        if e.shift_key() && active.as_ref() == Some(first_el) {
            e.prevent_default();
            let _ = last.focus();
        } else if !e.shift_key() && active.as_ref() == Some(last_el) {
            e.prevent_default();
            let _ = first.focus();
        }
    };

    let logo = config.logo.clone();
    let title = t.title.clone();
    view! {
        <div class="lotse" class:left=config.left lang="de">
            <button type="button" class="launcher" node_ref=launcher
                aria-haspopup="dialog" aria-controls="lotse-dialog"
                aria-expanded=move || open.get().to_string()
                prop:hidden=move || open.get()
                on:click=move |_| show()>
                <svg aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="24" height="24"><path fill="currentColor"
                    d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>
                <span>{t.launcher.clone()}</span>
            </button>
            <div id="lotse-dialog" class="dialog" role="dialog" aria-modal="true"
                aria-labelledby="lotse-title" aria-describedby="lotse-privacy"
                node_ref=dialog prop:hidden=move || !open.get() on:keydown=on_keydown>
                <div class="head">
                    {logo.map(|src| view! { <img class="logo" src=src alt=""/> })}
                    <h2 id="lotse-title">{title}</h2>
                    <button type="button" class="close" aria-label="Chat schließen" on:click=move |_| hide()>
                        <svg aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="20" height="20"><path fill="currentColor"
                            d="M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z"/></svg>
                    </button>
                </div>
                <div class="body" node_ref=scroller>
                    <p class="greeting">{t.greeting.clone()}</p>
                    <p class="privacy" id="lotse-privacy">{t.privacy.clone()}</p>
                    <div class="log" role="log" aria-live="polite" aria-label="Unterhaltung"
                        aria-busy=move || busy.get().to_string()>
                        <For each=move || exchanges.get() key=|x| x.id let:x>
                            <AnswerView x=x api=api.clone()/>
                        </For>
                    </div>
                </div>
                {move || (!online.get()).then(|| view! {
                    <p class="offline" role="status">"Sie sind offline. Sobald die Verbindung wieder steht, können Sie weiter fragen."</p>
                })}
                <p class="notice" role="alert">{move || notice.get().unwrap_or_default()}</p>
                <form class="ask" on:submit=move |e: ev::SubmitEvent| { e.prevent_default(); ask(); }>
                    <label for="lotse-q" class="sr">"Ihre Frage"</label>
                    <input id="lotse-q" type="text" node_ref=input maxlength="1000" autocomplete="off"
                        placeholder="Ihre Frage …"
                        on:input=move |e| draft.set(event_target_value(&e))/>
                    <button type="submit" class="send" aria-disabled=move || busy.get().to_string()>
                        {move || if busy.get() { "Bitte warten" } else { "Senden" }}
                    </button>
                </form>
            </div>
        </div>
    }
}
