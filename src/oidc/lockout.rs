//! Login throttling: attempts are counted per login name and per source address in a fixed
//! window, before the password is checked; past a limit, further attempts are refused without
//! checking it. A success clears the name's count and is not held against the address.
//!
//! Unknown login names are counted exactly like known ones, so lockouts reveal nothing about
//! which accounts exist.

use std::net::IpAddr;
use std::sync::Arc;

use super::log_safe::{login_marker, Untrusted};
use super::{OAuthError, Provider};
use crate::secret::storage_key;
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

impl Attempt<'_> {
    /// How the attempt names its subject in the log: the username of a known account, else
    /// a marker, since the typed text may be a password entered in the wrong field.
    pub fn logged_name(&self) -> String {
        if self.known {
            Untrusted(&self.subject).to_string()
        } else {
            login_marker(&self.subject)
        }
    }
}

/// An attempt's places in the counts, taken before its password is checked.
pub(crate) struct Reservation {
    /// Its number among the login name's attempts in the window.
    login: u64,
    /// Its number among the address's, when the address is known.
    address: Option<u64>,
}

/// Keys hold the SHA-256 of the id: a login name that names no account may be a password.
fn locked_key(kind: &str, id: &str) -> String {
    format!("locked:{kind}:{}", storage_key(id))
}

fn failures_key(kind: &str, id: &str) -> String {
    format!("failures:{kind}:{}", storage_key(id))
}

impl Provider {
    /// Counts an attempt against its login name and address before the password is checked;
    /// `None` (refused, nothing verified) when either is locked or this attempt passes a
    /// limit. Counting first is what makes the limit hold under concurrency: of any number of
    /// attempts at once, at most the limit get their password checked.
    pub(crate) async fn reserve_attempt(
        &self,
        attempt: &Attempt<'_>,
    ) -> Result<Option<Reservation>, OAuthError> {
        let address = attempt.source.map(ToString::to_string);
        if self.is_locked("login", &attempt.subject).await? {
            return Ok(None);
        }
        if let Some(address) = &address {
            if self.is_locked("addr", address).await? {
                return Ok(None);
            }
        }
        let policy = &self.lockout;
        let name_key = failures_key("login", &attempt.subject);
        let login = self.store.incr(&name_key, policy.window).await?;
        if login > policy.account_failures {
            self.lock_login(attempt).await?;
            return Ok(None);
        }
        let Some(address) = address else {
            return Ok(Some(Reservation {
                login,
                address: None,
            }));
        };
        let address_key = failures_key("addr", &address);
        let count = self.store.incr(&address_key, policy.window).await?;
        if count > policy.address_failures {
            // Not checked, so not held against the name.
            self.store.decr(&name_key).await?;
            self.lock_address(&address).await?;
            return Ok(None);
        }
        Ok(Some(Reservation {
            login,
            address: Some(count),
        }))
    }

    /// A failed attempt keeps its places; the one that reaches a limit locks the name or
    /// the address for the lock period.
    pub(crate) async fn record_failure(
        &self,
        attempt: &Attempt<'_>,
        reservation: &Reservation,
    ) -> Result<(), OAuthError> {
        let policy = &self.lockout;
        if reservation.login >= policy.account_failures {
            self.lock_login(attempt).await?;
        }
        if let (Some(count), Some(ip)) = (reservation.address, attempt.source) {
            if count >= policy.address_failures {
                self.lock_address(&ip.to_string()).await?;
            }
        }
        Ok(())
    }

    /// A successful login clears the name's count and gives the address its place back:
    /// only failures count against an address (many users may share one, behind a NAT).
    pub(crate) async fn record_success(&self, attempt: &Attempt<'_>) -> Result<(), OAuthError> {
        let name_key = failures_key("login", &attempt.subject);
        self.store.delete(&name_key).await?;
        if let Some(ip) = attempt.source {
            self.store
                .decr(&failures_key("addr", &ip.to_string()))
                .await?;
        }
        Ok(())
    }

    /// Locks a login name, telling the listener about a known account once per lock.
    async fn lock_login(&self, attempt: &Attempt<'_>) -> Result<(), OAuthError> {
        if !self.lock("login", &attempt.subject).await? {
            return Ok(());
        }
        let name = attempt.logged_name();
        tracing::warn!(user = %name, known = attempt.known, "login name locked after repeated failures");
        if let (true, Some(listener)) = (attempt.known, &self.lockout_listener) {
            let until = self.clock.now() + self.lockout.lock as i64;
            listener.account_locked(&attempt.subject, until);
        }
        Ok(())
    }

    async fn lock_address(&self, address: &str) -> Result<(), OAuthError> {
        if self.lock("addr", address).await? {
            tracing::warn!(source = %address, "source address blocked after repeated login failures");
        }
        Ok(())
    }

    /// Locks `id` of this kind for the lock period; true when it was not locked before.
    async fn lock(&self, kind: &str, id: &str) -> Result<bool, OAuthError> {
        let key = locked_key(kind, id);
        Ok(self.store.incr(&key, self.lockout.lock).await? == 1)
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
