//! The token and userinfo endpoints, spoken to directly over HTTP.

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use support::browser::{authorize_url, query_param, Browser};
use support::idp::TestIdp;
use support::manifests::{ADMIN_PASSWORD, HARBOR_CALLBACK};

/// Signs in as admin at harbor and returns a fresh code.
async fn harbor_code(idp: &TestIdp) -> String {
    let url = authorize_url(idp, "harbor", HARBOR_CALLBACK, &[("nonce", "n-1")]);
    let location = Browser::new()
        .sign_in(idp, &url, "admin", ADMIN_PASSWORD)
        .await;
    query_param(&location, "code").expect("a code")
}

async fn redeem(
    idp: &TestIdp,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut request = reqwest::Client::new()
        .post(idp.url("/oauth/token"))
        .form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.expect("token endpoint answers");
    let status = response.status();
    let headers = response.headers().clone();
    (status, response.json().await.expect("a JSON body"), headers)
}

fn code_form(code: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", HARBOR_CALLBACK),
    ]
}

#[tokio::test]
async fn reused_code_is_invalid_grant() {
    let idp = TestIdp::examples().await;
    let code = harbor_code(&idp).await;
    let (first, _, _) = redeem(&idp, &code_form(&code), Some(("harbor", "password123"))).await;
    assert_eq!(first, StatusCode::OK);
    let (second, body, headers) =
        redeem(&idp, &code_form(&code), Some(("harbor", "password123"))).await;
    assert_eq!(second, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn wrong_secret_is_401_invalid_client_and_spends_no_code() {
    let idp = TestIdp::examples().await;
    let code = harbor_code(&idp).await;
    let (status, body, headers) = redeem(&idp, &code_form(&code), Some(("harbor", "wrong"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    // The client is authenticated before the code is looked at, so the code still works.
    let (status, body, _) = redeem(&idp, &code_form(&code), Some(("harbor", "password123"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn client_secret_post_works() {
    let idp = TestIdp::examples().await;
    let code = harbor_code(&idp).await;
    let mut form = code_form(&code);
    form.extend([("client_id", "harbor"), ("client_secret", "password123")]);
    let (status, body, headers) = redeem(&idp, &form, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid email profile");
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn two_authentication_methods_are_refused() {
    let idp = TestIdp::examples().await;
    let code = harbor_code(&idp).await;
    let mut form = code_form(&code);
    form.push(("client_secret", "password123"));
    let (status, body, _) = redeem(&idp, &form, Some(("harbor", "password123"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn code_is_bound_to_its_redirect_uri() {
    let idp = TestIdp::examples().await;
    let code = harbor_code(&idp).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://harbor.172.31.19.17.nip.io/other"),
    ];
    let (status, body, _) = redeem(&idp, &form, Some(("harbor", "password123"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn code_is_bound_to_its_client() {
    let idp = TestIdp::examples().await;
    let code = harbor_code(&idp).await;
    let (status, body, _) = redeem(&idp, &code_form(&code), Some(("demo", "demo-secret"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn verifier_without_a_challenge_is_a_downgrade_and_refused() {
    let idp = TestIdp::examples().await;
    let code = harbor_code(&idp).await;
    let mut form = code_form(&code);
    form.push((
        "code_verifier",
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    ));
    let (status, body, _) = redeem(&idp, &form, Some(("harbor", "password123"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn wrong_pkce_verifier_is_refused() {
    let idp = TestIdp::examples().await;
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let url = authorize_url(
        &idp,
        "kubelogin",
        "http://localhost:8000",
        &[
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let location = Browser::new()
        .sign_in(&idp, &url, "admin", ADMIN_PASSWORD)
        .await;
    let code = query_param(&location, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:8000"),
        ("client_id", "kubelogin"),
        (
            "code_verifier",
            "a-wrong-verifier-that-is-long-enough-to-be-well-formed",
        ),
    ];
    let (status, body, _) = redeem(&idp, &form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn code_grant_alias_is_accepted() {
    let idp = TestIdp::examples().await;
    let code = harbor_code(&idp).await;
    let form = [
        ("grant_type", "code"),
        ("code", code.as_str()),
        ("redirect_uri", HARBOR_CALLBACK),
    ];
    let (status, body, _) = redeem(&idp, &form, Some(("harbor", "password123"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn refresh_rotates_and_a_replaced_token_revokes_the_family() {
    let idp = TestIdp::examples().await;
    let code = harbor_code(&idp).await;
    let creds = Some(("harbor", "password123"));
    let (_, first, _) = redeem(&idp, &code_form(&code), creds).await;
    let old = first["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    let refresh = |token: String| {
        let idp = &idp;
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ];
            redeem(idp, &form, creds).await
        }
    };
    let (status, second, _) = refresh(old.clone()).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert!(
        second["id_token"].is_string(),
        "a refresh returns a fresh ID token"
    );
    let new = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    // Within the grace window a confidential client's concurrent refresh still succeeds.
    let (status, body, _) = refresh(old.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    idp.clock.advance(11);
    let (status, body, _) = refresh(old).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, _, _) = refresh(new).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "reuse of a replaced token revoked the family"
    );
}

#[tokio::test]
async fn userinfo_accepts_only_access_tokens() {
    let idp = TestIdp::examples().await;
    let code = harbor_code(&idp).await;
    let (_, tokens, _) = redeem(&idp, &code_form(&code), Some(("harbor", "password123"))).await;
    let userinfo = |token: &str| {
        reqwest::Client::new()
            .get(idp.url("/oauth/userinfo"))
            .bearer_auth(token)
            .send()
    };
    let ok = userinfo(tokens["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.json::<Value>().await.unwrap()["sub"], "admin");
    for other in [
        tokens["id_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
        code.as_str(),
    ] {
        let refused = userinfo(other).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let challenge = refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
            "{challenge}"
        );
    }
}

#[tokio::test]
async fn userinfo_answers_post_with_the_token_in_the_body() {
    let idp = TestIdp::examples().await;
    let code = harbor_code(&idp).await;
    let (_, tokens, _) = redeem(&idp, &code_form(&code), Some(("harbor", "password123"))).await;
    let response = reqwest::Client::new()
        .post(idp.url("/oauth/userinfo"))
        .form(&[("access_token", tokens["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let claims: Value = response.json().await.unwrap();
    assert_eq!(claims["email"], "admin@kubesphere.io");
    assert_eq!(claims["email_verified"], true);
}

#[tokio::test]
async fn unsupported_grant_type_and_missing_grant_type_are_rfc_errors() {
    let idp = TestIdp::examples().await;
    let creds = Some(("harbor", "password123"));
    let (status, body, _) = redeem(&idp, &[("grant_type", "client_credentials")], creds).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
    let (status, body, _) = redeem(&idp, &[("code", "x")], creds).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}

/// Signs in once as admin at harbor, then takes `n` codes from the session (single sign-on).
async fn harbor_codes(idp: &TestIdp, n: usize) -> Vec<String> {
    let browser = Browser::new();
    let url = authorize_url(idp, "harbor", HARBOR_CALLBACK, &[]);
    let first = browser.sign_in(idp, &url, "admin", ADMIN_PASSWORD).await;
    let mut codes = vec![query_param(&first, "code").expect("a code")];
    while codes.len() < n {
        let step = browser.open(&url).await;
        codes.push(query_param(step.location(), "code").expect("a code"));
    }
    codes
}

#[tokio::test]
async fn code_expires_sixty_seconds_after_it_is_issued() {
    let idp = TestIdp::examples().await;
    let codes = harbor_codes(&idp, 2).await;
    let creds = Some(("harbor", "password123"));
    idp.clock.advance(59);
    let (status, body, _) = redeem(&idp, &code_form(&codes[0]), creds).await;
    assert_eq!(status, StatusCode::OK, "59 s old: {body}");
    idp.clock.advance(2);
    let (status, body, _) = redeem(&idp, &code_form(&codes[1]), creds).await;
    assert_invalid_grant(status, &body, "61 s old");
}

#[tokio::test]
async fn codes_carry_at_least_128_random_bits_and_never_repeat() {
    use base64::Engine as _;
    let idp = TestIdp::examples().await;
    let codes = harbor_codes(&idp, 100).await;
    for code in &codes {
        assert!(
            code.len() >= 22,
            "{code} is shorter than 128 bits in base64url"
        );
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(code);
        let bytes = bytes.unwrap_or_else(|e| panic!("{code} is not base64url: {e}"));
        assert!(bytes.len() >= 16, "{code} decodes to {} bytes", bytes.len());
    }
    let distinct: std::collections::HashSet<&String> = codes.iter().collect();
    assert_eq!(distinct.len(), 100);
}

#[tokio::test]
async fn failed_client_authentication_is_401_and_not_cached() {
    let idp = TestIdp::examples().await;
    let (status, body, headers) = redeem(&idp, &code_form("x"), Some(("harbor", "wrong"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn challenge_sent_at_authorize_without_a_verifier_at_token_is_invalid_grant() {
    let idp = TestIdp::examples().await;
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let pkce = [
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    let url = authorize_url(&idp, "harbor", HARBOR_CALLBACK, &pkce);
    let location = Browser::new()
        .sign_in(&idp, &url, "admin", ADMIN_PASSWORD)
        .await;
    let code = query_param(&location, "code").expect("a code");
    let creds = Some(("harbor", "password123"));
    let (status, body, _) = redeem(&idp, &code_form(&code), creds).await;
    assert_invalid_grant(
        status,
        &body,
        "a confidential client's secret does not replace the verifier",
    );
}

#[tokio::test]
async fn public_client_gets_no_refresh_grace_window() {
    let idp = TestIdp::examples().await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let extra = [
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("scope", "openid offline_access"),
    ];
    let url = authorize_url(&idp, "kubelogin", "http://localhost:8000", &extra);
    let location = Browser::new()
        .sign_in(&idp, &url, "admin", ADMIN_PASSWORD)
        .await;
    let code = query_param(&location, "code").expect("a code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:8000"),
        ("client_id", "kubelogin"),
        ("code_verifier", verifier),
    ];
    let (status, tokens, _) = redeem(&idp, &form, None).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh = |token: String| {
        let idp = &idp;
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
                ("client_id", "kubelogin"),
            ];
            redeem(idp, &form, None).await
        }
    };
    let old = tokens["refresh_token"]
        .as_str()
        .expect("offline_access")
        .to_string();
    let (status, rotated, _) = refresh(old.clone()).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["refresh_token"].as_str().unwrap().to_string();
    // At once, well inside a confidential client's ten-second window.
    let (status, body, _) = refresh(old).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, _, _) = refresh(new).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the replay revoked the family"
    );
}

async fn userinfo_status(idp: &TestIdp, access_token: &str) -> StatusCode {
    let response = reqwest::Client::new()
        .get(idp.url("/oauth/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo answers");
    response.status()
}

/// A refresh of `token` as harbor: the status and the `error`, if any.
async fn harbor_refresh(idp: &TestIdp, token: &str) -> (StatusCode, Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    let (status, body, _) = redeem(idp, &form, Some(("harbor", "password123"))).await;
    (status, body)
}

fn token_of<'a>(body: &'a Value, name: &str) -> &'a str {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name}: {body}"))
}

#[tokio::test]
async fn code_redeemed_twice_at_once_revokes_the_winners_tokens_in_every_round() {
    let idp = TestIdp::examples().await;
    let creds = Some(("harbor", "password123"));
    for (round, code) in harbor_codes(&idp, 20).await.iter().enumerate() {
        let form = code_form(code);
        let (a, b) = tokio::join!(redeem(&idp, &form, creds), redeem(&idp, &form, creds));
        let winners: Vec<&Value> = [&a, &b]
            .into_iter()
            .filter(|(status, _, _)| *status == StatusCode::OK)
            .map(|(_, body, _)| body)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: one wins: {a:?} {b:?}");
        for tokens in winners {
            let access = token_of(tokens, "access_token");
            assert_eq!(
                userinfo_status(&idp, access).await,
                StatusCode::UNAUTHORIZED,
                "round {round}: the replay revoked the winner's access token"
            );
            let (status, body) = harbor_refresh(&idp, token_of(tokens, "refresh_token")).await;
            assert_invalid_grant(
                status,
                &body,
                format!("round {round}: the replay revoked the winner's refresh token"),
            );
        }
    }
}

/// A code redeemed for AT1 and RT1, then RT1 refreshed for AT2 and RT2.
struct RefreshedGrant {
    code: String,
    first: Value,
    second: Value,
}

async fn code_then_refresh(idp: &TestIdp) -> RefreshedGrant {
    let code = harbor_code(idp).await;
    let (status, first, _) = redeem(idp, &code_form(&code), Some(("harbor", "password123"))).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, second) = harbor_refresh(idp, token_of(&first, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    for tokens in [&first, &second] {
        let access = token_of(tokens, "access_token");
        assert_eq!(userinfo_status(idp, access).await, StatusCode::OK);
    }
    RefreshedGrant {
        code,
        first,
        second,
    }
}

impl RefreshedGrant {
    async fn assert_access_tokens_revoked(&self, idp: &TestIdp, after: &str) {
        for (name, tokens) in [("AT1", &self.first), ("AT2", &self.second)] {
            assert_eq!(
                userinfo_status(idp, token_of(tokens, "access_token")).await,
                StatusCode::UNAUTHORIZED,
                "{name} still works after {after}"
            );
        }
    }
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_every_access_token_of_its_grant() {
    let idp = TestIdp::examples().await;
    let grant = code_then_refresh(&idp).await;
    let rt2 = token_of(&grant.second, "refresh_token");
    let response = reqwest::Client::new()
        .post(idp.url("/oauth/revoke"))
        .basic_auth("harbor", Some("password123"))
        .form(&[("token", rt2), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    grant
        .assert_access_tokens_revoked(&idp, "revoking RT2")
        .await;
    let (status, _) = harbor_refresh(&idp, rt2).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn replaced_refresh_token_reused_revokes_the_access_tokens_of_later_refreshes() {
    let idp = TestIdp::examples().await;
    let grant = code_then_refresh(&idp).await;
    idp.clock.advance(11);
    let (status, body) = harbor_refresh(&idp, token_of(&grant.first, "refresh_token")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    grant
        .assert_access_tokens_revoked(&idp, "RT1 was reused")
        .await;
}

#[tokio::test]
async fn replayed_code_revokes_the_access_tokens_of_later_refreshes() {
    let idp = TestIdp::examples().await;
    let grant = code_then_refresh(&idp).await;
    let creds = Some(("harbor", "password123"));
    let (status, body, _) = redeem(&idp, &code_form(&grant.code), creds).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    grant
        .assert_access_tokens_revoked(&idp, "the code was replayed")
        .await;
    let (status, _) = harbor_refresh(&idp, token_of(&grant.second, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "RT2 revoked too");
}

#[tokio::test]
async fn code_refused_for_another_client_redirect_uri_or_verifier_is_spent() {
    let idp = TestIdp::examples().await;
    let harbor = Some(("harbor", "password123"));
    let codes = harbor_codes(&idp, 2).await;
    let refusals = [
        (code_form(&codes[0]), Some(("demo", "demo-secret"))),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", codes[1].as_str()),
                ("redirect_uri", "https://harbor.172.31.19.17.nip.io/other"),
            ],
            harbor,
        ),
    ];
    for ((form, creds), code) in refusals.iter().zip(&codes) {
        let (status, body, _) = redeem(&idp, form, *creds).await;
        assert_eq!(body["error"], "invalid_grant", "{status}");
        let (status, body, _) = redeem(&idp, &code_form(code), harbor).await;
        assert_invalid_grant(status, &body, "a refused presentation spends the code");
    }

    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let pkce = [
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ];
    let url = authorize_url(&idp, "kubelogin", "http://localhost:8000", &pkce);
    let location = Browser::new()
        .sign_in(&idp, &url, "admin", ADMIN_PASSWORD)
        .await;
    let code = query_param(&location, "code").unwrap();
    let with_verifier = |verifier| {
        [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://localhost:8000"),
            ("client_id", "kubelogin"),
            ("code_verifier", verifier),
        ]
    };
    let wrong = with_verifier("a-wrong-verifier-that-is-long-enough-to-be-well-formed");
    let (_, body, _) = redeem(&idp, &wrong, None).await;
    assert_eq!(body["error"], "invalid_grant");
    let (status, body, _) = redeem(&idp, &with_verifier(verifier), None).await;
    assert_invalid_grant(
        status,
        &body,
        "a wrong verifier spends the code: the right one cannot follow",
    );
}

/// Posts `token` to the revocation or introspection endpoint as harbor; the status and body.
async fn harbor_back_channel(idp: &TestIdp, path: &str, token: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(idp.url(path))
        .basic_auth("harbor", Some("password123"))
        .form(&[("token", token)])
        .send()
        .await
        .expect("back channel answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Asserts that no access token and no refresh token in `responses` works any more.
async fn assert_nothing_live(idp: &TestIdp, responses: &[&Value], after: &str) {
    for tokens in responses {
        let access = token_of(tokens, "access_token");
        assert_eq!(
            userinfo_status(idp, access).await,
            StatusCode::UNAUTHORIZED,
            "an access token still works after {after}"
        );
        let refresh = token_of(tokens, "refresh_token");
        let (_, seen) = harbor_back_channel(idp, "/oauth/introspect", refresh).await;
        assert_eq!(
            seen["active"], false,
            "a refresh token is active after {after}"
        );
        let (status, body) = harbor_refresh(idp, refresh).await;
        assert_invalid_grant(
            status,
            &body,
            format!("a refresh token still refreshes after {after}"),
        );
    }
}

#[tokio::test]
async fn revoking_a_just_rotated_refresh_token_inside_the_grace_window_ends_its_family() {
    let idp = TestIdp::examples().await;
    let grant = code_then_refresh(&idp).await;
    let rt1 = token_of(&grant.first, "refresh_token");
    let (status, _) = harbor_back_channel(&idp, "/oauth/revoke", rt1).await;
    assert_eq!(status, StatusCode::OK);
    let (_, seen) = harbor_back_channel(&idp, "/oauth/introspect", rt1).await;
    assert_eq!(seen, serde_json::json!({"active": false}));
    let (status, body) = harbor_refresh(&idp, rt1).await;
    assert_invalid_grant(
        status,
        &body,
        format!("the revoked token refreshed inside the grace window: {body}"),
    );
    assert_nothing_live(&idp, &[&grant.first, &grant.second], "revoking RT1").await;
}

#[tokio::test]
async fn revoking_a_long_replaced_refresh_token_ends_its_family() {
    let idp = TestIdp::examples().await;
    let grant = code_then_refresh(&idp).await;
    idp.clock.advance(11);
    let (status, _) = harbor_back_channel(
        &idp,
        "/oauth/revoke",
        token_of(&grant.first, "refresh_token"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_nothing_live(&idp, &[&grant.first, &grant.second], "revoking RT1").await;
}

#[tokio::test]
async fn introspection_calls_a_rotated_out_refresh_token_active_only_while_it_refreshes() {
    let idp = TestIdp::examples().await;
    let grant = code_then_refresh(&idp).await;
    let (rt1, rt2) = (
        token_of(&grant.first, "refresh_token"),
        token_of(&grant.second, "refresh_token"),
    );
    let (_, seen) = harbor_back_channel(&idp, "/oauth/introspect", rt1).await;
    assert_eq!(seen["active"], true, "inside the grace window: {seen}");
    assert_eq!(seen["sub"], "admin");
    idp.clock.advance(11);
    let (_, seen) = harbor_back_channel(&idp, "/oauth/introspect", rt1).await;
    assert_eq!(seen, serde_json::json!({"active": false}));
    let (_, seen) = harbor_back_channel(&idp, "/oauth/introspect", rt2).await;
    assert_eq!(
        seen["active"], true,
        "introspecting RT1 revoked nothing: {seen}"
    );
}

#[tokio::test]
async fn one_revocation_racing_three_refreshes_of_a_rotated_out_token_leaves_nothing_live() {
    let idp = TestIdp::examples().await;
    let creds = Some(("harbor", "password123"));
    for (round, code) in harbor_codes(&idp, 20).await.iter().enumerate() {
        let (status, first, _) = redeem(&idp, &code_form(code), creds).await;
        assert_eq!(status, StatusCode::OK, "round {round}: {first}");
        let rt1 = token_of(&first, "refresh_token");
        let (status, second) = harbor_refresh(&idp, rt1).await;
        assert_eq!(status, StatusCode::OK, "round {round}: {second}");
        let (revoked, a, b, c) = tokio::join!(
            harbor_back_channel(&idp, "/oauth/revoke", rt1),
            harbor_refresh(&idp, rt1),
            harbor_refresh(&idp, rt1),
            harbor_refresh(&idp, rt1),
        );
        assert_eq!(revoked.0, StatusCode::OK, "round {round}");
        let mut issued = vec![&first, &second];
        issued.extend(
            [&a, &b, &c]
                .into_iter()
                .filter(|(status, _)| *status == StatusCode::OK)
                .map(|(_, body)| body),
        );
        let after = format!("round {round}'s revocation");
        assert_nothing_live(&idp, &issued, &after).await;
    }
}

#[tokio::test]
async fn sixteen_concurrent_refreshes_of_one_token_all_succeed_in_every_round() {
    let idp = TestIdp::examples().await;
    let creds = Some(("harbor", "password123"));
    for (round, code) in harbor_codes(&idp, 10).await.iter().enumerate() {
        let (status, tokens, _) = redeem(&idp, &code_form(code), creds).await;
        assert_eq!(status, StatusCode::OK, "round {round}: {tokens}");
        let token = token_of(&tokens, "refresh_token");
        let refreshes = (0..16).map(|_| harbor_refresh(&idp, token));
        let answers = futures::future::join_all(refreshes).await;
        for (status, body) in &answers {
            assert_eq!(*status, StatusCode::OK, "round {round}: {body}");
        }
    }
}

/// Asserts a token response is RFC 6749 `400 invalid_grant`; `why` names the case.
#[track_caller]
fn assert_invalid_grant(status: StatusCode, body: &Value, why: impl std::fmt::Display) {
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{why}: {body}"
    );
}
