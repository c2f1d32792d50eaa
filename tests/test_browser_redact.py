"""Redacting in a real browser: staff select a passcode in a customer's mail and press Redact."""
from __future__ import annotations

import zlib

from inbound_helpers import make_customer, make_mailbox, plain_mail, receive
from playwright.sync_api import expect

from app.extensions import db
from app.models import InboundItem, Message


def test_staff_select_a_passcode_in_a_mail_and_redact_it(staff_page, live_server):
    mailbox = make_mailbox()
    make_customer()
    outcome = receive(mailbox, plain_mail(body="Kod do telefonu: 918273. Pozdrawiam"))
    message_id, thread_id = outcome.item.message_id, outcome.thread.id
    page = staff_page
    page.goto(f"{live_server.url}/threads/{thread_id}")
    entry = page.locator(f"#message-{message_id}")

    # Select the digits in the message's text, as a person would with the mouse.
    entry.locator(".entry-body").first.evaluate("""body => {
        const text = body.firstChild, start = text.textContent.indexOf("918273");
        const range = document.createRange();
        range.setStart(text, start);
        range.setEnd(text, start + 6);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
    }""")
    entry.locator(".entry-menu > summary").click()  # the message's own small menu
    entry.locator(".redact summary").click()
    expect(entry.locator("[data-redact] input[name=text]")).to_have_value("918273")
    page.once("dialog", lambda dialog: dialog.accept())
    entry.locator("[data-redact] button[type=submit]").click()

    expect(page.locator(f"#message-{message_id} .entry-body").first).to_contain_text("Kod do telefonu: [redacted].")
    expect(page.locator("body")).not_to_contain_text("918273")
    db.session.expire_all()
    assert db.session.get(Message, message_id).redacted_at is not None
    assert b"918273" not in zlib.decompress(db.session.get(InboundItem, outcome.item.id).raw)
