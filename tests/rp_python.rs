//! A relying party from another ecosystem (Python's authlib) completes the flow, a refresh and
//! a logout against kube-idp.

mod support;

use support::idp::TestIdp;
use support::manifests::{client_secret, Manifests, ADMIN_PASSWORD};

const CALLBACK: &str = "https://py.example/callback";
const SIGNED_OUT: &str = "https://py.example/bye";

#[tokio::test]
async fn authlib_signs_in_refreshes_and_logs_out() {
    let manifests = Manifests::examples();
    let config = format!(
        "name: py\nsecret: py-secret\nscopeRestrictions: [openid, profile, email, offline_access]\n\
         redirectURIs: ['{CALLBACK}']\npostLogoutRedirectURIs: ['{SIGNED_OUT}']\n"
    );
    manifests.write("py.yaml", &client_secret("py", &config));
    let idp = TestIdp::start(manifests).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rp_authlib.py");
    let args: Vec<String> = [
        script,
        &idp.issuer,
        "py",
        "py-secret",
        CALLBACK,
        SIGNED_OUT,
        "admin",
        ADMIN_PASSWORD,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let output = tokio::task::spawn_blocking(move || support::python::python().args(args).output())
        .await
        .unwrap()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "authlib failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("OK authlib completed"), "{stdout}");
}
