"""Settings → Mailboxes, receiving: the owner sets up IMAP next to SMTP, tests it against a real Dovecot and sees
the address customers reply to; `flask mailbox add` does the same from a script."""
from __future__ import annotations

import pytest
from helpers import csrf_token
from servers.smtp import free_port
from sqlalchemy import select

from app.crypto import decrypt
from app.errors import ValidationFailed
from app.extensions import db
from app.accounts.mailboxes import create_mailbox, update_mailbox
from app.models import Mailbox


def form(client, path: str, **values) -> dict:
    """The mailbox form as the page sends it (checked boxes as "y", unchecked ones left out)."""
    fields = {"name": "Serwis", "email": "serwis@shop.example", "smtp_host": "127.0.0.1", "smtp_port": "587",
              "smtp_security": "starttls", "username": "serwis@shop.example", "password": "",
              "imap_host": "imap.shop.example", "imap_port": "993", "imap_security": "tls",
              "imap_validate_cert": "y", "imap_folder": "INBOX", "after_fetch": "seen", "after_fetch_folder": "",
              "allow_new_threads": "y", "poll_interval": "60", "csrf_token": csrf_token(client, path)}
    fields.update(values)
    return {name: value for name, value in fields.items() if value is not None}


def test_owner_sets_up_receiving_with_the_same_login_as_sending(owner_client):
    response = owner_client.post("/settings/mailboxes/new", data=form(
        owner_client, "/settings/mailboxes/new", password="hasło poczty", after_fetch="move",
        after_fetch_folder="Obsłużone", store_attachments="y", allow_new_threads=None, poll_interval="120"))

    assert response.status_code == 302, response.get_data(as_text=True)
    mailbox = db.session.scalars(select(Mailbox)).one()
    assert (mailbox.imap_host, mailbox.imap_port, mailbox.imap_security) == ("imap.shop.example", 993, "tls")
    assert (mailbox.after_fetch, mailbox.after_fetch_folder) == ("move", "Obsłużone")
    assert mailbox.store_attachments and not mailbox.allow_new_threads and mailbox.imap_validate_cert
    assert mailbox.poll_interval == 120 and decrypt(mailbox.password_enc) == "hasło poczty"


def test_wrong_receiving_settings_are_shown_next_to_their_fields(owner_client):
    response = owner_client.post("/settings/mailboxes/new", data=form(
        owner_client, "/settings/mailboxes/new", password="x", imap_host="imap server", imap_port="0",
        after_fetch="move", poll_interval="5"))

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Enter the IMAP server&#39;s host name" in html
    assert "usually 993 for TLS" in html
    assert "Enter the folder fetched mail is moved to." in html
    assert "Enter a polling interval from 15 to 86400 seconds." in html
    assert db.session.scalars(select(Mailbox)).first() is None


def test_a_mailbox_without_an_imap_server_only_sends(app):
    mailbox = create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host="smtp.shop.example",
                             smtp_port=587, smtp_security="starttls")

    assert mailbox.imap_host == "" and mailbox.imap_port == 993 and mailbox.imap_folder == "INBOX"
    with pytest.raises(ValidationFailed) as refused:
        update_mailbox(mailbox, imap_host="imap.shop.example")
    assert refused.value.fields == {"username": "Enter the login: receiving mail needs one."}


def test_another_folder_is_read_from_its_start(app):
    mailbox = create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host="smtp.shop.example",
                             smtp_port=587, smtp_security="starttls", username="serwis", password="x",
                             imap_host="imap.shop.example")
    mailbox.uidvalidity, mailbox.last_uid = 7, 120

    update_mailbox(mailbox, poll_interval=300)
    assert (mailbox.uidvalidity, mailbox.last_uid) == (7, 120)
    update_mailbox(mailbox, imap_folder="Klienci")
    assert (mailbox.uidvalidity, mailbox.last_uid) == (None, 0)


def test_the_edit_page_shows_the_address_customers_reply_to(owner_client):
    mailbox = create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host="smtp.shop.example",
                             smtp_port=587, smtp_security="starttls")
    db.session.commit()

    html = owner_client.get(f"/settings/mailboxes/{mailbox.id}").get_data(as_text=True)

    assert "serwis+code@shop.example" in html
    assert "Test receiving (IMAP)" not in html  # nothing to test without a server


def test_testing_the_connection_reports_the_folder_and_its_uidvalidity(owner_client, imap_server):
    imap_server.append(b"From: a@example.com\r\nSubject: x\r\n\r\nx\r\n")
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    path = f"/settings/mailboxes/{mailbox.id}"

    page = owner_client.get(path).get_data(as_text=True)
    response = owner_client.post(f"{path}/test-imap", headers={"HX-Request": "true",
                                                               "X-CSRFToken": csrf_token(owner_client, path)})

    assert "Test receiving (IMAP)" in page
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "flash-success" in html
    assert f"signed in as {imap_server.user}" in html
    assert f"The folder INBOX has 1 messages (UIDVALIDITY {imap_server.uidvalidity()})" in html


@pytest.mark.parametrize("settings, expected", [
    ({"password": "wrong"}, "rejected the login"),
    ({"imap_folder": "Nowhere"}, "The folder Nowhere cannot be opened"),
    ({"after_fetch": "move", "after_fetch_folder": "Processed"}, "the folder Processed for fetched mail does not"),
    ({"security": "tls"}, "certificate is not trusted"),
    ({"imap_port": "closed"}, "refused the connection"),
    ({"imap_host": "imap.invalid"}, "was not found (DNS lookup failed)"),
])
def test_testing_the_connection_names_what_is_wrong(owner_client, imap_server, settings, expected):
    if settings.get("imap_port") == "closed":
        settings = {**settings, "imap_port": free_port()}
    mailbox = imap_server.make_mailbox(**settings)
    db.session.commit()
    path = f"/settings/mailboxes/{mailbox.id}"

    response = owner_client.post(f"{path}/test-imap", headers={"HX-Request": "true",
                                                               "X-CSRFToken": csrf_token(owner_client, path)})

    html = response.get_data(as_text=True)
    assert "flash-error" in html and expected in html
    db.session.refresh(mailbox)
    assert mailbox.last_error.startswith("IMAP: ") and expected in mailbox.last_error


def test_staff_cannot_test_a_mailbox(staff_client, imap_server):
    mailbox = imap_server.make_mailbox()
    db.session.commit()

    response = staff_client.post(f"/settings/mailboxes/{mailbox.id}/test-imap",
                                 headers={"X-CSRFToken": csrf_token(staff_client, "/")})

    assert response.status_code == 403


# ---------------------------------------------------------------- flask mailbox add


def test_mailbox_add_sets_up_sending_and_receiving_from_the_command_line(app):
    result = app.test_cli_runner().invoke(args=[
        "mailbox", "add", "--name", "Serwis", "--email", "serwis@shop.example", "--smtp-host", "smtp.shop.example",
        "--smtp-port", "587", "--smtp-security", "starttls", "--imap-host", "imap.shop.example", "--imap-port", "143",
        "--imap-security", "starttls", "--username", "serwis@shop.example", "--password", "tajne",
        "--after-fetch", "move:Archiwum", "--no-validate-cert", "--store-attachments"])

    assert result.exit_code == 0, result.output
    mailbox = db.session.get(Mailbox, int(result.output))
    assert (mailbox.imap_host, mailbox.imap_port, mailbox.imap_security) == ("imap.shop.example", 143, "starttls")
    assert (mailbox.after_fetch, mailbox.after_fetch_folder) == ("move", "Archiwum")
    assert not mailbox.imap_validate_cert and mailbox.store_attachments and mailbox.is_default
    assert decrypt(mailbox.password_enc) == "tajne"


@pytest.mark.parametrize("args, expected", [
    (["--after-fetch", "archive"], "use seen, move:FOLDER or delete"),
    (["--after-fetch", "move"], "use seen, move:FOLDER or delete"),
    (["--imap-port", "0"], "imap_port: Enter a port from 1 to 65535"),
])
def test_mailbox_add_refuses_bad_settings_with_the_reason(app, args, expected):
    result = app.test_cli_runner().invoke(args=[
        "mailbox", "add", "--name", "Serwis", "--email", "serwis@shop.example", "--smtp-host", "smtp.shop.example",
        "--smtp-port", "587", "--smtp-security", "starttls", "--imap-host", "imap.shop.example",
        "--username", "serwis", "--password", "x", *args])

    assert result.exit_code != 0 and expected in result.output
    assert db.session.scalars(select(Mailbox)).first() is None
