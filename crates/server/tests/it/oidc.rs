//! OpenID Connect sign-in over loopback: the real portal server on 127.0.0.1 and
//! `FakeIdentityProvider`, a small OpenID provider on another loopback port (discovery,
//! authorisation with PKCE, token endpoint) whose claims each test sets. The store is SQLite,
//! or PostgreSQL when `LOTSE_TEST_POSTGRES` is set.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use lotse_portal::Store;
use lotse_portal::kompass::{Check, DEFAULT_CHECK, DEFAULT_TEXT};
use lotse_server::config::OidcSettings;
use lotse_server::oidc::Oidc;
use lotse_server::portal::Portal;
use lotse_server::{AppState, Config};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CLIENT_SECRET: &str = "geheimes-client-secret";

/// What the fake provider puts into the next ID tokens.
#[derive(Clone)]
struct Claims {
    username: String,
    groups: Vec<String>,
    /// Send a nonce other than the client's (a replayed or foreign token).
    wrong_nonce: bool,
}

struct Grant {
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

struct FakeIdentityProvider {
    base: String,
    claims: Mutex<Claims>,
    grants: Mutex<HashMap<String, Grant>>,
    token_calls: Mutex<usize>,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn discovery(State(idp): State<Arc<FakeIdentityProvider>>) -> Response {
    axum::Json(json!({
        "issuer": idp.base,
        "authorization_endpoint": format!("{}/auth", idp.base),
        "token_endpoint": format!("{}/token", idp.base),
        "response_types_supported": ["code"],
    }))
    .into_response()
}

async fn authorize(State(idp): State<Arc<FakeIdentityProvider>>, Query(q): Query<HashMap<String, String>>) -> Response {
    assert_eq!(q.get("response_type").map(String::as_str), Some("code"));
    assert_eq!(q.get("client_id").map(String::as_str), Some("lotse"));
    assert_eq!(q.get("code_challenge_method").map(String::as_str), Some("S256"));
    assert!(q.get("scope").is_some_and(|s| s.split(' ').any(|x| x == "openid")));
    let code = format!("code-{}", idp.grants.lock().unwrap().len());
    let redirect_uri = q["redirect_uri"].clone();
    idp.grants.lock().unwrap().insert(
        code.clone(),
        Grant { nonce: q["nonce"].clone(), challenge: q["code_challenge"].clone(), redirect_uri: redirect_uri.clone() },
    );
    let mut to = url::Url::parse(&redirect_uri).unwrap();
    to.query_pairs_mut().append_pair("code", &code).append_pair("state", &q["state"]);
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

async fn token(State(idp): State<Arc<FakeIdentityProvider>>, body: Bytes) -> Response {
    *idp.token_calls.lock().unwrap() += 1;
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let Some(grant) = idp.grants.lock().unwrap().remove(form.get("code").map(String::as_str).unwrap_or("")) else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant"}))).into_response();
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let pkce_ok = b64url(&Sha256::digest(verifier.as_bytes())) == grant.challenge;
    if form.get("grant_type").map(String::as_str) != Some("authorization_code")
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
        || form.get("redirect_uri") != Some(&grant.redirect_uri)
        || !pkce_ok
    {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant"}))).into_response();
    }
    let c = idp.claims.lock().unwrap().clone();
    let now = lotse_portal::store::now();
    let claims = json!({
        "iss": idp.base, "aud": "lotse", "sub": format!("sub-{}", c.username), "iat": now, "exp": now + 300,
        "nonce": if c.wrong_nonce { "someone-elses-nonce".to_string() } else { grant.nonce },
        "preferred_username": c.username, "name": "Maria Müller", "groups": c.groups,
    });
    let id_token = format!("{}.{}.ZmFrZS1zaWduYXR1cmU", b64url(br#"{"alg":"RS256","typ":"JWT"}"#), b64url(claims.to_string().as_bytes()));
    axum::Json(json!({"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": id_token})).into_response()
}

async fn start_idp() -> Arc<FakeIdentityProvider> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/realms/stadt", listener.local_addr().unwrap());
    let idp = Arc::new(FakeIdentityProvider {
        base,
        claims: Mutex::new(Claims { username: "M.Mueller".into(), groups: vec!["/Bauamt".into(), "/lotse-redaktion".into()], wrong_nonce: false }),
        grants: Mutex::new(HashMap::new()),
        token_calls: Mutex::new(0),
    });
    let app = Router::new()
        .route("/realms/stadt/.well-known/openid-configuration", get(discovery))
        .route("/realms/stadt/auth", get(authorize))
        .route("/realms/stadt/token", post(token))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    idp
}

struct Server {
    base: String,
    store: Arc<Store>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(idp: &FakeIdentityProvider) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let settings = OidcSettings {
        issuer: idp.base.clone(),
        client_id: "lotse".into(),
        client_secret_env: None,
        redirect_url: format!("http://{addr}/portal/api/oidc/callback"),
        groups_claim: "groups".into(),
        admin_groups: vec!["lotse-admins".into()],
        editor_groups: vec!["lotse-redaktion".into()],
        groups: Default::default(),
        label: "Mit dem Dienstkonto anmelden".into(),
        scopes: vec!["openid".into(), "profile".into()],
    };
    let store = Arc::new(lotse_portal::store::testing::open(dir.path()));
    let portal = Portal::new(store.clone(), Check::parse(DEFAULT_CHECK).unwrap(), DEFAULT_TEXT.to_string(), Default::default(), vec![])
        .with_oidc(Oidc::with_client_secret(settings, Some(CLIENT_SECRET.into())).unwrap());
    let mut config = Config::default();
    config.portal.secure_cookie = false;
    let state = AppState::new(config);
    state.set_portal(Arc::new(portal));
    tokio::spawn(lotse_server::serve(listener, state, std::future::pending()));
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Server { base: format!("http://{addr}"), store, http, _dir: dir }
}

fn cookie(r: &reqwest::Response, name: &str) -> Option<(String, String)> {
    r.headers().get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let (kv, attrs) = v.split_once(';').unwrap_or((v, ""));
        let (k, val) = kv.split_once('=')?;
        (k == name).then(|| (val.to_string(), attrs.to_string()))
    })
}

fn location(r: &reqwest::Response) -> String {
    r.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// Start a sign-in at the portal and follow it through the provider: the callback URL and
/// the state cookie.
async fn through_provider(s: &Server) -> (String, String) {
    let r = s.http.get(format!("{}/portal/api/oidc/login", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let (state_cookie, attrs) = cookie(&r, "lotse_oidc").expect("state cookie");
    assert!(attrs.contains("HttpOnly") && attrs.contains("SameSite=Lax"), "{attrs}");
    let at_idp = s.http.get(location(&r)).send().await.unwrap();
    assert_eq!(at_idp.status(), 302);
    let callback = location(&at_idp);
    assert!(callback.starts_with(&format!("{}/portal/api/oidc/callback?", s.base)), "{callback}");
    (callback, state_cookie)
}

async fn me(s: &Server, session: &str) -> Value {
    let r = s.http.get(format!("{}/portal/api/me", s.base)).header(header::COOKIE, format!("lotse_session={session}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn sign_in_maps_claims_to_groups_and_roles() {
    let idp = start_idp().await;
    let s = start(&idp).await;

    let opts: Value = s.http.get(format!("{}/portal/api/login-options", s.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(opts["oidc"]["url"], "/portal/api/oidc/login");
    assert_eq!(opts["oidc"]["label"], "Mit dem Dienstkonto anmelden");

    let (callback, state) = through_provider(&s).await;
    let r = s.http.get(&callback).header(header::COOKIE, format!("lotse_oidc={state}")).send().await.unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    assert_eq!(location(&r), "/portal/");
    let (session, attrs) = cookie(&r, "lotse_session").expect("session cookie");
    assert!(attrs.contains("HttpOnly") && attrs.contains("SameSite=Strict"), "{attrs}");
    assert!(cookie(&r, "lotse_oidc").is_some_and(|(v, a)| v.is_empty() && a.contains("Max-Age=0")), "state cookie cleared");
    let m = me(&s, &session).await;
    assert_eq!(m["user"]["name"], "m.mueller");
    assert_eq!(m["user"]["display_name"], "Maria Müller");
    assert_eq!(m["user"]["role"], "editor");
    assert_eq!(m["user"]["groups"], json!(["bauamt", "lotse-redaktion"]));
    assert!(m["csrf"].as_str().is_some_and(|c| !c.is_empty()));

    // a callback is good once
    let again = s.http.get(&callback).header(header::COOKIE, format!("lotse_oidc={state}")).send().await.unwrap();
    assert_eq!(again.status(), 400);
    assert!(again.text().await.unwrap().contains("erneut an"));

    // the directory changed: the next sign-in takes role and groups from the new claims
    idp.claims.lock().unwrap().groups = vec!["/Kaemmerei".into()];
    let (callback, state) = through_provider(&s).await;
    let r = s.http.get(&callback).header(header::COOKIE, format!("lotse_oidc={state}")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let m = me(&s, &cookie(&r, "lotse_session").unwrap().0).await;
    assert_eq!(m["user"]["role"], "staff");
    assert_eq!(m["user"]["groups"], json!(["kaemmerei"]));
    assert_eq!(s.store.users().unwrap().len(), 1, "the same account, found by its subject");

    // groups count by their full path (issue 31): a foreign group with the admin group's leaf
    // name grants nothing, and two departments' `intern` groups stay two groups
    idp.claims.lock().unwrap().groups = vec!["/Extern/lotse-admins".into(), "/FB1/intern".into(), "/FB2/intern".into()];
    let (callback, state) = through_provider(&s).await;
    let r = s.http.get(&callback).header(header::COOKIE, format!("lotse_oidc={state}")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let m = me(&s, &cookie(&r, "lotse_session").unwrap().0).await;
    assert_eq!(m["user"]["role"], "staff");
    assert_eq!(m["user"]["groups"], json!(["extern_lotse-admins", "fb1_intern", "fb2_intern"]));

    let logins = s.store.audit_log(0, 10).unwrap();
    assert_eq!(logins.iter().filter(|a| a.action == "login" && a.outcome == "oidc").count(), 3);
}

#[tokio::test]
async fn foreign_expired_and_forged_sign_ins_are_refused() {
    let idp = start_idp().await;
    let s = start(&idp).await;

    // a callback in a browser that did not start the sign-in (no or another state cookie)
    let (callback, _) = through_provider(&s).await;
    let r = s.http.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(cookie(&r, "lotse_session").is_none());
    let r = s.http.get(&callback).header(header::COOKIE, "lotse_oidc=forged").send().await.unwrap();
    assert_eq!(r.status(), 400);

    // the provider reports a refusal
    let r = s.http.get(format!("{}/portal/api/oidc/callback?error=access_denied&state=x", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("nicht bestätigt"));

    // an ID token with someone else's nonce
    idp.claims.lock().unwrap().wrong_nonce = true;
    let (callback, state) = through_provider(&s).await;
    let r = s.http.get(&callback).header(header::COOKIE, format!("lotse_oidc={state}")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(cookie(&r, "lotse_session").is_none());
    assert!(s.store.users().unwrap().is_empty(), "no account from a rejected token");

    // a disabled account stays out
    idp.claims.lock().unwrap().wrong_nonce = false;
    let (callback, state) = through_provider(&s).await;
    let r = s.http.get(&callback).header(header::COOKIE, format!("lotse_oidc={state}")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let id = s.store.users().unwrap()[0].id;
    s.store.disable_user(id).unwrap();
    let (callback, state) = through_provider(&s).await;
    let r = s.http.get(&callback).header(header::COOKIE, format!("lotse_oidc={state}")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("gesperrt"));

    // incomplete answers
    let r = s.http.get(format!("{}/portal/api/oidc/callback", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(*idp.token_calls.lock().unwrap() >= 3);
}

#[tokio::test]
async fn an_unreachable_provider_is_a_clear_502() {
    // a provider that is not there: its port is closed
    let idp = start_idp().await;
    let gone = FakeIdentityProvider {
        base: "http://127.0.0.1:9/realms/stadt".into(),
        claims: Mutex::new(idp.claims.lock().unwrap().clone()),
        grants: Mutex::new(HashMap::new()),
        token_calls: Mutex::new(0),
    };
    let s = start(&gone).await;
    let r = s.http.get(format!("{}/portal/api/oidc/login", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("nicht erreichbar"));
}
