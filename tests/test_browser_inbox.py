"""The inbox in a real browser: searching a Polish word typed without its diacritics, the tab title's count."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from app.customers import create_customer
from app.extensions import db
from app.models import Message, Thread
from conftest import screenshot


def test_searching_a_polish_word_without_diacritics_finds_the_thread_as_you_type(staff_page, live_server):
    page = staff_page
    customer = create_customer(name="Łukasz Wójcik", email="lukasz@example.com", phone="+48601234567")
    screen = Thread(customer_id=customer.id, subject="Naprawa telefonu", status="waiting_us", unread=True)
    battery = Thread(customer_id=customer.id, subject="Bateria")
    db.session.add_all([screen, battery])
    db.session.flush()
    db.session.add(Message(thread_id=screen.id, direction="in", body_text="Wyświetlacz pękł w Łodzi."))
    db.session.commit()

    page.goto(live_server.url + "/")
    expect(page.locator(f"#thread-{battery.id}")).to_be_visible()
    expect(page).to_have_title(re.compile(r"^\(1\) Inbox"))  # the unread count leads the tab title
    page.locator("#inbox-q").press_sequentially("wyswietl")

    expect(page.locator(f"#thread-{battery.id}")).to_have_count(0)
    expect(page.locator(f"#thread-{screen.id}")).to_contain_text("Naprawa telefonu")
    expect(page).to_have_url(re.compile(r"[?&]q=wyswietl"))  # bookmarkable
    screenshot(page, "inbox-search")

    page.reload()
    expect(page.locator("#inbox-q")).to_have_value("wyswietl")
    expect(page.locator(f"#thread-{screen.id}")).to_be_visible()
    expect(page.locator(f"#thread-{battery.id}")).to_have_count(0)
