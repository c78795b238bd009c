//! URL hygiene: normalisation, scope, tracking parameters, and crawler-trap families.

use std::collections::{BTreeSet, HashMap, HashSet};

use lotse_core::tracking::is_tracking_param;
use url::Url;

/// Normalise a URL for fetching and deduplication: no fragment, no tracking parameters, no
/// parameters learned to be irrelevant, remaining parameters sorted, no empty query.
pub fn normalize(url: &Url, ignored_params: &HashSet<String>) -> Url {
    let mut u = url.clone();
    u.set_fragment(None);
    if u.query().is_some() {
        let mut pairs: Vec<(String, String)> = u
            .query_pairs()
            .filter(|(k, _)| !is_tracking_param(k) && !ignored_params.contains(&k.to_ascii_lowercase()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.sort();
        if pairs.is_empty() {
            u.set_query(None);
        } else {
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
    }
    // ";jsessionid=..." path parameters
    if let Some(pos) = u.path().to_ascii_lowercase().find(";jsessionid=") {
        let path = u.path()[..pos].to_owned();
        u.set_path(&path);
    }
    u
}

/// Origin string of a URL, e.g. `http://127.0.0.1:8089`.
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// What the crawler may visit: the start origin plus configured extra URL prefixes.
#[derive(Debug, Clone)]
pub struct Scope {
    origin: String,
    extra_prefixes: Vec<String>,
}

impl Scope {
    pub fn new(start: &Url, extra_prefixes: &[Url]) -> Scope {
        Scope {
            origin: origin(start),
            extra_prefixes: extra_prefixes
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
        }
    }

    pub fn contains(&self, url: &Url) -> bool {
        matches!(url.scheme(), "http" | "https")
            && (origin(url) == self.origin
                || self
                    .extra_prefixes
                    .iter()
                    .any(|p| url.as_str().starts_with(p.as_str())))
    }
}

/// Why a URL was not followed although it is in scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapReason {
    /// Too many variants of one path that differ only in query values (calendars, filters).
    QueryFamily,
    /// A path segment repeats (relative-link loops like `/a/b/a/b/a/b/`).
    RepeatedSegments,
    /// Absurdly long URL or path.
    TooLong,
}

/// Detects endless URL families by a general rule: URLs with the same path and the same
/// query parameter *names* form a family; only `max_variants` members are crawled. A calendar
/// whose every month links the next is such a family, and so is a faceted search.
#[derive(Debug, Default)]
pub struct TrapGuard {
    max_variants: usize,
    families: HashMap<String, usize>,
}

impl TrapGuard {
    pub fn new(max_variants: usize) -> TrapGuard {
        TrapGuard {
            max_variants,
            families: HashMap::new(),
        }
    }

    /// Admit a (normalised, not yet seen) URL, or say why not.
    pub fn admit(&mut self, url: &Url) -> Result<(), TrapReason> {
        if url.as_str().len() > 2000 || url.path().len() > 1000 {
            return Err(TrapReason::TooLong);
        }
        let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for s in &segments {
            let c = counts.entry(s).or_default();
            *c += 1;
            if *c >= 3 {
                return Err(TrapReason::RepeatedSegments);
            }
        }
        if url.query().is_none() {
            return Ok(());
        }
        let names: BTreeSet<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        let key = format!(
            "{}|{}",
            url.path(),
            names.into_iter().collect::<Vec<_>>().join("&")
        );
        let n = self.families.entry(key).or_default();
        if *n >= self.max_variants {
            return Err(TrapReason::QueryFamily);
        }
        *n += 1;
        Ok(())
    }
}

/// If `canonical` equals `fetched` without some query parameters, those parameters do not
/// change content: return their names (e.g. `print` for `?print=1`).
pub fn params_dropped_by_canonical(fetched: &Url, canonical: &Url) -> Vec<String> {
    if fetched.query().is_none()
        || origin(fetched) != origin(canonical)
        || fetched.path() != canonical.path()
    {
        return Vec::new();
    }
    let kept: HashSet<(String, String)> = canonical
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let fetched_pairs: Vec<(String, String)> = fetched
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // every canonical parameter must be present in the fetched URL
    if !kept.iter().all(|p| fetched_pairs.contains(p)) {
        return Vec::new();
    }
    let mut dropped: Vec<String> = fetched_pairs
        .into_iter()
        .filter(|p| !kept.contains(p))
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    dropped.sort();
    dropped.dedup();
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn normalisation_drops_tracking_fragments_and_sorts() {
        let none = HashSet::new();
        assert_eq!(
            normalize(&u("http://x/a/?utm_source=nl&b=2&a=1#top"), &none).as_str(),
            "http://x/a/?a=1&b=2"
        );
        assert_eq!(
            normalize(&u("http://x/a/?fbclid=1"), &none).as_str(),
            "http://x/a/"
        );
        let learned: HashSet<String> = ["print".to_owned()].into();
        assert_eq!(
            normalize(&u("http://x/a/?print=1"), &learned).as_str(),
            "http://x/a/"
        );
        assert_eq!(
            normalize(&u("http://x/a;jsessionid=ABC"), &none).as_str(),
            "http://x/a"
        );
    }

    #[test]
    fn calendar_family_is_bounded() {
        let mut g = TrapGuard::new(5);
        let mut admitted = 0;
        for m in 0..100 {
            if g.admit(&u(&format!("http://x/kalender/?monat=2026-{m:03}")))
                .is_ok()
            {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 5);
        // other families are unaffected
        assert!(g.admit(&u("http://x/kalender/?jahr=2026")).is_ok());
        assert!(g.admit(&u("http://x/kalender/")).is_ok());
        assert_eq!(
            g.admit(&u("http://x/a/b/a/b/a/b/")),
            Err(TrapReason::RepeatedSegments)
        );
    }

    #[test]
    fn learns_ignorable_params_from_canonical() {
        assert_eq!(
            params_dropped_by_canonical(&u("http://x/a/?print=1"), &u("http://x/a/")),
            ["print"]
        );
        assert!(params_dropped_by_canonical(&u("http://x/a/?id=1"), &u("http://x/b/")).is_empty());
        assert!(
            params_dropped_by_canonical(&u("http://x/a/?id=1"), &u("http://x/a/?id=2")).is_empty()
        );
    }

    #[test]
    fn scope_is_origin_plus_prefixes() {
        let s = Scope::new(
            &u("http://town:8089/"),
            &[u("http://files.town/ortsrecht/")],
        );
        assert!(s.contains(&u("http://town:8089/x")));
        assert!(!s.contains(&u("http://town:8090/x")));
        assert!(s.contains(&u("http://files.town/ortsrecht/a.pdf")));
        assert!(!s.contains(&u("http://files.town/other/")));
        assert!(!s.contains(&u("mailto:a@b.de")));
    }
}
