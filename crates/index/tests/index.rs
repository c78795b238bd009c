//! Integration tests of the index on a real tantivy directory: upsert, search, scope, removal.

use lotse_core::{CollectionId, CollectionScope, Page, PageRecord, Visibility};
use lotse_index::{MatchOptions, SearchIndex, SearchRequest};

/// A record of the site `http://town` (no name) with an ETag and one link, to see them round trip.
fn record(url: &str, collection: &str, visibility: Visibility) -> PageRecord {
    PageRecord {
        site: "http://town".into(),
        site_name: None,
        etag: Some("\"e1\"".into()),
        content_hash: "h".into(),
        links: vec!["http://town/b/".into()],
        ..lotse_test_support::record(url, "t", collection, visibility)
    }
}

fn page(url: &str, title: &str, body: &str) -> Page {
    lotse_test_support::page(url, title, "§ 5 Steuersatz", None, body)
}

fn search(idx: &SearchIndex, q: &str, scope: &CollectionScope) -> Vec<String> {
    idx.search(&SearchRequest {
        query: q,
        scope,
        limit: 10,
        site: None,
        options: MatchOptions::default(),
        mode: lotse_index::SearchMode::Bm25,
        query_vector: None,
    })
    .unwrap()
    .into_iter()
    .map(|h| h.url)
    .collect()
}

#[test]
fn compound_and_inflection_queries_find_the_dog_tax() {
    let dir = tempfile::tempdir().unwrap();
    let idx = SearchIndex::open(dir.path()).unwrap();
    let mut w = idx.writer().unwrap();
    let r = record("http://town/hundesteuer/", "website", Visibility::Public);
    w.upsert(
        &r,
        Some(&page(
            &r.url,
            "Hundesteuersatzung",
            "Die Hundesteuer beträgt im Kalenderjahr für jeden Hund 165,00 €.",
        )),
    )
    .unwrap();
    let r2 = record("http://town/freibad/", "website", Visibility::Public);
    w.upsert(
        &r2,
        Some(&page(
            &r2.url,
            "Badeordnung",
            "Der Eintritt ins Freibad beträgt 3 €.",
        )),
    )
    .unwrap();
    w.commit().unwrap();
    idx.reload().unwrap();

    let scope = CollectionScope::public_website();
    for q in [
        "Steuer für Hunde",
        "Hund",
        "Was kostet ein zweiter Hund?",
        "Hundesteuer",
    ] {
        assert_eq!(
            search(&idx, q, &scope).first().map(String::as_str),
            Some("http://town/hundesteuer/"),
            "{q}"
        );
    }
    let hit = &idx
        .search(&SearchRequest {
            query: "Hundesteuer",
            scope: &scope,
            limit: 1,
            site: None,
            options: MatchOptions::default(),
            mode: lotse_index::SearchMode::Bm25,
            query_vector: None,
        })
        .unwrap()[0];
    assert_eq!(hit.heading, "§ 5 Steuersatz");
    assert!(hit.deep_link.contains("#:~:text="));
    assert!(hit.snippet.contains("165,00"));
    assert_eq!(idx.stats().unwrap().pages, 2);
}

#[test]
fn private_collections_never_reach_public_queries() {
    let dir = tempfile::tempdir().unwrap();
    let idx = SearchIndex::open(dir.path()).unwrap();
    let mut w = idx.writer().unwrap();
    let secret = record(
        "http://town/intern/",
        "bauamt-intern",
        Visibility::Group("bauamt".into()),
    );
    w.upsert(
        &secret,
        Some(&page(&secret.url, "Intern", "Geheime Hundesteuer Notiz")),
    )
    .unwrap();
    w.commit().unwrap();
    idx.reload().unwrap();
    assert!(search(&idx, "Hundesteuer", &CollectionScope::public_website()).is_empty());
    assert!(search(&idx, "Hundesteuer", &CollectionScope::new([])).is_empty());
    let staff = CollectionScope::new([CollectionId("bauamt-intern".into())]);
    assert_eq!(search(&idx, "Hundesteuer", &staff), ["http://town/intern/"]);
}

#[test]
fn records_round_trip_and_removal_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let idx = SearchIndex::open(dir.path()).unwrap();
    let mut w = idx.writer().unwrap();
    let r = record("http://town/a/", "website", Visibility::Public);
    let n = w
        .upsert(&r, Some(&page(&r.url, "A", "Friedhofsgebühren")))
        .unwrap();
    assert_eq!(n, 1);
    w.put_site_state(
        "http://town",
        Some("Gemeinde Town"),
        &vec!["print".to_owned()],
    )
    .unwrap();
    w.commit().unwrap();
    idx.reload().unwrap();
    let recs = idx.page_records("http://town").unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].n_chunks, 1);
    assert_eq!(recs[0].links, ["http://town/b/"]);
    let state: Option<Vec<String>> = idx.site_state("http://town").unwrap();
    assert_eq!(state.unwrap(), ["print"]);

    // record-only update keeps the chunks
    let mut r2 = recs[0].clone();
    r2.etag = Some("\"e2\"".into());
    w.upsert(&r2, None).unwrap();
    w.commit().unwrap();
    idx.reload().unwrap();
    assert_eq!(idx.stats().unwrap().chunks, 1);
    assert_eq!(
        idx.page_records("http://town").unwrap()[0].etag.as_deref(),
        Some("\"e2\"")
    );

    w.remove("http://town/a/");
    w.commit().unwrap();
    idx.reload().unwrap();
    assert_eq!(idx.stats().unwrap(), lotse_index::IndexStats::default());
}

#[test]
fn uncommitted_changes_are_invisible_and_a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let idx = SearchIndex::open(dir.path()).unwrap();
    let mut w = idx.writer().unwrap();
    let r = record("http://town/a/", "website", Visibility::Public);
    w.upsert(&r, Some(&page(&r.url, "A", "Text"))).unwrap();
    assert!(matches!(
        idx.writer(),
        Err(lotse_index::IndexError::Locked { .. })
    ));
    drop(w); // dropped without commit: nothing lands
    idx.reload().unwrap();
    assert_eq!(idx.stats().unwrap().pages, 0);
}

#[test]
fn an_index_of_another_schema_version_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    drop(SearchIndex::open(dir.path()).unwrap());
    std::fs::write(dir.path().join("LOTSE_SCHEMA_VERSION"), "0").unwrap();
    let err = SearchIndex::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("schema version 0"), "{err}");
}

#[test]
fn a_query_naming_one_town_searches_that_towns_site() {
    let dir = tempfile::tempdir().unwrap();
    let idx = SearchIndex::open(dir.path()).unwrap();
    let mut w = idx.writer().unwrap();
    for (site, name) in [
        ("http://boll", "Gemeinde Bad Boll"),
        ("http://kn", "Stadt Konstanz"),
    ] {
        let mut r = record(&format!("{site}/hund/"), "website", Visibility::Public);
        r.site = site.into();
        r.site_name = Some(name.into());
        // the other town's page matches the words better
        let body = if site == "http://kn" {
            "Hundesteuer Hundesteuer Hundesteuer für jeden Hund"
        } else {
            "Die Steuer für einen Hund"
        };
        w.upsert(&r, Some(&page(&r.url, "Hundesteuer", body)))
            .unwrap();
        w.put_site_state(site, Some(name), &()).unwrap();
    }
    w.commit().unwrap();
    idx.reload().unwrap();
    assert_eq!(idx.site_names().unwrap().len(), 2);
    let scope = CollectionScope::public_website();
    assert_eq!(
        search(&idx, "Hundesteuer in Bad Boll", &scope),
        ["http://boll/hund/"]
    );
    assert_eq!(
        search(&idx, "Hundesteuer in Konstanz", &scope),
        ["http://kn/hund/"]
    );
    // no town named, or both: both sites
    assert_eq!(search(&idx, "Hundesteuer", &scope).len(), 2);
    assert_eq!(
        search(&idx, "Hundesteuer Konstanz oder Bad Boll", &scope).len(),
        2
    );
    // "Bad" alone does not name Bad Boll
    assert_eq!(search(&idx, "Hundesteuer Bad", &scope).len(), 2);
}

/// Files of the segments `meta.json` names, and all other segment files in the directory.
fn live_and_other_segment_files(dir: &std::path::Path) -> (usize, usize, usize) {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    let live: std::collections::HashSet<String> = meta["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["segment_id"].as_str().unwrap().replace('-', ""))
        .collect();
    let (mut in_live, mut other) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        let stem = name.split('.').next().unwrap_or("");
        // segment files are named by their 32-hex-digit id
        if stem.len() == 32 && stem.chars().all(|c| c.is_ascii_hexdigit()) {
            if live.contains(stem) {
                in_live += 1;
            } else {
                other += 1;
            }
        }
    }
    (live.len(), in_live, other)
}

#[test]
fn short_writers_finish_their_merges_and_leave_no_stray_files() {
    // one writer per town or upload, as crawls and the portal use them: each commit adds a
    // segment, and tantivy merges once eight are alike. A writer that let go of a running
    // merge left its output behind (21 GB beside a 1 GB index after 100 towns).
    let dir = tempfile::tempdir().unwrap();
    let idx = SearchIndex::open(dir.path()).unwrap();
    let body = "Die Hundesteuer beträgt für den ersten Hund 108 Euro im Jahr. ".repeat(20);
    for i in 0..40 {
        let mut w = idx.writer().unwrap();
        for j in 0..20 {
            let r = record(&format!("http://town/{i}/{j}/"), "website", Visibility::Public);
            w.upsert(&r, Some(&page(&r.url, "Hundesteuer", &body))).unwrap();
        }
        w.commit().unwrap();
        // the next writer is free at once: the drop waited for the merges, not the caller
    }
    let (segments, _, stray) = live_and_other_segment_files(dir.path());
    assert!(segments < 40, "40 commits, {segments} segments: nothing was merged");
    assert_eq!(stray, 0, "files of no live segment: merges were left running");
    idx.reload().unwrap();
    assert_eq!(idx.stats().unwrap().pages, 800);
}

#[test]
fn a_writer_dropped_or_rolled_back_with_changes_keeps_only_what_was_committed() {
    let dir = tempfile::tempdir().unwrap();
    let idx = SearchIndex::open(dir.path()).unwrap();
    let body = "Das Bürgerbüro hat montags bis freitags von 8 bis 12 Uhr geöffnet. ".repeat(10);
    let mut w = idx.writer().unwrap();
    let a = record("http://town/a/", "website", Visibility::Public);
    w.upsert(&a, Some(&page(&a.url, "A", &body))).unwrap();
    w.commit().unwrap();
    // rolled back: gone; a rollback of a clean writer changes nothing
    let b = record("http://town/b/", "website", Visibility::Public);
    w.upsert(&b, Some(&page(&b.url, "B", &body))).unwrap();
    w.rollback().unwrap();
    w.rollback().unwrap();
    // dropped uncommitted: gone (at once, without waiting for anything)
    let c = record("http://town/c/", "website", Visibility::Public);
    w.upsert(&c, Some(&page(&c.url, "C", &body))).unwrap();
    drop(w);
    idx.reload().unwrap();
    assert_eq!(idx.stats().unwrap().pages, 1);
    // the next writer's commit clears whatever the discarded changes left in the directory
    let mut w = idx.writer().unwrap();
    w.upsert(&b, Some(&page(&b.url, "B", &body))).unwrap();
    w.commit().unwrap();
    drop(w);
    let (_, _, stray) = live_and_other_segment_files(dir.path());
    assert_eq!(stray, 0, "files of discarded changes stayed");
    idx.reload().unwrap();
    assert_eq!(idx.stats().unwrap().pages, 2);
    assert!(search(&idx, "Bürgerbüro", &CollectionScope::public_website()).iter().all(|u| u != &c.url));
}
