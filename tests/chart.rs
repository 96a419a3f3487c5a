//! The Helm chart, checked with real Helm code and the Kubernetes schemas: lint, renders for
//! the default, seed, HA and TLS values, strict validation of every object, the flags and
//! RBAC they carry, and deploy/ matching the render. The checks are in tests/chart_check.py.

mod support;

#[test]
fn chart_lints_renders_and_validates() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chart_check.py");
    let output = support::python::python()
        .arg(script)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "chart checks failed:\n{stdout}\n{stderr}"
    );
    let summary = stdout.lines().last().unwrap_or_default();
    let (passed, failed) = summary
        .strip_prefix("chart: ")
        .and_then(|rest| rest.split_once(" passed, "))
        .expect("the checks close with `chart: N passed, M failed`");
    assert_eq!(failed, "0 failed", "{stdout}");
    let passed: usize = passed.parse().expect("a count of passed checks");
    assert!(passed >= 30, "only {passed} checks ran:\n{stdout}");
}
