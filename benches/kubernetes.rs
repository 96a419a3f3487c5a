//! `make bench`: how fast a change to a client Secret at the API server reaches
//! `/oauth/authorize`, and how much memory kube-idp holds with a cluster-sized registry.
//!
//! The API server is the double from `tests/support/apiserver.rs`, on a loopback port, and
//! kube-idp is the release binary in `--kubernetes` mode in a process of its own, so its
//! resident memory is its own. Every figure is also given as a ratio to a reference taken in
//! the same run: latency to one `/oauth/authorize` round trip of a client that is already
//! loaded, memory to the same binary serving an empty folder of manifests.

#[path = "../tests/support/apiserver.rs"]
mod apiserver;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use apiserver::ApiServer;
use serde_json::{json, Value};

const NAMESPACE: &str = "kubesphere-system";
/// The registry measured by `cargo bench`. `cargo test --all-targets` runs this file as a
/// smoke test, on a registry a fiftieth of the size.
const CLIENTS: usize = 1_000;
const USERS: usize = 10_000;
/// A bcrypt hash, as Users hold once their password was hashed.
const HASH: &str = "$2b$10$Cs0FMLN4DVtYpwmXOXKB2OA5yHgMU9pC0bw85G8LoTMh15a3LfUTa";
/// How long one change may take to arrive before the run is called failed.
const LIMIT: Duration = Duration::from_secs(30);

fn redirect(client: usize, generation: usize) -> String {
    format!("https://app-{client}.example/callback/{generation}")
}

fn client_secret(client: usize, generation: usize) -> Value {
    let configuration = format!(
        "name: app-{client}\nsecret: s3cret-{client}\ngrantMethod: auto\n\
         scopeRestrictions: [openid, email, profile]\nredirectURIs: ['{}']\n",
        redirect(client, generation)
    );
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": format!("oauthclient-app-{client}"), "namespace": NAMESPACE,
            "labels": { "config.kubesphere.io/type": "oauthclient" },
        },
        "type": "config.kubesphere.io/oauthclient",
        "stringData": { "configuration.yaml": configuration },
    })
}

fn user(n: usize) -> Value {
    json!({
        "apiVersion": "iam.kubesphere.io/v1beta1", "kind": "User",
        "metadata": { "name": format!("user-{n}") },
        "spec": {
            "email": format!("user-{n}@example.com"), "password": HASH,
            "displayName": format!("User {n}"), "groups": ["developers"],
        },
        "status": { "state": "Active" },
    })
}

/// kube-idp in a process of its own, killed on drop.
struct Idp {
    child: Child,
    base: String,
}

impl Idp {
    fn start(args: &[&str], kubeconfig: Option<&std::path::Path>) -> Idp {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_kube-idp"));
        command
            .args([
                "serve",
                "--issuer",
                &base,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(args)
            .env("KUBE_IDP_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(path) = kubeconfig {
            command.env("KUBECONFIG", path);
        }
        let child = command.spawn().expect("start kube-idp");
        Idp { child, base }
    }

    /// Resident memory in KiB, from /proc.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .expect("VmRSS");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn authorize_url(&self, client: usize, generation: usize) -> String {
        let mut url = url::Url::parse(&format!("{}/oauth/authorize", self.base)).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", &format!("app-{client}"))
            .append_pair("redirect_uri", &redirect(client, generation))
            .append_pair("response_type", "code")
            .append_pair("scope", "openid")
            .append_pair("state", "bench");
        url.into()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_until(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !ready().await {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The login page (200) means the client and redirect URI are known; the error page is 400.
async fn accepted(http: &reqwest::Client, url: &str) -> bool {
    http.get(url).send().await.is_ok_and(|r| r.status() == 200)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let scale = if std::env::args().any(|a| a == "--bench") {
        1
    } else {
        50
    };
    run(CLIENTS / scale, USERS / scale).await;
}

async fn run(clients: usize, users: usize) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let empty = tempfile::tempdir().unwrap();
    let baseline = Idp::start(&["--manifests", empty.path().to_str().unwrap()], None);
    let health = format!("{}/healthz", baseline.base);
    wait_until("the baseline to serve", async || {
        accepted(&http, &health).await
    })
    .await;
    let baseline_kib = baseline.rss_kib();
    drop(baseline);

    let api = ApiServer::start().await;
    for client in 0..clients {
        api.apply(client_secret(client, 0));
    }
    for n in 0..users {
        api.apply(user(n));
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path());
    let started = Instant::now();
    let idp = Idp::start(
        &["--kubernetes", "--namespace", NAMESPACE],
        Some(&kubeconfig),
    );
    let ready = format!("{}/readyz", idp.base);
    wait_until("the first sync", async || accepted(&http, &ready).await).await;
    let sync = started.elapsed();
    let last = idp.authorize_url(clients - 1, 0);
    wait_until("the last client", async || accepted(&http, &last).await).await;

    let mut reference = Vec::with_capacity(clients);
    for client in 0..clients {
        let url = idp.authorize_url(client, 0);
        let start = Instant::now();
        assert!(accepted(&http, &url).await, "app-{client} is loaded");
        reference.push(start.elapsed());
    }

    let mut latencies = Vec::with_capacity(clients);
    for client in 0..clients {
        let url = idp.authorize_url(client, 1);
        let start = Instant::now();
        api.apply(client_secret(client, 1));
        while !accepted(&http, &url).await {
            assert!(
                start.elapsed() < LIMIT,
                "app-{client}'s change never arrived"
            );
        }
        latencies.push(start.elapsed());
    }
    let loaded_kib = idp.rss_kib();

    reference.sort();
    latencies.sort();
    let one_request = percentile(&reference, 0.5);
    println!("kube-idp --kubernetes, {clients} client Secrets and {users} Users at the API server double");
    println!("  first full sync: {:.0} ms", ms(sync));
    println!(
        "  reference: one /oauth/authorize round trip, p50 {:.3} ms",
        ms(one_request)
    );
    for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
        let d = percentile(&latencies, p);
        let ratio = d.as_secs_f64() / one_request.as_secs_f64();
        println!(
            "  Secret change to usable at /oauth/authorize, {name}: {:.2} ms ({ratio:.1}x the reference)",
            ms(d)
        );
    }
    println!(
        "  resident memory: {:.1} MiB loaded, {:.1} MiB serving nothing ({:.2}x)",
        loaded_kib as f64 / 1024.0,
        baseline_kib as f64 / 1024.0,
        loaded_kib as f64 / baseline_kib as f64
    );
    drop(idp);
    api.stop().await;
}
