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

fn loopback_match(registered: &str, requested: &str) -> bool {
    let (Ok(reg), Ok(req)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    let loopback = |u: &Url| {
        u.scheme() == "http"
            && match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                None => false,
            }
    };
    loopback(&reg)
        && loopback(&req)
        && reg.host() == req.host()
        && reg.username() == req.username()
        && req.password().is_none()
        && reg.path() == req.path()
        && reg.query() == req.query()
        && req.fragment().is_none()
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
