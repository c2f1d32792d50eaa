"""A tour of the demo shop's main screens in a real browser; with SCREENSHOTS_DIR set it makes the README's pictures."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.demo import OWNER_EMAIL, seed
from app.extensions import db
from app.models import Repair, User
from conftest import screenshot, sign_in_browser

PASSWORD = "demo-password-1"


@pytest.fixture
def demo_page(page, live_server):
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
    screenshot(page, "inbox")

    page.goto(live_server.url + "/customers/")
    expect(page.locator("#customer-results tbody tr")).not_to_have_count(0)
    screenshot(page, "customers")

    repair = db.session.scalars(db.select(Repair).order_by(Repair.id)).first()
    page.goto(f"{live_server.url}/repairs/{repair.id}")
    expect(page.locator("h1")).to_contain_text(repair.number)
    screenshot(page, "repair-card")

    page.goto(f"{live_server.url}/repairs/{repair.id}?tab=messages")
    screenshot(page, "repair-messages")

    page.goto(f"{live_server.url}/compose?repair_id={repair.id}")
    expect(page.locator("#compose-body")).to_be_visible()
    screenshot(page, "compose")

    page.goto(live_server.url + "/outbox/")
    expect(page.locator("h1")).to_be_visible()
    screenshot(page, "outbox")


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
