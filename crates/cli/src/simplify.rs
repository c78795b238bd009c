//! `lotse simplify` (one page, or every page without a current rewrite) and the
//! plain-language evaluations: `lotse eval simplify` (SARI, readability gain and fact
//! preservation on original/simplification pairs) and `lotse eval readability` (Spearman
//! correlation of the readability formulas with human ratings).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use lotse_core::{Block, CollectionId, CollectionScope, DocKind, Page};
use lotse_inference::CancelToken;
use lotse_simplify::{NoProgress, Simplifier, readability, sari};
use serde::Serialize;

use crate::runtime::{self, EngineArgs, ModelArgs};
use crate::serve::{ConfigArgs, apply_config, open_rewrite_store};

#[derive(clap::Args)]
pub struct SimplifyArgs {
    /// Page to rewrite (a URL of a crawled site); omit with --all.
    pub url: Option<String>,
    /// Rewrite every indexed HTML page that has no current rewrite (what the server does in
    /// the background).
    #[arg(long)]
    pub all: bool,
    /// With --all: only this site (origin).
    #[arg(long)]
    pub site: Option<String>,
    /// With --all: at most this many pages.
    #[arg(long)]
    pub limit: Option<usize>,
    /// With --all: an evenly spread sample of this many pages; the summary estimates the time
    /// for all pages from the sample's seconds per model unit.
    #[arg(long)]
    pub sample: Option<usize>,
    /// Rewrite even when a current rewrite is stored, asking the model again for every unit
    /// (the unit cache is neither read nor written).
    #[arg(long)]
    pub force: bool,
    /// Print the HTML fragment instead of the plain text.
    #[arg(long)]
    pub html: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub models: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The configured glossary and the generator (loaded last: it takes seconds).
fn simplifier(
    config: &lotse_server::Config,
    models: &ModelArgs,
    engine: &EngineArgs,
) -> Result<Simplifier> {
    let glossary = config.simplify.glossary().map_err(anyhow::Error::msg)?;
    let rules_only = config.simplify.rules_only().map_err(anyhow::Error::msg)?;
    let generator = runtime::load_generator(models, engine)?;
    Ok(Simplifier::new(generator, glossary)
        .with_rules_only(rules_only)
        .with_legal_texts(config.simplify.legal_texts))
}

#[derive(Debug, Default, Serialize)]
struct AllSummary {
    pages: usize,
    pages_already_cached: usize,
    blocks: usize,
    simplified: usize,
    partial: usize,
    rules_only: usize,
    not_simplified: usize,
    units: usize,
    units_rewritten: usize,
    retries: usize,
    /// Units whose outcome came from the unit cache (no model call).
    units_cached: usize,
    /// Facts of blocks reported as simplified that differ from the original (must be 0).
    fact_violations: usize,
    /// Blocks missing or out of order against the original (must be 0).
    structure_violations: usize,
    flesch_before_mean: f64,
    flesch_after_mean: f64,
    flesch_gain_mean: f64,
    wstf1_before_mean: f64,
    wstf1_after_mean: f64,
    /// Mean Flesch gain over the pages that had text for the model (at least one unit):
    /// pages of headings and short items alone can only gain from the rules.
    pages_with_units: usize,
    flesch_gain_mean_pages_with_units: f64,
    /// Flesch (Amstad) of all pages' text taken as one text, before and after.
    flesch_all_text_before: f64,
    flesch_all_text_after: f64,
    seconds: f64,
    seconds_per_page_median: f64,
    /// The rewrite time of every page of this run as stored with its result (pages from the
    /// store included): the pre-generation time of these pages, even over resumed runs.
    generation_seconds_total: f64,
    /// Pages --all would rewrite without --limit/--sample, and their model units.
    pages_in_scope: usize,
    units_in_scope: usize,
    /// Seconds per model unit in this run (rewritten pages only) times `units_in_scope`: the
    /// pre-generation time for the whole scope on this machine.
    estimated_seconds_all: f64,
}

/// Units rewritten so far, on a progress bar (stderr, terminals only).
struct UnitBar(indicatif::ProgressBar);

impl lotse_simplify::Progress for UnitBar {
    fn before_unit(&self, done: usize, total: usize) {
        self.0.set_length(total as u64);
        self.0.set_position(done as u64);
    }
}

fn unit_bar() -> UnitBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} parts {wide_bar} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    UnitBar(bar)
}

pub fn run(mut args: SimplifyArgs) -> Result<()> {
    if args.url.is_some() == args.all {
        bail!("give a page URL or --all");
    }
    let config = args.config.load()?;
    apply_config(&mut args.models, &mut args.engine, &config);
    let data = args.config.data_dir(&config);
    let index = crate::open_index(&data)?;
    let store = Arc::new(open_rewrite_store(&config, &data)?);
    let scope = CollectionScope::public_website();
    let urls: Vec<String> = match &args.url {
        Some(u) => vec![u.clone()],
        None => {
            let sites = match &args.site {
                Some(s) => vec![s.trim_end_matches('/').to_string()],
                None => index.sites()?,
            };
            let mut urls = Vec::new();
            for site in sites {
                for r in index.page_records(&site)? {
                    if r.indexed && r.kind == DocKind::Html && r.n_chunks > 0 && r.collection == CollectionId::website() {
                        urls.push(r.url);
                    }
                }
            }
            urls
        }
    };
    // the whole scope, for the estimate of a full pre-generation
    let mut units_in_scope = 0;
    if args.all {
        for url in &urls {
            if let Some((_, page)) = index.page(url, &scope)? {
                units_in_scope += lotse_simplify::model_units(
                    &config.simplify.rules_only,
                    config.simplify.legal_texts,
                    &page,
                );
            }
        }
    }
    let pages_in_scope = urls.len();
    let mut urls = urls;
    if let Some(n) = args.sample.filter(|n| *n > 0 && *n < urls.len()) {
        let step = urls.len() as f64 / n as f64;
        urls = (0..n).map(|i| urls[(i as f64 * step) as usize].clone()).collect();
    }
    urls.truncate(args.limit.unwrap_or(usize::MAX));
    let mut pages = Vec::with_capacity(urls.len());
    for url in &urls {
        pages.push(index.page(url, &scope)?.with_context(|| {
            format!("{url} is not a page of the index (crawl the site first, or check the address)")
        })?);
    }
    let simplifier = simplifier(&config, &args.models, &args.engine)?;
    // --force asks the model again for every unit; otherwise unchanged units of a changed
    // page come from the unit cache
    let simplifier = if args.force { simplifier } else { simplifier.with_unit_cache(store.clone()) };
    let started = Instant::now();
    let mut summary = AllSummary::default();
    let mut results = Vec::new();
    let mut page_secs = Vec::new();
    let mut rewritten_units = 0;
    let (mut all_before, mut all_after) = (Vec::new(), Vec::new());
    for (i, (url, (record, page))) in urls.iter().zip(pages).enumerate() {
        let key = simplifier.cache_key(&record.content_hash);
        let t = Instant::now();
        let result = match (args.force, store.get(&key)?) {
            (false, Some(r)) => {
                summary.pages_already_cached += 1;
                r
            }
            _ => {
                let bar = unit_bar();
                let r = simplifier
                    .simplify(&page, &record.content_hash, &CancelToken::new(), &bar)
                    .with_context(|| format!("cannot rewrite {url}"))?;
                bar.0.finish_and_clear();
                store.put(&key, &r)?;
                page_secs.push(t.elapsed().as_secs_f64());
                // units the model worked on in this run (not those from the unit cache)
                rewritten_units += r.summary.units.saturating_sub(r.summary.units_cached);
                r
            }
        };
        if !result.keeps_structure_of(&page) {
            summary.structure_violations += 1;
        }
        let violations = result.fact_violations();
        summary.fact_violations += violations.len();
        for v in &violations {
            tracing::error!(url, "rewrite changed a fact: {v}");
        }
        let s = &result.summary;
        eprintln!(
            "[{}/{}] {url}: {} blocks ({} simplified, {} partly, {} rules only, {} not simplified), Flesch {:.1} -> {:.1}, {:.0} s",
            i + 1,
            urls.len(),
            s.blocks,
            s.simplified,
            s.partial,
            s.rules_only,
            s.not_simplified,
            result.readability.before.flesch_amstad,
            result.readability.after.flesch_amstad,
            t.elapsed().as_secs_f64()
        );
        summary.pages += 1;
        summary.blocks += s.blocks;
        summary.simplified += s.simplified;
        summary.partial += s.partial;
        summary.rules_only += s.rules_only;
        summary.not_simplified += s.not_simplified;
        summary.units += s.units;
        summary.units_rewritten += s.units_rewritten;
        summary.retries += s.retries;
        summary.units_cached += s.units_cached;
        summary.flesch_before_mean += result.readability.before.flesch_amstad;
        summary.flesch_after_mean += result.readability.after.flesch_amstad;
        summary.wstf1_before_mean += result.readability.before.wstf1;
        summary.wstf1_after_mean += result.readability.after.wstf1;
        summary.generation_seconds_total += result.duration_ms as f64 / 1000.0;
        if s.units > 0 {
            summary.pages_with_units += 1;
            summary.flesch_gain_mean_pages_with_units += result.readability.flesch_gain;
        }
        for b in &result.blocks {
            all_before.push(b.original.text());
            all_after.push(b.simplified.text());
        }
        results.push(result);
    }
    let n = summary.pages.max(1) as f64;
    summary.flesch_before_mean /= n;
    summary.flesch_after_mean /= n;
    summary.wstf1_before_mean /= n;
    summary.wstf1_after_mean /= n;
    summary.flesch_gain_mean = summary.flesch_after_mean - summary.flesch_before_mean;
    summary.flesch_gain_mean_pages_with_units /= summary.pages_with_units.max(1) as f64;
    summary.flesch_all_text_before =
        lotse_simplify::readability::readability(&all_before.join("\n\n")).flesch_amstad;
    summary.flesch_all_text_after =
        lotse_simplify::readability::readability(&all_after.join("\n\n")).flesch_amstad;
    summary.seconds = started.elapsed().as_secs_f64();
    let rewrite_secs: f64 = page_secs.iter().sum();
    summary.seconds_per_page_median = crate::eval::median(&mut page_secs);
    summary.pages_in_scope = pages_in_scope;
    summary.units_in_scope = units_in_scope;
    if rewritten_units > 0 {
        summary.estimated_seconds_all = rewrite_secs / rewritten_units as f64 * units_in_scope as f64;
    }
    if args.all {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            println!(
                "{} pages ({} from the store), {} blocks: {} simplified, {} partly, {} rules only, {} not simplified",
                summary.pages, summary.pages_already_cached, summary.blocks, summary.simplified, summary.partial, summary.rules_only, summary.not_simplified
            );
            println!(
                "units rewritten {} of {} ({} retries, {} from the unit cache); fact violations {}; structure violations {}",
                summary.units_rewritten, summary.units, summary.retries, summary.units_cached, summary.fact_violations, summary.structure_violations
            );
            println!(
                "Flesch (Amstad) mean {:.1} -> {:.1} (gain {:+.1}); WSTF1 {:.1} -> {:.1}; {:.0} s in all, median {:.0} s per rewritten page",
                summary.flesch_before_mean, summary.flesch_after_mean, summary.flesch_gain_mean, summary.wstf1_before_mean, summary.wstf1_after_mean, summary.seconds, summary.seconds_per_page_median
            );
            println!(
                "pages with text for the model: {}, their Flesch gain mean {:+.1}; all pages' text as one: Flesch {:.1} -> {:.1}",
                summary.pages_with_units, summary.flesch_gain_mean_pages_with_units, summary.flesch_all_text_before, summary.flesch_all_text_after
            );
            println!(
                "rewrite time of these pages as stored with their results: {:.0} s ({:.1} h)",
                summary.generation_seconds_total,
                summary.generation_seconds_total / 3600.0
            );
            if summary.estimated_seconds_all > 0.0 {
                println!(
                    "all {} pages ({} model units): about {:.1} h on this machine",
                    summary.pages_in_scope,
                    summary.units_in_scope,
                    summary.estimated_seconds_all / 3600.0
                );
            }
        }
    } else if let Some(r) = results.first() {
        if args.json {
            println!("{}", serde_json::to_string_pretty(r)?);
        } else if args.html {
            print!("{}", r.html);
        } else {
            print!("{}", r.text);
        }
    }
    if summary.fact_violations > 0 || summary.structure_violations > 0 {
        bail!(
            "{} fact and {} structure violations (see the log)",
            summary.fact_violations,
            summary.structure_violations
        );
    }
    Ok(())
}

/// Read a CSV file with a header row into maps from column name to value.
fn read_csv(path: &Path) -> Result<Vec<std::collections::HashMap<String, String>>> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let headers: Vec<String> = r.headers()?.iter().map(|h| h.trim().to_string()).collect();
    let mut out = Vec::new();
    for (i, row) in r.records().enumerate() {
        let row = row.with_context(|| format!("{} row {}", path.display(), i + 2))?;
        out.push(
            headers
                .iter()
                .cloned()
                .zip(row.iter().map(str::to_string))
                .collect(),
        );
    }
    Ok(out)
}

#[derive(clap::Args)]
pub struct ReadabilityArgs {
    /// CSV with a `Sentence` column and human ratings (`MOS_Complexity`, ...), like
    /// TextComplexityDE's ratings file.
    #[arg(long)]
    pub ratings: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct Correlation {
    pub measure: &'static str,
    pub rating: String,
    pub spearman: f64,
    pub n: usize,
}

/// Spearman correlation of each formula with each rating column.
pub fn readability_correlations(path: &Path) -> Result<Vec<Correlation>> {
    let rows = read_csv(path)?;
    let ratings = ["MOS_Complexity", "MOS_Understandability", "MOS_Lexical_difficulty"];
    let mut out = Vec::new();
    for rating in ratings {
        let mut xs: Vec<[f64; 3]> = Vec::new();
        let mut ys = Vec::new();
        for row in &rows {
            let (Some(s), Some(y)) = (row.get("Sentence"), row.get(rating).and_then(|v| v.trim().parse::<f64>().ok())) else {
                continue;
            };
            let r = readability::readability(s);
            if r.words == 0 {
                continue;
            }
            xs.push([r.flesch_amstad, r.wstf1, r.lix]);
            ys.push(y);
        }
        if ys.is_empty() {
            continue;
        }
        for (i, measure) in ["flesch_amstad", "wstf1", "lix"].into_iter().enumerate() {
            let col: Vec<f64> = xs.iter().map(|x| x[i]).collect();
            out.push(Correlation {
                measure,
                rating: rating.to_string(),
                spearman: readability::spearman(&col, &ys).unwrap_or(f64::NAN),
                n: ys.len(),
            });
        }
    }
    if out.is_empty() {
        bail!("{}: no rows with a Sentence and a MOS_* rating", path.display());
    }
    Ok(out)
}

pub fn eval_readability(args: ReadabilityArgs) -> Result<()> {
    let out = readability_correlations(&args.ratings)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("Spearman correlation with the human ratings (n = {}):", out[0].n);
        println!("{:<24} {:>14} {:>8} {:>8}", "rating", "flesch_amstad", "wstf1", "lix");
        for chunk in out.chunks(3) {
            println!(
                "{:<24} {:>14.3} {:>8.3} {:>8.3}",
                chunk[0].rating, chunk[0].spearman, chunk[1].spearman, chunk[2].spearman
            );
        }
        println!("(Flesch is higher for easier text, so a negative value means it agrees.)");
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct EvalSimplifyArgs {
    /// CSV with `original` and `simplification` columns (DEplain-style pairs).
    #[arg(long)]
    pub pairs: PathBuf,
    /// Only the first N pairs.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub models: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Default, Serialize)]
struct SimplifyEval {
    pairs: usize,
    /// SARI of Lotse's output against the reference (0..100).
    sari: f64,
    /// SARI of copying the original unchanged (the baseline any rewrite must beat).
    sari_copy: f64,
    /// SARI of the deterministic pass alone.
    sari_rules_only: f64,
    flesch_original: f64,
    flesch_lotse: f64,
    flesch_reference: f64,
    flesch_gain_lotse: f64,
    flesch_gain_reference: f64,
    /// Units the model rewrote and that passed every check / units given to the model.
    units_rewritten: usize,
    units: usize,
    /// Outputs whose facts differ from the original (must be 0).
    fact_violations: usize,
    seconds_per_pair_median: f64,
    /// How strict the checks are: the human references of all rows of the file that a unit
    /// check would refuse as rewrites of their originals, and those refused for a lost or
    /// added negation or limit.
    references: usize,
    references_failing_checks: usize,
    references_failing_polarity: usize,
}

pub fn eval_simplify(mut args: EvalSimplifyArgs) -> Result<()> {
    let config = args.config.load()?;
    apply_config(&mut args.models, &mut args.engine, &config);
    let mut rows = read_csv(&args.pairs)?;
    rows.retain(|r| r.get("original").is_some_and(|o| !o.trim().is_empty()) && r.get("simplification").is_some());
    let mut e = SimplifyEval::default();
    for row in &rows {
        let (original, reference) = (row["original"].trim(), row["simplification"].trim());
        e.references += 1;
        e.references_failing_checks += usize::from(lotse_simplify::unit_problem(original, reference).is_some());
        e.references_failing_polarity += usize::from(lotse_simplify::polarity::problem(original, reference).is_some());
    }
    rows.truncate(args.limit.unwrap_or(usize::MAX));
    anyhow::ensure!(!rows.is_empty(), "{}: no rows with original and simplification", args.pairs.display());
    let simplifier = simplifier(&config, &args.models, &args.engine)?;
    let mut secs = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let original = row["original"].trim();
        let reference = row["simplification"].trim();
        let page = Page {
            url: format!("eval:{i}"),
            title: String::new(),
            kind: DocKind::Html,
            lang: Some("de".into()),
            modified: None,
            blocks: vec![Block::Paragraph { text: original.to_string() }],
        };
        let t = Instant::now();
        let r = simplifier.simplify(&page, "eval", &CancelToken::new(), &NoProgress)?;
        secs.push(t.elapsed().as_secs_f64());
        let output = r.blocks[0].simplified.text().replace('\n', " ");
        let rules_only = lotse_simplify::rules::expand(original);
        e.sari += sari::sari(original, &output, reference);
        e.sari_copy += sari::sari(original, original, reference);
        e.sari_rules_only += sari::sari(original, &rules_only, reference);
        e.flesch_original += readability::readability(original).flesch_amstad;
        e.flesch_lotse += readability::readability(&output).flesch_amstad;
        e.flesch_reference += readability::readability(reference).flesch_amstad;
        e.units += r.summary.units;
        e.units_rewritten += r.summary.units_rewritten;
        e.fact_violations += r.fact_violations().len();
        e.pairs += 1;
        eprintln!(
            "[{}/{}] SARI {:.1}, Flesch {:.0} -> {:.0} (reference {:.0})",
            i + 1,
            rows.len(),
            sari::sari(original, &output, reference),
            readability::readability(original).flesch_amstad,
            readability::readability(&output).flesch_amstad,
            readability::readability(reference).flesch_amstad
        );
    }
    let n = e.pairs as f64;
    for v in [
        &mut e.sari,
        &mut e.sari_copy,
        &mut e.sari_rules_only,
        &mut e.flesch_original,
        &mut e.flesch_lotse,
        &mut e.flesch_reference,
    ] {
        *v /= n;
    }
    e.flesch_gain_lotse = e.flesch_lotse - e.flesch_original;
    e.flesch_gain_reference = e.flesch_reference - e.flesch_original;
    e.seconds_per_pair_median = crate::eval::median(&mut secs);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        println!(
            "{} pairs: SARI {:.1} (copying the original: {:.1}, rules only: {:.1})",
            e.pairs, e.sari, e.sari_copy, e.sari_rules_only
        );
        println!(
            "Flesch (Amstad): original {:.1}, Lotse {:.1} ({:+.1}), reference {:.1} ({:+.1})",
            e.flesch_original, e.flesch_lotse, e.flesch_gain_lotse, e.flesch_reference, e.flesch_gain_reference
        );
        println!(
            "units rewritten {} of {}; fact violations {}; median {:.1} s per pair",
            e.units_rewritten, e.units, e.fact_violations, e.seconds_per_pair_median
        );
        println!(
            "references the checks would refuse: {} of {} ({} for a negation or limit)",
            e.references_failing_checks, e.references, e.references_failing_polarity
        );
    }
    if e.fact_violations > 0 {
        bail!("{} outputs changed a fact", e.fact_violations);
    }
    Ok(())
}
