//! The same cited answers behind an OpenAI-compatible API (`/v1/chat/completions`,
//! `/v1/models`), so tools like Open WebUI or n8n can use Lotse as a model. The last user
//! message is the question, earlier user and assistant messages are the history; system
//! messages are ignored (Lotse's own rules apply). The content ends with the numbered sources
//! and the "KI-generiert" label.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use lotse_answer::{Answer, AnswerEvent, AnswerRequest, Speaker, Turn};
use lotse_service::answers::{Running, Started};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

pub use lotse_wire::openai::{
    Completion, CompletionChoice, CompletionMessage, CompletionRequest, ContentPart, MessageContent, ModelEntry, ModelList,
    RequestMessage, StreamOptions, Usage,
};

/// The model name Lotse answers to.
pub const MODEL: &str = "lotse";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Turn OpenAI messages into a Lotse question with history.
fn to_request(req: &CompletionRequest) -> Result<AnswerRequest, ApiError> {
    // content as a string, an array of text parts or null (a tool call's message)
    let turns: Vec<(Speaker, String)> = req
        .messages
        .iter()
        .filter_map(|m| match m.role.as_str() {
            "user" => Some((Speaker::User, m.text())),
            "assistant" => Some((Speaker::Assistant, m.text())),
            _ => None,
        })
        .filter(|(_, text)| !text.trim().is_empty())
        .collect();
    let Some(last) = turns.iter().rposition(|(r, _)| *r == Speaker::User) else {
        return Err(ApiError::bad_request(
            "no_question",
            "Die Anfrage enthält keine Nachricht mit der Rolle \"user\".",
        ));
    };
    let history = turns[..last]
        .iter()
        .rev()
        .take(lotse_answer::MAX_HISTORY_TURNS)
        .rev()
        .map(|(role, content)| Turn {
            role: *role,
            content: content.clone(),
        })
        .collect();
    Ok(AnswerRequest {
        question: turns[last].1.clone(),
        history,
        lang: None,
    })
}

/// The sources and the label, appended to the content.
fn footer(a: &Answer) -> String {
    let mut s = String::new();
    let cited: Vec<_> = a.sources.iter().filter(|s| s.cited).collect();
    if !cited.is_empty() {
        s.push_str("\n\nQuellen:");
        for src in cited {
            s.push_str(&format!("\n[{}] {}: {}", src.n, src.title, src.deep_link));
        }
    }
    s.push_str(&format!("\n\n_{}_", a.hint));
    s
}

/// A completion id: unique (clients such as Open WebUI key messages on it), with no
/// meaning.
fn completion_id() -> String {
    let mut id = lotse_portal::auth::random_token("chatcmpl-");
    id.truncate("chatcmpl-".len() + 24);
    id
}

fn usage(a: &Answer) -> Usage {
    Usage {
        prompt_tokens: a.timings.prompt_tokens,
        completion_tokens: a.timings.completion_tokens,
        total_tokens: a.timings.prompt_tokens + a.timings.completion_tokens,
    }
}

fn completion(id: String, a: &Answer) -> Completion {
    Completion {
        id,
        object: "chat.completion".into(),
        created: now(),
        model: MODEL.into(),
        choices: vec![CompletionChoice {
            index: 0,
            message: CompletionMessage {
                role: "assistant".into(),
                content: format!("{}{}", a.answer, footer(a)),
            },
            finish_reason: "stop".into(),
        }],
        usage: usage(a),
    }
}

/// The last chunk of a stream when the client asked for `stream_options.include_usage`: no
/// choices, the token counts.
fn usage_chunk(id: &str, a: &Answer) -> Event {
    let v = serde_json::json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": now(),
        "model": MODEL,
        "choices": [],
        "usage": usage(a),
    });
    Event::default().data(v.to_string())
}

fn chunk(id: &str, delta: serde_json::Value, finish: Option<&str>) -> Event {
    let v = serde_json::json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": now(),
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    Event::default().data(v.to_string())
}

/// Cited answers as an OpenAI chat completion (`stream: true` for chunks).
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "openai",
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "A chat completion, or with `stream: true` server-sent events: `chat.completion.chunk` objects (OpenAI's format), then `data: [DONE]`", content(
            (Completion = "application/json"),
            (String = "text/event-stream", example = json!("data: {\"id\":\"chatcmpl-3f2a\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"lotse\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Die Hundesteuer \"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n")),
        )),
        (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    body: Result<Json<CompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let Json(req) = body?;
    let question = to_request(&req)?;
    let id = completion_id();
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    match state.answers().start(question, started).await? {
        Started::Cached(a) => {
            if req.stream {
                let mut events: Vec<Result<Event, Infallible>> = vec![
                    Ok(chunk(&id, serde_json::json!({"role": "assistant", "content": a.answer}), None)),
                    Ok(chunk(&id, serde_json::json!({"content": footer(&a)}), Some("stop"))),
                ];
                if include_usage {
                    events.push(Ok(usage_chunk(&id, &a)));
                }
                events.push(Ok(Event::default().data("[DONE]")));
                Ok(Sse::new(stream::iter(events)).into_response())
            } else {
                Ok(Json(completion(id, &a)).into_response())
            }
        }
        Started::Running(run) => {
            if req.stream {
                return Ok(Sse::new(stream_chunks(state, run, id, include_usage))
                    .keep_alive(KeepAlive::default())
                    .into_response());
            }
            let a = run.wait(state.answers()).await?;
            Ok(Json(completion(id, &a)).into_response())
        }
    }
}

/// Streamed tokens are shown as they come; a refusal or a corrected answer arrives whole
/// at the end (the chunk protocol cannot take text back, so checked corrections of streamed
/// text are announced in a final note).
fn stream_chunks(
    state: Arc<AppState>,
    run: Running,
    id: String,
    include_usage: bool,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    struct St {
        state: Arc<AppState>,
        run: Running,
        id: String,
        include_usage: bool,
        streamed: String,
        first: bool,
        done: bool,
        /// The usage chunk, sent after the last content chunk.
        usage: Option<Event>,
    }
    let st = St {
        state,
        run,
        id,
        include_usage,
        streamed: String::new(),
        first: true,
        done: false,
        usage: None,
    };
    stream::unfold(Some(st), |st| async move {
        let mut st = st?;
        if let Some(e) = st.usage.take() {
            return Some((Ok(e), Some(st)));
        }
        if st.done {
            return Some((Ok(Event::default().data("[DONE]")), None));
        }
        loop {
            let Some(ev) = st.run.next(st.state.answers()).await else {
                return Some((Ok(Event::default().data("[DONE]")), None));
            };
            let delta_role = |first: bool, text: &str| {
                if first {
                    serde_json::json!({"role": "assistant", "content": text})
                } else {
                    serde_json::json!({"content": text})
                }
            };
            match ev {
                AnswerEvent::Sources(_) | AnswerEvent::Quotes(_) => continue,
                AnswerEvent::Token(t) => {
                    let e = chunk(&st.id, delta_role(st.first, &t), None);
                    st.first = false;
                    st.streamed.push_str(&t);
                    return Some((Ok(e), Some(st)));
                }
                AnswerEvent::Done(a) => {
                    let mut rest = String::new();
                    if st.streamed.trim().is_empty() {
                        rest.push_str(&a.answer);
                    } else if normalise_ws(&st.streamed) != normalise_ws(&a.answer) {
                        rest.push_str("\n\nGeprüfte Fassung: ");
                        rest.push_str(&a.answer);
                    }
                    rest.push_str(&footer(&a));
                    let e = chunk(&st.id, delta_role(st.first, &rest), Some("stop"));
                    if st.include_usage {
                        st.usage = Some(usage_chunk(&st.id, &a));
                    }
                    st.done = true;
                    return Some((Ok(e), Some(st)));
                }
                AnswerEvent::Error(e) => {
                    let err = ApiError::from(e);
                    let v = serde_json::json!({"error": {"code": err.code, "message": err.message}});
                    st.done = true;
                    return Some((Ok(Event::default().data(v.to_string())), Some(st)));
                }
            }
        }
    })
}

fn normalise_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The models this API offers (one: `lotse`).
#[utoipa::path(get, path = "/v1/models", tag = "openai", responses((status = 200, body = ModelList)))]
pub async fn models() -> Json<ModelList> {
    Json(ModelList {
        object: "list".into(),
        data: vec![ModelEntry {
            id: MODEL.into(),
            object: "model".into(),
            created: 0,
            owned_by: "lotse".into(),
        }],
    })
}
