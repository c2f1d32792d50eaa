"""A thread's tools in a real browser: merging and splitting through the page, a second person's browser showing
who is viewing, and a reply held back because the customer wrote meanwhile."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.accounts.mailboxes import create_mailbox
from app.messaging.threads import open_thread
from app.models import Message, Thread, utcnow
from browser_helpers import sign_in_browser
from helpers import make_user
from inbound_helpers import make_customer


# Not the shared `customer`: the address the sample mails of tests/mail come from, no phone.
@pytest.fixture
def customer(app):
    return make_customer()


def customer_wrote(thread: Thread, text: str) -> Message:
    message = Message(thread_id=thread.id, kind="message", direction="in", channel="email", sender=thread.customer.email,
                      author_customer_id=thread.customer_id, subject=thread.subject, body_text=text,
                      created_at=utcnow())
    db.session.add(message)
    thread.status, thread.last_inbound_at = "waiting_us", message.created_at
    db.session.commit()
    return message


def test_staff_merge_a_customers_second_thread_and_split_a_message_out_again(staff_page, live_server, customer):
    page = staff_page
    target = open_thread(customer, subject="Naprawa iPhone 12")
    source = open_thread(customer, subject="Pytanie o etui")
    db.session.commit()
    customer_wrote(target, "Kiedy odbiór?")
    question = customer_wrote(source, "Macie etui do iPhone 12?")
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto(f"{live_server.url}/threads/{target.id}")
    page.locator("#merge-tool summary").click()
    page.locator("#merge-source").select_option(str(source.id))
    page.locator("#merge-tool button[type=submit]").click()
    expect(page.locator(".flash-success")).to_contain_text("“Pytanie o etui” was merged into this thread.")
    expect(page.locator(f"#message-{question.id}")).to_contain_text("Macie etui do iPhone 12?")
    expect(page.locator(".entry-event")).to_contain_text("was merged into this thread (1 message).")
    db.session.expire_all()
    assert db.session.get(Thread, source.id).merged_into_id == target.id

    page.locator(f"#message-{question.id} .entry-menu > summary").click()  # the message's own small menu
    page.locator(f"#message-{question.id} [data-split]").click()
    expect(page.locator(".flash-success")).to_contain_text("The message now has a thread of its own.")
    new = db.session.scalar(db.select(Thread).where(Thread.id.not_in([target.id, source.id])))
    expect(page).to_have_url(f"{live_server.url}/threads/{new.id}")
    expect(page.locator("h1")).to_have_text("Pytanie o etui")
    expect(page.locator(".timeline")).to_contain_text("Macie etui do iPhone 12?")
    expect(page.locator(".entry-event")).to_contain_text("Split out of “Naprawa iPhone 12”.")


def test_a_second_browser_sees_who_is_viewing_and_replying(browser, staff_page, live_server, customer):
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    customer_wrote(thread, "Dzień dobry")
    anna = make_user("anna@shop.example", name="Anna")
    create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host="127.0.0.1", smtp_port=1,
                   smtp_security="none")
    db.session.commit()

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        second = sign_in_browser(context.new_page(), live_server, anna)
        with second.expect_response(lambda r: r.url.endswith("/presence")):
            second.goto(f"{live_server.url}/threads/{thread.id}")

        staff_page.goto(f"{live_server.url}/threads/{thread.id}")
        expect(staff_page.locator("#presence [data-presence=viewing]")).to_have_text("Anna is viewing")

        second.goto(f"{live_server.url}/compose?thread_id={thread.id}")
        expect(second.locator("#presence [data-presence=viewing]")).to_have_text("Stefan Staff is viewing")
        with second.expect_response(lambda r: r.url.endswith("/presence") and "replying=1" in r.request.post_data):
            second.locator("#compose-body").press_sequentially("Tak")
        staff_page.reload()
        expect(staff_page.locator("#presence [data-presence=replying]")).to_have_text("Anna is replying")
    finally:
        context.close()


def test_a_reply_crossing_the_customers_new_message_is_held_until_sent_anyway(staff_page, live_server, customer):
    page = staff_page
    create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host="127.0.0.1", smtp_port=1,
                   smtp_security="none")
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    customer_wrote(thread, "Czy jest gotowy?")

    page.goto(f"{live_server.url}/compose?thread_id={thread.id}")
    page.locator("#channel-email").check()
    page.locator("#compose-body").fill("Tak, zapraszamy.")
    customer_wrote(thread, "Proszę najpierw zadzwonić!")
    page.locator("#compose-form button[type=submit]", has_text="Send").click()

    warning = page.locator("#collision")
    expect(warning).to_contain_text("Proszę najpierw zadzwonić!")
    expect(page.locator("#compose-body")).to_have_value("Tak, zapraszamy.")
    db.session.expire_all()
    assert not [m for m in db.session.get(Thread, thread.id).messages if m.direction == "out"]

    warning.locator("button", has_text="Send anyway").click()
    expect(page.locator("[data-undo-toast]")).to_be_visible()
    db.session.expire_all()
    sent = [m for m in db.session.get(Thread, thread.id).messages if m.direction == "out"]
    assert [m.body_text for m in sent] == ["Tak, zapraszamy."]


def test_staff_make_a_ticket_of_a_thread_from_its_tools(staff_page, live_server, customer):
    page = staff_page
    thread = open_thread(customer, subject="Nie działa ładowanie")
    db.session.commit()
    customer_wrote(thread, "Telefon nie ładuje się od wczoraj.")

    page.goto(f"{live_server.url}/threads/{thread.id}")
    page.locator("#ticket-tool summary").click()
    expect(page.locator("#ticket-subject")).to_have_value("Nie działa ładowanie")
    page.locator("#ticket-subject").fill("Gniazdo ładowania")
    page.locator("#ticket-tool button[type=submit]").click()
    expect(page.locator(".flash-success")).to_contain_text("this thread belongs to it.")
    db.session.expire_all()
    ticket = db.session.get(Thread, thread.id).ticket
    assert ticket.subject == "Gniazdo ładowania" and ticket.customer_id == customer.id
    expect(page.locator(".entry-event")).to_contain_text(f"attached the thread to {ticket.number}.")
    expect(page.locator("#ticket-tool")).to_have_count(0)
