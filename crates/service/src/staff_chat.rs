//! The staff chat's policy: which engine answers, what may go to it, the history window, the
//! chat history and the audit entry.
//!
//! Invariants:
//! - An external engine (a `[[portal.external]]`, or the main engine when it is external)
//!   needs the KI-Kompass level for external services, and [`policy::may_send`] refuses it
//!   any private collection and any question (or earlier question of the asker) with
//!   personal data; a refusal is audited with its outcome before it is returned.
//! - Only the asker's own chat is continued (another user's chat is "not found").
//! - The audit entry stores the question only with `[portal] audit_content`, then with
//!   personal data redacted.
//! - The caller has authorised `Chat` and every chosen collection and built the scope.

use std::sync::Arc;

use lotse_answer::{Answer, AnswerError, AnswerRequest, Answerer, Turn};
use lotse_core::CollectionScope;
use lotse_inference::generate::GenerationService;
use lotse_portal::auth::{self, Action, Denied, LevelRules, Principal};
use lotse_portal::store::{self, AuditEntry, ChatMessage};
use lotse_portal::{Store, StoreError, pii};

use crate::policy::{self, Outgoing, user_turns};

/// The model name of the local generator in portal requests.
pub const LOCAL_MODEL: &str = "lokal";
/// Earlier messages of a chat that go with a question.
const HISTORY_WINDOW: usize = 6;

/// A further model staff may choose (`[[portal.external]]`); whether it is external is its
/// generator's `ModelInfo::external`.
pub struct External {
    pub name: String,
    pub label: String,
    pub provider: String,
    pub service: Arc<GenerationService>,
}

/// Why a staff question got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The server is starting (no answerer yet).
    #[error("the answerer is not ready")]
    Starting,
    /// The chat to continue is not the asker's (or does not exist).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No `[[portal.external]]` has this name.
    #[error("unknown model")]
    UnknownModel,
    /// The asker may not use this engine.
    #[error("denied")]
    Denied(Denied),
    /// The policy keeps this question from the external engine (`code`, German `message`).
    #[error("refused by the policy: {code}")]
    Refused { code: &'static str, message: String },
    #[error(transparent)]
    Answer(#[from] AnswerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blocking task panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(String),
}

/// A staff question.
#[derive(Debug, Clone)]
pub struct Question {
    pub question: String,
    /// `lokal` (or none) or the name of a `[[portal.external]]`.
    pub model: Option<String>,
    /// Continue this chat.
    pub chat_id: Option<i64>,
    pub lang: Option<String>,
}

/// The staff chat over the portal's store and the answerer.
pub struct StaffChat {
    pub store: Arc<Store>,
    /// `None` while the server starts.
    pub answerer: Option<Arc<Answerer>>,
    pub externals: Arc<[External]>,
    pub rules: LevelRules,
    /// `[portal] audit_content`.
    pub audit_content: bool,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ChatError> + Send + 'static) -> Result<T, ChatError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "portal task failed");
        ChatError::Task(e.to_string())
    })?
}

/// Write an audit entry for `principal` ([`crate::accounts::attributed`]); a failure is
/// logged, not shown.
pub async fn audit(store: Arc<Store>, principal: &Principal, e: AuditEntry) {
    let e = crate::accounts::attributed(principal, e);
    let r = blocking(move || store.audit(&e).map_err(ChatError::from)).await;
    if r.is_err() {
        tracing::error!("cannot write the audit log");
    }
}

/// What staff see of the main engine (the model `lokal` of a chat request): local, or an
/// external service, as it is.
pub fn main_label(a: &Answerer) -> String {
    match a.generation().map(|g| g.info()) {
        Some(i) if i.external => format!("Standardmodell ({}, externer KI-Dienst)", i.id),
        Some(i) if !i.id.is_empty() => format!("Lokales Modell ({})", i.id),
        _ => "Lokales Modell".into(),
    }
}

impl StaffChat {
    /// Whether some engine of this server is not external: the main one (`main`) or one of
    /// the portal's models.
    fn internal_available(&self, main: Option<&lotse_inference::ModelInfo>) -> bool {
        main.is_some_and(|m| !m.external) || self.externals.iter().any(|e| !e.service.info().external)
    }

    /// Answer `q` from `scope` (the collections titled `collections`, already authorised)
    /// for `principal`, store both turns in the asker's chat and audit it. Returns the chat
    /// id and the answer.
    pub async fn ask(
        &self,
        principal: &Principal,
        scope: &CollectionScope,
        collections: Vec<String>,
        q: Question,
    ) -> Result<(i64, Answer), ChatError> {
        let uid = principal.user().ok_or(ChatError::Denied(Denied::Unauthenticated))?.id;
        // the earlier turns of the chat
        let store = self.store.clone();
        let chat_id = q.chat_id;
        let history: Vec<ChatMessage> = blocking(move || match chat_id {
            None => Ok(Vec::new()),
            Some(id) => match store.chat_owner(id)? {
                Some(owner) if owner == uid => Ok(store.messages(id)?),
                _ => Err(ChatError::NotFound("chat")),
            },
        })
        .await?;
        let turns: Vec<Turn> = history
            .iter()
            .rev()
            .take(HISTORY_WINDOW)
            .rev()
            .filter_map(|m| {
                let speaker = match m.role.as_str() {
                    "user" => lotse_answer::Speaker::User,
                    "assistant" => lotse_answer::Speaker::Assistant,
                    _ => return None,
                };
                Some(Turn { role: speaker, content: m.content.clone() })
            })
            .collect();
        let base = self.answerer.clone().ok_or(ChatError::Starting)?;
        let model_name = q.model.clone().filter(|m| !m.is_empty() && m != LOCAL_MODEL);
        let (answerer, label): (Arc<Answerer>, String) = match &model_name {
            None => (base.clone(), main_label(&base)),
            Some(name) => {
                let Some(ext) = self.externals.iter().find(|e| &e.name == name) else {
                    return Err(ChatError::UnknownModel);
                };
                (Arc::new(base.with_generation(ext.service.clone())), ext.label.clone())
            }
        };
        let engine = answerer.generation().map(|g| g.info().clone());
        let external = engine.as_ref().is_some_and(|e| e.external);
        let audit_model = model_name.clone().or_else(|| engine.as_ref().map(|e| e.id.clone()));
        if let Some(engine) = &engine {
            if engine.external {
                auth::authorize(principal, &Action::ExternalModel, &self.rules).map_err(ChatError::Denied)?;
            }
            let out = Outgoing::chat(scope, &q.question, user_turns(&turns));
            if let Err(refusal) = policy::may_send(engine, &out) {
                let entry = AuditEntry {
                    action: "chat".into(),
                    model: audit_model,
                    external: true,
                    collections: collections.clone(),
                    outcome: refusal.outcome().into(),
                    ..AuditEntry::default()
                };
                audit(self.store.clone(), principal, entry).await;
                let internal = self.internal_available(base.generation().map(|g| g.info()));
                return Err(ChatError::Refused { code: refusal.code(), message: refusal.message_de(&label, internal) });
            }
        }
        let areq = AnswerRequest { question: q.question.clone(), history: turns, lang: q.lang.clone() };
        Answerer::validate(&areq)?;
        let mut answer = answerer.answer_in(&areq, scope).await?;
        answer.id = format!("p{}", auth::random_token("").chars().take(16).collect::<String>());
        // the history
        let store = self.store.clone();
        let (text, a) = (q.question.clone(), answer.clone());
        let model_id = if a.model.is_empty() { None } else { Some(a.model.clone()) };
        let chat_id = blocking(move || {
            let id = match chat_id {
                Some(id) => id,
                None => store.create_chat(uid, &text)?,
            };
            let t = store::now();
            store.add_message(id, &ChatMessage { role: "user".into(), content: text, sources: serde_json::Value::Null, model: None, at: t })?;
            store.add_message(
                id,
                &ChatMessage {
                    role: "assistant".into(),
                    content: a.answer.clone(),
                    sources: serde_json::to_value(&a.sources).unwrap_or_default(),
                    model: model_id,
                    at: t,
                },
            )?;
            Ok(id)
        })
        .await?;
        let outcome = if answer.refused { "refused" } else { "answered" };
        let content = self.audit_content.then(|| pii::redact(&q.question));
        let entry = AuditEntry {
            action: "chat".into(),
            model: audit_model.or_else(|| Some(answer.model.clone())),
            external,
            collections,
            prompt_tokens: answer.timings.prompt_tokens as i64,
            completion_tokens: answer.timings.completion_tokens as i64,
            outcome: outcome.into(),
            content,
            ..AuditEntry::default()
        };
        audit(self.store.clone(), principal, entry).await;
        Ok((chat_id, answer))
    }
}
