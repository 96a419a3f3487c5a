//! Signing keys: one active RS256 key signs, older keys stay published for verification.
//!
//! A key set is persisted (as private JWKs) so a restart does not invalidate tokens. In
//! directory mode it lives in a file under the state directory, written atomically with
//! mode 0600.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
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

use crate::time::Timestamp;

/// The RSA modulus size of generated keys.
const RSA_BITS: u32 = 2048;
/// The file name of the key set under the state directory.
const KEY_FILE: &str = "signing-keys.json";

/// Errors from generating, loading, saving or using keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// josekit refused a key or token operation.
    #[error("JOSE: {0}")]
    Jose(#[from] josekit::JoseError),
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
}

/// One key as stored: the private JWK and when it was made and retired.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredKey {
    /// The private JWK, with `kid`, `alg` and `use`.
    pub jwk: Map<String, Value>,
    /// When the key was generated.
    pub created_at: Timestamp,
    /// When the key stopped signing; `None` for the active key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<Timestamp>,
}

/// The persisted form of a key set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredKeySet {
    /// Every key, the active one first.
    pub keys: Vec<StoredKey>,
}

impl StoredKeySet {
    /// A set holding one freshly generated key.
    pub fn generate(now: Timestamp) -> Result<Self, KeyError> {
        Ok(Self {
            keys: vec![generate_key(now)?],
        })
    }

    /// When the signing key was made.
    pub fn active_since(&self) -> Option<Timestamp> {
        self.keys
            .iter()
            .filter(|k| k.retired_at.is_none())
            .map(|k| k.created_at)
            .max()
    }

    /// A set in which a fresh key signs, the previous signing keys are retired at `now`, and
    /// keys retired more than `retention` seconds ago (every token they signed has expired)
    /// are dropped.
    pub fn rotated(&self, now: Timestamp, retention: u64) -> Result<Self, KeyError> {
        let mut keys = vec![generate_key(now)?];
        for key in &self.keys {
            let retired_at = key.retired_at.unwrap_or(now);
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

fn generate_key(now: Timestamp) -> Result<StoredKey, KeyError> {
    let mut jwk = Jwk::generate_rsa_key(RSA_BITS)?;
    let kid = thumbprint(&jwk)?;
    jwk.set_key_id(kid);
    jwk.set_algorithm("RS256");
    jwk.set_key_use("sig");
    Ok(StoredKey {
        jwk: jwk.as_ref().clone(),
        created_at: now,
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

/// A usable key: its id, signer and verifier.
struct LoadedKey {
    kid: String,
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
            public,
            signer: RS256.signer_from_jwk(&jwk)?,
            verifier: RS256.verifier_from_jwk(&jwk)?,
        })
    }
}

/// A loaded key set: the first key signs, all verify.
pub struct KeySet {
    keys: Vec<LoadedKey>,
}

impl KeySet {
    /// Loads a stored set.
    pub fn load(stored: &StoredKeySet) -> Result<Self, KeyError> {
        let mut active: Vec<&StoredKey> = stored.keys.iter().collect();
        active.sort_by_key(|k| (k.retired_at.is_some(), std::cmp::Reverse(k.created_at)));
        let keys = active
            .into_iter()
            .map(LoadedKey::load)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::Malformed("no keys".into()));
        }
        Ok(Self { keys })
    }

    /// The JWKS document: every public key.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(|k| &k.public).collect::<Vec<_>>() })
    }

    /// Signs claims as a JWT with the active key; `typ` goes into the header.
    pub fn sign(&self, typ: &str, claims: Map<String, Value>) -> Result<String, KeyError> {
        let key = &self.keys[0];
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

/// Rotates the signing key on a schedule and persists the result.
pub struct KeyRotator {
    keys: Arc<Keys>,
    stored: tokio::sync::Mutex<StoredKeySet>,
    dir: Option<PathBuf>,
    period: u64,
}

impl KeyRotator {
    /// A rotator for `keys`, loaded from `stored`, persisted in `dir` when given, rotating
    /// every `period` seconds.
    pub fn new(keys: Arc<Keys>, stored: StoredKeySet, dir: Option<PathBuf>, period: u64) -> Self {
        Self {
            keys,
            stored: tokio::sync::Mutex::new(stored),
            dir,
            period,
        }
    }

    /// Rotates when the signing key is older than the period; keeps retired keys for
    /// `retention` seconds (the longest token lifetime). True when it rotated.
    pub async fn rotate_if_due(&self, now: Timestamp, retention: u64) -> Result<bool, KeyError> {
        let mut stored = self.stored.lock().await;
        let since = stored.active_since().unwrap_or(i64::MIN);
        if now.saturating_sub(since) < self.period as i64 {
            return Ok(false);
        }
        let next = stored.rotated(now, retention)?;
        let set = KeySet::load(&next)?;
        if let Some(dir) = &self.dir {
            save_in_dir(dir, &next)?;
        }
        self.keys.replace(set);
        tracing::info!(keys = next.keys.len(), "signing key rotated");
        *stored = next;
        Ok(true)
    }
}

fn save_in_dir(dir: &Path, set: &StoredKeySet) -> Result<(), KeyError> {
    let path = dir.join(KEY_FILE);
    let bytes = serde_json::to_vec_pretty(set).expect("serializable");
    write_private_file(&path, &bytes).map_err(|source| KeyError::Io { path, source })
}

/// Loads the key set from `dir`, creating it (and `dir`) on first start.
pub fn load_or_create_in_dir(dir: &Path, now: Timestamp) -> Result<StoredKeySet, KeyError> {
    let path = dir.join(KEY_FILE);
    let io = |source| KeyError::Io {
        path: path.clone(),
        source,
    };
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| KeyError::Malformed(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(io)?;
            let set = StoredKeySet::generate(now)?;
            write_private_file(
                &path,
                &serde_json::to_vec_pretty(&set).expect("serializable"),
            )
            .map_err(io)?;
            Ok(set)
        }
        Err(e) => Err(io(e)),
    }
}

/// Writes `bytes` to `path` atomically (temporary file, then rename), readable by the owner
/// only.
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_token_verifies_and_names_its_key() {
        let set = KeySet::load(&StoredKeySet::generate(1).unwrap()).unwrap();
        let mut claims = Map::new();
        claims.insert("sub".into(), json!("admin"));
        let token = set.sign("JWT", claims).unwrap();
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
        let token = a.sign("JWT", Map::new()).unwrap();
        assert!(b.verify(&token).is_err());
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
    fn rotation_keeps_the_old_key_for_verification_until_retention_ends() {
        let first = StoredKeySet::generate(1_000).unwrap();
        let old = KeySet::load(&first).unwrap();
        let token = old.sign("JWT", Map::new()).unwrap();
        let second = first.rotated(2_000, 500).unwrap();
        let both = KeySet::load(&second).unwrap();
        assert_eq!(both.jwks()["keys"].as_array().unwrap().len(), 2);
        assert!(
            both.verify(&token).is_ok(),
            "a token of the retired key still verifies"
        );
        assert_ne!(both.keys[0].kid, old.keys[0].kid, "the new key signs");
        let third = second.rotated(2_600, 500).unwrap();
        assert_eq!(
            third.keys.len(),
            2,
            "the first key, retired 600 s ago, is dropped"
        );
        assert!(KeySet::load(&third).unwrap().verify(&token).is_err());
    }

    #[tokio::test]
    async fn rotator_waits_for_the_period_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let stored = load_or_create_in_dir(dir.path(), 1_000).unwrap();
        let keys = Keys::new(KeySet::load(&stored).unwrap());
        let rotator = KeyRotator::new(keys.clone(), stored, Some(dir.path().into()), 3_600);
        assert!(!rotator.rotate_if_due(4_000, 600).await.unwrap());
        assert!(rotator.rotate_if_due(4_600, 600).await.unwrap());
        assert_eq!(keys.current().jwks()["keys"].as_array().unwrap().len(), 2);
        let reloaded = load_or_create_in_dir(dir.path(), 5_000).unwrap();
        assert_eq!(reloaded.keys.len(), 2);
        assert_eq!(reloaded.active_since(), Some(4_600));
    }

    #[test]
    fn key_file_is_reused_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_in_dir(dir.path(), 1).unwrap();
        let second = load_or_create_in_dir(dir.path(), 2).unwrap();
        assert_eq!(first.keys[0].jwk, second.keys[0].jwk);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
