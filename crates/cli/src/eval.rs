//! `lotse eval retrieval`: recall@1, recall@k and MRR over distinct source URLs.

use std::path::PathBuf;

use anyhow::{Context, Result};
use lotse_core::CollectionScope;
use lotse_index::{MatchOptions, SearchIndex, SearchRequest, distinct_urls};
use serde::{Deserialize, Serialize};

/// How many chunks are retrieved before grouping by URL.
const CANDIDATES: usize = 100;

#[derive(clap::Args)]
pub struct RetrievalArgs {
    /// JSONL file: {"question": ..., "expected_urls": ["/path/", ...]}
    #[arg(long)]
    questions: PathBuf,
    /// Origin the expected paths are joined with, e.g. http://127.0.0.1:8089
    #[arg(long)]
    site: String,
    #[arg(long, default_value = "data", env = "LOTSE_DATA")]
    data: PathBuf,
    #[arg(long, default_value_t = 5)]
    k: usize,
    #[command(flatten)]
    matching: super::MatchArgs,
    /// bm25, dense or hybrid (default: hybrid when the index has vectors and the model is there).
    #[arg(long, value_enum)]
    mode: Option<crate::runtime::ModeArg>,
    #[command(flatten)]
    models: crate::runtime::ModelArgs,
    /// Also report every combination of stemming and compound handling (BM25) and, when
    /// vectors exist, dense and hybrid side by side.
    #[arg(long)]
    ablation: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Deserialize, Clone)]
pub(crate) struct Question {
    pub question: String,
    pub expected_urls: Vec<String>,
    /// Required facts, each a list of accepted forms (`*.facts.jsonl`); absent elsewhere.
    #[serde(default)]
    pub facts: Vec<Vec<String>>,
}

#[derive(Serialize, Debug, Clone)]
pub struct RetrievalReport {
    pub mode: lotse_index::SearchMode,
    pub questions: usize,
    pub k: usize,
    pub stem: bool,
    pub compounds: bool,
    pub recall_at_1: f64,
    pub recall_at_k: f64,
    pub mrr: f64,
    pub misses: Vec<Miss>,
}

#[derive(Serialize, Debug, Clone)]
pub struct Miss {
    pub question: String,
    pub expected: Vec<String>,
    pub got: Vec<String>,
}

pub(crate) fn load(path: &PathBuf, site: &str) -> Result<Vec<Question>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read questions {}", path.display()))?;
    let site = site.trim_end_matches('/');
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut q: Question = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a question object", path.display(), i + 1))?;
        q.expected_urls = q
            .expected_urls
            .iter()
            .map(|u| {
                if u.starts_with("http") {
                    u.clone()
                } else {
                    format!("{site}{u}")
                }
            })
            .collect();
        out.push(q);
    }
    Ok(out)
}

fn evaluate(
    index: &SearchIndex,
    qs: &[Question],
    k: usize,
    options: MatchOptions,
    retrieval: &crate::runtime::Retrieval,
) -> Result<RetrievalReport> {
    let scope = CollectionScope::public_website();
    let (mut r1, mut rk, mut mrr) = (0.0, 0.0, 0.0);
    let mut misses = Vec::new();
    for q in qs {
        let qv = retrieval.query_vector(&q.question)?;
        let mut req = SearchRequest::new(&q.question, &scope);
        req.limit = CANDIDATES;
        req.options = options;
        req.mode = retrieval.mode;
        req.query_vector = qv.as_deref().map(|vector| lotse_index::QueryVector {
            model_id: retrieval.model_id(),
            vector,
        });
        let hits = index.search(&req)?;
        let urls: Vec<&str> = distinct_urls(&hits)
            .iter()
            .map(|h| h.url.as_str())
            .collect();
        let rank = urls
            .iter()
            .position(|u| q.expected_urls.iter().any(|e| e == u));
        if rank == Some(0) {
            r1 += 1.0;
        }
        match rank {
            Some(r) if r < k => rk += 1.0,
            _ => misses.push(Miss {
                question: q.question.clone(),
                expected: q.expected_urls.clone(),
                got: urls.iter().take(k).map(|s| s.to_string()).collect(),
            }),
        }
        if let Some(r) = rank {
            mrr += 1.0 / (r as f64 + 1.0);
        }
    }
    let n = qs.len().max(1) as f64;
    Ok(RetrievalReport {
        mode: retrieval.mode,
        questions: qs.len(),
        k,
        stem: options.stem,
        compounds: options.compounds,
        recall_at_1: r1 / n,
        recall_at_k: rk / n,
        mrr: mrr / n,
        misses,
    })
}

pub fn retrieval(args: RetrievalArgs) -> Result<()> {
    let index = super::open_index(&args.data)?;
    let qs = load(&args.questions, &args.site)?;
    anyhow::ensure!(
        !qs.is_empty(),
        "no questions in {}",
        args.questions.display()
    );
    let retrieval = crate::runtime::Retrieval::choose(&index, args.mode, &args.models)?;
    let mut reports = vec![evaluate(
        &index,
        &qs,
        args.k,
        args.matching.options(),
        &retrieval,
    )?];
    if args.ablation {
        let bm25 = crate::runtime::Retrieval {
            mode: lotse_index::SearchMode::Bm25,
            embedder: None,
        };
        for (stem, compounds) in [(true, true), (true, false), (false, true), (false, false)] {
            let o = MatchOptions {
                stem,
                compounds,
                ..args.matching.options()
            };
            if o != args.matching.options() || retrieval.mode != lotse_index::SearchMode::Bm25 {
                reports.push(evaluate(&index, &qs, args.k, o, &bm25)?);
            }
        }
        if let Some(e) = &retrieval.embedder {
            for mode in [
                lotse_index::SearchMode::Dense,
                lotse_index::SearchMode::Hybrid,
            ] {
                if mode != retrieval.mode {
                    let r = crate::runtime::Retrieval {
                        mode,
                        embedder: Some(e.clone()),
                    };
                    reports.push(evaluate(&index, &qs, args.k, args.matching.options(), &r)?);
                }
            }
        }
    }
    if args.json {
        let v = if args.ablation {
            serde_json::to_string_pretty(&reports)?
        } else {
            serde_json::to_string_pretty(&reports[0])?
        };
        println!("{v}");
    } else {
        println!(
            "{:<28} {:>9} {:>9} {:>7}",
            "mode",
            "recall@1",
            format!("recall@{}", args.k),
            "MRR"
        );
        for r in &reports {
            let mode = match r.mode {
                lotse_index::SearchMode::Bm25 => format!(
                    "bm25 {} {}",
                    if r.stem { "stemmed" } else { "plain" },
                    if r.compounds { "+compounds" } else { "" }
                ),
                lotse_index::SearchMode::Dense => "dense".to_owned(),
                lotse_index::SearchMode::Hybrid => "hybrid (bm25 + dense, rrf)".to_owned(),
            };
            println!(
                "{:<28} {:>9.3} {:>9.3} {:>7.3}",
                mode, r.recall_at_1, r.recall_at_k, r.mrr
            );
        }
        println!(
            "{} questions; {} misses at k={} (first mode)",
            reports[0].questions,
            reports[0].misses.len(),
            args.k
        );
    }
    Ok(())
}

/// Median of `v` (0 when empty); sorts `v`.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
