"""Every main page fits a shop's laptop (1366x768) and a phone (390x844) without sideways scrolling: neither the
page itself nor any box inside it (a table's scroll box, a code block) is wider than the screen, also with the
long names, addresses, subjects and device names that real shops have."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from app.customers import add_contact_person, create_customer
from app.demo import OWNER_EMAIL, seed
from app.accounts.sms import configure_smsapi
from app.extensions import db
from app.inbound.rules import create_rule
from app.accounts.mailboxes import create_mailbox
from app.messaging.compose import compose
from app.messaging.inbox import VIEWS
from app.outbox import dispatch_pass
from app.models import (utcnow, ContactPerson, Customer, InboundItem, Mailbox, MailRule, Message, MessageTemplate, Repair, Shop,
                        Thread, Ticket, User)
from app.panel.credentials import issue_link
from app.repairs import create_repair, create_ticket
from browser_helpers import browser_page, sign_in_browser

PASSWORD = "demo-password-1"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

# What makes a page wider than the screen: the document itself, or a box that scrolls sideways.
OVERFLOWS = """() => {
    const width = document.documentElement.clientWidth;
    const found = [];
    const describe = (el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${[...el.classList].join(".")}`;
    if (document.documentElement.scrollWidth > width + 1) {
        // Name the innermost elements that reach past the right edge: those are what to fix.
        const wide = [...document.querySelectorAll("body *")].filter((el) => el.getBoundingClientRect().right > width + 1);
        const innermost = wide.filter((el) => !wide.some((other) => other !== el && el.contains(other)));
        found.push(`page ${document.documentElement.scrollWidth}px: ${innermost.slice(0, 3).map(describe).join(", ")}`);
    }
    for (const el of document.querySelectorAll("body *")) {
        const style = getComputedStyle(el);
        if (style.display === "none" || el.closest("[hidden], details:not([open]) > :not(summary)")) continue;
        const scrolls = ["auto", "scroll"].includes(style.overflowX);
        if (scrolls && el.scrollWidth > el.clientWidth + 1) {
            found.push(`${describe(el)} scrolls ${el.scrollWidth}px in ${el.clientWidth}px`);
        }
    }
    return found;
}"""


def report(overflowing: dict[str, list[str]]) -> str:
    return "pages wider than the screen:\n" + "\n".join(f"{page}: {'; '.join(found)}" for page, found in overflowing.items())


@pytest.fixture
def long_data(app):
    """The demo shop, plus a customer, repair, ticket, thread and mailbox with the longest values shops have."""
    seed(PASSWORD)
    customer = create_customer(
        name="Małgorzata Brzęczyszczykiewicz-Szczebrzeszyńska",
        email="malgorzata.brzeczyszczykiewicz-szczebrzeszynska@przedsiebiorstwo-uslugowe.example.pl",
        phone="+48600123456", actor="test", source="cli",
    )
    customer.panel_state = "active"
    repair = create_repair(customer=customer, device="Samsung Galaxy Z Fold5 5G SM-F946BZKDEUE 512 GB Phantom Black",
                           description="Nie ładuje się po zalaniu, pęknięty zawias, migocze wewnętrzny wyświetlacz "
                                       "przy otwieraniu, bateria puchnie, a głośnik rozmów trzeszczy",
                           actor="test")
    create_ticket(customer=customer, subject="Reklamacja: ponownie uszkodzony zawias po naprawie gwarancyjnej "
                                             "wykonanej w zeszłym miesiącu w Państwa serwisie", actor="test",
                  source="cli", description="Zawias znowu skrzypi.")
    create_mailbox(name="Reklamacje i zwroty gwarancyjne — Serwis Naprawa Plus, oddział Kraków-Nowa Huta",
                   email="reklamacje.i.zwroty.gwarancyjne@serwis-naprawa-plus-krakow.example.pl",
                   smtp_host="smtp.serwis-naprawa-plus-krakow.example.pl", smtp_port=587, smtp_security="starttls",
                   username="reklamacje.i.zwroty.gwarancyjne@serwis-naprawa-plus-krakow.example.pl",
                   password="secret")
    compose(customer=customer, channels=["portal"], repair=repair,
            subject="Wycena naprawy: wymiana zawiasu, wyświetlacza wewnętrznego i baterii oraz czyszczenie po zalaniu",
            body="Dzień dobry, przesyłamy wycenę. "
                 "https://serwis.example.pl/p/naprawa-plus/zgloszenia/R-2026-0042/wycena?pozycja=zawias-i-wyswietlacz"
                 "-wewnetrzny-oraz-bateria-i-czyszczenie")
    mailbox = db.session.scalars(db.select(Mailbox).order_by(Mailbox.id.desc())).first()
    create_rule(actor="test", name="Reklamacje gwarancyjne zawiasów i wyświetlaczy składanych telefonów Samsung",
                words="reklamacja gwarancja zawias wyświetlacz składany " * 8, sender_domain="serwis-naprawa-plus-"
                "krakow.example.pl", mailbox_id=mailbox.id, tags="reklamacja-gwarancyjna-zawiasu-i-wyswietlacza")
    # SMSAPI with its addresses (a long secret in each) and a low balance: the SMS page's cards and staff's banner
    sms = configure_smsapi("token", "2way", api_base_url="https://api.smsapi.com", actor="test")
    sms.balance, sms.balance_currency, sms.balance_checked_at = Decimal("1234567.89"), "points", utcnow()
    sms.low_balance_threshold = Decimal("99999999")
    company = create_customer(  # a company with a long name, a contact person with a long name and address
        name="Przedsiębiorstwo Usługowo-Handlowe Brzęczyszczykiewicz i Wspólnicy spółka komandytowo-akcyjna",
        kind="company", nip="PL 123-456-32-18", address="ul. Księcia Józefa Poniatowskiego 123/45\n31-000 Kraków",
        actor="test", source="cli")
    add_contact_person(company, name="Małgorzata Brzęczyszczykiewicz-Szczebrzeszyńska",
                       email="malgorzata.brzeczyszczykiewicz-szczebrzeszynska@przedsiebiorstwo-uslugowe.example.pl",
                       phone="+48600123457", actor="test")
    db.session.commit()
    dispatch_pass(now=utcnow() + timedelta(minutes=5))
    return customer


def company_pages() -> list[str]:
    """The card of the long data's company (with its contact people), a contact's form, and writing to it."""
    contact = db.session.scalars(db.select(ContactPerson).order_by(ContactPerson.id.desc())).first()
    return [f"/customers/{contact.customer_id}", f"/customers/{contact.customer_id}/contacts/{contact.id}",
            f"/compose?customer_id={contact.customer_id}", f"/customers/{contact.customer_id}?tab=history"]


def staff_pages(customer: Customer) -> list[str]:
    """Every main staff page, with the long customer's objects where a page shows one object."""
    repair = db.session.scalars(db.select(Repair).where(Repair.customer_id == customer.id)).one()
    ticket = db.session.scalars(db.select(Ticket).where(Ticket.customer_id == customer.id)).one()
    thread = db.session.scalars(db.select(Thread).where(Thread.repair_id == repair.id)).one()
    held = db.session.scalars(db.select(InboundItem).where(InboundItem.status == "held")).first()
    mailbox = db.session.scalars(db.select(Mailbox).order_by(Mailbox.id.desc())).first()
    template = db.session.scalars(db.select(MessageTemplate).order_by(MessageTemplate.id)).first()
    rule = db.session.scalars(db.select(MailRule)).first()
    received = db.session.scalars(db.select(Message).where(Message.direction == "in", Message.kind == "message")
                                  .order_by(Message.id.desc())).first()
    return [
        *(f"/?view={view}" for view in VIEWS), "/?q=naprawa",
        f"/threads/{thread.id}",
        "/customers/", f"/customers/{customer.id}", f"/customers/{customer.id}?tab=history", *company_pages(),
        "/threads/record", f"/threads/record?customer_id={customer.id}",
        "/repairs/", f"/repairs/{repair.id}", f"/repairs/{repair.id}?tab=messages", f"/repairs/{repair.id}?tab=log",
        "/tickets/", f"/tickets/{ticket.id}",
        f"/compose?repair_id={repair.id}",
        "/outbox/", "/held/", f"/held/{held.id}",
        "/settings/", "/settings/mailboxes/", f"/settings/mailboxes/{mailbox.id}", "/settings/users",
        "/settings/templates/", f"/settings/templates/{template.id}", "/settings/notifications/",
        "/settings/notifications/reminders",
        "/settings/workflow/", "/settings/opening-hours", "/settings/messages", "/settings/panel/",
        "/settings/shop", "/settings/sms/", "/settings/api-tokens/", "/settings/backups/", "/settings/trusted-domains/",
        "/settings/mailboxes/oauth", "/settings/rules/", "/settings/rules/new", f"/settings/rules/{rule.id}",
        f"/settings/rules/?message_id={received.id}" if received else "/settings/rules/?message_id=1",
        "/stats/", "/audit/",
    ]


@pytest.mark.shop_locale("pl")
@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop-1366", "phone-390"])
def test_staff_pages_need_no_sideways_scrolling(browser, request, live_server, long_data, viewport):
    owner = db.session.scalar(db.select(User).where(User.email == OWNER_EMAIL))
    with browser_page(browser, request, viewport=viewport, is_mobile=viewport is PHONE) as page:
        sign_in_browser(page, live_server, owner, PASSWORD)
        overflowing = {}
        for path in staff_pages(long_data):
            response = page.goto(live_server.url + path)
            assert response.ok, path
            if found := page.evaluate(OVERFLOWS):
                overflowing[path] = found
        assert not overflowing, report(overflowing)


@pytest.mark.shop_locale("pl")
@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop-1366", "phone-390"])
def test_the_customer_panel_needs_no_sideways_scrolling(browser, request, live_server, long_data, viewport):
    token = issue_link(long_data, "login")
    db.session.commit()
    slug = Shop.current().slug
    with browser_page(browser, request, viewport=viewport, is_mobile=viewport is PHONE) as page:
        page.goto(f"{live_server.url}/p/{slug}/s/{token}")
        page.locator("form button[type=submit]").click()
        expect(page.locator(".panel-thread")).not_to_have_count(0)
        overflowing = {}
        if found := page.evaluate(OVERFLOWS):
            overflowing["inbox"] = found
        page.locator(".panel-thread a").first.click()
        expect(page.locator(".panel-message-body").first).to_be_visible()
        if found := page.evaluate(OVERFLOWS):
            overflowing["thread"] = found
        assert not overflowing, report(overflowing)


@pytest.mark.shop_locale("pl")
@pytest.mark.parametrize("path, select", [("/", "#filter-status"), ("/outbox/", "#outbox-status")])
def test_on_a_phone_a_lists_filters_fold_behind_one_button(browser, request, live_server, long_data, path, select):
    owner = db.session.scalar(db.select(User).where(User.email == OWNER_EMAIL))
    with browser_page(browser, request, viewport=PHONE, is_mobile=True) as page:
        sign_in_browser(page, live_server, owner, PASSWORD)
        page.goto(live_server.url + path)
        expect(page.locator(select)).to_be_hidden()
        page.locator(".filters-toggle-button").click()
        expect(page.locator(select)).to_be_visible()
        # A row on a phone is a stack of labelled lines, not a table row wider than the screen.
        cell = page.locator("tbody tr").first.locator("td").nth(2)
        assert cell.evaluate("td => getComputedStyle(td).display") == "block"
        assert page.locator("tbody tr").first.locator("td").nth(3).get_attribute("data-label")  # its column's name
    with browser_page(browser, request, viewport=LAPTOP) as page:
        sign_in_browser(page, live_server, owner, PASSWORD)
        page.goto(live_server.url + path)
        expect(page.locator(select)).to_be_visible()
        expect(page.locator(".filters-toggle-button")).to_be_hidden()


@pytest.mark.shop_locale("pl")
@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop-1366", "phone-390"])
def test_the_public_request_form_needs_no_sideways_scrolling(browser, request, live_server, viewport):
    Shop.current().request_form_enabled = True
    db.session.commit()
    with browser_page(browser, request, viewport=viewport, is_mobile=viewport is PHONE) as page:
        overflowing = {}
        for language in ("pl", "en", "uk"):
            page.goto(f"{live_server.url}/p/{Shop.current().slug}/zapytanie?lang={language}")
            expect(page.locator("form input[name=device]")).to_be_visible()
            if found := page.evaluate(OVERFLOWS):
                overflowing[language] = found
        assert not overflowing, report(overflowing)
