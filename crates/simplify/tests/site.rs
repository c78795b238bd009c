//! The rewrite pipeline over every page of the bad-boll fixture site (crawled over loopback
//! into a real tantivy index), with fake generators: one that rewrites faithfully (splits
//! sentences at commas) and one that changes numbers. Whatever the model does, no block is
//! lost or reordered and every block reported as simplified keeps its facts. The real model
//! is exercised in `crates/cli/tests/models_e2e.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lotse_core::{Block, CollectionScope, DocKind, Page};
use lotse_crawler::{CrawlConfig, NoProgress as NoCrawlProgress, crawl};
use lotse_index::SearchIndex;
use lotse_inference::{CancelToken, ModelInfo};
use lotse_simplify::{
    BlockStatus, Glossary, LABEL, LegalTexts, NoProgress, ReviewNote, ReviewStatus, Simplifier,
    facts,
};
use lotse_test_support::{FakeChattySplittingRewriter, FakeNumberChangingRewriter};
use lotse_testsite::SiteServer;
use url::Url;

fn fixtures() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures"
    ))
    .to_owned()
}

fn info(id: &str) -> ModelInfo {
    ModelInfo {
        id: id.into(),
        external: false,
        context_len: 4096,
    }
}

fn crawl_bad_boll(dir: &Path) -> (SiteServer, SearchIndex) {
    let site = SiteServer::start(fixtures().join("sites/bad-boll")).unwrap();
    let index = SearchIndex::open(dir).unwrap();
    let mut cfg = CrawlConfig::new(Url::parse(&format!("{}/", site.origin())).unwrap());
    cfg.delay = Duration::ZERO;
    cfg.concurrency = 4;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(crawl(&cfg, &index, &NoCrawlProgress)).unwrap();
    (site, index)
}

#[test]
fn every_page_keeps_structure_and_facts_whatever_the_model_does() {
    let tmp = tempfile::tempdir().unwrap();
    let (site, index) = crawl_bad_boll(&tmp.path().join("index"));
    let scope = CollectionScope::public_website();
    let records = index.page_records(&site.origin()).unwrap();
    let pages: Vec<(String, Page)> = records
        .iter()
        .filter(|r| r.indexed && r.kind == DocKind::Html && r.n_chunks > 0)
        .map(|r| {
            let (rec, page) = index
                .page(&r.url, &scope)
                .unwrap()
                .expect("indexed page has content");
            (rec.content_hash, page)
        })
        .collect();
    assert!(pages.len() >= 30, "only {} HTML pages", pages.len());

    let faithful = Simplifier::new(
        Arc::new(FakeChattySplittingRewriter(info("fake-splitting"))),
        Glossary::default_terms(),
    );
    let lying = Simplifier::new(
        Arc::new(FakeNumberChangingRewriter(info("fake-number-changing"))),
        Glossary::default_terms(),
    );
    let (mut gain, mut simplified, mut not_simplified, mut with_digits) = (0.0, 0, 0, 0);
    for (hash, page) in &pages {
        let good = faithful
            .simplify(page, hash, &CancelToken::new(), &NoProgress)
            .unwrap();
        let bad = lying
            .simplify(page, hash, &CancelToken::new(), &NoProgress)
            .unwrap();
        for r in [&good, &bad] {
            assert!(
                r.keeps_structure_of(page),
                "{}: blocks lost or reordered",
                page.url
            );
            assert!(
                r.fact_violations().is_empty(),
                "{}: {:?}",
                page.url,
                r.fact_violations()
            );
            assert_eq!(r.label, LABEL);
            assert!(
                r.html.contains("KI-generiert")
                    && r.html.contains(&format!("href=\"{}\"", page.url))
            );
            for b in &r.blocks {
                match b.status {
                    BlockStatus::NotSimplified => assert_eq!(b.simplified, b.original),
                    _ => {
                        let c = facts::check(&b.original.text(), &b.simplified.text());
                        assert!(
                            c.ok(),
                            "{} block {}: {c:?}\n{}\n->\n{}",
                            page.url,
                            b.index,
                            b.original.text(),
                            b.simplified.text()
                        );
                    }
                }
            }
        }
        gain += good.readability.flesch_gain;
        simplified += good.summary.simplified;
        // every unit with a 1 in it fails for the lying model; units without digits pass
        for b in &bad.blocks {
            if b.status == BlockStatus::NotSimplified {
                not_simplified += 1;
                assert!(!b.problems.is_empty());
            }
            // enumerators such as "(1)" are structure and never reach the model
            let text = b.original.text();
            let body = match text.strip_prefix('(').and_then(|t| t.split_once(") ")) {
                Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) => rest.to_string(),
                _ => text.clone(),
            };
            if matches!(b.original, Block::Paragraph { .. }) && body.contains('1') {
                with_digits += 1;
                assert_ne!(b.status, BlockStatus::Simplified, "{}", b.original.text());
            }
        }
    }
    // the statutes (and only they) are legal texts, whose rewrites a town may review first;
    // the environmental mission statement under /ortsrecht/ binds nobody
    let wrong: Vec<&str> = pages
        .iter()
        .filter(|(_, page)| {
            let statute = page.url.contains("/ortsrecht/")
                && !page.url.ends_with("/ortsrecht/")
                && !page.url.contains("leitbild");
            lotse_simplify::is_legal_text(page) != statute
        })
        .map(|(_, page)| page.title.as_str())
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
    assert!(simplified > 50, "{simplified}");
    assert!(
        with_digits > 10 && not_simplified >= 10,
        "{with_digits} {not_simplified}"
    );
    // splitting at commas shortens sentences: the pipeline measures a gain
    assert!(
        gain / pages.len() as f64 > 0.5,
        "{}",
        gain / pages.len() as f64
    );
}

/// (What staff decide on a stored rewrite: `lotse-server`'s tests of its rewrite store.)
#[test]
fn a_legal_text_waits_for_review_or_stays_with_the_rules() {
    let statute = |fee: &str| Page {
        url: "http://127.0.0.1:1/ortsrecht/hundesteuer/".into(),
        title: "Satzung über die Erhebung der Hundesteuer".into(),
        kind: DocKind::Html,
        lang: None,
        modified: None,
        blocks: vec![
            Block::Heading {
                level: 2,
                text: "§ 5 Steuersatz".into(),
                anchor: None,
            },
            Block::Paragraph {
                text: format!(
                    "(1) Die Steuer beträgt im Kalenderjahr für den ersten Hund {fee} €, sie ist gem. § 7 Abs. 2 am 1. Juli fällig, wenn der Hund älter als drei Monate ist."
                ),
            },
        ],
    };
    let model = || Arc::new(FakeChattySplittingRewriter(info("fake-splitting")));
    let s = Simplifier::new(model(), Glossary::default_terms());
    assert_eq!(s.legal_texts(), LegalTexts::Review, "review is the default");
    let page = statute("120,00");
    let full = s
        .simplify(&page, "h1", &CancelToken::new(), &NoProgress)
        .unwrap();
    assert!(full.legal_text && full.has_model_rewrite());
    // what citizens see meanwhile: the deterministic pass, with the note, no model call
    let rules = s.simplify_rules_only(&page, "h1").unwrap();
    assert!(!rules.has_model_rewrite());
    assert!(rules.blocks.iter().all(|b| b.status == BlockStatus::RulesOnly));
    assert!(rules.text.contains("Paragraf 7 Absatz 2"), "{}", rules.text);
    let shown = rules.with_review(ReviewNote::rules_only(ReviewStatus::Pending));
    assert!(shown.html.contains("data-review=\"pending\"") && shown.html.contains("KI-generiert"));
    assert!(shown.text.contains("Verwaltung"));

    // "rules": the model never sees a legal text, but still rewrites other pages
    let r = Simplifier::new(model(), Glossary::default_terms()).with_legal_texts(LegalTexts::Rules);
    assert_ne!(r.rules_version(), s.rules_version());
    let out = r.simplify(&page, "h1", &CancelToken::new(), &NoProgress).unwrap();
    assert!(!out.has_model_rewrite());
    let mut other = statute("120,00");
    other.title = "Hundesteuer".into();
    other.blocks.remove(0);
    let out = r.simplify(&other, "h3", &CancelToken::new(), &NoProgress).unwrap();
    assert!(!out.legal_text && out.has_model_rewrite());
}
