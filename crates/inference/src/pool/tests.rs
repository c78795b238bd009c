//! The pool against fake OpenAI-compatible engines on 127.0.0.1 (real HTTP: failover, health
//! checks, a stopped and restarted engine, slots, the external flag) and against in-process
//! generators (breaker, no replay after streamed text).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use super::*;

/// Poll `cond` until it holds; panic with `what` after `timeout`.
fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// What a fake engine counts.
#[derive(Default)]
struct FakeCounts {
    /// Chat requests received (every one, whatever its outcome).
    chats: AtomicUsize,
    /// `GET /models` requests.
    health: AtomicUsize,
    /// Chat requests being answered now, and the most at once.
    active: AtomicUsize,
    max_active: AtomicUsize,
    /// Connections accepted and not yet closed.
    open: AtomicUsize,
}

/// A fake OpenAI-compatible engine: `GET /v1/models` and streamed
/// `POST /v1/chat/completions`; it can be stopped (its port then refuses connections) and
/// started again on the same port.
struct FakeEngine {
    port: u16,
    reply: Vec<String>,
    pause: Duration,
    counts: Arc<FakeCounts>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FakeEngine {
    /// Streams `reply` piece by piece, `pause` after each.
    fn start(reply: &[&str], pause: Duration) -> FakeEngine {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut fake = FakeEngine {
            port: listener.local_addr().unwrap().port(),
            reply: reply.iter().map(|s| s.to_string()).collect(),
            pause,
            counts: Arc::default(),
            stop: Arc::default(),
            accept: None,
        };
        fake.run(listener);
        fake
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn chats(&self) -> usize {
        self.counts.chats.load(Ordering::SeqCst)
    }

    fn run(&mut self, listener: TcpListener) {
        self.stop = Arc::default();
        let stop = self.stop.clone();
        let counts = self.counts.clone();
        let reply = self.reply.clone();
        let pause = self.pause;
        self.accept = Some(thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return; // drops the listener: the port refuses connections
                }
                let Ok(stream) = stream else { continue };
                counts.open.fetch_add(1, Ordering::SeqCst);
                let counts = counts.clone();
                let reply = reply.clone();
                thread::spawn(move || {
                    fake_serve(stream, &reply, pause, &counts);
                    counts.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }));
    }

    /// Close the port and let the requests already accepted finish.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes the accept loop
        if let Some(h) = self.accept.take() {
            h.join().unwrap();
        }
        wait_until("accepted requests are answered", Duration::from_secs(10), || {
            self.counts.open.load(Ordering::SeqCst) == 0
        });
    }

    /// Listen on the same port again.
    fn restart(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        self.run(listener);
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop();
        }
    }
}

fn fake_serve(stream: TcpStream, reply: &[String], pause: Duration, counts: &FakeCounts) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut len = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut out = stream;
    if request_line.starts_with("GET ") && request_line.contains("/models") {
        counts.health.fetch_add(1, Ordering::SeqCst);
        let body = r#"{"object":"list","data":[{"id":"fake","object":"model"}]}"#;
        let _ = write!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    counts.chats.fetch_add(1, Ordering::SeqCst);
    let now = counts.active.fetch_add(1, Ordering::SeqCst) + 1;
    counts.max_active.fetch_max(now, Ordering::SeqCst);
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
    );
    for piece in reply {
        let event = serde_json::json!({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
        if out.write_all(format!("data: {event}\n\n").as_bytes()).is_err() {
            break;
        }
        let _ = out.flush();
        if !pause.is_zero() {
            thread::sleep(pause);
        }
    }
    // no longer active before the client can see the end (and give its slot back)
    counts.active.fetch_sub(1, Ordering::SeqCst);
    let _ = out.write_all(b"data: [DONE]\n\n");
    let _ = out.flush();
}

fn member(fake: &FakeEngine, external: bool, concurrency: usize) -> PoolMember {
    PoolMember::remote(&PoolMemberConfig {
        remote: RemoteConfig {
            base_url: fake.url(),
            model: "qwen2.5-7b-instruct".into(),
            api_key_env: None,
            external,
            context_len: 8192,
            timeout_secs: 5,
        },
        concurrency,
    })
    .unwrap()
}

fn fast_options() -> PoolOptions {
    PoolOptions {
        failure_threshold: 2,
        // long: in these tests only a health check brings a member back
        open_for: Duration::from_secs(120),
        slot_wait: Duration::from_secs(20),
        health_interval: Duration::from_millis(50),
        health_timeout: Duration::from_secs(1),
    }
}

fn ask(g: &dyn Generator) -> Result<Generation> {
    g.generate(
        &[ChatMessage::user("Wann hat das Bürgerbüro geöffnet?")],
        &GenerationParams::default(),
        &CancelToken::new(),
        &mut |_| {},
    )
}

fn state(pool: &EnginePool, i: usize) -> MemberState {
    pool.members()[i].state
}

#[test]
fn two_engines_share_the_load_and_one_stopped_mid_run_is_left_until_it_is_back() {
    let mut a = FakeEngine::start(&["Montag ", "bis ", "Freitag"], Duration::from_millis(2));
    let b = FakeEngine::start(&["Montag ", "bis ", "Freitag"], Duration::from_millis(2));
    let pool = Arc::new(
        EnginePool::new(vec![member(&a, false, 2), member(&b, false, 2)], fast_options()).unwrap(),
    );
    assert!(!pool.info().external);
    assert_eq!(pool.capacity(), 4);
    wait_until("the first health checks ran", Duration::from_secs(10), || {
        a.counts.health.load(Ordering::SeqCst) > 0 && b.counts.health.load(Ordering::SeqCst) > 0
    });

    // 30 requests from a client thread; the engine `a` stops while they run
    let done = Arc::new(AtomicUsize::new(0));
    let client = {
        let pool = pool.clone();
        let done = done.clone();
        thread::spawn(move || {
            let mut failures = Vec::new();
            for _ in 0..30 {
                match ask(pool.as_ref()) {
                    Ok(g) => assert_eq!(g.text, "Montag bis Freitag"),
                    Err(e) => failures.push(e.to_string()),
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            failures
        })
    };
    wait_until("10 requests were answered", Duration::from_secs(30), || {
        done.load(Ordering::SeqCst) >= 10
    });
    a.stop();
    let stopped_at = a.chats();
    let failures = client.join().unwrap();
    assert_eq!(failures, Vec::<String>::new(), "failover hides the stopped engine");
    assert!(stopped_at >= 3, "both engines served before the stop: a had {stopped_at}");
    assert!(b.chats() >= 3);
    assert_eq!(a.chats(), stopped_at, "nothing reached the stopped engine");

    // the health check (or the breaker) takes it out of the rotation ...
    wait_until("a is marked down", Duration::from_secs(10), || {
        matches!(state(&pool, 0), MemberState::Unhealthy | MemberState::Open)
    });
    let dispatched = pool.members()[0].dispatched;
    for _ in 0..10 {
        ask(pool.as_ref()).unwrap();
    }
    assert_eq!(pool.members()[0].dispatched, dispatched, "a down engine is not tried");
    assert_eq!(state(&pool, 1), MemberState::Up);

    // ... and brings it back when it answers again
    a.restart();
    wait_until("a is up again", Duration::from_secs(10), || {
        matches!(state(&pool, 0), MemberState::Up | MemberState::HalfOpen)
    });
    let mut n = 0;
    wait_until("a gets requests again", Duration::from_secs(30), || {
        ask(pool.as_ref()).unwrap();
        n += 1;
        a.chats() > stopped_at
    });
    assert!(n <= 4, "took {n} requests to reach a again");
    assert_eq!(state(&pool, 0), MemberState::Up);
}

#[test]
fn each_engine_runs_at_most_its_slots_at_once() {
    let pause = Duration::from_millis(15);
    let a = FakeEngine::start(&["a", "b", "c", "d", "e", "f"], pause);
    let b = FakeEngine::start(&["a", "b", "c", "d", "e", "f"], pause);
    let pool = Arc::new(
        EnginePool::new(vec![member(&a, false, 2), member(&b, false, 1)], fast_options()).unwrap(),
    );
    let clients: Vec<_> = (0..12)
        .map(|_| {
            let pool = pool.clone();
            thread::spawn(move || ask(pool.as_ref()).map(|g| g.text))
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap().unwrap(), "abcdef");
    }
    assert_eq!(a.chats() + b.chats(), 12);
    let (max_a, max_b) = (
        a.counts.max_active.load(Ordering::SeqCst),
        b.counts.max_active.load(Ordering::SeqCst),
    );
    assert!(max_a <= 2, "a ran {max_a} at once");
    assert!(max_b <= 1, "b ran {max_b} at once");
    assert!(pool.members().iter().all(|m| m.busy == 0));
}

#[test]
fn a_full_pool_answers_busy_after_the_slot_wait() {
    let slow = FakeEngine::start(&["x"; 40], Duration::from_millis(50));
    let options = PoolOptions {
        slot_wait: Duration::from_millis(50),
        ..fast_options()
    };
    let pool = Arc::new(EnginePool::new(vec![member(&slow, false, 1)], options).unwrap());
    let first = {
        let pool = pool.clone();
        thread::spawn(move || ask(pool.as_ref()))
    };
    wait_until("the first request runs", Duration::from_secs(10), || {
        slow.counts.active.load(Ordering::SeqCst) == 1
    });
    let err = ask(pool.as_ref()).unwrap_err();
    assert!(matches!(err, InferenceError::Busy), "{err}");
    assert_eq!(first.join().unwrap().unwrap().text, "x".repeat(40));
    assert_eq!(slow.chats(), 1);
}

#[test]
fn no_failover_to_an_external_engine_and_no_mixed_pool() {
    let mut internal = FakeEngine::start(&["intern"], Duration::ZERO);
    let external = FakeEngine::start(&["extern"], Duration::ZERO);

    // a pool mixing both is refused: its `info().external` could not tell the policy the truth
    let err = EnginePool::new(
        vec![member(&internal, false, 1), member(&external, true, 1)],
        fast_options(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("all be internal or all be external"), "{err}");
    assert!(err.contains(&external.url()), "{err}");
    let err = EnginePool::new(
        vec![member(&external, true, 1), member(&internal, false, 1)],
        fast_options(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(&format!("{} is external", external.url())), "{err}");

    // the internal pool with its engine down: the caller gets an error, the external engine
    // (up and willing) gets nothing
    let pool = EnginePool::new(
        vec![member(&internal, false, 1)],
        PoolOptions {
            health_interval: Duration::ZERO,
            ..fast_options()
        },
    )
    .unwrap();
    assert!(!pool.info().external);
    assert_eq!(ask(&pool).unwrap().text, "intern");
    internal.stop();
    for _ in 0..3 {
        let err = ask(&pool).unwrap_err().to_string();
        assert!(
            err.contains("remote engine") || err.contains("no engine of the pool"),
            "{err}"
        );
    }
    assert_eq!(state(&pool, 0), MemberState::Open);
    assert_eq!(external.chats(), 0, "the external engine got a request");
    assert_eq!(external.counts.health.load(Ordering::SeqCst), 0);

    // an external pool says so, which is what the policy checks
    let ext_pool = EnginePool::new(vec![member(&external, true, 1)], fast_options()).unwrap();
    assert!(ext_pool.info().external);
}

/// An in-process generator: fails while `fail` is set, optionally after one piece of text;
/// rejects every request while `reject` is set.
struct Stub {
    info: ModelInfo,
    fail: AtomicBool,
    /// Answer every request with a 400-style rejection.
    reject: AtomicBool,
    fail_after_text: bool,
    calls: AtomicUsize,
}

impl Stub {
    fn new(fail: bool, fail_after_text: bool) -> Arc<Stub> {
        Arc::new(Stub {
            info: ModelInfo {
                id: "stub".into(),
                external: false,
                context_len: 4096,
            },
            fail: AtomicBool::new(fail),
            reject: AtomicBool::new(false),
            fail_after_text,
            calls: AtomicUsize::new(0),
        })
    }
}

impl Generator for Stub {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn generate(
        &self,
        _: &[ChatMessage],
        _: &GenerationParams,
        _: &CancelToken,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail_after_text {
            on_token("Die ");
        }
        if self.reject.load(Ordering::SeqCst) {
            return Err(InferenceError::Rejected("stub: 400 Bad Request: context length exceeded".into()));
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(InferenceError::Remote("stub: 502 Bad Gateway".into()));
        }
        on_token("Antwort");
        Ok(Generation {
            text: "Antwort".into(),
            prompt_tokens: 1,
            completion_tokens: 1,
            stop_reason: StopReason::Eos,
            prompt_truncated: false,
            cached_prompt_tokens: 0,
        })
    }
}

fn stub_member(stub: &Arc<Stub>, name: &str) -> PoolMember {
    PoolMember {
        name: name.into(),
        generator: stub.clone(),
        concurrency: 1,
        health: None,
    }
}

#[test]
fn the_circuit_opens_after_failures_and_a_trial_closes_it() {
    let stub = Stub::new(true, false);
    let options = PoolOptions {
        failure_threshold: 2,
        open_for: Duration::from_millis(200),
        ..fast_options()
    };
    let pool = EnginePool::new(vec![stub_member(&stub, "s")], options).unwrap();
    assert!(ask(&pool).is_err());
    assert_eq!(state(&pool, 0), MemberState::Up, "one failure does not open it");
    assert!(ask(&pool).is_err());
    assert_eq!(state(&pool, 0), MemberState::Open);
    let err = ask(&pool).unwrap_err().to_string();
    assert!(err.contains("no engine of the pool is available"), "{err}");
    assert_eq!(stub.calls.load(Ordering::SeqCst), 2, "an open circuit sends nothing");

    wait_until("the circuit is half-open", Duration::from_secs(10), || {
        state(&pool, 0) == MemberState::HalfOpen
    });
    // a failed trial opens it again at once
    assert!(ask(&pool).is_err());
    assert_eq!(state(&pool, 0), MemberState::Open);
    wait_until("the circuit is half-open", Duration::from_secs(10), || {
        state(&pool, 0) == MemberState::HalfOpen
    });
    stub.fail.store(false, Ordering::SeqCst);
    assert_eq!(ask(&pool).unwrap().text, "Antwort");
    assert_eq!(state(&pool, 0), MemberState::Up);
    assert_eq!(pool.members()[0].consecutive_failures, 0);
}

#[test]
fn failover_before_text_but_no_replay_after_it() {
    // the first member fails before any text: the second answers
    let broken = Stub::new(true, false);
    let good = Stub::new(false, false);
    let pool = EnginePool::new(
        vec![stub_member(&broken, "broken"), stub_member(&good, "good")],
        fast_options(),
    )
    .unwrap();
    let mut text = String::new();
    let g = pool
        .generate(
            &[ChatMessage::user("?")],
            &GenerationParams::default(),
            &CancelToken::new(),
            &mut |t| text.push_str(t),
        )
        .unwrap();
    assert_eq!((g.text.as_str(), text.as_str()), ("Antwort", "Antwort"));
    assert_eq!(broken.calls.load(Ordering::SeqCst), 1);

    // the first member fails after streaming text: the error reaches the caller, and the
    // second member is not asked (its text would follow the first one's)
    let midway = Stub::new(true, true);
    let good = Stub::new(false, false);
    let pool = EnginePool::new(
        vec![stub_member(&midway, "midway"), stub_member(&good, "good")],
        fast_options(),
    )
    .unwrap();
    let mut text = String::new();
    let err = pool
        .generate(
            &[ChatMessage::user("?")],
            &GenerationParams::default(),
            &CancelToken::new(),
            &mut |t| text.push_str(t),
        )
        .unwrap_err();
    assert!(err.to_string().contains("502"), "{err}");
    assert_eq!(text, "Die ");
    assert_eq!(good.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn a_rejected_request_goes_to_the_next_engine_and_is_no_strike() {
    let picky = Stub::new(false, false);
    let other = Stub::new(false, false);
    let options = PoolOptions {
        failure_threshold: 2,
        ..fast_options()
    };
    let pool = EnginePool::new(
        vec![stub_member(&picky, "picky"), stub_member(&other, "other")],
        options,
    )
    .unwrap();
    // one real failure first: one strike of two
    picky.fail.store(true, Ordering::SeqCst);
    assert_eq!(ask(&pool).unwrap().text, "Antwort", "failed over to the other engine");
    assert_eq!(pool.members()[0].consecutive_failures, 1);
    // now it rejects every request: each goes on to the other engine, and the strike
    // count neither grows (no circuit opens) nor is cleared
    picky.fail.store(false, Ordering::SeqCst);
    picky.reject.store(true, Ordering::SeqCst);
    for _ in 0..4 {
        assert_eq!(ask(&pool).unwrap().text, "Antwort");
    }
    assert!(picky.calls.load(Ordering::SeqCst) >= 3, "the rejecting engine was asked");
    assert_eq!(state(&pool, 0), MemberState::Up);
    assert_eq!(pool.members()[0].consecutive_failures, 1);

    // when every engine rejects it, the caller gets the rejection and no circuit opens
    other.reject.store(true, Ordering::SeqCst);
    let (a, b) = (picky.calls.load(Ordering::SeqCst), other.calls.load(Ordering::SeqCst));
    for _ in 0..3 {
        let e = ask(&pool).unwrap_err();
        assert!(matches!(e, InferenceError::Rejected(_)), "{e}");
    }
    assert_eq!(picky.calls.load(Ordering::SeqCst) - a, 3, "each request asked each engine once");
    assert_eq!(other.calls.load(Ordering::SeqCst) - b, 3);
    assert_eq!((state(&pool, 0), state(&pool, 1)), (MemberState::Up, MemberState::Up));
    assert_eq!(pool.members()[1].consecutive_failures, 0);
}
