//! The `lotse` CLI contract, end to end: crawl two towns into one data directory over loopback,
//! search, and measure retrieval on the dev questions.

use std::process::{Command, Output};

use lotse_testsite::SiteServer;

mod common;
use common::{fixtures, json};

fn lotse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lotse"))
        .args(args)
        .env("RUST_LOG", "warn")
        // the BM25 contract: no models, whatever the machine has cached (see models_e2e.rs)
        .env("LOTSE_MODEL_CACHE", "/nonexistent/lotse-model-cache")
        .output()
        .unwrap()
}

fn eval(data: &str, site: &str, extra: &[&str]) -> serde_json::Value {
    let questions = fixtures().join("questions/bad-boll.dev.jsonl");
    let mut args = vec![
        "eval",
        "retrieval",
        "--questions",
        questions.to_str().unwrap(),
        "--site",
        site,
        "--data",
        data,
        "--k",
        "5",
        "--json",
    ];
    args.extend_from_slice(extra);
    json(&lotse(&args))
}

#[test]
fn crawl_search_and_eval_two_towns() {
    let bad_boll = SiteServer::start(fixtures().join("sites/bad-boll")).unwrap();
    let konstanz = SiteServer::start(fixtures().join("sites/konstanz")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();

    let summary = json(&lotse(&[
        "crawl",
        &format!("{}/", bad_boll.origin()),
        "--data",
        data,
        "--delay-ms",
        "0",
        "--concurrency",
        "4",
        "--json",
    ]));
    for key in [
        "pages_indexed",
        "pdfs",
        "not_modified",
        "skipped_robots",
        "failed",
        "removed",
    ] {
        assert!(summary[key].is_u64(), "{key} missing in {summary}");
    }
    assert!(summary["pages_indexed"].as_u64().unwrap() >= 65);

    let hits = json(&lotse(&[
        "search",
        "Was kostet ein zweiter Hund?",
        "--data",
        data,
        "--limit",
        "5",
        "--json",
    ]));
    let hits = hits.as_array().unwrap();
    assert!(!hits.is_empty());
    for h in hits {
        for key in ["url", "title", "heading", "snippet", "score"] {
            assert!(!h[key].is_null(), "{key} missing in {h}");
        }
        assert!(h["url"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    }
    assert!(
        hits.iter()
            .take(3)
            .any(|h| h["url"].as_str().unwrap().contains("hundesteuer")),
        "{hits:?}"
    );

    let one = eval(data, &bad_boll.origin(), &[]);
    eprintln!(
        "bad-boll alone: r@1 {} r@5 {} mrr {}",
        one["recall_at_1"], one["recall_at_k"], one["mrr"]
    );
    assert!(one["recall_at_k"].as_f64().unwrap() >= 0.92, "{one}");
    assert!(one["mrr"].as_f64().unwrap() >= 0.82, "{one}");

    // a second town in the same data directory: questions naming their town still find it
    json(&lotse(&[
        "crawl",
        &format!("{}/", konstanz.origin()),
        "--data",
        data,
        "--delay-ms",
        "0",
        "--concurrency",
        "4",
        "--json",
    ]));
    let two = eval(data, &bad_boll.origin(), &[]);
    eprintln!(
        "with konstanz: r@1 {} r@5 {} mrr {}",
        two["recall_at_1"], two["recall_at_k"], two["mrr"]
    );
    assert!(two["recall_at_k"].as_f64().unwrap() >= 0.93, "{two}");

    // the ablation reports all four analysis variants
    let all = eval(data, &bad_boll.origin(), &["--ablation"]);
    assert_eq!(all.as_array().unwrap().len(), 4);
}

#[test]
fn bad_arguments_fail_with_a_clear_message_and_nonzero_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().to_str().unwrap();
    let out = lotse(&["crawl", "not a url", "--data", data]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid site url"));
    let out = lotse(&[
        "crawl",
        "http://127.0.0.1:9/",
        "--data",
        data,
        "--timeout-s",
        "2",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unreachable"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = lotse(&[
        "eval",
        "retrieval",
        "--questions",
        "/nonexistent.jsonl",
        "--site",
        "http://x",
        "--data",
        data,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read questions"));
    // search on an empty data dir: no hits, success
    let out = lotse(&["search", "Hund", "--data", data, "--json"]);
    assert_eq!(json(&out), serde_json::json!([]));
    // no model in the cache: the exact command that fetches it
    let out = lotse(&["generate", "Hallo"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lotse models fetch --model qwen2.5-coder-1.5b-instruct-q4_k_m"),
        "{err}"
    );
    // dense search without the embedder says how to get it
    let out = lotse(&["search", "Hund", "--data", data, "--mode", "dense"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lotse models fetch --model multilingual-e5-small"),
        "{err}"
    );
    // a remote engine needs its URL
    let out = lotse(&["generate", "Hallo", "--engine", "openai"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--engine-url"));
}

#[test]
fn a_crawl_killed_midway_leaves_a_valid_index_and_the_next_run_resumes() {
    let konstanz = SiteServer::start(fixtures().join("sites/konstanz")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    let site = format!("{}/", konstanz.origin());
    let mut child = Command::new(env!("CARGO_BIN_EXE_lotse"))
        .args([
            "crawl",
            &site,
            "--data",
            data,
            "--delay-ms",
            "25",
            "--concurrency",
            "1",
        ])
        .env("RUST_LOG", "warn")
        .env("LOTSE_MODEL_CACHE", "/nonexistent/lotse-model-cache")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // let it commit a few batches (every 25 documents), then kill it hard (SIGKILL: no
    // chance to clean up); wait by progress, not by time, so a loaded machine cannot fail it
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while konstanz.requests().len() < 80 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let fetched_before_kill = konstanz.requests().len();
    assert!(
        fetched_before_kill > 30,
        "only {fetched_before_kill} requests before the kill"
    );

    // the index opens and answers
    let hits = json(&lotse(&["search", "Gebühren", "--data", data, "--json"]));
    assert!(hits.is_array());

    // the next run completes, revalidating what was committed instead of downloading it again
    let summary = json(&lotse(&[
        "crawl",
        &site,
        "--data",
        data,
        "--delay-ms",
        "0",
        "--concurrency",
        "4",
        "--json",
    ]));
    assert_eq!(summary["complete"], true);
    assert!(summary["not_modified"].as_u64().unwrap() >= 25, "{summary}");
    assert!(summary["pages_total"].as_u64().unwrap() >= 160, "{summary}");
}
