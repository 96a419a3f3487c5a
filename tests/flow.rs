//! The main job: a real relying-party library (the `openidconnect` crate) signs a user in
//! through the authorization code flow against kube-idp serving the example manifests.

mod support;

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    TokenResponse,
};
use support::browser::{query_param, Browser, Step};
use support::idp::TestIdp;
use support::manifests::{ADMIN_PASSWORD, HARBOR_CALLBACK};
use support::rp::{self, RpClient};

async fn discover(idp: &TestIdp, id: &str, secret: Option<&str>, redirect: &str) -> RpClient {
    rp::discover(&idp.issuer, id, secret, redirect).await
}

#[tokio::test]
async fn harbor_signs_in_with_openidconnect_then_single_sign_on_skips_the_login_form() {
    let idp = TestIdp::examples().await;
    let client = discover(&idp, "harbor", Some("password123"), HARBOR_CALLBACK).await;
    let browser = Browser::new();

    let rp::Authorization { url, state, nonce } = rp::authorization(&client, &["email", "profile"]);
    let form = browser.open(&url).await;
    assert!(matches!(form, Step::Login { status: 200, .. }), "{form:?}");
    let back = browser.log_in(&idp, &form, "admin", ADMIN_PASSWORD).await;
    let Step::Redirect {
        status: 303,
        location,
    } = &back
    else {
        panic!("{back:?}")
    };
    assert!(location.starts_with(HARBOR_CALLBACK), "{location}");
    assert_eq!(
        query_param(location, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(
        query_param(location, "iss").as_deref(),
        Some(idp.issuer.as_str())
    );
    let code = query_param(location, "code").expect("a code");

    // client_secret_basic, as rp::discover sets.
    let (tokens, claims) = rp::redeem(&client, code, &nonce).await;
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    assert_eq!(claims.subject().as_str(), "admin");
    assert_eq!(claims.issuer().as_str(), idp.issuer);
    assert_eq!(claims.audiences()[0].as_str(), "harbor");
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("admin@kubesphere.io")
    );
    assert_eq!(claims.email_verified(), Some(true));
    assert_eq!(
        claims.preferred_username().map(|u| u.as_str()),
        Some("admin")
    );
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().expect("alg"),
        id_token.signing_key(&verifier).expect("key"),
    )
    .expect("at_hash computes");
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));
    assert!(
        tokens.refresh_token().is_some(),
        "a confidential client gets a refresh token"
    );

    let userinfo = rp::userinfo(&client, tokens.access_token()).await;
    assert_eq!(userinfo.subject(), claims.subject());
    assert_eq!(
        userinfo.email().map(|e| e.as_str()),
        Some("admin@kubesphere.io")
    );

    // Single sign-on: the same browser gets a code straight away.
    let again = rp::authorization(&client, &[]);
    let step = browser.open(&again.url).await;
    let Step::Redirect {
        status: 302,
        location,
    } = &step
    else {
        panic!("{step:?}")
    };
    assert!(query_param(location, "code").is_some(), "{location}");
}

#[tokio::test]
async fn groups_and_display_name_reach_the_id_token() {
    let idp = TestIdp::examples().await;
    let client = discover(
        &idp,
        "demo",
        Some("demo-secret"),
        "http://127.0.0.1:5556/callback",
    )
    .await;
    let request = rp::authorization(&client, &["profile"]);
    let location = Browser::new()
        .sign_in(&idp, &request.url, "admin", ADMIN_PASSWORD)
        .await;
    let code = query_param(&location, "code").expect("a code");
    let (tokens, _) = rp::redeem(&client, code, &request.nonce).await;
    let id_token = tokens.id_token().expect("ID token").to_string();
    let payload = id_token.split('.').nth(1).expect("a JWT");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["groups"], serde_json::json!(["platform-admins"]));
    assert_eq!(claims["name"], "Administrator");
    assert_eq!(claims["locale"], "en");
    assert!(
        claims.get("email").is_none(),
        "email scope was not requested"
    );
}

#[tokio::test]
async fn public_client_signs_in_with_pkce_on_a_loopback_port() {
    let idp = TestIdp::examples().await;
    let client = discover(&idp, "kubelogin", None, "http://localhost:41234").await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let location = Browser::new()
        .sign_in(&idp, url.as_str(), "admin@kubesphere.io", ADMIN_PASSWORD)
        .await;
    assert!(location.starts_with("http://localhost:41234"), "{location}");
    let code = query_param(&location, "code").expect("a code");
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&rp::http())
        .await
        .expect("PKCE exchange");
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.subject().as_str(), "admin");
    assert!(
        tokens.refresh_token().is_none(),
        "no offline_access, public client: no refresh token"
    );
}

#[tokio::test]
async fn tokens_issued_before_a_restart_still_verify_after_it() {
    let mut idp = TestIdp::examples().await;
    let client = discover(&idp, "harbor", Some("password123"), HARBOR_CALLBACK).await;
    let request = rp::authorization(&client, &[]);
    let location = Browser::new()
        .sign_in(&idp, &request.url, "admin", ADMIN_PASSWORD)
        .await;
    let code = query_param(&location, "code").unwrap();
    let (tokens, _) = rp::redeem(&client, code, &request.nonce).await;

    idp.restart().await;

    // A relying party that discovers the restarted provider verifies the old ID token.
    let fresh = discover(&idp, "harbor", Some("password123"), HARBOR_CALLBACK).await;
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&fresh.id_token_verifier(), &request.nonce);
    assert_eq!(
        claims.expect("old ID token verifies").subject().as_str(),
        "admin"
    );
    let userinfo = rp::userinfo(&fresh, tokens.access_token()).await;
    assert_eq!(
        userinfo.subject().as_str(),
        "admin",
        "old access token still accepted"
    );
}
