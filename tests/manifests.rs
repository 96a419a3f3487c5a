//! The directory source: edits, additions, deletions and broken files take effect without a
//! restart, and a bad object never takes good ones down.

mod support;

use std::future::Future;
use std::time::{Duration, Instant};

use support::browser::{authorize_url, query_param, Browser, Step};
use support::eventually;
use support::idp::TestIdp;
use support::manifests::{
    client_secret, harbor_with_secret, user, Manifests, ADMIN_PASSWORD, HARBOR_CALLBACK,
};

/// The README's promise: an edit applies within a second.
const RELOAD: Duration = Duration::from_secs(1);

/// Waits for `check` to hold and fails unless it held within [`RELOAD`] of `written`, the
/// moment the manifest was written.
async fn applied_within_a_second<F, Fut>(written: Instant, what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<()>>,
{
    eventually(what, RELOAD, check).await;
    let took = written.elapsed();
    assert!(took <= RELOAD, "{what} took {took:?}, more than {RELOAD:?}");
}

/// The token endpoint's verdict on a client's credentials, with a code that does not exist:
/// `invalid_grant` means the credentials were accepted, `invalid_client` that they were not.
async fn credentials_verdict(idp: &TestIdp, id: &str, secret: &str) -> String {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "no-such-code"),
        ("redirect_uri", HARBOR_CALLBACK),
    ];
    let response = reqwest::Client::new()
        .post(idp.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&form)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    body["error"].as_str().unwrap().to_string()
}

/// True when the authorization endpoint shows the login form for `client_id`.
async fn client_is_registered(idp: &TestIdp, client_id: &str, redirect_uri: &str) -> bool {
    let step = Browser::new()
        .open(&authorize_url(idp, client_id, redirect_uri, &[]))
        .await;
    matches!(step, Step::Login { .. })
}

#[tokio::test]
async fn changing_the_client_secret_in_its_manifest_takes_effect_without_a_restart() {
    let idp = TestIdp::examples().await;
    assert_eq!(
        credentials_verdict(&idp, "harbor", "password123").await,
        "invalid_grant"
    );
    let written = Instant::now();
    idp.manifests
        .write("harbor-client.yaml", &harbor_with_secret("rotated-secret"));
    applied_within_a_second(written, "the new secret to be accepted", || async {
        (credentials_verdict(&idp, "harbor", "rotated-secret").await == "invalid_grant")
            .then_some(())
    })
    .await;
    assert_eq!(
        credentials_verdict(&idp, "harbor", "password123").await,
        "invalid_client"
    );
}

#[tokio::test]
async fn a_malformed_manifest_leaves_the_other_clients_working() {
    let idp = TestIdp::examples().await;
    idp.manifests.write(
        "broken.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: [not, a, map\n",
    );
    idp.manifests.write(
        "bad-client.yaml",
        &client_secret("bad", "name: bad\ngrantMethod: sometimes\n"),
    );
    let written = Instant::now();
    idp.manifests.write(
        "grafana.yaml",
        &client_secret("grafana", "name: grafana\nsecret: g\nredirectURIs: ['https://grafana.example/login/generic_oauth']\n"),
    );
    applied_within_a_second(written, "grafana to be registered", || async {
        client_is_registered(
            &idp,
            "grafana",
            "https://grafana.example/login/generic_oauth",
        )
        .await
        .then_some(())
    })
    .await;
    assert!(client_is_registered(&idp, "harbor", HARBOR_CALLBACK).await);
    assert!(!client_is_registered(&idp, "bad", HARBOR_CALLBACK).await);
    let location = Browser::new()
        .sign_in(
            &idp,
            &authorize_url(&idp, "harbor", HARBOR_CALLBACK, &[]),
            "admin",
            ADMIN_PASSWORD,
        )
        .await;
    assert!(query_param(&location, "code").is_some());
}

#[tokio::test]
async fn a_file_that_stops_parsing_keeps_the_clients_it_held_until_it_is_fixed() {
    let idp = TestIdp::examples().await;
    idp.manifests.write(
        "harbor-client.yaml",
        "kind: Secret\nstringData: {configuration.yaml: |\n  name: [\n",
    );
    let written = Instant::now();
    idp.manifests.write(
        "marker.yaml",
        &client_secret(
            "marker",
            "name: marker\nsecret: m\nredirectURIs: ['https://m.example/cb']\n",
        ),
    );
    applied_within_a_second(written, "the reload to happen", || async {
        client_is_registered(&idp, "marker", "https://m.example/cb")
            .await
            .then_some(())
    })
    .await;
    assert_eq!(
        credentials_verdict(&idp, "harbor", "password123").await,
        "invalid_grant"
    );
    let written = Instant::now();
    idp.manifests
        .write("harbor-client.yaml", &harbor_with_secret("fixed"));
    applied_within_a_second(written, "the fixed file to be read", || async {
        (credentials_verdict(&idp, "harbor", "fixed").await == "invalid_grant").then_some(())
    })
    .await;
}

#[tokio::test]
async fn deleting_a_manifest_removes_its_clients() {
    let idp = TestIdp::examples().await;
    assert!(client_is_registered(&idp, "demo", "http://127.0.0.1:5556/callback").await);
    let written = Instant::now();
    idp.manifests.remove("demo-clients.yaml");
    applied_within_a_second(written, "demo to disappear", || async {
        (!client_is_registered(&idp, "demo", "http://127.0.0.1:5556/callback").await).then_some(())
    })
    .await;
    assert!(client_is_registered(&idp, "harbor", HARBOR_CALLBACK).await);
}

#[tokio::test]
async fn a_clear_text_password_in_a_manifest_still_signs_in() {
    let manifests = Manifests::examples();
    manifests.write(
        "alice.yaml",
        &user("alice", "alice@example.com", "Alice-Secret-1", None),
    );
    let idp = TestIdp::start(manifests).await;
    let url = authorize_url(&idp, "harbor", HARBOR_CALLBACK, &[]);
    let location = Browser::new()
        .sign_in(&idp, &url, "alice", "Alice-Secret-1")
        .await;
    assert!(query_param(&location, "code").is_some(), "{location}");
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_and_loses_the_session() {
    let manifests = Manifests::examples();
    manifests.write(
        "bob.yaml",
        &user("bob", "bob@example.com", "Bob-Secret-1", Some("Active")),
    );
    let idp = TestIdp::start(manifests).await;
    let browser = Browser::new();
    let url = authorize_url(&idp, "harbor", HARBOR_CALLBACK, &[]);
    browser.sign_in(&idp, &url, "bob", "Bob-Secret-1").await;
    assert!(
        matches!(browser.open(&url).await, Step::Redirect { .. }),
        "signed in"
    );

    let written = Instant::now();
    idp.manifests.write(
        "bob.yaml",
        &user("bob", "bob@example.com", "Bob-Secret-1", Some("Disabled")),
    );
    applied_within_a_second(written, "bob's session to end", || async {
        matches!(browser.open(&url).await, Step::Login { .. }).then_some(())
    })
    .await;
    let form = browser.open(&url).await;
    let step = browser.log_in(&idp, &form, "bob", "Bob-Secret-1").await;
    assert!(matches!(step, Step::Login { status: 401, .. }), "{step:?}");
}
