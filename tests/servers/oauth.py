"""A small OAuth2 authorisation server for tests, on loopback: authorize (auto-approved, PKCE S256 required), token
(authorization_code and refresh_token grants, rotating refresh tokens), revoke, introspection (RFC 7662) and
userinfo, with opaque tokens; Dovecot and the SMTP fixture check XOAUTH2 logins against its introspection."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from .smtp import HOST


@dataclass
class Grant:
    """One account's consent to one client: every token issued under it dies when it is revoked."""

    user: str
    client_id: str
    scope: str
    revoked: bool = False


@dataclass
class OAuthServer:
    """What a test sees of the server: its URLs, the clients it knows, who signs in next, and what happened."""

    url: str = ""
    clients: dict[str, str] = field(default_factory=dict)  # client id → secret
    next_user: str = "shop@shop.example"  # the account that "signs in" at the next authorize step
    access_lifetime: int = 3600  # seconds
    rotate_refresh_tokens: bool = True
    email_claim: bool = True  # False: the ID token names the account by preferred_username only (Microsoft)
    authorize_requests: list[dict] = field(default_factory=list)
    token_requests: list[dict] = field(default_factory=list)  # the form of every token request
    _codes: dict[str, dict] = field(default_factory=dict)
    _access: dict[str, tuple[Grant, float]] = field(default_factory=dict)
    _refresh: dict[str, Grant] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def authorize_url(self) -> str:
        return self.url + "/authorize"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def revoke_url(self) -> str:
        return self.url + "/revoke"

    @property
    def introspection_url(self) -> str:
        return self.url + "/introspect"

    @property
    def userinfo_url(self) -> str:
        return self.url + "/userinfo"

    def add_client(self, client_id: str = "shop-client", secret: str = "shop-client-secret") -> tuple[str, str]:
        self.clients[client_id] = secret
        return client_id, secret

    def reset(self) -> None:
        with self._lock:
            self.clients.clear()
            self.authorize_requests.clear()
            self.token_requests.clear()
            self._codes.clear()
            self._access.clear()
            self._refresh.clear()
            self.next_user, self.access_lifetime, self.rotate_refresh_tokens = "shop@shop.example", 3600, True
            self.email_claim = True

    def revoke_user(self, user: str) -> None:
        """The account holder withdraws the consent (as in Google's or Microsoft's account page)."""
        with self._lock:
            for grant, _expires in self._access.values():
                if grant.user == user:
                    grant.revoked = True
            for grant in self._refresh.values():
                if grant.user == user:
                    grant.revoked = True

    def active_user(self, token: str) -> str | None:
        """The account an access token speaks for, or None when it is unknown, expired or revoked."""
        with self._lock:
            grant, expires = self._access.get(token, (None, 0.0))
        if grant is None or grant.revoked or expires < time.time():
            return None
        return grant.user

    def issue_code(self, **values) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = values
        return code

    def stored_refresh_tokens(self) -> set[str]:
        with self._lock:
            return {token for token, grant in self._refresh.items() if not grant.revoked}

    # --- the HTTP side -----------------------------------------------------------------------------------

    def wsgi(self, environ, start_response):
        request = Request(environ)
        handler = {"/authorize": self._authorize, "/token": self._token, "/revoke": self._revoke,
                   "/introspect": self._introspect, "/userinfo": self._userinfo}.get(request.path)
        response = handler(request) if handler else Response("not found", 404)
        return response(environ, start_response)

    def _authorize(self, request: Request) -> Response:
        args = request.args.to_dict()
        self.authorize_requests.append(args)
        redirect_uri = args.get("redirect_uri", "")
        if args.get("client_id") not in self.clients or not redirect_uri:
            return Response("unknown client or no redirect_uri", 400)
        if args.get("response_type") != "code" or args.get("code_challenge_method") != "S256" \
                or not args.get("code_challenge"):
            return _redirect(redirect_uri, error="invalid_request", state=args.get("state", ""),
                             error_description="PKCE with S256 is required")
        code = self.issue_code(client_id=args["client_id"], redirect_uri=redirect_uri, user=self.next_user,
                               scope=args.get("scope", ""), challenge=args["code_challenge"])
        return _redirect(redirect_uri, code=code, state=args.get("state", ""))

    def _client(self, request: Request) -> str | None:
        """The client that authenticated (HTTP Basic or client_secret_post), or None."""
        if request.authorization and request.authorization.type == "basic":
            client_id, secret = request.authorization.username, request.authorization.password
        else:
            client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
        return client_id if client_id in self.clients and self.clients[client_id] == secret else None

    def _token(self, request: Request) -> Response:
        form = request.form.to_dict()
        self.token_requests.append(form)
        client_id = self._client(request)
        if client_id is None:
            return _error("invalid_client", "client authentication failed", 401)
        if form.get("grant_type") == "authorization_code":
            with self._lock:
                issued = self._codes.pop(form.get("code", ""), None)
            if issued is None or issued["client_id"] != client_id or issued["redirect_uri"] != form.get("redirect_uri"):
                return _error("invalid_grant", "unknown or used code, or another redirect_uri")
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if challenge != issued["challenge"]:
                return _error("invalid_grant", "PKCE verification failed")
            grant = Grant(issued["user"], client_id, issued["scope"])
            return self._tokens(grant, id_token=True)
        if form.get("grant_type") == "refresh_token":
            with self._lock:
                grant = self._refresh.get(form.get("refresh_token", ""))
                if grant is None or grant.revoked or grant.client_id != client_id:
                    return _error("invalid_grant", "AADSTS70000: the refresh token was revoked or has expired")
                if self.rotate_refresh_tokens:
                    del self._refresh[form["refresh_token"]]
            return self._tokens(grant, refresh=self.rotate_refresh_tokens)
        return _error("unsupported_grant_type", form.get("grant_type", ""))

    def _tokens(self, grant: Grant, *, refresh: bool = True, id_token: bool = False) -> Response:
        access = "at-" + secrets.token_urlsafe(24)
        body = {"access_token": access, "token_type": "Bearer", "expires_in": self.access_lifetime,
                "scope": grant.scope}
        with self._lock:
            self._access[access] = (grant, time.time() + self.access_lifetime)
            if refresh:
                body["refresh_token"] = "rt-" + secrets.token_urlsafe(24)
                self._refresh[body["refresh_token"]] = grant
        if id_token:
            now = int(time.time())
            claims = {"iss": self.url, "aud": grant.client_id, "sub": "sub-" + grant.user, "iat": now,
                      "exp": now + 3600, ("email" if self.email_claim else "preferred_username"): grant.user}
            body["id_token"] = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(self.clients[grant.client_id]))
        return Response(json.dumps(body), 200, mimetype="application/json")

    def _revoke(self, request: Request) -> Response:
        token = request.form.get("token", "")
        with self._lock:
            grant = self._refresh.get(token) or self._access.get(token, (None, 0))[0]
            if grant is not None:
                grant.revoked = True
        return Response("", 200)

    def _introspect(self, request: Request) -> Response:
        token = request.form.get("token", "")
        user = self.active_user(token)
        if user is None:
            return Response(json.dumps({"active": False}), 200, mimetype="application/json")
        return Response(json.dumps({"active": True, "username": user, "token_type": "Bearer"}), 200,
                        mimetype="application/json")

    def _userinfo(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        user = self.active_user(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
        if user is None:
            return Response(json.dumps({"error": "invalid_token"}), 401, mimetype="application/json")
        return Response(json.dumps({"sub": "sub-" + user, "email": user}), 200, mimetype="application/json")


def _redirect(uri: str, **params) -> Response:
    separator = "&" if "?" in uri else "?"
    return Response("", 302, headers={"Location": uri + separator + urlencode(params)})


def _error(error: str, description: str, status: int = 400) -> Response:
    return Response(json.dumps({"error": error, "error_description": description}), status,
                    mimetype="application/json")


@pytest.fixture(scope="session")
def oauth_provider():
    """The OAuth server for the whole run (Dovecot's configuration names its introspection URL)."""
    server = OAuthServer()
    http = make_server(HOST, 0, server.wsgi, threaded=True)
    server.url = f"http://{HOST}:{http.server_port}"
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, name="oauth", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=5)


@pytest.fixture
def oauth_server(oauth_provider) -> OAuthServer:
    """The run's OAuth server, forgetting every client and token of the tests before."""
    oauth_provider.reset()
    return oauth_provider


@pytest.fixture
def google(app, oauth_server, oauth_dovecot, smtp_server):
    """The test OAuth server stands in for Google (endpoints and mail servers), with the shop's client saved;
    the mail servers check its tokens."""
    smtp_server.introspection_url = oauth_server.introspection_url
    app.config.update(
        OAUTH_GOOGLE_AUTHORIZE_URL=oauth_server.authorize_url, OAUTH_GOOGLE_TOKEN_URL=oauth_server.token_url,
        OAUTH_GOOGLE_USERINFO_URL=oauth_server.userinfo_url,
        OAUTH_GOOGLE_IMAP_SERVER=f"{oauth_dovecot.host}:{oauth_dovecot.tls_port}",
        OAUTH_GOOGLE_SMTP_SERVER=f"{smtp_server.host}:{smtp_server.port}",
        IMAP_CA_FILE=oauth_dovecot.cafile, SMTP_CA_FILE=smtp_server.cafile,
    )
    from app.extensions import db
    from app.accounts.oauth import save_client

    client_id, secret = oauth_server.add_client()
    save_client("google", client_id=client_id, client_secret=secret, actor="test")
    db.session.commit()
    return oauth_server


@pytest.fixture
def gmail(google, oauth_dovecot):
    """The Gmail account that signs in at the provider (it also has a password, for the test to put mail in)."""
    from .imap import ImapAccount

    account = ImapAccount(oauth_dovecot, oauth_dovecot.add_user())
    google.next_user = account.user
    return account
