"""A relying party from another ecosystem: Python's authlib signs in to kube-idp through the
authorization code flow with PKCE, verifies the ID token, refreshes, reads userinfo and logs
out. Run by tests/rp_python.rs against a kube-idp it started on loopback.

Usage: rp_authlib.py ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI LOGOUT_URI USER PASSWORD
"""
import html.parser
import sys
import warnings
from urllib.parse import parse_qs, urlparse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

warnings.simplefilter("ignore")
from authlib.jose import JsonWebKey, JsonWebToken  # noqa: E402  (deprecated, still shipped)


class FormFields(html.parser.HTMLParser):
    """Collects the action and hidden inputs of the page's form."""

    def __init__(self):
        super().__init__()
        self.action, self.fields = None, {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.action = attrs.get("action")
        if tag == "input" and attrs.get("type") == "hidden":
            self.fields[attrs["name"]] = attrs.get("value", "")


def check(condition, message):
    if not condition:
        raise SystemExit(f"FAIL: {message}")


def browser_login(browser, issuer, url, user, password):
    """Plays the browser: opens the authorize URL, posts the login form, returns Location."""
    page = browser.get(url, allow_redirects=False)
    check(page.status_code == 200, f"login form expected, got {page.status_code}")
    form = FormFields()
    form.feed(page.text)
    check(form.action and form.action.endswith("/oauth/login"), "the page has the login form")
    fields = dict(form.fields, username=user, password=password)
    back = browser.post(issuer + form.action, data=fields, allow_redirects=False)
    check(back.status_code == 303, f"303 after the login POST, got {back.status_code}")
    return back.headers["Location"]


def main():
    issuer, client_id, secret, redirect_uri, logout_uri, user, password = sys.argv[1:8]
    meta = requests.get(issuer + "/.well-known/openid-configuration").json()
    check(meta["issuer"] == issuer, "discovery names the issuer")
    rp = OAuth2Session(client_id, secret, scope="openid profile email offline_access",
                       redirect_uri=redirect_uri, code_challenge_method="S256",
                       token_endpoint_auth_method="client_secret_basic")
    code_verifier = generate_token(48)
    url, state = rp.create_authorization_url(meta["authorization_endpoint"], nonce="n-0S6",
                                             code_verifier=code_verifier)
    browser = requests.Session()
    location = browser_login(browser, issuer, url, user, password)
    query = parse_qs(urlparse(location).query)
    check(query["state"] == [state], "state comes back")
    check(query["iss"] == [issuer], "iss comes back (RFC 9207)")

    token = rp.fetch_token(meta["token_endpoint"], authorization_response=location,
                           code_verifier=code_verifier)
    keys = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"]).json())
    jwt = JsonWebToken(["RS256"])
    options = {"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": client_id},
               "nonce": {"essential": True, "value": "n-0S6"}}
    claims = jwt.decode(token["id_token"], keys, claims_options=options)
    claims.validate()
    check(claims["sub"] == user, "the ID token names the user")
    check(claims.get("email_verified") is True, "email_verified is a boolean")

    info = rp.get(meta["userinfo_endpoint"]).json()
    check(info["sub"] == claims["sub"], "userinfo agrees with the ID token")

    refreshed = rp.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    check(refreshed["refresh_token"] != token["refresh_token"], "refresh tokens rotate")
    fresh = jwt.decode(refreshed["id_token"], keys,
                       claims_options={"aud": {"essential": True, "value": client_id}})
    fresh.validate()
    check(fresh["sub"] == user, "a refresh returns a fresh ID token")

    logout = browser.get(meta["end_session_endpoint"], allow_redirects=False, params={
        "id_token_hint": refreshed["id_token"], "post_logout_redirect_uri": logout_uri,
        "state": "bye"})
    check(logout.status_code == 302, f"logout redirects, got {logout.status_code}")
    check(logout.headers["Location"] == logout_uri + "?state=bye", "back to the registered URI")
    again = browser.get(url, allow_redirects=False)
    check(again.status_code == 200 and "/oauth/login" in again.text, "the session is gone")
    print("OK authlib completed the flow, a refresh and a logout")


if __name__ == "__main__":
    main()
