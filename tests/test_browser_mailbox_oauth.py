"""Connecting a Gmail mailbox in a real browser, using it, and seeing it turn red when the consent is revoked."""
from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from browser_helpers import screenshot

from app.customers import create_customer
from app.extensions import db
from app.inbound.poll import poll_due_mailboxes
from app.models import Mailbox, Thread, utcnow
from app.outbox import dispatch_pass
from inbound_helpers import plain_mail
from servers.imap import ImapAccount


@pytest.mark.app_config(MAILBOX_BROKEN_AFTER=1)
def test_owner_connects_gmail_receives_and_replies_then_sees_it_turn_red_when_the_consent_is_revoked(
        app, owner_page, live_server, google, gmail, oauth_dovecot, smtp_server):
    page = owner_page
    app.config["PUBLIC_BASE_URL"] = live_server.url  # the provider sends the browser back here
    create_customer(name="Jan Kowalski", email="jan@example.com")
    db.session.commit()

    page.goto(live_server.url + "/settings/mailboxes/oauth")
    screenshot(page, "mailboxes-google-and-microsoft")
    page.goto(live_server.url + "/settings/mailboxes/")
    page.get_by_role("link", name="Connect Google").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{gmail.user} is connected")
    expect(page.locator(".page-head h1")).to_have_text(gmail.user)
    # A second mailbox, with a password, receiving from the same Dovecot.
    workshop = ImapAccount(oauth_dovecot, oauth_dovecot.add_user())
    password_mailbox = workshop.make_mailbox(name="Warsztat", email="warsztat@shop.example", security="tls")
    db.session.commit()

    # Mail comes in over IMAP (XOAUTH2) and a reply goes out over SMTP (XOAUTH2).
    gmail.append(plain_mail(sender="Jan Kowalski <jan@example.com>", to=gmail.user, subject="Czy telefon gotowy?"))
    results = {result.mailbox_name: result for result in poll_due_mailboxes()}
    assert results[gmail.user].counts["new_threads"] == 1
    thread = db.session.scalars(select(Thread)).one()
    page.goto(f"{live_server.url}/threads/{thread.id}")
    expect(page.locator("main")).to_contain_text("czy telefon jest gotowy?")
    page.get_by_role("link", name="Reply").first.click()
    page.locator("#compose-body").fill("Tak, zapraszamy po odbiór.")
    page.locator("#compose-form button[type=submit]").click()
    expect(page.locator("[data-undo-toast]")).to_be_visible()
    assert dispatch_pass(now=utcnow() + timedelta(minutes=5))["sent"] == 1
    [reply] = smtp_server.wait_for(1)
    assert reply.mail_from == gmail.user and reply.rcpt_tos == ["jan@example.com"]
    assert smtp_server.oauth_logins == [gmail.user]

    # The account holder revokes the consent: the next pass fails in words, the password mailbox goes on.
    google.revoke_user(gmail.user)
    workshop.append(plain_mail(sender="Jan Kowalski <jan@example.com>", to=workshop.user,
                               message_id="<w1@example.com>"))
    results = {result.mailbox_name: result for result in poll_due_mailboxes(now=utcnow() + timedelta(hours=1))}
    assert results["Warsztat"].error is None and results["Warsztat"].counts["fetched"] == 1

    page.goto(live_server.url + "/settings/mailboxes/")
    row = page.locator("tbody tr", has_text=gmail.user)
    expect(row.locator(".badge-red")).to_have_text("Not working")
    expect(row).to_contain_text("Google refused the refresh token: the consent was revoked or has expired; "
                                "reconnect the mailbox.")
    expect(row.get_by_role("link", name="Reconnect")).to_be_visible()
    expect(page.locator(".banner[role=alert]")).to_contain_text(f"The mailbox {gmail.user} is not working")
    other = page.locator("tbody tr", has_text="Warsztat")
    expect(other.locator(".badge-green")).to_have_text("Working")
    assert db.session.get(Mailbox, password_mailbox.id).broken_at is None
    screenshot(page, "mailboxes-consent-revoked")

    # Reconnect signs it in again.
    row.get_by_role("link", name="Reconnect").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{gmail.user} is connected")
    page.goto(live_server.url + "/settings/mailboxes/")
    expect(page.locator(".banner[role=alert]")).to_have_count(0)
