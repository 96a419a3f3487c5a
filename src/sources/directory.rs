//! The directory source: a folder of the manifests one would `kubectl apply` (multi-document
//! YAML, `Secret` and `User` kinds, `List`s of them), reloaded within a second of a change.
//!
//! An object that breaks the contract is skipped and logged. A file that does not parse is
//! logged too, and the objects last read from it stay in force until it parses again, so a
//! half-saved edit never signs anybody out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use notify::{RecursiveMode, Watcher};
use serde_yaml::Value;
use sha2::{Digest, Sha256};

use super::log_rejected;
use crate::model::{
    account_from_user, client_from_secret, Account, Client, ClientError, ObjectRef, User, UserError,
};
use crate::registry::{ClientSet, Registry, Rejected, UserSet};

/// How long to wait after a change event for the writer to finish.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// How often to rescan even without events (file systems that do not report changes).
const RESCAN: Duration = Duration::from_secs(10);

/// Errors that stop the directory source.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The folder cannot be listed.
    #[error("cannot read manifest directory {path}: {source}")]
    Unreadable {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The folder cannot be watched.
    #[error("cannot watch manifest directory: {0}")]
    Watch(#[from] notify::Error),
}

/// What one file contributed.
#[derive(Default, Clone)]
struct FileObjects {
    clients: Vec<Client>,
    accounts: Vec<Account>,
}

/// Counts from one load, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoadSummary {
    /// Clients in the registry.
    pub clients: usize,
    /// Accounts in the registry.
    pub users: usize,
    /// Objects skipped.
    pub rejected: usize,
    /// Files that did not parse.
    pub broken_files: usize,
}

/// Reads a folder of manifests into a registry and keeps it current.
pub struct DirectorySource {
    dir: PathBuf,
    registry: Arc<Registry>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Digest of every file's path and content at the last load.
    fingerprint: Option<[u8; 32]>,
    /// The objects last read from each file that parsed.
    last_good: HashMap<PathBuf, FileObjects>,
    /// bcrypt hashes of clear-text passwords, by digest of (username, password).
    hashes: HashMap<[u8; 32], String>,
}

impl DirectorySource {
    /// A source for `dir` feeding `registry`.
    pub fn new(dir: impl Into<PathBuf>, registry: Arc<Registry>) -> Arc<Self> {
        Arc::new(Self {
            dir: dir.into(),
            registry,
            state: Mutex::default(),
        })
    }

    /// Reads the folder and replaces the registry's contents, unless nothing changed since
    /// the last load (then `None`).
    pub fn load(&self) -> Result<Option<LoadSummary>, DirectoryError> {
        let files = read_files(&self.dir)?;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let fingerprint = fingerprint(&files);
        if state.fingerprint == Some(fingerprint) {
            return Ok(None);
        }
        state.fingerprint = Some(fingerprint);
        let mut summary = LoadSummary::default();
        let mut clients = Vec::new();
        let mut accounts = Vec::new();
        let mut rejected = Vec::new();
        let mut last_good = HashMap::new();
        for (path, text) in &files {
            let objects = match parse_file(path, text, &mut state.hashes, &mut rejected) {
                Ok(objects) => objects,
                Err(reason) => {
                    summary.broken_files += 1;
                    let kept = state.last_good.get(path).cloned().unwrap_or_default();
                    tracing::warn!(file = %path.display(), %reason, kept_clients = kept.clients.len(),
                        kept_users = kept.accounts.len(), "manifest file does not parse; keeping what it held before");
                    kept
                }
            };
            clients.extend(objects.clients.iter().cloned());
            accounts.extend(objects.accounts.iter().cloned());
            last_good.insert(path.clone(), objects);
        }
        state.last_good = last_good;
        let (client_set, duplicates) = ClientSet::build(clients);
        rejected.extend(duplicates);
        log_rejected("manifest", &rejected);
        summary.rejected = rejected.len();
        summary.clients = client_set.len();
        let user_set = UserSet::build(accounts);
        summary.users = user_set.len();
        self.registry.set_clients(client_set);
        self.registry.set_users(user_set);
        tracing::info!(dir = %self.dir.display(), clients = summary.clients, users = summary.users,
            rejected = summary.rejected, broken_files = summary.broken_files, "manifests loaded");
        Ok(Some(summary))
    }

    /// Loads the folder now, then reloads it on every change until the task is dropped.
    ///
    /// The watch starts before that load: a change made between the server's first load and
    /// the watch (a test writes right after start) would otherwise wait for the rescan.
    pub async fn run(self: Arc<Self>) -> Result<(), DirectoryError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut watcher = notify::recommended_watcher(move |_event| {
            let _ = tx.try_send(());
        })?;
        watcher.watch(&self.dir, RecursiveMode::NonRecursive)?;
        self.clone().reload().await?;
        let mut rescan = tokio::time::interval(RESCAN);
        rescan.tick().await;
        loop {
            tokio::select! {
                event = rx.recv() => {
                    if event.is_none() { return Ok(()); }
                    tokio::time::sleep(DEBOUNCE).await;
                    while rx.try_recv().is_ok() {}
                }
                _ = rescan.tick() => {}
            }
            if let Err(e) = self.clone().reload().await {
                tracing::error!(error = %e, "manifest reload failed; keeping the last good set");
            }
        }
    }

    async fn reload(self: Arc<Self>) -> Result<Option<LoadSummary>, DirectoryError> {
        tokio::task::spawn_blocking(move || self.load())
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "manifest load panicked");
                Ok(None)
            })
    }
}

/// The manifest files directly in `dir` (`.yaml`, `.yml`, `.json`, not hidden), sorted, with
/// their content. Unreadable files are logged and left out.
fn read_files(dir: &Path) -> Result<Vec<(PathBuf, String)>, DirectoryError> {
    let unreadable = |source| DirectoryError::Unreadable {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| is_manifest(p))
        .collect();
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push((path, text)),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "manifest file unreadable")
            }
        }
    }
    Ok(files)
}

fn is_manifest(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    !name.starts_with('.') && matches!(ext, "yaml" | "yml" | "json") && path.is_file()
}

fn fingerprint(files: &[(PathBuf, String)]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for (path, text) in files {
        hasher.update(path.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().into()
}

/// Reads every object in one file; `Err` when the file is not valid YAML.
fn parse_file(
    path: &Path,
    text: &str,
    hashes: &mut HashMap<[u8; 32], String>,
    rejected: &mut Vec<Rejected>,
) -> Result<FileObjects, String> {
    let mut documents = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(document).map_err(|e| e.to_string())?;
        documents.push(value);
    }
    let mut objects = FileObjects::default();
    for value in documents {
        read_object(path, value, hashes, rejected, &mut objects);
    }
    Ok(objects)
}

fn read_object(
    path: &Path,
    value: Value,
    hashes: &mut HashMap<[u8; 32], String>,
    rejected: &mut Vec<Rejected>,
    objects: &mut FileObjects,
) {
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    let metadata = |key: &str| {
        value
            .get("metadata")
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let origin = ObjectRef {
        namespace: metadata("namespace").unwrap_or_default(),
        name: metadata("name").unwrap_or_else(|| "<unnamed>".into()),
        file: Some(path.display().to_string()),
        ..Default::default()
    };
    let mut reject = |reason: String| {
        rejected.push(Rejected {
            origin: origin.clone(),
            reason,
        })
    };
    match (api_version.as_str(), kind.as_str()) {
        (_, "") if value.is_null() => {}
        ("v1", "List") => {
            let items = value
                .get("items")
                .and_then(Value::as_sequence)
                .cloned()
                .unwrap_or_default();
            for item in items {
                read_object(path, item, hashes, rejected, objects);
            }
        }
        ("v1", "Secret") => match serde_yaml::from_value::<Secret>(value) {
            Ok(secret) => match client_from_secret(&secret) {
                Ok((mut client, warnings)) => {
                    for w in warnings {
                        tracing::warn!(file = %path.display(), name = %client.origin.name, warning = %w, "client configuration");
                    }
                    client.origin.file = origin.file.clone();
                    objects.clients.push(client);
                }
                Err(ClientError::MissingLabel) => {
                    tracing::info!(file = %path.display(), name = %origin.name, "Secret is not an OAuth client (no oauthclient label); ignored");
                }
                Err(e) => reject(e.to_string()),
            },
            Err(e) => reject(format!("not a valid Secret: {e}")),
        },
        ("iam.kubesphere.io/v1beta1", "User") => match serde_yaml::from_value::<User>(value) {
            Ok(user) => match read_user(&user, hashes) {
                Ok(account) => objects.accounts.push(account),
                Err(e) => reject(e.to_string()),
            },
            Err(e) => reject(format!("not a valid User: {e}")),
        },
        (api_version, kind) => {
            tracing::debug!(file = %path.display(), api_version, kind, "object of another kind ignored");
        }
    }
}

/// Reads a user; a clear-text password is hashed in memory (the file is not rewritten).
fn read_user(user: &User, hashes: &mut HashMap<[u8; 32], String>) -> Result<Account, UserError> {
    match account_from_user(user) {
        Err(UserError::ClearTextPassword) => {
            let mut hashed = user.clone();
            let plain = user
                .spec
                .password
                .as_ref()
                .map(|p| p.expose())
                .unwrap_or("");
            let username = user.metadata.name.as_deref().unwrap_or("");
            tracing::warn!(user = %username, "password in clear text; store a bcrypt hash (kube-idp hash-password)");
            let key: [u8; 32] = Sha256::new()
                .chain_update(username)
                .chain_update([0])
                .chain_update(plain)
                .finalize()
                .into();
            let hash = match hashes.get(&key) {
                Some(hash) => hash.clone(),
                None => {
                    let hash = bcrypt::hash(plain, crate::model::PASSWORD_COST)
                        .map_err(|_| UserError::ClearTextPassword)?;
                    hashes.insert(key, hash.clone());
                    hash
                }
            };
            hashed.spec.password = Some(crate::secret::SecretString::new(hash));
            account_from_user(&hashed)
        }
        other => other,
    }
}
