//! OAuth 2.0 and OpenID Connect error codes, as one type that every endpoint returns.
//!
//! The HTTP layer renders them in exactly one place; nothing here knows about HTTP beyond
//! the status each code calls for.

use std::fmt;

/// An error code from RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1 and OIDC Core §3.1.2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is missing a parameter, repeats one, or is otherwise malformed.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// The code or refresh token is invalid, expired, revoked or another client's.
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// The response type is not supported.
    UnsupportedResponseType,
    /// The requested scope is invalid or exceeds what was granted.
    InvalidScope,
    /// The user or the client's policy refused the request.
    AccessDenied,
    /// `prompt=none` and the user is not signed in.
    LoginRequired,
    /// `prompt=none` and consent has not been given.
    ConsentRequired,
    /// The `request` parameter is not supported.
    RequestNotSupported,
    /// The `request_uri` parameter is not supported.
    RequestUriNotSupported,
    /// The bearer token is missing, expired or not an access token.
    InvalidToken,
    /// The server failed; details are in the log.
    ServerError,
    /// A dependency (the state store) is unavailable.
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidToken => "invalid_token",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// The HTTP status for this code when it is returned directly (not by redirect).
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken => 401,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// How a 401 asks for credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// `WWW-Authenticate: Basic` (client authentication).
    Basic,
    /// `WWW-Authenticate: Bearer` (RFC 6750).
    Bearer,
}

/// An OAuth error with an optional description for the client. The description never
/// names a user, a secret or why exactly a credential failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The code.
    pub code: ErrorCode,
    /// `error_description`.
    pub description: Option<String>,
    /// The challenge to send with a 401.
    pub challenge: Option<Challenge>,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: Some(description.into()),
            challenge: None,
        }
    }

    /// An error without a description.
    pub fn bare(code: ErrorCode) -> Self {
        Self {
            code,
            description: None,
            challenge: None,
        }
    }

    /// Adds a `WWW-Authenticate` challenge.
    pub fn with_challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// `invalid_request` with a description.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// The one answer for every bad code or refresh token.
    pub fn invalid_grant() -> Self {
        Self::new(
            ErrorCode::InvalidGrant,
            "the grant is invalid, expired or revoked",
        )
    }

    /// The one answer for every failed client authentication.
    pub fn invalid_client() -> Self {
        Self::new(ErrorCode::InvalidClient, "client authentication failed")
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{}: {d}", self.code.as_str()),
            None => f.write_str(self.code.as_str()),
        }
    }
}

impl std::error::Error for OAuthError {}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "state store failed");
        match e {
            crate::store::StoreError::Unavailable(_) => Self::new(
                ErrorCode::TemporarilyUnavailable,
                "the state store is unavailable; try again shortly",
            ),
            crate::store::StoreError::Corrupt { .. } => Self::bare(ErrorCode::ServerError),
        }
    }
}

impl From<crate::keys::KeyError> for OAuthError {
    fn from(e: crate::keys::KeyError) -> Self {
        tracing::error!(error = %e, "signing failed");
        match e {
            crate::keys::KeyError::NotLoaded | crate::keys::KeyError::Storage(_) => Self::new(
                ErrorCode::TemporarilyUnavailable,
                "signing keys are not available yet; try again shortly",
            ),
            _ => Self::bare(ErrorCode::ServerError),
        }
    }
}
