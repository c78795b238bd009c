//! The staff portal's API under `/portal/api` and its document pages under
//! `/portal/dokumente/{id}`.
//!
//! Invariants:
//! - Every handler asks [`lotse_portal::auth::authorize`] (through [`Ctx::allow`]) before it
//!   reads or writes anything; that function is the one place that decides. No session: 401;
//!   wrong role, group, level or token scope: 403.
//! - A session is a random token in an `HttpOnly; SameSite=Strict; Secure` cookie named
//!   `__Host-lotse_session` (only its hash is stored; `lotse_session` on path `/portal`
//!   without `Secure` when `[portal] secure_cookie = false`); requests that change
//!   something with a cookie carry the session's CSRF token in `X-CSRF-Token`. API tokens (`Authorization: Bearer lotse_…`) need no CSRF token
//!   and act only within their scopes.
//! - Private collections are searched only in the scope the caller may read; an external
//!   engine (a `[[portal.external]]`, or the main engine when it is external) gets no private
//!   collection and no question in which the PII guard finds personal data: `policy::may_send`
//!   decides, and choosing an external engine needs the KI-Kompass level for it.
//! - An upload is extracted completely before anything is written; the index is committed
//!   before the document row is; a failure leaves the old state.
//! - Logs name no question, no answer and no document content; the audit log stores content
//!   only when `[portal] audit_content` is on, and then with personal data redacted.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use lotse_answer::Answerer;
use lotse_inference::ModelInfo;
use lotse_inference::generate::GenerationService;
use lotse_portal::auth::{self, Action, LevelRules, Principal};
use lotse_portal::kompass::Check;
use lotse_portal::store::RegisterEntry;
use lotse_portal::{Store, StoreError, documents};

use crate::AppState;
use crate::error::ApiError;

mod admin;
mod chat;
mod collections;
mod context;
mod document_page;
mod history;
mod kompass;
mod models;
mod oidc;
mod page;
mod prompts;
mod reviews;
mod session;

pub use admin::*;
pub use chat::*;
pub use collections::*;
pub use context::*;
pub use document_page::*;
pub use history::*;
pub use kompass::*;
pub use models::*;
pub use oidc::*;
pub use page::*;
pub use prompts::*;
pub use reviews::*;
pub use session::*;

/// The session cookie's name: `__Host-` binds it to this host, `https` and path `/`, so no
/// other subdomain or plain-HTTP page can set or overwrite it (browsers treat
/// `http://localhost` and `http://127.0.0.1` as secure too).
pub const COOKIE: &str = "__Host-lotse_session";
/// The session cookie's name with `[portal] secure_cookie = false` (plain HTTP on another
/// host), where a `__Host-` cookie would be refused by the browser.
pub const PLAIN_COOKIE: &str = "lotse_session";
/// The header that carries the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The site name portal documents have in the index (never a crawled site).
pub use lotse_portal::documents::INDEX_SITE;
pub use lotse_service::staff_chat::{External, LOCAL_MODEL};

/// The portal's state: its store, the KI-Kompass and the external models. (The sign-in
/// guard is [`AppState::login`](crate::AppState), built from the configuration.)
pub struct Portal {
    pub store: Arc<Store>,
    pub check: Check,
    pub kompass_text: String,
    pub rules: LevelRules,
    pub(crate) externals: Arc<[External]>,
    /// One KI-Kompass attempt at a time is counted and graded (the attempt limit holds for
    /// parallel requests).
    kompass_attempt: Mutex<()>,
    /// Sign-in with the town's identity provider, when configured.
    oidc: Option<Arc<crate::oidc::Oidc>>,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal").finish_non_exhaustive()
    }
}

impl Portal {
    pub fn new(
        store: Arc<Store>,
        check: Check,
        kompass_text: String,
        rules: LevelRules,
        externals: Vec<External>,
    ) -> Portal {
        Portal {
            store,
            check,
            kompass_text,
            rules,
            externals: externals.into(),
            kompass_attempt: Mutex::new(()),
            oidc: None,
        }
    }

    /// The account service over this portal's store and level rules.
    pub fn accounts(&self) -> lotse_service::accounts::Accounts<'_> {
        lotse_service::accounts::Accounts { store: &self.store, rules: &self.rules }
    }

    /// Offer sign-in with an identity provider beside local accounts.
    pub fn with_oidc(mut self, oidc: crate::oidc::Oidc) -> Portal {
        self.oidc = Some(Arc::new(oidc));
        self
    }
}

// ---- the CMS -----------------------------------------------------------------------------

/// Whether a bearer token is a portal token with `action`'s scope (for the CMS routes):
/// `None` when the request carries no portal token.
pub async fn cms_token(state: &AppState, headers: &HeaderMap, action: Action<'static>) -> Option<Result<(), ApiError>> {
    let token = bearer(headers).filter(|t| is_portal_token(t))?;
    let portal = state.portal()?;
    let store = portal.store.clone();
    let found = match run_blocking(move || store.token(&token)).await {
        Ok(f) => f,
        Err(e) => return Some(Err(e)),
    };
    Some(match found {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Dieser Zugangsschlüssel ist ungültig oder wurde widerrufen.",
        )),
        Some((owner, scopes)) => {
            auth::authorize(&Principal::Token { owner, scopes }, &action, &portal.rules).map_err(denied)
        }
    })
}

/// The quota key of a `/v1` request's API token: `Ok(Some(..))` for a valid portal token of
/// scope `chat`, `Ok(None)` for a request without one (or with another kind of key, such as
/// the placeholder Open WebUI sends, or without a portal), 401 for a portal token that is
/// unknown, revoked, expired or of another scope, and 401 without a token when
/// `[server] v1_requires_token` is set. The store's answer is kept for
/// [`crate::limit::TOKEN_CHECK_TTL`] (a revocation takes that long to reach `/v1`).
pub async fn v1_token(state: &AppState, headers: &HeaderMap) -> Result<Option<[u8; 16]>, ApiError> {
    let refused = |msg: &'static str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg);
    let token = bearer(headers).filter(|t| is_portal_token(t));
    let (Some(token), Some(portal)) = (token, state.portal()) else {
        if state.config.server.v1_requires_token {
            return Err(refused(
                "Bitte melden Sie sich mit einem Zugangsschlüssel des Portals an (Authorization: Bearer lotse_…, Berechtigung „chat“).",
            ));
        }
        return Ok(None);
    };
    let mut key = [0u8; 16];
    hex::decode_to_slice(&auth::token_hash(&token)[..32], &mut key).map_err(|_| refused("Dieser Zugangsschlüssel ist ungültig."))?;
    let valid = match state.limits.v1_tokens.get(&key) {
        Some(v) => v,
        None => {
            let store = portal.store.clone();
            let v = run_blocking(move || store.token(&token))
                .await?
                .is_some_and(|(_, scopes)| scopes.contains(&auth::Scope::Chat));
            state.limits.v1_tokens.insert(key, v);
            v
        }
    };
    if valid {
        Ok(Some(key))
    } else {
        Err(refused("Dieser Zugangsschlüssel ist ungültig, wurde widerrufen oder hat nicht die Berechtigung „chat“."))
    }
}

/// Hourly: chats past their retention are deleted.
pub async fn expire_chats(state: &AppState) {
    let Some(portal) = state.portal() else { return };
    let days = state.config.portal.chat_retention_days;
    if days == 0 {
        return;
    }
    let store = portal.store.clone();
    match run_blocking(move || store.expire_chats(days)).await {
        Ok(n) if n > 0 => tracing::info!(chats = n, "expired chats deleted"),
        Ok(_) => {}
        Err(_) => tracing::warn!("cannot expire chats"),
    }
}

/// Open the portal of a server: `portal.sqlite` in `data`, the KI-Kompass of the
/// configuration and its external models.
pub fn open(config: &crate::Config, data: &std::path::Path) -> Result<Portal, String> {
    let p = &config.portal;
    let store = crate::database::open(p.database.as_deref(), data)?;
    let check = Check::load(p.kompass_check.as_deref()).map_err(|e| e.to_string())?;
    let text = lotse_portal::kompass::load_text(p.kompass_text.as_deref()).map_err(|e| e.to_string())?;
    let mut externals = Vec::new();
    for e in &p.external {
        let rc = lotse_inference::remote::RemoteConfig {
            base_url: e.url.clone(),
            model: e.model.clone(),
            api_key_env: e.api_key_env.clone(),
            external: e.external,
            context_len: 8192,
            timeout_secs: 120,
        };
        let g = lotse_inference::remote::RemoteGenerator::new(&rc)
            .map_err(|err| format!("external model {}: {err}", e.name))?;
        externals.push(External {
            name: e.name.clone(),
            label: e.label.clone(),
            provider: e.provider.clone().unwrap_or_else(|| e.url.clone()),
            service: Arc::new(GenerationService::new(Arc::new(g), 2, config.limits.queue)),
        });
    }
    let portal = Portal::new(store, check, text, p.levels.clone(), externals);
    Ok(match &p.oidc {
        Some(o) => portal.with_oidc(crate::oidc::Oidc::new(o.clone()).map_err(|e| e.to_string())?),
        None => portal,
    })
}

/// The provider the register names for an engine on the administration's own hardware.
const OWN_PROVIDER: &str = "Eigener Server der Verwaltung (Lotse, lokales Modell)";

/// Bring the index in line with the portal database before the first request (orphans
/// removed, uploads missing from the index written again from their originals); logs counts.
pub fn reconcile(portal: &Portal, answerer: &Answerer) -> Result<documents::Reconciled, StoreError> {
    let embedder = answerer
        .embedder()
        .cloned()
        .map(|e| Arc::new(lotse_answer::PassageEmbedder(e)) as Arc<dyn lotse_index::ChunkEmbedder>);
    documents::reconcile(&portal.store, answerer.index(), embedder)
}

/// Reconcile again while serving (every few minutes): a replica that died halfway through an
/// upload leaves a reserved row or chunks without a row; the next replica to get the index
/// writer within a second clears them up. Skipped while another writer is busy.
pub async fn reconcile_now(state: &AppState) {
    let (Some(portal), Some(answerer)) = (state.portal(), state.answerer()) else { return };
    // uploads and page refreshes of this process first
    let Ok(_one_at_a_time) = state.refresh_lock.clone().try_lock_owned() else { return };
    let done = tokio::task::spawn_blocking(move || {
        let embedder = answerer
            .embedder()
            .cloned()
            .map(|e| Arc::new(lotse_answer::PassageEmbedder(e)) as Arc<dyn lotse_index::ChunkEmbedder>);
        documents::reconcile_waiting(&portal.store, answerer.index(), embedder, std::time::Duration::from_secs(1))
    })
    .await;
    match done {
        Ok(Ok(_)) => {}
        Ok(Err(StoreError::Index(e))) => tracing::debug!(error = %e, "reconcile skipped: the index writer is busy"),
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot reconcile the index with the portal's uploads"),
        Err(e) => tracing::warn!(error = %e, "reconcile task failed"),
    }
}

/// Seed the AI system register with this installation's uses (entries an admin changed
/// stay as they are). `engine` is the main engine; when it is external the register says
/// so and names `provider` (its service or address). An entry seeded earlier that still
/// names the administration's own server while the engine is external is corrected.
pub fn seed_register(portal: &Portal, engine: &ModelInfo, provider: Option<&str>, responsible: &str) -> Result<(), StoreError> {
    let entry = |name: &str, model: &str, purpose: &str, provider: &str, risk: &str| RegisterEntry {
        name: name.into(),
        model: model.into(),
        purpose: purpose.into(),
        provider: provider.into(),
        risk_class: risk.into(),
        responsible: responsible.into(),
        updated_at: 0,
    };
    let external_provider = format!(
        "Externer KI-Dienst: {} (außerhalb der Verwaltung; keine internen Dokumente, keine personenbezogenen Daten)",
        provider.filter(|p| !p.trim().is_empty()).unwrap_or(&engine.id)
    );
    let main_provider = if engine.external { external_provider.as_str() } else { OWN_PROVIDER };
    let staff_purpose = if engine.external {
        "Beantwortet Fragen von Beschäftigten aus der Website, mit Quellen; interne Sammlungen und personenbezogene Daten gehen nicht an diesen externen Dienst."
    } else {
        "Beantwortet Fragen von Beschäftigten aus internen Sammlungen, mit Quellen; Menschen bleiben verantwortlich."
    };
    let main_uses = [
        entry(
            "Bürger-Chat",
            &engine.id,
            "Beantwortet Fragen von Bürgerinnen und Bürgern aus den Seiten der Website, mit Quellen; gekennzeichnet als KI-generiert.",
            main_provider,
            "begrenzt (Transparenzpflichten)",
        ),
        entry(
            "Einfache Sprache",
            &engine.id,
            "Schreibt Seiten der Website in Einfache Sprache um; das Original bleibt verbindlich.",
            main_provider,
            "begrenzt (Transparenzpflichten)",
        ),
        entry("Mitarbeiterportal", &engine.id, staff_purpose, main_provider, "minimal"),
    ];
    let existing = portal.store.register()?;
    for e in &main_uses {
        match existing.iter().find(|x| x.name == e.name) {
            None => portal.store.seed_register(e)?,
            // seeded for a local engine, which this one is not: the entry would be untrue
            Some(old) if engine.external && old.provider == OWN_PROVIDER => {
                tracing::warn!(entry = %e.name, "AI register named the own server for an external engine; corrected");
                portal.store.put_register(&RegisterEntry {
                    model: e.model.clone(),
                    provider: e.provider.clone(),
                    purpose: e.purpose.clone(),
                    ..old.clone()
                })?;
            }
            Some(_) => {}
        }
    }
    for e in portal.externals.iter() {
        let (purpose, provider) = if e.service.info().external {
            ("Externer KI-Dienst für Fragen ohne interne Dokumente und ohne personenbezogene Daten.", e.provider.clone())
        } else {
            ("Modell auf einem Server der Verwaltung, auch für interne Sammlungen.", format!("Eigener Server der Verwaltung ({})", e.provider))
        };
        portal.store.seed_register(&entry(&format!("Mitarbeiterportal: {}", e.label), &e.name, purpose, &provider, "minimal"))?;
    }
    Ok(())
}
