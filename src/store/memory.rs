//! The in-process store, for a single replica. Expiry follows the injected clock.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Store, StoreError};
use crate::time::{SharedClock, Timestamp};

/// How many writes pass between sweeps of expired entries.
const SWEEP_EVERY: u32 = 1024;

#[derive(Default)]
struct Inner {
    entries: HashMap<String, (Vec<u8>, Timestamp)>,
    writes: u32,
}

/// A store in this process's memory.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    clock: SharedClock,
}

impl MemoryStore {
    /// An empty store whose entries expire by `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            inner: Mutex::default(),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn live(&self, inner: &mut Inner, key: &str) -> Option<Vec<u8>> {
        let now = self.clock.now();
        match inner.entries.get(key) {
            Some((value, expires)) if *expires > now => Some(value.clone()),
            Some(_) => {
                inner.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn write(&self, inner: &mut Inner, key: &str, value: Vec<u8>, ttl: u64) {
        let now = self.clock.now();
        inner.writes = inner.writes.wrapping_add(1);
        if inner.writes % SWEEP_EVERY == 0 {
            inner.entries.retain(|_, (_, expires)| *expires > now);
        }
        let expires = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
        inner.entries.insert(key.to_string(), (value, expires));
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: u64) -> Result<(), StoreError> {
        let mut inner = self.lock();
        self.write(&mut inner, key, value, ttl);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut inner = self.lock();
        Ok(self.live(&mut inner, key))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut inner = self.lock();
        let value = self.live(&mut inner, key);
        inner.entries.remove(key);
        Ok(value)
    }

    async fn swap(
        &self,
        key: &str,
        expected: &[u8],
        value: Vec<u8>,
        ttl: u64,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if self.live(&mut inner, key).as_deref() != Some(expected) {
            return Ok(false);
        }
        self.write(&mut inner, key, value, ttl);
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.lock().entries.remove(key);
        Ok(())
    }

    async fn incr(&self, key: &str, ttl: u64) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let now = self.clock.now();
        let current = self.live(&mut inner, key);
        let count = current
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok());
        let count: u64 = count.unwrap_or(0) + 1;
        match inner.entries.get_mut(key) {
            Some((value, _)) if current.is_some() => *value = count.to_string().into_bytes(),
            _ => {
                let expires = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
                inner
                    .entries
                    .insert(key.to_string(), (count.to_string().into_bytes(), expires));
            }
        }
        Ok(count)
    }

    async fn decr(&self, key: &str) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let current = self.live(&mut inner, key);
        let count: Option<u64> = current
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok());
        let Some(count) = count else {
            return Ok(0);
        };
        let count = count.saturating_sub(1);
        if let Some((value, _)) = inner.entries.get_mut(key) {
            *value = count.to_string().into_bytes();
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::time::ManualClock;

    fn store() -> (MemoryStore, ManualClock) {
        let clock = ManualClock::at(1_000);
        (MemoryStore::new(Arc::new(clock.clone())), clock)
    }

    #[tokio::test]
    async fn value_expires_after_its_ttl() {
        let (s, clock) = store();
        s.put("k", b"v".to_vec(), 60).await.unwrap();
        clock.advance(59);
        assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        clock.advance(1);
        assert_eq!(s.get("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn take_returns_the_value_once() {
        let (s, _) = store();
        s.put("k", b"v".to_vec(), 60).await.unwrap();
        assert!(s.take("k").await.unwrap().is_some());
        assert!(s.take("k").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn counter_window_is_fixed_from_the_first_increment() {
        let (s, clock) = store();
        assert_eq!(s.incr("c", 60).await.unwrap(), 1);
        clock.advance(30);
        assert_eq!(s.incr("c", 60).await.unwrap(), 2);
        clock.advance(30);
        assert_eq!(
            s.incr("c", 60).await.unwrap(),
            1,
            "the window started at the first"
        );
    }

    #[tokio::test]
    async fn decrement_keeps_the_window_and_never_creates_or_goes_below_zero() {
        let (s, clock) = store();
        assert_eq!(s.decr("c").await.unwrap(), 0);
        assert_eq!(s.get("c").await.unwrap(), None, "not created");
        assert_eq!(s.incr("c", 60).await.unwrap(), 1);
        assert_eq!(s.incr("c", 60).await.unwrap(), 2);
        clock.advance(30);
        assert_eq!(s.decr("c").await.unwrap(), 1);
        assert_eq!(s.decr("c").await.unwrap(), 0);
        assert_eq!(s.decr("c").await.unwrap(), 0);
        assert_eq!(s.incr("c", 60).await.unwrap(), 1);
        clock.advance(30);
        assert_eq!(
            s.incr("c", 60).await.unwrap(),
            1,
            "the window still ends 60 s after the first increment"
        );
    }

    #[tokio::test]
    async fn swap_fails_when_the_value_changed() {
        let (s, _) = store();
        s.put("k", b"a".to_vec(), 60).await.unwrap();
        assert!(s.swap("k", b"a", b"b".to_vec(), 60).await.unwrap());
        assert!(!s.swap("k", b"a", b"c".to_vec(), 60).await.unwrap());
        assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"b"[..]));
    }
}
