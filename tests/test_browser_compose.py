"""Writing from a repair card in a real browser: channels, the live SMS counter, undo, sending, the outbox."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from app.customers import create_customer
from app.extensions import db
from app.accounts.mailboxes import create_mailbox
from app.models import Delivery, Shop
from app.outbox import dispatch_pass
from app.repairs import create_repair
from app.accounts.sms import configure_sms

UNDO_SECONDS = 4


@pytest.fixture
def shop_ready(app, smtp_server, twilio_server):
    """A shop that can send: a mailbox on the local SMTP server, SMS through the local Twilio API."""
    app.config["SMTP_CA_FILE"] = smtp_server.cafile
    create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host=smtp_server.host,
                   smtp_port=smtp_server.port, smtp_security="starttls", username=smtp_server.username,
                   password=smtp_server.password)
    configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number="+48500100200",
                  api_base_url=twilio_server.url, actor="test")
    Shop.current().undo_seconds = UNDO_SECONDS
    customer = create_customer(name="Jan Kowalski", email="jan@example.com", phone="+48600100200")
    repair = create_repair(customer=customer, device="iPhone 12", description="Pęknięty wyświetlacz")
    db.session.commit()
    return repair


def counter(page):
    return page.locator("#sms-counter [data-sms-encoding]")


def test_compose_from_a_repair_card_undo_then_send_and_the_outbox_turns_green(
        owner_page, live_server, shop_ready, smtp_server, twilio_server):
    page, repair = owner_page, shop_ready
    page.goto(f"{live_server.url}/repairs/{repair.id}")
    page.locator("#repair-head a", has_text="Send message").click()
    expect(page.locator(".context-banner")).to_contain_text(repair.number)

    page.locator("#channel-email").check()
    page.locator("#channel-sms").check()
    expect(page.locator("#sms-counter")).to_be_visible()
    body = page.locator("#compose-body")
    body.fill("Telefon jest gotowy do odbioru")
    expect(counter(page)).to_have_attribute("data-sms-encoding", "GSM-7")
    body.press_sequentially(" dziś")  # one Polish letter turns the SMS into UCS-2
    expect(counter(page)).to_have_attribute("data-sms-encoding", "UCS-2")
    page.locator("#compose-sms-plain").check()
    expect(counter(page)).to_have_attribute("data-sms-encoding", "GSM-7")

    page.locator("#compose-form button[type=submit]").click()
    toast = page.locator("[data-undo-toast]")
    expect(toast).to_be_visible()
    toast.locator("button", has_text="Undo").click()
    expect(page.locator("#compose-body")).to_have_value("Telefon jest gotowy do odbioru dziś")
    assert db.session.scalar(db.select(db.func.count(Delivery.id))) == 0

    page.locator("#channel-email").check()
    page.locator("#channel-sms").check()
    page.locator("#compose-form button[type=submit]").click()
    expect(page.locator("[data-undo-toast]")).to_be_visible()
    expect(page.locator(".deliveries li")).to_have_count(2)

    time.sleep(UNDO_SECONDS + 0.5)  # the undo window passes; then the scheduler's pass would run
    assert dispatch_pass()["sent"] == 2
    page.goto(live_server.url + "/outbox/")
    expect(page.locator("tbody .badge-green")).to_have_count(2)
    assert len(smtp_server.wait_for(1)) == 1
    assert twilio_server.requests[-1].form["Body"] == "Telefon jest gotowy do odbioru dzis"
    page.goto(f"{live_server.url}/repairs/{repair.id}?tab=log")
    expect(page.locator("ul.log")).to_contain_text("SMS sent to +48 600 100 200")
