//! State that must outlive a request: login sessions, pending logins, authorization codes,
//! refresh-token families.
//!
//! Backends implement a small key-value contract with expiry and atomic single-use reads
//! ([`Store`]); [`StateStore`] adds JSON encoding on top. Keys of bearer values are their
//! SHA-256 ([`crate::secret::storage_key`]), never the values themselves.

mod memory;
mod redis;

use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub(crate) use self::redis::with_reconnect;
pub use self::redis::RedisStore;
pub use memory::MemoryStore;

/// Errors from a state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or failed.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// A stored value does not decode (a version skew or corruption).
    #[error("stored value under {key} does not decode: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// The decoder's message.
        reason: String,
    },
}

/// The key-value contract every backend implements. Values expire after `ttl` seconds.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores `value` under `key`, replacing any value.
    async fn put(&self, key: &str, value: Vec<u8>, ttl: u64) -> Result<(), StoreError>;
    /// Reads the value under `key`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Reads and deletes the value under `key` in one atomic step: of many concurrent
    /// callers, exactly one gets the value.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Replaces the value under `key` only if it is still `expected`; true when it was.
    async fn swap(
        &self,
        key: &str,
        expected: &[u8],
        value: Vec<u8>,
        ttl: u64,
    ) -> Result<bool, StoreError>;
    /// Deletes the value under `key`.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Adds one to the counter under `key` and returns the new count. The first increment
    /// sets the expiry; later ones keep it (a fixed window).
    async fn incr(&self, key: &str, ttl: u64) -> Result<u64, StoreError>;
    /// Takes one from the counter under `key`, never below zero, keeping its expiry; an
    /// absent or expired counter stays absent. Returns the new count (0 when absent).
    async fn decr(&self, key: &str) -> Result<u64, StoreError>;
}

/// A [`Store`] with typed, JSON-encoded values.
#[derive(Clone)]
pub struct StateStore(Arc<dyn Store>);

impl StateStore {
    /// Wraps a backend.
    pub fn new(backend: Arc<dyn Store>) -> Self {
        Self(backend)
    }

    /// Stores a value for `ttl` seconds.
    pub async fn put<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        ttl: u64,
    ) -> Result<(), StoreError> {
        self.0.put(key, encode(value), ttl.max(1)).await
    }

    /// Reads a value.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.0.get(key).await?.map(|b| decode(key, &b)).transpose()
    }

    /// Reads and deletes a value atomically.
    pub async fn take<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.0.take(key).await?.map(|b| decode(key, &b)).transpose()
    }

    /// Replaces `expected` with `value` atomically; false when another writer came first.
    pub async fn swap<T: Serialize>(
        &self,
        key: &str,
        expected: &T,
        value: &T,
        ttl: u64,
    ) -> Result<bool, StoreError> {
        self.0
            .swap(key, &encode(expected), encode(value), ttl.max(1))
            .await
    }

    /// Deletes a value.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.delete(key).await
    }

    /// Counts an event in a window of `ttl` seconds; returns the count so far.
    pub async fn incr(&self, key: &str, ttl: u64) -> Result<u64, StoreError> {
        self.0.incr(key, ttl.max(1)).await
    }

    /// Gives back one count of a window (an event that turned out not to count); the window
    /// keeps its end.
    pub async fn decr(&self, key: &str) -> Result<u64, StoreError> {
        self.0.decr(key).await
    }

    /// The count under `key`, 0 when absent.
    pub async fn count(&self, key: &str) -> Result<u64, StoreError> {
        let bytes = self.0.get(key).await?;
        Ok(bytes
            .and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok())
            .unwrap_or(0))
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("state values serialize")
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}
