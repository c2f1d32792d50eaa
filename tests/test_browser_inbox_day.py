"""The counter's day in a real browser: the unassigned threads, one taken, a note, an e-mail reply that really
goes out, the thread closed. (Searching a Polish word without its diacritics: test_browser_inbox.py.)"""
from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect

from app.customers import create_customer
from app.extensions import db
from app.messaging.threads import open_thread
from app.models import Message, Shop, utcnow
from app.outbox import dispatch_pass
from browser_helpers import screenshot
from helpers import make_user


def test_a_day_at_the_counter_take_an_unassigned_thread_note_reply_by_email_and_close_it(
        staff_page, live_server, staff, mailbox, smtp_server):
    page = staff_page
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    customer = create_customer(name="Jan Kowalski", email="jan@example.com", phone="+48600100200")
    waiting = open_thread(customer, subject="Czy telefon jest gotowy?")
    db.session.add(Message(thread_id=waiting.id, direction="in", channel="email", sender="jan@example.com",
                           body_text="Dzień dobry, czy mój telefon jest już gotowy?"))
    waiting.status, waiting.last_inbound_at = "waiting_us", utcnow()
    taken = open_thread(customer, subject="Bateria")
    taken.assignee_id = make_user("piotr@shop.example", name="Piotr").id
    db.session.commit()

    page.goto(live_server.url + "/")
    page.locator(".tabs a", has_text="Unassigned").click()
    expect(page.locator(f"#thread-{taken.id}")).to_have_count(0)
    page.locator(f"#thread-{waiting.id} a", has_text="Czy telefon jest gotowy?").click()

    header = page.locator("#thread-header")
    header.locator("[data-action=assign-me]").click()
    expect(page.locator(".timeline [data-event=assigned]")).to_contain_text("Stefan Staff took the thread.")
    expect(header.locator("select[name=assignee_id] option:checked")).to_have_text("Stefan Staff")
    expect(header.locator("[data-action=assign-me]")).to_have_count(0)

    header.locator("select[name=priority]").select_option("urgent")
    expect(page.locator(".timeline [data-event=priority]")).to_contain_text("from Normal to Urgent")

    expect(page.locator("#reply-body")).to_be_visible()  # a thread with a customer opens on Reply
    expect(page.locator("#note-body")).to_be_hidden()
    page.locator("label[for=composer-tab-note]").click()
    page.locator("#note-body").fill("Ekran zamówiony, będzie w czwartek.")
    page.locator("#note-form button[type=submit]").click()
    expect(page.locator(".timeline .entry-note")).to_contain_text("Ekran zamówiony, będzie w czwartek.")
    expect(page.locator("#note-body")).to_have_value("")
    screenshot(page, "thread-actions")

    page.locator("label[for=composer-tab-reply]").click()  # the reply box at the bottom of the thread
    expect(page.locator("#reply-channel-email")).to_be_checked()  # the customer wrote by e-mail
    page.locator("#reply-body").fill("Tak, telefon czeka na odbiór.")
    page.locator("#reply-form button[type=submit]").click()
    expect(page.locator("[data-undo-toast]")).to_be_visible()
    assert dispatch_pass(now=utcnow() + timedelta(seconds=Shop.current().undo_seconds + 1))["sent"] == 1
    received = smtp_server.wait_for(1)
    assert received[0].rcpt_tos == ["jan@example.com"] and b"czeka na odbi" in received[0].data

    page.reload()
    header.locator("[data-action=close]").click()
    expect(header.locator("[data-thread-status]")).to_have_text("Closed")
    expect(page.locator(".timeline [data-event=status]")).to_contain_text("Stefan Staff closed the thread.")
    expect(header.locator("[data-action=reopen]")).to_be_visible()
    db.session.refresh(waiting)
    assert waiting.status == "closed" and waiting.closed_at is not None and waiting.assignee_id == staff.id

    page.goto(live_server.url + "/?view=closed")
    expect(page.locator(f"#thread-{waiting.id}")).to_be_visible()
    assert problems == []  # no script refused by the CSP, no failed request
