//! A temporary folder of manifests, written atomically so the watcher never sees half a file.

use std::path::Path;

use tempfile::TempDir;

/// The seed's Harbor redirect URI.
pub const HARBOR_CALLBACK: &str = "https://harbor.172.31.19.17.nip.io/c/oidc/callback";
/// The example admin's password.
pub const ADMIN_PASSWORD: &str = "P@88w0rd";

/// A folder of manifests.
pub struct Manifests {
    dir: TempDir,
}

impl Manifests {
    /// An empty folder.
    pub fn empty() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// A folder holding a copy of `deploy/examples`.
    pub fn examples() -> Self {
        let manifests = Self::empty();
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples");
        for entry in std::fs::read_dir(examples).expect("deploy/examples exists") {
            let path = entry.expect("readable entry").path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            manifests.write(
                &name,
                &std::fs::read_to_string(&path).expect("readable example"),
            );
        }
        manifests
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` atomically (a temporary file renamed into place).
    pub fn write(&self, name: &str, content: &str) -> &Self {
        let tmp = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, content).expect("write manifest");
        std::fs::rename(&tmp, self.dir.path().join(name)).expect("rename manifest");
        self
    }

    /// Deletes `name`.
    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.dir.path().join(name)).expect("remove manifest");
    }
}

/// A client Secret manifest named `oauthclient-{client}` with this `configuration.yaml`.
pub fn client_secret(client: &str, configuration: &str) -> String {
    let indented: String = configuration
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: oauthclient-{client}\n  \
         namespace: kubesphere-system\n  labels:\n    config.kubesphere.io/type: oauthclient\n\
         type: config.kubesphere.io/oauthclient\nstringData:\n  configuration.yaml: |\n{indented}"
    )
}

/// The seed's Harbor client with another secret.
pub fn harbor_with_secret(secret: &str) -> String {
    client_secret(
        "harbor",
        &format!(
            "name: harbor\nsecret: {secret}\ngrantMethod: auto\n\
             scopeRestrictions: [openid, email, profile]\nredirectURIs:\n- {HARBOR_CALLBACK}\n"
        ),
    )
}

/// A User manifest with a clear-text password and an optional state.
pub fn user(name: &str, email: &str, password: &str, state: Option<&str>) -> String {
    let status = state
        .map(|s| format!("status:\n  state: {s}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: iam.kubesphere.io/v1beta1\nkind: User\nmetadata:\n  name: {name}\n\
         spec:\n  email: {email}\n  password: '{password}'\n{status}"
    )
}
