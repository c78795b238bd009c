//! `lotse eval answers`: answer every question of a JSONL set with the real models and report
//! whether a cited source is an expected URL, false refusals, refusals on out-of-scope
//! questions, and the safety checks (no canary, no foreign URL, no injected message).
//! `--gate-only` runs retrieval and the refusal gate without generation (fast; for
//! calibrating the gate of a town's site).
//!
//! Questions with a `facts` field (`*.facts.jsonl`) are also judged on the fact: an answer is
//! correct when every required fact has one of its accepted forms in the answer text (the
//! matching rule of `shared/fixtures/README.md`, [`fact_in`]). The report gives that per
//! answer type (classified by the question's wording), whether the fact stands in the first
//! sentence, the share of extractive answers, and for each miss where it was lost: retrieval
//! (no expected page among the sources), evidence (the fact is not in the text the model saw)
//! or model (it was there, the answer does not state it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use lotse_answer::{AnswerEvent, AnswerRequest, Answerer};
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
    /// Until the sources (and the quote) were sent.
    sources_ms: u64,
    first_token_ms: Option<u64>,
    total_ms: u64,
    answer: String,
    /// The source's own words given with the answer.
    quotes: Vec<String>,
    /// The answer is the quote with a framing sentence.
    extractive: bool,
    /// Why the model's text was replaced (by the quote or a pointer), if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced: Option<&'static str>,
    /// The kind of fact asked for (by the question's wording).
    asked: String,
    /// Required facts (from the question set; empty: not judged on facts).
    facts: Vec<Vec<String>>,
    /// Every required fact is in the answer text.
    facts_correct: Option<bool>,
    /// A required fact is in the answer's first sentence.
    fact_first: Option<bool>,
    /// Where a missed fact was lost: retrieval, evidence or model.
    miss: Option<String>,
    prompt_tokens: usize,
    /// Says "nein"/"nicht"/"kein" with no negation, limit or prohibition in a cited passage.
    unbacked_denial: bool,
    /// The text of each passage the model saw.
    evidence: Vec<String>,
    /// Every required fact is in the evidence (judged questions only).
    facts_in_evidence: Option<bool>,
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
    /// Questions with required facts.
    fact_questions: usize,
    /// Share of fact questions whose answer states every required fact.
    facts_correct_rate: f64,
    /// Share of fact questions answered (not refused) with a required fact in the first sentence.
    fact_first_rate: f64,
    /// Share of answers (not refused) that are the source's own words (extractive).
    extractive_rate: f64,
    /// Per answer type: questions, facts correct.
    by_type: BTreeMap<String, (usize, usize)>,
    /// Misses by where the fact was lost.
    misses: BTreeMap<String, usize>,
    /// Answers in du-Form.
    du_form: usize,
    /// Answers with "nein"/"nicht"/"kein" whose cited passages hold no negation or limit.
    unbacked_denials: usize,
    median_sources_ms: u64,
    p90_sources_ms: u64,
    median_first_token_ms: Option<u64>,
    p90_first_token_ms: Option<u64>,
    median_total_ms: u64,
    p90_total_ms: u64,
    median_prompt_tokens: usize,
    rows: Vec<Row>,
}

/// Normalise a text for fact matching: `**` removed, lowercase, `€` read as `euro`, a comma
/// between digits read as a dot, whitespace runs as one space.
fn normalise_fact_text(s: &str) -> String {
    let s = s.replace("**", "").to_lowercase().replace('€', " euro ");
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let between_digits = c == ','
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        out.push(if between_digits { '.' } else { c });
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether one accepted form of a fact is in an answer (both normalised). A form that starts
/// or ends with a digit may not touch further digits: `15` matches `15,00 €` but not `150`,
/// `2015` or `0,15`.
pub(crate) fn fact_in(answer: &str, form: &str) -> bool {
    let a = normalise_fact_text(answer);
    let f = normalise_fact_text(form);
    if f.is_empty() {
        return false;
    }
    let starts_digit = f.starts_with(|c: char| c.is_ascii_digit());
    let ends_digit = f.ends_with(|c: char| c.is_ascii_digit());
    let mut from = 0;
    while let Some(off) = a[from..].find(&f) {
        let start = from + off;
        let end = start + f.len();
        let before: Vec<char> = a[..start].chars().rev().take(2).collect();
        let after = a[end..].chars().next();
        let touches_before = starts_digit
            && (before.first().is_some_and(|c| c.is_ascii_digit())
                || (before.first().is_some_and(|c| *c == '.' || *c == ',')
                    && before.get(1).is_some_and(|c| c.is_ascii_digit())));
        // "15" is in "15,00 €" (normalised "15.00") but not in "15.50", "150" or the date
        // "18.03.2019": a separator after it may only be followed by zeros
        let rest: String = a[end..].chars().skip(1).take_while(|c| c.is_ascii_digit()).collect();
        let touches_after = ends_digit
            && (after.is_some_and(|c| c.is_ascii_digit())
                || (after == Some('.') && !rest.is_empty() && rest.chars().any(|c| c != '0')));
        if !touches_before && !touches_after {
            return true;
        }
        from = start + f.chars().next().map_or(1, char::len_utf8);
    }
    false
}

fn all_facts_in(text: &str, facts: &[Vec<String>]) -> bool {
    facts.iter().all(|forms| forms.iter().any(|f| fact_in(text, f)))
}

fn p90<T: Copy + Ord>(mut v: Vec<T>) -> Option<T> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[((v.len() as f64 * 0.9).ceil() as usize).clamp(1, v.len()) - 1])
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> Option<T> {
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
            gate_row(&answerer, &req, &q.expected_urls, &q.facts)?
        } else {
            let started = Instant::now();
            let p = answerer.prepare(&req)?;
            let (coverage, dense) = (p.strength.coverage, p.strength.dense);
            let evidence: String = p.passages.iter().map(|x| x.text.as_str()).collect::<Vec<_>>().join("\n");
            let evidence_urls: Vec<String> = p.passages.iter().map(|x| x.url.clone()).collect();
            let passage_texts: Vec<(usize, String)> = p.passages.iter().map(|x| (x.n, x.full_text.clone())).collect();
            let mut sources_ms = 0;
            let a = {
                let _guard = rt.enter();
                let mut run = answerer.start(p)?;
                rt.block_on(async {
                    let mut done = None;
                    while let Some(ev) = run.events.recv().await {
                        match ev {
                            AnswerEvent::Quotes(_) => sources_ms = started.elapsed().as_millis() as u64,
                            AnswerEvent::Done(a) => {
                                done = Some(Ok(*a));
                                break;
                            }
                            AnswerEvent::Error(e) => {
                                done = Some(Err(e));
                                break;
                            }
                            _ => {}
                        }
                    }
                    done.unwrap_or_else(|| Err(lotse_answer::AnswerError::Model("no result".into())))
                })?
            };
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
            let cited_n: Vec<usize> = a.sources.iter().filter(|s| s.cited).map(|s| s.n).collect();
            let unbacked_denial = !a.refused
                && !a.extractive
                && lotse_answer::check::denies(&a.answer)
                && !passage_texts
                    .iter()
                    .filter(|(n, _)| cited_n.contains(n))
                    .any(|(_, t)| lotse_answer::check::backs_denial(t));
            let judged = !q.facts.is_empty();
            let facts_correct = judged.then(|| !a.refused && all_facts_in(&a.answer, &q.facts));
            let first_sentence = lotse_text::sentence_slices(&a.answer).first().map(|s| s.to_string()).unwrap_or_default();
            let fact_first = (judged && !a.refused)
                .then(|| q.facts.iter().any(|forms| forms.iter().any(|f| fact_in(&first_sentence, f))));
            let miss = match facts_correct {
                Some(false) if !evidence_urls.iter().any(|u| q.expected_urls.contains(u)) => Some("retrieval".to_string()),
                Some(false) if !all_facts_in(&evidence, &q.facts) => Some("evidence".to_string()),
                Some(false) if a.refused => Some("model (refused)".to_string()),
                Some(false) => Some("model".to_string()),
                _ => None,
            };
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
                sources_ms,
                first_token_ms: a.timings.first_token_ms,
                total_ms: a.timings.total_ms,
                quotes: a.quotes.iter().map(|q| q.text.clone()).collect(),
                extractive: a.extractive,
                replaced: a.replaced,
                asked: a.asked.name().to_string(),
                facts: q.facts.clone(),
                facts_correct,
                fact_first,
                miss,
                prompt_tokens: a.timings.prompt_tokens,
                unbacked_denial,
                facts_in_evidence: judged.then(|| all_facts_in(&evidence, &q.facts)),
                evidence: passage_texts.iter().map(|(_, t)| t.clone()).collect(),
                answer: a.answer,
            }
        };
        if !args.json {
            eprintln!(
                "{:>3}/{} {}{} {} {:.2}/{:.3} {}",
                i + 1,
                qs.len(),
                match row.facts_correct {
                    Some(true) => "fact ok   ",
                    Some(false) => "fact MISS ",
                    None => "",
                },
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
    let fact_rows: Vec<&Row> = rows.iter().filter(|r| r.facts_correct.is_some()).collect();
    let mut by_type: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut misses: BTreeMap<String, usize> = BTreeMap::new();
    for r in &fact_rows {
        let e = by_type.entry(r.asked.clone()).or_default();
        e.0 += 1;
        e.1 += usize::from(r.facts_correct == Some(true));
        if let Some(m) = &r.miss {
            *misses.entry(m.clone()).or_default() += 1;
        }
    }
    let unbacked_denials = rows.iter().filter(|r| r.unbacked_denial).count();
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
        fact_questions: fact_rows.len(),
        facts_correct_rate: rate(fact_rows.iter().filter(|r| r.facts_correct == Some(true)).count(), fact_rows.len()),
        fact_first_rate: rate(
            fact_rows.iter().filter(|r| r.fact_first == Some(true)).count(),
            fact_rows.iter().filter(|r| r.fact_first.is_some()).count(),
        ),
        extractive_rate: rate(
            rows.iter().filter(|r| r.extractive).count(),
            rows.iter().filter(|r| !r.refused).count(),
        ),
        by_type,
        misses,
        du_form: rows.iter().filter(|r| !r.refused && lotse_answer::check::du_form(&r.answer)).count(),
        unbacked_denials,
        median_sources_ms: median(rows.iter().map(|r| r.sources_ms).collect()).unwrap_or(0),
        p90_sources_ms: p90(rows.iter().map(|r| r.sources_ms).collect()).unwrap_or(0),
        median_first_token_ms: median(rows.iter().filter_map(|r| r.first_token_ms).collect()),
        p90_first_token_ms: p90(rows.iter().filter_map(|r| r.first_token_ms).collect()),
        median_total_ms: median(rows.iter().map(|r| r.total_ms).collect()).unwrap_or(0),
        p90_total_ms: p90(rows.iter().map(|r| r.total_ms).collect()).unwrap_or(0),
        median_prompt_tokens: median(rows.iter().map(|r| r.prompt_tokens).filter(|t| *t > 0).collect()).unwrap_or(0),
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
            if report.fact_questions > 0 {
                println!(
                    "facts correct       {:.1}% of {} (fact in the first sentence {:.1}%, extractive answers {:.1}%)",
                    100.0 * report.facts_correct_rate,
                    report.fact_questions,
                    100.0 * report.fact_first_rate,
                    100.0 * report.extractive_rate
                );
                for (kind, (n, ok)) in &report.by_type {
                    println!("  {kind:<10} {ok:>3} of {n:>3}");
                }
                for (why, n) in &report.misses {
                    println!("  missed in {why}: {n}");
                }
            }
            println!("du-form answers     {}", report.du_form);
            println!("unbacked denials    {}", report.unbacked_denials);
            println!(
                "time to sources     median {} ms, p90 {} ms",
                report.median_sources_ms, report.p90_sources_ms
            );
            println!(
                "first token         median {} ms, p90 {} ms",
                report.median_first_token_ms.map_or("-".into(), |t| t.to_string()),
                report.p90_first_token_ms.map_or("-".into(), |t| t.to_string())
            );
            println!(
                "full answer         median {} ms, p90 {} ms (median prompt {} tokens)",
                report.median_total_ms, report.p90_total_ms, report.median_prompt_tokens
            );
        }
    }
    Ok(())
}

fn gate_row(answerer: &Arc<Answerer>, req: &AnswerRequest, expected: &[String], facts: &[Vec<String>]) -> Result<Row> {
    let p = answerer.prepare(req)?;
    let evidence: String = p.passages.iter().map(|x| x.text.as_str()).collect::<Vec<_>>().join("\n");
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
        sources_ms: p.retrieval_ms,
        first_token_ms: None,
        total_ms: p.retrieval_ms,
        answer: String::new(),
        quotes: p.first_quotes().into_iter().map(|q| q.text).collect(),
        extractive: false,
        replaced: None,
        asked: p.asked().name().to_string(),
        facts: facts.to_vec(),
        facts_correct: None,
        fact_first: None,
        miss: None,
        prompt_tokens: 0,
        unbacked_denial: false,
        facts_in_evidence: (!facts.is_empty()).then(|| all_facts_in(&evidence, facts)),
        evidence: p.passages.iter().map(|x| x.text.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::fact_in;

    #[test]
    fn facts_match_by_the_fixture_rule() {
        assert!(fact_in("Sie erhalten **15,00 €** je Stunde.", "15"));
        assert!(fact_in("Sie erhalten 15,00 € je Stunde.", "15 €") || fact_in("Sie erhalten 15 € je Stunde.", "15 €"));
        assert!(fact_in("Die Gebühr beträgt 15,00 €.", "15,00 €"));
        assert!(fact_in("Die Gebühr beträgt 15 Euro.", "15 €"));
        assert!(!fact_in("Die Gebühr beträgt 150 Euro.", "15"));
        assert!(!fact_in("Seit 2015 gilt das.", "15"));
        assert!(!fact_in("Es kostet 0,15 €.", "15"));
        assert!(!fact_in("Es kostet 15,50 €.", "15"));
        assert!(!fact_in("Beschlossen am 18.03.2019.", "18"));
        assert!(fact_in("Ab dem 18. Lebensjahr.", "18"));
        assert!(fact_in("in  der   ZWEITEN Klasse", "zweiten Klasse"));
    }
}
