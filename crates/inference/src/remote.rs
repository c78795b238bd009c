//! OpenAI-compatible chat-completions engines (vLLM, llama.cpp's server, Ollama, hosted
//! services) behind the same [`Generator`] trait as the local model.
//!
//! The client speaks `POST {base_url}/chat/completions` with `stream: true` and reads the
//! server-sent events line by line. Stop strings are sent to the server and also enforced
//! here (servers differ in how many they accept and whether they trim them), so callers see
//! the same behaviour as with the local generator. The API key is read from an environment
//! variable named in the configuration, never from the configuration itself.
//!
//! Every engine is marked `external`: text sent to an external engine leaves the town's
//! servers, and policy code (the PII guard, private collections) relies on that flag.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::generate::stream::StopMatcher;
use crate::{
    CancelToken, ChatMessage, Generation, GenerationParams, Generator, InferenceError, ModelInfo,
    Result, StopReason,
};

/// Configuration of an OpenAI-compatible engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// Base URL up to and including the API version, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// Model name as the server knows it.
    pub model: String,
    /// Name of the environment variable holding the API key; none is sent when unset.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// True when the engine runs outside the town's own servers (a hosted service).
    /// Private collections and personal data are never sent to an external engine.
    pub external: bool,
    /// Context length in tokens the server allows (prompt plus completion).
    #[serde(default = "default_context")]
    pub context_len: usize,
    /// Seconds to wait for the connection and for each piece of the stream.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_context() -> usize {
    8192
}

fn default_timeout() -> u64 {
    120
}

/// A chat model served over the OpenAI chat-completions API.
#[derive(Debug)]
pub struct RemoteGenerator {
    info: ModelInfo,
    endpoint: String,
    model: String,
    api_key: Option<String>,
    client: reqwest::blocking::Client,
}

impl RemoteGenerator {
    /// Build the client. Fails when the URL is not http(s) or the API-key variable is named
    /// but not set (a misconfiguration better found at start-up than at the first question).
    pub fn new(config: &RemoteConfig) -> Result<RemoteGenerator> {
        let base = config.base_url.trim_end_matches('/');
        let url = reqwest::Url::parse(base)
            .map_err(|e| InferenceError::Remote(format!("invalid base URL {base:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(InferenceError::Remote(format!(
                "base URL {base:?} must start with http:// or https://"
            )));
        }
        if config.model.trim().is_empty() {
            return Err(InferenceError::Remote("the model name is empty".into()));
        }
        let api_key = match &config.api_key_env {
            Some(var) => match std::env::var(var) {
                Ok(key) if !key.is_empty() => Some(key),
                _ => {
                    return Err(InferenceError::Remote(format!(
                        "the API key variable {var} is not set"
                    )));
                }
            },
            None => None,
        };
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(timeout)
            // the blocking client applies this to the response head and to each read of the
            // body, so long answers are fine while tokens keep flowing
            .timeout(timeout)
            .user_agent(concat!("lotse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| InferenceError::Remote(format!("http client: {e}")))?;
        Ok(RemoteGenerator {
            info: ModelInfo {
                id: config.model.clone(),
                external: config.external,
                context_len: config.context_len.max(2),
            },
            endpoint: format!("{base}/chat/completions"),
            model: config.model.clone(),
            api_key,
            client,
        })
    }

    /// Use this API key instead of the configured environment variable.
    pub fn with_api_key(mut self, key: impl Into<String>) -> RemoteGenerator {
        self.api_key = Some(key.into());
        self
    }

    fn request_body<'a>(
        &'a self,
        messages: &'a [ChatMessage],
        params: &GenerationParams,
    ) -> ChatRequest<'a> {
        ChatRequest {
            model: &self.model,
            messages,
            max_tokens: params.max_tokens,
            temperature: params.temperature,
            top_p: params.top_p,
            seed: params.seed,
            // the OpenAI API accepts at most four; the rest are enforced locally
            stop: params
                .stop
                .iter()
                .filter(|s| !s.is_empty())
                .take(4)
                .cloned()
                .collect(),
            stream: true,
            stream_options: StreamOptions {
                include_usage: true,
            },
        }
    }
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    max_tokens: usize,
    temperature: f64,
    top_p: f64,
    seed: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop: Vec<String>,
    stream: bool,
    stream_options: StreamOptions,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct ChunkEvent {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Delta,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: usize,
    #[serde(default)]
    completion_tokens: usize,
}

/// The error text of a non-2xx response: the OpenAI `{"error": {"message": ...}}` shape or
/// the first 300 bytes of whatever came back.
fn error_message(body: &str) -> String {
    #[derive(Deserialize)]
    struct Wrapper {
        error: Inner,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Inner {
        Object { message: String },
        Text(String),
    }
    match serde_json::from_str::<Wrapper>(body) {
        Ok(Wrapper {
            error: Inner::Object { message } | Inner::Text(message),
        }) => message,
        Err(_) => {
            let mut end = body.len().min(300);
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            body[..end].trim().to_string()
        }
    }
}

impl Generator for RemoteGenerator {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn generate(
        &self,
        messages: &[ChatMessage],
        params: &GenerationParams,
        cancel: &CancelToken,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let mut generation = Generation {
            text: String::new(),
            prompt_tokens: 0,
            completion_tokens: 0,
            stop_reason: StopReason::MaxTokens,
            prompt_truncated: false,
            cached_prompt_tokens: 0,
        };
        if params.max_tokens == 0 {
            return Ok(generation);
        }
        if cancel.is_cancelled() {
            generation.stop_reason = StopReason::Cancelled;
            return Ok(generation);
        }
        let mut request = self
            .client
            .post(&self.endpoint)
            .json(&self.request_body(messages, params));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().map_err(|e| {
            InferenceError::Remote(format!("{}: {}", self.endpoint, without_url(&e)))
        })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().unwrap_or_default();
            let hint = match status.as_u16() {
                401 | 403 => " (check the API key)",
                404 => " (check the base URL and the model name)",
                429 | 503 => " (the engine is overloaded)",
                _ => "",
            };
            let message = format!("{} answered {status}{hint}: {}", self.endpoint, error_message(&body));
            return Err(if rejects_the_request(status.as_u16()) {
                InferenceError::Rejected(message)
            } else {
                InferenceError::Remote(message)
            });
        }

        let mut stops = StopMatcher::new(&params.stop);
        let mut usage = None;
        let mut finish = None;
        let mut pieces = 0usize;
        let mut reader = BufReader::new(response);
        let mut line = String::new();
        loop {
            if cancel.is_cancelled() {
                // dropping the response closes the connection, which stops the server's work
                generation.stop_reason = StopReason::Cancelled;
                return Ok(generation);
            }
            line.clear();
            let n = reader.read_line(&mut line).map_err(|e| {
                InferenceError::Remote(format!("reading the stream from {}: {e}", self.endpoint))
            })?;
            if n == 0 {
                break;
            }
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue; // blank separators, comments (": keep-alive"), `event:` lines
            };
            let data = data.trim_start();
            if data == "[DONE]" {
                break;
            }
            let event: ChunkEvent = serde_json::from_str(data).map_err(|e| {
                InferenceError::Remote(format!("unexpected event from {}: {e}", self.endpoint))
            })?;
            if let Some(u) = event.usage {
                usage = Some(u);
            }
            for choice in event.choices {
                if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                    pieces += 1;
                    let out = stops.push(&text);
                    if !out.emit.is_empty() {
                        generation.text.push_str(&out.emit);
                        on_token(&out.emit);
                    }
                    if out.stopped {
                        generation.stop_reason = StopReason::StopSequence;
                        generation.completion_tokens = pieces;
                        return Ok(generation);
                    }
                }
                if choice.finish_reason.is_some() {
                    finish = choice.finish_reason;
                }
            }
        }
        let rest = stops.finish();
        if !rest.is_empty() {
            generation.text.push_str(&rest);
            on_token(&rest);
        }
        // "stop" covers both the model's end of turn and a stop string the server matched;
        // the API does not tell them apart
        generation.stop_reason = match finish.as_deref() {
            Some("length") => StopReason::MaxTokens,
            _ => StopReason::Eos,
        };
        match usage {
            Some(u) => {
                generation.prompt_tokens = u.prompt_tokens;
                generation.completion_tokens = u.completion_tokens;
            }
            // servers without usage reports: one streamed piece is about one token
            None => generation.completion_tokens = pieces,
        }
        Ok(generation)
    }
}

/// reqwest's error text without the URL (which is logged separately and may carry a key in
/// odd configurations).
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(url.as_str(), "").replace(" ()", "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// A client error that is this request's fault, not the engine's: 4xx except a wrong key
/// (401/403) or URL/model (404), which are the member's configuration, and a timeout (408)
/// or overload (429), which another engine may not have.
fn rejects_the_request(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 401 | 403 | 404 | 408 | 429)
}

#[cfg(test)]
mod tests;
