//! Signing keys in a cluster: one Secret, created by whichever replica starts first and
//! rotated by one replica for all; an API server that fails at start delays the keys, not
//! the process.

#[path = "support/apiserver.rs"]
mod apiserver;
mod support;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use apiserver::{ApiServer, Kind};
use base64::Engine as _;
use kube_idp::config::{Config, ServeArgs, DEFAULT_KEYS_SECRET, DEFAULT_NAMESPACE};
use kube_idp::server::{Running, StartOptions};
use kube_idp::time::{Clock, ManualClock, SystemClock};
use serde_json::Value;
use support::eventually;

/// kube-idp in `--kubernetes` mode against `api`, on its own clock.
async fn replica(api: &ApiServer, dir: &std::path::Path) -> (Running, String, ManualClock) {
    let kubeconfig = api.write_kubeconfig(dir);
    let client = kube_idp::sources::kube::client_from_kubeconfig(&kubeconfig)
        .await
        .expect("a client for the double");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let args = ServeArgs {
        issuer: Some(base.clone()),
        kubernetes: Some(true),
        ..Default::default()
    };
    let clock = ManualClock::at(SystemClock.now());
    let options = StartOptions {
        clock: Some(Arc::new(clock.clone())),
        kube_client: Some(client),
    };
    let config = Config::resolve(args).expect("config");
    let running = kube_idp::server::start_with(config, Some(listener), options)
        .await
        .expect("kube-idp starts");
    (running, base, clock)
}

async fn jwks(base: &str) -> Value {
    let response = reqwest::get(format!("{base}/oauth/keys")).await.unwrap();
    response.json().await.unwrap()
}

/// The key set stored in the Secret.
fn stored_keys(api: &ApiServer) -> Value {
    let secret = api
        .get(Kind::Secret, DEFAULT_NAMESPACE, DEFAULT_KEYS_SECRET)
        .expect("the keys Secret exists");
    let data = secret["data"]["signing-keys.json"]
        .as_str()
        .expect("the key set");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn ready(base: &str) -> bool {
    let url = format!("{base}/readyz");
    reqwest::get(url).await.is_ok_and(|r| r.status() == 200)
}

#[tokio::test]
async fn replicas_in_a_cluster_share_one_key_secret_and_one_rotation() {
    let api = ApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, a_base, a_clock) = replica(&api, dir.path()).await;
    let (b, b_base, b_clock) = replica(&api, dir.path()).await;
    assert_eq!(stored_keys(&api)["keys"].as_array().unwrap().len(), 1);
    let secret = api
        .get(Kind::Secret, DEFAULT_NAMESPACE, DEFAULT_KEYS_SECRET)
        .unwrap();
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "kube-idp"
    );
    assert_eq!(
        jwks(&a_base).await,
        jwks(&b_base).await,
        "B took the Secret A created"
    );

    let period = a.provider.settings.key_rotation_period as i64;
    let retention = a.provider.settings.access_token_lifetime;
    a_clock.advance(period);
    b_clock.advance(period);
    let (at_a, at_b) = tokio::join!(
        a.keys.sync(a_clock.now(), retention),
        b.keys.sync(b_clock.now(), retention)
    );
    assert!(at_a.unwrap() ^ at_b.unwrap(), "one replica rotates");
    a.keys.sync(a_clock.now(), retention).await.unwrap();
    b.keys.sync(b_clock.now(), retention).await.unwrap();
    assert_eq!(stored_keys(&api)["keys"].as_array().unwrap().len(), 2);
    let published = jwks(&a_base).await;
    assert_eq!(published["keys"].as_array().unwrap().len(), 2);
    assert_eq!(published, jwks(&b_base).await);
    a.stop().await;
    b.stop().await;
    api.stop().await;
}

#[tokio::test]
async fn keys_wait_for_an_api_server_that_fails_at_start() {
    let api = ApiServer::start().await;
    api.fail_with_500(true);
    let dir = tempfile::tempdir().unwrap();
    let (idp, base, _) = replica(&api, dir.path()).await;
    assert!(!ready(&base).await, "not ready without keys or a sync");
    assert_eq!(jwks(&base).await["keys"], serde_json::json!([]));

    api.fail_with_500(false);
    eventually("keys and a sync", Duration::from_secs(30), || async {
        ready(&base).await.then_some(())
    })
    .await;
    assert_eq!(jwks(&base).await["keys"].as_array().unwrap().len(), 1);
    assert_eq!(stored_keys(&api)["keys"].as_array().unwrap().len(), 1);
    idp.stop().await;
    api.stop().await;
}
