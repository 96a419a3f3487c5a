//! A real browser (Debian's Chromium, driven through chromedriver) signs in to one
//! application, is signed in to a second one without a password (single sign-on), and signs
//! out. Two relying parties run on a loopback port in this test and redeem their codes.

mod support;

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use support::eventually;
use support::idp::TestIdp;
use support::manifests::{client_secret, Manifests, ADMIN_PASSWORD};

/// chromedriver on a free loopback port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (make deps installs chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        eventually(
            "chromedriver to listen",
            Duration::from_secs(20),
            || async {
                reqwest::get(&status)
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
            },
        )
        .await;
        Self { child, url }
    }

    async fn browser(&self, profile: &std::path::Path) -> Client {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1000,800",
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({ "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args } });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::native()
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a browser session")
    }
}

/// Stops chromedriver and every browser it started (its process group), even when the test
/// failed before it could close its session.
impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// Two relying parties, `one` and `two`, on one loopback port: `/{app}/login` sends the
/// browser to kube-idp, `/{app}/callback` redeems the code and greets the user.
struct RelyingParties {
    base: String,
    handle: actix_web::dev::ServerHandle,
}

#[derive(Clone)]
struct RpState {
    issuer: String,
    base: String,
}

impl RelyingParties {
    fn start(issuer: &str, listener: TcpListener) -> Self {
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = RpState {
            issuer: issuer.to_string(),
            base: base.clone(),
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .route("/{app}/login", web::get().to(rp_login))
                .route("/{app}/callback", web::get().to(rp_callback))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { base, handle }
    }
}

async fn rp_login(state: web::Data<RpState>, app: web::Path<String>) -> HttpResponse {
    let mut url = url::Url::parse(&format!("{}/oauth/authorize", state.issuer)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &format!("rp-{app}"))
        .append_pair("redirect_uri", &format!("{}/{app}/callback", state.base))
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email")
        .append_pair("state", "s1");
    HttpResponse::Found()
        .insert_header(("Location", url.to_string()))
        .finish()
}

async fn rp_callback(
    state: web::Data<RpState>,
    app: web::Path<String>,
    query: web::Query<std::collections::HashMap<String, String>>,
) -> HttpResponse {
    let Some(code) = query.get("code") else {
        return HttpResponse::BadRequest().body(format!("no code: {query:?}"));
    };
    let redirect = format!("{}/{app}/callback", state.base);
    let client = format!("rp-{app}");
    let tokens: Value = reqwest::Client::new()
        .post(format!("{}/oauth/token", state.issuer))
        .basic_auth(&client, Some(format!("{client}-secret")))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let Some(id_token) = tokens["id_token"].as_str() else {
        return HttpResponse::BadRequest().body(format!("no ID token: {tokens}"));
    };
    let payload = id_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    let body = format!(
        "<p id=\"greeting\">{} signed in to {client}</p>",
        claims["preferred_username"]
    );
    HttpResponse::Ok().content_type("text/html").body(body)
}

/// The text of the element `css`, waiting for a page that is still loading to show it.
async fn text_of(browser: &Client, css: &str) -> String {
    let found = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await;
    match found {
        Ok(element) => element.text().await.unwrap(),
        Err(e) => panic!(
            "{css}: {e}; the page was:\n{}",
            browser.source().await.unwrap()
        ),
    }
}

async fn log_in(browser: &Client, password: &str) {
    let username = browser.find(Locator::Id("username")).await.unwrap();
    username.clear().await.unwrap();
    username.send_keys("admin").await.unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    browser
        .find(Locator::Id("submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_browser_signs_in_once_and_is_signed_in_everywhere_until_it_signs_out() {
    let rp_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let rp_base = format!("http://{}", rp_listener.local_addr().unwrap());
    let manifests = Manifests::examples();
    for app in ["one", "two"] {
        let config = format!(
            "name: rp-{app}\nsecret: rp-{app}-secret\nredirectURIs: ['{rp_base}/{app}/callback']\n"
        );
        manifests.write(
            &format!("rp-{app}.yaml"),
            &client_secret(&format!("rp-{app}"), &config),
        );
    }
    let idp = TestIdp::start(manifests).await;
    let rps = RelyingParties::start(&idp.issuer, rp_listener);
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;

    browser
        .goto(&format!("{}/one/login", rps.base))
        .await
        .unwrap();
    assert_eq!(browser.title().await.unwrap(), "Sign in · kube-idp");
    assert!(text_of(&browser, ".lead").await.contains("rp-one"));
    screenshot(&browser, "login").await;
    log_in(&browser, "wrong password").await;
    assert_eq!(
        text_of(&browser, "#login-error").await,
        "Invalid username or password."
    );
    log_in(&browser, ADMIN_PASSWORD).await;
    assert_eq!(
        text_of(&browser, "#greeting").await,
        "\"admin\" signed in to rp-one"
    );

    browser
        .goto(&format!("{}/two/login", rps.base))
        .await
        .unwrap();
    assert_eq!(
        text_of(&browser, "#greeting").await,
        "\"admin\" signed in to rp-two"
    );

    browser.goto(&idp.url("/oauth/logout")).await.unwrap();
    screenshot(&browser, "logout").await;
    browser
        .find(Locator::Id("confirm-logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(text_of(&browser, "#signed-out")
        .await
        .contains("signed out"));
    browser
        .goto(&format!("{}/one/login", rps.base))
        .await
        .unwrap();
    assert_eq!(
        browser.title().await.unwrap(),
        "Sign in · kube-idp",
        "the session is gone"
    );

    browser.close().await.unwrap();
    rps.handle.stop(false).await;
}

/// Saves a screenshot under target/screenshots for people to look at.
async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}
