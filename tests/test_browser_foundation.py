"""The foundation as a person meets it in Chromium: signing in and out, limits, access, language, phones."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from browser_helpers import screenshot, sign_in_browser, submit_sign_in

pytestmark = pytest.mark.browser


def test_owner_signs_in_on_the_sign_in_page_and_sees_the_inbox(page, live_server, owner):
    page.goto(live_server.url + "/login")
    screenshot(page, "sign-in")

    sign_in_browser(page, live_server, owner)

    expect(page).to_have_url(live_server.url + "/")
    expect(page.locator(".mainnav a[aria-current=page]")).to_have_attribute("href", "/")
    expect(page.locator("main h1")).to_be_visible()
    screenshot(page, "inbox")


def test_a_wrong_password_shows_the_error_at_the_field(page, live_server, owner):
    response = submit_sign_in(page, live_server, owner.email, "wrong horse")

    assert response.status == 401
    expect(page.locator(".field.has-error .error")).to_be_visible()
    expect(page.locator("input[name=email]")).to_have_value(owner.email)
    expect(page.locator(".topbar")).to_have_count(0)


def test_the_sixth_quick_wrong_attempt_is_refused(page, live_server, owner):
    for _ in range(5):
        assert submit_sign_in(page, live_server, owner.email, "wrong horse").status == 401

    response = submit_sign_in(page, live_server, owner.email, "wrong horse")

    assert response.status == 429
    expect(page.get_by_role("alert")).to_have_text(re.compile("Too many sign-in attempts|Zbyt wiele"))
    expect(page.locator("input[name=password]")).to_be_visible()


def test_staff_cannot_open_the_settings(staff_page, live_server):
    expect(staff_page.locator(".mainnav a[href='/settings/']")).to_have_count(0)

    response = staff_page.goto(live_server.url + "/settings/")

    assert response.status == 403
    expect(staff_page.locator(".error-code")).to_have_text("403")


@pytest.mark.shop_locale("pl")
def test_switching_to_english_changes_the_navigation_and_stays_after_reload(owner_page, live_server):
    expect(owner_page.locator("html")).to_have_attribute("lang", "pl")

    owner_page.locator(".topbar .lang-switch button[value=en]").click()

    expect(owner_page.locator("html")).to_have_attribute("lang", "en")
    expect(owner_page.locator(".mainnav")).to_contain_text("Customers")
    owner_page.reload()
    expect(owner_page.locator("html")).to_have_attribute("lang", "en")
    expect(owner_page.locator(".mainnav")).to_contain_text("Customers")
    expect(owner_page.locator(".topbar .lang-switch button[value=en]")).to_have_attribute("aria-pressed", "true")


def test_signing_out_returns_to_the_sign_in_page(owner_page, live_server):
    owner_page.locator(".topbar form[action='/logout'] button[type=submit]").click()

    expect(owner_page).to_have_url(live_server.url + "/login")
    expect(owner_page.locator("input[name=password]")).to_be_visible()
    owner_page.goto(live_server.url + "/")
    expect(owner_page).to_have_url(re.compile(r"/login\b"))


def test_on_a_phone_the_menu_opens_the_navigation_without_sideways_scrolling(phone_page, live_server, owner):
    page = phone_page
    sign_in_browser(page, live_server, owner)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.locator(".nav-toggle summary").click()

    customers = page.locator(".mainnav a[href='/customers/']")
    expect(customers).to_be_visible()
    expect(customers).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "phone-navigation")
