//! Types for values that must never reach a log: client secrets, passwords and tokens.
//!
//! `Debug` prints a placeholder and equality is constant-time, so a stray `{:?}` or `==`
//! cannot leak the value or its length-dependent timing.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A secret string: redacted in `Debug`, compared in constant time.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The clear value, for the few places that must use it (hashing, sending).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a presented value.
    ///
    /// Both sides are hashed first, so the comparison does not depend on the lengths.
    pub fn matches(&self, presented: &str) -> bool {
        let ours = Sha256::digest(self.0.as_bytes());
        let theirs = Sha256::digest(presented.as_bytes());
        ours.ct_eq(&theirs).into()
    }

    /// True when the value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        self.matches(&other.0)
    }
}

impl Eq for SecretString {}

/// Random bytes from the operating system's CSPRNG, encoded as unpadded base64url.
///
/// # Panics
/// Panics only when the operating system cannot provide randomness, in which case no
/// token may be issued at all.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(buf)
}

/// The key under which a bearer value (code, session id, refresh token) is stored.
///
/// Storing only the SHA-256 means a dump of the state store holds nothing usable.
pub fn storage_key(value: &str) -> String {
    digest(value.as_bytes())
}

/// The SHA-256 of `bytes`, base64url without padding: a storage key, or a content version.
pub fn digest(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = SecretString::new("password123");
        assert_eq!(format!("{s:?}"), "SecretString(<redacted>)");
    }

    #[test]
    fn matches_only_the_exact_value() {
        let s = SecretString::new("pa:ss%+");
        assert!(s.matches("pa:ss%+"));
        assert!(!s.matches("pa:ss%"));
        assert!(!s.matches(""));
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token(32);
        let b = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
