//! Signing keys: one active RS256 key signs, older keys stay published for verification.
//!
//! A key set is persisted (as private JWKs) in a [`KeyStorage`] so that restarts and
//! replicas sign with the same keys. A rotation publishes the new key [`PUBLISH_LEAD`]
//! seconds before it signs, so every replica and every relying party's cached JWKS knows it
//! before the first token it signs arrives; the old key keeps signing until then.

mod redis;
mod secret;
mod storage;

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use josekit::jwk::Jwk;
use josekit::jws::alg::rsassa::{RsassaJwsSigner, RsassaJwsVerifier};
use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub use self::redis::RedisKeyStorage;
pub use self::secret::SecretKeyStorage;
pub use self::storage::{
    load_or_create, FileKeyStorage, KeyStorage, MemoryKeyStorage, SharedKeyStorage, Versioned,
};
use crate::time::Timestamp;

/// The RSA modulus size of generated keys.
const RSA_BITS: u32 = 2048;
/// Seconds a new key is published before it signs: longer than the JWKS may be cached
/// (`max-age=300`) plus a replica's [`SYNC_PERIOD`].
pub const PUBLISH_LEAD: i64 = 600;
/// How often a replica reads the stored set, taking up other replicas' rotations.
pub const SYNC_PERIOD: std::time::Duration = std::time::Duration::from_secs(10);

/// Errors from generating, loading, saving or using keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// josekit refused a key or token operation.
    #[error("JOSE: {0}")]
    Jose(#[from] josekit::JoseError),
    /// The shared store (Redis, or the Kubernetes API) could not be reached or refused.
    #[error("key storage: {0}")]
    Storage(String),
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The stored key set is not valid JSON of the expected shape.
    #[error("stored key set is malformed: {0}")]
    Malformed(String),
    /// No key set has been loaded yet (its storage has not answered since the start).
    #[error("no signing keys loaded yet")]
    NotLoaded,
}

/// One key as stored: the private JWK and when it was made, starts and stops signing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredKey {
    /// The private JWK, with `kid`, `alg` and `use`.
    pub jwk: Map<String, Value>,
    /// When the key was generated.
    pub created_at: Timestamp,
    /// When the key starts signing; before, it is only published. `None`: from creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activates_at: Option<Timestamp>,
    /// When the key stops signing; `None` while no successor is planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<Timestamp>,
}

impl StoredKey {
    fn activates_at(&self) -> Timestamp {
        self.activates_at.unwrap_or(self.created_at)
    }
}

/// The persisted form of a key set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredKeySet {
    /// Every key, the active one first.
    pub keys: Vec<StoredKey>,
}

impl StoredKeySet {
    /// A set holding one freshly generated key, signing at once.
    pub fn generate(now: Timestamp) -> Result<Self, KeyError> {
        Ok(Self {
            keys: vec![generate_key(now, None)?],
        })
    }

    /// When the newest key (signing or still waiting to sign) was made.
    pub fn newest(&self) -> Option<Timestamp> {
        self.keys.iter().map(|k| k.created_at).max()
    }

    /// This set plus the keys of `ours` it lacks that may still have tokens out: for when
    /// the stored set was replaced by one made without them (a Redis that lost its data, a
    /// Secret deleted and created again by a replica that just started).
    pub fn keeping(&self, ours: &StoredKeySet, now: Timestamp, retention: u64) -> Self {
        let kid = |k: &StoredKey| k.jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
        let known: std::collections::HashSet<_> = self.keys.iter().filter_map(kid).collect();
        let in_use = |k: &&StoredKey| k.retired_at.is_none_or(|r| r + retention as i64 > now);
        let missing = ours
            .keys
            .iter()
            .filter(in_use)
            .filter(|k| kid(k).is_some_and(|id| !known.contains(&id)));
        let mut keys = self.keys.clone();
        keys.extend(missing.cloned());
        Self { keys }
    }

    /// A set with a fresh key that signs from `now + lead`; the keys signing now stop then,
    /// and keys that stopped more than `retention` seconds ago (every token they signed has
    /// expired) are dropped.
    pub fn rotated(&self, now: Timestamp, retention: u64, lead: i64) -> Result<Self, KeyError> {
        let switch = now + lead;
        let mut keys = vec![generate_key(now, Some(switch))?];
        for key in &self.keys {
            let retired_at = key.retired_at.unwrap_or(switch).min(switch);
            if retired_at + retention as i64 > now {
                keys.push(StoredKey {
                    retired_at: Some(retired_at),
                    ..key.clone()
                });
            }
        }
        Ok(Self { keys })
    }
}

fn generate_key(now: Timestamp, activates_at: Option<Timestamp>) -> Result<StoredKey, KeyError> {
    let mut jwk = Jwk::generate_rsa_key(RSA_BITS)?;
    let kid = thumbprint(&jwk)?;
    jwk.set_key_id(kid);
    jwk.set_algorithm("RS256");
    jwk.set_key_use("sig");
    Ok(StoredKey {
        jwk: jwk.as_ref().clone(),
        created_at: now,
        activates_at,
        retired_at: None,
    })
}

/// The RFC 7638 SHA-256 thumbprint of an RSA key, used as its `kid`.
fn thumbprint(jwk: &Jwk) -> Result<String, KeyError> {
    let param = |name: &str| {
        jwk.parameter(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| KeyError::Malformed(format!("RSA key without {name:?}")))
    };
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        param("e")?,
        param("n")?
    );
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// A usable key: its id, when it starts signing, signer and verifier.
struct LoadedKey {
    kid: String,
    activates_at: Timestamp,
    public: Map<String, Value>,
    signer: RsassaJwsSigner,
    verifier: RsassaJwsVerifier,
}

impl LoadedKey {
    fn load(stored: &StoredKey) -> Result<Self, KeyError> {
        let jwk = Jwk::from_map(stored.jwk.clone())?;
        let kid = jwk.key_id().map(str::to_owned);
        let kid = kid.ok_or_else(|| KeyError::Malformed("key without kid".into()))?;
        let mut public = jwk.to_public_key()?.as_ref().clone();
        public.insert("kid".into(), Value::from(kid.as_str()));
        public.insert("alg".into(), Value::from("RS256"));
        public.insert("use".into(), Value::from("sig"));
        Ok(Self {
            kid,
            activates_at: stored.activates_at(),
            public,
            signer: RS256.signer_from_jwk(&jwk)?,
            verifier: RS256.verifier_from_jwk(&jwk)?,
        })
    }
}

/// A loaded key set: the key whose window holds `now` signs, all verify. It is empty only
/// until the storage first answers; then nothing signs or verifies.
pub struct KeySet {
    /// Newest activation first.
    keys: Vec<LoadedKey>,
}

impl KeySet {
    /// The set in force before any was loaded.
    pub fn empty() -> Self {
        Self { keys: Vec::new() }
    }

    /// True before a set was loaded.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Loads a stored set.
    pub fn load(stored: &StoredKeySet) -> Result<Self, KeyError> {
        let mut keys = stored
            .keys
            .iter()
            .map(LoadedKey::load)
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_by_key(|k| std::cmp::Reverse(k.activates_at));
        if keys.is_empty() {
            return Err(KeyError::Malformed("no keys".into()));
        }
        Ok(Self { keys })
    }

    /// The key that signs at `now`: the newest one already active. Should every key still
    /// wait (a clock set back), the oldest signs.
    fn signer(&self, now: Timestamp) -> Result<&LoadedKey, KeyError> {
        let active = self.keys.iter().find(|k| k.activates_at <= now);
        active.or(self.keys.last()).ok_or(KeyError::NotLoaded)
    }

    /// The `kid` of the key that signs at `now`.
    pub fn signing_kid(&self, now: Timestamp) -> Option<&str> {
        self.signer(now).ok().map(|k| k.kid.as_str())
    }

    /// The JWKS document: every public key.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(|k| &k.public).collect::<Vec<_>>() })
    }

    /// Signs claims as a JWT with the key active at `now`; `typ` goes into the header.
    pub fn sign(
        &self,
        now: Timestamp,
        typ: &str,
        claims: Map<String, Value>,
    ) -> Result<String, KeyError> {
        let key = self.signer(now)?;
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(&key.kid);
        let payload = JwtPayload::from_map(claims)?;
        Ok(jwt::encode_with_signer(&payload, &header, &key.signer)?)
    }

    /// Verifies a JWT's RS256 signature against any key in the set; returns the header's
    /// `typ` and the claims. Expiry and audience are for the caller to check.
    pub fn verify(&self, token: &str) -> Result<(Option<String>, Map<String, Value>), KeyError> {
        let (payload, header) = jwt::decode_with_verifier_selector(token, |header| {
            if header.algorithm() != Some("RS256") {
                return Ok(None);
            }
            let kid = header.key_id();
            Ok(self
                .keys
                .iter()
                .find(|k| Some(k.kid.as_str()) == kid)
                .map(|k| &k.verifier as _))
        })?;
        let typ = header.token_type().map(str::to_owned);
        Ok((typ, payload.as_ref().clone()))
    }
}

/// The key set in use, replaceable at run time (rotation, another replica's change).
pub struct Keys(ArcSwap<KeySet>);

impl Keys {
    /// Wraps a loaded set.
    pub fn new(set: KeySet) -> Arc<Self> {
        Arc::new(Self(ArcSwap::from_pointee(set)))
    }

    /// The current set.
    pub fn current(&self) -> Arc<KeySet> {
        self.0.load_full()
    }

    /// Replaces the set.
    pub fn replace(&self, set: KeySet) {
        self.0.store(Arc::new(set));
    }
}

/// Keeps the key set in step with its storage and rotates it on a schedule. Every replica
/// runs one; the storage's versioned writes let one replica win each rotation, and the
/// others take up its set at their next [`KeyRotator::sync`].
pub struct KeyRotator {
    keys: Arc<Keys>,
    storage: SharedKeyStorage,
    current: tokio::sync::Mutex<Option<Versioned>>,
    period: u64,
}

impl KeyRotator {
    /// A rotator on `storage`, rotating every `period` seconds, and the keys it keeps
    /// current: empty until the first [`KeyRotator::sync`] loads (or creates) the set.
    pub fn new(storage: SharedKeyStorage, period: u64) -> (Arc<Keys>, Self) {
        let keys = Keys::new(KeySet::empty());
        let rotator = Self {
            keys: keys.clone(),
            storage,
            current: tokio::sync::Mutex::new(None),
            period,
        };
        (keys, rotator)
    }

    /// True once a set is loaded.
    pub async fn is_loaded(&self) -> bool {
        self.current.lock().await.is_some()
    }

    /// Loads the set on the first call (creating it on first start); later, takes up the
    /// stored set when another replica changed it, then rotates when the newest key is older
    /// than the period, keeping retired keys for `retention` seconds (the longest token
    /// lifetime). True when this call rotated.
    pub async fn sync(&self, now: Timestamp, retention: u64) -> Result<bool, KeyError> {
        let mut slot = self.current.lock().await;
        let Some(current) = slot.as_mut() else {
            let loaded = load_or_create(self.storage.as_ref(), now).await?;
            self.keys.replace(KeySet::load(&loaded.set)?);
            tracing::info!(storage = %self.storage.describe(), keys = loaded.set.keys.len(), "signing keys loaded");
            *slot = Some(loaded);
            return Ok(false);
        };
        self.refresh(current, now, retention).await?;
        let newest = current.set.newest().unwrap_or(i64::MIN);
        if now.saturating_sub(newest) < self.period as i64 {
            return Ok(false);
        }
        let next = current.set.rotated(now, retention, PUBLISH_LEAD)?;
        let Some(version) = self.storage.save(&next, Some(&current.version)).await? else {
            tracing::info!("another replica rotated the signing key first; taking its set");
            self.refresh(current, now, retention).await?;
            return Ok(false);
        };
        self.install(current, Versioned { set: next, version })?;
        tracing::info!(keys = current.set.keys.len(), "signing key rotated");
        Ok(true)
    }

    /// Reads the stored set and installs it when it changed. A stored set that lacks keys
    /// this replica still needs gets them back first; a set deleted from the storage (say, a
    /// Secret removed by hand) is written back, so the keys in use stay published.
    async fn refresh(
        &self,
        current: &mut Versioned,
        now: Timestamp,
        retention: u64,
    ) -> Result<(), KeyError> {
        match self.storage.load().await? {
            Some(found) if found.version == current.version => Ok(()),
            Some(found) => {
                let merged = found.set.keeping(&current.set, now, retention);
                if merged.keys.len() == found.set.keys.len() {
                    return self.install(current, found);
                }
                tracing::warn!(storage = %self.storage.describe(),
                    "the stored key set lacks keys still in use here; adding them back");
                match self.storage.save(&merged, Some(&found.version)).await? {
                    Some(version) => self.install(
                        current,
                        Versioned {
                            set: merged,
                            version,
                        },
                    ),
                    None => Ok(()),
                }
            }
            None => {
                tracing::warn!(storage = %self.storage.describe(), "the stored key set vanished; writing it back");
                if let Some(version) = self.storage.save(&current.set, None).await? {
                    current.version = version;
                }
                Ok(())
            }
        }
    }

    fn install(&self, current: &mut Versioned, found: Versioned) -> Result<(), KeyError> {
        self.keys.replace(KeySet::load(&found.set)?);
        *current = found;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("sub".into(), json!("admin"));
        claims
    }

    fn kid_count(keys: &Keys) -> usize {
        keys.current().jwks()["keys"].as_array().unwrap().len()
    }

    #[test]
    fn signed_token_verifies_and_names_its_key() {
        let set = KeySet::load(&StoredKeySet::generate(1).unwrap()).unwrap();
        let token = set.sign(1, "JWT", claims()).unwrap();
        let (typ, claims) = set.verify(&token).unwrap();
        assert_eq!(typ.as_deref(), Some("JWT"));
        assert_eq!(claims["sub"], "admin");
        let kid = set.jwks()["keys"][0]["kid"].as_str().unwrap().to_owned();
        assert_eq!(kid.len(), 43);
    }

    #[test]
    fn jwks_has_no_private_parts() {
        let set = KeySet::load(&StoredKeySet::generate(1).unwrap()).unwrap();
        let key = &set.jwks()["keys"][0];
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert!(key.get("d").is_none() && key.get("p").is_none());
    }

    #[test]
    fn token_from_another_key_is_refused() {
        let a = KeySet::load(&StoredKeySet::generate(1).unwrap()).unwrap();
        let b = KeySet::load(&StoredKeySet::generate(1).unwrap()).unwrap();
        let token = a.sign(1, "JWT", Map::new()).unwrap();
        assert!(b.verify(&token).is_err());
    }

    #[test]
    fn an_empty_set_neither_signs_nor_verifies() {
        let empty = KeySet::empty();
        assert!(matches!(
            empty.sign(1, "JWT", Map::new()),
            Err(KeyError::NotLoaded)
        ));
        let other = KeySet::load(&StoredKeySet::generate(1).unwrap()).unwrap();
        assert!(empty
            .verify(&other.sign(1, "JWT", Map::new()).unwrap())
            .is_err());
        assert_eq!(empty.jwks(), json!({ "keys": [] }));
    }

    #[test]
    fn unsigned_token_is_refused() {
        let set = KeySet::load(&StoredKeySet::generate(1).unwrap()).unwrap();
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"admin"}"#)
        );
        assert!(set.verify(&none).is_err());
    }

    #[test]
    fn a_new_key_is_published_before_it_signs() {
        let first = StoredKeySet::generate(1_000).unwrap();
        let old = KeySet::load(&first).unwrap();
        let old_kid = old.signing_kid(1_000).unwrap().to_owned();
        let second = KeySet::load(&first.rotated(2_000, 500, 100).unwrap()).unwrap();
        assert_eq!(second.jwks()["keys"].as_array().unwrap().len(), 2);
        assert_eq!(
            second.signing_kid(2_099),
            Some(old_kid.as_str()),
            "the old key signs until the switch"
        );
        assert_ne!(
            second.signing_kid(2_100),
            Some(old_kid.as_str()),
            "the new key signs from the switch"
        );
    }

    #[test]
    fn a_retired_key_verifies_until_its_tokens_expire() {
        let first = StoredKeySet::generate(1_000).unwrap();
        let token = KeySet::load(&first)
            .unwrap()
            .sign(1_000, "JWT", Map::new())
            .unwrap();
        let second = first.rotated(2_000, 500, 100).unwrap();
        assert!(KeySet::load(&second).unwrap().verify(&token).is_ok());
        let third = second.rotated(2_700, 500, 100).unwrap();
        assert_eq!(
            third.keys.len(),
            2,
            "the first key, retired at 2,100, is dropped"
        );
        assert!(KeySet::load(&third).unwrap().verify(&token).is_err());
    }

    #[tokio::test]
    async fn rotator_waits_for_the_period_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let storage: SharedKeyStorage = Arc::new(FileKeyStorage::new(dir.path()));
        let (keys, rotator) = KeyRotator::new(storage.clone(), 3_600);
        assert!(
            keys.current().is_empty(),
            "nothing is loaded before the first sync"
        );
        assert!(!rotator.sync(1_000, 600).await.unwrap());
        assert_eq!(kid_count(&keys), 1);
        assert!(!rotator.sync(4_000, 600).await.unwrap());
        assert!(rotator.sync(4_600, 600).await.unwrap());
        assert_eq!(kid_count(&keys), 2);
        let reloaded = storage.load().await.unwrap().unwrap();
        assert_eq!(reloaded.set.keys.len(), 2);
        assert_eq!(reloaded.set.newest(), Some(4_600));
    }

    #[tokio::test]
    async fn two_replicas_rotate_once_and_publish_the_same_keys() {
        let storage: SharedKeyStorage = Arc::new(MemoryKeyStorage::default());
        let (a_keys, a) = KeyRotator::new(storage.clone(), 3_600);
        let (b_keys, b) = KeyRotator::new(storage.clone(), 3_600);
        let (first_a, first_b) = tokio::join!(a.sync(1_000, 600), b.sync(1_000, 600));
        first_a.unwrap();
        first_b.unwrap();
        assert_eq!(
            a_keys.current().jwks(),
            b_keys.current().jwks(),
            "one set was created"
        );
        let (rotated_a, rotated_b) = tokio::join!(a.sync(5_000, 600), b.sync(5_000, 600));
        assert!(
            rotated_a.unwrap() ^ rotated_b.unwrap(),
            "exactly one replica rotates"
        );
        a.sync(5_001, 600).await.unwrap();
        b.sync(5_001, 600).await.unwrap();
        assert_eq!(kid_count(&a_keys), 2);
        assert_eq!(a_keys.current().jwks(), b_keys.current().jwks());
    }

    #[tokio::test]
    async fn a_set_made_again_without_our_keys_gets_them_back() {
        let storage: SharedKeyStorage = Arc::new(MemoryKeyStorage::default());
        let (keys, a) = KeyRotator::new(storage.clone(), 3_600);
        a.sync(1_000, 600).await.unwrap();
        let ours = keys.current().jwks()["keys"][0]["kid"].clone();
        let stored = storage.load().await.unwrap().unwrap();
        let fresh = StoredKeySet::generate(1_100).unwrap();
        storage
            .save(&fresh, Some(&stored.version))
            .await
            .unwrap()
            .unwrap();

        a.sync(1_100, 600).await.unwrap();
        let kids: Vec<Value> = keys.current().jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].clone())
            .collect();
        assert_eq!(kids.len(), 2, "the fresh key and ours: {kids:?}");
        assert!(kids.contains(&ours), "tokens signed before still verify");
        let merged = storage.load().await.unwrap().unwrap();
        assert_eq!(
            merged.set.keys.len(),
            2,
            "the storage has ours again for every replica"
        );
    }

    #[tokio::test]
    async fn a_stale_write_is_refused() {
        let storage = MemoryKeyStorage::default();
        let first = StoredKeySet::generate(1).unwrap();
        let version = storage.save(&first, None).await.unwrap().unwrap();
        assert!(
            storage.save(&first, None).await.unwrap().is_none(),
            "create when present"
        );
        let second = first.rotated(2, 10, 1).unwrap();
        assert!(storage
            .save(&second, Some(&version))
            .await
            .unwrap()
            .is_some());
        assert!(
            storage
                .save(&second, Some(&version))
                .await
                .unwrap()
                .is_none(),
            "a write over an old version"
        );
    }

    #[tokio::test]
    async fn key_file_is_reused_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FileKeyStorage::new(&dir.path().join("state"));
        let first = load_or_create(&storage, 1).await.unwrap();
        let second = load_or_create(&storage, 2).await.unwrap();
        assert_eq!(first.set.keys[0].jwk, second.set.keys[0].jwk);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join("state/signing-keys.json");
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
