"""Conversations that fit real work, in a real browser: staff record a phone call for a customer they add on the
spot, with its queue, person and priority; and read a company's whole history on its card, filtered and paged."""
from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from app.customers import add_contact_person, create_customer
from app.extensions import db
from app.models import ConsentEvent, Customer, Queue, Thread, utcnow
from app.repairs import create_repair


def test_staff_record_a_call_from_a_new_customer_with_its_queue_person_and_priority(staff_page, live_server,
                                                                                      staff):
    page = staff_page
    db.session.add(Queue(name="Warsztat", position=1))
    db.session.commit()
    page.goto(live_server.url + "/threads/record")
    page.locator("#new-contact summary").click()
    page.locator("#new_customer-name").fill("Marek Telefon")
    page.locator("#new_customer-phone").fill("600 100 200")
    page.locator("#new-contact button[type=submit]").click()

    form = page.locator("#record-form")
    expect(form).to_contain_text("Marek Telefon")
    form.locator("select[name=source]").select_option("phone")
    form.locator("select[name=queue_id]").select_option(label="Warsztat")
    form.locator("select[name=assignee_id]").select_option(str(staff.id))
    form.locator("select[name=priority]").select_option("urgent")
    form.locator("input[name=subject]").fill("Telefon w sprawie wyceny")
    form.locator("textarea[name=body]").fill("Prosi o oddzwonienie po 15.")
    form.locator("button[type=submit]").click()

    expect(page.locator("#thread-header")).to_contain_text("Warsztat")
    expect(page.locator("main")).to_contain_text("Prosi o oddzwonienie po 15.")
    thread = db.session.scalars(db.select(Thread)).one()
    customer = db.session.scalars(db.select(Customer)).one()
    assert (customer.name, customer.phone) == ("Marek Telefon", "+48600100200")
    assert (thread.customer_id, thread.assignee_id, thread.priority) == (customer.id, staff.id, "urgent")


def test_staff_read_a_companys_history_filter_it_and_page_back(staff_page, live_server, staff):
    page = staff_page
    company = create_customer(name="Serwis Biurowy sp. z o.o.", kind="company", nip="1234563218")
    add_contact_person(company, name="Ewa Zielińska", email="ewa@serwis-biurowy.pl", actor=staff)
    create_repair(customer=company, device="HP LaserJet", actor=staff)
    base = utcnow() - timedelta(days=3)
    db.session.add_all([ConsentEvent(customer_id=company.id, kind="marketing", value=bool(i % 2), source="staff",
                                     created_at=base + timedelta(minutes=i)) for i in range(35)])
    db.session.commit()

    page.goto(f"{live_server.url}/customers/{company.id}?tab=history")
    history = page.locator("#customer-history")
    expect(history.locator('[data-history-kind="contacts"]')).to_contain_text("Contact person added: Ewa Zielińska")
    expect(history.locator('[data-history-kind="repairs"]').first).to_contain_text("Repair accepted")

    history.locator('a[data-kind="contacts"]').click()
    expect(page.locator("#customer-history .history-entry")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"kind=contacts"))  # the address follows, for the back button

    page.locator('#customer-history a[data-kind="consents"]').click()
    expect(page.locator("#customer-history .history-entry")).to_have_count(30)
    page.locator('#customer-history [data-action="older"]').click()
    expect(page.locator('#customer-history a[rel="prev"]')).to_be_visible()
    expect(page.locator("#customer-history .history-entry")).not_to_have_count(30)
