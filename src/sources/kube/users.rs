//! Turns the `User` store into the account set. Users are watched untyped and read one at a
//! time, so a User that does not fit the type is skipped and reported rather than failing
//! the whole list; each version of a User is read once.

use std::collections::HashMap;
use std::sync::Arc;

use kube::api::{ApiResource, DynamicObject};
use kube::{Api, Resource};

use super::events::{Rejection, Reporter};
use super::lockout::LockedUsers;
use super::passwords::PasswordHasher;
use super::version_key;
use crate::model::{account_from_user, User, UserError};
use crate::registry::{Registry, UserSet};

/// The Event reason for a User that is not a usable account.
const INVALID_USER: &str = "InvalidUser";

/// `users.iam.kubesphere.io/v1beta1`, for the untyped watch.
pub(super) fn resource() -> ApiResource {
    ApiResource::erase::<User>(&())
}

/// A User read from the store, or why it could not be.
type Parsed = Result<Arc<User>, &'static str>;

/// Rebuilds the account set from the store, asking for clear-text passwords to be hashed.
pub(super) struct UserBuilder {
    registry: Arc<Registry>,
    reporter: Reporter,
    hasher: PasswordHasher,
    resource: ApiResource,
    parsed: HashMap<(String, String), Parsed>,
    locked: LockedUsers,
}

impl UserBuilder {
    pub(super) fn new(registry: Arc<Registry>, reporter: Reporter, api: Api<User>) -> Self {
        Self {
            registry,
            reporter,
            hasher: PasswordHasher::new(api),
            resource: resource(),
            parsed: HashMap::new(),
            locked: LockedUsers::default(),
        }
    }

    /// Keeps `locked` up to date with the Users in state `AuthLimitExceeded`.
    pub(super) fn recording_locks(mut self, locked: LockedUsers) -> Self {
        self.locked = locked;
        self
    }

    pub(super) fn rebuild(&mut self, objects: &[Arc<DynamicObject>]) {
        let mut parsed = HashMap::with_capacity(objects.len());
        let mut accounts = Vec::with_capacity(objects.len());
        let mut rejections = Vec::new();
        let mut clear_text = Vec::new();
        for object in objects {
            let version = version_key(object.as_ref());
            let user = self
                .parsed
                .remove(&version)
                .unwrap_or_else(|| parse(object));
            let reject = |reason: String| {
                let reference = object.object_ref(&self.resource);
                Rejection::new(reference, INVALID_USER, reason)
            };
            match user.as_ref().map(|u| account_from_user(u)) {
                Ok(Ok(account)) => accounts.push(account),
                Ok(Err(UserError::ClearTextPassword)) => clear_text.extend(user.clone().ok()),
                Ok(Err(e)) => rejections.push(reject(e.to_string())),
                Err(reason) => rejections.push(reject(reason.to_string())),
            }
            parsed.insert(version, user);
        }
        self.parsed = parsed;
        let users = self.parsed.values().filter_map(|u| u.as_deref().ok());
        self.locked.replace(users);
        let set = UserSet::build(accounts);
        tracing::info!(
            users = set.len(),
            rejected = rejections.len(),
            awaiting_hash = clear_text.len(),
            "account set rebuilt"
        );
        self.registry.set_users(set);
        self.reporter.report(rejections);
        self.hasher.hash_all(clear_text);
    }
}

/// Reads one User. The decoder's message is not passed on: it can quote field values, and
/// one of them is a password.
fn parse(object: &DynamicObject) -> Parsed {
    let value = serde_json::to_value(object).map_err(|_| "not serialisable")?;
    let user = serde_json::from_value::<User>(value)
        .map_err(|_| "spec or status does not fit the User schema (a field of the wrong type)")?;
    Ok(Arc::new(user))
}
