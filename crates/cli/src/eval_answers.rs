//! `lotse eval answers`: answer every question of a JSONL set with the real models and report
//! whether a cited source is an expected URL, false refusals, refusals on out-of-scope
//! questions, and the safety checks (no canary, no foreign URL, no injected message).
//! `--gate-only` runs retrieval and the refusal gate without generation (fast; for
//! calibrating the gate of a town's site).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use lotse_answer::{AnswerRequest, Answerer};
use serde::Serialize;

use crate::runtime::{EngineArgs, ModelArgs};
use crate::serve::{ConfigArgs, apply_config, build_answerer};

#[derive(clap::Args)]
pub struct AnswersArgs {
    /// JSONL file: {"question": ..., "expected_urls": ["/path/", ...]} (empty: out of scope)
    #[arg(long)]
    questions: PathBuf,
    /// Origin the expected paths are joined with, e.g. http://127.0.0.1:8089
    #[arg(long)]
    site: String,
    /// Only the first N questions.
    #[arg(long)]
    limit: Option<usize>,
    /// Only N questions evenly spread over the file (a quicker estimate).
    #[arg(long)]
    sample: Option<usize>,
    /// Retrieval and refusal gate only, no generation.
    #[arg(long)]
    gate_only: bool,
    /// Strings that must never appear in an answer (e.g. the site's canary; repeatable).
    #[arg(long = "forbid")]
    forbid: Vec<String>,
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    models: ModelArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    question: String,
    expected: Vec<String>,
    refused: bool,
    cited: Vec<String>,
    correct_source: bool,
    flagged: bool,
    /// The model's text was not backed by the sources and became a pointer to the best page.
    fallback: bool,
    coverage: f32,
    dense: Option<f32>,
    foreign_urls: Vec<String>,
    forbidden: Vec<String>,
    first_token_ms: Option<u64>,
    total_ms: u64,
    answer: String,
}

#[derive(Serialize)]
struct Report {
    questions: usize,
    in_scope: usize,
    out_of_scope: usize,
    gate_only: bool,
    /// In-scope questions whose answer cites an expected URL.
    correct_source_rate: f64,
    /// In-scope questions refused.
    false_refusal_rate: f64,
    /// Out-of-scope questions refused.
    out_of_scope_refusal_rate: f64,
    /// Answers with a URL not among their sources, or a forbidden string.
    violations: usize,
    flagged: usize,
    /// Answers replaced by a pointer to the best page (counted in `correct_source_rate` when
    /// that page is an expected one).
    fallbacks: usize,
    /// In-scope questions whose answer cites an expected URL with the model's own text.
    correct_source_written_rate: f64,
    median_first_token_ms: Option<u64>,
    median_total_ms: u64,
    rows: Vec<Row>,
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

pub fn run(mut args: AnswersArgs) -> Result<()> {
    let config = args.config.load()?;
    apply_config(&mut args.models, &mut args.engine, &config);
    let data = args.config.data_dir(&config);
    let mut qs = crate::eval::load(&args.questions, &args.site)?;
    if let Some(n) = args.sample.filter(|n| *n > 0 && *n < qs.len()) {
        let step = qs.len() as f64 / n as f64;
        qs = (0..n).map(|i| qs[(i as f64 * step) as usize].clone()).collect();
    }
    if let Some(n) = args.limit {
        qs.truncate(n);
    }
    let answerer = build_answerer(&config, &data, &args.models, &args.engine, !args.gate_only)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for (i, q) in qs.iter().enumerate() {
        let req = AnswerRequest {
            question: q.question.clone(),
            history: Vec::new(),
            lang: None,
        };
        let row = if args.gate_only {
            gate_row(&answerer, &req, &q.expected_urls)?
        } else {
            let p = answerer.prepare(&req)?;
            let (coverage, dense) = (p.strength.coverage, p.strength.dense);
            let a = rt.block_on(answerer.answer(&req))?;
            let cited: Vec<String> = a
                .sources
                .iter()
                .filter(|s| s.cited)
                .map(|s| s.url.clone())
                .collect();
            let allowed: Vec<String> = a
                .sources
                .iter()
                .flat_map(|s| [s.url.clone(), s.deep_link.clone()])
                .collect();
            let foreign_urls = lotse_answer::check::remove_foreign_urls(&a.answer, &allowed);
            let foreign: Vec<String> = if foreign_urls.1 > 0 {
                a.answer
                    .split_whitespace()
                    .filter(|w| lotse_answer::check::is_url_like(w))
                    .map(str::to_string)
                    .collect()
            } else {
                Vec::new()
            };
            // the refusal names the configured contact page; that is not a foreign URL
            let foreign = if a.refused { Vec::new() } else { foreign };
            Row {
                question: q.question.clone(),
                expected: q.expected_urls.clone(),
                refused: a.refused,
                correct_source: cited.iter().any(|c| q.expected_urls.contains(c)),
                cited,
                flagged: a.flagged,
                fallback: a.fallback,
                coverage,
                dense,
                foreign_urls: foreign,
                forbidden: args
                    .forbid
                    .iter()
                    .filter(|f| a.answer.contains(f.as_str()))
                    .cloned()
                    .collect(),
                first_token_ms: a.timings.first_token_ms,
                total_ms: a.timings.total_ms,
                answer: a.answer,
            }
        };
        if !args.json {
            eprintln!(
                "{:>3}/{} {} {} {:.2}/{:.3} {}",
                i + 1,
                qs.len(),
                if row.refused { "REFUSED" } else { "answered" },
                if row.expected.is_empty() {
                    "(out of scope)"
                } else if row.correct_source {
                    "source ok"
                } else {
                    "source MISSED"
                },
                row.coverage,
                row.dense.unwrap_or(0.0),
                row.question
            );
        }
        rows.push(row);
    }
    let in_scope: Vec<&Row> = rows.iter().filter(|r| !r.expected.is_empty()).collect();
    let out: Vec<&Row> = rows.iter().filter(|r| r.expected.is_empty()).collect();
    let rate = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let report = Report {
        questions: rows.len(),
        in_scope: in_scope.len(),
        out_of_scope: out.len(),
        gate_only: args.gate_only,
        correct_source_rate: rate(in_scope.iter().filter(|r| r.correct_source).count(), in_scope.len()),
        false_refusal_rate: rate(in_scope.iter().filter(|r| r.refused).count(), in_scope.len()),
        out_of_scope_refusal_rate: rate(out.iter().filter(|r| r.refused).count(), out.len()),
        violations: rows
            .iter()
            .filter(|r| !r.foreign_urls.is_empty() || !r.forbidden.is_empty())
            .count(),
        flagged: rows.iter().filter(|r| r.flagged).count(),
        fallbacks: rows.iter().filter(|r| r.fallback).count(),
        correct_source_written_rate: rate(
            in_scope.iter().filter(|r| r.correct_source && !r.fallback).count(),
            in_scope.len(),
        ),
        median_first_token_ms: median(rows.iter().filter_map(|r| r.first_token_ms).collect()),
        median_total_ms: median(rows.iter().map(|r| r.total_ms).collect()).unwrap_or(0),
        rows,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} questions ({} in scope, {} out of scope){}",
            report.questions,
            report.in_scope,
            report.out_of_scope,
            if report.gate_only { ", gate only" } else { "" }
        );
        if report.in_scope > 0 {
            if !report.gate_only {
                println!("correct source      {:.1}%", 100.0 * report.correct_source_rate);
            }
            println!("false refusals      {:.1}%", 100.0 * report.false_refusal_rate);
        }
        if report.out_of_scope > 0 {
            println!("out-of-scope refused {:.1}%", 100.0 * report.out_of_scope_refusal_rate);
        }
        if !report.gate_only {
            println!("violations          {}", report.violations);
            println!("flagged             {}", report.flagged);
            println!(
                "fallbacks           {} (pointer to the best page; correct source with the model's own text {:.1}%)",
                report.fallbacks,
                100.0 * report.correct_source_written_rate
            );
            println!(
                "median first token  {} ms, median total {} ms",
                report.median_first_token_ms.map_or("-".into(), |t| t.to_string()),
                report.median_total_ms
            );
        }
    }
    Ok(())
}

fn gate_row(answerer: &Arc<Answerer>, req: &AnswerRequest, expected: &[String]) -> Result<Row> {
    let p = answerer.prepare(req)?;
    let urls: Vec<String> = p.passages.iter().map(|x| x.url.clone()).collect();
    Ok(Row {
        question: req.question.clone(),
        expected: expected.to_vec(),
        refused: p.weak_evidence,
        correct_source: urls.iter().any(|u| expected.contains(u)),
        cited: urls,
        flagged: false,
        fallback: false,
        coverage: p.strength.coverage,
        dense: p.strength.dense,
        foreign_urls: Vec::new(),
        forbidden: Vec::new(),
        first_token_ms: None,
        total_ms: p.retrieval_ms,
        answer: String::new(),
    })
}
