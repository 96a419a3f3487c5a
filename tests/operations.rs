//! Running kube-idp: Prometheus metrics, HTTPS from a certificate and key, and a SIGTERM
//! that drains the request in flight before the process exits.

mod support;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use kube_idp::config::{Config, ServeArgs};
use support::browser::{authorize_url, query_param, Browser};
use support::eventually;
use support::idp::TestIdp;
use support::manifests::{Manifests, ADMIN_PASSWORD};

const CALLBACK: &str = "http://127.0.0.1:5556/callback";

async fn metrics_text(idp: &TestIdp) -> (String, String) {
    let response = reqwest::get(idp.url("/metrics")).await.expect("/metrics");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (content_type, response.text().await.expect("a body"))
}

#[tokio::test]
async fn metrics_count_requests_sign_ins_tokens_and_the_registry() {
    let idp = TestIdp::examples().await;
    let browser = Browser::new();
    let url = authorize_url(&idp, "demo", CALLBACK, &[]);
    let form = browser.open(&url).await;
    let retry = browser.log_in(&idp, &form, "admin", "wrong password").await;
    let location = browser.log_in(&idp, &retry, "admin", ADMIN_PASSWORD).await;
    let code = query_param(location.location(), "code").expect("a code");
    let response = reqwest::Client::new()
        .post(idp.url("/oauth/token"))
        .basic_auth("demo", Some("demo-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let (content_type, text) = metrics_text(&idp).await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    for line in [
        r#"kube_idp_http_requests_total{endpoint="/oauth/token",status="200"} 1"#,
        r#"kube_idp_http_requests_total{endpoint="/oauth/authorize",status="200"} 1"#,
        r#"kube_idp_logins_total{result="failed"} 1"#,
        r#"kube_idp_logins_total{result="succeeded"} 1"#,
        r#"kube_idp_tokens_issued_total{grant="authorization_code"} 1"#,
        r#"kube_idp_http_request_duration_seconds_count{endpoint="/oauth/token"} 1"#,
        "kube_idp_registry_clients 3",
        "kube_idp_registry_users 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
}

#[tokio::test]
async fn metrics_label_unknown_paths_as_one_series() {
    let idp = TestIdp::examples().await;
    for n in 0..5 {
        reqwest::get(idp.url(&format!("/no/such/path/{n}")))
            .await
            .unwrap();
    }
    let (_, text) = metrics_text(&idp).await;
    let unmatched = r#"kube_idp_http_requests_total{endpoint="unmatched",status="404"} 5"#;
    assert!(text.lines().any(|l| l == unmatched), "{text}");
    assert!(!text.contains("/no/such/path"), "paths never become labels");
}

#[tokio::test]
async fn https_is_served_from_a_certificate_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let manifests = Manifests::examples();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("https://{}", listener.local_addr().unwrap());
    let args = ServeArgs {
        issuer: Some(issuer.clone()),
        manifests: Some(manifests.path().to_path_buf()),
        tls_cert: Some(cert),
        tls_key: Some(key),
        ..Default::default()
    };
    let config = Config::resolve(args).expect("valid configuration");
    let running = kube_idp::server::start(config, Some(listener))
        .await
        .expect("starts");

    let root = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .unwrap();
    let discovery: serde_json::Value = client
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .expect("an HTTPS answer")
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], issuer.as_str());
    let plain = format!("http://{}/healthz", running.addr);
    let answer = reqwest::get(&plain).await;
    assert!(
        answer.is_err() || answer.is_ok_and(|r| !r.status().is_success()),
        "plain HTTP is not served on the TLS port"
    );
    running.stop().await;
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_then_exits() {
    let manifests = Manifests::examples();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-idp"))
        .args([
            "serve",
            "--listen",
            &addr,
            "--issuer",
            &format!("http://{addr}"),
        ])
        .arg("--manifests")
        .arg(manifests.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kube-idp starts");
    let health = format!("http://{addr}/healthz");
    eventually("kube-idp to serve", Duration::from_secs(30), || async {
        reqwest::get(&health)
            .await
            .ok()
            .filter(|r| r.status() == 200)
    })
    .await;

    let body = "grant_type=authorization_code&code=nothing";
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /oauth/token HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body.as_bytes()[..10]).unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    eventually(
        "new connections to be refused",
        Duration::from_secs(10),
        || async { TcpStream::connect(&addr).is_err().then_some(()) },
    )
    .await;
    stream.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "the request in flight got its answer: {answer}"
    );
    let exit = child.wait().unwrap();
    assert!(exit.success(), "a drained shutdown exits cleanly: {exit}");
}

#[tokio::test]
async fn metrics_listen_moves_metrics_off_the_main_listener() {
    let manifests = Manifests::examples();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let metrics_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let args = ServeArgs {
        issuer: Some(base.clone()),
        manifests: Some(manifests.path().to_path_buf()),
        metrics_listen: Some(format!("127.0.0.1:{metrics_port}")),
        ..Default::default()
    };
    let config = Config::resolve(args).expect("valid configuration");
    let running = kube_idp::server::start(config, Some(listener))
        .await
        .expect("starts");
    let on_main = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(
        on_main.status(),
        404,
        "the ingress-facing listener has no /metrics"
    );
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("kube_idp_registry_clients 3"), "{text}");
    running.stop().await;
}
