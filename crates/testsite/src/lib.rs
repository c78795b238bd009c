//! Test-only HTTP/1.1 server for the fixture-site contract (`site.json`), std only.
//!
//! Mirrors the reference server `/work/shared/fixtures/serve_site.py`:
//!
//! - `/a/b/` serves `a/b/index.html`; files are read from disk on every request (so edits
//!   between crawls show up), with `ETag` (`"` + first 16 hex chars of the SHA-256 of the
//!   served bytes + `"`; the Python server uses SHA-1) and `Last-Modified` (file mtime);
//!   `If-None-Match` equal to the ETag or `If-Modified-Since` equal to the `Last-Modified`
//!   string give `304` with an empty body;
//! - the site's `base` inside `.html`, `.xml` and `.txt` files is rewritten to this server's
//!   origin (`http://127.0.0.1:PORT`);
//! - `text/html` is sent with the charset from `site.json`;
//! - `redirects` (Location, no body), `errors` (`<h1>Fehler N</h1>`, 503 with
//!   `Retry-After: 120`), the endless `calendar` (`?monat=YYYY-MM` links the next month),
//!   `/suche` (an empty result page);
//! - `404` for missing files, for paths outside the site and for `site.json` itself;
//! - `HEAD` like `GET` without a body; other methods get `501`; garbage gets `400`.
//!
//! Beyond the Python server: HTTP/1.1 keep-alive (and pipelining), canned [`Route`]s checked
//! before everything else (e.g. a `429` served once, or a 50 MB body of zeros streamed without
//! allocating it), and an in-memory log of every request ([`SiteServer::requests`]).
//!
//! ```no_run
//! let srv = lotse_testsite::SiteServer::start("/work/shared/fixtures/sites/bad-boll").unwrap();
//! println!("{}", srv.url("/ortsrecht/"));
//! ```

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// Longest request line accepted (the Python server uses the same limit); longer gives 414.
const MAX_REQUEST_LINE: usize = 65_536;
/// Largest request head (request line + headers) accepted; larger gives 431.
const MAX_HEAD: usize = 65_536 + 16_384;
/// Most header lines accepted (as in Python's `http.client`); more gives 431.
const MAX_HEADERS: usize = 100;
/// Largest request body that is read and discarded to keep a connection usable.
const MAX_DISCARD_BODY: u64 = 16 * 1024 * 1024;
/// Idle time after which a kept-alive connection is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A client that stops reading for this long gets its connection dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Piece size for streamed [`Body::Zeros`] bodies.
const ZERO_CHUNK: usize = 64 * 1024;
static ZEROS: [u8; ZERO_CHUNK] = [0u8; ZERO_CHUNK];

/// Content types by file extension, exactly as in `serve_site.py` (case-sensitive).
const TYPES: &[(&str, &str)] = &[
    ("html", "text/html"),
    ("pdf", "application/pdf"),
    ("xml", "application/xml"),
    ("txt", "text/plain"),
    ("css", "text/css"),
    ("js", "text/javascript"),
    ("svg", "image/svg+xml"),
];

/// One request as the server saw it, recorded before its response is written (so a client
/// that has read a response always finds the request in [`SiteServer::requests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Request method as sent (`GET`, `HEAD`, ...); empty for unparseable requests.
    pub method: String,
    /// Request target as sent: path plus query (`/kalender/?monat=2026-01`).
    pub path: String,
    /// Response status.
    pub status: u16,
    /// `User-Agent` header, empty when absent.
    pub user_agent: String,
    /// The request had `If-None-Match` or `If-Modified-Since`.
    pub conditional: bool,
    /// Body bytes in the response (its `Content-Length`; 0 for `HEAD`).
    pub body_bytes: u64,
}

/// Options for [`SiteServer::start_with`].
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Exact path (without query) -> canned response, checked before everything else
    /// (redirects, errors, calendar, files). The first matching route that still has uses
    /// left is served.
    pub routes: Vec<(String, Route)>,
    /// Append one `METHOD PATH STATUS USER-AGENT` line per request (`-` for a missing
    /// user agent), like `serve_site.py --log`.
    pub log_file: Option<PathBuf>,
    /// HTML put before `</body>` of every HTML page, as a CMS template adds a footer snippet
    /// (the widget's script tag in the browser tests).
    pub body_end: Option<String>,
}

/// A canned response (see [`ServerOptions::routes`]).
///
/// `Content-Length` is always computed by the server (a `Content-Length` or
/// `Transfer-Encoding` in `headers` is dropped). Without a `Content-Type` in `headers`,
/// `text/html; charset=<site charset>` is sent.
#[derive(Debug, Clone)]
pub struct Route {
    /// Response status.
    pub status: u16,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Body,
    /// Serve this route only the first N times, then fall through to normal handling.
    /// `None`: always.
    pub times: Option<u32>,
}

impl Route {
    /// A route with this status, an empty body, no extra headers, served always.
    pub fn new(status: u16) -> Route {
        Route {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
            times: None,
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Route {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Body) -> Route {
        self.body = body;
        self
    }

    /// Serve only the first `n` times.
    pub fn times(mut self, n: u32) -> Route {
        self.times = Some(n);
        self
    }
}

/// Body of a canned [`Route`].
#[derive(Clone)]
pub enum Body {
    /// These bytes.
    Bytes(Vec<u8>),
    /// This many zero bytes, streamed in 64 KiB pieces without allocating them (e.g. 50 MB
    /// for size-limit tests). A client hanging up mid-body is not an error.
    Zeros(u64),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::Zeros(n) => write!(f, "Zeros({n})"),
        }
    }
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::Zeros(n) => *n,
        }
    }
}

/// A running fixture-site server on 127.0.0.1. Dropping it stops the server and closes
/// all of its connections (including idle kept-alive ones).
pub struct SiteServer {
    inner: Arc<Inner>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SiteServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteServer")
            .field("origin", &self.inner.origin)
            .field("root", &self.inner.root)
            .finish()
    }
}

impl SiteServer {
    /// Serve `site_dir` (which contains `site.json`) on 127.0.0.1 on a free port.
    pub fn start(site_dir: impl AsRef<Path>) -> io::Result<SiteServer> {
        SiteServer::start_with(site_dir, ServerOptions::default())
    }

    /// Serve `site_dir` (which contains `site.json`) with the given options.
    pub fn start_with(site_dir: impl AsRef<Path>, opts: ServerOptions) -> io::Result<SiteServer> {
        let root = std::fs::canonicalize(site_dir.as_ref())?;
        let site_json = root.join("site.json");
        let text = std::fs::read(&site_json)?;
        let site = SiteConfig::parse(&text)?;
        let listener = TcpListener::bind(("127.0.0.1", opts.port))?;
        let addr = listener.local_addr()?;
        let origin = format!("http://127.0.0.1:{}", addr.port());
        let route_hits = vec![0u32; opts.routes.len()];
        let inner = Arc::new(Inner {
            root,
            site_json,
            site,
            origin,
            routes: opts.routes,
            route_hits: Mutex::new(route_hits),
            records: Mutex::new(Vec::new()),
            log_file: opts.log_file,
            body_end: opts.body_end,
            log_lock: Mutex::new(()),
            shutdown: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
        });
        let accept_inner = Arc::clone(&inner);
        let accept = std::thread::Builder::new()
            .name(format!("testsite-accept-{}", addr.port()))
            .spawn(move || accept_loop(listener, accept_inner))?;
        Ok(SiteServer {
            inner,
            addr,
            accept: Some(accept),
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn origin(&self) -> String {
        self.inner.origin.clone()
    }

    /// The port served on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `origin() + path`; `path` should start with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.inner.origin, path)
    }

    /// The served directory (canonicalized).
    pub fn site_dir(&self) -> &Path {
        &self.inner.root
    }

    /// Every request so far, in the order their responses were started.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.inner.records).clone()
    }

    /// Forgets the recorded requests (route use counts are kept).
    pub fn clear_requests(&self) {
        lock(&self.inner.records).clear();
    }
}

impl Drop for SiteServer {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        // Close every open connection: idle kept-alive ones and streams in progress.
        for (_, s) in lock(&self.inner.conns).drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the accept loop.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).is_ok();
        if let Some(h) = self.accept.take()
            && woke
        {
            let _ = h.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Inner {
    root: PathBuf,
    site_json: PathBuf,
    site: SiteConfig,
    origin: String,
    routes: Vec<(String, Route)>,
    route_hits: Mutex<Vec<u32>>,
    records: Mutex<Vec<RequestRecord>>,
    log_file: Option<PathBuf>,
    body_end: Option<String>,
    log_lock: Mutex<()>,
    shutdown: AtomicBool,
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
}

/// What `site.json` says (parsed leniently, like the Python server's `.get`s).
#[derive(Debug)]
struct SiteConfig {
    charset: String,
    base: Option<String>,
    redirects: HashMap<String, (u16, String)>,
    errors: HashMap<String, u16>,
    /// (path, query parameter)
    calendar: Option<(String, String)>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn json_status(v: Option<&serde_json::Value>, default: Option<u16>, what: &str) -> io::Result<u16> {
    match v {
        None | Some(serde_json::Value::Null) => {
            default.ok_or_else(|| invalid(format!("site.json: {what} has no status")))
        }
        Some(v) => v
            .as_u64()
            .filter(|s| (100..=999).contains(s))
            .map(|s| s as u16)
            .ok_or_else(|| invalid(format!("site.json: bad status in {what}: {v}"))),
    }
}

impl SiteConfig {
    fn parse(text: &[u8]) -> io::Result<SiteConfig> {
        let v: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| invalid(format!("site.json: {e}")))?;
        let str_field =
            |o: &serde_json::Value, k: &str| o.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let charset = str_field(&v, "charset").unwrap_or_else(|| "utf-8".to_owned());
        let base = str_field(&v, "base").filter(|b| !b.is_empty());
        let mut redirects = HashMap::new();
        for r in v
            .get("redirects")
            .and_then(|x| x.as_array())
            .into_iter()
            .flatten()
        {
            let (Some(from), Some(to)) = (str_field(r, "from"), str_field(r, "to")) else {
                return Err(invalid(format!("site.json: bad redirect {r}")));
            };
            let status = json_status(r.get("status"), Some(301), "redirect")?;
            redirects.insert(from, (status, to));
        }
        let mut errors = HashMap::new();
        for e in v
            .get("errors")
            .and_then(|x| x.as_array())
            .into_iter()
            .flatten()
        {
            let Some(path) = str_field(e, "path") else {
                return Err(invalid(format!("site.json: bad error entry {e}")));
            };
            errors.insert(path, json_status(e.get("status"), None, "error")?);
        }
        let calendar = v.get("calendar").and_then(|c| {
            let path = str_field(c, "path")?;
            let param = str_field(c, "param").unwrap_or_else(|| "monat".to_owned());
            Some((path, param))
        });
        Ok(SiteConfig {
            charset,
            base,
            redirects,
            errors,
            calendar,
        })
    }
}

fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    for conn in listener.incoming() {
        if inner.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(_) => {
                // e.g. too many open files: back off instead of spinning.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let id = inner.next_conn.fetch_add(1, Ordering::Relaxed);
        {
            let mut conns = lock(&inner.conns);
            // Checked under the lock Drop takes after setting the flag: a connection
            // registered after Drop's sweep sees the flag and is not served.
            if inner.shutdown.load(Ordering::SeqCst) {
                break;
            }
            match stream.try_clone() {
                Ok(c) => {
                    conns.insert(id, c);
                }
                Err(_) => continue,
            }
        }
        let conn_inner = Arc::clone(&inner);
        let spawned = std::thread::Builder::new()
            .name("testsite-conn".to_owned())
            .spawn(move || {
                serve_connection(&conn_inner, stream);
                lock(&conn_inner.conns).remove(&id);
            });
        if spawned.is_err()
            && let Some(s) = lock(&inner.conns).remove(&id)
        {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Request parsing
// ---------------------------------------------------------------------------------------

struct Request {
    method: String,
    /// Request target as sent (latin-1 decoded), after Python's `//` collapsing.
    target: String,
    headers: Vec<(String, String)>,
    version: (u32, u32),
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// A request that cannot be answered normally; the connection is closed after the error.
struct BadRequest {
    status: u16,
    method: String,
    target: String,
    user_agent: String,
}

enum ReadOutcome {
    Request(Request, usize),
    Bad(BadRequest),
    /// Client closed, timed out, or the server is shutting down.
    Closed,
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// Strips one trailing `\n` and an optional `\r` before it.
fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Parses `METHOD TARGET HTTP/x.y`; on failure the status to answer with.
/// A parsed request line: method, target, version.
type RequestLine = (String, String, (u32, u32));
/// A rejected request line: status to answer with, method and target as far as known.
type RejectedLine = (u16, String, String);

fn parse_request_line(line: &str) -> Result<RequestLine, RejectedLine> {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let method = words.first().copied().unwrap_or("").to_owned();
    let target = words.get(1).copied().unwrap_or("").to_owned();
    if words.len() != 3 {
        return Err((400, method, target));
    }
    let Some(ver) = words[2].strip_prefix("HTTP/") else {
        return Err((400, method, target));
    };
    let parse_num = |s: &str| -> Option<u32> {
        if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let version = match ver.split_once('.') {
        Some((a, b)) => match (parse_num(a), parse_num(b)) {
            (Some(a), Some(b)) => (a, b),
            _ => return Err((400, method, target)),
        },
        None => return Err((400, method, target)),
    };
    if version >= (2, 0) {
        return Err((505, method, target));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_graphic()) || target.is_empty() {
        return Err((400, method, target));
    }
    Ok((method, target, version))
}

/// Reads more bytes into `buf`. `false` on EOF, timeout, error or shutdown.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, inner: &Inner) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if inner.shutdown.load(Ordering::SeqCst) {
            return false;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// Reads one request head from the connection (`buf` holds bytes already received).
/// On success the head has been removed from `buf`; the returned number is the
/// request body length announced by `Content-Length` (not yet consumed).
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>, inner: &Inner) -> ReadOutcome {
    // Request line (blank lines before it are ignored, RFC 9112 section 2.2).
    let (method, target, version, line_end) = loop {
        while buf.starts_with(b"\r\n") || buf.starts_with(b"\n") {
            let n = if buf[0] == b'\r' { 2 } else { 1 };
            buf.drain(..n);
        }
        if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line = latin1(strip_eol(&buf[..=pos]));
            match parse_request_line(&line) {
                Ok((m, t, v)) => break (m, t, v, pos + 1),
                Err((status, method, target)) => {
                    return ReadOutcome::Bad(BadRequest {
                        status,
                        method,
                        target,
                        user_agent: String::new(),
                    });
                }
            }
        }
        if buf.len() > MAX_REQUEST_LINE {
            return ReadOutcome::Bad(BadRequest {
                status: 414,
                method: String::new(),
                target: String::new(),
                user_agent: String::new(),
            });
        }
        if !fill(stream, buf, inner) {
            return ReadOutcome::Closed;
        }
    };
    // Python's http.server collapses a leading `//` (open-redirect protection).
    let target = if target.starts_with("//") {
        format!("/{}", target.trim_start_matches('/'))
    } else {
        target
    };

    // Headers, up to the blank line.
    let mut pos = line_end;
    let mut raw_lines: Vec<(usize, usize)> = Vec::new();
    let head_end = loop {
        match buf[pos..].iter().position(|&b| b == b'\n') {
            Some(off) => {
                let end = pos + off + 1;
                if strip_eol(&buf[pos..end]).is_empty() {
                    break end;
                }
                raw_lines.push((pos, end));
                pos = end;
            }
            None => {
                if buf.len() > MAX_HEAD {
                    return ReadOutcome::Bad(BadRequest {
                        status: 431,
                        method,
                        target,
                        user_agent: String::new(),
                    });
                }
                if !fill(stream, buf, inner) {
                    return ReadOutcome::Closed;
                }
            }
        }
    };
    if raw_lines.len() > MAX_HEADERS {
        return ReadOutcome::Bad(BadRequest {
            status: 431,
            method,
            target,
            user_agent: String::new(),
        });
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut bad = false;
    for (s, e) in raw_lines {
        let line = latin1(strip_eol(&buf[s..e]));
        if line.starts_with(' ') || line.starts_with('\t') {
            // obsolete line folding: continue the previous header
            match headers.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                None => bad = true,
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value))
                if !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':') =>
            {
                headers.push((name.to_owned(), value.trim().to_owned()));
            }
            _ => bad = true,
        }
    }
    buf.drain(..head_end);
    let user_agent = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if bad {
        return ReadOutcome::Bad(BadRequest {
            status: 400,
            method,
            target,
            user_agent,
        });
    }
    let req = Request {
        method,
        target,
        headers,
        version,
    };
    let mut body_len = 0usize;
    let cls: Vec<&str> = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.as_str())
        .collect();
    if let Some(first) = cls.first() {
        let parsed = first
            .parse::<u64>()
            .ok()
            .filter(|_| first.bytes().all(|b| b.is_ascii_digit()));
        match parsed {
            Some(n) if cls.iter().all(|c| c == first) => {
                body_len = usize::try_from(n).unwrap_or(usize::MAX);
            }
            _ => {
                return ReadOutcome::Bad(BadRequest {
                    status: 400,
                    method: req.method,
                    target: req.target,
                    user_agent,
                });
            }
        }
    }
    ReadOutcome::Request(req, body_len)
}

/// Reads and drops `n` body bytes. `false` if that was not possible.
fn discard_body(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize, inner: &Inner) -> bool {
    if n as u64 > MAX_DISCARD_BODY {
        return false;
    }
    let mut left = n;
    loop {
        let take = left.min(buf.len());
        buf.drain(..take);
        left -= take;
        if left == 0 {
            return true;
        }
        if !fill(stream, buf, inner) {
            return false;
        }
    }
}

fn serve_connection(inner: &Inner, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut buf: Vec<u8> = Vec::new();
    loop {
        if inner.shutdown.load(Ordering::SeqCst) {
            break;
        }
        match read_request(&mut stream, &mut buf, inner) {
            ReadOutcome::Closed => break,
            ReadOutcome::Bad(bad) => {
                let resp = Response::error(bad.status, &inner.site.charset);
                inner.record(
                    RequestRecord {
                        method: bad.method.clone(),
                        path: bad.target.clone(),
                        status: bad.status,
                        user_agent: bad.user_agent.clone(),
                        conditional: false,
                        body_bytes: resp.body.len(),
                    },
                    false, // like the Python server, protocol errors are not written to the log file
                );
                let _ = write_response(&mut stream, &resp, false, true);
                break;
            }
            ReadOutcome::Request(req, body_len) => {
                let is_head = req.method == "HEAD";
                let supported = is_head || req.method == "GET";
                let mut close = !supported || req.header("transfer-encoding").is_some();
                if req.version >= (1, 1) {
                    close |= req.has_token("connection", "close");
                } else {
                    close |= !req.has_token("connection", "keep-alive");
                }
                if !close && body_len > 0 && !discard_body(&mut stream, &mut buf, body_len, inner) {
                    close = true;
                }
                let resp = if supported {
                    inner.handle(&req)
                } else {
                    Response::error(501, &inner.site.charset)
                };
                let conditional = req.header("if-none-match").is_some()
                    || req.header("if-modified-since").is_some();
                inner.record(
                    RequestRecord {
                        method: req.method.clone(),
                        path: req.target.clone(),
                        status: resp.status,
                        user_agent: req.header("user-agent").unwrap_or("").to_owned(),
                        conditional,
                        body_bytes: if is_head { 0 } else { resp.body.len() },
                    },
                    true,
                );
                if write_response(&mut stream, &resp, is_head, close).is_err() || close {
                    break;
                }
            }
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

struct Response {
    status: u16,
    /// Content-Type, if any (already with charset).
    content_type: Option<String>,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Response {
    fn new(status: u16, body: Vec<u8>, content_type: Option<&str>, charset: &str) -> Response {
        let content_type = content_type.map(|ct| {
            if ct.starts_with("text/html") {
                format!("text/html; charset={charset}")
            } else {
                ct.to_owned()
            }
        });
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: Body::Bytes(body),
        }
    }

    fn with(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Protocol-level error (400, 414, 431, 501, 505), like Python's `send_error`.
    fn error(status: u16, charset: &str) -> Response {
        let reason = reason(status);
        let body = format!(
            "<!DOCTYPE HTML>\n<html lang=\"en\">\n<head><title>Error response</title></head>\n<body>\n<h1>Error response</h1>\n<p>Error code: {status}</p>\n<p>Message: {reason}.</p>\n</body>\n</html>\n"
        );
        Response::new(status, body.into_bytes(), Some("text/html"), charset)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        418 => "I'm a Teapot",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

fn clean_header_value(v: &str) -> String {
    v.chars().filter(|&c| c != '\r' && c != '\n').collect()
}

/// Writes status line, headers and (unless `head_only`) the body.
fn write_response(
    stream: &mut TcpStream,
    resp: &Response,
    head_only: bool,
    close: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nServer: fixture/1\r\nDate: {}\r\n",
        resp.status,
        reason(resp.status),
        httpdate::fmt_http_date(SystemTime::now())
    );
    if let Some(ct) = &resp.content_type {
        head.push_str(&format!("Content-Type: {}\r\n", clean_header_value(ct)));
    }
    for (k, v) in &resp.headers {
        let k = clean_header_value(k);
        head.push_str(&format!(
            "{}: {}\r\n",
            k.replace(':', ""),
            clean_header_value(v)
        ));
    }
    head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    if close {
        head.push_str("Connection: close\r\n");
    } else {
        head.push_str("Connection: keep-alive\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if head_only {
        stream.write_all(&out)?;
        return stream.flush();
    }
    match &resp.body {
        Body::Bytes(b) => {
            // One write for head and body: no Nagle / delayed-ACK stalls.
            out.extend_from_slice(b);
            stream.write_all(&out)?;
        }
        Body::Zeros(n) => {
            stream.write_all(&out)?;
            let mut left = *n;
            while left > 0 {
                let k = left.min(ZERO_CHUNK as u64) as usize;
                stream.write_all(&ZEROS[..k])?;
                left -= k as u64;
            }
        }
    }
    stream.flush()
}

impl Inner {
    fn record(&self, rec: RequestRecord, to_log_file: bool) {
        if to_log_file && let Some(path) = &self.log_file {
            let ua = if rec.user_agent.is_empty() {
                "-"
            } else {
                rec.user_agent.as_str()
            };
            let line = format!("{} {} {} {}\n", rec.method, rec.path, rec.status, ua);
            let _guard = lock(&self.log_lock);
            if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
                let _ = f.write_all(line.as_bytes());
            }
        }
        lock(&self.records).push(rec);
    }

    /// The first route for `path` with uses left (and counts the use).
    fn take_route(&self, path: &str) -> Option<&Route> {
        let mut hits = lock(&self.route_hits);
        for (i, (p, route)) in self.routes.iter().enumerate() {
            if p != path {
                continue;
            }
            if let Some(max) = route.times
                && hits[i] >= max
            {
                continue;
            }
            hits[i] = hits[i].saturating_add(1);
            return Some(route);
        }
        None
    }

    fn html(&self, status: u16, body: Vec<u8>) -> Response {
        Response::new(status, body, Some("text/html"), &self.site.charset)
    }

    /// The response for a GET (HEAD sends the same head without the body).
    fn handle(&self, req: &Request) -> Response {
        let (path, query) = split_target(&req.target);
        let site = &self.site;
        let charset = site.charset.as_str();

        if let Some(route) = self.take_route(path) {
            let has_ct = route
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
            let headers = route
                .headers
                .iter()
                .filter(|(k, _)| {
                    !k.eq_ignore_ascii_case("content-type")
                        && !k.eq_ignore_ascii_case("content-length")
                        && !k.eq_ignore_ascii_case("transfer-encoding")
                        && !k.eq_ignore_ascii_case("connection")
                })
                .cloned()
                .collect();
            let content_type = if has_ct {
                route
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                    .map(|(_, v)| v.clone())
            } else {
                Some(format!("text/html; charset={charset}"))
            };
            return Response {
                status: route.status,
                content_type,
                headers,
                body: route.body.clone(),
            };
        }
        if let Some((status, to)) = site.redirects.get(path) {
            return Response::new(*status, Vec::new(), None, charset).with("Location", to.clone());
        }
        if let Some(&status) = site.errors.get(path) {
            let resp = self.html(status, format!("<h1>Fehler {status}</h1>").into_bytes());
            return if status == 503 {
                resp.with("Retry-After", "120")
            } else {
                resp
            };
        }
        if let Some((cal_path, param)) = &site.calendar
            && path == cal_path
        {
            let q = query_param(query, param).unwrap_or_else(|| "2026-01".to_owned());
            let Some((y, m)) = parse_month(&q) else {
                return self.html(400, b"bad month".to_vec());
            };
            let (ny, nm) = if m == 12 {
                (y.checked_add(1), Some(1))
            } else {
                (Some(y), m.checked_add(1))
            };
            let (Some(ny), Some(nm)) = (ny, nm) else {
                return self.html(400, b"bad month".to_vec());
            };
            let body = format!(
                "<!DOCTYPE html><html lang=de><head><meta charset={charset}><title>Veranstaltungen {y}-{m:02}</title></head><body>\
                 <main><h1>Veranstaltungen im {m:02}/{y}</h1><p>Keine Veranstaltungen eingetragen.</p>\
                 <a href=\"?{param}={ny}-{nm:02}\">Nächster Monat</a></main></body></html>"
            );
            return self.html(200, encode(&body, charset));
        }
        if path == "/suche" {
            let q = html_escape(&query_param(query, "q").unwrap_or_default());
            let body =
                format!("<html><body><h1>Suche: {q}</h1><p>Keine Treffer.</p></body></html>");
            return self.html(200, encode(&body, charset));
        }
        self.serve_file(req, path)
    }

    fn not_found(&self) -> Response {
        self.html(404, b"<h1>Seite nicht gefunden</h1>".to_vec())
    }

    fn serve_file(&self, req: &Request, path: &str) -> Response {
        let decoded = percent_decode(path);
        let mut rel: &[u8] = &decoded;
        while let Some(r) = rel.strip_prefix(b"/") {
            rel = r;
        }
        let mut rel = rel.to_vec();
        if rel.is_empty() || rel.ends_with(b"/") {
            rel.extend_from_slice(b"index.html");
        }
        if rel.contains(&0) {
            return self.not_found();
        }
        let mut candidate = self.root.clone();
        for seg in rel.split(|&b| b == b'/') {
            if seg.is_empty() {
                continue;
            }
            candidate.push(os_str(seg));
        }
        // Resolves `..` and symlinks like Python's realpath; then it must stay inside.
        let Ok(full) = std::fs::canonicalize(&candidate) else {
            return self.not_found();
        };
        if !full.starts_with(&self.root) || full == self.root || full == self.site_json {
            return self.not_found();
        }
        let Ok(meta) = std::fs::metadata(&full) else {
            return self.not_found();
        };
        if !meta.is_file() {
            return self.not_found();
        }
        let Ok(mut data) = std::fs::read(&full) else {
            return self.not_found();
        };
        let ext = full.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "html" | "xml" | "txt")
            && let Some(base) = &self.site.base
        {
            data = replace_bytes(&data, base.as_bytes(), self.origin.as_bytes());
        }
        if ext == "html"
            && let Some(snippet) = &self.body_end
        {
            data = insert_before_body_end(data, snippet.as_bytes());
        }
        let digest = Sha256::digest(&data);
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let etag = format!("\"{hex}\"");
        let mtime = meta
            .modified()
            .map(httpdate::fmt_http_date)
            .unwrap_or_default();
        let inm_match = req
            .header("if-none-match")
            .is_some_and(|v| v == etag || v.split(',').any(|t| t.trim() == etag));
        let ims_match = req
            .header("if-modified-since")
            .is_some_and(|v| !v.is_empty() && v == mtime);
        if inm_match || ims_match {
            return Response::new(304, Vec::new(), None, &self.site.charset)
                .with("ETag", etag)
                .with("Last-Modified", mtime);
        }
        let ctype = TYPES
            .iter()
            .find(|(e, _)| *e == ext)
            .map(|(_, t)| *t)
            .unwrap_or("application/octet-stream");
        Response::new(200, data, Some(ctype), &self.site.charset)
            .with("ETag", etag)
            .with("Last-Modified", mtime)
    }
}

/// `snippet` before the last `</body>` (any case), or at the end when there is none.
fn insert_before_body_end(mut data: Vec<u8>, snippet: &[u8]) -> Vec<u8> {
    let at = data
        .windows(7)
        .rposition(|w| w.eq_ignore_ascii_case(b"</body>"))
        .unwrap_or(data.len());
    data.splice(at..at, snippet.iter().copied());
    data
}

#[cfg(unix)]
fn os_str(bytes: &[u8]) -> &std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes)
}

#[cfg(not(unix))]
fn os_str(bytes: &[u8]) -> std::ffi::OsString {
    String::from_utf8_lossy(bytes).into_owned().into()
}

// ---------------------------------------------------------------------------------------
// Helpers (URL splitting and decoding, query parsing, escaping, charsets)
// ---------------------------------------------------------------------------------------

/// Splits a request target into (path, query) like Python's `urlsplit` (the fragment is
/// dropped; an absolute `http(s)://host` prefix is removed).
fn split_target(target: &str) -> (&str, &str) {
    let mut t = target;
    for scheme in ["http://", "https://"] {
        if t.len() >= scheme.len() && t[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &t[scheme.len()..];
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            t = &rest[end..];
            break;
        }
    }
    let t = t.split('#').next().unwrap_or("");
    match t.split_once('?') {
        Some((p, q)) => (p, q),
        None => (t, ""),
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes to bytes (characters of the latin-1 decoded target map back to their
/// bytes); invalid `%` sequences are kept as they are.
fn percent_decode(s: &str) -> Vec<u8> {
    let raw: Vec<u8> = s
        .chars()
        .map(|c| {
            if (c as u32) < 256 {
                c as u32 as u8
            } else {
                b'?'
            }
        })
        .collect();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && i + 2 < raw.len()
            && let (Some(h), Some(l)) = (hex_val(raw[i + 1]), hex_val(raw[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

/// Python's `urllib.parse.unquote` (UTF-8, errors replaced) after `+` -> space.
fn unquote_plus(s: &str) -> String {
    let s = s.replace('+', " ");
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut pending: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '%'
            && i + 2 < chars.len()
            && chars[i + 1].is_ascii()
            && chars[i + 2].is_ascii()
            && let (Some(h), Some(l)) = (hex_val(chars[i + 1] as u8), hex_val(chars[i + 2] as u8))
        {
            pending.push(h * 16 + l);
            i += 3;
            continue;
        }
        if !pending.is_empty() {
            out.push_str(&String::from_utf8_lossy(&pending));
            pending.clear();
        }
        out.push(c);
        i += 1;
    }
    if !pending.is_empty() {
        out.push_str(&String::from_utf8_lossy(&pending));
    }
    out
}

/// `parse_qs(query).get(name, [None])[0]`: the first non-blank value of `name`.
fn query_param(query: &str, name: &str) -> Option<String> {
    for pair in query.split('&') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        if v.is_empty() {
            continue;
        }
        if unquote_plus(k) == name {
            return Some(unquote_plus(v));
        }
    }
    None
}

/// Python's `int()` on a str, for ASCII input: surrounding whitespace, optional sign,
/// digits with single underscores between them.
fn py_int(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return None;
    }
    let v: i128 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -v } else { v })
}

/// `y, m = map(int, q.split("-"))`.
fn parse_month(q: &str) -> Option<(i128, i128)> {
    let parts: Vec<&str> = q.split('-').collect();
    if parts.len() != 2 {
        return None;
    }
    Some((py_int(parts[0])?, py_int(parts[1])?))
}

/// Python's `html.escape(s, quote=True)`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Windows-1252 bytes 0x80..=0x9F (undefined ones map to nothing).
const CP1252_HIGH: [char; 32] = [
    '€', '\0', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\0', 'Ž', '\0', '\0', '‘',
    '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\0', 'ž', 'Ÿ',
];

/// Encodes generated pages in the site's charset; characters it cannot hold become HTML
/// character references. Unknown charsets are treated as UTF-8.
fn encode(s: &str, charset: &str) -> Vec<u8> {
    let norm: String = charset
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    let max: u32 = match norm.as_str() {
        "iso88591" | "latin1" | "l1" | "iso885911987" | "88591" | "cp819" | "ibm819" => 0xFF,
        "windows1252" | "cp1252" => 0x1FF, // marker, see below
        "ascii" | "usascii" | "us" | "ansix341968" | "646" => 0x7F,
        _ => return s.as_bytes().to_vec(),
    };
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        let u = c as u32;
        if max == 0x1FF {
            if u < 0x80 || (0xA0..=0xFF).contains(&u) {
                out.push(u as u8);
                continue;
            }
            if let Some(i) = CP1252_HIGH.iter().position(|&h| h == c && h != '\0') {
                out.push(0x80 + i as u8);
                continue;
            }
        } else if u <= max {
            out.push(u as u8);
            continue;
        }
        out.extend_from_slice(format!("&#{u};").as_bytes());
    }
    out
}

/// `bytes.replace(from, to)`.
fn replace_bytes(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() || data.len() < from.len() {
        return data.to_vec();
    }
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_parsing_mirrors_python_int() {
        assert_eq!(parse_month("2026-01"), Some((2026, 1)));
        assert_eq!(parse_month(" 2026 - 1_2 "), Some((2026, 12)));
        assert_eq!(parse_month("2026-13"), Some((2026, 13)));
        assert_eq!(parse_month("-2026-01"), None);
        assert_eq!(parse_month("2026"), None);
        assert_eq!(parse_month("x-1"), None);
    }

    #[test]
    fn query_parsing_mirrors_parse_qs() {
        assert_eq!(
            query_param("monat=&monat=2026-03", "monat").as_deref(),
            Some("2026-03")
        );
        assert_eq!(
            query_param("q=a+b%C3%A4%FF", "q").as_deref(),
            Some("a bä\u{FFFD}")
        );
        assert_eq!(query_param("q", "q"), None);
        assert_eq!(query_param("", "q"), None);
    }

    #[test]
    fn targets_split_like_urlsplit() {
        assert_eq!(split_target("/a/?b=1#c"), ("/a/", "b=1"));
        assert_eq!(split_target("/a#c?d"), ("/a", ""));
        assert_eq!(split_target("http://127.0.0.1:1/x?y"), ("/x", "y"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b/%zz%4"), b"/a b/%zz%4".to_vec());
        assert_eq!(percent_decode("/%C3%A4"), "/ä".as_bytes().to_vec());
    }

    #[test]
    fn charset_encoding() {
        assert_eq!(encode("Nächster", "ISO-8859-1"), b"N\xe4chster".to_vec());
        assert_eq!(encode("€ä", "windows-1252"), b"\x80\xe4".to_vec());
        assert_eq!(encode("ä€", "iso-8859-1"), b"\xe4&#8364;".to_vec());
        assert_eq!(encode("ä", "utf-8"), "ä".as_bytes().to_vec());
    }

    #[test]
    fn escaping_and_replacing() {
        assert_eq!(
            html_escape("<a href='x'>&\""),
            "&lt;a href=&#x27;x&#x27;&gt;&amp;&quot;"
        );
        assert_eq!(replace_bytes(b"xAByAB", b"AB", b"C"), b"xCyC".to_vec());
        assert_eq!(replace_bytes(b"abc", b"", b"C"), b"abc".to_vec());
    }
}
