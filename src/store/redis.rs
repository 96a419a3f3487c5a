//! The Redis store, shared by every replica behind one Service.
//!
//! Single-use reads are `GETDEL` and compare-and-swap is a Lua script, so each is one atomic
//! step on the server whatever the number of replicas. Expiry is Redis's own (`EX`), on the
//! server's clock. The connection manager reconnects by itself: while Redis is away every
//! call fails fast with [`StoreError::Unavailable`] (a 503 to the client). A command that
//! meets a connection Redis dropped (it restarted) is sent once more on a new one, so the
//! first call after Redis returns succeeds, with no restart.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, Script};

use super::{Store, StoreError};

/// The prefix of every key kube-idp writes, so a Redis shared with other software is safe.
const PREFIX: &str = "kube-idp:";

/// How long one command may take before the store counts as unavailable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Replaces the value only when it is still the expected one.
const SWAP: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
";

/// Counts in a fixed window: the first increment sets the expiry.
const INCR: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// Takes one back, never below zero and never creating the key; `DECR` keeps the expiry.
const DECR: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]))
if not n then return 0 end
if n <= 0 then return 0 end
return redis.call('DECR', KEYS[1])
";

/// A store in a Redis server.
pub struct RedisStore {
    connection: ConnectionManager,
    swap: Script,
    incr: Script,
    decr: Script,
}

impl RedisStore {
    /// A store on `url` (`redis://[user:password@]host:port[/db]`, or `rediss://` for TLS).
    /// It connects on first use, so a Redis that starts after kube-idp (say, beside it in
    /// one `helm install`) is found when it is up. Fails only when the URL is invalid.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1);
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(Self {
            connection,
            swap: Script::new(SWAP),
            incr: Script::new(INCR),
            decr: Script::new(DECR),
        })
    }

    /// A handle on the shared connection, for the key storage.
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }
}

fn key(key: &str) -> String {
    format!("{PREFIX}{key}")
}

/// Runs `command` on `connection`, once more when the first try found the connection
/// dropped. A retried command may have run twice only where running twice is harmless or
/// fails safe: a second `GETDEL` finds nothing, a second `INCR` counts one more failure.
pub(crate) async fn with_reconnect<T, F, Fut>(
    connection: &ConnectionManager,
    command: F,
) -> redis::RedisResult<T>
where
    F: Fn(ConnectionManager) -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
{
    match command(connection.clone()).await {
        Err(e) if e.is_connection_dropped() || e.is_io_error() => command(connection.clone()).await,
        other => other,
    }
}

/// Redis's error, without the URL (which may carry a password).
fn unavailable(e: redis::RedisError) -> StoreError {
    let kind = format!("{:?}", e.kind());
    StoreError::Unavailable(match e.detail() {
        Some(detail) => format!("redis {kind}: {detail}"),
        None => format!("redis {kind}"),
    })
}

#[async_trait]
impl Store for RedisStore {
    async fn put(&self, k: &str, value: Vec<u8>, ttl: u64) -> Result<(), StoreError> {
        let k = key(k);
        with_reconnect(&self.connection, |mut c| {
            let (k, value) = (k.clone(), value.clone());
            async move { c.set_ex::<_, _, ()>(k, value, ttl).await }
        })
        .await
        .map_err(unavailable)
    }

    async fn get(&self, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let k = key(k);
        with_reconnect(&self.connection, |mut c| {
            let k = k.clone();
            async move { c.get(k).await }
        })
        .await
        .map_err(unavailable)
    }

    async fn take(&self, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let k = key(k);
        with_reconnect(&self.connection, |mut c| {
            let k = k.clone();
            async move { c.get_del(k).await }
        })
        .await
        .map_err(unavailable)
    }

    async fn swap(
        &self,
        k: &str,
        expected: &[u8],
        value: Vec<u8>,
        ttl: u64,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.swap.key(key(k));
        invocation.arg(expected).arg(value).arg(ttl);
        let swapped: i64 = with_reconnect(&self.connection, |mut c| {
            let invocation = &invocation;
            async move { invocation.invoke_async(&mut c).await }
        })
        .await
        .map_err(unavailable)?;
        Ok(swapped == 1)
    }

    async fn delete(&self, k: &str) -> Result<(), StoreError> {
        let k = key(k);
        with_reconnect(&self.connection, |mut c| {
            let k = k.clone();
            async move { c.del::<_, i64>(k).await }
        })
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn incr(&self, k: &str, ttl: u64) -> Result<u64, StoreError> {
        let mut invocation = self.incr.key(key(k));
        invocation.arg(ttl);
        with_reconnect(&self.connection, |mut c| {
            let invocation = &invocation;
            async move { invocation.invoke_async(&mut c).await }
        })
        .await
        .map_err(unavailable)
    }

    async fn decr(&self, k: &str) -> Result<u64, StoreError> {
        let invocation = self.decr.key(key(k));
        with_reconnect(&self.connection, |mut c| {
            let invocation = &invocation;
            async move { invocation.invoke_async(&mut c).await }
        })
        .await
        .map_err(unavailable)
    }
}
