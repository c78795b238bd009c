//! The staff portal's page (`/portal/`): sign-in, the KI-Kompass check, collections with
//! uploads, and the cited chat over collections and the website. Built as a module of its own
//! (`lotse_portal.js`, cargo feature `portal`), so citizens never download it; it shares the
//! widget's request and error handling (`api`).
//!
//! Every request goes to the same origin with the session cookie; requests that change
//! something carry the session's CSRF token.

use leptos::ev;
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, HtmlElement, Request, RequestCredentials, RequestInit, Response};

use crate::api::{self, Failure, Source};
// the portal API's bodies, shared with the server
use lotse_wire::chat::AnswerView as Answer;
use lotse_wire::insights::{InsightsResponse as InsightList, Outcome};
use lotse_wire::portal::{
    Collection, Document, Graded, Kompass, KompassAnswers, Level, LoginOptions, LoginRequest, Me, NewCollection, NewPrompt, Owner,
    OidcOption, PortalChatRequest, PortalModel as Model, Prompt, RegisterEntry as RegisterRow, Role, Usage as UsageRow, UserChange,
    UserInfo as User,
};
use lotse_wire::reviews::{BlockCorrection, ReviewDecision, ReviewRequest, RewriteReview};
use lotse_wire::simplify::ReviewStatus;

fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Answered => "beantwortet",
        Outcome::Hedged => "unsichere Antwort",
        Outcome::Refused => "keine Antwort",
        Outcome::RatedDown => "schlecht bewertet",
    }
}

/// `2026-12-06` as `6.12.2026`.
fn german_date(day: &str) -> String {
    let p: Vec<&str> = day.split('-').collect();
    match p.as_slice() {
        [y, m, d] => format!("{}.{}.{y}", d.trim_start_matches('0'), m.trim_start_matches('0')),
        _ => day.to_string(),
    }
}

/// One block of a rewrite beside its original, with the reviewer's correction: their
/// wording (`text`, prefilled with the model's) or the model's wording not taken (`skip`).
#[derive(Clone, Debug)]
struct ReviewBlock {
    index: usize,
    status: String,
    original: String,
    /// The model's wording as edited text (a list: one item a line).
    proposed: String,
    text: RwSignal<String>,
    skip: RwSignal<bool>,
}

/// The editable text of a rewritten block: a paragraph's text, or a list's items a line each.
fn editable_text(b: &serde_json::Value) -> String {
    match b["items"].as_array() {
        Some(items) => items.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join("\n"),
        None => b["text"].as_str().unwrap_or_default().to_string(),
    }
}

/// The corrections of an approval: blocks not taken, and blocks whose text was changed.
fn corrections(blocks: &[ReviewBlock]) -> Vec<BlockCorrection> {
    blocks
        .iter()
        .filter_map(|b| {
            if b.skip.get_untracked() {
                return Some(BlockCorrection { index: b.index, text: None });
            }
            let text = b.text.get_untracked();
            (text.trim() != b.proposed.trim()).then(|| BlockCorrection { index: b.index, text: Some(text) })
        })
        .collect()
}

/// The text of a block of the API (`text`, list `items` or table `rows`).
fn block_text(b: &serde_json::Value) -> String {
    if let Some(t) = b["text"].as_str() {
        return t.to_string();
    }
    if let Some(items) = b["items"].as_array() {
        return items.iter().filter_map(|i| i.as_str()).map(|i| format!("– {i}")).collect::<Vec<_>>().join("\n");
    }
    b["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r.as_array().map(|c| c.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" | ")).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn review_label(status: ReviewStatus) -> &'static str {
    match status {
        ReviewStatus::Approved => "freigegeben",
        ReviewStatus::Rejected => "abgelehnt",
        ReviewStatus::Pending => "zu prüfen",
    }
}

/// The answer of `POST /portal/api/chat` (`lotse_wire::portal::PortalChatResponse`), read
/// with the answer as the widget's [`Answer`] view (`lotse_wire::chat::AnswerView`: the same
/// JSON, only the fields the page shows), which the page's answer rendering shares with the
/// citizens' chat.
#[derive(Clone, Debug, Deserialize, PartialEq)]
struct ChatResponse {
    chat_id: i64,
    answer: Answer,
}

#[derive(Clone, Debug)]
struct Exchange {
    id: usize,
    question: String,
    answer: RwSignal<Option<Answer>>,
    error: RwSignal<Option<String>>,
}

async fn request(method: &str, path: &str, body: Option<JsValue>, json: bool, csrf: Option<String>) -> Result<String, Failure> {
    let window = web_sys::window().ok_or(Failure::Unreachable)?;
    let headers = Headers::new().map_err(|_| Failure::Unreachable)?;
    let _ = headers.set("Accept", "application/json");
    if json {
        let _ = headers.set("Content-Type", "application/json");
    }
    if let Some(c) = csrf {
        let _ = headers.set("X-CSRF-Token", &c);
    }
    let init = RequestInit::new();
    init.set_method(method);
    init.set_credentials(RequestCredentials::SameOrigin);
    init.set_headers(&headers);
    if let Some(b) = body {
        init.set_body(&b);
    }
    let req = Request::new_with_str_and_init(path, &init).map_err(|_| Failure::Unreachable)?;
    let resp: Response = JsFuture::from(window.fetch_with_request(&req))
        .await
        .map_err(|_| api::network_failure())?
        .dyn_into()
        .map_err(|_| Failure::Unreachable)?;
    if !resp.ok() {
        return Err(api::failure_of(&resp).await);
    }
    api::text_of(&resp).await
}

fn parse<T: DeserializeOwned>(text: &str) -> Result<T, Failure> {
    serde_json::from_str(text).map_err(|_| Failure::Server {
        status: 200,
        code: "bad_response".into(),
        message: "Die Antwort des Servers war unverständlich. Bitte laden Sie die Seite neu.".into(),
    })
}

async fn get<T: DeserializeOwned>(path: &str) -> Result<T, Failure> {
    parse(&request("GET", path, None, false, None).await?)
}

async fn send<T: DeserializeOwned>(method: &str, path: &str, body: &impl Serialize, csrf: Option<String>) -> Result<T, Failure> {
    let body = serde_json::to_string(body).unwrap_or_default();
    parse(&request(method, path, Some(JsValue::from_str(&body)), true, csrf).await?)
}

fn is_unauthenticated(f: &Failure) -> bool {
    matches!(f, Failure::Server { status: 401, .. })
}

fn level_label(level: Level) -> &'static str {
    match level {
        Level::Seepferdchen => "KI-Seepferdchen",
        Level::Bronze => "Bronze",
        Level::Silber => "Silber",
        Level::Gold => "Gold",
        Level::None => "noch ohne KI-Kompass",
    }
}

/// The levels an admin can set, with their value in the API.
const LEVELS: [(Level, &str); 5] = [
    (Level::None, "none"),
    (Level::Seepferdchen, "seepferdchen"),
    (Level::Bronze, "bronze"),
    (Level::Silber, "silber"),
    (Level::Gold, "gold"),
];

fn role_key(role: Role) -> &'static str {
    match role {
        Role::Staff => "staff",
        Role::Editor => "editor",
        Role::Admin => "admin",
    }
}

/// The KI-Kompass text (Markdown): headings, lists and paragraphs.
fn markdown(text: &str) -> Vec<AnyView> {
    let mut out = Vec::new();
    for block in text.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
        if let Some(h) = block.strip_prefix("## ") {
            out.push(view! { <h3>{h.to_string()}</h3> }.into_any());
        } else if let Some(h) = block.strip_prefix("# ") {
            out.push(view! { <h2>{h.to_string()}</h2> }.into_any());
        } else if block.lines().all(|l| l.trim_start().starts_with("- ") || l.trim_start().starts_with("* ")) {
            let items: Vec<String> = block.lines().map(|l| l.trim_start()[2..].replace("**", "")).collect();
            out.push(view! { <ul>{items.into_iter().map(|i| view! { <li>{i}</li> }).collect_view()}</ul> }.into_any());
        } else {
            let p = block.split_whitespace().collect::<Vec<_>>().join(" ").replace("**", "");
            out.push(view! { <p>{p}</p> }.into_any());
        }
    }
    out
}

#[component]
fn Login(me: RwSignal<Option<Me>>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let oidc = RwSignal::new(None::<OidcOption>);
    spawn_local(async move {
        if let Ok(o) = get::<LoginOptions>("/portal/api/login-options").await {
            oidc.set(o.oidc);
        }
    });
    let submit = move |e: ev::SubmitEvent| {
        e.prevent_default();
        busy.set(true);
        error.set(None);
        let body = LoginRequest { name: name.get_untracked().trim().to_string(), password: password.get_untracked() };
        spawn_local(async move {
            match send::<Me>("POST", "/portal/api/login", &body, None).await {
                Ok(m) => me.set(Some(m)),
                Err(f) => error.set(Some(f.message())),
            }
            busy.set(false);
        });
    };
    view! {
        <section class="card" aria-labelledby="login-h">
            <h2 id="login-h">"Anmelden"</h2>
            <p>"Melden Sie sich mit Ihrem Konto der Verwaltung an."</p>
            {move || oidc.get().map(|o| view! {
                <p><a class="button" href=o.url.clone()>{o.label.clone()}</a></p>
                <p>"Oder mit Benutzername und Passwort:"</p>
            })}
            <form on:submit=submit>
                <label for="login-name">"Benutzername"</label>
                <input id="login-name" name="username" autocomplete="username" required
                    on:input=move |e| name.set(event_target_value(&e))/>
                <label for="login-password">"Passwort"</label>
                <input id="login-password" name="password" type="password" autocomplete="current-password" required
                    on:input=move |e| password.set(event_target_value(&e))/>
                <button type="submit" prop:disabled=move || busy.get()>"Anmelden"</button>
            </form>
            <p class="error" role="alert">{move || error.get()}</p>
        </section>
    }
}

#[component]
fn KompassCheck(me: RwSignal<Option<Me>>) -> impl IntoView {
    let kompass = RwSignal::new(None::<Kompass>);
    let answers = RwSignal::new(Vec::<Option<usize>>::new());
    let result = RwSignal::new(None::<Graded>);
    let error = RwSignal::new(None::<String>);
    spawn_local(async move {
        match get::<Kompass>("/portal/api/kompass").await {
            Ok(k) => {
                answers.set(vec![None; k.check.questions.len()]);
                kompass.set(Some(k));
            }
            Err(f) => error.set(Some(f.message())),
        }
    });
    let submit = move |e: ev::SubmitEvent| {
        e.prevent_default();
        let a = answers.get_untracked();
        if a.iter().any(Option::is_none) {
            error.set(Some("Bitte beantworten Sie alle Fragen.".into()));
            return;
        }
        error.set(None);
        let body = KompassAnswers { answers: a.iter().map(|x| x.unwrap_or(0)).collect() };
        let csrf = me.get_untracked().and_then(|m| m.csrf);
        spawn_local(async move {
            match send::<Graded>("POST", "/portal/api/kompass", &body, csrf).await {
                Ok(g) => result.set(Some(g)),
                Err(f) => error.set(Some(f.message())),
            }
        });
    };
    let go_on = move |_| {
        spawn_local(async move {
            if let Ok(m) = get::<Me>("/portal/api/me").await {
                me.set(Some(m));
            }
        });
    };
    view! {
        <section class="card" aria-labelledby="kompass-h">
            <h2 id="kompass-h">"KI-Kompass: Ihr KI-Seepferdchen"</h2>
            <p>"Bevor Sie den KI-Chat nutzen, lesen Sie bitte die Regeln der Verwaltung für KI und beantworten Sie die Fragen dazu."</p>
            {move || kompass.get().map(|k| {
                let questions = k.check.questions.clone();
                view! {
                    <div class="kompass-text" tabindex="0" role="region" aria-label="Der KI-Kompass der Verwaltung">{markdown(&k.text)}</div>
                    <form on:submit=submit>
                        {questions.into_iter().enumerate().map(|(qi, q)| view! {
                            <fieldset>
                                <legend>{format!("{}. {}", qi + 1, q.text)}</legend>
                                {q.options.into_iter().enumerate().map(|(oi, o)| {
                                    let id = format!("frage-{qi}-{oi}");
                                    view! {
                                        <div class="option">
                                            <input type="radio" id=id.clone() name=format!("frage-{qi}")
                                                on:change=move |_| answers.update(|a| if let Some(x) = a.get_mut(qi) { *x = Some(oi) })/>
                                            <label for=id>{o}</label>
                                        </div>
                                    }
                                }).collect_view()}
                            </fieldset>
                        }).collect_view()}
                        <button type="submit">"Antworten abgeben"</button>
                    </form>
                }
            })}
            <div aria-live="polite">
                {move || result.get().map(|g| if g.passed {
                    view! {
                        <div class="ok">
                            <p>{format!("Bestanden: {} von {} Antworten richtig. Sie haben jetzt das KI-Seepferdchen.", g.right, g.total)}</p>
                            <button type="button" on:click=go_on>"Weiter zum KI-Chat"</button>
                        </div>
                    }.into_any()
                } else {
                    view! {
                        <p class="error">{format!("Noch nicht bestanden: {} von {} Antworten richtig. Lesen Sie die Regeln noch einmal und versuchen Sie es erneut.", g.right, g.total)}</p>
                    }.into_any()
                })}
            </div>
            <p class="error" role="alert">{move || error.get()}</p>
        </section>
    }
}

#[component]
fn Workspace(me: Me, on_signed_out: Callback<()>) -> impl IntoView {
    let csrf = me.csrf.clone();
    let collections = RwSignal::new(Vec::<Collection>::new());
    let chosen = RwSignal::new(Vec::<i64>::new());
    let website = RwSignal::new(true);
    let models = RwSignal::new(Vec::<Model>::new());
    let model = RwSignal::new("lokal".to_string());
    let notice = RwSignal::new(None::<String>);
    let upload_error = RwSignal::new(None::<String>);
    let exchanges = RwSignal::new(Vec::<Exchange>::new());
    let chat_id = RwSignal::new(None::<i64>);
    let draft = RwSignal::new(String::new());
    let asking = RwSignal::new(false);
    let next_id = StoredValue::new(0usize);
    let can_manage = me.user.role != Role::Staff;
    let is_admin = me.user.role == Role::Admin;
    let admin_csrf = me.csrf.clone();
    let review_rewrites = me.review_rewrites;
    let review_csrf = me.csrf.clone();
    let insights = me.insights;
    let insights_csrf = me.csrf.clone();
    let share_prompts = me.share_prompts;
    let groups = me.user.groups.clone();
    let user_id = me.user.id;
    let csrf_v = StoredValue::new(csrf);

    let reload = move || {
        spawn_local(async move {
            match get::<Vec<Collection>>("/portal/api/collections").await {
                Ok(c) => collections.set(c),
                Err(f) if is_unauthenticated(&f) => on_signed_out.run(()),
                Err(_) => {}
            }
        })
    };
    reload();
    spawn_local(async move {
        if let Ok(m) = get::<Vec<Model>>("/portal/api/models").await {
            models.set(m);
        }
    });

    // the prompt library: pick a prompt, fill in its {variables}, take it into the question
    let prompts = RwSignal::new(Vec::<Prompt>::new());
    let picked = RwSignal::new(None::<Prompt>);
    let vars = RwSignal::new(Vec::<(String, RwSignal<String>)>::new());
    let reload_prompts = move || {
        spawn_local(async move {
            if let Ok(p) = get::<Vec<Prompt>>("/portal/api/prompts").await {
                prompts.set(p);
            }
        })
    };
    reload_prompts();
    let pick = move |id: String| {
        let p = id.parse::<i64>().ok().and_then(|id| prompts.get_untracked().into_iter().find(|p| p.id == id));
        vars.set(p.iter().flat_map(|p| p.variables.iter().map(|v| (v.clone(), RwSignal::new(String::new())))).collect());
        if let Some(p) = &p
            && p.variables.is_empty()
        {
            draft.set(p.body.clone());
        }
        picked.set(p);
    };
    let take_prompt = move |_| {
        let Some(p) = picked.get_untracked() else { return };
        let mut text = p.body.clone();
        for (name, value) in vars.get_untracked() {
            text = text.replace(&format!("{{{name}}}"), value.get_untracked().trim());
        }
        draft.set(text);
    };
    let prompt_title = RwSignal::new(String::new());
    let prompt_group = RwSignal::new(String::new());
    let save_prompt = move |e: ev::SubmitEvent| {
        e.prevent_default();
        let body = draft.get_untracked();
        if body.trim().is_empty() {
            notice.set(Some("Schreiben Sie zuerst den Text der Vorlage in das Feld „Ihre Frage“.".into()));
            return;
        }
        let group = prompt_group.get_untracked();
        let req = NewPrompt {
            title: prompt_title.get_untracked().trim().to_string(),
            body,
            tags: Vec::new(),
            group: if group.is_empty() { None } else { Some(group) },
        };
        let csrf = csrf_v.get_value();
        spawn_local(async move {
            match send::<Prompt>("POST", "/portal/api/prompts", &req, csrf).await {
                Ok(_) => {
                    notice.set(Some(format!("Die Vorlage „{}“ wurde gespeichert.", prompt_title.get_untracked().trim())));
                    prompt_title.set(String::new());
                    reload_prompts();
                }
                Err(f) => notice.set(Some(f.message())),
            }
        });
    };
    let prompt_groups = groups.clone();

    // a new collection
    let new_title = RwSignal::new(String::new());
    let new_owner = RwSignal::new(groups.first().cloned().unwrap_or_else(|| "ich".into()));
    let create = move |e: ev::SubmitEvent| {
        e.prevent_default();
        let title = new_title.get_untracked();
        let owner = new_owner.get_untracked();
        let owner = if owner == "ich" { Owner::User(user_id) } else { Owner::Group(owner) };
        let csrf = csrf_v.get_value();
        spawn_local(async move {
            match send::<Collection>("POST", "/portal/api/collections", &NewCollection { title, owner }, csrf).await {
                Ok(c) => {
                    notice.set(Some(format!("Die Sammlung „{}“ wurde angelegt.", c.title)));
                    new_title.set(String::new());
                    reload();
                }
                Err(f) => upload_error.set(Some(f.message())),
            }
        });
    };

    // an upload
    let file_input: NodeRef<html::Input> = NodeRef::new();
    let target = RwSignal::new(None::<i64>);
    let uploading = RwSignal::new(false);
    let upload = move |e: ev::SubmitEvent| {
        e.prevent_default();
        upload_error.set(None);
        notice.set(None);
        let Some(input) = file_input.get_untracked() else { return };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            upload_error.set(Some("Bitte wählen Sie eine Datei aus.".into()));
            return;
        };
        let Some(coll) = target.get_untracked().or_else(|| collections.get_untracked().first().map(|c| c.id)) else {
            upload_error.set(Some("Bitte legen Sie zuerst eine Sammlung an.".into()));
            return;
        };
        let name = file.name();
        let path = format!(
            "/portal/api/collections/{coll}/documents/{}",
            String::from(js_sys::encode_uri_component(&name))
        );
        let csrf = csrf_v.get_value();
        uploading.set(true);
        spawn_local(async move {
            let body: JsValue = file.into();
            match request("PUT", &path, Some(body), false, csrf).await.and_then(|t| parse::<Document>(&t)) {
                Ok(d) => {
                    notice.set(Some(format!("„{}“ wurde aufgenommen ({} Abschnitte) und ist jetzt durchsuchbar.", d.title, d.n_chunks)));
                    input.set_value("");
                    reload();
                }
                Err(f) => upload_error.set(Some(f.message())),
            }
            uploading.set(false);
        });
    };

    // the chat
    let ask = move || {
        let q = draft.get_untracked().trim().to_string();
        if q.is_empty() || asking.get_untracked() {
            return;
        }
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        let x = Exchange { id, question: q.clone(), answer: RwSignal::new(None), error: RwSignal::new(None) };
        exchanges.update(|v| v.push(x.clone()));
        draft.set(String::new());
        asking.set(true);
        let body = PortalChatRequest {
            question: q,
            collections: chosen.get_untracked(),
            website: website.get_untracked(),
            model: Some(model.get_untracked()),
            chat_id: chat_id.get_untracked(),
            lang: None,
        };
        let csrf = csrf_v.get_value();
        spawn_local(async move {
            match send::<ChatResponse>("POST", "/portal/api/chat", &body, csrf).await {
                Ok(r) => {
                    chat_id.set(Some(r.chat_id));
                    x.answer.set(Some(r.answer));
                }
                Err(f) => x.error.set(Some(f.message())),
            }
            asking.set(false);
        });
    };
    let new_chat = move |_| {
        chat_id.set(None);
        exchanges.set(Vec::new());
    };
    let delete_history = move |_| {
        let csrf = csrf_v.get_value();
        spawn_local(async move {
            match request("DELETE", "/portal/api/chats", None, false, csrf).await {
                Ok(_) => {
                    chat_id.set(None);
                    exchanges.set(Vec::new());
                    notice.set(Some("Ihr Chat-Verlauf wurde gelöscht.".into()));
                }
                Err(f) => notice.set(Some(f.message())),
            }
        });
    };
    let toggle = move |id: i64, on: bool| {
        chosen.update(|c| {
            c.retain(|x| *x != id);
            if on {
                c.push(id);
            }
        })
    };
    let group_options = groups.clone();

    view! {
        <div class="workspace">
            <section class="card" aria-labelledby="chat-h">
                <h2 id="chat-h">"KI-Chat"</h2>
                <fieldset>
                    <legend>"Antworten aus"</legend>
                    <div class="option">
                        <input type="checkbox" id="quelle-website" prop:checked=move || website.get()
                            on:change=move |e| website.set(event_target_checked(&e))/>
                        <label for="quelle-website">"der Website der Verwaltung"</label>
                    </div>
                    <For each=move || collections.get() key=|c| (c.id, c.documents) let:c>
                        {
                            let id = format!("sammlung-{}", c.id);
                            let cid = c.id;
                            view! {
                                <div class="option">
                                    <input type="checkbox" id=id.clone() prop:checked=move || chosen.get().contains(&cid)
                                        on:change=move |e| toggle(cid, event_target_checked(&e))/>
                                    <label for=id>{format!("{} ({} Dokumente)", c.title, c.documents)}</label>
                                </div>
                            }
                        }
                    </For>
                </fieldset>
                <label for="modell">"Modell"</label>
                <select id="modell" on:change=move |e| model.set(event_target_value(&e))>
                    <For each=move || models.get() key=|m| m.name.clone() let:m>
                        <option value=m.name.clone() prop:disabled=!m.allowed selected=m.name == "lokal">
                            {if m.external { format!("{} (extern: keine internen Dokumente, keine personenbezogenen Daten)", m.label) } else { m.label.clone() }}
                        </option>
                    </For>
                </select>
                <div class="log" aria-live="polite">
                    <For each=move || exchanges.get() key=|x| x.id let:x>
                        <div class="exchange">
                            <p class="question"><span class="sr-only">"Ihre Frage: "</span>{x.question.clone()}</p>
                            {move || x.error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                            {move || match x.answer.get() {
                                None if x.error.get().is_none() => view! { <p class="waiting">"Die Antwort wird erstellt …"</p> }.into_any(),
                                None => ().into_any(),
                                Some(a) => {
                                    let cited: Vec<Source> = a.sources.iter().filter(|s| s.cited).cloned().collect();
                                    view! {
                                        <article class="answer" class:refused=a.refused>
                                            <p class="label">{if a.label.is_empty() { "KI-generiert".to_string() } else { a.label.clone() }}</p>
                                            <p class="text">{a.answer.clone()}</p>
                                            <Show when={let n = cited.len(); move || n > 0}>
                                                <h3 class="sources-h">"Quellen"</h3>
                                                <ol class="sources">
                                                    {cited.iter().map(|s| view! {
                                                        <li><a href=s.deep_link.clone() target="_blank" rel="noopener">
                                                            {format!("[{}] {}", s.n, s.title)}
                                                            {(!s.heading.is_empty() && s.heading != s.title).then(|| format!(" – {}", s.heading))}
                                                        </a></li>
                                                    }).collect_view()}
                                                </ol>
                                            </Show>
                                            <p class="hint">{a.hint.clone()}</p>
                                        </article>
                                    }.into_any()
                                }
                            }}
                        </div>
                    </For>
                </div>
                <div class="prompts">
                    <label for="vorlage">"Vorlage"</label>
                    <select id="vorlage" on:change=move |e| pick(event_target_value(&e))>
                        <option value="">"– keine Vorlage –"</option>
                        <For each=move || prompts.get() key=|p| p.id let:p>
                            <option value=p.id.to_string()>
                                {match &p.group { Some(g) => format!("{} (Gruppe {g})", p.title), None => p.title.clone() }}
                            </option>
                        </For>
                    </select>
                    <Show when=move || !vars.get().is_empty()>
                        <fieldset>
                            <legend>"Angaben für die Vorlage"</legend>
                            {move || vars.get().into_iter().map(|(name, value)| {
                                let id = format!("vorlage-{name}");
                                view! {
                                    <label for=id.clone()>{name.clone()}</label>
                                    <input id=id prop:value=move || value.get() on:input=move |e| value.set(event_target_value(&e))/>
                                }
                            }).collect_view()}
                            <button type="button" class="secondary" on:click=take_prompt>"In die Frage übernehmen"</button>
                        </fieldset>
                    </Show>
                </div>
                <form class="ask" on:submit=move |e: ev::SubmitEvent| { e.prevent_default(); ask(); }>
                    <label for="frage">"Ihre Frage"</label>
                    <textarea id="frage" rows="3" maxlength="1000" prop:value=move || draft.get()
                        on:input=move |e| draft.set(event_target_value(&e))></textarea>
                    <div class="buttons">
                        <button type="submit" prop:disabled=move || asking.get()>"Fragen"</button>
                        <button type="button" class="secondary" on:click=new_chat>"Neuer Chat"</button>
                        <button type="button" class="secondary" on:click=delete_history>"Verlauf löschen"</button>
                    </div>
                </form>
                <details class="save-prompt">
                    <summary>"Frage als Vorlage speichern"</summary>
                    <form on:submit=save_prompt>
                        <label for="vorlage-titel">"Titel der Vorlage"</label>
                        <input id="vorlage-titel" required maxlength="200" prop:value=move || prompt_title.get()
                            on:input=move |e| prompt_title.set(event_target_value(&e))/>
                        <p class="hint">"Platzhalter in geschweiften Klammern, z. B. {thema}, füllen Sie beim Verwenden aus."</p>
                        <label for="vorlage-fuer">"Sichtbar für"</label>
                        <select id="vorlage-fuer" on:change=move |e| prompt_group.set(event_target_value(&e))>
                            <option value="">"nur mich"</option>
                            {prompt_groups.iter().filter(|_| share_prompts).map(|g| view! { <option value=g.clone()>{format!("Gruppe {g}")}</option> }).collect_view()}
                        </select>
                        <button type="submit" class="secondary">"Vorlage speichern"</button>
                    </form>
                </details>
                <p class="policy">"Bitte geben Sie keine personenbezogenen Daten ein. Prüfen Sie jede Antwort an ihrer Quelle: Sie bleiben für die Entscheidung verantwortlich."</p>
            </section>
            <Show when=move || can_manage>
                <section class="card" aria-labelledby="docs-h">
                    <h2 id="docs-h">"Sammlungen und Dokumente"</h2>
                    <form on:submit=create>
                        <label for="sammlung-titel">"Neue Sammlung"</label>
                        <input id="sammlung-titel" required prop:value=move || new_title.get()
                            on:input=move |e| new_title.set(event_target_value(&e))/>
                        <label for="sammlung-fuer">"Sichtbar für"</label>
                        <select id="sammlung-fuer" on:change=move |e| new_owner.set(event_target_value(&e))>
                            {group_options.iter().map(|g| view! { <option value=g.clone()>{format!("Gruppe {g}")}</option> }).collect_view()}
                            <option value="ich">"nur mich"</option>
                        </select>
                        <button type="submit">"Sammlung anlegen"</button>
                    </form>
                    <form on:submit=upload>
                        <label for="ziel">"Sammlung"</label>
                        <select id="ziel" on:change=move |e| target.set(event_target_value(&e).parse().ok())>
                            <For each=move || collections.get() key=|c| (c.id, c.documents) let:c>
                                <option value=c.id.to_string()>{c.title.clone()}</option>
                            </For>
                        </select>
                        <label for="datei">"Dokument (PDF, DOCX, ODT, TXT, Markdown oder HTML)"</label>
                        <input id="datei" type="file" node_ref=file_input
                            accept=".pdf,.docx,.odt,.txt,.md,.markdown,.html,.htm"/>
                        <button type="submit" prop:disabled=move || uploading.get()>
                            {move || if uploading.get() { "Wird hochgeladen …" } else { "Hochladen" }}
                        </button>
                    </form>
                    <p class="error" role="alert">{move || upload_error.get()}</p>
                </section>
            </Show>
            <Show when=move || review_rewrites>
                <Reviews csrf=review_csrf.clone()/>
            </Show>
            <Show when=move || insights>
                <Insights csrf=insights_csrf.clone()/>
            </Show>
            <Show when=move || is_admin>
                <Admin csrf=admin_csrf.clone()/>
            </Show>
            <p class="notice" role="status">{move || notice.get()}</p>
        </div>
    }
}

/// For editors and admins: the model's rewrites of legal texts in Einfache Sprache. Citizens
/// see such a rewrite only once it is approved here (KI-Kompass: people stay responsible);
/// until then they get the original with abbreviations written out and terms explained.
#[component]
fn Reviews(csrf: Option<String>) -> impl IntoView {
    let rows = RwSignal::new(Vec::<RewriteReview>::new());
    // the opened rewrite: key, `generated_at` (the text read), blocks
    let open = RwSignal::new(None::<(String, u64, Vec<ReviewBlock>)>);
    let status = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let csrf_v = StoredValue::new(csrf);
    let reload = move || {
        spawn_local(async move {
            match get::<Vec<RewriteReview>>("/portal/api/simplify/reviews").await {
                Ok(r) => rows.set(r),
                Err(f) => status.set(Some(f.message())),
            }
        })
    };
    reload();
    let show = move |key: String| {
        spawn_local(async move {
            match get::<serde_json::Value>(&format!("/portal/api/simplify/reviews/{key}")).await {
                Ok(page) => {
                    // an earlier approval's corrections, to keep or change
                    let earlier = rows
                        .get_untracked()
                        .into_iter()
                        .find(|r| r.key == key)
                        .map(|r| r.corrections)
                        .unwrap_or_default();
                    let blocks = page["blocks"]
                        .as_array()
                        .map(|bs| {
                            bs.iter()
                                .filter(|b| matches!(b["status"].as_str(), Some("simplified" | "partial")))
                                .map(|b| {
                                    let proposed = editable_text(&b["simplified"]);
                                    let index = b["index"].as_u64().unwrap_or(0);
                                    let fix = earlier.iter().find(|c| c.index as u64 == index);
                                    let skip = fix.is_some_and(|c| c.text.is_none());
                                    let text = fix.and_then(|c| c.text.clone()).unwrap_or_else(|| proposed.clone());
                                    ReviewBlock {
                                        index: index as usize,
                                        status: b["status"].as_str().unwrap_or("").to_string(),
                                        original: block_text(&b["original"]),
                                        text: RwSignal::new(text),
                                        skip: RwSignal::new(skip),
                                        proposed,
                                    }
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    error.set(None);
                    open.set(Some((key, page["generated_at"].as_u64().unwrap_or(0), blocks)));
                }
                Err(f) => status.set(Some(f.message())),
            }
        })
    };
    let decide = move |key: String, read: u64, title: String, decision: ReviewStatus, fixes: Vec<BlockCorrection>| {
        let csrf = csrf_v.get_value();
        spawn_local(async move {
            let n = fixes.len();
            let body = ReviewRequest { status: decision, corrections: fixes, generated_at: Some(read) };
            match send::<ReviewDecision>("POST", &format!("/portal/api/simplify/reviews/{key}"), &body, csrf).await {
                Ok(_) => {
                    let corrected = match n {
                        0 => String::new(),
                        1 => " (ein Abschnitt korrigiert)".to_string(),
                        n => format!(" ({n} Abschnitte korrigiert)"),
                    };
                    status.set(Some(format!("{title}: {}{corrected}.", review_label(decision))));
                    error.set(None);
                    open.set(None);
                    reload();
                }
                // next to the buttons, announced at once (the table above may be long)
                Err(f) => error.set(Some(f.message())),
            }
        });
    };
    view! {
        <section class="card" aria-labelledby="review-h">
            <h2 id="review-h">"Rechtstexte in Einfacher Sprache prüfen"</h2>
            <p class="hint">"Bürgerinnen und Bürger sehen die Umschreibung einer Satzung oder Verordnung erst, wenn Sie sie freigegeben haben. Bis dahin sehen sie den Originaltext mit ausgeschriebenen Abkürzungen und erklärten Fachwörtern. Prüfen Sie jeden Abschnitt: Sagt die Umschreibung dasselbe wie das Original? Sie können einen Abschnitt vor der Freigabe korrigieren oder nicht übernehmen; Beträge, Daten, Fristen und Verweise müssen erhalten bleiben."</p>
            <table>
                <caption class="sr-only">"Umschreibungen von Rechtstexten"</caption>
                <thead><tr><th scope="col">"Seite"</th><th scope="col">"Umgeschrieben"</th><th scope="col">"Lesbarkeit (Flesch)"</th><th scope="col">"Stand"</th><th scope="col">"Aktion"</th></tr></thead>
                <tbody>
                    <For each=move || rows.get() key=|r| (r.key.clone(), r.status, r.reviewer.clone()) let:r>
                        {
                            let key = r.key.clone();
                            view! {
                                <tr>
                                    <td><a href=r.url.clone()>{r.title.clone()}</a></td>
                                    <td>{format!("{} von {} Textteilen", r.units_rewritten, r.units)}</td>
                                    <td>{format!("{:.0} → {:.0}", r.flesch_before, r.flesch_after)}</td>
                                    <td>{match &r.reviewer {
                                        Some(who) => format!("{} ({who})", review_label(r.status)),
                                        None => review_label(r.status).to_string(),
                                    }}</td>
                                    <td><button type="button" class="secondary" on:click=move |_| show(key.clone())>
                                        {format!("Ansehen: {}", r.title)}
                                    </button></td>
                                </tr>
                            }
                        }
                    </For>
                </tbody>
            </table>
            <Show when=move || rows.get().is_empty()>
                <p>"Zurzeit wartet keine Umschreibung auf Ihre Prüfung."</p>
            </Show>
            <p class="notice" role="status">{move || status.get()}</p>
            {move || open.get().map(|(key, read, blocks)| {
                let title = rows.get_untracked().iter().find(|r| r.key == key).map(|r| r.title.clone()).unwrap_or_default();
                let (k1, k2, t1, t2) = (key.clone(), key.clone(), title.clone(), title.clone());
                let all = StoredValue::new(blocks.clone());
                view! {
                    <h3>{format!("Umschreibung: {title}")}</h3>
                    <table class="review">
                        <caption class="sr-only">"Original und Umschreibung, Abschnitt für Abschnitt"</caption>
                        <thead><tr><th scope="col">"Nr."</th><th scope="col">"Original"</th><th scope="col">"Umschreibung (korrigierbar)"</th></tr></thead>
                        <tbody>
                            {blocks.into_iter().map(|b| {
                                let (text, skip) = (b.text, b.skip);
                                let area = format!("korrektur-{}", b.index);
                                let check = format!("verwerfen-{}", b.index);
                                let lines = b.proposed.lines().count().clamp(2, 12);
                                view! {
                                    <tr>
                                        <td>{format!("{}{}", b.index + 1, if b.status == "partial" { " (teilweise)" } else { "" })}</td>
                                        <td class="pre">{b.original}</td>
                                        <td>
                                            <label class="sr-only" for=area.clone()>{format!("Umschreibung von Abschnitt {}", b.index + 1)}</label>
                                            <textarea id=area rows=lines.to_string() prop:value=move || text.get()
                                                prop:disabled=move || skip.get()
                                                on:input=move |e| text.set(event_target_value(&e))></textarea>
                                            <div class="option">
                                                <input type="checkbox" id=check.clone() prop:checked=move || skip.get()
                                                    on:change=move |e| skip.set(event_target_checked(&e))/>
                                                <label for=check>"Nicht übernehmen (Originaltext mit Erklärungen zeigen)"</label>
                                            </div>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                    <div class="buttons">
                        <button type="button" on:click=move |_| decide(k1.clone(), read, t1.clone(), ReviewStatus::Approved, all.with_value(|b| corrections(b)))>"Freigeben"</button>
                        <button type="button" class="secondary" on:click=move |_| decide(k2.clone(), read, t2.clone(), ReviewStatus::Rejected, Vec::new())>"Ablehnen"</button>
                    </div>
                    <p class="error" role="alert">{move || error.get()}</p>
                }
            })}
        </section>
    }
}

/// For editors and admins: "Fragen ohne Antwort", the topics citizens asked about and the
/// website did not answer, most asked first, with samples, the "erledigt" mark, the CSV
/// export and deletion.
#[component]
fn Insights(csrf: Option<String>) -> impl IntoView {
    let list = RwSignal::new(None::<InsightList>);
    let status = RwSignal::new(None::<String>);
    let csrf_v = StoredValue::new(csrf);
    let reload = move || {
        spawn_local(async move {
            match get::<InsightList>("/portal/api/insights/topics").await {
                Ok(l) => list.set(Some(l)),
                Err(f) => status.set(Some(f.message())),
            }
        })
    };
    reload();
    let act = move |method: &'static str, path: String, done: String| {
        let csrf = csrf_v.get_value();
        spawn_local(async move {
            match request(method, &path, None, false, csrf).await {
                Ok(_) => {
                    status.set(Some(done));
                    reload();
                }
                Err(f) => status.set(Some(f.message())),
            }
        });
    };
    let delete_all = move |_| {
        let sure = web_sys::window()
            .and_then(|w| w.confirm_with_message("Wirklich alle gespeicherten Fragen löschen? Das lässt sich nicht rückgängig machen.").ok())
            .unwrap_or(false);
        if sure {
            act("DELETE", "/portal/api/insights".into(), "Alle gespeicherten Fragen wurden gelöscht.".into());
        }
    };
    view! {
        <section class="card" aria-labelledby="insights-h">
            <h2 id="insights-h">"Fragen ohne Antwort"</h2>
            {move || list.get().map(|l| view! {
                <p class="hint">{format!(
                    "Themen der letzten {} Tage, zu denen Bürgerinnen und Bürger im Chat gefragt und auf der Website keine oder keine sichere Antwort gefunden haben, die häufigsten zuerst. Ein Thema erscheint erst ab {} Fragen. Namen, Adressen, Telefonnummern und andere persönliche Angaben sind durch Platzhalter ersetzt; die Fragen werden nach {} Tagen gelöscht.",
                    l.days, l.min_questions, l.retention_days
                )}</p>
            })}
            <p class="exports">
                <a href="/portal/api/insights/topics?format=csv" download="fragen-ohne-antwort.csv">"Themen als CSV herunterladen"</a>
            </p>
            <p class="notice" role="status">{move || status.get()}</p>
            <Show when=move || list.get().is_some_and(|l| l.topics.is_empty())>
                <p>"Zurzeit gibt es kein Thema mit genug unbeantworteten Fragen."</p>
            </Show>
            <For each=move || list.get().map(|l| l.topics).unwrap_or_default()
                key=|t| (t.id, t.questions, t.done.clone(), t.samples.len())
                let:t>
                {
                    let id = t.id;
                    let label = t.label.clone();
                    let heading = format!("topic-{id}");
                    let labelled_by = heading.clone();
                    let done = t.done.clone();
                    let mark_label = label.clone();
                    view! {
                        <article class="exchange" aria-labelledby=labelled_by>
                            <h3 id=heading>{format!("{} ({} Fragen)", t.label, t.questions)}</h3>
                            <p>{format!(
                                "{} ohne Antwort, {} unsicher beantwortet, {} schlecht bewertet, {} beantwortet.",
                                t.refused, t.hedged, t.rated_down, t.answered
                            )}</p>
                            <p>{format!(
                                "Fragen pro Woche, die älteste Woche zuerst: {}",
                                t.weeks.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
                            )}</p>
                            {t.hedged_page.clone().map(|u| view! {
                                <p>"Diese Seite wurde bei unsicheren Antworten am häufigsten genannt, sagt es aber nicht deutlich: "
                                    <a href=u.clone()>{u.clone()}</a></p>
                            })}
                            {done.clone().map(|d| view! {
                                <p class="ok">{format!(
                                    "Erledigt am {}. Seitdem {} neue Fragen, davon {} beantwortet.",
                                    german_date(&d), t.asked_since_done, t.answered_since_done
                                )}</p>
                            })}
                            <h4 class="sr-only">{format!("Beispielfragen zu {}", label)}</h4>
                            <ul>
                                {t.samples.iter().map(|s| {
                                    let sid = s.id;
                                    view! {
                                        <li>
                                            {format!("„{}“ ({}, {})", s.question, german_date(&s.day), outcome_label(s.outcome))}
                                            " "
                                            <button type="button" class="secondary"
                                                aria-label=format!("Löschen: „{}“ vom {}", s.question, german_date(&s.day))
                                                on:click=move |_| act("DELETE", format!("/portal/api/insights/questions/{sid}"), "Die Frage wurde gelöscht.".into())>
                                                "Löschen"
                                            </button>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                            {match done {
                                None => view! {
                                    <button type="button" on:click=move |_| act("POST", format!("/portal/api/insights/topics/{id}/done"),
                                        format!("„{mark_label}“ ist als erledigt markiert. Neue Fragen zeigen, ob die Website jetzt antwortet.", ))>
                                        {format!("Erledigt: {}", label)}
                                    </button>
                                }.into_any(),
                                Some(_) => view! {
                                    <button type="button" class="secondary" on:click=move |_| act("DELETE", format!("/portal/api/insights/topics/{id}/done"),
                                        "Die Markierung „erledigt“ wurde entfernt.".into())>
                                        {format!("Nicht mehr erledigt: {}", label)}
                                    </button>
                                }.into_any(),
                            }}
                        </article>
                    }
                }
            </For>
            <button type="button" class="secondary" on:click=delete_all>"Alle gespeicherten Fragen löschen"</button>
        </section>
    }
}

/// For admins: accounts and their KI-Kompass levels, usage per group and model, the AI system
/// register, and the exports (CSV and JSON) of audit log, usage and register.
#[component]
fn Admin(csrf: Option<String>) -> impl IntoView {
    let users = RwSignal::new(Vec::<User>::new());
    let usage = RwSignal::new(Vec::<UsageRow>::new());
    let register = RwSignal::new(Vec::<RegisterRow>::new());
    let status = RwSignal::new(None::<String>);
    let csrf_v = StoredValue::new(csrf);
    let reload = move || {
        spawn_local(async move {
            if let Ok(u) = get::<Vec<User>>("/portal/api/admin/users").await {
                users.set(u);
            }
            if let Ok(u) = get::<Vec<UsageRow>>("/portal/api/admin/usage").await {
                usage.set(u);
            }
            if let Ok(r) = get::<Vec<RegisterRow>>("/portal/api/register").await {
                register.set(r);
            }
        })
    };
    reload();
    let set_level = move |id: i64, name: String, value: String| {
        let Some(level) = LEVELS.iter().find(|(_, k)| *k == value).map(|(l, _)| *l) else { return };
        let change = UserChange { level: Some(level), role: None, groups: None, disabled: false };
        let csrf = csrf_v.get_value();
        spawn_local(async move {
            match send::<User>("PATCH", &format!("/portal/api/admin/users/{id}"), &change, csrf).await {
                Ok(u) => {
                    status.set(Some(format!("{}: Stufe {}.", name, level_label(u.level))));
                    reload();
                }
                Err(f) => status.set(Some(f.message())),
            }
        });
    };
    view! {
        <section class="card" aria-labelledby="admin-h">
            <h2 id="admin-h">"Verwaltung"</h2>
            <h3>"Konten und KI-Kompass-Stufen"</h3>
            <table>
                <caption class="sr-only">"Konten"</caption>
                <thead><tr><th scope="col">"Konto"</th><th scope="col">"Rolle"</th><th scope="col">"Gruppen"</th><th scope="col">"Stufe"</th></tr></thead>
                <tbody>
                    <For each=move || users.get() key=|u| (u.id, u.level) let:u>
                        {
                            let id = format!("stufe-{}", u.id);
                            let (uid, name) = (u.id, u.display_name.clone());
                            let current = u.level;
                            view! {
                                <tr>
                                    <td>{format!("{} ({})", u.display_name, u.name)}</td>
                                    <td>{role_key(u.role)}</td>
                                    <td>{u.groups.join(", ")}</td>
                                    <td>
                                        <label for=id.clone() class="sr-only">{format!("Stufe von {}", u.display_name)}</label>
                                        <select id=id on:change=move |e| set_level(uid, name.clone(), event_target_value(&e))>
                                            {LEVELS.iter().map(|(l, key)| view! {
                                                <option value=*key selected=*l == current>{level_label(*l)}</option>
                                            }).collect_view()}
                                        </select>
                                    </td>
                                </tr>
                            }
                        }
                    </For>
                </tbody>
            </table>
            <p class="notice" role="status">{move || status.get()}</p>
            <h3>"Nutzung der letzten 90 Tage"</h3>
            <table>
                <caption class="sr-only">"Nutzung nach Gruppe und Modell"</caption>
                <thead><tr><th scope="col">"Gruppe"</th><th scope="col">"Modell"</th><th scope="col">"Anfragen"</th><th scope="col">"Tokens (Eingabe/Ausgabe)"</th></tr></thead>
                <tbody>
                    <For each=move || usage.get() key=|u| (u.group.clone(), u.model.clone(), u.requests) let:u>
                        <tr><td>{u.group.clone()}</td><td>{u.model.clone()}</td><td>{u.requests}</td>
                            <td>{format!("{} / {}", u.prompt_tokens, u.completion_tokens)}</td></tr>
                    </For>
                </tbody>
            </table>
            <h3>"KI-Register"</h3>
            <table>
                <caption class="sr-only">"Register der KI-Systeme"</caption>
                <thead><tr><th scope="col">"Einsatz"</th><th scope="col">"Modell"</th><th scope="col">"Zweck"</th><th scope="col">"Anbieter"</th><th scope="col">"Risikoklasse"</th><th scope="col">"Verantwortlich"</th></tr></thead>
                <tbody>
                    <For each=move || register.get() key=|r| r.name.clone() let:r>
                        <tr><td>{r.name.clone()}</td><td>{r.model.clone()}</td><td>{r.purpose.clone()}</td>
                            <td>{r.provider.clone()}</td><td>{r.risk_class.clone()}</td><td>{r.responsible.clone()}</td></tr>
                    </For>
                </tbody>
            </table>
            <h3>"Exporte"</h3>
            <ul class="exports">
                <li><a href="/portal/api/admin/audit?format=csv">"Audit-Protokoll (CSV)"</a>" · "<a href="/portal/api/admin/audit">"JSON"</a></li>
                <li><a href="/portal/api/admin/usage?format=csv">"Nutzung (CSV)"</a>" · "<a href="/portal/api/admin/usage">"JSON"</a></li>
                <li><a href="/portal/api/register?format=csv">"KI-Register (CSV)"</a>" · "<a href="/portal/api/register">"JSON"</a></li>
            </ul>
        </section>
    }
}

#[component]
fn Portal() -> impl IntoView {
    let me = RwSignal::new(None::<Me>);
    let loading = RwSignal::new(true);
    spawn_local(async move {
        if let Ok(m) = get::<Me>("/portal/api/me").await {
            me.set(Some(m));
        }
        loading.set(false);
    });
    let signed_out = Callback::new(move |_| me.set(None));
    let logout = move |_| {
        let csrf = me.get_untracked().and_then(|m| m.csrf);
        spawn_local(async move {
            let _ = request("POST", "/portal/api/logout", Some(JsValue::from_str("{}")), true, csrf).await;
            me.set(None);
        });
    };
    view! {
        <header class="top">
            <p class="brand">"Lotse · KI-Portal der Verwaltung"</p>
            {move || me.get().map(|m| view! {
                <p class="who">
                    {format!("{} · {}", m.user.display_name, level_label(m.user.level))}
                    <button type="button" class="secondary" on:click=logout>"Abmelden"</button>
                </p>
            })}
        </header>
        <main id="inhalt">
            <h1 class="sr-only">"KI-Portal"</h1>
            {move || {
                if loading.get() {
                    return view! { <p>"Wird geladen …"</p> }.into_any();
                }
                match me.get() {
                    None => view! { <Login me=me/> }.into_any(),
                    Some(m) if !m.chat => view! { <KompassCheck me=me/> }.into_any(),
                    Some(m) => view! { <Workspace me=m on_signed_out=signed_out/> }.into_any(),
                }
            }}
        </main>
    }
}

/// Mount the portal into `#lotse-portal` (the page `/portal/` has it).
#[wasm_bindgen]
pub fn mount_portal() {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else { return };
    let Some(el) = doc.get_element_by_id("lotse-portal") else { return };
    let Ok(el) = el.dyn_into::<HtmlElement>() else { return };
    el.set_inner_html("");
    mount_to(el, || view! { <Portal/> }).forget();
}
