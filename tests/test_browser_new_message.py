"""A new message from the inbox to someone the shop has never written to, in a real browser: New message, add the
customer inline, write, send."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.accounts.mailboxes import create_mailbox
from app.models import Customer, Delivery, Shop


@pytest.fixture
def shop_mailbox(app, smtp_server):
    app.config["SMTP_CA_FILE"] = smtp_server.cafile
    create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host=smtp_server.host,
                   smtp_port=smtp_server.port, smtp_security="starttls", username=smtp_server.username,
                   password=smtp_server.password)
    Shop.current().undo_seconds = 0
    db.session.commit()


def test_new_message_to_a_customer_added_inline(staff_page, live_server, shop_mailbox):
    page = staff_page
    page.goto(live_server.url + "/")
    page.locator("#new-message").click()
    expect(page.locator("h1")).to_have_text("New message")

    page.locator("#new-contact summary").click()
    page.locator("#new_customer-name").fill("Zofia Nowa")
    page.locator("#new_customer-email").fill("zofia")  # a typo first: the customer form's rule answers
    page.locator("#new-contact button[type=submit]").click()
    expect(page.locator("#field-new_customer-email .error")).to_contain_text("This is not a valid e-mail address")
    page.locator("#new_customer-email").fill("zofia@example.com")
    page.locator("#new-contact button[type=submit]").click()

    expect(page.locator(".compose-to")).to_contain_text("Zofia Nowa")
    expect(page.locator("#channel-email")).to_be_enabled()
    expect(page.locator("#channel-sms-why")).to_contain_text("The SMS account is not configured.")
    page.locator("#channel-email").check()
    page.locator("#compose-body").fill("Dzień dobry, mamy wycenę naprawy.")
    page.locator("#compose-form button[type=submit]").click()
    expect(page.locator(".deliveries li")).to_have_count(1)

    customer = db.session.scalars(db.select(Customer)).one()
    assert (customer.name, customer.email) == ("Zofia Nowa", "zofia@example.com")
    assert db.session.scalars(db.select(Delivery)).one().recipient == "zofia@example.com"
