//! Replaces a clear-text `spec.password` in a `User` with its bcrypt hash, through a JSON
//! merge patch that names the version read, so a concurrent edit is never overwritten.
//!
//! Hashing runs on the blocking pool, off the async workers. Passwords are never logged.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};

use super::version_key;
use crate::model::{User, PASSWORD_COST};
use crate::secret::SecretString;

/// Pauses between attempts at a patch that failed for a reason other than a newer version.
const RETRY_DELAYS: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(4),
    Duration::from_secs(15),
    Duration::from_secs(60),
];

/// Starts one hash-and-patch per version of a User with a clear-text password.
pub(super) struct PasswordHasher {
    api: Api<User>,
    started: HashSet<(String, String)>,
}

impl PasswordHasher {
    pub(super) fn new(api: Api<User>) -> Self {
        Self {
            api,
            started: HashSet::new(),
        }
    }

    /// Hashes and patches each of `users` not already started for its current version.
    pub(super) fn hash_all(&mut self, users: Vec<Arc<User>>) {
        let mut current = HashSet::with_capacity(users.len());
        for user in users {
            let version = version_key(user.as_ref());
            if !self.started.contains(&version) {
                tokio::spawn(hash_and_patch(self.api.clone(), user));
            }
            current.insert(version);
        }
        self.started = current;
    }
}

async fn hash_and_patch(api: Api<User>, user: Arc<User>) {
    let name = user.name_any();
    let Some(password) = user.spec.password.clone() else {
        return;
    };
    let Some(hash) = hash(password).await else {
        tracing::error!(user = %name, "could not hash the clear-text password");
        return;
    };
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": user.resource_version() },
        "spec": { "password": hash },
    });
    for delay in RETRY_DELAYS {
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(user = %name, "clear-text password replaced by its bcrypt hash");
                return;
            }
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_not_found() => {
                tracing::debug!(user = %name, code = status.code,
                    "user changed before its password was hashed; the new version follows");
                return;
            }
            Err(error) => {
                tracing::warn!(user = %name, %error, retry_in = ?delay,
                    "could not patch the password hash");
                tokio::time::sleep(delay).await;
            }
        }
    }
    tracing::error!(user = %name, "gave up patching the password hash; the user cannot sign in");
}

async fn hash(password: SecretString) -> Option<String> {
    let job = move || bcrypt::hash(password.expose(), PASSWORD_COST).ok();
    tokio::task::spawn_blocking(job).await.ok().flatten()
}
