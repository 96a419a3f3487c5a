//! kube-idp in `--kubernetes` mode against a double of kube-apiserver, through kube-rs' real
//! client: client Secrets and Users applied at the API server change who signs in, live,
//! and an API server that fails or restarts never empties what kube-idp serves.

#[path = "support/apiserver.rs"]
mod apiserver;
mod support;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::{ApiServer, Kind};
use kube_idp::config::{Config, ServeArgs};
use kube_idp::server::Running;
use kube_idp::time::{Clock, ManualClock, SystemClock};
use openidconnect::{OAuth2TokenResponse, TokenResponse};
use serde_json::{json, Value};
use support::browser::{query_param, Browser, Step};
use support::{eventually, rp};

const NAMESPACE: &str = "kubesphere-system";
const HARBOR_CALLBACK: &str = "https://harbor.172.31.19.17.nip.io/c/oidc/callback";
/// The bcrypt hash of `P@88w0rd`, from deploy/examples/admin-user.yaml.
const ADMIN_HASH: &str = "$2b$10$Cs0FMLN4DVtYpwmXOXKB2OA5yHgMU9pC0bw85G8LoTMh15a3LfUTa";
const ADMIN_PASSWORD: &str = "P@88w0rd";
/// How long any awaited condition may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// A double of the API server and kube-idp reading from it.
struct Env {
    api: ApiServer,
    idp: Running,
    base: String,
    /// kube-idp's clock: it starts at the real time and moves only when told to.
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

impl Env {
    /// Starts both; the double already holds `objects`, and fails every request until told
    /// otherwise when `failing`.
    async fn start(objects: Vec<Value>, failing: bool) -> Env {
        init_logs();
        let api = ApiServer::start().await;
        api.fail_with_500(failing);
        for object in objects {
            api.apply(object);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = api.write_kubeconfig(dir.path());
        let client = kube_idp::sources::kube::client_from_kubeconfig(&kubeconfig)
            .await
            .expect("kube client from the double's kubeconfig");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind kube-idp on loopback");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let args = ServeArgs {
            issuer: Some(base.clone()),
            kubernetes: Some(true),
            ..Default::default()
        };
        let config = Config::resolve(args).expect("config");
        let clock = ManualClock::at(SystemClock.now());
        let idp = kube_idp::server::start_with(
            config,
            Some(listener),
            kube_idp::server::StartOptions {
                kube_client: Some(client),
                clock: Some(Arc::new(clock.clone())),
            },
        )
        .await
        .expect("start kube-idp");
        Env {
            api,
            idp,
            base,
            clock,
            _dir: dir,
        }
    }

    /// Starts both and waits until kube-idp has synced.
    async fn ready(objects: Vec<Value>) -> Env {
        let env = Env::start(objects, false).await;
        let registry = env.idp.provider.registry.clone();
        wait_for("the first sync", || registry.is_ready()).await;
        env
    }

    async fn stop(self) {
        self.idp.stop().await;
        self.api.stop().await;
    }

    fn has_client(&self, id: &str) -> bool {
        self.idp.provider.registry.clients().get(id).is_some()
    }

    fn user_state(&self, name: &str) -> Option<String> {
        let users = self.idp.provider.registry.users();
        users.get(name).map(|a| a.state.clone())
    }

    /// `status.state` of the User as the API server stores it.
    fn stored_state(&self, name: &str) -> Option<String> {
        let user = self.api.get(Kind::User, "", name)?;
        user["status"]["state"].as_str().map(str::to_string)
    }

    /// The patches of `name`'s status subresource received so far.
    fn status_patches(&self, name: &str) -> Vec<Value> {
        let patches = self.api.patches().into_iter();
        let of_status =
            patches.filter(|p| p.name == name && p.subresource.as_deref() == Some("status"));
        of_status.map(|p| p.body).collect()
    }

    fn events_about(&self, name: &str, reason: &str) -> usize {
        let events = self.api.events();
        let about = |e: &&Value| {
            e["regarding"]["name"].as_str() == Some(name) && e["reason"].as_str() == Some(reason)
        };
        events.iter().filter(about).count()
    }
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KUBE_IDP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Polls `condition` until it holds, failing the test after [`DEADLINE`].
async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn client_secret(secret_name: &str, configuration: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": secret_name, "namespace": NAMESPACE,
            "labels": { "config.kubesphere.io/type": "oauthclient" },
        },
        "type": "config.kubesphere.io/oauthclient",
        "stringData": { "configuration.yaml": configuration },
    })
}

/// The Harbor client of KubeSphere's OIDC guide (deploy/examples/harbor-client.yaml).
fn harbor(secret: &str) -> Value {
    let configuration = format!(
        "name: harbor\nsecret: {secret}\ngrantMethod: auto\n\
         scopeRestrictions: ['openid', 'email', 'profile']\nredirectURIs:\n- {HARBOR_CALLBACK}\n"
    );
    client_secret("oauthclient-harbor", &configuration)
}

/// A client named `name` in a Secret named `oauthclient-{name}`.
fn plain_client(name: &str) -> Value {
    let configuration =
        format!("name: {name}\nsecret: s3cret\nredirectURIs: [{HARBOR_CALLBACK}]\n");
    client_secret(&format!("oauthclient-{name}"), &configuration)
}

fn user(name: &str, password: &str, state: &str) -> Value {
    json!({
        "apiVersion": "iam.kubesphere.io/v1beta1", "kind": "User",
        "metadata": { "name": name },
        "spec": { "email": format!("{name}@kubesphere.io"), "password": password },
        "status": { "state": state },
    })
}

fn admin() -> Value {
    user("admin", ADMIN_HASH, "Active")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

fn authorize_url(base: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", "harbor")
        .append_pair("redirect_uri", HARBOR_CALLBACK)
        .append_pair("scope", "openid profile email offline_access")
        .append_pair("state", "st4te")
        .append_pair("nonce", "n0nce")
        .finish();
    format!("{base}/oauth/authorize?{query}")
}

fn hidden_input(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in the page"))
        + marker.len();
    let end = page[start..].find('"').expect("end of value") + start;
    page[start..end].to_string()
}

/// Signs in at the login form; the code from the redirect back to Harbor, or the status of
/// the page shown instead.
async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> Result<String, u16> {
    let page = http
        .get(authorize_url(base))
        .send()
        .await
        .expect("authorize");
    if page.status() != 200 {
        return Err(page.status().as_u16());
    }
    let page = page.text().await.expect("login page");
    let form = [
        ("request", hidden_input(&page, "request")),
        ("csrf", hidden_input(&page, "csrf")),
        ("username", user.to_string()),
        ("password", password.to_string()),
    ];
    let response = http
        .post(format!("{base}/oauth/login"))
        .form(&form)
        .send()
        .await
        .expect("login");
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok());
    let Some(location) = location else {
        return Err(response.status().as_u16());
    };
    let url = url::Url::parse(location).expect("redirect URL");
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned());
    code.ok_or(response.status().as_u16())
}

/// Posts to the token endpoint as Harbor, with HTTP Basic.
async fn token(base: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = http()
        .post(format!("{base}/oauth/token"))
        .basic_auth("harbor", Some(secret))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("token JSON"))
}

async fn redeem(base: &str, secret: &str, code: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", HARBOR_CALLBACK),
    ];
    token(base, secret, &form).await
}

/// The full code flow as Harbor; the token response.
async fn code_flow(base: &str, secret: &str) -> Value {
    let code = sign_in(&http(), base, "admin", ADMIN_PASSWORD)
        .await
        .expect("a code");
    let (status, body) = redeem(base, secret, &code).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn harbor_secret_in_the_cluster_completes_the_code_flow() {
    let env = Env::ready(vec![harbor("password123"), admin()]).await;
    let harbor = rp::discover(&env.base, "harbor", Some("password123"), HARBOR_CALLBACK).await;
    let request = rp::authorization(&harbor, &["email", "profile", "offline_access"]);
    let browser = Browser::new();
    let form = browser.open(&request.url).await;
    assert!(matches!(form, Step::Login { status: 200, .. }), "{form:?}");
    let back = browser
        .log_in_at(&env.base, &form, "admin", ADMIN_PASSWORD)
        .await;
    let location = back.location();
    assert!(location.starts_with(HARBOR_CALLBACK), "{location}");
    let state = query_param(location, "state");
    assert_eq!(state.as_deref(), Some(request.state.secret().as_str()));
    assert_eq!(
        query_param(location, "iss").as_deref(),
        Some(env.base.as_str())
    );
    let code = query_param(location, "code").expect("a code");

    // client_secret_basic; the ID token's signature, iss, aud and nonce are verified.
    let (tokens, claims) = rp::redeem(&harbor, code, &request.nonce).await;
    assert_eq!(claims.subject().as_str(), "admin");
    assert_eq!(claims.issuer().as_str(), env.base);
    let audiences: Vec<&str> = claims.audiences().iter().map(|a| a.as_str()).collect();
    assert_eq!(audiences, ["harbor"]);
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("admin@kubesphere.io")
    );
    assert!(tokens.id_token().is_some() && tokens.refresh_token().is_some());
    let scopes: Vec<&str> = tokens
        .scopes()
        .expect("granted scopes")
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(
        scopes,
        ["openid", "email", "profile"],
        "offline_access dropped"
    );
    let userinfo = rp::userinfo(&harbor, tokens.access_token()).await;
    assert_eq!(userinfo.subject(), claims.subject());
    env.stop().await;
}

#[tokio::test]
async fn changed_client_secret_takes_effect() {
    let env = Env::ready(vec![harbor("password123"), admin()]).await;
    env.api.apply(harbor("n3w-secret"));
    let registry = env.idp.provider.registry.clone();
    wait_for("the new secret", || {
        let clients = registry.clients();
        clients
            .get("harbor")
            .and_then(|c| c.secret.as_ref())
            .is_some_and(|s| s.matches("n3w-secret"))
    })
    .await;
    code_flow(&env.base, "n3w-secret").await;
    let code = sign_in(&http(), &env.base, "admin", ADMIN_PASSWORD)
        .await
        .expect("code");
    let (status, body) = redeem(&env.base, "password123", &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    env.stop().await;
}

#[tokio::test]
async fn deleted_client_secret_makes_authorize_an_error_page() {
    let env = Env::ready(vec![harbor("password123"), admin()]).await;
    assert!(env
        .api
        .delete(Kind::Secret, NAMESPACE, "oauthclient-harbor"));
    wait_for("the client to go", || !env.has_client("harbor")).await;
    let response = http()
        .get(authorize_url(&env.base))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    env.stop().await;
}

#[tokio::test]
async fn secret_without_the_type_is_skipped_with_an_event() {
    let mut untyped = plain_client("untyped");
    untyped.as_object_mut().expect("object").remove("type");
    let env = Env::ready(vec![untyped, plain_client("good")]).await;
    assert!(env.has_client("good"));
    assert!(!env.has_client("untyped"));
    wait_for("an InvalidClient event", || {
        env.events_about("oauthclient-untyped", "InvalidClient") == 1
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn secret_without_the_label_is_not_a_client() {
    let mut unlabelled = plain_client("unlabelled");
    unlabelled["metadata"]["labels"] = json!({ "app": "something-else" });
    let env = Env::ready(vec![unlabelled, plain_client("good")]).await;
    assert!(env.has_client("good"));
    assert!(!env.has_client("unlabelled"));
    env.api.apply(plain_client("later"));
    wait_for("a later client", || env.has_client("later")).await;
    assert!(env.api.events().is_empty(), "{:?}", env.api.events());
    env.stop().await;
}

#[tokio::test]
async fn secret_with_broken_yaml_is_reported_once() {
    let broken = client_secret("oauthclient-broken", "name: [unclosed\n");
    let env = Env::ready(vec![broken, plain_client("good")]).await;
    assert!(env.has_client("good"));
    wait_for("an InvalidClient event", || {
        env.events_about("oauthclient-broken", "InvalidClient") == 1
    })
    .await;
    env.api.apply(plain_client("later"));
    wait_for("a later client", || env.has_client("later")).await;
    env.api.apply(plain_client("even-later"));
    wait_for("another client", || env.has_client("even-later")).await;
    assert_eq!(env.api.event_writes(), 1, "the Event was written again");
    let event = env.api.events().into_iter().next().expect("event");
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["metadata"]["namespace"], NAMESPACE);
    env.stop().await;
}

#[tokio::test]
async fn duplicate_client_name_keeps_the_oldest_secret() {
    let older = client_secret(
        "a-older",
        &format!("name: twin\nsecret: old\nredirectURIs: [{HARBOR_CALLBACK}]\n"),
    );
    let env = Env::ready(vec![older]).await;
    let newer = client_secret("0-newer", "name: twin\nsecret: new\n");
    env.api.apply(newer);
    wait_for("a DuplicateClient event", || {
        env.events_about("0-newer", "DuplicateClient") == 1
    })
    .await;
    let clients = env.idp.provider.registry.clients();
    assert_eq!(clients.get("twin").expect("twin").origin.name, "a-older");
    assert_eq!(env.events_about("a-older", "DuplicateClient"), 0);
    env.stop().await;
}

#[tokio::test]
async fn clear_text_password_is_replaced_by_a_hash_patch() {
    let env = Env::ready(vec![
        harbor("password123"),
        user("admin", ADMIN_PASSWORD, "Active"),
    ])
    .await;
    wait_for("the hash patch", || {
        let stored = env.api.get(Kind::User, "", "admin").expect("admin");
        stored["spec"]["password"]
            .as_str()
            .is_some_and(|p| p.starts_with("$2"))
    })
    .await;
    let patches = env.api.patches();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0].content_type, "application/merge-patch+json");
    assert_ne!(patches[0].body["spec"]["password"], ADMIN_PASSWORD);
    let registry = env.idp.provider.registry.clone();
    wait_for("the hashed account", || {
        registry.users().get("admin").is_some()
    })
    .await;
    code_flow(&env.base, "password123").await;
    env.stop().await;
}

#[tokio::test]
async fn user_that_does_not_fit_the_schema_is_skipped_with_an_event() {
    let mut odd = user("odd", ADMIN_HASH, "Active");
    odd["spec"]["groups"] = json!("not-a-list");
    let env = Env::ready(vec![harbor("password123"), admin(), odd]).await;
    assert!(env.user_state("admin").is_some());
    assert!(env.user_state("odd").is_none());
    wait_for("an InvalidUser event", || {
        env.events_about("odd", "InvalidUser") == 1
    })
    .await;
    let event = env.api.events().into_iter().next().expect("event");
    assert_eq!(
        event["metadata"]["namespace"], "default",
        "User events go to default"
    );
    assert!(!event.to_string().contains(ADMIN_HASH));
    env.stop().await;
}

#[tokio::test]
async fn disabled_user_cannot_log_in() {
    let env = Env::ready(vec![harbor("password123"), admin()]).await;
    code_flow(&env.base, "password123").await;
    env.api.apply(user("admin", ADMIN_HASH, "Disabled"));
    wait_for("the disabled state", || {
        env.user_state("admin").as_deref() == Some("Disabled")
    })
    .await;
    let refused = sign_in(&http(), &env.base, "admin", ADMIN_PASSWORD).await;
    assert_eq!(
        refused,
        Err(401),
        "the login form is shown again, with no code"
    );
    env.stop().await;
}

#[tokio::test]
async fn disabled_users_refresh_token_is_refused() {
    let env = Env::ready(vec![harbor("password123"), admin()]).await;
    let tokens = code_flow(&env.base, "password123").await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh_token");
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let (status, body) = token(&env.base, "password123", &form).await;
    assert_eq!(
        status, 200,
        "the refresh token works while the user is Active: {body}"
    );
    let refresh = body["refresh_token"]
        .as_str()
        .expect("rotated refresh_token");
    env.api.apply(user("admin", ADMIN_HASH, "Disabled"));
    wait_for("the disabled state", || {
        env.user_state("admin").as_deref() == Some("Disabled")
    })
    .await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let (status, body) = token(&env.base, "password123", &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    env.stop().await;
}

#[tokio::test]
async fn deleted_users_browser_session_no_longer_signs_in() {
    let env = Env::ready(vec![harbor("password123"), admin()]).await;
    let browser = Browser::new();
    let form = browser.open(&authorize_url(&env.base)).await;
    let back = browser
        .log_in_at(&env.base, &form, "admin", ADMIN_PASSWORD)
        .await;
    assert!(query_param(back.location(), "code").is_some(), "{back:?}");
    let again = browser.open(&authorize_url(&env.base)).await;
    assert!(
        query_param(again.location(), "code").is_some(),
        "the session signs in without the form"
    );
    assert!(env.api.delete(Kind::User, "", "admin"));
    wait_for("the user to go", || env.user_state("admin").is_none()).await;
    let after = browser.open(&authorize_url(&env.base)).await;
    assert!(
        matches!(after, Step::Login { status: 200, .. }),
        "the session of a deleted user is refused: {after:?}"
    );
    env.stop().await;
}

/// Ten failed logins for `name` in one browser; the form shown after the last.
async fn fail_ten_logins(env: &Env, browser: &Browser, name: &str) -> Step {
    let mut form = browser.open(&authorize_url(&env.base)).await;
    for _ in 0..10 {
        form = browser.log_in_at(&env.base, &form, name, "wrong").await;
        assert!(matches!(form, Step::Login { status: 401, .. }), "{form:?}");
    }
    form
}

#[tokio::test]
async fn ten_failed_logins_set_the_user_to_auth_limit_exceeded_until_the_lock_ends() {
    let env = Env::ready(vec![harbor("password123"), admin()]).await;
    let browser = Browser::new();
    let form = fail_ten_logins(&env, &browser, "admin").await;

    let patch = eventually("the status patch", DEADLINE, || async {
        env.status_patches("admin").into_iter().next()
    })
    .await;
    let status = &patch["status"];
    assert_eq!(status["state"], "AuthLimitExceeded");
    let reason = status["reason"].as_str().expect("a reason");
    assert!(reason.contains("failed sign-in attempts"), "{reason}");
    let since = status["lastTransitionTime"].as_str().expect("a time");
    assert_eq!(kube_idp::time::parse_rfc3339(since), Some(env.clock.now()));
    assert!(
        patch["metadata"]["resourceVersion"].is_string(),
        "the patch names the version it was decided on"
    );
    let stored = env.api.get(Kind::User, "", "admin").expect("admin");
    assert_eq!(stored["status"]["state"], "AuthLimitExceeded");
    assert_eq!(
        stored["spec"]["password"], ADMIN_HASH,
        "only the status changed"
    );
    wait_for("the locked state in kube-idp", || {
        env.user_state("admin").as_deref() == Some("AuthLimitExceeded")
    })
    .await;

    // The right password does not sign in while locked, in this browser or another.
    let refused = browser
        .log_in_at(&env.base, &form, "admin", ADMIN_PASSWORD)
        .await;
    let Step::Login { html, .. } = &refused else {
        panic!("expected the login form again: {refused:?}")
    };
    assert!(html.contains("Too many failed sign-in attempts"), "{html}");
    assert!(sign_in(&http(), &env.base, "admin", ADMIN_PASSWORD)
        .await
        .is_err());

    // KubeSphere's rule: the lock ends the lock period after lastTransitionTime.
    env.clock.advance(601);
    wait_for("the User to be Active again", || {
        env.stored_state("admin").as_deref() == Some("Active")
    })
    .await;
    let unlock = env.status_patches("admin").pop().expect("the unlock patch");
    assert_eq!(unlock["status"]["state"], "Active");
    let since = unlock["status"]["lastTransitionTime"]
        .as_str()
        .expect("a time");
    assert_eq!(kube_idp::time::parse_rfc3339(since), Some(env.clock.now()));
    wait_for("the active state in kube-idp", || {
        env.user_state("admin").as_deref() == Some("Active")
    })
    .await;
    sign_in(&http(), &env.base, "admin", ADMIN_PASSWORD)
        .await
        .expect("a code once the lock is over");
    env.stop().await;
}

#[tokio::test]
async fn user_locked_longer_ago_than_the_lock_period_is_set_back_to_active() {
    let mut locked = user("admin", ADMIN_HASH, "AuthLimitExceeded");
    let eleven_minutes_ago = kube_idp::time::rfc3339(SystemClock.now() - 660);
    locked["status"]["lastTransitionTime"] = json!(eleven_minutes_ago);
    locked["status"]["reason"] = json!("locked by KubeSphere");
    let mut still_locked = user("recent", ADMIN_HASH, "AuthLimitExceeded");
    let a_minute_ago = kube_idp::time::rfc3339(SystemClock.now() - 60);
    still_locked["status"]["lastTransitionTime"] = json!(a_minute_ago);
    let env = Env::ready(vec![harbor("password123"), locked, still_locked]).await;
    wait_for("the User to be Active again", || {
        env.stored_state("admin").as_deref() == Some("Active")
    })
    .await;
    let stored = env.api.get(Kind::User, "", "admin").expect("admin");
    assert!(stored["status"].get("reason").is_none(), "{stored}");
    wait_for("the active state in kube-idp", || {
        env.user_state("admin").as_deref() == Some("Active")
    })
    .await;
    code_flow(&env.base, "password123").await;
    assert_eq!(
        env.stored_state("recent").as_deref(),
        Some("AuthLimitExceeded")
    );
    assert!(
        env.status_patches("recent").is_empty(),
        "its lock has not ended"
    );
    env.stop().await;
}

#[tokio::test]
async fn deleted_users_refresh_token_is_refused() {
    let env = Env::ready(vec![harbor("password123"), admin()]).await;
    let tokens = code_flow(&env.base, "password123").await;
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string();
    assert!(env.api.delete(Kind::User, "", "admin"));
    wait_for("the user to go", || env.user_state("admin").is_none()).await;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let (status, body) = token(&env.base, "password123", &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    env.stop().await;
}

#[tokio::test]
async fn more_than_a_page_of_secrets_is_listed_whole() {
    let secrets: Vec<Value> = (0..520)
        .map(|i| plain_client(&format!("c{i:03}")))
        .collect();
    let env = Env::ready(secrets).await;
    assert_eq!(env.idp.provider.registry.clients().len(), 520);
    assert!(
        env.api.lists() >= 3,
        "two pages of Secrets and one of Users"
    );
    env.stop().await;
}

#[tokio::test]
async fn readiness_waits_for_the_first_sync() {
    let env = Env::start(vec![harbor("password123"), admin()], true).await;
    wait_for("kube-idp to try the API server", || {
        env.api.failed_requests() >= 2
    })
    .await;
    let http = http();
    let readyz = format!("{}/readyz", env.base);
    assert_eq!(
        http.get(&readyz).send().await.expect("readyz").status(),
        503
    );
    let healthz = http
        .get(format!("{}/healthz", env.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(healthz.status(), 200);
    env.api.fail_with_500(false);
    let registry = env.idp.provider.registry.clone();
    wait_for("readiness", || registry.is_ready()).await;
    assert_eq!(
        http.get(&readyz).send().await.expect("readyz").status(),
        200
    );
    env.stop().await;
}

/// Polls `/oauth/authorize` for Harbor until stopped; counts the answers that were not the
/// login page.
fn poll_authorize(base: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(usize, usize)> {
    tokio::spawn(async move {
        let http = http();
        let (mut served, mut failed) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            let response = http
                .get(authorize_url(&base))
                .send()
                .await
                .expect("authorize");
            match response.status().as_u16() {
                200 => served += 1,
                _ => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (served, failed)
    })
}

#[tokio::test]
async fn failing_api_server_keeps_the_last_good_set() {
    let env = Env::ready(vec![harbor("password123"), admin()]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let poller = poll_authorize(env.base.clone(), stop.clone());
    env.api.fail_with_500(true);
    env.api.apply(plain_client("late"));
    wait_for("retries during the outage", || {
        env.api.failed_requests() >= 2
    })
    .await;
    assert!(!env.has_client("late"));
    assert!(env.has_client("harbor"));
    env.api.fail_with_500(false);
    wait_for("the change made during the outage", || {
        env.has_client("late")
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let (served, failed) = poller.await.expect("poller");
    assert!(served > 0);
    assert_eq!(failed, 0, "authorize failed during the outage");
    assert!(env.user_state("admin").is_some());
    env.stop().await;
}

#[tokio::test]
async fn restart_with_410_gone_resyncs_without_serving_an_empty_set() {
    let env = Env::ready(vec![harbor("password123"), admin()]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let poller = poll_authorize(env.base.clone(), stop.clone());
    env.api.go_away().await;
    assert!(std::net::TcpStream::connect(env.api.url().trim_start_matches("http://")).is_err());
    let registry = env.idp.provider.registry.clone();
    let watched = Instant::now();
    wait_for("kube-idp serving through the outage", || {
        assert!(
            registry.clients().get("harbor").is_some() && registry.users().get("admin").is_some()
        );
        watched.elapsed() > Duration::from_secs(1)
    })
    .await;
    env.api.apply(plain_client("late"));
    env.api.restart();
    env.api.come_back().await;
    wait_for("the resync", || env.has_client("late")).await;
    stop.store(true, Ordering::Relaxed);
    let (served, failed) = poller.await.expect("poller");
    assert!(served > 0);
    assert_eq!(failed, 0, "authorize failed during the outage");
    assert!(
        env.api.gone_sent() >= 1,
        "the watch was resumed with 410 Gone"
    );
    assert!(env.has_client("harbor") && env.user_state("admin").is_some());
    code_flow(&env.base, "password123").await;
    env.stop().await;
}

/// Tells whoever runs the tests that a test did not run. Written to the process's stderr
/// handle, which the test harness does not capture (it captures `eprintln!`), so the line
/// shows in `cargo test` output even though the test passes.
fn skip_notice(test: &str, why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "note: {test} skipped: {why}");
}

#[tokio::test]
async fn real_cluster_syncs_when_kubeconfig_is_set() {
    if std::env::var_os("KUBECONFIG").is_none() {
        skip_notice(
            "real_cluster_syncs_when_kubeconfig_is_set",
            "KUBECONFIG is not set, so there is no real cluster to test against",
        );
        return;
    }
    init_logs();
    let client = kube_idp::sources::kube::default_client()
        .await
        .expect("a Kubernetes client from KUBECONFIG");
    sign_in_page_appears_for_a_client_secret_created_in_a_new_namespace(client).await;
}

#[tokio::test]
async fn real_cluster_check_passes_against_the_double() {
    init_logs();
    let api = ApiServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.write_kubeconfig(dir.path());
    let client = kube_idp::sources::kube::client_from_kubeconfig(&kubeconfig)
        .await
        .expect("kube client from the double's kubeconfig");
    let namespace =
        sign_in_page_appears_for_a_client_secret_created_in_a_new_namespace(client).await;
    assert!(api.namespaces().is_empty(), "{namespace} is deleted again");
    assert!(api
        .get(Kind::Secret, &namespace, "oauthclient-kube-idp-e2e")
        .is_none());
    api.stop().await;
}

/// The real-cluster check: creates a namespace `kube-idp-e2e-<random>` and in it an
/// oauthclient Secret, starts kube-idp in `--kubernetes` mode for that namespace, expects the
/// sign-in page for the client, then deletes the Secret and the namespace (with whatever
/// kube-idp kept there), whether or not the check passed. Returns the namespace.
async fn sign_in_page_appears_for_a_client_secret_created_in_a_new_namespace(
    client: kube::Client,
) -> String {
    use futures::FutureExt as _;
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use kube::api::{DeleteParams, PostParams};

    let suffix = kube_idp::secret::random_token(6)
        .to_lowercase()
        .replace(['-', '_'], "x");
    let name = format!("kube-idp-e2e-{suffix}");
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": name } })).expect("namespace");
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create the test namespace");
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), &name);
    let mut secret = client_secret("oauthclient-kube-idp-e2e", &e2e_client_configuration());
    secret["metadata"]["namespace"] = json!(name);
    let secret: Secret = serde_json::from_value(secret).expect("client Secret");
    let created = secrets.create(&PostParams::default(), &secret).await;

    let outcome = if created.is_ok() {
        let check = sign_in_page_appears(client.clone(), &name);
        std::panic::AssertUnwindSafe(check).catch_unwind().await
    } else {
        Ok(())
    };

    let secret_deleted = match &created {
        Ok(_) => secrets
            .delete("oauthclient-kube-idp-e2e", &DeleteParams::default())
            .await
            .map(drop),
        Err(_) => Ok(()),
    };
    let namespace_deleted = namespaces.delete(&name, &DeleteParams::default()).await;
    created.expect("create the client Secret");
    secret_deleted.expect("delete the client Secret");
    namespace_deleted.expect("delete the test namespace");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    name
}

/// The client the real-cluster check registers.
fn e2e_client_configuration() -> String {
    format!(
        "name: kube-idp-e2e\nsecret: e2e-secret\ngrantMethod: auto\n\
         redirectURIs:\n- {HARBOR_CALLBACK}\n"
    )
}

/// Starts kube-idp for the client Secrets of `namespace` and waits for the sign-in page of
/// the client `kube-idp-e2e`.
async fn sign_in_page_appears(client: kube::Client, namespace: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let args = ServeArgs {
        issuer: Some(base.clone()),
        kubernetes: Some(true),
        namespace: Some(namespace.to_string()),
        ..Default::default()
    };
    let config = Config::resolve(args).expect("config");
    let options = kube_idp::server::StartOptions {
        kube_client: Some(client),
        ..Default::default()
    };
    let idp = kube_idp::server::start_with(config, Some(listener), options)
        .await
        .expect("start kube-idp");
    let registry = idp.provider.registry.clone();
    wait_for("the first sync with the cluster", || registry.is_ready()).await;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", "kube-idp-e2e")
        .append_pair("redirect_uri", HARBOR_CALLBACK)
        .append_pair("scope", "openid")
        .append_pair("state", "e2e")
        .finish();
    let url = format!("{base}/oauth/authorize?{query}");
    let page = eventually("the sign-in page for the new client", DEADLINE, || async {
        match Browser::new().open(&url).await {
            Step::Login {
                status: 200, html, ..
            } => Some(html),
            _ => None,
        }
    })
    .await;
    assert!(
        page.contains("name=\"password\""),
        "a real sign-in form: {page}"
    );
    idp.stop().await;
}
