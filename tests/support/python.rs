//! The Python that drives relying parties and chart checks: `.venv` made by `make deps`, or
//! the one named by `KUBE_IDP_TEST_PYTHON`.

use std::path::PathBuf;
use std::process::Command;

/// A command running the test suite's Python.
pub fn python() -> Command {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let program = std::env::var_os("KUBE_IDP_TEST_PYTHON")
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .unwrap_or(venv);
    assert!(
        program.exists(),
        "{} is missing: run `make deps` (or `make test`)",
        program.display()
    );
    Command::new(program)
}
