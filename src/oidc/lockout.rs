//! Login throttling: failures are counted per login name and per source address in a fixed
//! window; past a limit, further attempts are refused without checking the password.
//!
//! Unknown login names are counted exactly like known ones, so lockouts reveal nothing about
//! which accounts exist.

use std::net::IpAddr;
use std::sync::Arc;

use super::{OAuthError, Provider};
use crate::time::Timestamp;

/// Limits on failed logins.
#[derive(Debug, Clone)]
pub struct LockoutPolicy {
    /// Failures per login name within the window that lock it.
    pub account_failures: u64,
    /// Failures per source address within the window that block it.
    pub address_failures: u64,
    /// The counting window, in seconds.
    pub window: u64,
    /// How long a lock lasts, in seconds.
    pub lock: u64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            account_failures: 10,
            address_failures: 30,
            window: 600,
            lock: 600,
        }
    }
}

/// Told when an account is locked, so a cluster can record `AuthLimitExceeded`.
pub trait LockoutListener: Send + Sync + 'static {
    /// `username` is locked until `until`.
    fn account_locked(&self, username: &str, until: Timestamp);
}

/// Who is trying to log in, for counting.
pub(crate) struct Attempt<'a> {
    /// The account's username when the login name is known, else the lower-cased name.
    pub subject: String,
    /// True when `subject` is an existing account.
    pub known: bool,
    /// The client's address, when known.
    pub source: Option<&'a IpAddr>,
}

fn locked_key(kind: &str, id: &str) -> String {
    format!("locked:{kind}:{id}")
}

fn failures_key(kind: &str, id: &str) -> String {
    format!("failures:{kind}:{id}")
}

impl Provider {
    /// True when neither the login name nor the address is locked.
    pub(crate) async fn attempt_allowed(&self, attempt: &Attempt<'_>) -> Result<bool, OAuthError> {
        if self.is_locked("login", &attempt.subject).await? {
            return Ok(false);
        }
        match attempt.source {
            Some(ip) => Ok(!self.is_locked("addr", &ip.to_string()).await?),
            None => Ok(true),
        }
    }

    /// Counts a failure; locks the name or address when it reaches its limit.
    pub(crate) async fn record_failure(&self, attempt: &Attempt<'_>) -> Result<(), OAuthError> {
        let policy = &self.lockout;
        let name = &attempt.subject;
        if self
            .count_failure("login", name, policy.account_failures)
            .await?
        {
            tracing::warn!(user = %name, known = attempt.known, "login name locked after repeated failures");
            if let (true, Some(listener)) = (attempt.known, &self.lockout_listener) {
                listener.account_locked(name, self.clock.now() + policy.lock as i64);
            }
        }
        if let Some(ip) = attempt.source {
            if self
                .count_failure("addr", &ip.to_string(), policy.address_failures)
                .await?
            {
                tracing::warn!(source = %ip, "source address blocked after repeated login failures");
            }
        }
        Ok(())
    }

    /// Clears the failure count of a name after a successful login.
    pub(crate) async fn record_success(&self, attempt: &Attempt<'_>) -> Result<(), OAuthError> {
        Ok(self
            .store
            .delete(&failures_key("login", &attempt.subject))
            .await?)
    }

    /// True while `id` of this kind is locked.
    pub(crate) async fn is_locked(&self, kind: &str, id: &str) -> Result<bool, OAuthError> {
        Ok(self.store.count(&locked_key(kind, id)).await? > 0)
    }

    /// Counts a failure of `id`; at `limit` failures in the window it is locked for the lock
    /// period. True when this failure locked it.
    pub(crate) async fn count_failure(
        &self,
        kind: &str,
        id: &str,
        limit: u64,
    ) -> Result<bool, OAuthError> {
        let policy = &self.lockout;
        let failures = self
            .store
            .incr(&failures_key(kind, id), policy.window)
            .await?;
        if failures < limit {
            return Ok(false);
        }
        self.store.incr(&locked_key(kind, id), policy.lock).await?;
        self.store.delete(&failures_key(kind, id)).await?;
        Ok(true)
    }

    /// Registers who hears about locked accounts.
    pub fn with_lockout_listener(mut self, listener: Arc<dyn LockoutListener>) -> Self {
        self.lockout_listener = Some(listener);
        self
    }
}
