//! Request parameters as sent: form-urlencoded pairs, where a repeated name is an error
//! (RFC 6749 §3.1 and §3.2: parameters MUST NOT be included more than once).

use std::collections::HashMap;

use super::error::OAuthError;

/// The parameters of one request, with repeated names remembered.
#[derive(Debug, Default, Clone)]
pub struct Params {
    values: HashMap<String, String>,
    repeated: Vec<String>,
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` text (a query string or a form body).
    /// Empty values count as absent (RFC 6749 §3.1).
    pub fn parse(text: &str) -> Self {
        let mut params = Self::default();
        for (name, value) in form_urlencoded::parse(text.as_bytes()) {
            if value.is_empty() {
                continue;
            }
            if params
                .values
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                params.repeated.push(name.into_owned());
            }
        }
        params
    }

    /// Builds parameters from pairs, for tests and internal callers.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let text = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        Self::parse(&text)
    }

    /// The value of `name`, if sent once or more.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// True when `name` was sent.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// True when `name` was sent more than once.
    pub fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|r| r == name)
    }

    /// The first repeated name, if any.
    pub fn first_repeated(&self) -> Option<&str> {
        self.repeated.first().map(String::as_str)
    }

    /// `invalid_request` when a name was repeated. The description is fixed: request data
    /// never reaches `error_description` (RFC 6749 §5.2 limits its characters).
    pub fn reject_repeated(&self) -> Result<(), OAuthError> {
        match self.first_repeated() {
            Some(name) => {
                tracing::debug!(parameter = %name.escape_debug(), "repeated parameter");
                Err(OAuthError::invalid_request("a parameter is repeated"))
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameter_is_detected() {
        let p = Params::parse("a=1&b=2&a=3");
        assert!(p.is_repeated("a"));
        assert!(!p.is_repeated("b"));
        assert_eq!(p.first_repeated(), Some("a"));
    }

    #[test]
    fn empty_value_is_absent() {
        let p = Params::parse("state=&scope=openid");
        assert!(!p.has("state"));
        assert_eq!(p.get("scope"), Some("openid"));
    }

    #[test]
    fn plus_and_percent_decode() {
        let p = Params::parse("scope=openid+email&x=%3A%25");
        assert_eq!(p.get("scope"), Some("openid email"));
        assert_eq!(p.get("x"), Some(":%"));
    }
}
