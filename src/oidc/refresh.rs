//! Refresh tokens (RFC 6749 §6, RFC 9700 §4.14): a family per code, rotated on every use.
//! Presenting a replaced token revokes the family, except within a short grace window in
//! which a confidential client's concurrent refreshes of one token all succeed.
//!
//! A family also remembers the access tokens issued in it, each added in the same atomic
//! write that issues it, so that revoking the family (RFC 7009 §2.1, reuse detection, a
//! replayed code) revokes every one of them. Revocation and introspection find a family by
//! any of its secrets, current or replaced (RFC 9700 §4.14.2).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ErrorCode, OAuthError};
use super::session::TOKEN_BYTES;
use super::{scope, Provider};
use crate::model::Client;
use crate::secret::{random_token, storage_key};
use crate::time::Timestamp;

/// Replaced secrets remembered per family, for reuse detection.
const MAX_REPLACED: usize = 32;
/// Seconds after a rotation in which the replaced token still refreshes for a confidential
/// client (concurrent refreshes).
const GRACE_SECONDS: i64 = 10;
/// Attempts at an atomic update before giving up under contention.
pub(crate) const SWAP_ATTEMPTS: usize = 5;
/// Attempts at rotating a family before giving up under contention. Of concurrent
/// refreshes of one token each attempt lets one through, so the losers pause at random for
/// a while that doubles with each attempt, which spreads them apart.
const ROTATE_ATTEMPTS: u32 = 8;
/// The longest first pause after a lost rotation, in milliseconds; it doubles per attempt.
const FIRST_PAUSE_MS: u64 = 2;
/// Unexpired access tokens remembered per family; beyond it the oldest are forgotten (a
/// client refreshing more often than this many times per access-token lifetime).
const MAX_ACCESS_TOKENS: usize = 64;

/// An access token, by `jti`, and when it expires: what revoking it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IssuedAccess {
    pub jti: String,
    pub expires_at: Timestamp,
}

/// A line of refresh tokens descending from one grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RefreshFamily {
    pub client_id: String,
    pub username: String,
    pub scopes: Vec<String>,
    pub auth_time: Timestamp,
    pub offline: bool,
    /// Storage keys of the secrets that refresh now (more than one only within a grace
    /// window).
    pub current: Vec<String>,
    /// Storage keys of the secrets that were replaced, newest last.
    pub replaced: Vec<String>,
    /// When the last rotation happened.
    pub rotated_at: Timestamp,
    /// When the family ends unless used.
    pub expires_at: Timestamp,
    /// The access tokens issued in the family that have not expired, oldest first.
    #[serde(default)]
    pub access_tokens: Vec<IssuedAccess>,
}

impl RefreshFamily {
    /// Remembers an access token issued in the family, forgetting expired ones.
    fn add_access_token(&mut self, access: &IssuedAccess, now: Timestamp) {
        self.access_tokens.retain(|a| a.expires_at > now);
        self.access_tokens.push(access.clone());
        let excess = self.access_tokens.len().saturating_sub(MAX_ACCESS_TOKENS);
        self.access_tokens.drain(..excess);
    }
}

pub(crate) fn family_key(id: &str) -> String {
    format!("refresh:{id}")
}

/// A new family's id, decided before anything is stored so that a replayed code can name it.
pub(crate) fn new_family_id() -> String {
    random_token(16)
}

/// The family that issued a presented refresh token.
pub(crate) struct Issuer {
    /// The family's id.
    pub id: String,
    /// The family.
    pub family: RefreshFamily,
    /// True when the token refreshes now: it is current, or it was replaced by the latest
    /// rotation within the grace window of a confidential client.
    pub refreshes: bool,
}

/// What a refresh token's holder gets back.
pub(crate) struct Refreshed {
    pub family: RefreshFamily,
    pub token: String,
}

impl Provider {
    /// Starts family `id` for a new grant, with its first access token; returns the first
    /// refresh token.
    pub(crate) async fn new_family(
        &self,
        id: &str,
        client: &Client,
        username: &str,
        scopes: &[String],
        auth_time: Timestamp,
        access: &IssuedAccess,
    ) -> Result<String, OAuthError> {
        let now = self.clock.now();
        let offline = scope::has(scopes, scope::OFFLINE_ACCESS);
        let secret = random_token(TOKEN_BYTES);
        let family = RefreshFamily {
            client_id: client.id.clone(),
            username: username.to_string(),
            scopes: scopes.to_vec(),
            auth_time,
            offline,
            current: vec![storage_key(&secret)],
            replaced: Vec::new(),
            rotated_at: now,
            expires_at: self.refresh_expiry(offline, auth_time, now),
            access_tokens: vec![access.clone()],
        };
        self.store
            .put(&family_key(id), &family, ttl(&family, now))
            .await?;
        Ok(format!("{id}.{secret}"))
    }

    /// Rotates the family of a presented refresh token, recording `access` as issued in it;
    /// a replaced token outside the grace window revokes the family. When another refresh
    /// changes the family first, it reads the family again and decides again.
    pub(crate) async fn rotate(
        &self,
        client: &Client,
        token: &str,
        access: &IssuedAccess,
    ) -> Result<Refreshed, OAuthError> {
        let (family_id, secret) = token
            .split_once('.')
            .ok_or_else(OAuthError::invalid_grant)?;
        let presented = storage_key(secret);
        for attempt in 0..ROTATE_ATTEMPTS {
            if attempt > 0 {
                pause_before(attempt).await;
            }
            let rotated = self.try_rotate(client, family_id, &presented, access);
            if let Some(refreshed) = rotated.await? {
                return Ok(refreshed);
            }
        }
        tracing::warn!(client_id = %client.id, attempts = ROTATE_ATTEMPTS, "refresh refused: the family kept changing");
        Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "refresh contention; retry",
        ))
    }

    /// One attempt at a rotation: reads the family, decides, and swaps in the next
    /// generation. `None` when another writer changed the family in between.
    async fn try_rotate(
        &self,
        client: &Client,
        family_id: &str,
        presented: &str,
        access: &IssuedAccess,
    ) -> Result<Option<Refreshed>, OAuthError> {
        let key = family_key(family_id);
        let Some(family) = self.store.get::<RefreshFamily>(&key).await? else {
            return Err(OAuthError::invalid_grant());
        };
        let now = self.clock.now();
        if family.client_id != client.id || family.expires_at <= now {
            tracing::warn!(client_id = %client.id, "refresh refused: another client's or expired");
            return Err(OAuthError::invalid_grant());
        }
        let next = self.next_generation(client, &family, presented, now, family_id);
        let (mut next, new_secret) = next.await?;
        next.add_access_token(access, now);
        if !self
            .store
            .swap(&key, &family, &next, ttl(&next, now))
            .await?
        {
            return Ok(None);
        }
        Ok(Some(Refreshed {
            family: next,
            token: format!("{family_id}.{new_secret}"),
        }))
    }

    async fn next_generation(
        &self,
        client: &Client,
        family: &RefreshFamily,
        presented: &str,
        now: Timestamp,
        family_id: &str,
    ) -> Result<(RefreshFamily, String), OAuthError> {
        let new_secret = random_token(TOKEN_BYTES);
        let mut next = family.clone();
        next.expires_at = self.refresh_expiry(next.offline, next.auth_time, now);
        if family.current.iter().any(|c| c == presented) {
            next.replaced.append(&mut next.current);
            next.current = vec![storage_key(&new_secret)];
            next.rotated_at = now;
        } else if self.in_grace(client, family, presented, now) {
            next.current.push(storage_key(&new_secret));
        } else {
            if family.replaced.iter().any(|r| r == presented) {
                tracing::warn!(client_id = %client.id, user = %family.username, "replaced refresh token reused; family revoked");
                self.revoke_family(family_id).await?;
            }
            return Err(OAuthError::invalid_grant());
        }
        let excess = next.replaced.len().saturating_sub(MAX_REPLACED);
        next.replaced.drain(..excess);
        Ok((next, new_secret))
    }

    /// The token replaced by the latest rotation, presented again by a confidential client
    /// within the grace window.
    fn in_grace(
        &self,
        client: &Client,
        family: &RefreshFamily,
        presented: &str,
        now: Timestamp,
    ) -> bool {
        client.is_confidential()
            && now - family.rotated_at <= GRACE_SECONDS
            && family.replaced.last().is_some_and(|r| r == presented)
    }

    /// Revokes a family and every unexpired access token issued in it. The family is taken
    /// in one atomic step, so a rotation racing the revocation either lands first, and its
    /// access token is in what is taken, or finds the family gone and issues nothing.
    pub(crate) async fn revoke_family(&self, family_id: &str) -> Result<(), OAuthError> {
        let key = family_key(family_id);
        if let Some(family) = self.store.get::<RefreshFamily>(&key).await? {
            self.revoke_access_tokens(&family).await?;
        }
        let Some(family) = self.store.take::<RefreshFamily>(&key).await? else {
            return Ok(());
        };
        self.revoke_access_tokens(&family).await
    }

    /// Revokes a family's unexpired access tokens. [`Provider::revoke_family`] does it before
    /// it removes the family (so a store failure in between leaves the family, and a retry,
    /// standing) and again after (for a token issued in between).
    async fn revoke_access_tokens(&self, family: &RefreshFamily) -> Result<(), OAuthError> {
        let now = self.clock.now();
        for access in family.access_tokens.iter().filter(|a| a.expires_at > now) {
            self.revoke_access_token(&access.jti, access.expires_at)
                .await?;
        }
        Ok(())
    }

    /// The unexpired family a refresh token belongs to, whether or not the token is current.
    pub(crate) async fn family_of(&self, token: &str) -> Result<Option<RefreshFamily>, OAuthError> {
        let Some((family_id, _)) = token.split_once('.') else {
            return Ok(None);
        };
        let family = self
            .store
            .get::<RefreshFamily>(&family_key(family_id))
            .await?;
        let now = self.clock.now();
        Ok(family.filter(|f| f.expires_at > now))
    }

    /// The unexpired family of `client` that issued a refresh token, current or replaced,
    /// and whether the token endpoint would accept the token from `client` now. `None` when
    /// no such family issued it (or it has forgotten doing so).
    pub(crate) async fn issuing_family(
        &self,
        client: &Client,
        token: &str,
    ) -> Result<Option<Issuer>, OAuthError> {
        let Some((id, secret)) = token.split_once('.') else {
            return Ok(None);
        };
        let family = self.family_of(token).await?;
        let Some(family) = family.filter(|f| f.client_id == client.id) else {
            return Ok(None);
        };
        let presented = storage_key(secret);
        let now = self.clock.now();
        let refreshes =
            family.current.contains(&presented) || self.in_grace(client, &family, &presented, now);
        if !refreshes && !family.replaced.contains(&presented) {
            return Ok(None);
        }
        Ok(Some(Issuer {
            id: id.to_string(),
            family,
            refreshes,
        }))
    }

    /// Without `offline_access` a refresh token lasts as a browser session does: until it
    /// is idle for the session timeout, or the session's maximum age. With it, until it is
    /// idle for the offline timeout.
    fn refresh_expiry(&self, offline: bool, auth_time: Timestamp, now: Timestamp) -> Timestamp {
        let s = &self.settings;
        if offline {
            now + s.offline_idle_timeout as i64
        } else {
            (now + s.session_idle_timeout as i64).min(auth_time + s.session_max_age as i64)
        }
    }
}

/// A random pause before rotation attempt `attempt` (from 1): up to [`FIRST_PAUSE_MS`]
/// doubled per earlier attempt.
async fn pause_before(attempt: u32) {
    let bound = FIRST_PAUSE_MS << (attempt - 1).min(8);
    let mut random = [0u8; 8];
    let millis = match getrandom::fill(&mut random) {
        Ok(()) => u64::from_le_bytes(random) % bound + 1,
        Err(_) => bound,
    };
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

fn ttl(family: &RefreshFamily, now: Timestamp) -> u64 {
    (family.expires_at - now).max(1) as u64
}
