"""Mailboxes that sign in with OAuth2 (Google, Microsoft 365): the shop's own OAuth clients, the browser flow that
connects a mailbox (authorization code with PKCE), and fresh access tokens for IMAP and SMTP (XOAUTH2)."""
from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .. import leases
from ..crypto import SecretUnreadable, decrypt, encrypt
from ..errors import ValidationFailed
from ..extensions import db
from ..models import Mailbox, OAuthClient, User, utcnow
from ..models.audit import record
from ..urls import absolute_url
from .mailboxes import create_mailbox, mark_healthy

TOKEN_FIELDS = ("oauth_access_token_enc", "oauth_refresh_token_enc", "oauth_expires_at")
REFRESH_LEASE = timedelta(minutes=2)  # a process that died while refreshing holds the lease no longer than this


@dataclass(frozen=True)
class Provider:
    """A mail provider whose mailboxes sign in with OAuth2."""

    name: str  # the Mailbox.auth_kind and the config prefix OAUTH_<NAME>_
    label: str
    scopes: tuple[str, ...]
    authorize_params: tuple[tuple[str, str], ...]  # what else the authorisation request needs
    console: str  # where the shop creates its OAuth client (for the guide)


PROVIDERS = {
    "google": Provider(
        "google", "Google", ("openid", "email", "https://mail.google.com/"),
        # Offline access gives a refresh token; "consent" gives a new one on every reconnect.
        (("access_type", "offline"), ("prompt", "consent")),
        "https://console.cloud.google.com/apis/credentials"),
    "microsoft": Provider(
        "microsoft", "Microsoft 365",
        ("openid", "email", "offline_access", "https://outlook.office.com/IMAP.AccessAsUser.All",
         "https://outlook.office.com/SMTP.Send"),
        (("prompt", "select_account"),),
        "https://entra.microsoft.com/#view/Microsoft_AAD_RegisteredApps/ApplicationsListBlade"),
}


class TokenUnavailable(Exception):
    """No access token can be had for a mailbox; the message says why, in the shop's words."""


class ConnectRefused(Exception):
    """Connecting a mailbox through the browser flow failed; the message says why, in the shop's words."""


def provider(name: str) -> Provider:
    """The provider called `name`; KeyError for any other name."""
    return PROVIDERS[name]


def endpoint(name: str, kind: str) -> str:
    """A provider's endpoint URL from the configuration (kind: AUTHORIZE, TOKEN, USERINFO), tenant filled in."""
    url = current_app.config.get(f"OAUTH_{name.upper()}_{kind}_URL") or ""
    return url.replace("{tenant}", current_app.config.get("OAUTH_MICROSOFT_TENANT") or "common")


def mail_server(name: str, kind: str) -> tuple[str, int]:
    """The provider's IMAP or SMTP server (kind) from the configuration, as (host, port)."""
    host, _colon, port = str(current_app.config[f"OAUTH_{name.upper()}_{kind}_SERVER"]).rpartition(":")
    return host, int(port)


def redirect_uri() -> str:
    """The address the providers send the browser back to: register it with the OAuth client."""

    return absolute_url("mailbox_oauth.callback")


# --- the shop's OAuth clients ---------------------------------------------------------------------


def oauth_client(name: str) -> OAuthClient | None:
    return db.session.scalar(select(OAuthClient).where(OAuthClient.provider == name))


def save_client(name: str, *, client_id: str, client_secret: str | None,
                actor: User | str | None = None) -> OAuthClient:
    """Store the shop's client id and (encrypted) secret for a provider; an empty secret keeps the stored one.

    Refuses (ValidationFailed) an empty or multi-line client id, and a missing or multi-line secret when none is
    stored yet.
    """
    client = oauth_client(name)
    client_id = (client_id or "").strip()
    client_secret = (client_secret or "").strip()
    errors = {}
    if not client_id or len(client_id) > 255 or not client_id.isprintable() or " " in client_id:
        errors["client_id"] = _("Enter the client ID exactly as the provider shows it.")
    if not client_secret.isprintable() or len(client_secret) > 1024:
        errors["client_secret"] = _("Enter the client secret on one line.")
    elif not client_secret and client is None:
        errors["client_secret"] = _("Enter the client secret.")
    if errors:
        raise ValidationFailed(errors)
    if client is None:
        client = OAuthClient(provider=name)
        db.session.add(client)
    client.client_id = client_id
    if client_secret:
        client.client_secret_enc = encrypt(client_secret)
    record("oauth_client.save", target=client, provider=name, client_id=client_id,
           secret_changed=bool(client_secret), by=actor)
    db.session.flush()
    return client


def _session(client: OAuthClient, **options) -> OAuth2Session:
    """An HTTP client of the provider's token endpoint, signed in as the shop's client (secret in the form, which
    both providers take)."""
    return OAuth2Session(client.client_id, decrypt(client.client_secret_enc),
                         token_endpoint_auth_method="client_secret_post",
                         default_timeout=current_app.config.get("OAUTH_TIMEOUT", 30), **options)


# --- connecting a mailbox in the browser ----------------------------------------------------------


def start_connect(name: str, mailbox: Mailbox | None = None) -> tuple[str, dict]:
    """Begin connecting a new mailbox at provider `name`, or `mailbox` again: returns the provider's authorisation
    URL to send the browser to, and the flow (state, PKCE verifier) to keep in the signed-in session until the
    callback. Refuses (ValidationFailed) while the shop's client for the provider is not set up."""
    settings = provider(name)
    client = oauth_client(name)
    if client is None:
        raise ValidationFailed({"provider": _("Enter the shop's %(provider)s client ID and secret first.",
                                              provider=settings.label)})
    verifier = generate_token(64)  # RFC 7636: 43-128 characters
    session = _session(client, scope=" ".join(settings.scopes), redirect_uri=redirect_uri(),
                       code_challenge_method="S256")
    url, state = session.create_authorization_url(endpoint(name, "AUTHORIZE"), code_verifier=verifier,
                                                  **dict(settings.authorize_params))
    return url, {"provider": name, "state": state, "verifier": verifier,
                 "mailbox_id": mailbox.id if mailbox is not None else None}


def finish_connect(flow: Mapping | None, answer: Mapping[str, str], *, actor: User | str | None = None) -> Mailbox:
    """Finish the flow with the provider's answer (the callback's query): exchange the code (with the PKCE
    verifier) for tokens, read the mailbox's address from the ID token, and store the tokens encrypted on the
    mailbox being reconnected, on the mailbox of that address, or on a new mailbox with the provider's servers.

    Refuses (ConnectRefused) an answer whose state is not the flow's (forged, or from another tab), the
    provider's refusal (consent declined), a failed exchange, a token without an address or a refresh token,
    and a reconnect signed in as another account.
    """
    if not flow or not secrets.compare_digest(str(answer.get("state", "")), str(flow.get("state", ""))):
        raise ConnectRefused(_("This answer from the sign-in page does not belong to a connection started here: "
                               "start connecting again."))
    settings = provider(flow["provider"])
    if answer.get("error"):
        raise ConnectRefused(_("%(provider)s did not give access: %(reason)s", provider=settings.label,
                               reason=answer.get("error_description") or answer["error"]))
    client = oauth_client(settings.name)
    if client is None:
        raise ConnectRefused(_("Enter the shop's %(provider)s client ID and secret first.", provider=settings.label))
    session = _session(client, redirect_uri=redirect_uri())
    try:
        token = session.fetch_token(endpoint(settings.name, "TOKEN"), grant_type="authorization_code",
                                    code=answer.get("code", ""), code_verifier=flow["verifier"])
    except (OAuthError, requests.RequestException, ValueError) as exc:
        raise ConnectRefused(_token_failure(settings, exc)) from exc
    address = _address(settings, client, token)
    if not address:
        raise ConnectRefused(_("%(provider)s did not say which mailbox signed in: allow the \"email\" permission.",
                               provider=settings.label))
    if not token.get("refresh_token"):
        raise ConnectRefused(_("%(provider)s gave no refresh token: remove the app's access in the account's "
                               "security settings and connect again.", provider=settings.label))
    mailbox = _mailbox_for(settings, address, flow.get("mailbox_id"), actor)
    _store_tokens(mailbox, token)
    mark_healthy(mailbox)
    record("mailbox.connect", target=mailbox, provider=settings.name, email=address, by=actor)
    db.session.flush()
    return mailbox


def _mailbox_for(settings: Provider, address: str, mailbox_id: int | None, actor) -> Mailbox:
    """The mailbox being reconnected (which must be `address`), else the one of that address (switched over
    from a password, see _switch_to_oauth), else a new one with the provider's servers."""
    if mailbox_id is not None:
        mailbox = db.session.get(Mailbox, mailbox_id)
        if mailbox is None:
            raise ConnectRefused(_("The mailbox being reconnected no longer exists."))
        if mailbox.auth_kind != settings.name or mailbox.username.lower() != address.lower():
            raise ConnectRefused(_("You signed in as %(address)s, but this mailbox is %(expected)s: sign in with "
                                   "that account.", address=address, expected=mailbox.username))
        return mailbox
    mailbox = db.session.scalar(
        select(Mailbox).where(or_(func.lower(Mailbox.username) == address.lower(),
                                  func.lower(Mailbox.email) == address.lower()))
        .order_by((Mailbox.auth_kind == settings.name).desc(), Mailbox.id).limit(1))
    if mailbox is not None:
        if mailbox.auth_kind != settings.name:
            _switch_to_oauth(mailbox, settings, address, actor)
        return mailbox
    try:
        return create_mailbox(name=address, email=address, username=address, auth_kind=settings.name,
                              **_servers(settings), actor=actor)
    except ValidationFailed as exc:
        raise ConnectRefused(" ".join(exc.fields.values())) from exc


def _servers(settings: Provider) -> dict:
    """The provider's SMTP and IMAP servers as mailbox settings (TLS on 465 and 993, STARTTLS otherwise)."""
    imap_host, imap_port = mail_server(settings.name, "IMAP")
    smtp_host, smtp_port = mail_server(settings.name, "SMTP")
    return {"smtp_host": smtp_host, "smtp_port": smtp_port, "smtp_security": "tls" if smtp_port == 465 else "starttls",
            "imap_host": imap_host, "imap_port": imap_port, "imap_security": "starttls" if imap_port == 143 else "tls"}


def _switch_to_oauth(mailbox: Mailbox, settings: Provider, address: str, actor) -> None:
    """A mailbox of this address that signed in with a password (providers are turning that off) signs in
    through the provider from now on, on its servers; the stored passwords go. Its IMAP cursor stays while the
    IMAP server does, so mail already fetched is not fetched again; receiving stays off if it was."""
    servers = _servers(settings)
    if not mailbox.imap_host:
        servers = {name: value for name, value in servers.items() if not name.startswith("imap_")}
    elif servers["imap_host"] != mailbox.imap_host:
        mailbox.uidvalidity, mailbox.last_uid = None, 0
    for name, value in servers.items():
        setattr(mailbox, name, value)
    mailbox.auth_kind, mailbox.username, mailbox.smtp_username = settings.name, address, None
    mailbox.password_enc = mailbox.smtp_password_enc = None
    record("mailbox.update", target=mailbox, changed=["auth_kind", "username", "password", *servers], by=actor)


def _address(settings: Provider, client: OAuthClient, token: Mapping) -> str | None:
    """The signed-in account's address: from the ID token's claims (Microsoft's preferred_username is the
    sign-in name when the account has no e-mail claim), else from the provider's userinfo endpoint."""
    claims = _id_token_claims(token.get("id_token"))
    audience = claims.get("aud")
    if client.client_id in (audience if isinstance(audience, list) else [audience]):
        address = claims.get("email") or claims.get("preferred_username")
        if address and "@" in address:
            return address
    url = endpoint(settings.name, "USERINFO")
    if not url:
        return None
    try:
        answer = requests.get(url, headers={"Authorization": f"Bearer {token['access_token']}"},
                              timeout=current_app.config.get("OAUTH_TIMEOUT", 30))
        answer.raise_for_status()
        return answer.json().get("email")
    except (requests.RequestException, ValueError):
        return None


def _id_token_claims(id_token: str | None) -> dict:
    """The claims of an ID token. Its signature is not checked: the token came straight from the provider's
    token endpoint over a verified TLS connection, which OpenID Connect Core (3.1.3.7) accepts instead."""
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (AttributeError, IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


# --- access tokens --------------------------------------------------------------------------------


def access_token(mailbox: Mailbox, *, renew: bool = False) -> str:
    """An access token for the OAuth mailbox: the stored one while it has more than OAUTH_REFRESH_MARGIN left
    (and `renew` is not asked because the server refused it), else a new one from the refresh token, stored
    encrypted together with the refresh token the provider rotated in.

    One refresh at a time per mailbox across processes (a lease): a process that waited takes the token the
    other one stored. The lease and the new tokens are written in a session of their own, so the caller's
    transaction is neither committed nor waited for; the caller's mailbox object gets the new values as if
    loaded. Raises TokenUnavailable (refused refresh token, unreachable provider, client not set up).
    """
    if not renew and _usable(mailbox):
        return _decrypted(mailbox.oauth_access_token_enc)
    refused = mailbox.oauth_access_token_enc if renew else None
    name, owner = f"oauth-refresh:{mailbox.id}", leases.new_owner()
    with Session(db.engine) as side:
        deadline = time.monotonic() + current_app.config.get("OAUTH_TIMEOUT", 30)
        while not leases.acquire(name, owner, REFRESH_LEASE, session=side):
            if time.monotonic() > deadline:
                raise TokenUnavailable(_("Another process is renewing this mailbox's access: try again."))
            time.sleep(0.1)
        try:
            row = side.get(Mailbox, mailbox.id)
            if row.oauth_access_token_enc == refused or not _usable(row):  # nobody renewed it meanwhile
                _refresh(row, side)
                side.commit()
            for field in TOKEN_FIELDS:
                set_committed_value(mailbox, field, getattr(row, field))
        finally:
            side.rollback()
            leases.release(name, owner, session=side)
    return _decrypted(mailbox.oauth_access_token_enc)


def _usable(mailbox: Mailbox) -> bool:
    margin = timedelta(seconds=current_app.config.get("OAUTH_REFRESH_MARGIN", 300))
    return bool(mailbox.oauth_access_token_enc and mailbox.oauth_expires_at
                and mailbox.oauth_expires_at - margin > utcnow())


def _refresh(mailbox: Mailbox, session: Session) -> None:
    """Ask the provider for new tokens with the mailbox's refresh token and put them on the mailbox (uncommitted)."""
    settings = PROVIDERS.get(mailbox.auth_kind)
    if settings is None:
        raise TokenUnavailable(_("This mailbox signs in with a password, not with OAuth."))
    client = session.scalar(select(OAuthClient).where(OAuthClient.provider == settings.name))
    if client is None:
        raise TokenUnavailable(_("The shop's %(provider)s client is not set up (Settings → Mailboxes).",
                                 provider=settings.label))
    if not mailbox.oauth_refresh_token_enc:
        raise TokenUnavailable(_("The mailbox has no refresh token: reconnect it."))
    try:
        token = _session(client).refresh_token(endpoint(settings.name, "TOKEN"),
                                               refresh_token=_decrypted(mailbox.oauth_refresh_token_enc))
    except SecretUnreadable as exc:
        raise TokenUnavailable(_("The stored OAuth secrets cannot be read (the app's secret key changed): enter "
                                 "the client secret again and reconnect the mailbox.")) from exc
    except (OAuthError, requests.RequestException, ValueError) as exc:
        raise TokenUnavailable(_token_failure(settings, exc, refreshing=True)) from exc
    _store_tokens(mailbox, token)


def _store_tokens(mailbox: Mailbox, token: Mapping) -> None:
    """Keep the tokens encrypted; a refresh token only when the provider sent one (rotated), else the old one."""
    mailbox.oauth_access_token_enc = encrypt(token["access_token"])
    if token.get("refresh_token"):
        mailbox.oauth_refresh_token_enc = encrypt(token["refresh_token"])
    lifetime = int(token.get("expires_in") or 3600)
    mailbox.oauth_expires_at = utcnow() + timedelta(seconds=lifetime)


def _decrypted(secret: str) -> str:
    try:
        return decrypt(secret)
    except SecretUnreadable as exc:
        raise TokenUnavailable(_("The stored OAuth tokens cannot be read (the app's secret key changed): "
                                 "reconnect the mailbox.")) from exc


# The token endpoint's errors (RFC 6749 5.2) in the shop's words.
REFUSALS = {
    "invalid_grant": _l("%(provider)s refused the refresh token: the consent was revoked or has expired; reconnect "
                        "the mailbox."),
    "invalid_client": _l("%(provider)s refused the shop's OAuth client: check its client ID and secret in Settings → "
                         "Mailboxes."),
    "unauthorized_client": _l("%(provider)s does not allow the shop's OAuth client to do this: check its settings "
                              "at the provider."),
    "invalid_scope": _l("%(provider)s refused the mail permissions: allow IMAP and SMTP for the OAuth client."),
}


def _token_failure(settings: Provider, exc: Exception, *, refreshing: bool = False) -> str:
    """What went wrong at the provider's token endpoint, in words."""
    if isinstance(exc, OAuthError):
        if exc.error == "invalid_grant" and not refreshing:
            return _("%(provider)s refused the sign-in code (it expired or was already used): connect again.",
                     provider=settings.label)
        if exc.error in REFUSALS:
            return str(REFUSALS[exc.error]) % {"provider": settings.label}
        return _("%(provider)s refused to give access: %(reason)s", provider=settings.label,
                 reason=" ".join(filter(None, (exc.error, exc.description))))
    if isinstance(exc, requests.Timeout):
        return _("%(provider)s's sign-in server did not answer in time.", provider=settings.label)
    return _("Could not reach %(provider)s's sign-in server: %(reason)s", provider=settings.label, reason=exc)
