//! Configuration: command-line flags, `KUBE_IDP_*` environment variables and a YAML file,
//! in that order of precedence, resolved into one validated [`Config`].
//!
//! Validation happens once, at start, and reports every problem at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;
use url::Url;

use crate::oidc::Settings;

/// The default issuer URL.
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";
/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default namespace of client Secrets.
pub const DEFAULT_NAMESPACE: &str = "kubesphere-system";
/// The default name of the Secret holding the signing keys in a cluster.
pub const DEFAULT_KEYS_SECRET: &str = "kube-idp-signing-keys";

/// The settings of `kube-idp serve`, as flags and environment variables. Every field is
/// optional here so that a config file can fill what was not given.
#[derive(Debug, Default, Clone, Args)]
pub struct ServeArgs {
    /// A YAML file with any of these settings (camelCase keys); flags and environment win.
    #[arg(long, env = "KUBE_IDP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The issuer URL that relying parties see [default: http://127.0.0.1:8080].
    #[arg(long, env = "KUBE_IDP_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// The address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "KUBE_IDP_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Read clients and users from this folder of manifests (no cluster needed).
    #[arg(long, env = "KUBE_IDP_MANIFESTS", value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// Read clients and users from the Kubernetes API (in-cluster config or KUBECONFIG).
    #[arg(long, env = "KUBE_IDP_KUBERNETES", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub kubernetes: Option<bool>,
    /// The namespace of client Secrets [default: kubesphere-system].
    #[arg(long, env = "KUBE_IDP_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,
    /// Where directory mode keeps its signing keys, so restarts keep tokens valid.
    #[arg(long, env = "KUBE_IDP_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// A Redis URL (`redis://[:password@]host:port[/db]`, `rediss://` for TLS) for state
    /// shared by replicas; without it, state is in memory.
    #[arg(long, env = "KUBE_IDP_REDIS", value_name = "URL")]
    pub redis: Option<String>,
    /// With --kubernetes: the Secret, in the clients' namespace, that holds the signing keys
    /// [default: kube-idp-signing-keys].
    #[arg(long, env = "KUBE_IDP_KEYS_SECRET", value_name = "NAME")]
    pub keys_secret: Option<String>,
    /// Serve `/metrics` on this address only, e.g. 0.0.0.0:9090, out of the ingress's reach
    /// [default: on the main listener].
    #[arg(long, env = "KUBE_IDP_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "KUBE_IDP_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "KUBE_IDP_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Access- and ID-token lifetime in seconds, unless a client sets its own [default: 7200].
    #[arg(long, env = "KUBE_IDP_ACCESS_TOKEN_LIFETIME", value_name = "SECONDS")]
    pub access_token_lifetime: Option<String>,
    /// Longest browser session in seconds [default: 86400].
    #[arg(long, env = "KUBE_IDP_SESSION_MAX_AGE", value_name = "SECONDS")]
    pub session_max_age: Option<String>,
    /// A session, and a refresh token without offline_access, ends after this many idle
    /// seconds [default: 7200].
    #[arg(long, env = "KUBE_IDP_SESSION_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub session_idle_timeout: Option<String>,
    /// Seconds between signing-key rotations [default: 2592000, 30 days].
    #[arg(long, env = "KUBE_IDP_KEY_ROTATION_PERIOD", value_name = "SECONDS")]
    pub key_rotation_period: Option<String>,
    /// Proxies (CIDRs, comma-separated) whose `X-Forwarded-For` names the client, e.g. the
    /// ingress controller's pod network [default: none: the peer address is the client].
    #[arg(
        long,
        env = "KUBE_IDP_TRUSTED_PROXIES",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// Log format: `text` or `json` [default: text].
    #[arg(long, env = "KUBE_IDP_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// The same settings as a YAML file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileConfig {
    issuer: Option<String>,
    listen: Option<String>,
    manifests: Option<PathBuf>,
    kubernetes: Option<bool>,
    namespace: Option<String>,
    state_dir: Option<PathBuf>,
    redis: Option<String>,
    keys_secret: Option<String>,
    metrics_listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    access_token_lifetime: Option<u64>,
    session_max_age: Option<u64>,
    session_idle_timeout: Option<u64>,
    key_rotation_period: Option<u64>,
    trusted_proxies: Option<Vec<String>>,
    log_format: Option<String>,
}

/// Where clients and users come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceConfig {
    /// A folder of manifests.
    Directory(PathBuf),
    /// The Kubernetes API; client Secrets in this namespace.
    Kubernetes {
        /// The namespace of client Secrets.
        namespace: String,
    },
}

/// A certificate and key to serve HTTPS with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Protocol settings, including the issuer.
    pub settings: Settings,
    /// The listen address.
    pub listen: SocketAddr,
    /// The source of clients and users.
    pub source: SourceConfig,
    /// Where keys persist in directory mode without Redis; `None` keeps them in memory.
    pub state_dir: Option<PathBuf>,
    /// The Redis URL of the shared state store; `None` keeps state in memory.
    pub redis: Option<String>,
    /// The Secret holding the signing keys in `--kubernetes` mode.
    pub keys_secret: String,
    /// Serve HTTPS directly.
    pub tls: Option<TlsConfig>,
    /// Where `/metrics` is served when not on the main listener.
    pub metrics_listen: Option<SocketAddr>,
    /// The log format.
    pub log_format: LogFormat,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// The configuration could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// One or more settings are invalid; every problem is listed.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Merges flags and environment over the config file, then validates.
    pub fn resolve(args: ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let mut problems = Vec::new();
        let issuer = args
            .issuer
            .or(file.issuer)
            .unwrap_or_else(|| DEFAULT_ISSUER.into());
        let issuer = check_issuer(&issuer, &mut problems);
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen.parse::<SocketAddr>().map_err(|e| {
            problems.push(format!(
                "listen: {listen:?} is not an address such as 127.0.0.1:8080 ({e})"
            ))
        });
        let namespace = args
            .namespace
            .or(file.namespace)
            .unwrap_or_else(|| DEFAULT_NAMESPACE.into());
        let source = check_source(
            args.manifests.or(file.manifests),
            args.kubernetes.or(file.kubernetes).unwrap_or(false),
            namespace,
            &mut problems,
        );
        let redis = check_redis(args.redis.or(file.redis), &mut problems);
        let keys_secret = args
            .keys_secret
            .or(file.keys_secret)
            .unwrap_or_else(|| DEFAULT_KEYS_SECRET.into());
        if !is_dns_subdomain(&keys_secret) {
            problems.push(format!("keysSecret: {keys_secret:?} is not a Secret name"));
        }
        let metrics_listen = args.metrics_listen.or(file.metrics_listen);
        let metrics_listen = metrics_listen.and_then(|addr| {
            addr.parse::<SocketAddr>()
                .map_err(|e| {
                    problems.push(format!("metricsListen: {addr:?} is not an address ({e})"))
                })
                .ok()
        });
        let tls = check_tls(
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
            &mut problems,
        );
        let log_format = check_log_format(args.log_format.or(file.log_format), &mut problems);
        let proxies = args
            .trusted_proxies
            .or(file.trusted_proxies)
            .unwrap_or_default();
        let trusted_proxies = check_proxies(&proxies, &mut problems);
        let mut seconds = |name: &str, arg: Option<String>, file: Option<u64>| match arg {
            Some(text) => match text.trim().parse::<u64>() {
                Ok(v) => Some(v),
                Err(_) => {
                    problems.push(format!("{name}: {text:?} is not a number of seconds"));
                    None
                }
            },
            None => file,
        };
        let lifetime = seconds(
            "accessTokenLifetime",
            args.access_token_lifetime,
            file.access_token_lifetime,
        );
        let max_age = seconds("sessionMaxAge", args.session_max_age, file.session_max_age);
        let idle = seconds(
            "sessionIdleTimeout",
            args.session_idle_timeout,
            file.session_idle_timeout,
        );
        let rotation = seconds(
            "keyRotationPeriod",
            args.key_rotation_period,
            file.key_rotation_period,
        );
        let mut settings = Settings::new(&issuer);
        let mut number = |name: &str, value: Option<u64>, target: &mut u64, min: u64| match value {
            Some(v) if v < min => {
                problems.push(format!("{name}: {v} is below the minimum of {min}"))
            }
            Some(v) => *target = v,
            None => {}
        };
        number(
            "accessTokenLifetime",
            lifetime,
            &mut settings.access_token_lifetime,
            60,
        );
        number("sessionMaxAge", max_age, &mut settings.session_max_age, 60);
        number(
            "sessionIdleTimeout",
            idle,
            &mut settings.session_idle_timeout,
            60,
        );
        number(
            "keyRotationPeriod",
            rotation,
            &mut settings.key_rotation_period,
            3600,
        );

        match (listen, source, problems.is_empty()) {
            (Ok(listen), Some(source), true) => Ok(Self {
                settings,
                listen,
                source,
                state_dir: args.state_dir.or(file.state_dir),
                redis,
                keys_secret,
                tls,
                metrics_listen,
                log_format,
                trusted_proxies,
            }),
            _ => Err(ConfigError::Invalid(problems)),
        }
    }

    /// True when cookies must be `Secure` (the issuer is https).
    pub fn secure_cookies(&self) -> bool {
        self.settings.issuer.starts_with("https://")
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let error = |reason: String| ConfigError::File {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_yaml::from_str(&text).map_err(|e| error(e.to_string()))
}

fn check_issuer(issuer: &str, problems: &mut Vec<String>) -> String {
    match Url::parse(issuer) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            problems.push(format!("issuer: {issuer:?} must be an http or https URL"))
        }
        Ok(url) if url.query().is_some() || url.fragment().is_some() => problems.push(format!(
            "issuer: {issuer:?} must not have a query or fragment"
        )),
        Ok(url) if url.host().is_none() => problems.push(format!("issuer: {issuer:?} has no host")),
        Ok(_) => {}
        Err(e) => problems.push(format!("issuer: {issuer:?} is not a URL ({e})")),
    }
    issuer.trim_end_matches('/').to_string()
}

fn check_source(
    manifests: Option<PathBuf>,
    kubernetes: bool,
    namespace: String,
    problems: &mut Vec<String>,
) -> Option<SourceConfig> {
    match (manifests, kubernetes) {
        (Some(_), true) => {
            problems.push("choose one source: --manifests DIR or --kubernetes, not both".into());
            None
        }
        (Some(dir), false) if dir.is_dir() => Some(SourceConfig::Directory(dir)),
        (Some(dir), false) => {
            problems.push(format!("manifests: {} is not a directory", dir.display()));
            None
        }
        (None, true) if is_dns_label(&namespace) => Some(SourceConfig::Kubernetes { namespace }),
        (None, true) => {
            problems.push(format!(
                "namespace: {namespace:?} is not a namespace name (lower-case letters, digits \
                 and '-', at most 63)"
            ));
            None
        }
        (None, false) => {
            problems.push("choose a source: --manifests DIR or --kubernetes".into());
            None
        }
    }
}

/// True when `name` is an RFC 1123 label, as namespace names are.
fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-';
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(inner)
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// True when `name` is an RFC 1123 subdomain, as Secret names are.
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// A Redis URL as the client library reads it; the URL is never echoed (it may hold a
/// password).
fn check_redis(url: Option<String>, problems: &mut Vec<String>) -> Option<String> {
    let url = url?;
    match redis::parse_redis_url(&url) {
        Some(parsed) if matches!(parsed.scheme(), "redis" | "rediss") => Some(url),
        _ => {
            problems.push("redis: not a URL such as redis://redis:6379 or rediss://...".into());
            None
        }
    }
}

fn check_tls(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    problems: &mut Vec<String>,
) -> Option<TlsConfig> {
    match (cert, key) {
        (Some(cert), Some(key)) => {
            for path in [&cert, &key] {
                if !path.is_file() {
                    problems.push(format!("tls: {} is not a file", path.display()));
                }
            }
            Some(TlsConfig { cert, key })
        }
        (None, None) => None,
        _ => {
            problems.push("tls: --tls-cert and --tls-key go together".into());
            None
        }
    }
}

fn check_proxies(cidrs: &[String], problems: &mut Vec<String>) -> Vec<ipnet::IpNet> {
    let parse = |c: &String| {
        let c = c.trim();
        c.parse::<ipnet::IpNet>()
            .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| problems_entry(c))
    };
    let (good, bad): (Vec<_>, Vec<_>) = cidrs.iter().map(parse).partition(Result::is_ok);
    problems.extend(bad.into_iter().filter_map(Result::err));
    good.into_iter().filter_map(Result::ok).collect()
}

fn problems_entry(cidr: &str) -> String {
    format!("trustedProxies: {cidr:?} is not an address or CIDR such as 10.0.0.0/8")
}

fn check_log_format(value: Option<String>, problems: &mut Vec<String>) -> LogFormat {
    match value.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            problems.push(format!("logFormat: {other:?} is not text or json"));
            LogFormat::Text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_at_once() {
        let args = ServeArgs {
            issuer: Some("ftp://x".into()),
            listen: Some("nowhere".into()),
            log_format: Some("xml".into()),
            session_max_age: Some("abc".into()),
            access_token_lifetime: Some("5".into()),
            ..Default::default()
        };
        let ConfigError::Invalid(problems) = Config::resolve(args).unwrap_err() else {
            panic!("expected Invalid");
        };
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert!(problems
            .iter()
            .any(|p| p.starts_with("sessionMaxAge: \"abc\"")));
        assert!(problems
            .iter()
            .any(|p| p.starts_with("accessTokenLifetime: 5 is below")));
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        let manifests = dir.path().display();
        std::fs::write(
            &file,
            format!("issuer: https://idp.example\nlisten: 0.0.0.0:9000\nmanifests: {manifests}\n"),
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file),
            listen: Some("127.0.0.1:7000".into()),
            ..Default::default()
        };
        let config = Config::resolve(args).unwrap();
        assert_eq!(config.settings.issuer, "https://idp.example");
        assert_eq!(config.listen.port(), 7000);
        assert!(config.secure_cookies());
    }

    #[test]
    fn kubernetes_source_defaults_to_the_kubesphere_namespace() {
        let args = ServeArgs {
            kubernetes: Some(true),
            ..Default::default()
        };
        let config = Config::resolve(args).unwrap();
        let namespace = DEFAULT_NAMESPACE.to_string();
        assert_eq!(config.source, SourceConfig::Kubernetes { namespace });
    }

    #[test]
    fn invalid_namespace_is_an_error() {
        let args = ServeArgs {
            kubernetes: Some(true),
            namespace: Some("Kube_System".into()),
            ..Default::default()
        };
        assert!(matches!(
            Config::resolve(args),
            Err(ConfigError::Invalid(p)) if p.len() == 1 && p[0].starts_with("namespace")
        ));
    }

    #[test]
    fn unknown_file_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, "isuer: https://typo.example\n").unwrap();
        let args = ServeArgs {
            config: Some(file),
            ..Default::default()
        };
        assert!(matches!(
            Config::resolve(args),
            Err(ConfigError::File { .. })
        ));
    }
}
