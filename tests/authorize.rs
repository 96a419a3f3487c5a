//! The authorization endpoint and login form: what a browser sees when something is wrong.

mod support;

use support::browser::{authorize_url, query_param, Browser, Step};
use support::idp::TestIdp;
use support::manifests::{ADMIN_PASSWORD, HARBOR_CALLBACK};

#[tokio::test]
async fn unregistered_redirect_uri_gets_an_error_page_and_no_redirect() {
    let idp = TestIdp::examples().await;
    for uri in [
        "https://evil.example/c/oidc/callback",
        "https://harbor.172.31.19.17.nip.io/c/oidc/callback/../../evil",
        "https://harbor.172.31.19.17.nip.io/c/oidc/callback?next=https://evil.example",
    ] {
        let step = Browser::new()
            .open(&authorize_url(&idp, "harbor", uri, &[]))
            .await;
        let Step::Page { status: 400, html } = &step else {
            panic!("{uri}: {step:?}")
        };
        assert!(
            html.contains("redirect URI is missing or not registered"),
            "{html}"
        );
    }
}

#[tokio::test]
async fn unknown_client_gets_an_error_page() {
    let idp = TestIdp::examples().await;
    let step = Browser::new()
        .open(&authorize_url(&idp, "nobody", HARBOR_CALLBACK, &[]))
        .await;
    let Step::Page { status: 400, html } = &step else {
        panic!("{step:?}")
    };
    assert!(
        html.contains("not registered with this identity provider"),
        "{html}"
    );
}

#[tokio::test]
async fn wrong_password_shows_the_form_again_and_issues_no_code() {
    let idp = TestIdp::examples().await;
    let browser = Browser::new();
    let form = browser
        .open(&authorize_url(&idp, "harbor", HARBOR_CALLBACK, &[]))
        .await;
    let again = browser.log_in(&idp, &form, "admin", "wrong-password").await;
    let Step::Login {
        status: 401, html, ..
    } = &again
    else {
        panic!("{again:?}")
    };
    assert!(html.contains("Invalid username or password."));
    // The same form still works with the right password.
    let back = browser.log_in(&idp, &again, "admin", ADMIN_PASSWORD).await;
    assert!(query_param(back.location(), "code").is_some());
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let idp = TestIdp::examples().await;
    let browser = Browser::new();
    let form = browser
        .open(&authorize_url(&idp, "harbor", HARBOR_CALLBACK, &[]))
        .await;
    let wrong = browser.log_in(&idp, &form, "admin", "nope").await;
    let unknown = browser.log_in(&idp, &form, "no-such-user", "nope").await;
    let (
        Step::Login {
            html: a,
            status: sa,
            ..
        },
        Step::Login {
            html: b,
            status: sb,
            ..
        },
    ) = (&wrong, &unknown)
    else {
        panic!("{wrong:?} {unknown:?}")
    };
    assert_eq!(sa, sb);
    let strip = |h: &str| {
        h.replace("value=\"admin\"", "")
            .replace("value=\"no-such-user\"", "")
    };
    assert_eq!(strip(a), strip(b));
}

#[tokio::test]
async fn login_form_from_another_browser_is_refused() {
    let idp = TestIdp::examples().await;
    let attacker = Browser::new();
    let form = attacker
        .open(&authorize_url(&idp, "harbor", HARBOR_CALLBACK, &[]))
        .await;
    // The victim's browser posts the attacker's form (login CSRF): no session, no code.
    let victim = Browser::new();
    let step = victim.log_in(&idp, &form, "admin", ADMIN_PASSWORD).await;
    assert!(matches!(step, Step::Page { status: 403, .. }), "{step:?}");
}

#[tokio::test]
async fn errors_after_the_redirect_uri_is_trusted_go_back_with_state_and_iss() {
    let idp = TestIdp::examples().await;
    let cases = [
        (vec![("scope", "email")], "invalid_scope"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![("code_challenge", "x"), ("code_challenge_method", "plain")],
            "invalid_request",
        ),
        (vec![("prompt", "none")], "login_required"),
    ];
    for (extra, error) in cases {
        let url = authorize_url(&idp, "harbor", HARBOR_CALLBACK, &[]);
        let mut url = url::Url::parse(&url).unwrap();
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .extend_pairs(&extra);
        let step = Browser::new().open(url.as_str()).await;
        let location = step.location();
        assert!(location.starts_with(HARBOR_CALLBACK), "{location}");
        assert_eq!(
            query_param(location, "error").as_deref(),
            Some(error),
            "{extra:?}"
        );
        assert_eq!(query_param(location, "state").as_deref(), Some("state-123"));
        assert_eq!(
            query_param(location, "iss").as_deref(),
            Some(idp.issuer.as_str())
        );
        assert!(query_param(location, "code").is_none());
    }
}

#[tokio::test]
async fn session_cookie_is_http_only_and_lax() {
    let idp = TestIdp::examples().await;
    let browser = Browser::new();
    let form = browser
        .open(&authorize_url(&idp, "harbor", HARBOR_CALLBACK, &[]))
        .await;
    let Step::Login { request, csrf, .. } = &form else {
        panic!("{form:?}")
    };
    let fields = [
        ("request", request.as_str()),
        ("csrf", csrf.as_str()),
        ("username", "admin"),
        ("password", ADMIN_PASSWORD),
    ];
    let response = browser
        .http
        .post(idp.url("/oauth/login"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("kube_idp_session="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "the test issuer is http");
}

#[tokio::test]
async fn pages_cannot_be_framed() {
    let idp = TestIdp::examples().await;
    let url = authorize_url(&idp, "harbor", HARBOR_CALLBACK, &[]);
    let response = Browser::new().http.get(url).send().await.unwrap();
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn grant_method_deny_refuses_with_access_denied() {
    let manifests = support::manifests::Manifests::examples();
    let config =
        "name: locked\nsecret: s\ngrantMethod: deny\nredirectURIs: ['https://locked.example/cb']\n";
    manifests.write(
        "locked.yaml",
        &support::manifests::client_secret("locked", config),
    );
    let idp = TestIdp::start(manifests).await;
    let step = Browser::new()
        .open(&authorize_url(
            &idp,
            "locked",
            "https://locked.example/cb",
            &[],
        ))
        .await;
    assert_eq!(
        query_param(step.location(), "error").as_deref(),
        Some("access_denied")
    );
}

/// The `Set-Cookie` headers of a response whose cookie name is `name`.
fn set_cookie(response: &reqwest::Response, name: &str) -> String {
    let prefix = format!("{name}=");
    let cookies = response.headers().get_all("set-cookie").iter();
    let mut found = cookies
        .map(|v| v.to_str().unwrap().to_string())
        .filter(|c| c.starts_with(&prefix));
    found
        .next()
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", response.headers()))
}

/// The attributes a `__Host-` cookie must have (RFC 6265bis §4.1.3.2) and kube-idp adds.
fn assert_host_cookie(cookie: &str) {
    let attributes: Vec<&str> = cookie.split(';').skip(1).map(str::trim).collect();
    for required in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(
            attributes.contains(&required),
            "{required} missing: {cookie}"
        );
    }
    assert!(
        !attributes.iter().any(|a| a.starts_with("Domain")),
        "{cookie}"
    );
}

#[tokio::test]
async fn cookies_under_an_https_issuer_are_secure_and_host_prefixed() {
    // The issuer is https (as behind a TLS-terminating ingress); the test speaks plain HTTP
    // to the listener, and so sends the cookies back by hand.
    let options = support::idp::Options {
        issuer: Some("https://idp.example.com".into()),
        ..Default::default()
    };
    let idp = TestIdp::start_with(support::manifests::Manifests::examples(), options).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(authorize_url(&idp, "harbor", HARBOR_CALLBACK, &[]))
        .send()
        .await
        .unwrap();
    let binding = set_cookie(&page, "__Host-kube_idp_browser");
    assert_host_cookie(&binding);
    let binding_value = binding.split(';').next().unwrap().to_string();
    let html = page.text().await.unwrap();
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).expect("hidden field") + marker.len();
        html[start..start + html[start..].find('"').unwrap()].to_string()
    };
    let form = [
        ("request", field("request")),
        ("csrf", field("csrf")),
        ("username", "admin".into()),
        ("password", ADMIN_PASSWORD.into()),
    ];
    let response = http
        .post(idp.url("/oauth/login"))
        .header("cookie", binding_value)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let session = set_cookie(&response, "__Host-kube_idp_session");
    assert_host_cookie(&session);
    let location = response.headers()["location"].to_str().unwrap();
    assert_eq!(
        query_param(location, "iss").as_deref(),
        Some("https://idp.example.com")
    );
}
