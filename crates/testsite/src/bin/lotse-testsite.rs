//! `lotse-testsite SITE_DIR [--port N] [--log FILE] [--body-end HTML]`: serve a fixture site
//! until killed; `--body-end` puts HTML before `</body>` of every page (a CMS footer snippet).
//!
//! Like `serve_site.py`: the port defaults to 8089 (the sites' `base`); `--port 0` picks a
//! free one. Prints `serving SITE_DIR on http://127.0.0.1:PORT/` once listening.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use lotse_testsite::{ServerOptions, SiteServer};

const USAGE: &str = "usage: lotse-testsite SITE_DIR [--port N] [--log FILE] [--body-end HTML]";

fn main() -> ExitCode {
    let mut site: Option<String> = None;
    let mut port: u16 = 8089;
    let mut log: Option<PathBuf> = None;
    let mut body_end: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--port" => {
                let Some(v) = inline.or_else(|| args.next()) else {
                    eprintln!("--port needs a value\n{USAGE}");
                    return ExitCode::from(2);
                };
                match v.parse() {
                    Ok(p) => port = p,
                    Err(_) => {
                        eprintln!("bad port: {v}\n{USAGE}");
                        return ExitCode::from(2);
                    }
                }
            }
            "--log" => {
                let Some(v) = inline.or_else(|| args.next()) else {
                    eprintln!("--log needs a value\n{USAGE}");
                    return ExitCode::from(2);
                };
                log = Some(PathBuf::from(v));
            }
            "--body-end" => {
                let Some(v) = inline.or_else(|| args.next()) else {
                    eprintln!("--body-end needs a value\n{USAGE}");
                    return ExitCode::from(2);
                };
                body_end = Some(v);
            }
            _ if arg.starts_with('-') && arg != "-" => {
                eprintln!("unknown option: {arg}\n{USAGE}");
                return ExitCode::from(2);
            }
            _ if site.is_none() => site = Some(arg),
            _ => {
                eprintln!("unexpected argument: {arg}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(site) = site else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let opts = ServerOptions {
        port,
        log_file: log,
        body_end,
        ..ServerOptions::default()
    };
    let server = match SiteServer::start_with(&site, opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lotse-testsite: cannot serve {site}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("serving {site} on {}/", server.origin());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
