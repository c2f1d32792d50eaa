"""Settings → Mailboxes: the owner adds and changes the shop's sending accounts, tests them against a real SMTP
server, picks the default one and sees when one stops working; staff cannot get in."""
from __future__ import annotations

import pytest
from helpers import csrf_token
from sqlalchemy import select

from app.crypto import decrypt
from app.errors import ValidationFailed
from app.extensions import db
from app.accounts.mailboxes import create_mailbox, default_mailbox, record_failure, update_mailbox
from app.models import AuditEvent, Mailbox, utcnow


def form(client, path: str, **values) -> dict:
    fields = {"name": "Serwis", "email": "serwis@shop.example", "display_name": "Serwis Łatka",
              "smtp_host": "127.0.0.1", "smtp_port": "587", "smtp_security": "starttls",
              "username": "serwis@shop.example", "password": "", "csrf_token": csrf_token(client, path),
              "imap_validate_cert": "y", "allow_new_threads": "y"}  # checked, as the page shows them
    fields.update(values)
    return {name: value for name, value in fields.items() if value is not None}


def audit(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_owner_adds_a_mailbox_whose_password_is_stored_encrypted_and_never_shown(owner_client):
    response = owner_client.post("/settings/mailboxes/new",
                                 data=form(owner_client, "/settings/mailboxes/new", password="tajne hasło 123"))

    assert response.status_code == 302
    mailbox = db.session.scalars(select(Mailbox)).one()
    assert (mailbox.email, mailbox.smtp_host, mailbox.smtp_port) == ("serwis@shop.example", "127.0.0.1", 587)
    assert mailbox.is_default  # the shop's first mailbox
    assert "tajne" not in mailbox.password_enc and decrypt(mailbox.password_enc) == "tajne hasło 123"
    for page in ("/settings/mailboxes/", f"/settings/mailboxes/{mailbox.id}"):
        html = owner_client.get(page).get_data(as_text=True)
        assert "serwis@shop.example" in html
        assert "tajne" not in html and mailbox.password_enc not in html
    [event] = audit("mailbox.create")
    assert "tajne" not in str(event.details) and mailbox.password_enc not in str(event.details)


def test_saving_with_an_empty_password_keeps_the_stored_one(owner_client):
    mailbox = create_mailbox(name="Serwis", email="serwis@shop.example", display_name="Serwis Łatka",
                             smtp_host="smtp.shop.example", smtp_port=587, smtp_security="starttls",
                             username="serwis", password="stare hasło")
    db.session.commit()
    path = f"/settings/mailboxes/{mailbox.id}"

    response = owner_client.post(path, data=form(owner_client, path, smtp_host="mail.shop.example", username="serwis"))

    assert response.status_code == 302
    db.session.refresh(mailbox)
    assert mailbox.smtp_host == "mail.shop.example" and decrypt(mailbox.password_enc) == "stare hasło"
    owner_client.post(path, data=form(owner_client, path, smtp_host="mail.shop.example", username="serwis",
                                      password="nowe hasło"))
    db.session.refresh(mailbox)
    assert decrypt(mailbox.password_enc) == "nowe hasło"
    assert [e.details["changed"] for e in audit("mailbox.update")] == [["smtp_host"], ["password"]]
    # The audit log says what a setting was and became, but names a new password only.
    assert [e.details["changes"] for e in audit("mailbox.update")] == [
        {"smtp_host": ["smtp.shop.example", "mail.shop.example"]}, {}]
    assert "hasło" not in str([e.details for e in audit("mailbox.update")])


def test_wrong_settings_are_shown_next_to_their_fields(owner_client):
    response = owner_client.post("/settings/mailboxes/new", data=form(
        owner_client, "/settings/mailboxes/new", email="not an address", smtp_host="smtp server", smtp_port="70000",
        password=""))

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "This is not a valid e-mail address" in html
    assert "Enter the SMTP server&#39;s host name" in html
    assert "Enter a port from 1 to 65535" in html
    assert "Enter the password for this login." in html
    assert db.session.scalars(select(Mailbox)).first() is None


def test_staff_cannot_open_or_use_the_mailbox_settings(staff_client):
    mailbox = create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host="smtp.shop.example",
                             smtp_port=587, smtp_security="starttls")
    db.session.commit()
    token = csrf_token(staff_client, "/")

    assert staff_client.get("/settings/mailboxes/").status_code == 403
    assert staff_client.get("/settings/mailboxes/new").status_code == 403
    assert staff_client.get(f"/settings/mailboxes/{mailbox.id}").status_code == 403
    for action in ("test", "default", "active"):
        response = staff_client.post(f"/settings/mailboxes/{mailbox.id}/{action}", headers={"X-CSRFToken": token})
        assert response.status_code == 403


def test_test_connection_button_signs_in_to_the_real_server(owner_client, app, smtp_server):
    app.config["SMTP_CA_FILE"] = smtp_server.cafile
    mailbox = create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host=smtp_server.host,
                             smtp_port=smtp_server.port, smtp_security="starttls", username=smtp_server.username,
                             password=smtp_server.password)
    mailbox.consecutive_failures, mailbox.broken_at = 3, utcnow()
    db.session.commit()
    token = csrf_token(owner_client, f"/settings/mailboxes/{mailbox.id}")

    response = owner_client.post(f"/settings/mailboxes/{mailbox.id}/test",
                                 headers={"X-CSRFToken": token, "HX-Request": "true"})

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and "flash-success" in html
    assert f"signed in as {smtp_server.username}" in html
    assert smtp_server.logins == 1
    db.session.refresh(mailbox)
    assert mailbox.broken_at is None and mailbox.consecutive_failures == 0  # the owner fixed it


def test_test_connection_tells_a_failed_login(owner_client, app, smtp_server):
    app.config["SMTP_CA_FILE"] = smtp_server.cafile
    smtp_server.reject_auth = True
    mailbox = create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host=smtp_server.host,
                             smtp_port=smtp_server.port, smtp_security="starttls", username=smtp_server.username,
                             password=smtp_server.password)
    db.session.commit()
    token = csrf_token(owner_client, f"/settings/mailboxes/{mailbox.id}")

    response = owner_client.post(f"/settings/mailboxes/{mailbox.id}/test",
                                 headers={"X-CSRFToken": token, "HX-Request": "true"})

    html = response.get_data(as_text=True)
    assert "flash-error" in html and "authentication failed" in html
    db.session.refresh(mailbox)
    assert "authentication failed" in mailbox.last_error


def test_owner_makes_another_mailbox_the_default(owner_client):
    first = create_mailbox(name="Biuro", email="biuro@shop.example", smtp_host="smtp.shop.example", smtp_port=587,
                           smtp_security="starttls")
    second = create_mailbox(name="Warsztat", email="warsztat@shop.example", smtp_host="smtp.shop.example",
                            smtp_port=587, smtp_security="starttls")
    db.session.commit()
    assert default_mailbox() == first and not second.is_default

    response = owner_client.post(f"/settings/mailboxes/{second.id}/default",
                                 data={"csrf_token": csrf_token(owner_client, "/settings/mailboxes/")})

    assert response.status_code == 302
    db.session.expire_all()
    assert default_mailbox() == second and not first.is_default
    with pytest.raises(ValidationFailed) as refused:
        update_mailbox(second, is_default=False)
    assert "is_default" in refused.value.fields


def test_owner_switches_the_default_mailbox_off_and_on_again(owner_client):
    first = create_mailbox(name="Biuro", email="biuro@shop.example", smtp_host="smtp.shop.example", smtp_port=587,
                           smtp_security="starttls")
    second = create_mailbox(name="Warsztat", email="warsztat@shop.example", smtp_host="smtp.shop.example",
                            smtp_port=587, smtp_security="starttls")
    first.broken_at, first.consecutive_failures = utcnow(), 3
    db.session.commit()
    token = csrf_token(owner_client, "/settings/mailboxes/")

    assert owner_client.post(f"/settings/mailboxes/{first.id}/active", data={"active": "0", "csrf_token": token}
                             ).status_code == 302
    db.session.expire_all()
    assert not first.active and not first.is_default and second.is_default and default_mailbox() == second
    assert "Switched off" in owner_client.get("/settings/mailboxes/").get_data(as_text=True)

    owner_client.post(f"/settings/mailboxes/{first.id}/active", data={"active": "1", "csrf_token": token})
    db.session.expire_all()
    assert first.active and first.broken_at is None and first.consecutive_failures == 0  # tried afresh
    assert default_mailbox() == second  # the default stays where it moved
    assert [e.details["changed"] for e in audit("mailbox.update")][-2:] == [["active", "is_default"], ["active"]]

    assert owner_client.post(f"/settings/mailboxes/{first.id}/active", data={"active": "0"}).status_code == 400
    db.session.expire_all()
    assert first.active


@pytest.mark.app_config(MAILBOX_BROKEN_AFTER=2)
def test_owner_sees_a_banner_when_a_mailbox_stops_working(owner_client):
    mailbox = create_mailbox(name="Warsztat", email="warsztat@shop.example", smtp_host="smtp.shop.example",
                             smtp_port=587, smtp_security="starttls")
    assert not record_failure(mailbox, "The mail server refused the connection.")
    assert record_failure(mailbox, "The mail server refused the connection.")  # the second in a row
    db.session.commit()

    html = owner_client.get("/settings/mailboxes/").get_data(as_text=True)

    assert 'role="alert"' in html and "Warsztat is not working since" in html
    assert "The mail server refused the connection." in html
