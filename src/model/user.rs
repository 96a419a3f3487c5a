//! The `User` resource (`users.iam.kubesphere.io/v1beta1`) and the account read from it.

use std::fmt;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ObjectRef;
use crate::secret::SecretString;

/// The bcrypt cost of hashes kube-idp makes: Go's and so KubeSphere's default, so that an
/// unknown login name costs the same time as the typical account's password.
pub const PASSWORD_COST: u32 = 10;
/// `status.state` of a user who may sign in.
pub const STATE_ACTIVE: &str = "Active";
/// `status.state` of a user an administrator switched off.
pub const STATE_DISABLED: &str = "Disabled";
/// `status.state` of a user locked out after too many failed logins.
pub const STATE_AUTH_LIMIT_EXCEEDED: &str = "AuthLimitExceeded";

/// A KubeSphere account. `metadata.name` is the username.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[kube(
    group = "iam.kubesphere.io",
    version = "v1beta1",
    kind = "User",
    status = "UserStatus",
    shortname = "user",
    category = "iam",
    printcolumn = r#"{"name":"Email","type":"string","jsonPath":".spec.email"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    /// The user's email address; also accepted as a login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Preferred language, such as `en` or `zh`; the `locale` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Free text about the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The name shown to people; the `name` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Group names; the `groups` claim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// A bcrypt hash, or clear text that the controller replaces with its hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub password: Option<SecretString>,
}

/// What the controllers record about a user.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserStatus {
    /// `Active`, `Disabled` or `AuthLimitExceeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Why the state was last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the state last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// When the user last signed in (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login_time: Option<String>,
}

/// A bcrypt hash of a password.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a value already known to be a bcrypt hash.
    pub fn from_hash(hash: impl Into<String>) -> Self {
        Self(hash.into())
    }

    /// The hash, for bcrypt verification.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// True when `value` looks like a bcrypt hash (`$2a$`, `$2b$` or `$2y$`, cost, 53 chars).
pub fn is_bcrypt_hash(value: &str) -> bool {
    let b = value.as_bytes();
    let prefix = [b"$2a$", b"$2b$", b"$2y$"]
        .iter()
        .any(|p| b.starts_with(*p));
    prefix
        && b.len() == 60
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

/// A validated account.
#[derive(Debug, Clone)]
pub struct Account {
    /// `metadata.name`.
    pub username: String,
    /// `spec.email`.
    pub email: Option<String>,
    /// `spec.displayName`.
    pub display_name: Option<String>,
    /// `spec.lang`.
    pub lang: Option<String>,
    /// `spec.groups`.
    pub groups: Vec<String>,
    /// The bcrypt hash; `None` when the account has no password and cannot log in with one.
    pub password: Option<PasswordHash>,
    /// `status.state`; an account without one is new, and treated as `Active`.
    pub state: String,
    /// The resource it was read from.
    pub origin: ObjectRef,
}

impl Account {
    /// True when the account may sign in.
    pub fn is_active(&self) -> bool {
        self.state == STATE_ACTIVE
    }

    /// The `name` claim: the display name, or the username when there is none.
    pub fn name(&self) -> &str {
        self.display_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.username)
    }
}

/// Why a `User` is not a usable account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// `metadata.name` is empty.
    #[error("metadata.name is required")]
    MissingName,
    /// `spec.password` is clear text; the caller hashes it (and in a cluster, patches it).
    #[error("spec.password is not a bcrypt hash")]
    ClearTextPassword,
}

/// Reads an account from a `User`.
///
/// A clear-text password is an error here: the source decides how to hash it.
pub fn account_from_user(user: &User) -> Result<Account, UserError> {
    let username = user.metadata.name.clone().filter(|n| !n.is_empty());
    let username = username.ok_or(UserError::MissingName)?;
    let password = match user.spec.password.as_ref().filter(|p| !p.is_empty()) {
        Some(p) if is_bcrypt_hash(p.expose()) => Some(PasswordHash::from_hash(p.expose())),
        Some(_) => return Err(UserError::ClearTextPassword),
        None => None,
    };
    let state = user
        .status
        .as_ref()
        .and_then(|s| s.state.clone())
        .filter(|s| !s.is_empty());
    let meta = &user.metadata;
    Ok(Account {
        username,
        email: user.spec.email.clone().filter(|e| !e.is_empty()),
        display_name: user.spec.display_name.clone(),
        lang: user.spec.lang.clone().filter(|l| !l.is_empty()),
        groups: user.spec.groups.clone(),
        password,
        state: state.unwrap_or_else(|| STATE_ACTIVE.to_string()),
        origin: ObjectRef {
            namespace: String::new(),
            name: meta.name.clone().unwrap_or_default(),
            created: meta.creation_timestamp.as_ref().map(|t| t.0.as_second()),
            uid: meta.uid.clone(),
            file: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";

    fn user(yaml: &str) -> User {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn kubesphere_user_is_read() {
        let u = user(&format!(
            "apiVersion: iam.kubesphere.io/v1beta1\nkind: User\nmetadata: {{name: admin}}\n\
             spec: {{email: admin@kubesphere.io, password: '{HASH}', groups: [ops], lang: zh}}\n\
             status: {{state: Active}}\n"
        ));
        let a = account_from_user(&u).unwrap();
        assert_eq!(a.username, "admin");
        assert_eq!(a.email.as_deref(), Some("admin@kubesphere.io"));
        assert_eq!(a.groups, ["ops"]);
        assert_eq!(a.name(), "admin");
        assert!(a.is_active());
        assert_eq!(a.password.unwrap().as_str(), HASH);
    }

    /// `kubectl get user admin -o yaml` on a KubeSphere cluster, with fields kube-idp does not
    /// know added in spec and status.
    const KUBESPHERE_DUMP: &str = r#"
apiVersion: iam.kubesphere.io/v1beta1
kind: User
metadata:
  annotations:
    iam.kubesphere.io/globalrole: platform-admin
    iam.kubesphere.io/password-encrypted: "true"
    iam.kubesphere.io/last-password-change-time: "2024-05-01T10:00:00Z"
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"iam.kubesphere.io/v1beta1","kind":"User","metadata":{"name":"admin"}}
  creationTimestamp: "2024-05-01T09:58:12Z"
  finalizers:
  - finalizers.kubesphere.io/users
  generation: 3
  labels:
    iam.kubesphere.io/identify-provider: ""
  managedFields:
  - apiVersion: iam.kubesphere.io/v1beta1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:annotations:
          .: {}
          f:iam.kubesphere.io/globalrole: {}
        f:finalizers:
          .: {}
          v:"finalizers.kubesphere.io/users": {}
      f:spec:
        .: {}
        f:email: {}
        f:password: {}
    manager: ks-controller-manager
    operation: Update
    time: "2024-05-01T10:00:00Z"
  - apiVersion: iam.kubesphere.io/v1beta1
    fieldsType: FieldsV1
    fieldsV1:
      f:status:
        .: {}
        f:lastLoginTime: {}
        f:lastTransitionTime: {}
        f:state: {}
    manager: ks-apiserver
    operation: Update
    subresource: status
    time: "2024-05-02T08:30:00Z"
  name: admin
  resourceVersion: "123456"
  uid: 4a8f6a0e-5c2e-4b59-9a3e-1f0c2d3e4f5a
spec:
  description: The platform administrator
  displayName: Platform Admin
  email: admin@kubesphere.io
  groups:
  - platform-admins
  lang: zh
  password: $2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy
  preferredTheme: dark
status:
  lastLoginTime: "2024-05-02T08:30:00Z"
  lastTransitionTime: "2024-05-01T10:00:00Z"
  reason: ""
  state: Active
  loginFailures: 0
"#;

    #[test]
    fn kubesphere_user_dump_with_metadata_and_unknown_fields_is_read() {
        // The Kubernetes source reads JSON, the directory source YAML: both must accept it.
        let value: serde_json::Value = serde_yaml::from_str(KUBESPHERE_DUMP).unwrap();
        let from_json: User = serde_json::from_value(value).unwrap();
        for u in [user(KUBESPHERE_DUMP), from_json] {
            let a = account_from_user(&u).unwrap();
            assert_eq!(a.username, "admin");
            assert_eq!(a.email.as_deref(), Some("admin@kubesphere.io"));
            assert_eq!(a.name(), "Platform Admin");
            assert_eq!(a.lang.as_deref(), Some("zh"));
            assert_eq!(a.groups, ["platform-admins"]);
            assert_eq!(a.password.as_ref().map(PasswordHash::as_str), Some(HASH));
            assert_eq!(a.state, STATE_ACTIVE);
            assert!(a.is_active());
            assert_eq!(
                a.origin.created,
                Some(1_714_557_492),
                "2024-05-01T09:58:12Z"
            );
            assert_eq!(
                a.origin.uid.as_deref(),
                Some("4a8f6a0e-5c2e-4b59-9a3e-1f0c2d3e4f5a")
            );
            let status = u.status.as_ref().unwrap();
            let time = |t: &Option<String>| t.as_deref().and_then(crate::time::parse_rfc3339);
            assert_eq!(time(&status.last_login_time), Some(1_714_638_600));
            assert_eq!(time(&status.last_transition_time), Some(1_714_557_600));
            assert_eq!(u.metadata.finalizers.as_deref().unwrap().len(), 1);
            assert_eq!(u.metadata.managed_fields.as_ref().unwrap().len(), 2);
            assert_eq!(u.metadata.annotations.as_ref().unwrap().len(), 4);
        }
    }

    #[test]
    fn user_without_status_is_active() {
        let u = user(
            "apiVersion: iam.kubesphere.io/v1beta1\nkind: User\nmetadata: {name: a}\nspec: {}\n",
        );
        assert!(account_from_user(&u).unwrap().is_active());
    }

    #[test]
    fn disabled_user_is_not_active() {
        let u = user(
            "apiVersion: iam.kubesphere.io/v1beta1\nkind: User\nmetadata: {name: a}\nspec: {}\n\
             status: {state: Disabled}\n",
        );
        assert!(!account_from_user(&u).unwrap().is_active());
    }

    #[test]
    fn clear_text_password_is_flagged() {
        let u = user(
            "apiVersion: iam.kubesphere.io/v1beta1\nkind: User\nmetadata: {name: a}\n\
             spec: {password: P@88w0rd}\n",
        );
        assert_eq!(
            account_from_user(&u).unwrap_err(),
            UserError::ClearTextPassword
        );
    }

    #[test]
    fn bcrypt_prefixes_are_recognised() {
        assert!(is_bcrypt_hash(HASH));
        assert!(is_bcrypt_hash(&HASH.replacen("$2a$", "$2y$", 1)));
        assert!(is_bcrypt_hash(&HASH.replacen("$2a$", "$2b$", 1)));
        assert!(!is_bcrypt_hash(&HASH.replacen("$2a$", "$2x$", 1)));
        assert!(!is_bcrypt_hash("$2a$10$short"));
    }

    #[test]
    fn password_is_not_in_debug_output() {
        let u = user(&format!(
            "apiVersion: iam.kubesphere.io/v1beta1\nkind: User\nmetadata: {{name: a}}\n\
             spec: {{password: '{HASH}'}}\n"
        ));
        assert!(!format!("{u:?}").contains(HASH));
        assert!(!format!("{:?}", account_from_user(&u).unwrap()).contains(HASH));
    }
}
