//! Sources turn the outside world into validated sets of clients and accounts for the
//! [`Registry`](crate::registry::Registry).
//!
//! `directory` reads a folder of manifests; `kube` watches the Kubernetes API. Sources know nothing of HTTP; the server does
//! not know which source is in use.

pub mod directory;
pub mod kube;

use crate::registry::Rejected;

/// Logs objects that were offered but not taken, by name and reason (never their content).
pub fn log_rejected(kind: &str, rejected: &[Rejected]) {
    for r in rejected {
        tracing::warn!(
            kind,
            namespace = %r.origin.namespace,
            file = r.origin.file.as_deref().unwrap_or(""),
            name = %r.origin.name,
            reason = %r.reason,
            "object skipped"
        );
    }
}
