//! The key set in Redis, for replicas in directory mode that share one: a hash with the
//! set's bytes and their digest, written only over the digest last read (a Lua script, so
//! the check and the write are one step).

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::Script;

use super::storage::{decode, encode, KeyStorage};
use super::{KeyError, StoredKeySet};
use crate::store::with_reconnect;

/// The hash holding the set.
const KEY: &str = "kube-idp:signing-keys";

/// Writes `set` when the stored version is the expected one ('' for none stored yet). A
/// hash that lost its `set` field counts as none stored, whatever `version` it kept.
const SAVE: &str = r"
local current = ''
if redis.call('HEXISTS', KEYS[1], 'set') == 1 then
  current = redis.call('HGET', KEYS[1], 'version') or ''
end
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'set', ARGV[3])
return 1
";

/// The key set in the Redis behind `connection`.
pub struct RedisKeyStorage {
    connection: ConnectionManager,
    save: Script,
}

impl RedisKeyStorage {
    /// Storage on an open connection.
    pub fn new(connection: ConnectionManager) -> Self {
        Self {
            connection,
            save: Script::new(SAVE),
        }
    }
}

fn storage_error(e: redis::RedisError) -> KeyError {
    KeyError::Storage(format!("redis {:?}", e.kind()))
}

#[async_trait]
impl KeyStorage for RedisKeyStorage {
    async fn load(&self) -> Result<Option<crate::keys::Versioned>, KeyError> {
        let bytes: Option<Vec<u8>> = with_reconnect(&self.connection, |mut c| async move {
            redis::cmd("HGET")
                .arg(KEY)
                .arg("set")
                .query_async(&mut c)
                .await
        })
        .await
        .map_err(storage_error)?;
        bytes.as_deref().map(decode).transpose()
    }

    async fn save(
        &self,
        set: &StoredKeySet,
        expected: Option<&str>,
    ) -> Result<Option<String>, KeyError> {
        let (bytes, version) = encode(set);
        let mut invocation = self.save.key(KEY);
        invocation
            .arg(expected.unwrap_or(""))
            .arg(&version)
            .arg(bytes);
        let saved: i64 = with_reconnect(&self.connection, |mut c| {
            let invocation = &invocation;
            async move { invocation.invoke_async(&mut c).await }
        })
        .await
        .map_err(storage_error)?;
        Ok((saved == 1).then_some(version))
    }

    fn describe(&self) -> String {
        format!("redis hash {KEY}")
    }
}
