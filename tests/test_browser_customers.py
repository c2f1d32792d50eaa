"""The owner's first day, in a real browser: add a customer, find them again, open the card, change language."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.customers import create_customer
from app.extensions import db
from app.repairs import create_repair


@pytest.mark.shop_locale("pl")
def test_owner_adds_a_customer_finds_them_with_active_search_and_signs_out_in_english(owner_page, live_server):
    page = owner_page
    page.locator(".mainnav a[href='/customers/']").click()
    page.locator("a[href='/customers/new']").first.click()
    page.locator("input[name=name]").fill("Zofia Wiśniewska")
    page.locator("input[name=email]").fill("zofia@example.com")
    page.locator("input[name=phone]").fill("600 700 800")
    page.locator("main form button[type=submit].btn-primary").click()

    expect(page.locator("h1")).to_have_text("Zofia Wiśniewska")
    expect(page.locator(".page-sub")).to_contain_text("+48 600 700 800")
    card_url = page.url

    for i in range(3):  # a few more, so the search has something to leave out
        create_customer(name=f"Klient {i}", phone=f"+4860000000{i}")
    db.session.commit()
    page.goto(live_server.url + "/customers/")
    search = page.locator("input[type=search][name=q]")
    with page.expect_response(re.compile(r"/customers/\?q=")):
        search.fill("wiśniew")
    expect(page.locator("#customer-results tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=wi"))  # the search is bookmarkable
    with page.expect_response(re.compile(r"/customers/\?q=")):
        search.fill("700 800")  # by phone digits, typed with a space
    expect(page.locator("#customer-results tbody tr")).to_have_count(1)
    page.locator("#customer-results a", has_text="Zofia Wiśniewska").click()
    expect(page).to_have_url(card_url)

    page.locator(".topbar .lang-switch button[value=en]").click()
    expect(page.locator(".mainnav")).to_contain_text("Customers")
    expect(page.locator("nav.tabs")).to_contain_text("Details")

    page.locator(".topbar form[action='/logout'] button[type=submit]").click()
    expect(page).to_have_url(live_server.url + "/login")


def test_a_repair_card_shows_its_details_and_status(owner_page, live_server):
    customer = create_customer(name="Jan Kowalski", email="jan@example.com", phone="+48600100200")
    repair = create_repair(customer=customer, device="iPhone 12", description="Pęknięty wyświetlacz, dotyk nie działa")
    db.session.commit()
    owner_page.goto(f"{live_server.url}/repairs/{repair.id}")
    expect(owner_page.locator("h1")).to_contain_text(repair.number)
    owner_page.locator("#repair-head select[name=status]").select_option(label="diagnoza")
    owner_page.locator("#repair-head button[type=submit]").click()
    expect(owner_page.locator("#repair-head h1 .badge")).to_have_text("diagnoza")


def test_staff_make_a_company_with_its_nip_and_contact_people_on_the_card(staff_page, live_server):
    page = staff_page
    page.goto(live_server.url + "/customers/new")
    page.locator("input[name=kind][value=company]").check()
    page.locator("input[name=name]").fill("Serwis Biurowy sp. z o.o.")
    page.locator("input[name=nip]").fill("PL 123-456-32-18")
    page.locator("textarea[name=address]").fill("ul. Długa 1\n00-001 Warszawa")
    page.locator("main form button[type=submit].btn-primary").click()

    expect(page.locator("h1")).to_have_text("Serwis Biurowy sp. z o.o.")
    expect(page.locator("dl.details")).to_contain_text("123-456-32-18")
    contacts = page.locator("#contacts")
    contacts.locator("input[name=name]").fill("Ewa Zielińska")
    contacts.locator("input[name=email]").fill("ewa@serwis-biurowy.pl")
    contacts.locator("input[name=phone]").fill("601 234 567")
    contacts.locator("button[type=submit].btn-primary").click()
    expect(page.locator("#contacts tbody tr")).to_have_count(1)
    expect(page.locator("#contacts tbody")).to_contain_text("+48 601 234 567")

    page.locator("#contacts tbody a", has_text="Edit").click()
    page.locator("input[name=name]").fill("Ewa Zielińska-Nowak")
    page.locator("main form button[type=submit].btn-primary").click()
    expect(page.locator("#contacts tbody")).to_contain_text("Ewa Zielińska-Nowak")

    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))  # htmx asks first
    page.locator("#contacts tbody button", has_text="Remove").click()
    expect(page.locator("#contacts tbody tr")).to_have_count(0)
    expect(page.locator("#contacts")).to_contain_text("No contact people yet.")
    assert asked == ["Remove Ewa Zielińska-Nowak from the contact people?"]
