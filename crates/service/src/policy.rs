//! What may be sent to which engine: the one place that decides.
//!
//! The KI-Kompass forbids personal data and internal documents in external AI services. Every
//! engine reports whether it is external (`ModelInfo::external`: the main `[engine]` as
//! configured, each `[[portal.external]]` as configured, the local model never). Before text
//! goes to an engine, the caller describes it as [`Outgoing`] (the collections its prompt is
//! built from, and the text the asker wrote) and asks [`may_send`]. For an engine that is not
//! external everything may go; for an external one:
//!
//! - text of any collection but the public website never goes (staff collections are
//!   `portal-{id}`, group or user visibility);
//! - text the asker wrote (question, earlier turns, the CMS's text) goes only when the PII
//!   guard (`lotse_portal::pii`) finds no personal data in it. Pages of the public website
//!   (names and telephone numbers of the town's offices) are published and are no asker's
//!   text, so they are not checked.
//!
//! What each route does with a [`Refusal`]: the portal chat answers 403 with the German
//! reason (and audits `blocked_private` / `blocked_pii`); the citizen chat and the `/v1` face
//! answer without the engine (the best source's own words, or a pointer to it; see
//! `Answerer::start_without_model`); the CMS's text is refused with 422. Pages of the public
//! website are all the rewrite worker sends. Logs name the engine and the kinds of personal
//! data found, never the text.

use lotse_core::{CollectionId, CollectionScope};
use lotse_inference::ModelInfo;
use lotse_portal::pii::{self, PiiKind};

/// What a caller is about to send to an engine.
#[derive(Debug, Clone, Default)]
pub struct Outgoing<'a> {
    /// The collections whose text the prompt is built from (None: no collection text).
    pub scope: Option<&'a CollectionScope>,
    /// What the asker wrote: the question and earlier turns, or a text to rewrite.
    pub own_text: Vec<&'a str>,
}

impl<'a> Outgoing<'a> {
    /// A question with its history, answered from `scope`.
    pub fn chat(
        scope: &'a CollectionScope,
        question: &'a str,
        history: impl IntoIterator<Item = &'a str>,
    ) -> Outgoing<'a> {
        let mut own_text = vec![question];
        own_text.extend(history);
        Outgoing { scope: Some(scope), own_text }
    }

    /// A text of the asker's own (the CMS's page to rewrite).
    pub fn text(text: &'a str) -> Outgoing<'a> {
        Outgoing { scope: None, own_text: vec![text] }
    }
}

/// The asker's own earlier turns: what a prompt carries of the history (Lotse's own answers,
/// which may name the town's contact, are not the asker's data and are never sent back).
pub fn user_turns(history: &[lotse_answer::Turn]) -> impl Iterator<Item = &str> {
    history.iter().filter(|t| t.role == lotse_answer::Speaker::User).map(|t| t.content.as_str())
}

/// Why something may not go to an external engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The prompt would carry text of a collection other than the public website.
    PrivateCollections,
    /// The asker's text holds personal data of these kinds.
    PersonalData(Vec<PiiKind>),
}

impl Refusal {
    /// The error code of a refused request.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::PrivateCollections => "external_private",
            Refusal::PersonalData(_) => "external_pii",
        }
    }

    /// The outcome in the audit log.
    pub fn outcome(&self) -> &'static str {
        match self {
            Refusal::PrivateCollections => "blocked_private",
            Refusal::PersonalData(_) => "blocked_pii",
        }
    }

    /// For the log (English, no content).
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::PrivateCollections => "private collections",
            Refusal::PersonalData(_) => "personal data",
        }
    }

    /// The German message for staff. `engine` is the label of the engine refused;
    /// `internal_available` says whether this server has an engine that is not external
    /// (else the advice to choose one would be empty).
    pub fn message_de(&self, engine: &str, internal_available: bool) -> String {
        match (self, internal_available) {
            (Refusal::PrivateCollections, true) => format!(
                "Interne Sammlungen dürfen nach dem KI-Kompass nicht an externe KI-Dienste gehen ({engine}). Bitte wählen Sie ein Modell der eigenen Verwaltung oder nur die Website."
            ),
            (Refusal::PrivateCollections, false) => format!(
                "Interne Sammlungen dürfen nach dem KI-Kompass nicht an externe KI-Dienste gehen. Dieser Server hat nur ein externes Modell ({engine}) und kein Modell der eigenen Verwaltung, deshalb sind Fragen an interne Sammlungen hier nicht möglich. Sie können nur die Website befragen; bitte wenden Sie sich an die IT, wenn Sie interne Sammlungen nutzen möchten."
            ),
            (Refusal::PersonalData(kinds), true) => pii::refusal_de(kinds),
            (Refusal::PersonalData(_), false) => format!(
                "Ihre Eingabe enthält vermutlich personenbezogene Daten ({}). Nach dem KI-Kompass dürfen solche Daten nicht an externe KI-Dienste gehen, und dieser Server hat nur ein externes Modell ({engine}). Bitte entfernen Sie die Angaben und stellen Sie die Frage noch einmal.",
                self.kinds_de()
            ),
        }
    }

    /// The kinds of personal data found, in German ("E-Mail-Adresse, Name"); empty for
    /// private collections.
    pub fn kinds_de(&self) -> String {
        match self {
            Refusal::PersonalData(kinds) => kinds.iter().map(|k| k.label_de()).collect::<Vec<_>>().join(", "),
            Refusal::PrivateCollections => String::new(),
        }
    }
}

/// Whether `out` may go to `engine`: always when it is not external; for an external engine
/// only without text of a private collection and without personal data in the asker's text.
/// A refusal is logged (engine and reason, never the text).
pub fn may_send(engine: &ModelInfo, out: &Outgoing<'_>) -> Result<(), Refusal> {
    if !engine.external {
        return Ok(());
    }
    let refusal = if out
        .scope
        .is_some_and(|s| s.collections().iter().any(|c| *c != CollectionId::website()))
    {
        Some(Refusal::PrivateCollections)
    } else {
        let kinds = pii::kinds(&out.own_text.join("\n"));
        (!kinds.is_empty()).then_some(Refusal::PersonalData(kinds))
    };
    match refusal {
        None => Ok(()),
        Some(r) => {
            let kinds: Vec<&str> = match &r {
                Refusal::PersonalData(k) => k.iter().map(|k| k.key()).collect(),
                Refusal::PrivateCollections => Vec::new(),
            };
            tracing::info!(
                engine = %engine.id,
                reason = r.reason(),
                kinds = %kinds.join(","),
                "kept from the external engine"
            );
            Err(r)
        }
    }
}

/// `text` without the personal data the PII guard finds (for retrieval only: a question
/// answered without the engine is searched without the asker's name or address, which no
/// page of the website answers).
pub fn without_personal_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in pii::find(text) {
        if f.start >= at {
            out.push_str(&text[at..f.start]);
            out.push(' ');
            at = f.end;
        }
    }
    out.push_str(&text[at..]);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the admin must know when the main engine is external (logged at start-up and shown
/// in `/ready`), in English.
pub fn main_engine_note(engine: &ModelInfo) -> Option<String> {
    engine.external.then(|| {
        format!(
            "the main engine {} is external: staff chat over private collections is refused, questions with personal data never reach it (citizens get the source's own words instead), and CMS text with personal data is refused; configure a local engine or an in-house [[portal.external]] with external = false for private collections",
            engine.id
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(external: bool) -> ModelInfo {
        ModelInfo { id: "m".into(), external, context_len: 4096 }
    }

    #[test]
    fn an_internal_engine_may_get_everything() {
        let scope = CollectionScope::new([CollectionId("portal-1".into())]);
        let out = Outgoing::chat(&scope, "Frau Petra Hoffmann, DE89 3704 0044 0532 0130 00", []);
        assert_eq!(may_send(&engine(false), &out), Ok(()));
    }

    #[test]
    fn an_external_engine_gets_no_private_collection_and_no_personal_data() {
        let private = CollectionScope::new([CollectionId::website(), CollectionId("portal-7".into())]);
        let public = CollectionScope::public_website();
        let ext = engine(true);
        assert_eq!(may_send(&ext, &Outgoing::chat(&private, "Wie hoch ist die Hundesteuer?", [])), Err(Refusal::PrivateCollections));
        assert_eq!(may_send(&ext, &Outgoing::chat(&public, "Wie hoch ist die Hundesteuer?", [])), Ok(()));
        let r = may_send(&ext, &Outgoing::chat(&public, "Wie hoch ist die Hundesteuer?", ["Antwort an hoffmann@web.de"]));
        assert!(matches!(r, Err(Refusal::PersonalData(ref k)) if k.contains(&PiiKind::Email)), "{r:?}");
        assert!(may_send(&ext, &Outgoing::text("Ansprechpartnerin: Frau Petra Hoffmann")).is_err());
        assert_eq!(may_send(&ext, &Outgoing::text("Die Bücherei ist dienstags geöffnet.")), Ok(()));
    }

    #[test]
    fn personal_data_is_left_out_for_retrieval() {
        let q = without_personal_data("Ich bin Frau Petra Hoffmann (hoffmann@web.de). Wie hoch ist die Hundesteuer?");
        assert!(!q.contains("Hoffmann") && !q.contains("web.de") && q.contains("Wie hoch ist die Hundesteuer?"), "{q}");
    }

    #[test]
    fn messages_say_why_and_what_to_do() {
        let m = Refusal::PrivateCollections.message_de("GPT (Rechenzentrum)", false);
        assert!(m.contains("nur ein externes Modell") && m.contains("IT"), "{m}");
        let m = Refusal::PersonalData(vec![PiiKind::Email]).message_de("X", false);
        assert!(m.contains("personenbezogene") && !m.contains("lokales Modell"), "{m}");
        assert!(main_engine_note(&engine(true)).is_some());
        assert!(main_engine_note(&engine(false)).is_none());
    }
}
