"""Gmail and Microsoft 365 mailboxes signing in with OAuth2: connecting through the provider's page (state, PKCE),
XOAUTH2 against a real Dovecot and SMTP server, refreshing and rotating tokens, and refusals told in words."""
from __future__ import annotations

import base64
import hashlib
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select, text

from app.crypto import encrypt
from app.extensions import db
from app import leases
from app.inbound.poll import poll_mailbox
from app.models import AuditEvent, Mailbox, OAuthClient, utcnow
from app.accounts.oauth import TokenUnavailable, access_token, endpoint, save_client
from helpers import csrf_token
from inbound_helpers import plain_mail


def connect_through_the_provider(client, path="/settings/mailboxes/connect/google"):
    """Press "Connect", follow the provider's redirect (it approves at once) and come back to the callback."""
    response = client.get(path)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    at_provider = requests.get(response.location, allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


def test_owner_connects_a_gmail_mailbox_that_then_receives_and_sends_with_xoauth2(owner_client, google, gmail,
                                                                                  smtp_server):
    answer = connect_through_the_provider(owner_client)

    mailbox = db.session.scalars(select(Mailbox)).one()
    assert answer.status_code == 302 and answer.location.endswith(f"/settings/mailboxes/{mailbox.id}")
    assert (mailbox.auth_kind, mailbox.email, mailbox.username) == ("google", gmail.user, gmail.user)
    assert mailbox.password_enc is None and mailbox.oauth_refresh_token_enc
    # Received mail comes in over IMAP with XOAUTH2, checked by Dovecot at the provider's introspection.
    gmail.append(plain_mail(subject="Hello over OAuth"))
    result = poll_mailbox(mailbox)
    assert result.error is None and result.counts["fetched"] == 1
    assert "method=XOAUTH2" in gmail.server.log()
    # Sending signs in with AUTH XOAUTH2.
    from app.channels.email import EmailChannel

    ok, outcome = EmailChannel().test_connection(mailbox)
    assert ok, outcome
    assert smtp_server.oauth_logins == [gmail.user]


def test_the_flow_uses_pkce_and_asks_for_the_mail_scopes(owner_client, google, gmail):
    connect_through_the_provider(owner_client)

    asked = google.authorize_requests[0]
    assert asked["code_challenge_method"] == "S256"
    assert set(asked["scope"].split()) == {"openid", "email", "https://mail.google.com/"}
    assert asked["access_type"] == "offline"
    exchanged = google.token_requests[0]
    verifier = exchanged["code_verifier"]
    assert 43 <= len(verifier) <= 128
    assert base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode() \
        == asked["code_challenge"]
    assert exchanged["redirect_uri"] == "http://shop.example/settings/mailboxes/oauth/callback"


def test_an_answer_with_another_state_is_refused_and_nothing_is_exchanged(owner_client, google, gmail):
    response = owner_client.get("/settings/mailboxes/connect/google")
    at_provider = requests.get(response.location, allow_redirects=False, timeout=10)
    code = parse_qs(urlsplit(at_provider.headers["Location"]).query)["code"][0]

    answer = owner_client.get(f"/settings/mailboxes/oauth/callback?code={code}&state=forged", follow_redirects=True)

    assert "does not belong to a connection started here" in answer.get_data(as_text=True)
    assert google.token_requests == []
    assert db.session.scalars(select(Mailbox)).all() == []


def test_a_declined_consent_is_told_in_words(owner_client, google):
    response = owner_client.get("/settings/mailboxes/connect/google")
    state = parse_qs(urlsplit(response.location).query)["state"][0]

    answer = owner_client.get(f"/settings/mailboxes/oauth/callback?error=access_denied&state={state}",
                              follow_redirects=True)

    assert "Google did not give access: access_denied" in answer.get_data(as_text=True)
    assert db.session.scalars(select(Mailbox)).all() == []


def test_reconnecting_as_another_account_is_refused(owner_client, google, gmail):
    connect_through_the_provider(owner_client)
    mailbox = db.session.scalars(select(Mailbox)).one()
    google.next_user = "someone.else@shop.example"

    answer = connect_through_the_provider(owner_client, path=f"/settings/mailboxes/{mailbox.id}/reconnect")

    assert answer.status_code == 302
    page = owner_client.get(answer.location).get_data(as_text=True)
    assert "You signed in as someone.else@shop.example, but this mailbox is" in page
    assert db.session.scalars(select(Mailbox)).all() == [mailbox]


def test_an_access_token_is_renewed_before_it_expires_and_the_rotated_refresh_token_is_stored_encrypted(
        owner_client, google, gmail):
    connect_through_the_provider(owner_client)
    mailbox = db.session.scalars(select(Mailbox)).one()
    first_refresh = google.stored_refresh_tokens()
    assert access_token(mailbox) and len(google.token_requests) == 1  # still fresh: no request

    # Four minutes left is within the renewal margin (five).
    mailbox.oauth_expires_at = utcnow() + timedelta(minutes=4)
    db.session.commit()
    token = access_token(mailbox)

    assert [request["grant_type"] for request in google.token_requests] == ["authorization_code", "refresh_token"]
    assert google.active_user(token) == gmail.user
    rotated = google.stored_refresh_tokens()
    assert len(rotated) == 1 and rotated != first_refresh
    db.session.expire_all()
    row = db.session.execute(text("SELECT oauth_access_token_enc, oauth_refresh_token_enc FROM mailboxes")).one()
    assert token not in row[0] and rotated.pop() not in row[1]  # only ciphertext in the database
    assert mailbox.oauth_expires_at > utcnow() + timedelta(minutes=50)


def test_a_token_the_server_refuses_is_renewed_once_and_the_login_goes_through(owner_client, google, gmail):
    connect_through_the_provider(owner_client)
    mailbox = db.session.scalars(select(Mailbox)).one()
    google._access.clear()  # the provider forgot the access token (cut short), the refresh token still works

    result = poll_mailbox(mailbox)

    assert result.error is None
    assert google.token_requests[-1]["grant_type"] == "refresh_token"


@pytest.mark.app_config(MAILBOX_BROKEN_AFTER=2)
def test_revoked_consent_is_told_in_words_and_breaks_the_mailbox_after_repeated_failures(owner_client, google,
                                                                                          gmail):
    connect_through_the_provider(owner_client)
    mailbox = db.session.scalars(select(Mailbox)).one()
    google.revoke_user(gmail.user)

    first = poll_mailbox(mailbox)

    assert "Google refused the refresh token: the consent was revoked or has expired; reconnect" in first.error
    assert mailbox.consecutive_failures == 1 and mailbox.broken_at is None
    poll_mailbox(mailbox)
    assert mailbox.broken_at is not None
    page = owner_client.get(f"/settings/mailboxes/{mailbox.id}").get_data(as_text=True)
    assert "the consent was revoked" in page and "Reconnect" in page

    # Reconnecting signs it in again and ends the broken state.
    connect_through_the_provider(owner_client, path=f"/settings/mailboxes/{mailbox.id}/reconnect")
    db.session.refresh(mailbox)
    assert mailbox.broken_at is None and mailbox.consecutive_failures == 0
    assert poll_mailbox(mailbox).error is None


def test_owner_saves_the_shops_client_with_the_secret_encrypted(owner_client):
    page = owner_client.get("/settings/mailboxes/oauth").get_data(as_text=True)
    assert "http://shop.example/settings/mailboxes/oauth/callback" in page
    assert "https://outlook.office.com/IMAP.AccessAsUser.All" in page
    token = csrf_token(owner_client, "/settings/mailboxes/oauth")

    response = owner_client.post("/settings/mailboxes/oauth/microsoft", data={
        "microsoft-csrf_token": token, "microsoft-client_id": "11111111-2222", "microsoft-client_secret": "s3cr3t~"})

    assert response.status_code == 302
    client = db.session.scalars(select(OAuthClient)).one()
    assert (client.provider, client.client_id) == ("microsoft", "11111111-2222")
    assert "s3cr3t~" not in client.client_secret_enc
    assert "s3cr3t~" not in owner_client.get("/settings/mailboxes/oauth").get_data(as_text=True)
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "oauth_client.save")).one()


def test_the_client_settings_refuse_an_empty_secret_the_first_time(owner_client):
    token = csrf_token(owner_client, "/settings/mailboxes/oauth")
    response = owner_client.post("/settings/mailboxes/oauth/google", data={
        "google-csrf_token": token, "google-client_id": "abc.apps.googleusercontent.com"})
    assert response.status_code == 422
    assert "Enter the client secret." in response.get_data(as_text=True)
    assert db.session.scalars(select(OAuthClient)).all() == []


def test_the_client_settings_and_connecting_are_for_owners_only_and_saving_needs_csrf(client, staff_client, owner):
    assert staff_client.get("/settings/mailboxes/oauth").status_code == 403
    assert staff_client.get("/settings/mailboxes/connect/google").status_code == 403
    staff_client.post("/logout", data={"csrf_token": csrf_token(staff_client, "/")})
    from helpers import sign_in

    sign_in(client, owner)
    response = client.post("/settings/mailboxes/oauth/google",
                           data={"google-client_id": "x", "google-client_secret": "y"})
    assert response.status_code in (400, 422)
    assert db.session.scalars(select(OAuthClient)).all() == []


def test_connecting_before_the_client_is_set_up_says_so(owner_client):
    answer = owner_client.get("/settings/mailboxes/connect/microsoft", follow_redirects=True)
    assert "Enter the shop&#39;s Microsoft 365 client ID and secret first." in answer.get_data(as_text=True)


def test_a_microsoft_365_mailbox_signs_in_through_the_shops_tenant_and_is_named_by_its_sign_in_name(
        app, owner_client, oauth_server):
    app.config.update(OAUTH_MICROSOFT_TENANT="contoso.onmicrosoft.com",
                      OAUTH_MICROSOFT_AUTHORIZE_URL=oauth_server.url + "/authorize?tenant={tenant}",
                      OAUTH_MICROSOFT_TOKEN_URL=oauth_server.url + "/token?tenant={tenant}")
    client_id, secret = oauth_server.add_client("ms-client", "ms-client-secret-value")
    save_client("microsoft", client_id=client_id, client_secret=secret, actor="test")
    db.session.commit()
    oauth_server.next_user, oauth_server.email_claim = "serwis@contoso.example", False

    connect_through_the_provider(owner_client, path="/settings/mailboxes/connect/microsoft")

    mailbox = db.session.scalars(select(Mailbox)).one()
    assert (mailbox.auth_kind, mailbox.email) == ("microsoft", "serwis@contoso.example")
    assert (mailbox.imap_host, mailbox.imap_port, mailbox.imap_security) == ("outlook.office365.com", 993, "tls")
    assert (mailbox.smtp_host, mailbox.smtp_port, mailbox.smtp_security) == ("smtp.office365.com", 587, "starttls")
    asked = oauth_server.authorize_requests[0]
    assert asked["tenant"] == "contoso.onmicrosoft.com"
    assert {"offline_access", "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://outlook.office.com/SMTP.Send"} <= set(asked["scope"].split())


def test_microsofts_endpoints_default_to_the_common_tenant(app):
    assert endpoint("microsoft", "TOKEN") == "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    assert endpoint("google", "AUTHORIZE") == "https://accounts.google.com/o/oauth2/v2/auth"


def test_an_oauth_mailbox_is_renamed_on_its_page_without_any_password(owner_client, google, gmail):
    connect_through_the_provider(owner_client)
    mailbox = db.session.scalars(select(Mailbox)).one()
    path = f"/settings/mailboxes/{mailbox.id}"
    page = owner_client.get(path).get_data(as_text=True)
    assert 'name="password"' not in page and "Signs in through Google as" in page

    response = owner_client.post(path, data={
        "csrf_token": csrf_token(owner_client, path), "name": "Gmail serwisu", "email": mailbox.email,
        "smtp_host": mailbox.smtp_host, "smtp_port": str(mailbox.smtp_port), "smtp_security": mailbox.smtp_security,
        "username": mailbox.username, "imap_host": mailbox.imap_host, "imap_port": str(mailbox.imap_port),
        "imap_security": mailbox.imap_security, "imap_validate_cert": "y", "imap_folder": "INBOX",
        "after_fetch": "seen", "poll_interval": "60", "allow_new_threads": "y"})

    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    db.session.refresh(mailbox)
    assert mailbox.name == "Gmail serwisu" and mailbox.password_enc is None and mailbox.oauth_refresh_token_enc


@pytest.mark.app_config(OAUTH_TIMEOUT=20)
def test_a_process_that_finds_another_renewing_the_token_waits_and_takes_its_token(app, owner_client, google, gmail):
    connect_through_the_provider(owner_client)
    mailbox = db.session.scalars(select(Mailbox)).one()
    mailbox.oauth_expires_at = utcnow() + timedelta(seconds=10)  # due for renewal
    db.session.commit()
    mailbox_id = mailbox.id  # the thread must not touch this session's objects
    lease = f"oauth-refresh:{mailbox_id}"
    assert leases.acquire(lease, "the other process", timedelta(minutes=2))  # it is renewing right now
    got = []

    def worker():
        with app.app_context():
            got.append(access_token(db.session.get(Mailbox, mailbox_id)))

    waiting = threading.Thread(target=worker)
    waiting.start()
    # The other process stores what the provider gave it, and lets go.
    mailbox.oauth_access_token_enc = encrypt("at-from-the-other-process")
    mailbox.oauth_expires_at = utcnow() + timedelta(hours=1)
    db.session.commit()
    leases.release(lease, "the other process")
    waiting.join(timeout=30)

    assert got == ["at-from-the-other-process"]
    assert [request["grant_type"] for request in google.token_requests] == ["authorization_code"]  # no refresh


@pytest.mark.app_config(OAUTH_TIMEOUT=1)
def test_a_renewal_that_stays_held_by_another_process_is_told_in_words(owner_client, google, gmail):
    connect_through_the_provider(owner_client)
    mailbox = db.session.scalars(select(Mailbox)).one()
    assert leases.acquire(f"oauth-refresh:{mailbox.id}", "a stuck process", timedelta(minutes=2))

    with pytest.raises(TokenUnavailable, match="Another process is renewing this mailbox's access"):
        access_token(mailbox, renew=True)


def test_connecting_the_address_of_a_password_mailbox_switches_that_mailbox_to_oauth(owner_client, google, gmail):
    mailbox = gmail.make_mailbox(name="Serwis", email=gmail.user, security="tls")
    mailbox.uidvalidity, mailbox.last_uid = gmail.uidvalidity(), 7
    db.session.commit()

    connect_through_the_provider(owner_client)

    assert db.session.scalars(select(Mailbox)).all() == [mailbox]
    db.session.refresh(mailbox)
    assert (mailbox.auth_kind, mailbox.username, mailbox.name) == ("google", gmail.user, "Serwis")
    assert mailbox.password_enc is None and mailbox.oauth_refresh_token_enc
    assert mailbox.last_uid == 7  # the same IMAP server: mail already fetched is not fetched again
    assert poll_mailbox(mailbox).error is None


@pytest.mark.shop_locale("pl")
def test_the_client_secret_is_called_a_client_secret_not_a_password_in_polish(owner_client):
    """"Secret" and "password" are two words in Polish: the OAuth client's key is no mailbox password."""
    page = owner_client.get("/settings/mailboxes/oauth").get_data(as_text=True)
    assert "Klucz tajny klienta" in page and "Klucz tajny jest przechowywany" in page
    assert "Hasło" not in page and "Sekret" not in page and "sekret" not in page
