//! The staff portal's accounts: sign-in (password and identity provider), what a user's
//! role and KI-Kompass level unlock, the KI-Kompass attempt, administration (accounts,
//! API tokens, the AI system register) and prompt templates.
//!
//! Invariants:
//! - Every method decides with [`auth::authorize`] first (the one place that decides who may
//!   do what); a refusal is [`AccountError::Denied`].
//! - A sign-in is audited as `login` with its outcome (`ok` for a password, `oidc`); admin
//!   changes are audited with the account they were about. A failed audit write is logged,
//!   never shown.
//! - An unknown name costs a password check too (the caller's `verify`), so names cannot be
//!   probed; a failed sign-in does not say which part was wrong.
//! - KI-Kompass attempts are counted, graded and recorded as one step (the caller's lock), so
//!   parallel attempts cannot pass `[portal] kompass_attempts`.
//! - Methods are blocking (the store's own runtime): call them off the async threads.

use std::sync::{Mutex, PoisonError};

use lotse_portal::auth::{self, Action, Denied, Level, LevelRules, Owner, Principal, Role, Scope, UserInfo};
use lotse_portal::kompass::{Check, Graded};
use lotse_portal::store::{self, AuditEntry, Prompt, RegisterEntry};
use lotse_portal::{Store, StoreError, pii};

/// The window of the KI-Kompass attempt limit (`[portal] kompass_attempts`), in seconds.
pub const KOMPASS_WINDOW: i64 = 24 * 3600;

/// Why an account operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Not signed in, or not allowed.
    #[error("denied")]
    Denied(Denied),
    /// Wrong name or password (or a locked account).
    #[error("wrong name or password")]
    SignInFailed,
    /// The identity provider's account is locked in the portal.
    #[error("the account is disabled")]
    AccountDisabled,
    /// The identity provider's account name belongs to a local account.
    #[error("an account of this name exists")]
    AccountExists,
    /// `what` ("user", "prompt", ...) does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A new password is too weak (the reason, English).
    #[error("weak password: {0}")]
    WeakPassword(String),
    /// A prompt template with personal data.
    #[error("the prompt contains personal data")]
    PromptPii,
    /// A KI-Kompass attempt that does not answer each of its `questions`.
    #[error("not every question answered")]
    KompassIncomplete { questions: usize },
    /// `max` KI-Kompass attempts in the window; the next is possible in `wait` seconds.
    #[error("KI-Kompass attempt limit")]
    KompassAttempts { max: i64, wait: u64 },
    /// A register entry without its use or responsible person.
    #[error("register entry incomplete")]
    RegisterIncomplete,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Denied> for AccountError {
    fn from(d: Denied) -> AccountError {
        AccountError::Denied(d)
    }
}

/// A session that just started.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: UserInfo,
    /// The cookie's token.
    pub token: String,
    /// The session's CSRF token.
    pub csrf: String,
}

/// What a user's role and KI-Kompass level unlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unlocked {
    /// The KI-Kompass check is passed: the chat is open.
    pub chat: bool,
    pub external_models: bool,
    pub share_prompts: bool,
    /// Rewrites of legal texts may be reviewed (only when the server reviews them).
    pub review_rewrites: bool,
    /// "Fragen ohne Antwort" may be read (only when insights are on).
    pub insights: bool,
}

/// A new local account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    /// Default: the name.
    pub display_name: Option<String>,
    pub password: String,
    pub role: Role,
    pub groups: Vec<String>,
}

/// A change of an account: `disabled` locks it and ignores the rest.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub level: Option<Level>,
    pub role: Option<Role>,
    pub groups: Option<Vec<String>>,
    pub disabled: bool,
}

/// A new API token.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    /// The user it acts for (default: the caller).
    pub user_id: Option<i64>,
    pub scopes: Vec<Scope>,
}

/// A new prompt template.
#[derive(Debug, Clone)]
pub struct NewPrompt {
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    /// Share with this group; None: the caller's own.
    pub group: Option<String>,
}

/// The portal's accounts over its store.
#[derive(Debug, Clone, Copy)]
pub struct Accounts<'a> {
    pub store: &'a Store,
    pub rules: &'a LevelRules,
}

fn allow(principal: &Principal, action: &Action<'_>, rules: &LevelRules) -> Result<(), AccountError> {
    auth::authorize(principal, action, rules).map_err(AccountError::Denied)
}

/// `e` as done by `principal`: its user and groups, and " (token)" after the action for an
/// API token.
pub fn attributed(principal: &Principal, mut e: AuditEntry) -> AuditEntry {
    if let Some(u) = principal.user() {
        e.user_id = Some(u.id);
        e.user_name = u.name.clone();
        e.groups = u.groups.clone();
    }
    if matches!(principal, Principal::Token { .. }) {
        e.action = format!("{} (token)", e.action);
    }
    e
}

/// Write an audit entry for `principal` ([`attributed`]); a failure is logged, not shown.
pub fn audit(store: &Store, principal: &Principal, e: AuditEntry) {
    if store.audit(&attributed(principal, e)).is_err() {
        tracing::error!("cannot write the audit log");
    }
}

fn audit_about(store: &Store, principal: &Principal, action: &str, target: &str) {
    audit(store, principal, AuditEntry { action: action.into(), target: Some(target.into()), outcome: "ok".into(), ..AuditEntry::default() });
}

impl Accounts<'_> {
    /// What `user` may use: `reviews_on` when the server has staff review legal rewrites,
    /// `insights_on` when `[insights]` is on.
    pub fn unlocked(&self, user: &UserInfo, reviews_on: bool, insights_on: bool) -> Unlocked {
        let p = Principal::User(user.clone());
        let may = |a: Action<'_>| auth::authorize(&p, &a, self.rules).is_ok();
        Unlocked {
            chat: may(Action::Chat),
            external_models: may(Action::ExternalModel),
            share_prompts: user.level >= self.rules.share_prompts,
            review_rewrites: reviews_on && may(Action::ReviewRewrites),
            insights: insights_on && may(Action::ViewInsights),
        }
    }

    /// A new session for a signed-in user, audited as a login with `outcome`.
    fn start_session(&self, user: UserInfo, ttl: i64, outcome: &str) -> Result<Session, AccountError> {
        let (token, csrf) = self.store.create_session(user.id, ttl)?;
        self.store.audit(&AuditEntry {
            user_id: Some(user.id),
            user_name: user.name.clone(),
            groups: user.groups.clone(),
            action: "login".into(),
            outcome: outcome.into(),
            ..AuditEntry::default()
        })?;
        Ok(Session { user, token, csrf })
    }

    /// Sign in with name and password: `verify` checks the password against the stored hash
    /// (None for an unknown name: it must cost the same). A session of `ttl` seconds starts.
    pub fn sign_in(&self, name: &str, verify: impl FnOnce(Option<&str>) -> bool, ttl: i64) -> Result<Session, AccountError> {
        let found = self.store.password_hash(name)?;
        let right = verify(found.as_ref().map(|(_, h)| h.as_str()));
        let user = match found.filter(|_| right) {
            Some((uid, _)) => self.store.user(uid)?,
            None => None,
        };
        let Some(user) = user else {
            tracing::info!("portal sign-in failed");
            return Err(AccountError::SignInFailed);
        };
        self.start_session(user, ttl, "ok")
    }

    /// Sign in with the identity provider: the account is created or updated from the token's
    /// claims (its role and groups), then a session of `ttl` seconds starts.
    pub fn sign_in_oidc(
        &self,
        subject: &str,
        name: &str,
        display_name: &str,
        role: Role,
        groups: &[String],
        ttl: i64,
    ) -> Result<Session, AccountError> {
        let id = self.store.upsert_oidc_user(subject, name, display_name, role, groups).map_err(|e| match e {
            StoreError::Exists(_) => AccountError::AccountExists,
            e => AccountError::Store(e),
        })?;
        let user = self.store.user(id)?.ok_or(AccountError::AccountDisabled)?;
        self.start_session(user, ttl, "oidc")
    }

    /// Hand in the KI-Kompass check: at most `max_attempts` per [`KOMPASS_WINDOW`] (0: no
    /// limit); a pass raises the level. `one_at_a_time` serialises attempts.
    pub fn take_check(
        &self,
        principal: &Principal,
        check: &Check,
        one_at_a_time: &Mutex<()>,
        answers: &[usize],
        max_attempts: i64,
    ) -> Result<Graded, AccountError> {
        allow(principal, &Action::TakeCheck, self.rules)?;
        let n = check.questions.len();
        if answers.len() != n {
            return Err(AccountError::KompassIncomplete { questions: n });
        }
        let uid = principal.user().ok_or(Denied::Unauthenticated)?.id;
        // count, grade and record as one step, so parallel attempts cannot pass the limit
        let _one = one_at_a_time.lock().unwrap_or_else(PoisonError::into_inner);
        let now = store::now();
        if max_attempts > 0 {
            let (n, earliest) = self.store.attempts_since(uid, now - KOMPASS_WINDOW)?;
            if n >= max_attempts {
                let wait = earliest.map_or(KOMPASS_WINDOW, |t| t + KOMPASS_WINDOW - now).max(1);
                tracing::info!("KI-Kompass attempt limit reached");
                return Err(AccountError::KompassAttempts { max: max_attempts, wait: wait as u64 });
            }
        }
        let mut graded = check.grade(answers);
        graded.level = self.store.record_attempt(uid, graded.right, graded.total, graded.passed, check.level)?;
        Ok(graded)
    }

    /// Create a local account (admins); audited.
    pub fn create_user(&self, principal: &Principal, req: NewUser) -> Result<UserInfo, AccountError> {
        allow(principal, &Action::ManageUsers, self.rules)?;
        let hash = auth::hash_password(&req.password).map_err(|e| AccountError::WeakPassword(e.to_string()))?;
        let display = req.display_name.clone().unwrap_or_else(|| req.name.clone());
        let id = self.store.create_user(&req.name, &display, Some(&hash), req.role, &req.groups)?;
        let u = self.store.user(id)?.ok_or(AccountError::NotFound("user"))?;
        audit_about(self.store, principal, "create_user", &u.name);
        Ok(u)
    }

    /// Change an account's level, role or groups, or lock it (its sessions end); audited.
    /// Returns the account as it is now (a locked one: as it was).
    pub fn change_user(&self, principal: &Principal, id: i64, req: UserChange) -> Result<UserInfo, AccountError> {
        allow(principal, &Action::ManageUsers, self.rules)?;
        let st = self.store;
        let u = st.user(id)?.ok_or(AccountError::NotFound("user"))?;
        if req.disabled {
            st.disable_user(id)?;
            audit_about(st, principal, "disable_user", &u.name);
            return Ok(u);
        }
        if let Some(l) = req.level {
            st.set_level(id, l)?;
        }
        if req.role.is_some() || req.groups.is_some() {
            let role = req.role.unwrap_or(u.role);
            let groups = req.groups.clone().unwrap_or(u.groups.clone());
            st.set_role_and_groups(id, role, &groups)?;
        }
        let u = st.user(id)?.ok_or(AccountError::NotFound("user"))?;
        audit_about(st, principal, "change_user", &u.name);
        Ok(u)
    }

    /// Create an API token for the caller or another account, valid `days`; audited with the
    /// owner. Returns the token (shown once).
    pub fn create_token(&self, principal: &Principal, req: NewToken, days: u32) -> Result<String, AccountError> {
        allow(principal, &Action::ManageUsers, self.rules)?;
        let me = principal.user().ok_or(Denied::Unauthenticated)?.id;
        let uid = req.user_id.unwrap_or(me);
        let owner = self.store.user(uid)?.ok_or(AccountError::NotFound("user"))?;
        let token = self.store.create_token_for(uid, &req.name, &req.scopes, days)?;
        audit_about(self.store, principal, "create_token", &owner.name);
        Ok(token)
    }

    /// Revoke an API token; audited with its owner.
    pub fn revoke_token(&self, principal: &Principal, id: i64) -> Result<(), AccountError> {
        allow(principal, &Action::ManageUsers, self.rules)?;
        let owner = self.store.tokens()?.into_iter().find(|t| t.id == id).map(|t| t.user);
        self.store.revoke_token(id)?;
        audit_about(self.store, principal, "revoke_token", owner.as_deref().unwrap_or("-"));
        Ok(())
    }

    /// Add or change an entry of the AI system register (by name); it needs its use and the
    /// responsible person. Audited.
    pub fn put_register(&self, principal: &Principal, e: &RegisterEntry) -> Result<(), AccountError> {
        allow(principal, &Action::ManageRegister, self.rules)?;
        if e.name.trim().is_empty() || e.responsible.trim().is_empty() {
            return Err(AccountError::RegisterIncomplete);
        }
        self.store.put_register(e)?;
        audit(self.store, principal, AuditEntry { action: "put_register".into(), outcome: "ok".into(), ..AuditEntry::default() });
        Ok(())
    }

    /// Save a prompt template: sharing it with a group needs the level for sharing (and
    /// membership); a template with personal data is refused.
    pub fn create_prompt(&self, principal: &Principal, req: NewPrompt) -> Result<Prompt, AccountError> {
        allow(principal, &Action::Portal, self.rules)?;
        if let Some(g) = &req.group {
            allow(principal, &Action::SharePrompt(g), self.rules)?;
        }
        if pii::contains_pii(&req.body) {
            return Err(AccountError::PromptPii);
        }
        let uid = principal.user().ok_or(Denied::Unauthenticated)?.id;
        let id = self.store.create_prompt(&req.title, &req.body, &req.tags, req.group.as_deref(), uid)?;
        self.store.prompt(id)?.map(|(p, _)| p).ok_or(AccountError::NotFound("prompt"))
    }

    /// Delete a prompt template: the owner may, and for a shared one the group's editors and
    /// admins.
    pub fn delete_prompt(&self, principal: &Principal, id: i64) -> Result<(), AccountError> {
        allow(principal, &Action::Portal, self.rules)?;
        let (p, owner) = self.store.prompt(id)?.ok_or(AccountError::NotFound("prompt"))?;
        let uid = principal.user().ok_or(Denied::Unauthenticated)?.id;
        if owner != Some(uid) {
            // a shared prompt: the group's editors and admins may remove it
            let g = p.group.clone().unwrap_or_default();
            allow(principal, &Action::ManageCollection(&Owner::Group(g)), self.rules)?;
        }
        self.store.delete_prompt(id)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(&dir.path().join("portal.sqlite")).unwrap()
    }

    fn admin(st: &Store) -> Principal {
        let hash = auth::hash_password("ein langes Passwort").unwrap();
        let id = st.create_user("admin", "Admin", Some(&hash), Role::Admin, &["it".to_string()]).unwrap();
        Principal::User(st.user(id).unwrap().unwrap())
    }

    #[test]
    fn sign_in_checks_the_password_and_audits_the_login() {
        let dir = tempfile::tempdir().unwrap();
        let st = store(&dir);
        let rules = LevelRules::default();
        let a = Accounts { store: &st, rules: &rules };
        admin(&st);
        let ok = |h: Option<&str>| h.is_some_and(|h| auth::verify_password("ein langes Passwort", h));
        let s = a.sign_in("admin", ok, 3600).unwrap();
        assert_eq!(s.user.name, "admin");
        assert!(matches!(a.sign_in("admin", |_| false, 3600), Err(AccountError::SignInFailed)));
        // an unknown name is checked too, and fails the same way
        let mut asked = false;
        let r = a.sign_in("niemand", |h| { asked = h.is_none(); false }, 3600);
        assert!(asked);
        assert!(matches!(r, Err(AccountError::SignInFailed)));
        let log = st.audit_log(0, 10).unwrap();
        assert_eq!(log.iter().filter(|r| r.action == "login" && r.outcome == "ok").count(), 1);
    }

    #[test]
    fn admin_rules() {
        let dir = tempfile::tempdir().unwrap();
        let st = store(&dir);
        let rules = LevelRules::default();
        let a = Accounts { store: &st, rules: &rules };
        let me = admin(&st);
        let weak = NewUser { name: "m".into(), display_name: None, password: "kurz".into(), role: Role::Staff, groups: vec![] };
        assert!(matches!(a.create_user(&me, weak), Err(AccountError::WeakPassword(_))));
        let new = NewUser { name: "m.muster".into(), display_name: None, password: "noch ein langes Passwort".into(), role: Role::Staff, groups: vec!["bauamt".into()] };
        let u = a.create_user(&me, new).unwrap();
        assert_eq!(u.display_name, "m.muster");
        // staff may not manage accounts
        let staff = Principal::User(u.clone());
        let again = NewUser { name: "x".into(), display_name: None, password: "noch ein langes Passwort".into(), role: Role::Admin, groups: vec![] };
        assert!(matches!(a.create_user(&staff, again), Err(AccountError::Denied(_))));
        assert!(matches!(a.change_user(&me, 999, UserChange::default()), Err(AccountError::NotFound("user"))));
        let changed = a.change_user(&me, u.id, UserChange { level: Some(Level::Bronze), ..UserChange::default() }).unwrap();
        assert_eq!(changed.level, Level::Bronze);
        let e = RegisterEntry { name: " ".into(), model: "m".into(), purpose: "p".into(), provider: "p".into(), risk_class: "minimal".into(), responsible: "r".into(), updated_at: 0 };
        assert!(matches!(a.put_register(&me, &e), Err(AccountError::RegisterIncomplete)));
        let log = st.audit_log(0, 10).unwrap();
        assert!(log.iter().any(|r| r.action == "create_user" && r.target.as_deref() == Some("m.muster")));
        assert!(log.iter().any(|r| r.action == "change_user" && r.target.as_deref() == Some("m.muster")));
    }

    #[test]
    fn prompts_with_personal_data_or_foreign_groups_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let st = store(&dir);
        let rules = LevelRules::default();
        let a = Accounts { store: &st, rules: &rules };
        let me = admin(&st);
        let pii = NewPrompt { title: "t".into(), body: "Schreiben Sie an max.mustermann@example.org".into(), tags: vec![], group: None };
        assert!(matches!(a.create_prompt(&me, pii), Err(AccountError::PromptPii)));
        let own = NewPrompt { title: "t".into(), body: "Fasse {text} zusammen".into(), tags: vec![], group: None };
        let p = a.create_prompt(&me, own).unwrap();
        assert_eq!(p.group, None);
        a.delete_prompt(&me, p.id).unwrap();
        assert!(matches!(a.delete_prompt(&me, p.id), Err(AccountError::NotFound("prompt"))));
    }
}
