//! Lockouts recorded on Users, as KubeSphere records them: an account that the provider
//! locks after repeated failed sign-ins gets `status.state: AuthLimitExceeded`, a `reason`
//! and a `lastTransitionTime` (patched through the `status` subresource), and the
//! controller sets it back to `Active` once the lock period has passed since that time.
//!
//! Every patch names the version it was decided on, so a concurrent change (an
//! administrator disabling the user) is never overwritten. Nothing here knows about HTTP.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::model::{User, STATE_ACTIVE, STATE_AUTH_LIMIT_EXCEEDED};
use crate::oidc::LockoutListener;
use crate::time::{parse_rfc3339, rfc3339, SharedClock, Timestamp};

/// How often the controller looks for locks that have run out.
const UNLOCK_CHECK: Duration = Duration::from_secs(1);
/// How often a lock patch is decided again after the User changed in between.
const MAX_CONFLICTS: usize = 5;
/// Pauses between attempts at a lock patch that failed for a reason other than a conflict.
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(10),
];

/// A User in state `AuthLimitExceeded`, as last seen by the watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Lock {
    /// The `resourceVersion` it was seen at.
    version: String,
    /// `status.lastTransitionTime`; without one there is no period to end, and the user
    /// stays locked until an administrator changes the state (as in KubeSphere).
    since: Option<Timestamp>,
}

/// The locked Users by name: written by the User watch, read by the [`Unlocker`].
#[derive(Debug, Clone, Default)]
pub(super) struct LockedUsers(Arc<Mutex<HashMap<String, Lock>>>);

impl LockedUsers {
    /// Replaces the set with the locked ones among `users`.
    pub(super) fn replace<'a>(&self, users: impl IntoIterator<Item = &'a User>) {
        let locked = users.into_iter().filter_map(|user| {
            let status = user.status.as_ref()?;
            (status.state.as_deref() == Some(STATE_AUTH_LIMIT_EXCEEDED)).then(|| {
                let since = status.last_transition_time.as_deref();
                let lock = Lock {
                    version: user.resource_version().unwrap_or_default(),
                    since: since.and_then(parse_rfc3339),
                };
                (user.name_any(), lock)
            })
        });
        *self.lock() = locked.collect();
    }

    /// The locks whose period ended at or before `now`.
    fn expired(&self, now: Timestamp, period: u64) -> Vec<(String, Lock)> {
        let locks = self.lock();
        let expired = locks
            .iter()
            .filter(|(_, l)| l.since.is_some_and(|s| s + period as i64 <= now));
        expired.map(|(n, l)| (n.clone(), l.clone())).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lock>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Told by the provider when an account is locked; records `AuthLimitExceeded` on the User.
pub(super) struct UserLockRecorder {
    api: Api<User>,
    clock: SharedClock,
}

impl UserLockRecorder {
    pub(super) fn new(api: Api<User>, clock: SharedClock) -> Self {
        Self { api, clock }
    }
}

impl LockoutListener for UserLockRecorder {
    fn account_locked(&self, username: &str, until: Timestamp) {
        let (api, name, now) = (self.api.clone(), username.to_string(), self.clock.now());
        tokio::spawn(record_lock(api, name, now, until));
    }
}

/// Patches the User's status to `AuthLimitExceeded`, unless it is no longer `Active`.
async fn record_lock(api: Api<User>, name: String, now: Timestamp, until: Timestamp) {
    let reason = format!(
        "Too many failed sign-in attempts; locked until {}",
        rfc3339(until)
    );
    let status = json!({
        "state": STATE_AUTH_LIMIT_EXCEEDED,
        "reason": reason,
        "lastTransitionTime": rfc3339(now),
    });
    let mut delays = RETRY_DELAYS.iter();
    let mut conflicts = 0;
    loop {
        let error = match patch_if_active(&api, &name, &status).await {
            Ok(true) => {
                tracing::info!(user = %name, "user status set to AuthLimitExceeded");
                return;
            }
            Ok(false) => {
                tracing::info!(user = %name, "user is no longer Active; lock not recorded");
                return;
            }
            Err(kube::Error::Api(s)) if s.is_not_found() => return,
            // Changed between the read and the patch: read it again.
            Err(kube::Error::Api(s)) if s.is_conflict() && conflicts < MAX_CONFLICTS => {
                conflicts += 1;
                continue;
            }
            Err(error) => error,
        };
        let Some(delay) = delays.next() else {
            tracing::error!(user = %name, %error, "gave up recording AuthLimitExceeded; the lock still holds in kube-idp");
            return;
        };
        tracing::warn!(user = %name, %error, retry_in = ?delay, "could not record AuthLimitExceeded");
        tokio::time::sleep(*delay).await;
    }
}

/// Reads the User and, when it is `Active` (or new, without a state), patches `status`
/// with that version as a precondition. True when it patched.
async fn patch_if_active(
    api: &Api<User>,
    name: &str,
    status: &serde_json::Value,
) -> Result<bool, kube::Error> {
    let user = api.get(name).await?;
    let state = user.status.as_ref().and_then(|s| s.state.as_deref());
    if !matches!(state.filter(|s| !s.is_empty()), None | Some(STATE_ACTIVE)) {
        return Ok(false);
    }
    let patch = json!({
        "metadata": { "resourceVersion": user.resource_version() },
        "status": status,
    });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(true)
}

/// Sets locked Users back to `Active` once `period` seconds have passed since they were
/// locked, checking every second against the injected clock.
pub(super) struct Unlocker {
    pub(super) api: Api<User>,
    pub(super) clock: SharedClock,
    pub(super) period: u64,
    pub(super) locked: LockedUsers,
}

impl Unlocker {
    /// Runs until the task is dropped.
    pub(super) async fn run(self) {
        let mut tick = tokio::time::interval(UNLOCK_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Versions already handled: patched, or superseded by a newer version.
        let mut done: HashSet<(String, String)> = HashSet::new();
        loop {
            tick.tick().await;
            let now = self.clock.now();
            let expired = self.locked.expired(now, self.period);
            done.retain(|(name, version)| {
                expired
                    .iter()
                    .any(|(n, l)| n == name && l.version == *version)
            });
            for (name, lock) in expired {
                let key = (name, lock.version);
                if !done.contains(&key) && self.unlock(&key.0, &key.1, now).await {
                    done.insert(key);
                }
            }
        }
    }

    /// Patches one User back to `Active`; true when there is nothing more to do for this
    /// version (patched, changed meanwhile, or gone). A failure is retried at the next
    /// check.
    async fn unlock(&self, name: &str, version: &str, now: Timestamp) -> bool {
        let patch = json!({
            "metadata": { "resourceVersion": version },
            "status": { "state": STATE_ACTIVE, "reason": null, "lastTransitionTime": rfc3339(now) },
        });
        let params = PatchParams::default();
        match self
            .api
            .patch_status(name, &params, &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(user = %name, "lock period over; user status set back to Active");
                true
            }
            Err(kube::Error::Api(s)) if s.is_conflict() || s.is_not_found() => true,
            Err(error) => {
                tracing::warn!(user = %name, %error, "could not set the user back to Active; retrying");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(yaml: &str) -> User {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn locked(name: &str, since: Option<&str>) -> User {
        let time = since
            .map(|t| format!(", lastTransitionTime: '{t}'"))
            .unwrap_or_default();
        user(&format!(
            "apiVersion: iam.kubesphere.io/v1beta1\nkind: User\n\
             metadata: {{name: {name}, resourceVersion: '7'}}\nspec: {{}}\n\
             status: {{state: AuthLimitExceeded{time}}}\n"
        ))
    }

    #[test]
    fn only_locks_whose_period_has_passed_are_expired() {
        let active = user(
            "apiVersion: iam.kubesphere.io/v1beta1\nkind: User\nmetadata: {name: a}\nspec: {}\n\
             status: {state: Active, lastTransitionTime: '2024-01-01T00:00:00Z'}\n",
        );
        let old = locked("old", Some("2024-01-01T00:00:00Z"));
        let recent = locked("recent", Some("2024-01-01T00:09:00Z"));
        let timeless = locked("timeless", None);
        let set = LockedUsers::default();
        set.replace([&active, &old, &recent, &timeless]);
        let at = |s: &str| parse_rfc3339(s).unwrap();
        let names = |now| -> Vec<String> {
            let mut n: Vec<String> = set.expired(now, 600).into_iter().map(|e| e.0).collect();
            n.sort();
            n
        };
        assert_eq!(names(at("2024-01-01T00:09:59Z")), Vec::<String>::new());
        assert_eq!(names(at("2024-01-01T00:10:00Z")), ["old"]);
        assert_eq!(names(at("2024-01-01T00:19:00Z")), ["old", "recent"]);
        assert_eq!(
            set.expired(at("2024-01-01T00:19:00Z"), 600)[0].1.version,
            "7"
        );
    }
}
