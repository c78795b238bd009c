//! Talking to the Lotse server: JSON requests, the streamed chat (server-sent events over a
//! POST), and the German messages for every way a request can fail.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, ReadableStreamDefaultReader, Request, RequestInit, RequestMode, Response};

// The wire types are the server's own (`lotse_wire`): what it sends is what is read here.
pub use lotse_wire::chat::AnswerView as Answer;
pub use lotse_wire::{Quote, Source, Speaker, Turn};
use lotse_wire::simplify::SimplifiedHtml;
use lotse_wire::{ErrorBody, TokenEvent};
use serde::Serialize;

/// `lotse_wire::AnswerRequest` and `lotse_wire::chat::FeedbackRequest`, borrowed: the same
/// JSON without copying the history (and a few hundred bytes smaller in the WebAssembly).
#[derive(Debug, Serialize)]
struct ChatRequest<'a> {
    question: &'a str,
    history: &'a [Turn],
}

#[derive(Debug, Serialize)]
struct FeedbackRequest<'a> {
    answer_id: &'a str,
    helpful: bool,
    question: &'a str,
}

/// The hint under an answer without the label at its start: the server's hints begin with
/// "KI-generiert" themselves ("KI-generiert. Bitte prüfen Sie …"), and the widget shows the
/// label right before the hint, so it would read twice.
pub fn hint_without_label(hint: &str, label: &str) -> String {
    let hint = hint.trim();
    match hint.strip_prefix(label) {
        Some(rest) if !label.is_empty() => rest.trim_start_matches(['.', ':']).trim_start().to_string(),
        _ => hint.to_string(),
    }
}

/// Why a request failed; each has a German message for the citizen.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The browser is offline.
    Offline,
    /// The server could not be reached (or the browser refused the request).
    Unreachable,
    /// 429: too many questions in a short time.
    RateLimited { message: String, retry_after: Option<u32> },
    /// 503: the server is busy, starting or has the feature switched off.
    Busy { message: String },
    /// Any other error the server reported, with its (German) message.
    Server { status: u16, code: String, message: String },
}

impl Failure {
    /// The text shown to the citizen.
    pub fn message(&self) -> String {
        match self {
            Failure::Offline => "Sie sind offline. Bitte prüfen Sie Ihre Internetverbindung und \
                                 versuchen Sie es dann noch einmal."
                .to_string(),
            Failure::Unreachable => "Der Dienst ist gerade nicht erreichbar. Bitte versuchen Sie \
                                     es in ein paar Minuten noch einmal."
                .to_string(),
            Failure::RateLimited { message, retry_after } => {
                let base = if message.is_empty() {
                    "Sie haben in kurzer Zeit sehr viele Fragen gestellt.".to_string()
                } else {
                    message.clone()
                };
                match retry_after {
                    Some(s) if *s > 1 => format!("{base} (Wieder möglich in etwa {s} Sekunden.)"),
                    _ => base,
                }
            }
            Failure::Busy { message } if !message.is_empty() => message.clone(),
            Failure::Busy { .. } => "Der Dienst ist gerade stark ausgelastet. Bitte versuchen \
                                     Sie es in ein paar Minuten noch einmal."
                .to_string(),
            Failure::Server { message, .. } if !message.is_empty() => message.clone(),
            Failure::Server { .. } => "Leider ist ein Fehler aufgetreten. Bitte versuchen Sie es \
                                       später noch einmal."
                .to_string(),
        }
    }
}

fn online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

pub(crate) fn network_failure() -> Failure {
    if online() {
        Failure::Unreachable
    } else {
        Failure::Offline
    }
}

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers().get(name).ok().flatten()
}

async fn send(url: &str, method: &str, body: Option<String>, accept: &str) -> Result<Response, Failure> {
    let window = web_sys::window().ok_or(Failure::Unreachable)?;
    if !online() {
        return Err(Failure::Offline);
    }
    let headers = Headers::new().map_err(|_| Failure::Unreachable)?;
    let _ = headers.set("Accept", accept);
    let init = RequestInit::new();
    init.set_method(method);
    init.set_mode(RequestMode::Cors);
    if let Some(body) = body {
        let _ = headers.set("Content-Type", "application/json");
        init.set_body(&JsValue::from_str(&body));
    }
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(url, &init).map_err(|_| Failure::Unreachable)?;
    let resp = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| network_failure())?;
    resp.dyn_into::<Response>().map_err(|_| Failure::Unreachable)
}

pub(crate) async fn text_of(resp: &Response) -> Result<String, Failure> {
    let promise = resp.text().map_err(|_| network_failure())?;
    let v = JsFuture::from(promise).await.map_err(|_| network_failure())?;
    Ok(v.as_string().unwrap_or_default())
}

/// Turn an error response into a [`Failure`], with the server's German message.
pub(crate) async fn failure_of(resp: &Response) -> Failure {
    let status = resp.status();
    let body = text_of(resp).await.unwrap_or_default();
    let (code, message) = match serde_json::from_str::<ErrorBody>(&body) {
        Ok(b) => (b.error.code, b.error.message),
        Err(_) => (String::new(), String::new()),
    };
    match status {
        429 => Failure::RateLimited {
            message,
            retry_after: header(resp, "retry-after").and_then(|v| v.trim().parse().ok()),
        },
        503 => Failure::Busy { message },
        _ => Failure::Server { status, code, message },
    }
}

/// What the chat stream reports.
#[derive(Debug, Clone)]
pub enum ChatEvent {
    Sources(Vec<Source>),
    /// The verbatim passages, sent after the sources and before the first token.
    Quotes(Vec<Quote>),
    Token(String),
    Done(Box<Answer>),
}

/// Ask a question; `on_event` sees the sources, the quotes, then the tokens, then the checked
/// answer (whose quotes replace the earlier ones).
pub async fn chat(
    api: &str,
    question: &str,
    history: &[Turn],
    mut on_event: impl FnMut(ChatEvent),
) -> Result<(), Failure> {
    let body = serde_json::to_string(&ChatRequest { question, history }).unwrap_or_default();
    let resp = send(&format!("{api}/api/v1/chat"), "POST", Some(body), "text/event-stream").await?;
    if !resp.ok() {
        return Err(failure_of(&resp).await);
    }
    let is_stream = header(&resp, "content-type").is_some_and(|c| c.contains("text/event-stream"));
    if !is_stream {
        // a proxy that buffers the stream away, or an older server: the JSON answer
        let text = text_of(&resp).await?;
        let answer: Answer = serde_json::from_str(&text).map_err(|_| Failure::Unreachable)?;
        on_event(ChatEvent::Sources(answer.sources.clone()));
        on_event(ChatEvent::Done(Box::new(answer)));
        return Ok(());
    }
    let reader: ReadableStreamDefaultReader = resp
        .body()
        .ok_or(Failure::Unreachable)?
        .get_reader()
        .dyn_into()
        .map_err(|_| Failure::Unreachable)?;
    let mut parser = SseParser::default();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|_| network_failure())?;
        let done = Reflect::get(&chunk, &JsValue::from_str("done"))
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            break;
        }
        let Ok(value) = Reflect::get(&chunk, &JsValue::from_str("value")) else {
            break;
        };
        let bytes = Uint8Array::new(&value).to_vec();
        for (name, data) in parser.push(&bytes) {
            match name.as_str() {
                "sources" => {
                    if let Ok(s) = serde_json::from_str::<Vec<Source>>(&data) {
                        on_event(ChatEvent::Sources(s));
                    }
                }
                "quotes" => {
                    if let Ok(q) = serde_json::from_str::<Vec<Quote>>(&data) {
                        on_event(ChatEvent::Quotes(q));
                    }
                }
                "token" => {
                    if let Ok(t) = serde_json::from_str::<TokenEvent>(&data) {
                        on_event(ChatEvent::Token(t.text));
                    }
                }
                "done" => {
                    let answer: Answer =
                        serde_json::from_str(&data).map_err(|_| Failure::Unreachable)?;
                    on_event(ChatEvent::Done(Box::new(answer)));
                    return Ok(());
                }
                "error" => {
                    let (code, message) = match serde_json::from_str::<ErrorBody>(&data) {
                        Ok(b) => (b.error.code, b.error.message),
                        Err(_) => (String::new(), String::new()),
                    };
                    if code == "busy" || code == "starting" {
                        return Err(Failure::Busy { message });
                    }
                    return Err(Failure::Server { status: 500, code, message });
                }
                _ => {}
            }
        }
    }
    // the stream ended without its final event (a dropped connection)
    Err(network_failure())
}

/// Splits a byte stream into server-sent events (`event:` name and joined `data:` lines).
#[derive(Debug, Default)]
struct SseParser {
    buf: Vec<u8>,
}

impl SseParser {
    fn push(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = find_blank_line(&self.buf) {
            let raw: Vec<u8> = self.buf.drain(..end.0).collect();
            self.buf.drain(..end.1);
            let text = String::from_utf8_lossy(&raw);
            let mut name = String::from("message");
            let mut data: Vec<&str> = Vec::new();
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if !data.is_empty() {
                out.push((name, data.join("\n")));
            }
        }
        out
    }
}

/// The end of the first event and the length of its separator.
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Thumbs up or down for an answer. The server keeps the question only when the town has
/// switched that on.
pub async fn feedback(api: &str, answer_id: &str, helpful: bool, question: &str) -> Result<(), Failure> {
    let body = serde_json::to_string(&FeedbackRequest { answer_id, helpful, question }).unwrap_or_default();
    let resp = send(&format!("{api}/api/v1/feedback"), "POST", Some(body), "application/json").await?;
    if resp.ok() { Ok(()) } else { Err(failure_of(&resp).await) }
}

/// One look at the Einfache-Sprache version of a page.
#[derive(Debug, Clone)]
pub enum SimplifyPoll {
    Ready(SimplifiedHtml),
    /// The server is writing it: ask again after this many seconds.
    Pending(u32),
}

pub async fn simplify(api: &str, page_url: &str) -> Result<SimplifyPoll, Failure> {
    let q = js_sys::encode_uri_component(page_url);
    let resp = send(&format!("{api}/api/v1/simplify?url={q}"), "GET", None, "application/json").await?;
    match resp.status() {
        200 => {
            let text = text_of(&resp).await?;
            let page: SimplifiedHtml = serde_json::from_str(&text).map_err(|_| Failure::Unreachable)?;
            Ok(SimplifyPoll::Ready(page))
        }
        202 => {
            let wait = header(&resp, "retry-after")
                .and_then(|v| v.trim().parse::<u32>().ok())
                .unwrap_or(5)
                .clamp(1, 15);
            Ok(SimplifyPoll::Pending(wait))
        }
        _ => Err(failure_of(&resp).await),
    }
}
