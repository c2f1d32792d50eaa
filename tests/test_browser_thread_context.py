"""Re-attaching a thread in a real browser: staff attach a customer's thread to one of their repairs from the
thread's header, and the timeline and the banner say so."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.messaging.threads import open_thread
from app.models import Thread
from app.repairs import create_repair
from inbound_helpers import make_customer


# Not the shared `customer`: the address the sample mails of tests/mail come from, no phone.
@pytest.fixture
def customer(app):
    return make_customer()


def test_staff_attach_a_thread_to_a_repair_from_the_header(staff_page, live_server, customer):
    page = staff_page
    repair = create_repair(customer=customer, device="iPhone 12")
    thread = open_thread(customer, subject="Kiedy odbiór?")
    db.session.commit()

    page.goto(f"{live_server.url}/threads/{thread.id}")
    header = page.locator('#thread-header [data-thread-context="repair"]')
    header.locator("select").select_option(str(repair.id))
    header.locator('[data-action="attach-repair"]').click()
    expect(page.locator(".flash-success")).to_contain_text("The thread's context is changed.")
    expect(page.locator(".context-banner")).to_contain_text(repair.number)
    expect(page.locator('.entry-event[data-event="repair"]')).to_contain_text(
        f"attached the thread to {repair.number}")
    db.session.expire_all()
    assert db.session.get(Thread, thread.id).repair_id == repair.id

    page.locator('#thread-header [data-action="detach-repair"]').click()
    expect(page.locator('.entry-event[data-event="repair"]').last).to_contain_text("detached the thread from")
    expect(page.locator(".context-banner")).to_have_count(0)
