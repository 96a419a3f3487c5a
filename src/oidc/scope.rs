//! Scopes (RFC 6749 §3.3): parsing, and narrowing to what a client may be granted.

use crate::model::Client;

/// The scope every OpenID request must carry.
pub const OPENID: &str = "openid";
/// The scope that makes a refresh token outlive the browser session.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Splits a scope string into distinct tokens, in order; `None` when a token has characters
/// RFC 6749 §3.3 forbids.
pub fn parse(text: &str) -> Option<Vec<String>> {
    let mut scopes: Vec<String> = Vec::new();
    for token in text.split(' ').filter(|t| !t.is_empty()) {
        let valid = token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !valid {
            return None;
        }
        if !scopes.iter().any(|s| s == token) {
            scopes.push(token.to_string());
        }
    }
    Some(scopes)
}

/// The requested scopes the client may be granted; others are dropped, not fatal.
pub fn restrict(requested: &[String], client: &Client) -> Vec<String> {
    requested
        .iter()
        .filter(|s| client.allows_scope(s))
        .cloned()
        .collect()
}

/// Joins scopes for the wire.
pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

/// True when `scopes` holds `scope`.
pub fn has(scopes: &[String], scope: &str) -> bool {
    scopes.iter().any(|s| s == scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_extra_spaces_collapse() {
        assert_eq!(parse("openid  email openid").unwrap(), ["openid", "email"]);
    }

    #[test]
    fn forbidden_characters_are_refused() {
        assert!(parse("openid \"quoted\"").is_none());
        assert!(parse("back\\slash").is_none());
    }
}
