"""The inbox in a real browser: searching a Polish word typed without its diacritics, the tab title's count, the
filters on a phone."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from app.customers import create_customer
from app.extensions import db
from app.models import Message, Thread
from browser_helpers import screenshot, sign_in_browser


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


def test_on_a_phone_opening_the_filters_keeps_the_list_and_a_filter_reloads_it(phone_page, live_server, staff):
    customer = create_customer(name="Łukasz Wójcik", email="lukasz@example.com")
    waiting = Thread(customer_id=customer.id, subject="Czeka na nas", status="waiting_us")
    closed = Thread(customer_id=customer.id, subject="Zamknięta", status="waiting_customer")
    db.session.add_all([waiting, closed])
    db.session.commit()
    page = sign_in_browser(phone_page, live_server, staff)
    lists = []
    page.on("request", lambda r: lists.append(r.url) if r.headers.get("hx-request") else None)

    page.locator(".filters-toggle-button").click()
    expect(page.locator("#filter-status")).to_be_visible()
    with page.expect_response(lambda r: "status=waiting_us" in r.url):
        page.locator("#filter-status").select_option("waiting_us")

    expect(page.locator(f"#thread-{closed.id}")).to_have_count(0)
    expect(page.locator(f"#thread-{waiting.id}")).to_be_visible()
    assert len([url for url in lists if "status=" in url]) == 1, lists  # the fold itself asked for nothing
