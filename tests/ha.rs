//! Two replicas sharing a real Redis behave as one provider: a flow may hop between them,
//! a code is redeemed once however the race falls, a restart loses nothing, both publish
//! the same keys, and losing Redis is a clear 503 that ends when Redis is back.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::browser::{authorize_url, query_param, Browser, Step};
use support::eventually;
use support::idp::{Options, TestIdp};
use support::manifests::{Manifests, ADMIN_PASSWORD};
use support::redis_server::RedisServer;

const CALLBACK: &str = "http://127.0.0.1:5556/callback";

/// Replicas `a` and `b` behind one issuer (a's address), sharing `redis`.
async fn replicas(redis: &RedisServer) -> (TestIdp, TestIdp) {
    let options = Options {
        redis: Some(redis.url()),
        ..Default::default()
    };
    let a = TestIdp::start_with(Manifests::examples(), options.clone()).await;
    let shared = Options {
        issuer: Some(a.issuer.clone()),
        ..options
    };
    let b = TestIdp::start_with(Manifests::examples(), shared).await;
    (a, b)
}

/// Signs `admin` in at `idp` and returns the code.
async fn code_from(browser: &Browser, idp: &TestIdp) -> String {
    let url = authorize_url(idp, "demo", CALLBACK, &[]);
    let location = browser.sign_in(idp, &url, "admin", ADMIN_PASSWORD).await;
    query_param(&location, "code").expect("a code")
}

async fn token(idp: &TestIdp, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(idp.url("/oauth/token"))
        .basic_auth("demo", Some("demo-secret"))
        .form(form)
        .send()
        .await
        .expect("token endpoint");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

async fn redeem(idp: &TestIdp, code: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
    ];
    token(idp, &form).await
}

async fn userinfo(idp: &TestIdp, access_token: &str) -> u16 {
    let response = reqwest::Client::new()
        .get(idp.url("/oauth/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo");
    response.status().as_u16()
}

async fn jwks(idp: &TestIdp) -> Value {
    let response = reqwest::get(idp.url("/oauth/keys")).await.expect("JWKS");
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn a_flow_hops_between_replicas_and_logout_at_one_ends_the_session_at_both() {
    let redis = RedisServer::start().await;
    let (a, b) = replicas(&redis).await;
    let browser = Browser::new();

    let code = code_from(&browser, &a).await;
    let (status, tokens) = redeem(&b, &code).await;
    assert_eq!(status, 200, "a code from A is redeemed at B: {tokens}");
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let (status, refreshed) = token(&a, &form).await;
    assert_eq!(status, 200, "B's refresh token is used at A: {refreshed}");
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        userinfo(&b, access).await,
        200,
        "A's access token is good at B"
    );

    let id_token = refreshed["id_token"].as_str().unwrap();
    let mut logout = url::Url::parse(&b.url("/oauth/logout")).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", id_token);
    let signed_out = browser.open(logout.as_str()).await;
    let Step::Page { status: 200, .. } = signed_out else {
        panic!("logout at B signs out: {signed_out:?}");
    };
    let again = browser
        .open(&authorize_url(&a, "demo", CALLBACK, &[]))
        .await;
    assert!(
        matches!(again, Step::Login { .. }),
        "the session is gone at A too: {again:?}"
    );
}

#[tokio::test]
async fn a_code_redeemed_at_both_replicas_at_once_succeeds_exactly_once() {
    let redis = RedisServer::start().await;
    let (a, b) = replicas(&redis).await;
    for round in 0..10 {
        let code = code_from(&Browser::new(), &a).await;
        let ((at_a, _), (at_b, _)) = tokio::join!(redeem(&a, &code), redeem(&b, &code));
        let mut statuses = [at_a, at_b];
        statuses.sort();
        assert_eq!(statuses, [200, 400], "round {round}: one redemption wins");
    }
}

#[tokio::test]
async fn restarting_a_replica_mid_flow_loses_nothing() {
    let redis = RedisServer::start().await;
    let (mut a, b) = replicas(&redis).await;
    let browser = Browser::new();
    let code = code_from(&browser, &a).await;

    a.restart().await;
    let (status, tokens) = redeem(&a, &code).await;
    assert_eq!(status, 200, "the code outlived the restart: {tokens}");
    let url = authorize_url(&a, "demo", CALLBACK, &[]);
    let Step::Redirect { location, .. } = browser.open(&url).await else {
        panic!("the browser session outlived the restart");
    };
    assert!(query_param(&location, "code").is_some(), "{location}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&b, access).await, 200);
}

#[tokio::test]
async fn replicas_publish_one_key_set_and_see_each_others_rotation() {
    let redis = RedisServer::start().await;
    let (a, b) = replicas(&redis).await;
    let before = jwks(&a).await;
    assert_eq!(before["keys"].as_array().unwrap().len(), 1);
    assert_eq!(before, jwks(&b).await, "B took A's key set");

    let period = a.running().provider.settings.key_rotation_period;
    a.clock.advance(period as i64);
    assert!(a.rotate_keys_if_due().await, "A rotates");
    assert_eq!(jwks(&a).await["keys"].as_array().unwrap().len(), 2);
    b.clock.advance(period as i64);
    assert!(
        !b.rotate_keys_if_due().await,
        "B finds the rotation done and takes it up"
    );
    assert_eq!(jwks(&a).await, jwks(&b).await);
}

#[tokio::test]
async fn losing_redis_is_a_503_and_service_returns_with_redis() {
    let mut redis = RedisServer::start().await;
    let (a, _b) = replicas(&redis).await;
    let browser = Browser::new();
    let code = code_from(&browser, &a).await;

    redis.stop();
    let (status, body) = redeem(&a, &code).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    let back = browser
        .open(&authorize_url(&a, "demo", CALLBACK, &[]))
        .await;
    assert_eq!(
        query_param(back.location(), "error").as_deref(),
        Some("temporarily_unavailable"),
        "the client hears of it (RFC 6749 section 4.1.2.1)"
    );

    redis.restart().await;
    let fresh = Browser::new();
    let code = eventually(
        "kube-idp to reach Redis again",
        Duration::from_secs(20),
        || {
            let (fresh, a) = (&fresh, &a);
            async move {
                let url = authorize_url(a, "demo", CALLBACK, &[]);
                match fresh.open(&url).await {
                    form @ Step::Login { .. } => {
                        let location = fresh.log_in(a, &form, "admin", ADMIN_PASSWORD).await;
                        query_param(location.location(), "code")
                    }
                    _ => None,
                }
            }
        },
    )
    .await;
    let (status, tokens) = redeem(&a, &code).await;
    assert_eq!(status, 200, "{tokens}");
}

#[tokio::test]
async fn a_redis_that_is_down_at_start_is_a_clear_start_error_in_directory_mode() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", free.local_addr().unwrap());
    drop(free);
    let manifests = Manifests::examples();
    let args = kube_idp::config::ServeArgs {
        manifests: Some(manifests.path().to_path_buf()),
        redis: Some(url.clone()),
        ..Default::default()
    };
    let config = kube_idp::config::Config::resolve(args).expect("valid configuration");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let Err(error) = kube_idp::server::start(config, Some(listener)).await else {
        panic!("started without its key storage");
    };
    let message = error.to_string();
    assert!(message.contains("redis"), "{message}");
}

#[tokio::test]
async fn concurrent_wrong_passwords_at_both_replicas_get_at_most_ten_checked() {
    let redis = RedisServer::start().await;
    let (a, b) = replicas(&redis).await;
    let mut forms = Vec::new();
    for i in 0..30 {
        let (idp, browser) = (if i % 2 == 0 { &a } else { &b }, Browser::new());
        let form = browser
            .open(&authorize_url(idp, "demo", CALLBACK, &[]))
            .await;
        forms.push((idp, browser, form));
    }
    let guesses = forms
        .iter()
        .map(|(idp, browser, form)| browser.log_in(idp, form, "admin", "wrong"));
    let answers = futures::future::join_all(guesses).await;
    let checked = answers
        .iter()
        .filter(|s| matches!(s, Step::Login { html, .. } if html.contains("Invalid username")))
        .count();
    assert!(checked <= 10, "{checked} of 30 passwords checked");
    let browser = Browser::new();
    let form = browser
        .open(&authorize_url(&b, "demo", CALLBACK, &[]))
        .await;
    let right = browser.log_in(&b, &form, "admin", ADMIN_PASSWORD).await;
    assert!(
        matches!(&right, Step::Login { html, .. } if html.contains("Too many failed")),
        "locked at both replicas: {right:?}"
    );
}

#[tokio::test]
async fn redis_counter_gives_a_count_back_without_creating_it_or_going_below_zero() {
    use kube_idp::store::{RedisStore, Store};
    let redis = RedisServer::start().await;
    let store = RedisStore::open(&redis.url()).expect("a valid URL");
    assert_eq!(store.decr("c").await.unwrap(), 0);
    assert_eq!(store.get("c").await.unwrap(), None, "not created");
    assert_eq!(store.incr("c", 60).await.unwrap(), 1);
    assert_eq!(store.incr("c", 60).await.unwrap(), 2);
    assert_eq!(store.decr("c").await.unwrap(), 1);
    assert_eq!(store.decr("c").await.unwrap(), 0);
    assert_eq!(store.decr("c").await.unwrap(), 0, "never below zero");
    assert_eq!(store.incr("c", 60).await.unwrap(), 1);
}

/// Runs one Redis command against `redis`, as an operator's redis-cli would.
async fn redis_cli(redis: &RedisServer, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query_async(&mut connection).await.unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    let keys = jwks["keys"].as_array().unwrap();
    keys.iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_first_request_after_redis_restarts_is_served() {
    let mut redis = RedisServer::start().await;
    let (a, _b) = replicas(&redis).await;
    let browser = Browser::new();
    code_from(&browser, &a).await;
    redis.stop();
    let url = authorize_url(&a, "demo", CALLBACK, &[]);
    let refused = Browser::new().open(&url).await;
    assert_eq!(
        query_param(refused.location(), "error").as_deref(),
        Some("temporarily_unavailable")
    );
    redis.restart().await;
    let first = Browser::new().open(&url).await;
    assert!(
        matches!(first, Step::Login { .. }),
        "no 503 once Redis is back: {first:?}"
    );
}

#[tokio::test]
async fn a_redis_that_lost_its_data_keeps_the_keys_tokens_were_signed_with() {
    let mut redis = RedisServer::start().await;
    let (a, _b) = replicas(&redis).await;
    let code = code_from(&Browser::new(), &a).await;
    let (_, tokens) = redeem(&a, &code).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let signed_with = kids(&jwks(&a).await);

    redis.restart().await;
    let late = Options {
        issuer: Some(a.issuer.clone()),
        redis: Some(redis.url()),
    };
    let c = TestIdp::start_with(Manifests::examples(), late).await;
    assert!(!a.rotate_keys_if_due().await, "A syncs; nothing is due");
    assert!(
        !c.rotate_keys_if_due().await,
        "C syncs and takes A's keys up"
    );
    let published = kids(&jwks(&c).await);
    assert!(
        signed_with.iter().all(|kid| published.contains(kid)),
        "{signed_with:?} still in {published:?}"
    );
    assert_eq!(jwks(&a).await, jwks(&c).await);
    assert_eq!(
        userinfo(&c, &access).await,
        200,
        "the old token verifies at C"
    );
}

#[tokio::test]
async fn a_key_hash_that_lost_its_set_is_written_back() {
    let redis = RedisServer::start().await;
    let (a, b) = replicas(&redis).await;
    redis_cli(&redis, &["HDEL", "kube-idp:signing-keys", "set"]).await;
    assert!(!a.rotate_keys_if_due().await);
    let fields = redis_cli(&redis, &["HKEYS", "kube-idp:signing-keys"]).await;
    let redis::Value::Array(fields) = fields else {
        panic!("HKEYS answers a list: {fields:?}");
    };
    assert_eq!(fields.len(), 2, "version and set: {fields:?}");
    assert!(!b.rotate_keys_if_due().await);
    assert_eq!(jwks(&a).await, jwks(&b).await);
}

/// Signs `admin` in once at `idp` for demo, then takes `n` codes from the session.
async fn codes_from(idp: &TestIdp, n: usize) -> Vec<String> {
    let browser = Browser::new();
    let mut codes = vec![code_from(&browser, idp).await];
    let url = authorize_url(idp, "demo", CALLBACK, &[]);
    while codes.len() < n {
        let step = browser.open(&url).await;
        codes.push(query_param(step.location(), "code").expect("a code"));
    }
    codes
}

async fn refresh(idp: &TestIdp, refresh_token: &str) -> (u16, Value) {
    token(
        idp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

async fn back_channel(idp: &TestIdp, path: &str, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(idp.url(path))
        .basic_auth("demo", Some("demo-secret"))
        .form(&[("token", token)])
        .send()
        .await
        .expect("back channel answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn token_of<'a>(body: &'a Value, name: &str) -> &'a str {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name}: {body}"))
}

#[tokio::test]
async fn sixteen_concurrent_refreshes_split_across_replicas_all_succeed_in_every_round() {
    let redis = RedisServer::start().await;
    let (a, b) = replicas(&redis).await;
    for (round, code) in codes_from(&a, 10).await.iter().enumerate() {
        let (status, tokens) = redeem(&a, code).await;
        assert_eq!(status, 200, "round {round}: {tokens}");
        let rt = token_of(&tokens, "refresh_token");
        let refreshes = (0..16).map(|i| refresh(if i % 2 == 0 { &a } else { &b }, rt));
        for (status, body) in futures::future::join_all(refreshes).await {
            assert_eq!(status, 200, "round {round}: {body}");
        }
    }
}

#[tokio::test]
async fn one_revocation_racing_refreshes_of_a_rotated_out_token_at_both_replicas_leaves_nothing_live(
) {
    let redis = RedisServer::start().await;
    let (a, b) = replicas(&redis).await;
    for (round, code) in codes_from(&a, 20).await.iter().enumerate() {
        let (status, first) = redeem(&b, code).await;
        assert_eq!(status, 200, "round {round}: {first}");
        let rt1 = token_of(&first, "refresh_token");
        let (status, second) = refresh(&a, rt1).await;
        assert_eq!(status, 200, "round {round}: {second}");
        let (revoked, x, y, z) = tokio::join!(
            back_channel(&a, "/oauth/revoke", rt1),
            refresh(&a, rt1),
            refresh(&b, rt1),
            refresh(&b, rt1),
        );
        assert_eq!(revoked.0, 200, "round {round}");
        let mut issued = vec![&first, &second];
        issued.extend(
            [&x, &y, &z]
                .into_iter()
                .filter(|r| r.0 == 200)
                .map(|r| &r.1),
        );
        for tokens in issued {
            let access = token_of(tokens, "access_token");
            assert_eq!(userinfo(&b, access).await, 401, "round {round}: {tokens}");
            let rt = token_of(tokens, "refresh_token");
            let (_, seen) = back_channel(&b, "/oauth/introspect", rt).await;
            assert_eq!(seen["active"], false, "round {round}: {tokens}");
            let (status, body) = refresh(&b, rt).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant")),
                "round {round}: {tokens}"
            );
        }
    }
}

#[tokio::test]
async fn redis_refusing_writes_is_a_503_for_the_password_grant_and_the_login_form_which_survives() {
    let redis = RedisServer::start().await;
    let manifests = Manifests::examples();
    manifests.write(
        "cli.yaml",
        &support::manifests::client_secret(
            "cli",
            &format!(
                "name: cli\nsecret: cli-secret\ntrusted: true\nscopeRestrictions: [openid]\n\
                 redirectURIs: ['{CALLBACK}']\n"
            ),
        ),
    );
    let options = Options {
        redis: Some(redis.url()),
        ..Default::default()
    };
    let idp = TestIdp::start_with(manifests, options).await;
    let password_grant = || async {
        let form = [
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ];
        let response = reqwest::Client::new()
            .post(idp.url("/oauth/token"))
            .basic_auth("cli", Some("cli-secret"))
            .form(&form)
            .send()
            .await
            .expect("token endpoint");
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.expect("JSON"))
    };
    let browser = Browser::new();
    let form = browser
        .open(&authorize_url(&idp, "demo", CALLBACK, &[]))
        .await;

    redis.config_set("maxmemory", "1").await;
    let (status, body) = password_grant().await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{body}"
    );
    let refused = browser.log_in(&idp, &form, "admin", ADMIN_PASSWORD).await;
    assert!(
        matches!(refused, Step::Page { status: 503, .. }),
        "{refused:?}"
    );

    redis.config_set("maxmemory", "0").await;
    let (status, body) = password_grant().await;
    assert_eq!(status, 200, "{body}");
    let back = browser.log_in(&idp, &form, "admin", ADMIN_PASSWORD).await;
    assert!(
        query_param(back.location(), "code").is_some(),
        "the same form signs in once Redis takes writes again: {back:?}"
    );
}
