//! The OpenAI-compatible client against a fake chat-completions server on 127.0.0.1 that
//! replays scripted server-sent events and records what it was sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use super::*;

/// What the fake server answers to one request.
#[derive(Clone)]
struct Script {
    status: u16,
    /// SSE `data:` payloads for 200, or the body for errors.
    events: Vec<String>,
    /// Write a small pause between events (lets a test cancel mid-stream).
    pause_ms: u64,
}

/// Requests as the fake server saw them: (authorization header, JSON body).
type Seen = Arc<Mutex<Vec<(Option<String>, serde_json::Value)>>>;

/// A fake OpenAI-compatible server: answers every request with `script`.
fn fake_openai_server(script: Script) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let script = script.clone();
            let log = log.clone();
            thread::spawn(move || serve(stream, &script, &log));
        }
    });
    (format!("http://{addr}/v1"), seen)
}

fn serve(stream: TcpStream, script: &Script, log: &Seen) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut len = 0usize;
    let mut auth = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("authorization:") {
            auth = Some(l["authorization:".len()..].trim().to_string());
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    log.lock().unwrap().push((auth, json));

    let mut out = stream;
    if script.status != 200 {
        let body = script.events.join("");
        let _ = write!(
            out,
            "HTTP/1.1 {} Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            script.status,
            body.len()
        );
        return;
    }
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
    );
    for e in &script.events {
        if out.write_all(format!("data: {e}\n\n").as_bytes()).is_err() {
            return;
        }
        let _ = out.flush();
        if script.pause_ms > 0 {
            thread::sleep(std::time::Duration::from_millis(script.pause_ms));
        }
    }
    let _ = out.write_all(b"data: [DONE]\n\n");
}

fn piece(text: &str) -> String {
    serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
        .to_string()
}

fn finish(reason: &str) -> String {
    serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}).to_string()
}

fn usage(prompt: usize, completion: usize) -> String {
    serde_json::json!({"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion}})
        .to_string()
}

fn config(base_url: &str) -> RemoteConfig {
    RemoteConfig {
        base_url: base_url.to_string(),
        model: "qwen2.5-7b-instruct".into(),
        api_key_env: None,
        external: false,
        context_len: 8192,
        timeout_secs: 10,
    }
}

fn run(g: &RemoteGenerator, params: &GenerationParams) -> (Result<Generation>, Vec<String>) {
    let mut tokens = Vec::new();
    let res = g.generate(
        &[
            ChatMessage::system("Sie sind hilfreich."),
            ChatMessage::user("Hallo?"),
        ],
        params,
        &CancelToken::new(),
        &mut |t| tokens.push(t.to_string()),
    );
    (res, tokens)
}

#[test]
fn streams_pieces_and_sends_an_openai_request() {
    let (url, seen) = fake_openai_server(Script {
        status: 200,
        events: vec![
            piece("Guten "),
            piece("Tag"),
            piece("!"),
            finish("stop"),
            usage(17, 3),
        ],
        pause_ms: 0,
    });
    let g = RemoteGenerator::new(&config(&url))
        .unwrap()
        .with_api_key("sk-test");
    let params = GenerationParams {
        max_tokens: 64,
        stop: vec!["\n\n".into()],
        ..GenerationParams::default()
    };
    let (res, tokens) = run(&g, &params);
    let generation = res.unwrap();
    assert_eq!(tokens, ["Guten ", "Tag", "!"]);
    assert_eq!(generation.text, "Guten Tag!");
    assert_eq!(generation.stop_reason, StopReason::Eos);
    assert_eq!(
        (generation.prompt_tokens, generation.completion_tokens),
        (17, 3)
    );

    let seen = seen.lock().unwrap();
    let (auth, body) = &seen[0];
    assert_eq!(auth.as_deref(), Some("Bearer sk-test"));
    assert_eq!(body["model"], "qwen2.5-7b-instruct");
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["stop"][0], "\n\n");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["content"], "Hallo?");
}

#[test]
fn stop_strings_are_enforced_even_when_the_server_ignores_them() {
    let (url, _) = fake_openai_server(Script {
        status: 200,
        events: vec![
            piece("Antwort: 42"),
            piece("\nFr"),
            piece("age: mehr"),
            finish("stop"),
        ],
        pause_ms: 0,
    });
    let g = RemoteGenerator::new(&config(&url)).unwrap();
    let params = GenerationParams {
        stop: vec!["\nFrage:".into()],
        ..GenerationParams::default()
    };
    let (res, tokens) = run(&g, &params);
    let generation = res.unwrap();
    assert_eq!(generation.text, "Antwort: 42");
    assert_eq!(tokens.concat(), "Antwort: 42");
    assert_eq!(generation.stop_reason, StopReason::StopSequence);
}

#[test]
fn length_finish_and_missing_usage_are_reported() {
    let (url, _) = fake_openai_server(Script {
        status: 200,
        events: vec![piece("a"), piece("b"), finish("length")],
        pause_ms: 0,
    });
    let g = RemoteGenerator::new(&config(&url)).unwrap();
    let (res, _) = run(&g, &GenerationParams::default());
    let generation = res.unwrap();
    assert_eq!(generation.stop_reason, StopReason::MaxTokens);
    assert_eq!(generation.completion_tokens, 2);
}

#[test]
fn server_errors_carry_status_hint_and_message() {
    let (url, _) = fake_openai_server(Script {
        status: 401,
        events: vec![r#"{"error": {"message": "Incorrect API key provided"}}"#.into()],
        pause_ms: 0,
    });
    let g = RemoteGenerator::new(&config(&url)).unwrap();
    let err = run(&g, &GenerationParams::default())
        .0
        .unwrap_err()
        .to_string();
    assert!(err.contains("401"), "{err}");
    assert!(err.contains("check the API key"), "{err}");
    assert!(err.contains("Incorrect API key provided"), "{err}");
}

#[test]
fn a_request_error_is_a_rejection_and_an_engine_error_is_not() {
    let reject = |status: u16| {
        let (url, _) = fake_openai_server(Script {
            status,
            events: vec![r#"{"error": {"message": "maximum context length is 4096 tokens"}}"#.into()],
            pause_ms: 0,
        });
        let g = RemoteGenerator::new(&config(&url)).unwrap();
        run(&g, &GenerationParams::default()).0.unwrap_err()
    };
    for status in [400, 413, 422] {
        let e = reject(status);
        assert!(matches!(e, InferenceError::Rejected(_)), "{status}: {e}");
        assert!(e.to_string().contains("maximum context length"), "{e}");
    }
    // the member's configuration, its load or its failure: another engine may do better
    for status in [401, 403, 404, 408, 429, 500, 502, 503] {
        let e = reject(status);
        assert!(matches!(e, InferenceError::Remote(_)), "{status}: {e}");
    }
}

#[test]
fn unreachable_engine_and_bad_configuration_are_clear_errors() {
    // a port that was just free: nothing listens there
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let g = RemoteGenerator::new(&config(&format!("http://127.0.0.1:{port}/v1"))).unwrap();
    let err = run(&g, &GenerationParams::default())
        .0
        .unwrap_err()
        .to_string();
    assert!(err.contains("/v1/chat/completions"), "{err}");

    let err = RemoteGenerator::new(&config("ftp://example.invalid/v1"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("http://"), "{err}");
    let mut c = config("http://127.0.0.1:1/v1");
    c.api_key_env = Some("LOTSE_TEST_KEY_THAT_IS_NEVER_SET".into());
    let err = RemoteGenerator::new(&c).unwrap_err().to_string();
    assert!(err.contains("LOTSE_TEST_KEY_THAT_IS_NEVER_SET"), "{err}");
}

#[test]
fn cancelling_stops_the_stream() {
    let events: Vec<String> = (0..50).map(|i| piece(&format!("w{i} "))).collect();
    let (url, _) = fake_openai_server(Script {
        status: 200,
        events,
        pause_ms: 20,
    });
    let g = RemoteGenerator::new(&config(&url)).unwrap();
    let cancel = CancelToken::new();
    let mut n = 0;
    let generation = g
        .generate(
            &[ChatMessage::user("Erzählen Sie etwas.")],
            &GenerationParams::default(),
            &cancel,
            &mut |_| {
                n += 1;
                if n == 3 {
                    cancel.cancel();
                }
            },
        )
        .unwrap();
    assert_eq!(generation.stop_reason, StopReason::Cancelled);
    assert_eq!(n, 3);
}

#[test]
fn the_external_flag_is_reported() {
    let mut c = config("https://api.example.invalid/v1");
    c.external = true;
    assert!(RemoteGenerator::new(&c).unwrap().info().external);
    let c: RemoteConfig = toml::from_str(
        "base_url = \"http://127.0.0.1:11434/v1\"\nmodel = \"qwen2.5:7b\"\nexternal = false\n",
    )
    .unwrap();
    assert_eq!(
        (c.context_len, c.timeout_secs, c.api_key_env),
        (8192, 120, None)
    );
}
