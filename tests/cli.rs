//! The `kube-idp` binary: configuration errors, the committed CRD, password hashing.

use std::io::Write as _;
use std::process::{Command, Stdio};

fn kube_idp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kube-idp"))
}

#[test]
fn serve_reports_every_configuration_problem_at_once() {
    let output = kube_idp()
        .args([
            "serve",
            "--issuer",
            "ftp://nowhere",
            "--listen",
            "not-an-address",
        ])
        .env_remove("KUBE_IDP_MANIFESTS")
        .output()
        .expect("kube-idp runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in ["issuer:", "listen:", "choose a source"] {
        assert!(
            stderr.contains(expected),
            "{expected} missing from:\n{stderr}"
        );
    }
}

#[test]
fn committed_crd_matches_the_rust_types() {
    let output = kube_idp().arg("crd").output().expect("kube-idp runs");
    assert!(output.status.success());
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/users.iam.kubesphere.io.yaml"
    ))
    .expect("crds/ is committed");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        committed,
        "run `make crds` and commit the result"
    );
}

#[test]
fn hash_password_prints_a_bcrypt_hash_that_verifies() {
    let mut child = kube_idp()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("kube-idp runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"P@88w0rd\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let hash = String::from_utf8(output.stdout).unwrap();
    assert!(hash.starts_with("$2b$10$"), "{hash}");
    assert!(bcrypt::verify("P@88w0rd", hash.trim()).unwrap());
}
