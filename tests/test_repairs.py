"""Repair orders through the staff screens: adding and numbering them, finding them, the card and its log."""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from helpers import csrf_token
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Customer, Repair, RepairEvent, RepairStatus
from app.repairs import create_repair

YEAR = datetime.now(ZoneInfo("Europe/Warsaw")).year  # the shop's time zone after the first migration
HTMX = {"HX-Request": "true"}


# Not the shared `customer`: Anna Nowak, whose name the repair pages are checked against.
@pytest.fixture
def customer(app):
    customer = Customer(name="Anna Nowak", phone="+48600100200", email="anna@example.com")
    db.session.add(customer)
    db.session.commit()
    return customer


def add_repair(client, **form):
    """Submit the new-repair form as staff would."""
    data = {"csrf_token": csrf_token(client, "/repairs/new"), "description": "", "price_estimate": "",
            "pickup_date": "", "number": "", "status": str(RepairStatus.ordered()[0].id), **form}
    return client.post("/repairs/new", data=data)


def repairs() -> list[Repair]:
    return list(db.session.scalars(select(Repair).order_by(Repair.id)))


def test_staff_adds_repairs_and_they_are_numbered_in_order_for_the_year(staff_client, customer):
    first = add_repair(staff_client, customer_id=customer.id, device="iPhone 12", description="Cracked screen")
    second = add_repair(staff_client, customer_id=customer.id, device="Samsung S21")

    assert first.status_code == second.status_code == 302
    assert [r.number for r in repairs()] == [f"R-{YEAR}-0001", f"R-{YEAR}-0002"]
    card = staff_client.get(first.headers["Location"]).get_data(as_text=True)
    assert f"R-{YEAR}-0001 · iPhone 12" in card
    assert "Cracked screen" in card


def test_a_new_repair_starts_in_the_first_status_of_the_workflow_unless_another_is_chosen(staff_client, customer):
    first, second = RepairStatus.ordered()[:2]
    create_repair(customer=customer, device="Kettle")
    db.session.commit()
    add_repair(staff_client, customer_id=customer.id, device="Toaster", status=str(second.id))

    assert [r.status_id for r in repairs()] == [first.id, second.id]
    assert [e.kind for e in db.session.scalars(select(RepairEvent))] == ["created", "created"]


def test_a_number_typed_by_hand_is_kept_and_a_second_use_is_refused_next_to_the_field(staff_client, customer):
    assert add_repair(staff_client, customer_id=customer.id, device="Laptop", number="EXT-77").status_code == 302

    again = add_repair(staff_client, customer_id=customer.id, device="Phone", number="ext-77")

    assert again.status_code == 422
    field = re.search(r'id="field-number".*?</div>', again.get_data(as_text=True), re.S).group(0)
    assert "already used" in field
    assert [r.number for r in repairs()] == ["EXT-77"]


def test_a_number_with_spaces_is_refused(staff_client, customer):
    response = add_repair(staff_client, customer_id=customer.id, device="Laptop", number="R 1")

    assert response.status_code == 422
    assert "without spaces" in response.get_data(as_text=True)
    assert repairs() == []


def test_automatic_numbers_skip_one_already_typed_by_hand(app, customer):
    create_repair(customer=customer, device="Radio", number=f"R-{YEAR}-0001")
    automatic = create_repair(customer=customer, device="TV")

    assert automatic.number == f"R-{YEAR}-0002"


def test_a_repair_without_customer_and_device_is_refused_naming_both(staff_client):
    response = add_repair(staff_client, customer_id="", device="  ")

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Choose an existing customer." in page
    assert "Enter the device." in page
    assert repairs() == []


def test_price_with_a_decimal_comma_and_a_pickup_date_are_kept(staff_client, customer):
    add_repair(staff_client, customer_id=customer.id, device="Drone", price_estimate="1 234,50",
               pickup_date="2030-05-17")

    repair = repairs()[0]
    assert repair.price_estimate == Decimal("1234.50")
    assert repair.pickup_date == date(2030, 5, 17)


def test_a_price_that_is_not_an_amount_is_refused(staff_client, customer):
    response = add_repair(staff_client, customer_id=customer.id, device="Drone", price_estimate="cheap")

    assert response.status_code == 422
    assert "Enter an amount" in response.get_data(as_text=True)


def test_the_new_repair_form_comes_with_the_customer_of_the_link_and_a_customer_search(staff_client, customer):
    page = staff_client.get(f"/repairs/new?customer_id={customer.id}").get_data(as_text=True)

    assert re.search(rf'name="customer_id" type="hidden" value="{customer.id}"', page)
    assert "Anna Nowak · anna@example.com" in page
    assert 'hx-get="/customers/options"' in page
    assert "/static/js/customer-picker.js" in page


def test_search_finds_repairs_by_a_word_of_the_device_and_by_part_of_the_number(staff_client, customer):
    create_repair(customer=customer, device="iPhone 12 mini")
    create_repair(customer=customer, device="Samsung Galaxy")
    db.session.commit()

    by_device = staff_client.get("/repairs/?q=IPHONE", headers=HTMX).get_data(as_text=True)
    by_number = staff_client.get("/repairs/?q=0002", headers=HTMX).get_data(as_text=True)

    assert "iPhone 12 mini" in by_device and "Samsung" not in by_device
    assert "Samsung Galaxy" in by_number and "iPhone" not in by_number
    assert "<html" not in by_device  # htmx gets the list alone


def test_the_search_url_without_htmx_is_the_whole_page_with_the_tickets_tab(staff_client, customer):
    create_repair(customer=customer, device="iPhone 12 mini")
    db.session.commit()

    page = staff_client.get("/repairs/?q=iphone").get_data(as_text=True)

    assert "<html" in page and "iPhone 12 mini" in page
    assert 'href="/tickets/"' in page
    assert 'hx-target="#repair-results"' in page


def test_a_search_that_finds_nothing_says_so(staff_client, customer):
    create_repair(customer=customer, device="iPhone")
    db.session.commit()

    assert "No repairs match." in staff_client.get("/repairs/?q=nokia", headers=HTMX).get_data(as_text=True)


def test_the_status_filter_lists_only_repairs_in_that_status(staff_client, customer):
    first, second = RepairStatus.ordered()[:2]
    create_repair(customer=customer, device="Waiting kettle", status=first)
    create_repair(customer=customer, device="Diagnosed toaster", status=second)
    db.session.commit()

    listed = staff_client.get(f"/repairs/?status={second.id}", headers=HTMX).get_data(as_text=True)

    assert "Diagnosed toaster" in listed and "Waiting kettle" not in listed


def test_the_list_shows_fifty_repairs_a_page(staff_client, customer):
    for n in range(51):
        create_repair(customer=customer, device=f"Phone {n}")
    db.session.commit()

    first = staff_client.get("/repairs/").get_data(as_text=True)
    second = staff_client.get("/repairs/?page=2", headers=HTMX).get_data(as_text=True)

    assert first.count("<tr>") == 51  # the header row and fifty repairs
    assert "Page 1 of 2" in first
    assert second.count("<tr>") == 2 and "Phone 0" in second


def test_status_change_on_the_card_swaps_the_head_and_shows_in_the_log(staff_client, staff, customer):
    repair = create_repair(customer=customer, device="iPad")
    db.session.commit()
    old, new = RepairStatus.ordered()[:2]
    token = csrf_token(staff_client, f"/repairs/{repair.id}")

    head = staff_client.post(f"/repairs/{repair.id}/status", data={"status": new.id, "csrf_token": token},
                             headers=HTMX)

    assert head.status_code == 200
    fragment = head.get_data(as_text=True)
    assert fragment.lstrip().startswith('<header id="repair-head">')
    assert f'badge-{new.colour}">{new.name}<' in fragment
    event = db.session.scalars(select(RepairEvent).where(RepairEvent.kind == "status")).one()
    assert (event.text, event.user_id) == (f"{old.name} → {new.name}", staff.id)
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "repair.status")).one()
    log = staff_client.get(f"/repairs/{repair.id}?tab=log").get_data(as_text=True)
    assert f"{old.name} → {new.name}" in log
    assert "Stefan Staff" in log


def test_status_change_without_javascript_returns_to_the_card(staff_client, customer):
    repair = create_repair(customer=customer, device="iPad")
    db.session.commit()
    new = RepairStatus.ordered()[1]

    response = staff_client.post(f"/repairs/{repair.id}/status",
                                 data={"status": new.id, "csrf_token": csrf_token(staff_client, "/repairs/new")})

    assert response.status_code == 302 and response.headers["Location"] == f"/repairs/{repair.id}"
    assert db.session.get(Repair, repair.id).status_id == new.id


def test_choosing_the_status_a_repair_already_has_logs_nothing(staff_client, customer):
    repair = create_repair(customer=customer, device="iPad")
    db.session.commit()

    staff_client.post(f"/repairs/{repair.id}/status",
                      data={"status": repair.status_id, "csrf_token": csrf_token(staff_client, "/repairs/new")})

    assert db.session.scalars(select(RepairEvent).where(RepairEvent.kind == "status")).all() == []


def test_a_deactivated_status_cannot_be_chosen_on_the_card(staff_client, customer):
    repair = create_repair(customer=customer, device="iPad")
    retired = RepairStatus.ordered()[2]
    retired.active = False
    db.session.commit()

    head = staff_client.post(f"/repairs/{repair.id}/status", headers=HTMX,
                             data={"status": retired.id, "csrf_token": csrf_token(staff_client, "/repairs/new")})

    assert "Choose one of the active statuses." in head.get_data(as_text=True)
    assert db.session.get(Repair, repair.id).status_id != retired.id


def test_the_details_tab_shows_the_customer_contact_and_the_repair(staff_client, customer):
    repair = create_repair(customer=customer, device="Nintendo Switch", description="Joy-Con drifts",
                           pickup_date=date(2030, 1, 2))
    db.session.commit()

    card = staff_client.get(f"/repairs/{repair.id}").get_data(as_text=True)

    assert f'href="/customers/{customer.id}"' in card
    assert "anna@example.com" in card and 'href="tel:+48600100200"' in card
    assert "Joy-Con drifts" in card
    assert "2030" in card


def test_staff_edit_a_repair_and_the_change_is_audited(staff_client, customer):
    repair = create_repair(customer=customer, device="Nintendo Swich")
    db.session.commit()
    token = csrf_token(staff_client, f"/repairs/{repair.id}/edit")

    response = staff_client.post(f"/repairs/{repair.id}/edit", data={
        "csrf_token": token, "device": "Nintendo Switch", "description": "", "price_estimate": "99",
        "pickup_date": "",
    })

    assert response.status_code == 302
    assert (repair.device, repair.price_estimate) == ("Nintendo Switch", Decimal("99.00"))
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "repair.update")).one()
    assert set(audit.details["fields"]) == {"device", "price_estimate"}


def test_a_repair_that_does_not_exist_is_not_found(staff_client):
    assert staff_client.get("/repairs/999").status_code == 404


def test_repairs_need_a_signed_in_user(client):
    response = client.get("/repairs/")

    assert response.status_code == 302 and "/login" in response.headers["Location"]


# ---------------------------------------------------------------- in the browser


def console_errors(page) -> list[str]:
    """Collects the page's console errors from now on (a CSP violation is one)."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def test_staff_find_the_customer_in_the_picker_and_add_a_repair(staff_page, live_server, customer):
    from playwright.sync_api import expect

    errors = console_errors(staff_page)
    staff_page.goto(live_server.url + "/repairs/new")

    staff_page.locator("#customer-search").fill("Anna")
    staff_page.locator("#customer-options [data-customer-id]").first.click()
    expect(staff_page.locator("input[name=customer_id]")).to_have_value(str(customer.id))
    expect(staff_page.locator("[data-customer-chosen]")).to_contain_text("Anna Nowak")
    staff_page.locator("input[name=device]").fill("Pixel 7")
    staff_page.locator("form.card button[type=submit]").click()

    expect(staff_page.locator("#repair-head h1")).to_contain_text(f"R-{YEAR}-0001 · Pixel 7")
    assert errors == []


def test_typing_in_the_search_narrows_the_list_in_place_and_the_address_follows(staff_page, live_server, customer):
    from playwright.sync_api import expect

    create_repair(customer=customer, device="iPhone 12 mini")
    create_repair(customer=customer, device="Samsung Galaxy")
    db.session.commit()
    staff_page.goto(live_server.url + "/repairs/")
    staff_page.evaluate("window.notReloaded = true")

    staff_page.locator("input[name=q]").fill("galaxy")

    expect(staff_page.locator("#repair-results tbody tr")).to_have_count(1)
    expect(staff_page.locator("#repair-results tbody")).to_contain_text("Samsung Galaxy")
    expect(staff_page).to_have_url(re.compile(r"q=galaxy"))
    assert staff_page.evaluate("window.notReloaded") is True


def test_changing_the_status_on_the_card_updates_its_head_in_place(staff_page, live_server, customer):
    from playwright.sync_api import expect

    repair = create_repair(customer=customer, device="iPad")
    db.session.commit()
    new = RepairStatus.ordered()[1]
    staff_page.goto(f"{live_server.url}/repairs/{repair.id}")
    staff_page.evaluate("window.notReloaded = true")

    staff_page.locator("#repair-head select[name=status]").select_option(str(new.id))
    staff_page.locator("#repair-head button[type=submit]").click()

    expect(staff_page.locator("#repair-head h1 .badge")).to_have_text(new.name)
    assert staff_page.evaluate("window.notReloaded") is True
