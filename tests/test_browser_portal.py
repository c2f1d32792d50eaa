"""The customer panel in real browsers: staff invite a customer, who opens the panel on a phone, reads a message sent
from a repair card and answers with a photo; staff see the answer unread and the shop gets its notice by mail."""
from __future__ import annotations

import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from inbound_helpers import make_mailbox, receive, sample, send_mail
from panel_helpers import link_in, mail_text, panel_customer, panel_path
from playwright.sync_api import expect

from app.customers import create_customer
from app.extensions import db
from app.i18n import datetime_pattern
from app.accounts.mailboxes import create_mailbox
from app.messaging.compose import compose
from app.models import Message, Shop, utcnow
from app.outbox import dispatch_pass
from app.panel import credentials
from app.repairs import create_repair
from app.accounts.sms import configure_sms
from browser_helpers import screenshot
from test_portal_inbox import PNG

UNDO_SECONDS = 2
MOBILE = "+48600100200"
SHOP_NUMBER = "+48500100200"
INBOUND_SMS_URL = "http://shop.example/webhooks/twilio/sms"


@pytest.fixture
def shop_ready(app, smtp_server):
    app.config["SMTP_CA_FILE"] = smtp_server.cafile
    create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host=smtp_server.host,
                   smtp_port=smtp_server.port, smtp_security="starttls", username=smtp_server.username,
                   password=smtp_server.password)
    shop = Shop.current()
    shop.undo_seconds = UNDO_SECONDS
    shop.notification_email = "biuro@shop.example"
    customer = create_customer(name="Jan Kowalski", email="jan@example.com", phone="+48600100200")
    repair = create_repair(customer=customer, device="iPhone 12", description="Pęknięty wyświetlacz")
    db.session.commit()
    return repair


def dispatch_later(seconds: float = 1) -> dict:
    return dispatch_pass(now=utcnow() + timedelta(seconds=seconds))


def test_a_customer_joins_from_an_invitation_reads_and_answers_with_a_photo(
        owner_page, phone_page, live_server, shop_ready, smtp_server, tmp_path):
    staff, phone, repair = owner_page, phone_page, shop_ready
    customer = repair.customer
    console_errors = []  # a CSP violation (an inline style or script) shows up here
    phone.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)

    # Staff invite the customer from the card.
    staff.goto(f"{live_server.url}/customers/{customer.id}")
    staff.locator("button", has_text="Invite by e-mail").click()
    expect(staff.locator(".flash-success")).to_contain_text("invitation")
    assert dispatch_later()["sent"] == 1
    invitation = link_in(mail_text(smtp_server.wait_for(1)[0]))

    # The customer opens the invitation on a phone and skips the optional password.
    phone.goto(live_server.url + invitation)
    phone.locator("button", has_text="Sign in").click()
    expect(phone.locator(".panel-bar")).to_contain_text(Shop.current().name)
    phone.locator("a", has_text="Skip, go to my messages").click()
    expect(phone.locator(".empty-state")).to_contain_text("No messages yet")

    # Staff write from the repair card to the panel.
    staff.goto(f"{live_server.url}/repairs/{repair.id}")
    staff.locator("#repair-head a", has_text="Send message").click()
    staff.locator("#channel-email").uncheck()  # the form ticks e-mail first: this message is for the panel only
    staff.locator("#channel-portal").check()
    staff.locator("#compose-body").fill("Wymiana ekranu kosztuje **350 zł**. Robimy?")
    staff.locator("#compose-form button[type=submit]").click()
    expect(staff.locator("[data-undo-toast]")).to_be_visible()
    time.sleep(UNDO_SECONDS + 0.5)
    assert dispatch_later()["sent"] == 1  # published in the panel; the notice waits for the next pass

    # The customer sees it bold, reads it, and answers with a photo.
    phone.reload()
    line = phone.locator(".panel-thread.is-unread")
    expect(line).to_contain_text(f"{repair.number} · iPhone 12")
    line.locator("a").click()
    expect(phone.locator(".panel-message")).to_contain_text("350 zł")
    expect(phone.locator(".panel-message-body strong")).to_have_text("350 zł")
    photo = tmp_path / "zdjecie.png"
    photo.write_bytes(PNG)
    phone.locator("textarea[name=body]").fill("Tak, proszę wymienić.")
    phone.locator("input[name=attachments]").set_input_files(str(photo))
    phone.locator("#reply button[type=submit]").click()
    expect(phone.locator(".panel-message.is-mine")).to_contain_text("Tak, proszę wymienić.")
    expect(phone.locator(".panel-message.is-mine")).to_contain_text("zdjecie.png")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    assert console_errors == []
    screenshot(phone, "panel-thread")

    # Staff see the answer unread at once.
    staff.goto(live_server.url + "/")
    expect(staff.locator("tr.is-unread")).to_contain_text("Tak, proszę wymienić.")
    reply = db.session.scalars(db.select(Message).where(Message.direction == "in")).one()
    assert [a.content_type for a in reply.attachments] == ["image/png"]

    # The shop's notification address gets the notice (with the customer's panel notice in the same pass).
    dispatch_later()
    mails = smtp_server.wait_for(3)
    shop_mail = next(mail for mail in mails if mail.rcpt_tos == ["biuro@shop.example"])
    text = mail_text(shop_mail)
    assert "Jan Kowalski" in text and repair.number in text and "Tak, proszę wymienić." in text
    assert f"/threads/{reply.thread_id}" in text


def test_a_customer_reads_their_email_and_sms_conversation_on_a_phone(phone_page, live_server, app, twilio_server):
    """A customer who only ever wrote by e-mail and SMS finds the whole conversation in the panel, each message
    saying how it travelled, the mail's quoted history folded."""
    phone = phone_page
    console_errors = []
    phone.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    customer = panel_customer("Jan Kowalski", "jan.kowalski@example.com", phone=MOBILE)
    repair = create_repair(customer=customer, device="iPhone 12")
    db.session.commit()
    mailbox = make_mailbox()
    quote = send_mail(customer, repair=repair, body="Wycena naprawy: 450 zł.")
    receive(mailbox, sample("gmail_pl_reply.eml", quote))
    configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number=SHOP_NUMBER,
                  api_base_url=twilio_server.url, actor="test")
    compose(customer=customer, channels=["sms"], body="Telefon gotowy do odbioru.", repair=repair)
    db.session.commit()
    assert dispatch_later(Shop.current().undo_seconds + 1)["sent"] == 1
    twilio_server.text(app.test_client(), INBOUND_SMS_URL, MOBILE, "Dziękuję, będę o 17.", SHOP_NUMBER)
    token = credentials.issue_link(customer, "login")
    db.session.commit()

    phone.goto(live_server.url + panel_path(f"/s/{token}"))
    phone.locator("button", has_text="Sign in").click()
    line = phone.locator(".panel-thread.is-unread")
    expect(line).to_contain_text(f"{repair.number} · iPhone 12")
    expect(line).to_contain_text("Dziękuję, będę o 17.")
    line.locator("a").click()
    messages = phone.locator(".panel-message")
    expect(messages).to_have_count(4)
    expect(phone.locator(".panel-travelled")).to_have_text(["sent by e-mail", "your e-mail", "sent as SMS",
                                                            "your SMS"])
    expect(messages.nth(1)).to_contain_text("cena 450 zł mi odpowiada")
    quoted = messages.nth(1).locator(".panel-quote .panel-message-body")
    expect(quoted).to_be_hidden()
    messages.nth(1).locator(".panel-quote summary").click()
    expect(quoted).to_contain_text("2 dni robocze")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    assert console_errors == []
    screenshot(phone, "panel-conversation")


def test_a_ukrainian_customer_reads_and_answers_in_ukrainian_on_a_phone(phone_page, live_server, app):
    """The panel in Ukrainian at phone size: the sign-in button, the inbox, a thread with a Ukrainian date, the
    reply, and the language chosen back on the account page, without sideways scrolling."""
    phone = phone_page
    console_errors = []
    phone.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    customer = panel_customer("Оксана Шевченко", "oksana@example.com", phone=MOBILE)
    customer.language = "uk"
    repair = create_repair(customer=customer, device="Samsung Galaxy S21")
    db.session.commit()
    message = compose(customer=customer, channels=["portal"], body="Ваш телефон готовий до видачі.",
                      repair=repair)
    db.session.commit()
    assert dispatch_later(Shop.current().undo_seconds + 1)["sent"] == 1
    token = credentials.issue_link(customer, "login")
    db.session.commit()

    phone.goto(live_server.url + panel_path(f"/s/{token}"))
    expect(phone.locator("html")).to_have_attribute("lang", "uk")
    phone.locator("button", has_text="Увійти").click()
    expect(phone.locator("h1")).to_contain_text("Ваші повідомлення")
    phone.locator(".panel-thread a").first.click()
    expect(phone.locator(".panel-message")).to_contain_text("Ваш телефон готовий до видачі.")
    shown = format_datetime(message.created_at, datetime_pattern("uk"), tzinfo=ZoneInfo(Shop.current().timezone),
                            locale="uk")
    expect(phone.locator(".panel-message time").first).to_have_text(shown)
    phone.locator("textarea[name=body]").fill("Дякую, заберу завтра.")
    phone.locator("#reply button[type=submit]", has_text="Надіслати").click()
    expect(phone.locator(".panel-message.is-mine")).to_contain_text("Дякую, заберу завтра.")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    screenshot(phone, "panel-thread-uk")

    phone.locator(".panel-who").click()
    phone.locator("select[name=language]").select_option("pl")
    phone.locator("button", has_text="Зберегти мову").click()
    expect(phone.locator(".flash-success")).to_contain_text("Panel mówi teraz w Twoim języku.")
    expect(phone.locator("html")).to_have_attribute("lang", "pl")
    assert console_errors == []
