//! Redirect URIs: exact matching (RFC 9700 §4.1.3) with the loopback exception for native
//! clients (RFC 8252 §7.3), and building the redirect back to the client.

use url::Url;

/// True when `requested` is one of `registered`: the same string, or for an `http` loopback
/// URI, the same URI on any port.
pub fn redirect_uri_matches(registered: &[String], requested: &str) -> bool {
    registered
        .iter()
        .any(|r| r == requested || loopback_match(r, requested))
}

/// RFC 8252 §7.3: for an `http` loopback URI only the port may differ. The comparison is on
/// the strings as sent, with the port cut out of each; nothing is normalised.
fn loopback_match(registered: &str, requested: &str) -> bool {
    let (Some((reg_host, reg_rest)), Some((req_host, req_rest))) =
        (split_port(registered), split_port(requested))
    else {
        return false;
    };
    is_loopback_host(reg_host) && reg_host == req_host && reg_rest == req_rest
}

/// Splits `http://HOST[:PORT]REST` into `HOST` and `REST`; `None` when it is not of that form
/// or the port is not a number from 1 to 65535.
fn split_port(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.ends_with(']') => {
            let valid = port.parse::<u16>().is_ok_and(|p| p > 0)
                && port.bytes().all(|b| b.is_ascii_digit());
            valid.then_some(host)?
        }
        _ => authority,
    };
    Some((host, tail))
}

fn is_loopback_host(host: &str) -> bool {
    let ipv4 = host
        .parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback());
    ipv4 || host == "[::1]" || host == "localhost"
}

/// `base` with `params` appended to its query, keeping any query it already has
/// (RFC 6749 §3.1.2).
pub fn with_params(base: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(base) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        Err(_) => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(uris: &[&str]) -> Vec<String> {
        uris.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_uri_matches() {
        let r = reg(&["https://harbor.example/c/oidc/callback"]);
        assert!(redirect_uri_matches(
            &r,
            "https://harbor.example/c/oidc/callback"
        ));
    }

    #[test]
    fn near_misses_do_not_match() {
        let r = reg(&["https://harbor.example/c/oidc/callback"]);
        for attempt in [
            "https://harbor.example/c/oidc/callback/",
            "https://harbor.example/c/oidc/callback?x=1",
            "https://harbor.example/c/oidc/callback#x",
            "https://HARBOR.example/c/oidc/callback",
            "https://harbor.example:443/c/oidc/callback",
            "https://harbor.example.evil/c/oidc/callback",
            "http://harbor.example/c/oidc/callback",
            "https://harbor.example/c/oidc/call",
        ] {
            assert!(!redirect_uri_matches(&r, attempt), "{attempt}");
        }
    }

    #[test]
    fn loopback_port_may_vary() {
        let r = reg(&["http://127.0.0.1:8000/callback", "http://localhost:8000"]);
        assert!(redirect_uri_matches(&r, "http://127.0.0.1:49152/callback"));
        assert!(redirect_uri_matches(&r, "http://localhost:18000"));
        assert!(!redirect_uri_matches(&r, "http://127.0.0.1:49152/other"));
        assert!(!redirect_uri_matches(&r, "http://localhost:18000/x"));
    }

    #[test]
    fn loopback_uris_are_compared_as_sent() {
        let r = reg(&["http://127.0.0.1:5556/callback", "http://[::1]/cb"]);
        assert!(redirect_uri_matches(&r, "http://[::1]:9000/cb"));
        for attempt in [
            "http://127.1:5556/callback",
            "HTTP://127.0.0.1:5556/callback",
            "http:127.0.0.1:5556/callback",
            "http://0x7f000001:5556/callback",
            "http://127.0.0.1:0/callback",
            "http://127.0.0.1:99999/callback",
            "http://127.0.0.1:5556/x/%2e%2e/callback",
            "http://127.0.0.1:5556/call%09back",
            "http://user@127.0.0.1:5556/callback",
            "http://127.0.0.1:+5556/callback",
        ] {
            assert!(!redirect_uri_matches(&r, attempt), "{attempt}");
        }
    }

    #[test]
    fn loopback_exception_is_http_only() {
        let r = reg(&["https://127.0.0.1:8443/cb"]);
        assert!(!redirect_uri_matches(&r, "https://127.0.0.1:9443/cb"));
    }

    #[test]
    fn existing_query_is_kept() {
        let url = with_params(
            "https://a.example/cb?x=1",
            &[("code", "c"), ("state", "s t")],
        );
        assert_eq!(url, "https://a.example/cb?x=1&code=c&state=s+t");
    }
}
