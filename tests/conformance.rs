//! A black-box conformance suite modelled on the OpenID Foundation's Basic OP and Config OP
//! test plans and on RFC 6749, 6750, 7009, 7636, 7662, 9207 and 9700, run over HTTP against
//! the real server. Each test names the behaviour it verifies.

mod support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::browser::{authorize_url, query_param, Browser, Step};
use support::idp::TestIdp;
use support::manifests::{client_secret, user, Manifests, ADMIN_PASSWORD, HARBOR_CALLBACK};

const APP: &str = "https://app.example/callback";
const APP_LOGOUT: &str = "https://app.example/signed-out";

/// The bcrypt hash of the example admin's password, `P@88w0rd`.
const ADMIN_HASH: &str = "$2b$10$Cs0FMLN4DVtYpwmXOXKB2OA5yHgMU9pC0bw85G8LoTMh15a3LfUTa";

/// The examples plus clients for consent, the password grant, logout and odd secrets.
async fn idp() -> TestIdp {
    TestIdp::start(manifests()).await
}

/// [`idp`] with a second account, `alice`, whose password is the admin's.
async fn idp_with_alice() -> TestIdp {
    let manifests = manifests();
    let alice = user("alice", "alice@example.com", ADMIN_HASH, Some("Active"));
    manifests.write("alice.yaml", &alice);
    TestIdp::start(manifests).await
}

fn manifests() -> Manifests {
    let manifests = Manifests::examples();
    let app = |name: &str, extra: &str| {
        client_secret(
            name,
            &format!(
                "name: {name}\nsecret: {name}-secret\nredirectURIs: ['{APP}']\n\
             postLogoutRedirectURIs: ['{APP_LOGOUT}']\n\
             scopeRestrictions: [openid, profile, email, groups, offline_access]\n{extra}"
            ),
        )
    };
    manifests.write("asking.yaml", &app("asking", "grantMethod: prompt\n"));
    manifests.write("cli.yaml", &app("cli", "trusted: true\n"));
    manifests.write("app.yaml", &app("app", ""));
    manifests.write(
        "odd.yaml",
        &client_secret(
            "odd",
            &format!("name: odd\nsecret: 'a:b%c+d e'\nredirectURIs: ['{APP}']\n"),
        ),
    );
    manifests
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post(
    idp: &TestIdp,
    path: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let mut request = http().post(idp.url(path)).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Signs `browser` in at `client` and redeems the code; returns the token response.
async fn tokens_for(idp: &TestIdp, browser: &Browser, client: &str, scope: &str) -> Value {
    let url = authorize_url(idp, client, APP, &[("scope", scope), ("nonce", "n")]);
    let step = browser.open(&url).await;
    let step = match step {
        Step::Login { .. } => browser.log_in(idp, &step, "admin", ADMIN_PASSWORD).await,
        other => other,
    };
    let code = query_param(step.location(), "code").expect("a code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", APP),
    ];
    let (status, body) = post(
        idp,
        "/oauth/token",
        &form,
        Some((client, &format!("{client}-secret"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn userinfo_status(idp: &TestIdp, access_token: &str) -> StatusCode {
    http()
        .get(idp.url("/oauth/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
}

// --- Discovery and keys (Config OP) ---

#[tokio::test]
async fn discovery_advertises_exactly_what_is_supported() {
    let idp = idp().await;
    let doc: Value = http()
        .get(idp.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = idp.issuer.as_str();
    let auth_methods = json!(["client_secret_basic", "client_secret_post", "none"]);
    // Every entry is exercised by a test of its own; anything added here must be too.
    let expected = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "userinfo_endpoint": format!("{issuer}/oauth/userinfo"),
        "jwks_uri": format!("{issuer}/oauth/keys"),
        "end_session_endpoint": format!("{issuer}/oauth/logout"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_methods_supported": auth_methods,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "password"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email", "groups", "offline_access"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "name",
            "preferred_username", "locale", "email", "email_verified", "groups",
        ],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": true,
    });
    assert_eq!(doc, expected);
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let url = doc[endpoint]
            .as_str()
            .unwrap_or_else(|| panic!("{endpoint} missing"));
        assert!(url.starts_with(&idp.issuer), "{endpoint}: {url}");
        let status = http().get(url).send().await.unwrap().status();
        assert_ne!(status, StatusCode::NOT_FOUND, "{endpoint} is served");
    }
}

#[tokio::test]
async fn id_token_is_rs256_with_a_kid_published_in_the_jwks() {
    let idp = idp().await;
    let tokens = tokens_for(&idp, &Browser::new(), "app", "openid").await;
    let header = jwt_part(tokens["id_token"].as_str().unwrap(), 0);
    assert_eq!(header["alg"], "RS256");
    let jwks: Value = http()
        .get(idp.url("/oauth/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&Value> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kid"])
        .collect();
    assert!(kids.contains(&&header["kid"]), "{header} not in {jwks}");
    for key in jwks["keys"].as_array().unwrap() {
        assert!(key.get("d").is_none(), "no private key material");
    }
}

#[tokio::test]
async fn id_token_carries_the_required_claims() {
    let idp = idp().await;
    let tokens = tokens_for(&idp, &Browser::new(), "app", "openid profile email").await;
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "azp",
        "at_hash",
        "name",
        "preferred_username",
        "email",
        "email_verified",
        "groups",
    ] {
        assert!(claims.get(claim).is_some(), "{claim} missing from {claims}");
    }
    assert_eq!(claims["nonce"], "n");
    assert_eq!(claims["email_verified"], json!(true));
}

// --- Authorization endpoint (Basic OP, RFC 6749 §4.1, OIDC Core §3.1.2) ---

#[tokio::test]
async fn authorization_request_by_post_is_accepted() {
    let idp = idp().await;
    let browser = Browser::new();
    let form = [
        ("client_id", "app"),
        ("redirect_uri", APP),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    let response = browser
        .http
        .post(idp.url("/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("name=\"csrf\""));
}

#[tokio::test]
async fn prompt_login_shows_the_form_despite_a_session() {
    let idp = idp().await;
    let browser = Browser::new();
    tokens_for(&idp, &browser, "app", "openid").await;
    let step = browser
        .open(&authorize_url(&idp, "app", APP, &[("prompt", "login")]))
        .await;
    assert!(matches!(step, Step::Login { .. }), "{step:?}");
}

#[tokio::test]
async fn max_age_older_than_the_login_asks_again_and_auth_time_is_kept() {
    let idp = idp().await;
    let browser = Browser::new();
    let first = tokens_for(&idp, &browser, "app", "openid").await;
    let auth_time = jwt_part(first["id_token"].as_str().unwrap(), 1)["auth_time"].clone();
    idp.clock.advance(120);
    let fresh_enough = browser
        .open(&authorize_url(&idp, "app", APP, &[("max_age", "300")]))
        .await;
    assert!(
        matches!(fresh_enough, Step::Redirect { .. }),
        "{fresh_enough:?}"
    );
    let too_old = browser
        .open(&authorize_url(&idp, "app", APP, &[("max_age", "60")]))
        .await;
    assert!(matches!(too_old, Step::Login { .. }), "{too_old:?}");
    let again = tokens_for(&idp, &Browser::new(), "app", "openid").await;
    assert!(
        jwt_part(again["id_token"].as_str().unwrap(), 1)["auth_time"].as_i64() > auth_time.as_i64()
    );
}

#[tokio::test]
async fn request_objects_are_refused_as_not_supported() {
    let idp = idp().await;
    let step = Browser::new()
        .open(&authorize_url(&idp, "app", APP, &[("request", "eyJ.x.y")]))
        .await;
    assert_eq!(
        query_param(step.location(), "error").as_deref(),
        Some("request_not_supported")
    );
}

#[tokio::test]
async fn unknown_parameters_and_hints_are_ignored() {
    let idp = idp().await;
    let extra = [
        ("ui_locales", "de"),
        ("login_hint", "admin"),
        ("foo", "bar"),
        ("display", "page"),
    ];
    let step = Browser::new()
        .open(&authorize_url(&idp, "app", APP, &extra))
        .await;
    let Step::Login { html, .. } = &step else {
        panic!("{step:?}")
    };
    assert!(
        html.contains("value=\"admin\""),
        "login_hint prefills the form"
    );
}

#[tokio::test]
async fn offline_access_outside_the_restrictions_is_dropped_not_fatal() {
    let idp = idp().await;
    let url = authorize_url(
        &idp,
        "harbor",
        HARBOR_CALLBACK,
        &[("scope", "openid email offline_access")],
    );
    let location = Browser::new()
        .sign_in(&idp, &url, "admin", ADMIN_PASSWORD)
        .await;
    assert!(query_param(&location, "code").is_some(), "{location}");
}

// --- Consent (grantMethod prompt) ---

#[tokio::test]
async fn consent_is_asked_once_then_remembered() {
    let idp = idp().await;
    let browser = Browser::new();
    let url = authorize_url(&idp, "asking", APP, &[("scope", "openid email")]);
    let form = browser.open(&url).await;
    let consent = browser.log_in(&idp, &form, "admin", ADMIN_PASSWORD).await;
    let Step::Form {
        status: 200,
        action,
        html,
        ..
    } = &consent
    else {
        panic!("{consent:?}")
    };
    assert!(action.ends_with("/oauth/consent"));
    assert!(
        html.contains("asking") && html.contains("See your email address"),
        "{html}"
    );
    let allow = submit_consent(&idp, &browser, &consent, "allow").await;
    assert!(query_param(allow.location(), "code").is_some());
    let again = browser.open(&url).await;
    assert!(
        query_param(again.location(), "code").is_some(),
        "consent remembered"
    );
    let forced = browser
        .open(&authorize_url(
            &idp,
            "asking",
            APP,
            &[("prompt", "consent")],
        ))
        .await;
    assert!(
        matches!(forced, Step::Form { .. }),
        "prompt=consent asks again"
    );
}

#[tokio::test]
async fn consent_page_names_the_groups_every_id_token_carries() {
    let idp = idp().await;
    let browser = Browser::new();
    let url = authorize_url(&idp, "asking", APP, &[("scope", "openid"), ("nonce", "n")]);
    let form = browser.open(&url).await;
    let consent = browser.log_in(&idp, &form, "admin", ADMIN_PASSWORD).await;
    let Step::Form { html, .. } = &consent else {
        panic!("{consent:?}")
    };
    assert!(
        html.contains("See the groups you belong to: platform-admins"),
        "groups are released without the groups scope, so the page says so: {html}"
    );
    assert!(
        !html.contains("email address") && !html.contains("See your name"),
        "only what is released: {html}"
    );
    let allow = submit_consent(&idp, &browser, &consent, "allow").await;
    let code = query_param(allow.location(), "code").expect("a code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", APP),
    ];
    let (status, tokens) = post(
        &idp,
        "/oauth/token",
        &form,
        Some(("asking", "asking-secret")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["groups"], json!(["platform-admins"]));
    assert!(claims.get("email").is_none());
}

#[tokio::test]
async fn denied_consent_returns_access_denied() {
    let idp = idp().await;
    let browser = Browser::new();
    let form = browser.open(&authorize_url(&idp, "asking", APP, &[])).await;
    let consent = browser.log_in(&idp, &form, "admin", ADMIN_PASSWORD).await;
    let deny = submit_consent(&idp, &browser, &consent, "deny").await;
    assert_eq!(
        query_param(deny.location(), "error").as_deref(),
        Some("access_denied")
    );
}

#[tokio::test]
async fn prompt_none_without_consent_is_consent_required() {
    let idp = idp().await;
    let browser = Browser::new();
    tokens_for(&idp, &browser, "app", "openid").await;
    let step = browser
        .open(&authorize_url(&idp, "asking", APP, &[("prompt", "none")]))
        .await;
    assert_eq!(
        query_param(step.location(), "error").as_deref(),
        Some("consent_required")
    );
}

async fn submit_consent(idp: &TestIdp, browser: &Browser, page: &Step, decision: &str) -> Step {
    let Step::Form { request, csrf, .. } = page else {
        panic!("expected the consent form: {page:?}")
    };
    let form = [
        ("request", request.as_str()),
        ("csrf", csrf.as_str()),
        ("decision", decision),
    ];
    let response = browser
        .http
        .post(idp.url("/oauth/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    Step::Redirect {
        status: 303,
        location,
    }
}

// --- Token endpoint (RFC 6749 §2.3, §4.1.3, §5; RFC 7636; RFC 9700) ---

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_so_reserved_characters_work() {
    let idp = idp().await;
    let location = Browser::new()
        .sign_in(
            &idp,
            &authorize_url(&idp, "odd", APP, &[]),
            "admin",
            ADMIN_PASSWORD,
        )
        .await;
    let code = query_param(&location, "code").unwrap();
    let encoded: String = form_urlencoded::byte_serialize(b"a:b%c+d e").collect();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", APP),
    ];
    let (status, body) = post(&idp, "/oauth/token", &form, Some(("odd", &encoded))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn token_request_must_be_a_form() {
    let idp = idp().await;
    let response = http()
        .post(idp.url("/oauth/token"))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn reused_code_revokes_the_tokens_it_produced() {
    let idp = idp().await;
    let location = Browser::new()
        .sign_in(
            &idp,
            &authorize_url(&idp, "app", APP, &[]),
            "admin",
            ADMIN_PASSWORD,
        )
        .await;
    let code = query_param(&location, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", APP),
    ];
    let creds = Some(("app", "app-secret"));
    let (_, tokens) = post(&idp, "/oauth/token", &form, creds).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&idp, access).await, StatusCode::OK);
    let (status, body) = post(&idp, "/oauth/token", &form, creds).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        userinfo_status(&idp, access).await,
        StatusCode::UNAUTHORIZED
    );
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ];
    let (status, _) = post(&idp, "/oauth/token", &refresh, creds).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refresh_with_narrower_scope_is_honoured_and_wider_is_invalid_scope() {
    let idp = idp().await;
    let tokens = tokens_for(&idp, &Browser::new(), "app", "openid email profile").await;
    let creds = Some(("app", "app-secret"));
    let token = tokens["refresh_token"].as_str().unwrap();
    let wider = [
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("scope", "openid groups"),
    ];
    let (status, body) = post(&idp, "/oauth/token", &wider, creds).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let narrower = [
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("scope", "openid email"),
    ];
    let (status, body) = post(&idp, "/oauth/token", &narrower, creds).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "openid email");
    let claims = jwt_part(body["id_token"].as_str().unwrap(), 1);
    assert!(claims.get("name").is_none(), "profile claims left out");
}

#[tokio::test]
async fn another_clients_refresh_token_is_invalid_grant() {
    let idp = idp().await;
    let tokens = tokens_for(&idp, &Browser::new(), "app", "openid").await;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ];
    let (status, body) = post(
        &idp,
        "/oauth/token",
        &form,
        Some(("asking", "asking-secret")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn password_grant_is_for_trusted_clients_only() {
    let idp = idp().await;
    let form = [
        ("grant_type", "password"),
        ("username", "admin"),
        ("password", ADMIN_PASSWORD),
        ("scope", "openid email"),
    ];
    let (status, body) = post(&idp, "/oauth/token", &form, Some(("cli", "cli-secret"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        jwt_part(body["id_token"].as_str().unwrap(), 1)["sub"],
        "admin"
    );
    let (status, body) = post(&idp, "/oauth/token", &form, Some(("app", "app-secret"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
    let wrong = [
        ("grant_type", "password"),
        ("username", "admin"),
        ("password", "nope"),
    ];
    let (status, body) = post(&idp, "/oauth/token", &wrong, Some(("cli", "cli-secret"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

// --- Userinfo (OIDC Core §5.3, RFC 6750) ---

#[tokio::test]
async fn userinfo_claims_follow_the_granted_scopes() {
    let idp = idp().await;
    let tokens = tokens_for(&idp, &Browser::new(), "app", "openid").await;
    let claims: Value = http()
        .get(idp.url("/oauth/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims,
        json!({"sub": "admin", "groups": ["platform-admins"]})
    );
}

#[tokio::test]
async fn userinfo_without_a_token_is_401_with_a_bearer_challenge() {
    let idp = idp().await;
    let response = http().get(idp.url("/oauth/userinfo")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
}

#[tokio::test]
async fn expired_access_token_is_refused() {
    let idp = idp().await;
    let tokens = tokens_for(&idp, &Browser::new(), "app", "openid").await;
    idp.clock.advance(7201);
    assert_eq!(
        userinfo_status(&idp, tokens["access_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
}

// --- Revocation (RFC 7009) and introspection (RFC 7662) ---

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_family() {
    let idp = idp().await;
    let tokens = tokens_for(&idp, &Browser::new(), "app", "openid").await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let creds = Some(("app", "app-secret"));
    let (status, _) = post(
        &idp,
        "/oauth/revoke",
        &[("token", token), ("token_type_hint", "refresh_token")],
        creds,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(
        &idp,
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
        creds,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn revoking_an_access_token_stops_userinfo_and_introspection() {
    let idp = idp().await;
    let tokens = tokens_for(&idp, &Browser::new(), "app", "openid email").await;
    let access = tokens["access_token"].as_str().unwrap();
    let creds = Some(("app", "app-secret"));
    let (_, active) = post(&idp, "/oauth/introspect", &[("token", access)], creds).await;
    assert_eq!(active["active"], json!(true));
    assert_eq!(active["sub"], "admin");
    assert_eq!(active["client_id"], "app");
    assert_eq!(active["scope"], "openid email");
    post(&idp, "/oauth/revoke", &[("token", access)], creds).await;
    assert_eq!(
        userinfo_status(&idp, access).await,
        StatusCode::UNAUTHORIZED
    );
    let (_, inactive) = post(&idp, "/oauth/introspect", &[("token", access)], creds).await;
    assert_eq!(inactive, json!({"active": false}));
}

#[tokio::test]
async fn another_clients_tokens_are_neither_revoked_nor_introspected() {
    let idp = idp().await;
    let tokens = tokens_for(&idp, &Browser::new(), "app", "openid").await;
    let access = tokens["access_token"].as_str().unwrap();
    let other = Some(("cli", "cli-secret"));
    let (_, seen) = post(&idp, "/oauth/introspect", &[("token", access)], other).await;
    assert_eq!(seen, json!({"active": false}));
    let (status, _) = post(&idp, "/oauth/revoke", &[("token", access)], other).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(userinfo_status(&idp, access).await, StatusCode::OK);
}

#[tokio::test]
async fn revocation_and_introspection_require_client_authentication() {
    let idp = idp().await;
    for path in ["/oauth/revoke", "/oauth/introspect"] {
        let (status, body) = post(&idp, path, &[("token", "x")], Some(("app", "wrong"))).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{path}"
        );
    }
}

// --- RP-initiated logout ---

#[tokio::test]
async fn logout_with_id_token_hint_returns_to_the_registered_uri_with_state() {
    let idp = idp().await;
    let browser = Browser::new();
    let tokens = tokens_for(&idp, &browser, "app", "openid").await;
    let mut url = url::Url::parse(&idp.url("/oauth/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", tokens["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", APP_LOGOUT)
        .append_pair("state", "bye");
    let step = browser.open(url.as_str()).await;
    assert_eq!(step.location(), format!("{APP_LOGOUT}?state=bye"));
    let after = browser.open(&authorize_url(&idp, "app", APP, &[])).await;
    assert!(
        matches!(after, Step::Login { .. }),
        "the session is gone: {after:?}"
    );
}

#[tokio::test]
async fn logout_to_an_unregistered_uri_is_refused_without_redirect() {
    let idp = idp().await;
    let browser = Browser::new();
    let tokens = tokens_for(&idp, &browser, "app", "openid").await;
    let mut url = url::Url::parse(&idp.url("/oauth/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", tokens["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", "https://evil.example/");
    let step = browser.open(url.as_str()).await;
    assert!(matches!(step, Step::Page { status: 400, .. }), "{step:?}");
    let still = browser.open(&authorize_url(&idp, "app", APP, &[])).await;
    assert!(matches!(still, Step::Redirect { .. }), "still signed in");
}

#[tokio::test]
async fn logout_without_a_hint_asks_for_confirmation() {
    let idp = idp().await;
    let browser = Browser::new();
    tokens_for(&idp, &browser, "app", "openid").await;
    let step = browser.open(&idp.url("/oauth/logout")).await;
    let Step::Form {
        action,
        request,
        csrf,
        ..
    } = &step
    else {
        panic!("expected the confirmation form: {step:?}")
    };
    assert!(action.ends_with("/oauth/logout"));
    let still = browser.open(&authorize_url(&idp, "app", APP, &[])).await;
    assert!(
        matches!(still, Step::Redirect { .. }),
        "nothing happens before confirmation"
    );
    let form = [("request", request.as_str()), ("csrf", csrf.as_str())];
    let response = browser
        .http
        .post(idp.url("/oauth/logout"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("signed out"));
    let after = browser.open(&authorize_url(&idp, "app", APP, &[])).await;
    assert!(matches!(after, Step::Login { .. }), "{after:?}");
}

// --- Login security ---

#[tokio::test]
async fn ten_failures_lock_a_login_name_for_ten_minutes() {
    let idp = idp().await;
    let browser = Browser::new();
    let url = authorize_url(&idp, "app", APP, &[]);
    let mut form = browser.open(&url).await;
    for _ in 0..10 {
        form = browser.log_in(&idp, &form, "admin", "wrong").await;
    }
    let locked = browser.log_in(&idp, &form, "admin", ADMIN_PASSWORD).await;
    let Step::Login { html, .. } = &locked else {
        panic!("{locked:?}")
    };
    assert!(html.contains("Too many failed sign-in attempts"), "{html}");
    // An unknown name locks the same way: nothing tells the two apart.
    let mut form = browser.open(&url).await;
    for _ in 0..10 {
        form = browser.log_in(&idp, &form, "ghost", "wrong").await;
    }
    let ghost = browser.log_in(&idp, &form, "ghost", "wrong").await;
    let Step::Login {
        html: ghost_html, ..
    } = &ghost
    else {
        panic!("{ghost:?}")
    };
    assert!(ghost_html.contains("Too many failed sign-in attempts"));
    idp.clock.advance(601);
    let form = browser.open(&url).await;
    let back = browser.log_in(&idp, &form, "admin", ADMIN_PASSWORD).await;
    assert!(query_param(back.location(), "code").is_some());
}

#[tokio::test]
async fn thirty_concurrent_wrong_passwords_get_at_most_ten_checked_and_lock_the_account() {
    let idp = idp().await;
    let url = authorize_url(&idp, "app", APP, &[]);
    let mut forms = Vec::new();
    for _ in 0..30 {
        let browser = Browser::new();
        let form = browser.open(&url).await;
        forms.push((browser, form));
    }
    let guesses = forms
        .iter()
        .map(|(browser, form)| browser.log_in(&idp, form, "admin", "wrong"));
    let answers = futures::future::join_all(guesses).await;
    let (mut checked, mut throttled) = (0, 0);
    for answer in &answers {
        let Step::Login { html, .. } = answer else {
            panic!("{answer:?}")
        };
        if html.contains("Invalid username or password") {
            checked += 1;
        } else if html.contains("Too many failed sign-in attempts") {
            throttled += 1;
        }
    }
    assert!(
        checked <= 10 && checked + throttled == 30,
        "{checked} passwords checked, {throttled} refused unchecked"
    );
    let browser = Browser::new();
    let form = browser.open(&url).await;
    let right = browser.log_in(&idp, &form, "admin", ADMIN_PASSWORD).await;
    let Step::Login { html, .. } = &right else {
        panic!("the right password after the burst signed in: {right:?}")
    };
    assert!(html.contains("Too many failed sign-in attempts"), "{html}");
}

#[tokio::test]
async fn right_password_after_a_few_failures_signs_in() {
    let idp = idp().await;
    let browser = Browser::new();
    let url = authorize_url(&idp, "app", APP, &[]);
    let mut form = browser.open(&url).await;
    for _ in 0..3 {
        form = browser.log_in(&idp, &form, "admin", "wrong").await;
    }
    let signed_in = browser.log_in(&idp, &form, "admin", ADMIN_PASSWORD).await;
    assert!(query_param(signed_in.location(), "code").is_some());
}

#[tokio::test]
async fn one_address_cannot_lock_out_everybody() {
    let idp = idp().await;
    let browser = Browser::new();
    let mut form = browser.open(&authorize_url(&idp, "app", APP, &[])).await;
    for i in 0..30 {
        form = browser
            .log_in(&idp, &form, &format!("user-{}", i % 5), "wrong")
            .await;
    }
    let blocked = browser.log_in(&idp, &form, "admin", ADMIN_PASSWORD).await;
    let Step::Login { html, .. } = &blocked else {
        panic!("{blocked:?}")
    };
    assert!(
        html.contains("Too many failed sign-in attempts"),
        "the address is blocked"
    );
    // No single name reached ten failures, so none is locked for other addresses.
    let (status, _) = post(
        &idp,
        "/oauth/introspect",
        &[("token", "x")],
        Some(("app", "app-secret")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

// --- Signing keys ---

#[tokio::test]
async fn rotated_keys_stay_published_so_older_tokens_verify() {
    let idp = idp().await;
    let before = tokens_for(&idp, &Browser::new(), "app", "openid").await;
    assert!(!idp.rotate_keys_if_due().await, "not due yet");
    idp.clock.advance(30 * 86_400);
    assert!(idp.rotate_keys_if_due().await);
    let jwks: Value = http()
        .get(idp.url("/oauth/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let kid = |t: &Value| jwt_part(t["id_token"].as_str().unwrap(), 0)["kid"].clone();
    let published = tokens_for(&idp, &Browser::new(), "app", "openid").await;
    assert_eq!(
        kid(&before),
        kid(&published),
        "the new key is published before it signs"
    );
    idp.clock.advance(kube_idp::keys::PUBLISH_LEAD);
    let after = tokens_for(&idp, &Browser::new(), "app", "openid").await;
    assert_ne!(kid(&before), kid(&after), "the new key signs");
    assert_eq!(
        userinfo_status(&idp, after["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    let keys = idp.running().provider.keys.current();
    let old_id_token = before["id_token"].as_str().unwrap();
    assert!(
        keys.verify(old_id_token).is_ok(),
        "a token of the retired key still verifies"
    );
}

#[tokio::test]
async fn one_login_form_submitted_twice_at_once_signs_in_once() {
    let idp = idp().await;
    let browser = Browser::new();
    let form = browser.open(&authorize_url(&idp, "app", APP, &[])).await;
    let (a, b) = tokio::join!(
        browser.log_in(&idp, &form, "admin", ADMIN_PASSWORD),
        browser.log_in(&idp, &form, "admin", ADMIN_PASSWORD)
    );
    let codes = [&a, &b]
        .iter()
        .filter(|s| matches!(s, Step::Redirect { .. }))
        .count();
    assert_eq!(codes, 1, "{a:?} {b:?}");
}

#[tokio::test]
async fn userinfo_without_credentials_gets_a_bare_challenge_and_get_ignores_a_body_token() {
    let idp = idp().await;
    let tokens = tokens_for(&idp, &Browser::new(), "app", "openid").await;
    let response = http().get(idp.url("/oauth/userinfo")).send().await.unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"kube-idp\""
    );
    let body = format!("access_token={}", tokens["access_token"].as_str().unwrap());
    let response = http()
        .get(idp.url("/oauth/userinfo"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "RFC 6750 §2.2: POST only"
    );
}

#[tokio::test]
async fn error_descriptions_carry_no_request_data() {
    let idp = idp().await;
    let url = authorize_url(&idp, "app", APP, &[("prompt", "\"><script>")]);
    let step = Browser::new().open(&url).await;
    let description = query_param(step.location(), "error_description").unwrap_or_default();
    assert!(!description.contains("script"), "{description}");
    let bytes_ok = description
        .bytes()
        .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\');
    assert!(bytes_ok, "RFC 6749 §4.1.2.1 character set: {description}");
}

#[tokio::test]
async fn max_age_zero_forces_a_fresh_login() {
    let idp = idp().await;
    let browser = Browser::new();
    tokens_for(&idp, &browser, "app", "openid").await;
    let step = browser
        .open(&authorize_url(&idp, "app", APP, &[("max_age", "0")]))
        .await;
    assert!(matches!(step, Step::Login { .. }), "{step:?}");
}

#[tokio::test]
async fn guessing_client_secrets_from_one_address_gets_it_blocked() {
    let idp = idp().await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "x"),
        ("redirect_uri", APP),
    ];
    for i in 0..30 {
        let (status, _) = post(
            &idp,
            "/oauth/token",
            &form,
            Some(("app", &format!("guess-{i}"))),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = post(&idp, "/oauth/token", &form, Some(("app", "app-secret"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    idp.clock.advance(601);
    let (status, body) = post(&idp, "/oauth/token", &form, Some(("app", "app-secret"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

// --- id_token_hint at the authorization endpoint (OIDC Core §3.1.2.1) ---

/// Signs `browser` in as `username` at `app` and redeems the code; the token response.
async fn sign_in_as(idp: &TestIdp, browser: &Browser, username: &str) -> Value {
    let url = authorize_url(idp, "app", APP, &[("nonce", "n")]);
    let form = browser.open(&url).await;
    let back = browser.log_in(idp, &form, username, ADMIN_PASSWORD).await;
    let code = query_param(back.location(), "code").expect("a code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", APP),
    ];
    let (status, body) = post(idp, "/oauth/token", &form, Some(("app", "app-secret"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn id_token(tokens: &Value) -> &str {
    tokens["id_token"].as_str().expect("an ID token")
}

/// An error redirect to `APP`: its `error`, after checking `state`, `iss` and that no code
/// came with it.
fn redirected_error(step: &Step, idp: &TestIdp) -> String {
    let location = step.location();
    assert!(location.starts_with(APP), "{location}");
    assert_eq!(query_param(location, "state").as_deref(), Some("state-123"));
    assert_eq!(
        query_param(location, "iss").as_deref(),
        Some(idp.issuer.as_str())
    );
    assert!(query_param(location, "code").is_none(), "{location}");
    query_param(location, "error").expect("an error")
}

#[tokio::test]
async fn id_token_hint_of_the_signed_in_user_with_prompt_none_gets_a_code() {
    let idp = idp().await;
    let browser = Browser::new();
    let tokens = sign_in_as(&idp, &browser, "admin").await;
    let hint = [("prompt", "none"), ("id_token_hint", id_token(&tokens))];
    let step = browser.open(&authorize_url(&idp, "app", APP, &hint)).await;
    assert!(query_param(step.location(), "code").is_some(), "{step:?}");
}

#[tokio::test]
async fn id_token_hint_of_another_user_with_prompt_none_is_login_required() {
    let idp = idp_with_alice().await;
    let admins = sign_in_as(&idp, &Browser::new(), "admin").await;
    let alices_browser = Browser::new();
    sign_in_as(&idp, &alices_browser, "alice").await;
    let hint = [("prompt", "none"), ("id_token_hint", id_token(&admins))];
    let step = alices_browser
        .open(&authorize_url(&idp, "app", APP, &hint))
        .await;
    assert_eq!(redirected_error(&step, &idp), "login_required");
}

#[tokio::test]
async fn id_token_hint_of_another_user_asks_that_user_to_sign_in() {
    let idp = idp_with_alice().await;
    let admins = sign_in_as(&idp, &Browser::new(), "admin").await;
    let alices_browser = Browser::new();
    sign_in_as(&idp, &alices_browser, "alice").await;
    let hint = [("id_token_hint", id_token(&admins))];
    let form = alices_browser
        .open(&authorize_url(&idp, "app", APP, &hint))
        .await;
    let Step::Login { html, .. } = &form else {
        panic!("expected the login form, not alice's session: {form:?}")
    };
    assert!(
        html.contains("value=\"admin\""),
        "the hinted user is prefilled"
    );
    let back = alices_browser
        .log_in(&idp, &form, "admin", ADMIN_PASSWORD)
        .await;
    let code = query_param(back.location(), "code").expect("a code for admin");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", APP),
    ];
    let (_, tokens) = post(&idp, "/oauth/token", &form, Some(("app", "app-secret"))).await;
    assert_eq!(jwt_part(id_token(&tokens), 1)["sub"], "admin");
}

#[tokio::test]
async fn signing_in_as_another_user_than_the_id_token_hint_names_is_login_required() {
    let idp = idp_with_alice().await;
    let admins = sign_in_as(&idp, &Browser::new(), "admin").await;
    // `asking` would show its consent page next: the refusal comes before it.
    for client in ["app", "asking"] {
        let browser = Browser::new();
        let hint = [("id_token_hint", id_token(&admins))];
        let form = browser.open(&authorize_url(&idp, client, APP, &hint)).await;
        assert!(matches!(form, Step::Login { .. }), "{client}: {form:?}");
        let back = browser.log_in(&idp, &form, "alice", ADMIN_PASSWORD).await;
        assert_eq!(redirected_error(&back, &idp), "login_required", "{client}");
        let without = browser
            .open(&authorize_url(&idp, "app", APP, &[("prompt", "none")]))
            .await;
        let code = query_param(without.location(), "code");
        let code = code.unwrap_or_else(|| panic!("{client}: alice is signed in: {without:?}"));
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", APP),
        ];
        let (_, tokens) = post(&idp, "/oauth/token", &form, Some(("app", "app-secret"))).await;
        assert_eq!(jwt_part(id_token(&tokens), 1)["sub"], "alice", "{client}");
    }
}

#[tokio::test]
async fn id_token_hint_of_another_user_leaves_the_session_for_requests_without_it() {
    let idp = idp_with_alice().await;
    let admins = sign_in_as(&idp, &Browser::new(), "admin").await;
    let alices_browser = Browser::new();
    sign_in_as(&idp, &alices_browser, "alice").await;
    let hint = [("id_token_hint", id_token(&admins))];
    let form = alices_browser
        .open(&authorize_url(&idp, "app", APP, &hint))
        .await;
    assert!(matches!(form, Step::Login { .. }), "{form:?}");
    let without = alices_browser
        .open(&authorize_url(&idp, "app", APP, &[("prompt", "none")]))
        .await;
    assert!(
        query_param(without.location(), "code").is_some(),
        "alice is still signed in: {without:?}"
    );
}

#[tokio::test]
async fn expired_id_token_hint_is_still_a_hint() {
    use kube_idp::time::Clock as _;
    let idp = idp().await;
    let browser = Browser::new();
    let tokens = sign_in_as(&idp, &browser, "admin").await;
    let exp = jwt_part(id_token(&tokens), 1)["exp"].as_i64().unwrap();
    // Keep the session alive (idle timeout 7200 s) while the ID token (7200 s) expires.
    idp.clock.advance(3600);
    let used = browser.open(&authorize_url(&idp, "app", APP, &[])).await;
    assert!(query_param(used.location(), "code").is_some());
    idp.clock.advance(3601);
    assert!(idp.clock.now() > exp, "the hint has expired");
    let hint = [("prompt", "none"), ("id_token_hint", id_token(&tokens))];
    let step = browser.open(&authorize_url(&idp, "app", APP, &hint)).await;
    assert!(query_param(step.location(), "code").is_some(), "{step:?}");
}

#[tokio::test]
async fn id_token_hint_not_issued_here_is_invalid_request() {
    let idp = idp().await;
    let browser = Browser::new();
    let tokens = sign_in_as(&idp, &browser, "admin").await;
    let genuine = id_token(&tokens);
    let (header, rest) = genuine.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let mut claims = jwt_part(genuine, 1);
    claims["sub"] = json!("alice");
    let forged_claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let forged = format!("{header}.{forged_claims}.{signature}");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let access_token = tokens["access_token"].as_str().unwrap();
    for (what, hint) in [
        ("not a JWT", "not-a-jwt"),
        ("claims changed after signing", forged.as_str()),
        ("alg none", unsigned.as_str()),
        ("an access token, not an ID token", access_token),
    ] {
        let extra = [("id_token_hint", hint)];
        let step = browser.open(&authorize_url(&idp, "app", APP, &extra)).await;
        assert_eq!(redirected_error(&step, &idp), "invalid_request", "{what}");
    }
}

// --- Every form carries a CSRF token bound to the browser that opened it ---

/// Posts `fields` to `path` from `browser`; the response.
async fn submit(
    idp: &TestIdp,
    browser: &Browser,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let response = browser.http.post(idp.url(path)).form(fields).send().await;
    response.unwrap()
}

/// The cookie names a response sets.
fn cookies_set(response: &reqwest::Response) -> Vec<String> {
    let values = response.headers().get_all("set-cookie").iter();
    let names = values.map(|v| v.to_str().unwrap().split('=').next().unwrap().to_string());
    names.collect()
}

#[tokio::test]
async fn login_form_with_a_wrong_or_missing_csrf_token_is_refused_without_a_code() {
    let idp = idp().await;
    let browser = Browser::new();
    for csrf in [Some("forged-csrf-token"), None] {
        let form = browser.open(&authorize_url(&idp, "app", APP, &[])).await;
        let Step::Login { request, .. } = &form else {
            panic!("{form:?}")
        };
        let mut fields = vec![
            ("request", request.as_str()),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ];
        fields.extend(csrf.map(|c| ("csrf", c)));
        let response = submit(&idp, &browser, "/oauth/login", &fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{csrf:?}");
        assert!(response.headers().get("location").is_none(), "{csrf:?}");
        let cookies = cookies_set(&response);
        assert!(
            !cookies.contains(&"kube_idp_session".to_string()),
            "{cookies:?}"
        );
    }
    let after = browser.open(&authorize_url(&idp, "app", APP, &[])).await;
    assert!(
        matches!(after, Step::Login { .. }),
        "not signed in: {after:?}"
    );
}

#[tokio::test]
async fn consent_form_with_a_wrong_or_missing_csrf_token_is_refused_without_a_code() {
    let idp = idp().await;
    let browser = Browser::new();
    let url = authorize_url(&idp, "asking", APP, &[]);
    let login = browser.open(&url).await;
    let mut consent = browser.log_in(&idp, &login, "admin", ADMIN_PASSWORD).await;
    for csrf in [Some("forged-csrf-token"), None] {
        let Step::Form { request, .. } = &consent else {
            panic!("expected the consent form: {consent:?}")
        };
        let mut fields = vec![("request", request.as_str()), ("decision", "allow")];
        fields.extend(csrf.map(|c| ("csrf", c)));
        let response = submit(&idp, &browser, "/oauth/consent", &fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{csrf:?}");
        assert!(response.headers().get("location").is_none(), "{csrf:?}");
        // Nothing was approved: the next request asks again.
        consent = browser.open(&url).await;
        assert!(matches!(consent, Step::Form { .. }), "{consent:?}");
    }
}

#[tokio::test]
async fn logout_confirmation_with_a_wrong_or_missing_csrf_token_does_not_sign_out() {
    let idp = idp().await;
    let browser = Browser::new();
    tokens_for(&idp, &browser, "app", "openid").await;
    for csrf in [Some("forged-csrf-token"), None] {
        let confirm = browser.open(&idp.url("/oauth/logout")).await;
        let Step::Form { request, .. } = &confirm else {
            panic!("expected the confirmation form: {confirm:?}")
        };
        let mut fields = vec![("request", request.as_str())];
        fields.extend(csrf.map(|c| ("csrf", c)));
        let response = submit(&idp, &browser, "/oauth/logout", &fields).await;
        let status = response.status();
        let cookies = cookies_set(&response);
        let html = response.text().await.unwrap();
        assert!(!html.contains("id=\"signed-out\""), "{csrf:?}: {html}");
        match csrf {
            Some(_) => assert_eq!(status, StatusCode::FORBIDDEN),
            // Without a token it is a new, unconfirmed logout request: the form again.
            None => assert!(html.contains("name=\"csrf\""), "{html}"),
        }
        assert!(
            cookies.iter().all(|c| c != "kube_idp_session"),
            "{cookies:?}"
        );
        let still = browser.open(&authorize_url(&idp, "app", APP, &[])).await;
        assert!(
            query_param(still.location(), "code").is_some(),
            "still signed in: {still:?}"
        );
    }
}
