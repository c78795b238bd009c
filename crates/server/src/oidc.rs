//! OpenID Connect sign-in for the staff portal (Keycloak, ADFS, Entra ID and the like): the
//! authorisation code flow with PKCE (S256), a `state` bound to the browser by a cookie, and a
//! `nonce` bound to the ID token. The identity provider's group claim becomes the account's
//! groups, each by its full path or through the configured mapping table (issue 31: by the
//! leaf name, `/Extern/lotse-admins` had made its members admins); configured groups (full
//! paths) make an account an admin or an editor; a group nothing maps grants nothing. Role
//! and groups are taken from the claims at every sign-in, so the directory stays the source
//! of truth.
//!
//! Design decision: the ID token is taken from the token endpoint over TLS, the direct channel
//! of OpenID Connect Core 3.1.3.7 (6): the TLS server check stands in for the token's signature,
//! so Lotse needs no JOSE library. Issuer, audience, authorised party, expiry and nonce are
//! checked. Plain `http` is accepted only for an issuer on a loopback address (tests, a local
//! Keycloak); anything else must be `https`.
//!
//! Invariants:
//! - A callback is accepted once, within ten minutes, in the browser that started it (its
//!   `state` is in the server's table and in that browser's cookie).
//! - No token, code or claim is logged; the log names the outcome and the reason only.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use lotse_portal::auth::{self, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::OidcSettings;

/// The cookie that binds a sign-in to the browser that started it.
pub const STATE_COOKIE: &str = "lotse_oidc";
/// How long a started sign-in may take.
pub const PENDING_TTL: Duration = Duration::from_secs(600);
/// At most this many sign-ins are pending at once (older ones are dropped first).
const MAX_PENDING: usize = 10_000;
/// The discovery document is fetched again after this long.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The callback does not belong to a sign-in started in this browser.
    #[error("unknown or expired sign-in state")]
    State,
    /// The identity provider reported an error (its `error` parameter).
    #[error("identity provider refused: {0}")]
    Refused(String),
    /// The identity provider could not be reached or answered something unusable.
    #[error("identity provider: {0}")]
    Provider(String),
    /// The ID token failed a check.
    #[error("ID token rejected: {0}")]
    Token(&'static str),
    /// The settings are unusable.
    #[error("OIDC settings: {0}")]
    Config(String),
}

/// The parts of the discovery document Lotse uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
}

struct Pending {
    nonce: String,
    verifier: String,
    started: Instant,
}

/// Who signed in, from the ID token's claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `iss` and `sub`: unique and stable for the account.
    pub subject: String,
    /// The account name (`preferred_username`, else `email`, else `sub`).
    pub name: String,
    pub display_name: String,
    pub role: Role,
    pub groups: Vec<String>,
}

/// An OpenID Connect client for one identity provider.
pub struct Oidc {
    pub settings: OidcSettings,
    client_secret: Option<String>,
    http: reqwest::Client,
    discovery: tokio::sync::Mutex<Option<(Discovery, Instant)>>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc").field("issuer", &self.settings.issuer).finish_non_exhaustive()
    }
}

/// Whether `url` is `https`, or `http` on a loopback host.
fn transport_ok(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else { return false };
    match u.scheme() {
        "https" => true,
        "http" => match u.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Lenient, as identity providers differ: with or without padding, and `+` and `/` of the
/// standard alphabet read as `-` and `_`.
fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    LENIENT.decode(s.trim_end_matches('=').replace('+', "-").replace('/', "_")).ok()
}

/// The PKCE challenge of a verifier (S256).
pub fn pkce_challenge(verifier: &str) -> String {
    base64url(&Sha256::digest(verifier.as_bytes()))
}

/// The claims of a JWT, without checking its signature (see the module's design decision).
pub fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?;
    serde_json::from_slice(&base64url_decode(payload)?).ok()
}

/// A group as the identity provider names it, for comparing: trimmed, lowercase, without
/// one leading `/` (Keycloak writes top-level groups as `/Bauamt`). The rest of the path
/// stays: `/Extern/lotse-admins` is `extern/lotse-admins`, never `lotse-admins`.
pub fn group_key(raw: &str) -> String {
    let t = raw.trim();
    t.strip_prefix('/').unwrap_or(t).to_lowercase()
}

/// The portal group a provider group gets when there is no mapping table: its full path,
/// segments joined with `_`, spaces as `-` (`/FB1/intern` -> `fb1_intern`, `Team Bauamt`
/// -> `team-bauamt`). A path whose segments contain `_` or other characters a group name
/// cannot have gets none (two paths must never become one group).
fn path_group(key: &str) -> Option<String> {
    let segments: Vec<String> = key.split('/').map(|seg| seg.trim().replace(char::is_whitespace, "-")).collect();
    if segments.iter().any(|seg| seg.is_empty() || seg.contains('_')) {
        return None;
    }
    let name = segments.join("_");
    lotse_portal::store::valid_group(&name).then_some(name)
}

/// The claim's values: a list of strings, or one string (one group, never split).
fn claim_values(v: Option<&serde_json::Value>) -> Vec<String> {
    match v {
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Portal groups from the claim. With a mapping table (`[portal.oidc.groups]`, provider
/// group -> portal group) only groups in the table count; without one, each group by its
/// full path ([`path_group`]). Groups that map to nothing grant nothing.
pub fn groups_from_claim(v: Option<&serde_json::Value>, table: &BTreeMap<String, String>) -> Vec<String> {
    let table: BTreeMap<String, &String> = table.iter().map(|(k, g)| (group_key(k), g)).collect();
    let mut out: Vec<String> = claim_values(v)
        .iter()
        .map(|raw| group_key(raw))
        .filter_map(|key| if table.is_empty() { path_group(&key) } else { table.get(&key).map(|g| g.to_string()) })
        .filter(|g| lotse_portal::store::valid_group(g))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether the claim names one of `configured` (full paths, compared by [`group_key`]).
fn claim_has_any(v: Option<&serde_json::Value>, configured: &[String]) -> bool {
    let want: Vec<String> = configured.iter().map(|g| group_key(g)).collect();
    claim_values(v).iter().any(|raw| want.contains(&group_key(raw)))
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

/// Where to send the browser, and the cookie value that binds the sign-in to it.
#[derive(Debug, Serialize)]
pub struct Start {
    pub redirect: String,
    pub state: String,
}

impl Oidc {
    /// A client for the configured provider; the client secret is read from the environment
    /// variable `client_secret_env` names.
    pub fn new(settings: OidcSettings) -> Result<Oidc, OidcError> {
        let secret = match &settings.client_secret_env {
            Some(var) => Some(
                std::env::var(var)
                    .map_err(|_| OidcError::Config(format!("the environment variable {var} (client secret) is not set")))?,
            ),
            None => None,
        };
        Self::with_client_secret(settings, secret)
    }

    /// A client with the client secret given.
    pub fn with_client_secret(settings: OidcSettings, client_secret: Option<String>) -> Result<Oidc, OidcError> {
        for (what, url) in [("issuer", &settings.issuer), ("redirect_url", &settings.redirect_url)] {
            if url::Url::parse(url).is_err() {
                return Err(OidcError::Config(format!("{what} is not a URL: {url}")));
            }
        }
        if let Some((from, to)) = settings.groups.iter().find(|(_, g)| !lotse_portal::store::valid_group(g)) {
            return Err(OidcError::Config(format!(
                "[portal.oidc.groups] maps {from:?} to {to:?}, which is no group name (lowercase letters, digits, - and _)"
            )));
        }
        if !transport_ok(&settings.issuer) {
            return Err(OidcError::Config("the issuer must use https (http only on a loopback address)".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OidcError::Config(e.to_string()))?;
        Ok(Oidc {
            settings,
            client_secret,
            http,
            discovery: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        })
    }

    async fn discovery(&self) -> Result<Discovery, OidcError> {
        let mut cached = self.discovery.lock().await;
        if let Some((d, at)) = cached.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(d.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.settings.issuer.trim_end_matches('/'));
        let d: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| OidcError::Provider(format!("discovery: {e}")))?
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("discovery document: {e}")))?;
        if d.issuer.trim_end_matches('/') != self.settings.issuer.trim_end_matches('/') {
            return Err(OidcError::Provider("the discovery document names another issuer".into()));
        }
        if !transport_ok(&d.token_endpoint) || !transport_ok(&d.authorization_endpoint) {
            return Err(OidcError::Provider("the provider's endpoints must use https".into()));
        }
        *cached = Some((d.clone(), Instant::now()));
        Ok(d)
    }

    /// Begin a sign-in: the authorisation URL to redirect to, and the state for the cookie.
    pub async fn start(&self) -> Result<Start, OidcError> {
        let d = self.discovery().await?;
        let state = auth::random_token("");
        let nonce = auth::random_token("");
        let verifier = auth::random_token("");
        let mut url = url::Url::parse(&d.authorization_endpoint).map_err(|e| OidcError::Provider(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.redirect_url)
            .append_pair("scope", &self.settings.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &pkce_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.retain(|_, p| p.started.elapsed() < PENDING_TTL);
        if pending.len() >= MAX_PENDING {
            // drop the oldest: a flood of started sign-ins cannot grow memory
            if let Some(oldest) = pending.iter().min_by_key(|(_, p)| p.started).map(|(k, _)| k.clone()) {
                pending.remove(&oldest);
            }
        }
        pending.insert(state.clone(), Pending { nonce, verifier, started: Instant::now() });
        Ok(Start { redirect: url.to_string(), state })
    }

    /// Finish a sign-in: check the state against the browser's cookie, exchange the code, check
    /// the ID token and read who signed in.
    pub async fn finish(&self, state: &str, cookie_state: Option<&str>, code: &str) -> Result<Identity, OidcError> {
        if cookie_state != Some(state) {
            return Err(OidcError::State);
        }
        let p = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(state)
            .filter(|p| p.started.elapsed() < PENDING_TTL)
            .ok_or(OidcError::State)?;
        let d = self.discovery().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.settings.redirect_url.as_str()),
            ("client_id", self.settings.client_id.as_str()),
            ("code_verifier", p.verifier.as_str()),
        ];
        if let Some(s) = &self.client_secret {
            form.push(("client_secret", s.as_str()));
        }
        let body = serde_urlencoded(&form);
        let resp = self
            .http
            .post(&d.token_endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        if !resp.status().is_success() {
            return Err(OidcError::Provider(format!("token endpoint answered {}", resp.status())));
        }
        let t: TokenResponse = resp.json().await.map_err(|e| OidcError::Provider(format!("token response: {e}")))?;
        let id_token = t.id_token.ok_or(OidcError::Token("no id_token"))?;
        self.identity(&id_token, &d.issuer, &p.nonce)
    }

    /// Check the ID token's claims and read the identity.
    pub fn identity(&self, id_token: &str, issuer: &str, nonce: &str) -> Result<Identity, OidcError> {
        let c = jwt_claims(id_token).ok_or(OidcError::Token("not a JWT"))?;
        let s = |k: &str| c.get(k).and_then(|v| v.as_str()).map(str::to_string);
        if s("iss").as_deref().map(|i| i.trim_end_matches('/')) != Some(issuer.trim_end_matches('/')) {
            return Err(OidcError::Token("issuer"));
        }
        let client = self.settings.client_id.as_str();
        let aud_ok = match c.get("aud") {
            Some(serde_json::Value::String(a)) => a == client,
            Some(serde_json::Value::Array(a)) => {
                a.iter().any(|x| x.as_str() == Some(client)) && (a.len() == 1 || s("azp").as_deref() == Some(client))
            }
            _ => false,
        };
        if !aud_ok {
            return Err(OidcError::Token("audience"));
        }
        let now = lotse_portal::store::now();
        match c.get("exp").and_then(serde_json::Value::as_i64) {
            Some(exp) if exp + 60 >= now => {}
            _ => return Err(OidcError::Token("expired")),
        }
        if s("nonce").as_deref() != Some(nonce) {
            return Err(OidcError::Token("nonce"));
        }
        let sub = s("sub").filter(|v| !v.is_empty()).ok_or(OidcError::Token("no subject"))?;
        let name = s("preferred_username")
            .or_else(|| s("email"))
            .unwrap_or_else(|| sub.clone())
            .trim()
            .to_lowercase()
            .replace(char::is_whitespace, ".");
        let display_name = s("name").filter(|n| !n.trim().is_empty()).unwrap_or_else(|| name.clone());
        let claim = c.get(&self.settings.groups_claim);
        let groups = groups_from_claim(claim, &self.settings.groups);
        let role = if claim_has_any(claim, &self.settings.admin_groups) {
            Role::Admin
        } else if claim_has_any(claim, &self.settings.editor_groups) {
            Role::Editor
        } else {
            Role::Staff
        };
        Ok(Identity { subject: format!("{}|{sub}", issuer.trim_end_matches('/')), name, display_name, role, groups })
    }
}

/// `application/x-www-form-urlencoded` of the pairs.
fn serde_urlencoded(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OidcSettings {
        OidcSettings {
            issuer: "https://login.stadt.example/realms/stadt".into(),
            client_id: "lotse".into(),
            client_secret_env: None,
            redirect_url: "https://ki.stadt.example/portal/api/oidc/callback".into(),
            groups_claim: "groups".into(),
            admin_groups: vec!["lotse-admins".into()],
            editor_groups: vec!["Redaktion".into()],
            groups: BTreeMap::new(),
            label: "Mit dem Stadt-Konto anmelden".into(),
            scopes: vec!["openid".into(), "profile".into()],
        }
    }

    fn jwt(claims: serde_json::Value) -> String {
        format!("{}.{}.c2lnbmF0dXJl", base64url(br#"{"alg":"RS256"}"#), base64url(claims.to_string().as_bytes()))
    }

    #[test]
    fn base64url_round_trips() {
        for n in 0..40 {
            let b: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base64url_decode(&base64url(&b)).unwrap(), b);
        }
        // RFC 7636, appendix B
        assert_eq!(pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn claims_are_checked_and_mapped() {
        let o = Oidc::new(settings()).unwrap();
        let iss = "https://login.stadt.example/realms/stadt";
        let good = json_claims(iss, "lotse", "n1");
        let id = o.identity(&jwt(good.clone()), iss, "n1").unwrap();
        assert_eq!(id.name, "m.mueller");
        assert_eq!(id.display_name, "Maria Müller");
        assert_eq!(id.groups, vec!["bauamt".to_string(), "redaktion".to_string()]);
        assert_eq!(id.role, Role::Editor);
        assert!(id.subject.ends_with("|abc-123"));
        for (claims, why) in [
            (json_claims("https://evil.example", "lotse", "n1"), "issuer"),
            (json_claims(iss, "other-client", "n1"), "audience"),
            (json_claims(iss, "lotse", "n2"), "nonce"),
        ] {
            assert!(matches!(o.identity(&jwt(claims), iss, "n1"), Err(OidcError::Token(w)) if w == why), "{why}");
        }
        let mut old = good;
        old["exp"] = serde_json::json!(1000);
        assert!(matches!(o.identity(&jwt(old), iss, "n1"), Err(OidcError::Token("expired"))));
        assert!(matches!(o.identity("garbage", iss, "n1"), Err(OidcError::Token(_))));
    }

    fn json_claims(iss: &str, aud: &str, nonce: &str) -> serde_json::Value {
        serde_json::json!({
            "iss": iss, "aud": aud, "sub": "abc-123", "nonce": nonce,
            "exp": lotse_portal::store::now() + 300,
            "preferred_username": "M.Mueller", "name": "Maria Müller",
            "groups": ["/Bauamt", "/Redaktion", "not a/valid group!"],
        })
    }

    #[test]
    fn groups_count_by_full_path_and_unknown_ones_grant_nothing() {
        let o = Oidc::new(settings()).unwrap();
        let iss = "https://login.stadt.example/realms/stadt";
        let mut claims = json_claims(iss, "lotse", "n1");
        claims["groups"] = serde_json::json!(["/Extern/lotse-admins", "/FB1/intern", "/FB2/intern", "Team Bauamt", "/a_b/c"]);
        let id = o.identity(&jwt(claims.clone()), iss, "n1").unwrap();
        assert_eq!(id.role, Role::Staff, "a group of the same leaf name elsewhere is not the admin group");
        assert_eq!(id.groups, vec!["extern_lotse-admins", "fb1_intern", "fb2_intern", "team-bauamt"]);
        // the top-level group itself still makes an admin, with or without its slash
        claims["groups"] = serde_json::json!(["/lotse-admins"]);
        assert_eq!(o.identity(&jwt(claims.clone()), iss, "n1").unwrap().role, Role::Admin);
        // one string is one group, never split at spaces
        claims["groups"] = serde_json::json!("Team Bauamt");
        assert_eq!(o.identity(&jwt(claims.clone()), iss, "n1").unwrap().groups, vec!["team-bauamt"]);

        // with a mapping table, only mapped groups count
        let table = BTreeMap::from([
            ("/FB1/intern".to_string(), "fb1".to_string()),
            ("/FB2/intern".to_string(), "fb2".to_string()),
        ]);
        let o = Oidc::new(OidcSettings { groups: table, ..settings() }).unwrap();
        claims["groups"] = serde_json::json!(["/fb1/intern", "/FB2/intern", "/Extern/lotse-admins", "/Bauamt"]);
        let id = o.identity(&jwt(claims), iss, "n1").unwrap();
        assert_eq!(id.groups, vec!["fb1", "fb2"]);
        assert_eq!(id.role, Role::Staff);
        let bad = BTreeMap::from([("/X".to_string(), "Not Valid".to_string())]);
        assert!(matches!(Oidc::new(OidcSettings { groups: bad, ..settings() }), Err(OidcError::Config(_))));
    }

    #[test]
    fn transport_is_https_or_loopback() {
        assert!(transport_ok("https://login.example/realms/x"));
        assert!(transport_ok("http://127.0.0.1:8080/realms/x"));
        assert!(transport_ok("http://localhost:8080"));
        assert!(!transport_ok("http://login.example"));
        assert!(Oidc::new(OidcSettings { issuer: "http://login.example".into(), ..settings() }).is_err());
    }
}
