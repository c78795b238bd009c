//! Backup, restore and `lotse index rebuild` with the real binary on real files (issue 31.6):
//! what a crawl cannot bring back (uploads with their originals, approved rewrites, ratings)
//! survives losing the data directory, and an index schema change keeps every upload.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use lotse_core::{Block, CollectionScope, DocKind, Page};
use lotse_index::{SearchIndex, SearchRequest};
use lotse_inference::{CancelToken, ChatMessage, Generation, GenerationParams, Generator, ModelInfo, StopReason};
use lotse_portal::auth::{Owner, Role};
use lotse_portal::store::{Store, Upload};
use lotse_simplify::{Glossary, ReviewStatus, Simplifier};

const CANARY: &str = "Sicherungswort-4711";

fn lotse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lotse"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("LOTSE_MODEL_CACHE", "/nonexistent/lotse-model-cache")
        .env_remove("LOTSE__PORTAL__DATABASE")
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn failed(o: &Output) -> String {
    assert!(!o.status.success(), "should fail: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Never called: the rewrites here are the rules pass only (a fake, as its name says).
struct FakeUnusedGenerator(ModelInfo);

impl Generator for FakeUnusedGenerator {
    fn info(&self) -> &ModelInfo {
        &self.0
    }
    fn generate(&self, _: &[ChatMessage], _: &GenerationParams, _: &CancelToken, _: &mut dyn FnMut(&str)) -> lotse_inference::Result<Generation> {
        Ok(Generation { text: String::new(), prompt_tokens: 0, completion_tokens: 0, stop_reason: StopReason::Eos, prompt_truncated: false, cached_prompt_tokens: 0 })
    }
}

/// A data directory as a running town has it: an upload (original kept, indexed), an approved
/// rewrite, the ratings file. Returns the collection id and the approval's key.
fn town_data(data: &Path) -> (i64, String) {
    let store = Store::open(&data.join("portal.sqlite")).unwrap();
    let uid = store.create_user("anna", "Anna", None, Role::Editor, &["bauamt".into()]).unwrap();
    let col = store.create_collection("Bauamt intern", &Owner::Group("bauamt".into()), Some(uid)).unwrap();
    for (name, text) in [
        ("weisung.txt", format!("Die Dienstanweisung {CANARY} regelt die Vertretung im Bauamt.")),
        ("fristen.md", "# Fristen\n\nDie Frist fuer Bauantraege betraegt vier Wochen.".to_string()),
    ] {
        let id = store.reserve_document(col.id, name, "text", name, Some(uid)).unwrap();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
        store.finish_document(id, &Upload { kind: "text", title: name, sha256: &sha, original: text.as_bytes(), uploaded_by: Some(uid) }, 0).unwrap();
    }
    let index = SearchIndex::open(&data.join("index")).unwrap();
    let done = lotse_portal::documents::reconcile(&store, &index, None).unwrap();
    assert_eq!(done.reindexed, 2, "{done:?}");

    let rewrites = lotse_server::rewrites::RewriteStore::open(&data.join("portal.sqlite")).unwrap();
    let s = Simplifier::new(
        Arc::new(FakeUnusedGenerator(ModelInfo { id: "fake".into(), external: false, context_len: 4096 })),
        Glossary::default_terms(),
    );
    let page = Page {
        url: "http://town.test/satzung/".into(),
        title: "Satzung".into(),
        kind: DocKind::Html,
        lang: Some("de".into()),
        modified: None,
        blocks: vec![Block::Paragraph { text: "Die Steuer ist gem. § 7 Abs. 2 am 1. Juli fällig.".into() }],
    };
    let key = s.cache_key("h1");
    rewrites.put(&key, &s.simplify_rules_only(&page, "h1").unwrap()).unwrap();
    rewrites.set_review(&key, ReviewStatus::Approved, "anna", &[]).unwrap();
    drop(rewrites);
    lotse_server::feedback::FeedbackStore::open(&data.join("portal.sqlite")).unwrap().add(&rating()).unwrap();
    (col.id, key)
}

fn rating() -> lotse_server::feedback::Rating {
    lotse_server::feedback::Rating {
        answer_id: "a1".into(),
        helpful: false,
        model: "fake".into(),
        refused: false,
        cited: vec!["http://town.test/satzung/".into()],
        question: None,
        at: 1_700_000_000,
    }
}

/// What a portal search in the collection shows: (url, text) per hit.
fn portal_search(data: &Path, col: i64, q: &str) -> Vec<(String, String)> {
    let index = SearchIndex::open(&data.join("index")).unwrap();
    let scope = CollectionScope::new([lotse_portal::store::index_collection(col)]);
    index.search(&SearchRequest::new(q, &scope)).unwrap().into_iter().map(|h| (h.url, h.text)).collect()
}

#[test]
fn backup_delete_the_data_directory_restore_gives_the_same_search_results_and_approvals() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (col, key) = town_data(&data);
    let before = portal_search(&data, col, CANARY);
    assert!(before.iter().any(|(_, t)| t.contains(CANARY)), "{before:?}");
    let before_fristen = portal_search(&data, col, "Frist Bauantraege");
    assert!(!before_fristen.is_empty());

    let backup = tmp.path().join("sicherung");
    let (d, b) = (data.to_str().unwrap(), backup.to_str().unwrap());
    let out = ok(&lotse(&["admin", "backup", b, "--data", d]));
    // one database holds the uploads, the rewrites with their approvals and the ratings
    assert!(out.contains("portal.sqlite") && backup.join("portal.sqlite").is_file(), "{out}");
    assert!(!out.contains("simplify.sqlite") && !out.contains("feedback.sqlite"), "{out}");
    assert!(backup.join("MANIFEST.json").is_file());
    // never over an existing backup
    assert!(failed(&lotse(&["admin", "backup", b, "--data", d])).contains("not an empty directory"));

    // a non-empty target is not overwritten without --force
    let err = failed(&lotse(&["admin", "restore", b, "--data", d]));
    assert!(err.contains("--force"), "{err}");

    std::fs::remove_dir_all(&data).unwrap();
    let out = ok(&lotse(&["admin", "restore", b, "--data", d]));
    assert!(out.contains("restored portal.sqlite"), "{out}");
    // the index is derived: rebuilt from the originals (start-up does the same)
    ok(&lotse(&["index", "rebuild", "--data", d, "--no-embed"]));
    assert_eq!(portal_search(&data, col, CANARY), before);
    assert_eq!(portal_search(&data, col, "Frist Bauantraege"), before_fristen);
    let rewrites = lotse_server::rewrites::RewriteStore::open(&data.join("portal.sqlite")).unwrap();
    let decision = rewrites.review(&key).unwrap().expect("the approval is back");
    assert_eq!((decision.status, decision.reviewer.as_str()), (ReviewStatus::Approved, "anna"));
    assert!(rewrites.get(&key).unwrap().is_some(), "the rewrite is back");
    assert_eq!(rewrites.database().ratings().unwrap(), vec![rating()], "the rating is back");
    drop(rewrites);

    // with --force the databases there are moved aside, not deleted
    let out = ok(&lotse(&["admin", "restore", b, "--data", d, "--force"]));
    assert!(out.contains("before-restore-"), "{out}");

    // a damaged backup is refused and the data directory stays as it was
    let portal = std::fs::read(data.join("portal.sqlite")).unwrap();
    let mut bytes = std::fs::read(backup.join("portal.sqlite")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(backup.join("portal.sqlite"), bytes).unwrap();
    let err = failed(&lotse(&["admin", "restore", b, "--data", d, "--force"]));
    assert!(err.contains("does not match its manifest"), "{err}");
    assert_eq!(std::fs::read(data.join("portal.sqlite")).unwrap(), portal);
    assert!(!std::fs::read_dir(&data).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with(".restore")));
    // not a backup at all
    assert!(failed(&lotse(&["admin", "restore", d, "--data", b])).contains("not a Lotse backup"));
}

#[test]
fn index_rebuild_after_a_schema_change_keeps_every_upload() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (col, _) = town_data(&data);
    let before = portal_search(&data, col, CANARY);
    assert!(!before.is_empty());
    // an index written by another schema version is refused, never read wrongly
    std::fs::write(data.join("index/LOTSE_SCHEMA_VERSION"), "1").unwrap();
    assert!(SearchIndex::open(&data.join("index")).is_err());
    let d = data.to_str().unwrap();
    let out = ok(&lotse(&["index", "rebuild", "--data", d, "--no-embed"]));
    assert!(out.contains("2 uploads written from their originals"), "{out}");
    assert!(out.contains("index.old-"), "the old index is kept: {out}");
    assert_eq!(portal_search(&data, col, CANARY), before);
}
