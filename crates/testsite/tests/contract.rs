//! Contract tests for `lotse-testsite`, with a tiny raw-TCP HTTP/1.1 client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lotse_testsite::{Body, Route, ServerOptions, SiteServer};

const BAD_BOLL: &str = "/work/shared/fixtures/sites/bad-boll";
const KONSTANZ: &str = "/work/shared/fixtures/sites/konstanz";

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Client {
            reader: BufReader::new(s),
        }
    }

    fn send_raw(&mut self, raw: &[u8]) {
        self.reader.get_mut().write_all(raw).unwrap();
    }

    /// Reads one response; `head` = the request was HEAD (no body follows).
    fn read(&mut self, head: bool) -> Resp {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 "), "bad status line {line:?}");
        let status: u16 = line[9..12].parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            self.reader.read_line(&mut l).unwrap();
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = resp
            .header("content-length")
            .expect("Content-Length")
            .parse()
            .unwrap();
        if !head {
            resp.body = vec![0; len];
            self.reader.read_exact(&mut resp.body).unwrap();
        }
        resp
    }

    fn request(&mut self, method: &str, target: &str, extra: &[(&str, &str)]) -> Resp {
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: contract-test/1\r\n"
        );
        for (k, v) in extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.send_raw(req.as_bytes());
        self.read(method == "HEAD")
    }

    /// True if the server closed the connection (EOF).
    fn at_eof(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0) | Err(_))
    }
}

fn get(srv: &SiteServer, target: &str) -> Resp {
    Client::connect(srv.port()).request("GET", target, &[])
}

/// Copies a site (site.json, robots.txt, index.html, ortsrecht/index.html) to a fresh temp dir.
fn temp_site(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lotse-testsite-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("ortsrecht")).unwrap();
    for f in [
        "site.json",
        "robots.txt",
        "index.html",
        "ortsrecht/index.html",
    ] {
        std::fs::copy(Path::new(BAD_BOLL).join(f), dir.join(f)).unwrap();
    }
    dir
}

#[test]
fn home_page_has_rewritten_origin() {
    let srv = SiteServer::start(BAD_BOLL).unwrap();
    assert_eq!(srv.origin(), format!("http://127.0.0.1:{}", srv.port()));
    let r = get(&srv, "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let body = r.text();
    assert!(
        body.contains(&format!(
            "<link rel=\"canonical\" href=\"{}/\">",
            srv.origin()
        )),
        "{body}"
    );
    if srv.port() != 8089 {
        assert!(!body.contains("127.0.0.1:8089"));
    }
    let etag = r.header("etag").unwrap();
    assert!(
        etag.len() == 18 && etag.starts_with('"') && etag.ends_with('"'),
        "{etag}"
    );
    assert!(r.header("last-modified").unwrap().ends_with(" GMT"));

    let robots = get(&srv, "/robots.txt");
    assert_eq!(robots.header("content-type"), Some("text/plain"));
    assert!(
        robots
            .text()
            .contains(&format!("Sitemap: {}/sitemap.xml", srv.origin()))
    );
    let sitemap = get(&srv, "/sitemap.xml");
    assert_eq!(sitemap.header("content-type"), Some("application/xml"));
    assert!(
        sitemap
            .text()
            .contains(&format!("<loc>{}/ortsrecht/</loc>", srv.origin()))
    );
    let svg = get(&srv, "/fileadmin/logo.svg");
    assert_eq!(
        (svg.status, svg.header("content-type")),
        (200, Some("image/svg+xml"))
    );
    // query ignored: same page again
    let print = get(&srv, "/?print=1");
    assert_eq!(print.body, r.body);
}

#[test]
fn redirects_errors_and_not_found() {
    let srv = SiteServer::start(BAD_BOLL).unwrap();
    let r = get(&srv, "/alt/satzungen.html");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/ortsrecht/"));
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("content-type"), None);

    let r = get(&srv, "/kaputt/");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "<h1>Fehler 404</h1>");
    assert_eq!(r.header("retry-after"), None);

    let r = get(&srv, "/wartung/");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("120"));
    assert_eq!(r.text(), "<h1>Fehler 503</h1>");

    for missing in [
        "/gibt-es-nicht/",
        "/site.json",
        "/%73ite.json",
        "/ortsrecht",
        "/../site.json",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc/passwd",
        "/%00",
    ] {
        let r = get(&srv, missing);
        assert_eq!(r.status, 404, "{missing}");
        assert_eq!(r.text(), "<h1>Seite nicht gefunden</h1>");
    }
    // percent-decoded file names; traversal that stays inside the site is fine
    assert_eq!(get(&srv, "/ortsrecht/%69ndex.html").status, 200);
    assert_eq!(get(&srv, "/intern/../ortsrecht/").status, 200);
}

#[test]
fn calendar_is_endless_and_suche_escapes() {
    let srv = SiteServer::start(KONSTANZ).unwrap();
    let r = get(&srv, "/veranstaltungen/kalender/?monat=2026-01");
    assert_eq!(r.status, 200);
    assert!(
        r.text()
            .contains("<a href=\"?monat=2026-02\">Nächster Monat</a>"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("<title>Veranstaltungen 2026-01</title>"));
    let r = get(&srv, "/veranstaltungen/kalender/?monat=2026-12");
    assert!(r.text().contains("?monat=2027-01\""));
    let r = get(&srv, "/veranstaltungen/kalender/");
    assert!(r.text().contains("Veranstaltungen im 01/2026"));
    let r = get(&srv, "/veranstaltungen/kalender/?monat=kaputt");
    assert_eq!((r.status, r.text().as_str()), (400, "bad month"));

    let r = get(&srv, "/suche?q=%3Cb%3E+%22x%22");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "<html><body><h1>Suche: &lt;b&gt; &quot;x&quot;</h1><p>Keine Treffer.</p></body></html>"
    );
}

#[test]
fn latin1_charset_from_site_json() {
    let dir = temp_site("latin1");
    let json = std::fs::read_to_string(dir.join("site.json"))
        .unwrap()
        .replace("\"utf-8\"", "\"ISO-8859-1\"");
    std::fs::write(dir.join("site.json"), json).unwrap();
    let srv = SiteServer::start(&dir).unwrap();
    let r = get(&srv, "/veranstaltungen/kalender/?monat=2026-05");
    assert_eq!(
        r.header("content-type"),
        Some("text/html; charset=ISO-8859-1")
    );
    assert!(r.body.windows(8).any(|w| w == b"N\xe4chster"));
    assert_eq!(
        get(&srv, "/").header("content-type"),
        Some("text/html; charset=ISO-8859-1")
    );
    drop(srv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn conditional_requests_get_304() {
    let srv = SiteServer::start(BAD_BOLL).unwrap();
    let mut c = Client::connect(srv.port());
    let r = c.request("GET", "/ortsrecht/", &[]);
    let etag = r.header("etag").unwrap().to_owned();
    let lm = r.header("last-modified").unwrap().to_owned();

    let r = c.request("GET", "/ortsrecht/", &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("etag"), Some(etag.as_str()));

    let r = c.request("GET", "/ortsrecht/", &[("If-Modified-Since", &lm)]);
    assert_eq!(r.status, 304);
    let r = c.request(
        "GET",
        "/ortsrecht/",
        &[("If-None-Match", "\"0000000000000000\"")],
    );
    assert_eq!(r.status, 200);
    let r = c.request(
        "GET",
        "/ortsrecht/",
        &[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")],
    );
    assert_eq!(r.status, 200);

    let recs = srv.requests();
    assert_eq!(recs.len(), 5);
    assert_eq!(
        recs.iter().map(|r| r.conditional).collect::<Vec<_>>(),
        [false, true, true, true, true]
    );
    assert_eq!(
        recs.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 304, 304, 200, 200]
    );
    assert_eq!(recs[1].body_bytes, 0);
    assert_eq!(recs[0].body_bytes, r.body.len() as u64);
    assert_eq!(recs[0].user_agent, "contract-test/1");
    srv.clear_requests();
    assert!(srv.requests().is_empty());
}

#[test]
fn changed_and_deleted_files_show_up() {
    let dir = temp_site("changes");
    let srv = SiteServer::start(&dir).unwrap();
    let r1 = get(&srv, "/ortsrecht/");
    assert_eq!(r1.status, 200);
    let page = dir.join("ortsrecht/index.html");
    let mut text = std::fs::read_to_string(&page).unwrap();
    text.push_str("<!-- geändert -->");
    std::fs::write(&page, text).unwrap();
    let r2 = get(&srv, "/ortsrecht/");
    assert_eq!(r2.status, 200);
    assert_ne!(r1.header("etag"), r2.header("etag"));
    assert!(r2.text().ends_with("<!-- geändert -->"));
    let old = Client::connect(srv.port()).request(
        "GET",
        "/ortsrecht/",
        &[("If-None-Match", r1.header("etag").unwrap())],
    );
    assert_eq!(old.status, 200);
    std::fs::remove_file(&page).unwrap();
    assert_eq!(get(&srv, "/ortsrecht/").status, 404);
    drop(srv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn head_has_length_but_no_body() {
    let srv = SiteServer::start(BAD_BOLL).unwrap();
    let mut c = Client::connect(srv.port());
    let full = c.request("GET", "/", &[]);
    let head = c.request("HEAD", "/", &[]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length").unwrap(),
        full.body.len().to_string()
    );
    assert_eq!(head.header("etag"), full.header("etag"));
    // the connection is still in sync: the next response parses
    assert_eq!(c.request("GET", "/kaputt/", &[]).status, 404);
    let recs = srv.requests();
    assert_eq!((recs[1].method.as_str(), recs[1].body_bytes), ("HEAD", 0));
}

#[test]
fn route_served_n_times_then_falls_through() {
    let opts = ServerOptions {
        routes: vec![(
            "/ortsrecht/".to_owned(),
            Route::new(429)
                .header("Retry-After", "1")
                .body(Body::Bytes(b"slow down".to_vec()))
                .times(1),
        )],
        ..ServerOptions::default()
    };
    let srv = SiteServer::start_with(BAD_BOLL, opts).unwrap();
    let r = get(&srv, "/ortsrecht/?x=1");
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.text(), "slow down");
    let r = get(&srv, "/ortsrecht/");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<html"));
    assert_eq!(
        srv.requests().iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 200]
    );
    assert_eq!(srv.requests()[0].path, "/ortsrecht/?x=1");
}

#[test]
fn zeros_body_streams_exact_length() {
    let opts = ServerOptions {
        routes: vec![
            (
                "/gross.pdf".to_owned(),
                Route::new(200)
                    .header("Content-Type", "application/pdf")
                    .body(Body::Zeros(10_000_000)),
            ),
            (
                "/riesig".to_owned(),
                Route::new(200).body(Body::Zeros(50_000_000)),
            ),
        ],
        ..ServerOptions::default()
    };
    let srv = SiteServer::start_with(BAD_BOLL, opts).unwrap();
    let mut c = Client::connect(srv.port());
    let r = c.request("GET", "/gross.pdf", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("10000000"));
    assert_eq!(r.header("content-type"), Some("application/pdf"));
    assert_eq!(r.body.len(), 10_000_000);
    assert!(r.body.iter().all(|&b| b == 0));
    // still usable after a big body
    assert_eq!(c.request("GET", "/kaputt/", &[]).status, 404);

    // a client that hangs up mid-body does not hurt the server
    let mut c = Client::connect(srv.port());
    c.send_raw(b"GET /riesig HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut first = [0u8; 1000];
    c.reader.read_exact(&mut first).unwrap();
    drop(c);
    assert_eq!(get(&srv, "/").status, 200);
    assert_eq!(srv.requests()[2].body_bytes, 50_000_000);
}

#[test]
fn garbage_gets_400_and_server_survives() {
    let srv = SiteServer::start(BAD_BOLL).unwrap();
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"\x00\x01\x02\xff nonsense here\r\n\r\n",
        b"GET / HTTP/x.y\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon header\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    ] {
        let mut c = Client::connect(srv.port());
        c.send_raw(garbage);
        let r = c.read(false);
        assert_eq!(r.status, 400, "{garbage:?}");
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.at_eof());
    }
    let mut c = Client::connect(srv.port());
    c.send_raw(b"GET / HTTP/2.0\r\n\r\n");
    assert_eq!(c.read(false).status, 505);
    let mut c = Client::connect(srv.port());
    assert_eq!(
        c.request("POST", "/", &[("Content-Length", "0")]).status,
        501
    );
    // a client that connects and leaves
    drop(TcpStream::connect(("127.0.0.1", srv.port())).unwrap());
    assert_eq!(get(&srv, "/").status, 200);
}

#[test]
fn keep_alive_and_pipelining() {
    let srv = SiteServer::start(BAD_BOLL).unwrap();
    let mut c = Client::connect(srv.port());
    let a = c.request("GET", "/", &[]);
    let b = c.request("GET", "/ortsrecht/", &[]);
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(a.header("connection"), Some("keep-alive"));
    // pipelined: both requests in one write
    c.send_raw(
        b"GET /kaputt/ HTTP/1.1\r\nHost: x\r\n\r\nGET /wartung/ HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(c.read(false).status, 404);
    assert_eq!(c.read(false).status, 503);
    // Connection: close is honoured
    let r = c.request("GET", "/", &[("Connection", "close")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.at_eof());
    // HTTP/1.0 without keep-alive closes
    let mut c = Client::connect(srv.port());
    c.send_raw(b"GET /robots.txt HTTP/1.0\r\n\r\n");
    assert_eq!(c.read(false).status, 200);
    assert!(c.at_eof());
    assert_eq!(srv.requests().len(), 6);
}

#[test]
fn log_file_lines_like_python() {
    let log = std::env::temp_dir().join(format!("lotse-testsite-log-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let srv = SiteServer::start_with(
        BAD_BOLL,
        ServerOptions {
            log_file: Some(log.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    get(&srv, "/kaputt/?a=1");
    let mut c = Client::connect(srv.port());
    c.send_raw(b"HEAD / HTTP/1.1\r\n\r\n");
    c.read(true);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text, "GET /kaputt/?a=1 404 contract-test/1\nHEAD / 200 -\n");
    drop(srv);
    let _ = std::fs::remove_file(log);
}

#[test]
fn drop_stops_server_and_closes_connections() {
    let srv = SiteServer::start(BAD_BOLL).unwrap();
    let port = srv.port();
    let mut c = Client::connect(port);
    assert_eq!(c.request("GET", "/", &[]).status, 200);
    drop(srv);
    assert!(c.at_eof(), "kept-alive connection must be closed on drop");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn start_fails_without_site_json() {
    let dir = std::env::temp_dir().join(format!("lotse-testsite-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(SiteServer::start(&dir).is_err());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn body_end_goes_before_the_closing_body_tag_of_html_pages_only() {
    let snippet = "<script src=\"http://127.0.0.1:1/widget/lotse.js\" defer></script>";
    let srv = SiteServer::start_with(
        BAD_BOLL,
        ServerOptions {
            body_end: Some(snippet.to_owned()),
            ..Default::default()
        },
    )
    .unwrap();
    let page = get(&srv, "/ortsrecht/").text();
    let at = page.find(snippet).expect("snippet in the page");
    assert!(page[at + snippet.len()..].trim_start().to_ascii_lowercase().starts_with("</body>"), "{}", &page[at..]);
    assert_eq!(page.matches(snippet).count(), 1);
    assert!(!get(&srv, "/robots.txt").text().contains(snippet));
    assert!(!get(&srv, "/sitemap.xml").text().contains(snippet));
}
