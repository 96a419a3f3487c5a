//! Where a key set persists, so restarts and replicas sign with the same keys.
//!
//! Every backend versions what it stores and writes only over the version it last read, so
//! two replicas that create or rotate at the same instant cannot both win: the loser reads
//! the winner's set and uses it. Backends: a file under the state directory, Redis, a
//! Kubernetes Secret ([`super::secret`]), and memory for a process that keeps nothing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{KeyError, StoredKeySet};
use crate::secret::digest;

/// A stored key set and the version it was read at.
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The set.
    pub set: StoredKeySet,
    /// An opaque version: a digest, or a Kubernetes `resourceVersion`.
    pub version: String,
}

/// A place a key set lives.
#[async_trait]
pub trait KeyStorage: Send + Sync + 'static {
    /// The stored set, `None` before the first one is written.
    async fn load(&self) -> Result<Option<Versioned>, KeyError>;
    /// Writes `set` only if the stored version is still `expected` (`None`: only if nothing
    /// is stored yet). Returns the new version, or `None` when another writer came first.
    async fn save(
        &self,
        set: &StoredKeySet,
        expected: Option<&str>,
    ) -> Result<Option<String>, KeyError>;
    /// What the log calls this backend.
    fn describe(&self) -> String;
}

/// The set as stored bytes and the digest that versions them.
pub(super) fn encode(set: &StoredKeySet) -> (Vec<u8>, String) {
    let bytes = serde_json::to_vec_pretty(set).expect("key sets serialize");
    let version = digest(&bytes);
    (bytes, version)
}

/// Reads stored bytes back, versioned by their digest.
pub(super) fn decode(bytes: &[u8]) -> Result<Versioned, KeyError> {
    let set = serde_json::from_slice(bytes).map_err(|e| KeyError::Malformed(e.to_string()))?;
    Ok(Versioned {
        set,
        version: digest(bytes),
    })
}

/// Loads the stored set, creating it on first start; a creation lost to another writer
/// takes the winner's.
pub async fn load_or_create(
    storage: &dyn KeyStorage,
    now: crate::time::Timestamp,
) -> Result<Versioned, KeyError> {
    for _ in 0..3 {
        if let Some(found) = storage.load().await? {
            return Ok(found);
        }
        let set = StoredKeySet::generate(now)?;
        if let Some(version) = storage.save(&set, None).await? {
            tracing::info!(storage = %storage.describe(), "signing key created");
            return Ok(Versioned { set, version });
        }
    }
    Err(KeyError::Malformed(format!(
        "{} changes under every read",
        storage.describe()
    )))
}

/// Keeps the set in this process only: tokens die with it.
#[derive(Default)]
pub struct MemoryKeyStorage(Mutex<Option<Vec<u8>>>);

#[async_trait]
impl KeyStorage for MemoryKeyStorage {
    async fn load(&self) -> Result<Option<Versioned>, KeyError> {
        let stored = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        stored.as_deref().map(decode).transpose()
    }

    async fn save(
        &self,
        set: &StoredKeySet,
        expected: Option<&str>,
    ) -> Result<Option<String>, KeyError> {
        let mut stored = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let current = stored.as_deref().map(digest);
        if current.as_deref() != expected {
            return Ok(None);
        }
        let (bytes, version) = encode(set);
        *stored = Some(bytes);
        Ok(Some(version))
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

/// The file name of the key set under the state directory.
const KEY_FILE: &str = "signing-keys.json";

/// A file under the state directory, written atomically with mode 0600. One process owns
/// the directory, so the version check guards only against a file edited by hand.
pub struct FileKeyStorage {
    path: PathBuf,
}

impl FileKeyStorage {
    /// The key file in `dir`; `dir` is created on the first save.
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(KEY_FILE),
        }
    }

    fn io(&self, source: std::io::Error) -> KeyError {
        KeyError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn read(&self) -> Result<Option<Vec<u8>>, KeyError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(e)),
        }
    }
}

#[async_trait]
impl KeyStorage for FileKeyStorage {
    async fn load(&self) -> Result<Option<Versioned>, KeyError> {
        self.read()?.as_deref().map(decode).transpose()
    }

    async fn save(
        &self,
        set: &StoredKeySet,
        expected: Option<&str>,
    ) -> Result<Option<String>, KeyError> {
        let current = self.read()?.map(|b| digest(&b));
        if current.as_deref() != expected {
            return Ok(None);
        }
        let (bytes, version) = encode(set);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        write_private_file(&self.path, &bytes).map_err(|e| self.io(e))?;
        Ok(Some(version))
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }
}

/// Writes `bytes` to `path` atomically (temporary file, then rename), readable by the owner
/// only.
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The shared handle the rotator and server pass around.
pub type SharedKeyStorage = Arc<dyn KeyStorage>;
