//! The CRDs committed under `crds/` are what `kube-idp crd` prints from the Rust types.

use std::process::Command;

#[test]
fn committed_user_crd_matches_the_types() {
    let output = Command::new(env!("CARGO_BIN_EXE_kube-idp"))
        .arg("crd")
        .output()
        .expect("run kube-idp crd");
    assert!(output.status.success(), "kube-idp crd failed");
    let printed = String::from_utf8(output.stdout).expect("UTF-8");
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/users.iam.kubesphere.io.yaml"
    );
    let committed = std::fs::read_to_string(path).expect("read the committed CRD");
    assert!(
        printed == committed,
        "crds/users.iam.kubesphere.io.yaml is stale: regenerate it with \
         `cargo run -- crd > crds/users.iam.kubesphere.io.yaml`"
    );
}
