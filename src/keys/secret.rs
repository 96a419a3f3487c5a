//! The key set in a Kubernetes Secret, for replicas in a cluster. The first replica to start
//! creates it (a conflict means another won: its set is read and used); a rotation replaces
//! it with the `resourceVersion` last read as a precondition, so one replica wins.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use super::storage::{decode, encode, KeyStorage, Versioned};
use super::{KeyError, StoredKeySet};

/// The data key holding the set.
const DATA_KEY: &str = "signing-keys.json";

/// The key set in Secret `name` of `namespace`.
pub struct SecretKeyStorage {
    api: Api<Secret>,
    namespace: String,
    name: String,
}

impl SecretKeyStorage {
    /// Storage in Secret `name` of `namespace`.
    pub fn new(client: Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    fn secret(&self, set: &StoredKeySet, resource_version: Option<&str>) -> Secret {
        let (bytes, _) = encode(set);
        let labels = BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_string(),
            "kube-idp".to_string(),
        )]);
        Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                resource_version: resource_version.map(str::to_string),
                ..Default::default()
            },
            type_: Some("Opaque".into()),
            data: Some(BTreeMap::from([(DATA_KEY.to_string(), ByteString(bytes))])),
            ..Default::default()
        }
    }
}

fn storage_error(e: kube::Error) -> KeyError {
    KeyError::Storage(format!("Kubernetes API: {e}"))
}

/// True when the API server refused a write because another writer came first.
fn lost_race(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 409)
}

#[async_trait]
impl KeyStorage for SecretKeyStorage {
    async fn load(&self) -> Result<Option<Versioned>, KeyError> {
        let Some(secret) = self.api.get_opt(&self.name).await.map_err(storage_error)? else {
            return Ok(None);
        };
        let bytes = secret.data.as_ref().and_then(|d| d.get(DATA_KEY));
        let bytes = bytes.ok_or_else(|| {
            KeyError::Malformed(format!("Secret {} has no {DATA_KEY}", self.name))
        })?;
        let set = decode(&bytes.0)?.set;
        let version = secret.metadata.resource_version.unwrap_or_default();
        Ok(Some(Versioned { set, version }))
    }

    async fn save(
        &self,
        set: &StoredKeySet,
        expected: Option<&str>,
    ) -> Result<Option<String>, KeyError> {
        let secret = self.secret(set, expected);
        let params = PostParams::default();
        let written = match expected {
            None => self.api.create(&params, &secret).await,
            Some(_) => self.api.replace(&self.name, &params, &secret).await,
        };
        match written {
            Ok(stored) => Ok(Some(stored.metadata.resource_version.unwrap_or_default())),
            Err(e) if lost_race(&e) => Ok(None),
            Err(e) => Err(storage_error(e)),
        }
    }

    fn describe(&self) -> String {
        format!("Secret {}/{}", self.namespace, self.name)
    }
}
