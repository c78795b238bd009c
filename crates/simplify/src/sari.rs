//! SARI (Xu et al. 2016): how well a simplification adds, keeps and deletes n-grams compared
//! with the source and a reference, averaged over 1- to 4-grams; 0..100, higher is better.
//!
//! Single reference, lowercased word tokens; n-gram sets weighted by counts as in the
//! original implementation (keep and add: F1, delete: precision). An empty ratio (0/0) counts
//! as 1, as in the Hugging Face `sari` metric, so the reference itself scores 100.

use std::collections::HashMap;

fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '-' && c != '\'')
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn ngrams(tokens: &[String], n: usize) -> HashMap<Vec<String>, f64> {
    let mut out = HashMap::new();
    if tokens.len() >= n {
        for w in tokens.windows(n) {
            *out.entry(w.to_vec()).or_insert(0.0) += 1.0;
        }
    }
    out
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

/// Ratio with the "nothing to do" convention.
fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 { 1.0 } else { num / den }
}

fn sari_n(src: &[String], sys: &[String], reference: &[String], n: usize) -> f64 {
    let (s, c, r) = (ngrams(src, n), ngrams(sys, n), ngrams(reference, n));
    let get = |m: &HashMap<Vec<String>, f64>, k: &Vec<String>| m.get(k).copied().unwrap_or(0.0);
    // keep
    let (mut keep_good, mut keep_sys, mut keep_ref) = (0.0, 0.0, 0.0);
    // delete
    let (mut del_good, mut del_sys) = (0.0, 0.0);
    for (g, &sc) in &s {
        let kc = sc.min(get(&c, g));
        let kr = sc.min(get(&r, g));
        keep_sys += kc;
        keep_ref += kr;
        keep_good += kc.min(kr);
        let dc = sc - kc;
        let dr = sc - kr;
        del_sys += dc;
        del_good += dc.min(dr);
    }
    // add: n-grams of the output that the source lacks
    let (mut add_good, mut add_sys, mut add_ref) = (0.0, 0.0, 0.0);
    for (g, &cc) in &c {
        if get(&s, g) == 0.0 {
            add_sys += cc;
            add_good += cc.min(get(&r, g));
        }
    }
    for (g, &rc) in &r {
        if get(&s, g) == 0.0 {
            add_ref += rc;
        }
    }
    let keep = f1(ratio(keep_good, keep_sys), ratio(keep_good, keep_ref));
    let add = f1(ratio(add_good, add_sys), ratio(add_good, add_ref));
    let del = ratio(del_good, del_sys);
    (keep + add + del) / 3.0
}

/// SARI of `system` for `source` against one `reference`, 0..100.
pub fn sari(source: &str, system: &str, reference: &str) -> f64 {
    let (s, c, r) = (tokens(source), tokens(system), tokens(reference));
    let total: f64 = (1..=4).map(|n| sari_n(&s, &c, &r, n)).sum();
    100.0 * total / 4.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_scores_highest() {
        let src = "Die Gebühr wird gemäß der Satzung jährlich im Voraus erhoben.";
        let reference = "Sie zahlen die Gebühr jedes Jahr im Voraus.";
        let best = sari(src, reference, reference);
        let copy = sari(src, src, reference);
        let other = sari(src, "Hunde bellen laut.", reference);
        // SARI rewards deletion: an unrelated short output is not necessarily below a copy
        assert!(best > copy && best > other, "{best} {copy} {other}");
        assert!((best - 100.0).abs() < 1e-9 && other >= 0.0 && copy < 50.0);
    }
}
