"""A tour of the demo shop's main screens in a real browser; with SCREENSHOTS_DIR set it makes the README's pictures."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.demo import OWNER_EMAIL, seed
from app.extensions import db
from app.models import Customer, Mailbox, Message, MessageTemplate, Repair, Shop, User
from app.panel.credentials import issue_link
from browser_helpers import pdf_screenshot, screenshot, sign_in_browser

PASSWORD = "demo-password-1"
LAPTOP = {"width": 1366, "height": 768}  # the most common screen in a small shop; the README's pictures use it


@pytest.fixture
def demo_page(page, live_server):
    page.set_viewport_size(LAPTOP)
    seed(PASSWORD)
    db.session.commit()
    owner = db.session.scalar(db.select(User).where(User.email == OWNER_EMAIL))
    page.goto(live_server.url + "/login")
    screenshot(page, "sign-in")
    return sign_in_browser(page, live_server, owner, PASSWORD)


@pytest.mark.shop_locale("pl")
def test_the_demo_shops_main_screens_render_with_its_data(demo_page, live_server):
    page = demo_page
    expect(page.locator("#unread-counter")).not_to_have_text("0")
    expect(page.locator("tbody")).to_contain_text("Potwierdzenie zamówienia ZAM/2026/1187")  # a trusted supplier's
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # the top bar fits
    screenshot(page, "inbox")

    page.goto(live_server.url + "/customers/")
    expect(page.locator("#customer-results tbody tr")).not_to_have_count(0)
    screenshot(page, "customers")

    company = db.session.scalar(db.select(Customer).where(Customer.kind == "company"))
    page.goto(f"{live_server.url}/customers/{company.id}")
    expect(page.locator("#contacts tbody tr")).not_to_have_count(0)
    expect(page.locator("main")).to_contain_text("NIP")
    # the panel access's own lines, not its template's line breaks, make its height
    assert page.eval_on_selector("dd.plain-lines", "el => el.getBoundingClientRect().height") < 120
    screenshot(page, "company-card")

    repair = db.session.scalars(db.select(Repair).order_by(Repair.id)).first()
    page.goto(f"{live_server.url}/repairs/{repair.id}")
    expect(page.locator("h1")).to_contain_text(repair.number)
    screenshot(page, "repair-card")

    page.goto(f"{live_server.url}/repairs/{repair.id}?tab=messages")
    screenshot(page, "repair-messages")

    receipt = page.request.get(live_server.url + page.locator("#repair-head a", has_text="Drukuj potwierdzenie")
                               .get_attribute("href"))
    assert receipt.ok and receipt.headers["content-type"] == "application/pdf"
    pdf_screenshot(receipt.body(), "receipt")

    page.goto(f"{live_server.url}/compose?repair_id={repair.id}")
    expect(page.locator("#compose-body")).to_be_visible()
    screenshot(page, "compose")

    page.goto(live_server.url + "/outbox/")
    expect(page.locator("h1")).to_be_visible()
    screenshot(page, "outbox")

    reply = db.session.scalar(db.select(Message).where(Message.direction == "in", Message.quoted_text != ""))
    page.goto(f"{live_server.url}/threads/{reply.thread_id}")
    quote = page.locator("details.mail-quote")
    expect(quote).to_have_count(1)
    quote.locator("summary").click()
    expect(quote).to_contain_text("450 zł")
    # The whole stylesheet applies: the side panel stands beside the timeline, the header's facts in a row.
    columns = page.eval_on_selector(".thread-layout", "el => getComputedStyle(el).gridTemplateColumns.split(' ')")
    assert len(columns) == 2
    assert page.eval_on_selector(".thread-props", "el => getComputedStyle(el).display") == "flex"
    screenshot(page, "thread")

    page.goto(live_server.url + "/held/")
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody")).to_contain_text("jan.malinowski@example.com")
    expect(page.locator("tbody")).to_contain_text("+48 605 777 888")
    screenshot(page, "held")

    page.goto(live_server.url + "/stats/")
    expect(page.locator(".stats-chart")).to_be_visible()
    expect(page.locator("td.num").first).not_to_have_text("—")
    screenshot(page, "stats")

    mailbox = db.session.scalars(db.select(Mailbox)).one()
    page.goto(f"{live_server.url}/settings/mailboxes/{mailbox.id}")
    expect(page.locator("input[name=imap_host]")).to_have_value(mailbox.imap_host)
    expect(page.locator(".banner[role=alert]")).to_have_count(0)  # a mailbox with example servers is not "broken"
    screenshot(page, "mailbox")

    ready = db.session.scalar(db.select(MessageTemplate).where(MessageTemplate.name == "Gotowa do odbioru",
                                                               MessageTemplate.language == "pl"))
    page.goto(f"{live_server.url}/settings/templates/{ready.id}")
    page.select_option("#preview-repair", index=1)
    page.click("#preview-button")
    expect(page.locator("#template-preview")).to_contain_text("gotowy do odbioru")
    screenshot(page, "template")

    page.goto(live_server.url + "/settings/notifications/")
    expect(page.locator("main")).to_contain_text("Gotowa do odbioru")
    screenshot(page, "notifications")

    page.goto(live_server.url + "/settings/notifications/reminders")
    expect(page.locator("main")).to_contain_text("Przypomnienie o odbiorze")
    samsung = db.session.scalar(db.select(Repair).where(Repair.device == "Samsung Galaxy S21"))
    expect(page.locator(f'[data-preview] a[href$="/repairs/{samsung.id}"]')).to_have_count(1)  # 11 days ready, 7 due
    screenshot(page, "reminders")

    page.goto(live_server.url + "/audit/")
    expect(page.locator("tbody tr")).not_to_have_count(0)
    screenshot(page, "audit-log")


@pytest.mark.shop_locale("pl")
def test_the_demo_shop_fits_a_phone(phone_page, live_server):
    seed(PASSWORD)
    db.session.commit()
    owner = db.session.scalar(db.select(User).where(User.email == OWNER_EMAIL))
    sign_in_browser(phone_page, live_server, owner, PASSWORD)
    phone_page.goto(live_server.url + "/customers/")
    assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone_page.locator(".nav-toggle summary").click()
    expect(phone_page.locator(".mainnav a[href='/repairs/']")).to_be_visible()
    screenshot(phone_page, "phone-menu")

    # The lists as stacked rows, the filters behind one button, the thread in one column: nothing sideways.
    phone_page.goto(live_server.url + "/")
    expect(phone_page.locator("tbody")).to_contain_text("Potwierdzenie zamówienia ZAM/2026/1187")
    assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(phone_page, "phone-inbox")
    reply = db.session.scalar(db.select(Message).where(Message.direction == "in", Message.quoted_text != ""))
    phone_page.goto(f"{live_server.url}/threads/{reply.thread_id}")
    expect(phone_page.locator(".thread-layout")).to_be_visible()
    assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(phone_page, "phone-thread")
    phone_page.goto(live_server.url + "/outbox/")
    expect(phone_page.locator("h1")).to_be_visible()
    assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(phone_page, "phone-outbox")

    # The public request form as a stranger sees it on a phone: no sign-in, nothing sideways.
    shop = Shop.current()
    shop.request_form_enabled = True
    db.session.commit()
    phone_page.context.clear_cookies()
    phone_page.goto(f"{live_server.url}/p/{shop.slug}/zapytanie")
    expect(phone_page.locator("input[name=device]")).to_be_visible()
    assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(phone_page, "phone-request-form")


@pytest.mark.shop_locale("pl")
def test_the_demo_customer_reads_the_panel_on_a_phone(phone_page, live_server):
    seed(PASSWORD)
    db.session.commit()
    customer = db.session.scalar(db.select(Customer).where(Customer.panel_state == "active"))
    token = issue_link(customer, "login")
    db.session.commit()
    phone_page.goto(f"{live_server.url}/p/{Shop.current().slug}/s/{token}")
    phone_page.locator("form button[type=submit]").click()
    line = phone_page.locator(".panel-thread.is-unread", has_text="Motorola moto g54")
    expect(line).to_have_count(1)
    screenshot(phone_page, "panel-inbox")

    line.locator("a").click()
    expect(phone_page.locator(".panel-message-body strong")).to_have_text("290 zł")
    assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(phone_page, "panel-thread")
