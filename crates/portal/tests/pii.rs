//! The PII guard on its test sets: the development set (`tests/data/pii-sentences.tsv`), the
//! held-out set (`tests/data/pii-heldout.tsv`) and the issue-31 set of hard forms
//! (`tests/data/pii_sentences.jsonl`): sentence-level precision and recall, and recall per
//! kind. Run with `--nocapture` to see the figures.

use std::collections::BTreeMap;

use lotse_portal::pii::{self, PiiKind};

#[test]
fn pii_guard_precision_and_recall_on_the_test_set() {
    let data = include_str!("data/pii-sentences.tsv");
    let (mut tp, mut fp, mut fneg, mut tn) = (0usize, 0usize, 0usize, 0usize);
    let mut per_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut n = 0;
    for line in data.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (labels, sentence) = line.split_once('\t').expect("kinds<TAB>sentence");
        n += 1;
        let expected: Vec<PiiKind> = if labels == "-" {
            Vec::new()
        } else {
            labels
                .split(',')
                .map(|k| PiiKind::from_key(k).unwrap_or_else(|| panic!("unknown kind {k}")))
                .collect()
        };
        let found = pii::kinds(sentence);
        match (expected.is_empty(), found.is_empty()) {
            (false, false) => tp += 1,
            (false, true) => {
                fneg += 1;
                misses.push(format!("missed: {sentence}"));
            }
            (true, false) => {
                fp += 1;
                misses.push(format!("false alarm {found:?}: {sentence}"));
            }
            (true, true) => tn += 1,
        }
        for k in &expected {
            let e = per_kind.entry(k.key()).or_default();
            e.0 += 1;
            if found.contains(k) {
                e.1 += 1;
            }
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fneg).max(1) as f64;
    println!("PII guard on {n} sentences ({} with personal data, {} without)", tp + fneg, fp + tn);
    println!("  sentence level: precision {precision:.3}, recall {recall:.3} (tp {tp}, fp {fp}, fn {fneg}, tn {tn})");
    for (k, (total, hit)) in &per_kind {
        println!("  {k:<17} recall {hit}/{total}");
    }
    for m in &misses {
        println!("  {m}");
    }
    assert!(n >= 100, "the test set must have at least 100 sentences");
    assert!(precision >= 0.95, "precision {precision:.3} below 0.95");
    assert!(recall >= 0.95, "recall {recall:.3} below 0.95");
    let kind_hits: usize = per_kind.values().map(|v| v.1).sum();
    let kind_total: usize = per_kind.values().map(|v| v.0).sum();
    assert!(kind_hits as f64 / kind_total as f64 >= 0.9, "per-kind recall {kind_hits}/{kind_total}");
}

/// The held-out set (`tests/data/pii-heldout.tsv`): written by someone who had not read the
/// detector, labels only (1 = personal data). A fairer figure than the development set, which
/// the patterns were tuned on.
#[test]
fn pii_guard_on_the_held_out_set() {
    let data = include_str!("data/pii-heldout.tsv");
    let (mut tp, mut fp, mut fneg, mut tn) = (0usize, 0usize, 0usize, 0usize);
    let mut misses = Vec::new();
    for line in data.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (label, sentence) = line.split_once('\t').expect("label<TAB>sentence");
        let expected = label.trim() == "1";
        let found = pii::kinds(sentence);
        match (expected, !found.is_empty()) {
            (true, true) => tp += 1,
            (true, false) => {
                fneg += 1;
                misses.push(format!("missed: {sentence}"));
            }
            (false, true) => {
                fp += 1;
                misses.push(format!("false alarm {found:?}: {sentence}"));
            }
            (false, false) => tn += 1,
        }
    }
    let n = tp + fp + fneg + tn;
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fneg).max(1) as f64;
    println!("PII guard on the held-out set: {n} sentences ({} with personal data, {} without)", tp + fneg, fp + tn);
    println!("  sentence level: precision {precision:.3}, recall {recall:.3} (tp {tp}, fp {fp}, fn {fneg}, tn {tn})");
    for m in &misses {
        println!("  {m}");
    }
    assert!(n >= 100, "the held-out set must have at least 100 sentences");
    // recall matters most: a miss sends personal data out; a false alarm only keeps it local
    assert!(recall >= 0.85, "recall {recall:.3} below 0.85");
    assert!(precision >= 0.85, "precision {precision:.3} below 0.85");
}

/// The issue-31 set (`tests/data/pii_sentences.jsonl`, one `{"text", "kinds"}` object per
/// line, `kinds` empty for a clean sentence): sentences as staff type them, with the hard
/// forms (lowercase and foreign names, "Hr."/"Fr.", foreign phone numbers, lowercase IBANs,
/// street forms, file numbers) and tricky clean administrative text. Written before the
/// detectors were changed. Recall must reach 0.95; precision is reported.
#[test]
fn pii_guard_on_the_issue_31_set() {
    let data = include_str!("data/pii_sentences.jsonl");
    let (mut tp, mut fp, mut fneg, mut tn) = (0usize, 0usize, 0usize, 0usize);
    let mut per_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut notes = Vec::new();
    for (i, line) in data.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        let text = v["text"].as_str().expect("text");
        let expected: Vec<PiiKind> = v["kinds"]
            .as_array()
            .expect("kinds")
            .iter()
            .map(|k| {
                let k = k.as_str().expect("kind key");
                PiiKind::from_key(k).unwrap_or_else(|| panic!("line {}: unknown kind {k}", i + 1))
            })
            .collect();
        let found = pii::kinds(text);
        match (expected.is_empty(), found.is_empty()) {
            (false, false) => tp += 1,
            (false, true) => {
                fneg += 1;
                notes.push(format!("missed {expected:?}: {text}"));
            }
            (true, false) => {
                fp += 1;
                notes.push(format!("false alarm {found:?}: {text}"));
            }
            (true, true) => tn += 1,
        }
        for k in &expected {
            let e = per_kind.entry(k.key().to_string()).or_default();
            e.0 += 1;
            if found.contains(k) {
                e.1 += 1;
            }
        }
    }
    let n = tp + fp + fneg + tn;
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fneg).max(1) as f64;
    let mut report = vec![
        format!("PII guard on the issue-31 set: {n} sentences ({} with personal data, {} without)", tp + fneg, fp + tn),
        format!("  sentence level: recall {recall:.3}, precision {precision:.3} (tp {tp}, fp {fp}, fn {fneg}, tn {tn})"),
    ];
    for (k, (total, hit)) in &per_kind {
        report.push(format!("  {k:<17} found as that kind {hit}/{total}"));
    }
    report.extend(notes.iter().map(|m| format!("  {m}")));
    for line in &report {
        println!("{line}");
        eprintln!("{line}");
    }
    assert!(n >= 200, "the set must have at least 200 sentences, has {n}");
    assert!(recall >= 0.95, "recall {recall:.3} below 0.95");
}

/// Every form the issue lists as missed is blocked, in a sentence and alone.
#[test]
fn pii_guard_blocks_each_form_listed_in_issue_31() {
    let forms = [
        ("frau müller", PiiKind::Name),
        ("Frau Yılmaz", PiiKind::Name),
        ("Hr. Schmidt", PiiKind::Name),
        ("Fr. Weber", PiiKind::Name),
        ("+43 1 234 5678", PiiKind::Phone),
        ("+90 212 555 12 34", PiiKind::Phone),
        ("de89 3704 0044 0532 0130 00", PiiKind::Iban),
        ("Hauptstr 5", PiiKind::Address),
        ("Lange Straße 5", PiiKind::Address),
        ("Az. 31-124/2024", PiiKind::FileNumber),
    ];
    let mut failed = Vec::new();
    for (form, kind) in forms {
        for text in [form.to_string(), format!("Bitte prüfen: {form} wegen des Antrags.")] {
            let found = pii::kinds(&text);
            if !found.contains(&kind) {
                failed.push(format!("{text:?}: expected {kind:?}, found {found:?}"));
            }
        }
    }
    assert!(failed.is_empty(), "not blocked:\n{}", failed.join("\n"));
}
