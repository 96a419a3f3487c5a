//! The OAuth client Secret: a `configuration.yaml` in a labelled, typed Secret.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use serde::de::DeserializeOwned;
use serde_yaml::Value;

use crate::secret::SecretString;

/// The label every client Secret carries.
pub const CLIENT_LABEL_KEY: &str = "config.kubesphere.io/type";
/// The value of [`CLIENT_LABEL_KEY`].
pub const CLIENT_LABEL_VALUE: &str = "oauthclient";
/// The Secret type every client Secret has.
pub const CLIENT_SECRET_TYPE: &str = "config.kubesphere.io/oauthclient";
/// The data key holding the client's configuration.
pub const CONFIGURATION_KEY: &str = "configuration.yaml";
/// Scopes a client may be granted when its Secret lists no `scopeRestrictions`.
///
/// `offline_access` is deliberately absent: a refresh token that outlives the browser
/// session must be allowed explicitly.
pub const DEFAULT_SCOPES: &[&str] = &["openid", "profile", "email", "groups"];
/// The shortest access-token lifetime or inactivity timeout a client may set, in seconds.
const MIN_TOKEN_SECONDS: i64 = 600;

/// Where an object came from, for logs, events and the oldest-wins rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectRef {
    /// Namespace, empty for cluster-scoped objects and files.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.creationTimestamp` in seconds, when known.
    pub created: Option<i64>,
    /// `metadata.uid`, when known.
    pub uid: Option<String>,
    /// The manifest file it was read from, in directory mode.
    pub file: Option<String>,
}

impl std::fmt::Display for ObjectRef {
    /// `namespace/name`, `name` when cluster-scoped, and `file: name` for a manifest.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.namespace.as_str()) {
            (Some(file), _) => write!(f, "{file}: {}", self.name),
            (None, "") => f.write_str(&self.name),
            (None, namespace) => write!(f, "{namespace}/{}", self.name),
        }
    }
}

/// Whether and how a user approves a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GrantMethod {
    /// No consent page.
    #[default]
    Auto,
    /// A consent page, remembered per user and client.
    Prompt,
    /// Every authorization is refused with `access_denied`.
    Deny,
}

/// A validated relying party.
#[derive(Debug, Clone)]
pub struct Client {
    /// `name`: the client_id.
    pub id: String,
    /// `secret`; `None` for a public client, which must use PKCE.
    pub secret: Option<SecretString>,
    /// `grantMethod`.
    pub grant_method: GrantMethod,
    /// `scopeRestrictions`, or [`DEFAULT_SCOPES`] when absent.
    pub scope_restrictions: Vec<String>,
    /// `redirectURIs`, matched exactly (loopback ports excepted).
    pub redirect_uris: Vec<String>,
    /// `postLogoutRedirectURIs`, matched exactly.
    pub post_logout_redirect_uris: Vec<String>,
    /// `trusted`: may use the resource-owner password grant.
    pub trusted: bool,
    /// `accessTokenMaxAgeSeconds`; `None` means the server default.
    pub access_token_max_age: Option<u32>,
    /// `accessTokenInactivityTimeoutSeconds`; `None` means the server default.
    pub access_token_inactivity_timeout: Option<u32>,
    /// The Secret it was read from.
    pub origin: ObjectRef,
}

impl Client {
    /// True when the client has a secret and must authenticate with it.
    pub fn is_confidential(&self) -> bool {
        self.secret.is_some()
    }

    /// True when `scope` may be granted to this client.
    pub fn allows_scope(&self, scope: &str) -> bool {
        self.scope_restrictions.iter().any(|s| s == scope)
    }
}

/// Why a Secret is not a usable client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The Secret lacks the `config.kubesphere.io/type: oauthclient` label.
    #[error("missing label {CLIENT_LABEL_KEY}={CLIENT_LABEL_VALUE}")]
    MissingLabel,
    /// The Secret's type is not `config.kubesphere.io/oauthclient`.
    #[error("secret type is {0:?}, expected {CLIENT_SECRET_TYPE:?}")]
    WrongType(String),
    /// Neither `stringData` nor `data` has `configuration.yaml`.
    #[error("no {CONFIGURATION_KEY} in stringData or data")]
    MissingConfiguration,
    /// `configuration.yaml` is not UTF-8 or not a YAML mapping.
    #[error("{CONFIGURATION_KEY} does not parse: {0}")]
    Yaml(String),
    /// The configuration parses but breaks the contract; every problem is listed.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// Reads a client from a Secret, or says why it cannot.
///
/// Unknown configuration fields are returned as warnings rather than errors. Field names
/// match case-insensitively, as they do for KubeSphere's Go decoder.
pub fn client_from_secret(secret: &Secret) -> Result<(Client, Vec<String>), ClientError> {
    check_label_and_type(secret)?;
    let text = configuration_text(secret)?;
    let fields = parse_fields(&text)?;
    let origin = object_ref(secret);
    build_client(fields, origin)
}

fn check_label_and_type(secret: &Secret) -> Result<(), ClientError> {
    let labels = secret.metadata.labels.as_ref();
    let labelled = labels
        .and_then(|l| l.get(CLIENT_LABEL_KEY))
        .map(String::as_str);
    if labelled != Some(CLIENT_LABEL_VALUE) {
        return Err(ClientError::MissingLabel);
    }
    let kind = secret.type_.as_deref().unwrap_or("");
    if kind != CLIENT_SECRET_TYPE {
        return Err(ClientError::WrongType(kind.to_string()));
    }
    Ok(())
}

fn configuration_text(secret: &Secret) -> Result<String, ClientError> {
    if let Some(text) = secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(CONFIGURATION_KEY))
    {
        return Ok(text.clone());
    }
    let bytes = secret.data.as_ref().and_then(|d| d.get(CONFIGURATION_KEY));
    let bytes = bytes.ok_or(ClientError::MissingConfiguration)?;
    String::from_utf8(bytes.0.clone()).map_err(|_| ClientError::Yaml("not UTF-8".into()))
}

fn object_ref(secret: &Secret) -> ObjectRef {
    let meta = &secret.metadata;
    ObjectRef {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        created: meta.creation_timestamp.as_ref().map(|t| t.0.as_second()),
        uid: meta.uid.clone(),
        file: None,
    }
}

/// The configuration's top-level fields, keyed by lower-cased name.
type Fields = BTreeMap<String, (String, Value)>;

fn parse_fields(text: &str) -> Result<Fields, ClientError> {
    let value: Value = serde_yaml::from_str(text).map_err(|e| ClientError::Yaml(e.to_string()))?;
    let Value::Mapping(map) = value else {
        return Err(ClientError::Yaml("expected a mapping of fields".into()));
    };
    let mut fields = Fields::new();
    for (key, value) in map {
        let Value::String(key) = key else {
            return Err(ClientError::Yaml("field names must be strings".into()));
        };
        fields.insert(key.to_ascii_lowercase(), (key, value));
    }
    Ok(fields)
}

/// Collects typed fields and every problem found along the way.
struct Reader {
    fields: Fields,
    problems: Vec<String>,
}

impl Reader {
    fn take<T: DeserializeOwned>(&mut self, name: &str) -> Option<T> {
        let (original, value) = self.fields.remove(&name.to_ascii_lowercase())?;
        if value.is_null() {
            return None;
        }
        match serde_yaml::from_value(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(format!("{original}: {e}"));
                None
            }
        }
    }
}

fn build_client(fields: Fields, origin: ObjectRef) -> Result<(Client, Vec<String>), ClientError> {
    let mut r = Reader {
        fields,
        problems: Vec::new(),
    };
    let id: String = r.take("name").unwrap_or_default();
    let secret: Option<String> = r.take("secret");
    let grant: Option<String> = r.take("grantMethod");
    let scopes: Option<Vec<String>> = r.take("scopeRestrictions");
    let redirects: Vec<String> = r.take("redirectURIs").unwrap_or_default();
    let logout_redirects: Vec<String> = r.take("postLogoutRedirectURIs").unwrap_or_default();
    let trusted: bool = r.take("trusted").unwrap_or(false);
    let max_age: Option<i64> = r.take("accessTokenMaxAgeSeconds");
    let inactivity: Option<i64> = r.take("accessTokenInactivityTimeoutSeconds");
    let warnings = r
        .fields
        .values()
        .map(|(k, _)| format!("unknown field {k:?} ignored"))
        .collect();
    let mut problems = r.problems;

    if id.trim().is_empty() {
        problems.push("name: required".into());
    }
    let grant_method = parse_grant_method(grant.as_deref(), &mut problems);
    for uri in redirects.iter().chain(&logout_redirects) {
        check_redirect_uri(uri, &mut problems);
    }
    let access_token_max_age = token_seconds("accessTokenMaxAgeSeconds", max_age, &mut problems);
    let access_token_inactivity_timeout = token_seconds(
        "accessTokenInactivityTimeoutSeconds",
        inactivity,
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(ClientError::Invalid(problems));
    }

    let client = Client {
        id,
        secret: secret.filter(|s| !s.is_empty()).map(SecretString::new),
        grant_method,
        scope_restrictions: scope_restrictions(scopes),
        redirect_uris: redirects,
        post_logout_redirect_uris: logout_redirects,
        trusted,
        access_token_max_age,
        access_token_inactivity_timeout,
        origin,
    };
    Ok((client, warnings))
}

fn parse_grant_method(value: Option<&str>, problems: &mut Vec<String>) -> GrantMethod {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("auto") => GrantMethod::Auto,
        Some("prompt") => GrantMethod::Prompt,
        Some("deny") => GrantMethod::Deny,
        Some(other) => {
            problems.push(format!(
                "grantMethod: {other:?} is not auto, prompt or deny"
            ));
            GrantMethod::Auto
        }
    }
}

fn scope_restrictions(scopes: Option<Vec<String>>) -> Vec<String> {
    match scopes {
        Some(list) if !list.is_empty() => list,
        _ => DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
    }
}

/// RFC 6749 §3.1.2: an absolute URI without a fragment.
fn check_redirect_uri(uri: &str, problems: &mut Vec<String>) {
    match url::Url::parse(uri) {
        Ok(u) if u.fragment().is_some() => {
            problems.push(format!("redirect URI {uri:?} must not have a fragment"))
        }
        Ok(u) if u.cannot_be_a_base() && matches!(u.scheme(), "http" | "https") => {
            problems.push(format!("redirect URI {uri:?} is not a valid URL"))
        }
        Ok(_) => {}
        Err(e) => problems.push(format!("redirect URI {uri:?} is not absolute: {e}")),
    }
}

fn token_seconds(field: &str, value: Option<i64>, problems: &mut Vec<String>) -> Option<u32> {
    match value {
        None | Some(0) => None,
        Some(v) if (MIN_TOKEN_SECONDS..=i64::from(u32::MAX)).contains(&v) => Some(v as u32),
        Some(v) => {
            problems.push(format!(
                "{field}: {v} must be 0 or at least {MIN_TOKEN_SECONDS}"
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_object_is_named_by_its_file_in_directory_mode_and_by_namespace_in_a_cluster() {
        let mut origin = ObjectRef {
            namespace: "kubesphere-system".into(),
            name: "oauthclient-harbor".into(),
            ..Default::default()
        };
        assert_eq!(origin.to_string(), "kubesphere-system/oauthclient-harbor");
        origin.file = Some("deploy/examples/harbor-client.yaml".into());
        assert_eq!(
            origin.to_string(),
            "deploy/examples/harbor-client.yaml: oauthclient-harbor"
        );
    }

    use super::*;
    use k8s_openapi::ByteString;

    fn secret(config: &str) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some("oauthclient-harbor".into());
        s.metadata.namespace = Some("kubesphere-system".into());
        s.metadata.labels = Some([(CLIENT_LABEL_KEY.into(), CLIENT_LABEL_VALUE.into())].into());
        s.type_ = Some(CLIENT_SECRET_TYPE.into());
        s.string_data = Some([(CONFIGURATION_KEY.into(), config.into())].into());
        s
    }

    const HARBOR: &str = "name: harbor\nsecret: password123\ngrantMethod: auto\n\
        scopeRestrictions: [openid, email, profile]\n\
        redirectURIs: [https://harbor.172.31.19.17.nip.io/c/oidc/callback]\n";

    #[test]
    fn seed_harbor_client_is_read() {
        let (c, warnings) = client_from_secret(&secret(HARBOR)).unwrap();
        assert_eq!(c.id, "harbor");
        assert!(c.secret.as_ref().unwrap().matches("password123"));
        assert_eq!(c.grant_method, GrantMethod::Auto);
        assert_eq!(c.scope_restrictions, ["openid", "email", "profile"]);
        assert_eq!(
            c.redirect_uris,
            ["https://harbor.172.31.19.17.nip.io/c/oidc/callback"]
        );
        assert_eq!(c.origin.name, "oauthclient-harbor");
        assert!(warnings.is_empty());
    }

    #[test]
    fn base64_data_is_read_when_string_data_is_absent() {
        let mut s = secret(HARBOR);
        s.string_data = None;
        s.data = Some(
            [(
                CONFIGURATION_KEY.into(),
                ByteString(HARBOR.as_bytes().to_vec()),
            )]
            .into(),
        );
        assert_eq!(client_from_secret(&s).unwrap().0.id, "harbor");
    }

    #[test]
    fn secret_without_type_is_rejected() {
        let mut s = secret(HARBOR);
        s.type_ = None;
        assert_eq!(
            client_from_secret(&s).unwrap_err(),
            ClientError::WrongType(String::new())
        );
    }

    #[test]
    fn secret_without_label_is_rejected() {
        let mut s = secret(HARBOR);
        s.metadata.labels = None;
        assert_eq!(
            client_from_secret(&s).unwrap_err(),
            ClientError::MissingLabel
        );
    }

    #[test]
    fn broken_yaml_is_reported() {
        let err = client_from_secret(&secret("name: [harbor")).unwrap_err();
        assert!(matches!(err, ClientError::Yaml(_)), "{err:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let config = "secret: x\ngrantMethod: sometimes\naccessTokenMaxAgeSeconds: 60\n\
            redirectURIs: ['/relative', 'https://a.example/cb#frag']\n";
        let ClientError::Invalid(problems) = client_from_secret(&secret(config)).unwrap_err()
        else {
            panic!("expected Invalid");
        };
        assert_eq!(problems.len(), 5, "{problems:?}");
    }

    #[test]
    fn unknown_fields_are_warnings() {
        let config = format!("{HARBOR}colour: blue\n");
        let (_, warnings) = client_from_secret(&secret(&config)).unwrap();
        assert_eq!(warnings, ["unknown field \"colour\" ignored"]);
    }

    #[test]
    fn field_names_match_case_insensitively_like_go() {
        let config = "Name: grafana\nredirectUris: ['https://g.example/cb']\n";
        let (c, warnings) = client_from_secret(&secret(config)).unwrap();
        assert_eq!(c.id, "grafana");
        assert_eq!(c.redirect_uris, ["https://g.example/cb"]);
        assert!(warnings.is_empty());
    }

    #[test]
    fn missing_scope_restrictions_default_without_offline_access() {
        let (c, _) = client_from_secret(&secret("name: x\n")).unwrap();
        assert!(c.allows_scope("openid"));
        assert!(!c.allows_scope("offline_access"));
    }

    #[test]
    fn empty_secret_makes_a_public_client() {
        let (c, _) = client_from_secret(&secret("name: kubelogin\nsecret: ''\n")).unwrap();
        assert!(!c.is_confidential());
    }
}
