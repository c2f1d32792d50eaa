"""Customers: staff add, find and edit them; phone numbers and e-mail addresses are checked and normalised."""
import re

import pytest
from helpers import csrf_token
from sqlalchemy import func, select

from app.customers import create_customer, normalize_email, parse_phone, update_customer
from app.errors import ValidationFailed
from app.extensions import db
from app.models import AuditEvent, ConsentEvent, Customer, Repair, RepairStatus, Ticket

CARD_LINK = re.compile(r'href="/customers/\d+"')


@pytest.fixture
def request_context(app):
    """Error messages are translated, and the locale is chosen per request."""
    with app.test_request_context():
        yield


def add_customer(name: str, **fields) -> Customer:
    customer = create_customer(name=name, **fields)
    db.session.commit()
    return customer


def form_data(client, path: str, **fields) -> dict:
    data = {"name": "", "email": "", "phone": "", "crm_note": "", "sms_informational": "y"}
    data.update(fields)
    data["csrf_token"] = csrf_token(client, path)
    return {key: value for key, value in data.items() if value is not None}


def customer_count() -> int:
    return db.session.scalar(select(func.count(Customer.id)))


# Adding a customer

def test_staff_adds_a_customer_with_a_polish_phone_typed_with_spaces(staff_client, staff):
    data = form_data(staff_client, "/customers/new", name="Jan Kowalski", email="Jan.Kowalski@Example.com",
                     phone="600 100 200", crm_note="Prefers calls after 16:00")
    response = staff_client.post("/customers/new", data=data)

    customer = db.session.scalars(select(Customer)).one()
    assert response.status_code == 302
    assert response.headers["Location"] == f"/customers/{customer.id}"
    assert (customer.phone, customer.email) == ("+48600100200", "jan.kowalski@example.com")
    assert customer.sms_informational is True and customer.marketing_consent is False

    card = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "+48 600 100 200" in card
    assert "Customer Jan Kowalski saved." in card
    assert "Prefers calls after 16:00" in card


def test_a_new_customer_has_their_initial_consents_and_the_creation_on_record(staff_client, staff):
    data = form_data(staff_client, "/customers/new", name="Anna Nowak", sms_informational=None, marketing_consent="y")
    staff_client.post("/customers/new", data=data)

    customer = db.session.scalars(select(Customer)).one()
    assert customer.sms_informational is False and customer.marketing_consent is True
    consents = db.session.scalars(select(ConsentEvent).order_by(ConsentEvent.kind)).all()
    assert [(c.kind, c.value, c.source, c.user_id) for c in consents] == [
        ("marketing", True, "staff", staff.id),
        ("sms_informational", False, "staff", staff.id),
    ]
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.create")).one()
    assert (audit.user_id, audit.target_id) == (staff.id, customer.id)


def test_an_invalid_phone_is_refused_next_to_the_field_and_nothing_is_stored(staff_client):
    data = form_data(staff_client, "/customers/new", name="Jan Kowalski", phone="123")
    response = staff_client.post("/customers/new", data=data)

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="phone-error"' in html and "not a valid phone number" in html
    assert 'value="Jan Kowalski"' in html  # what was typed stays in the form
    assert customer_count() == 0


def test_an_invalid_email_and_a_missing_name_are_both_refused_at_once(staff_client):
    data = form_data(staff_client, "/customers/new", email="jan@localhost")
    response = staff_client.post("/customers/new", data=data)

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="email-error"' in html and "not a valid e-mail address" in html
    assert 'id="name-error"' in html and "Enter the customer" in html
    assert customer_count() == 0


def test_the_new_customer_form_sends_informational_sms_by_default_and_no_marketing(staff_client):
    html = staff_client.get("/customers/new").get_data(as_text=True)
    sms = re.search(r'<input[^>]*name="sms_informational"[^>]*>', html).group(0)
    marketing = re.search(r'<input[^>]*name="marketing_consent"[^>]*>', html).group(0)
    assert "checked" in sms and "checked" not in marketing
    assert "Polish numbers without +48 are fine" in html


# Finding customers

@pytest.fixture
def three_customers(app):
    add_customer("Jan Kowalski", email="jan@example.com", phone="600 100 200")
    add_customer("Anna Nowak", email="anna.nowak@shop.example", phone="+44 20 7946 0958")
    add_customer("Piotr Wiśniewski", phone="501 222 333")


def names_in(html: str) -> set[str]:
    return {name for name in ("Jan Kowalski", "Anna Nowak", "Piotr Wiśniewski") if name in html}


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("kowal", {"Jan Kowalski"}),  # part of the name, any case
        ("NOWAK@SHOP", {"Anna Nowak"}),  # part of the e-mail
        ("600 100", {"Jan Kowalski"}),  # phone digits typed with a space
        ("0048 600-100", {"Jan Kowalski"}),  # the way a number is dialled from Poland
        ("+44 20", {"Anna Nowak"}),
    ],
)
def test_staff_finds_customers_by_name_email_or_phone_digits(staff_client, three_customers, query, found):
    html = staff_client.get("/customers/", query_string={"q": query}).get_data(as_text=True)
    assert names_in(html) == found


def test_an_htmx_search_gets_only_the_results_and_a_plain_one_the_whole_page(staff_client, three_customers):
    fragment = staff_client.get("/customers/?q=kowal", headers={"HX-Request": "true"})
    page = staff_client.get("/customers/?q=kowal")

    assert "<html" not in fragment.get_data(as_text=True)
    assert names_in(fragment.get_data(as_text=True)) == {"Jan Kowalski"}
    assert "<html" in page.get_data(as_text=True) and 'id="customer-results"' in page.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]


def test_a_history_restore_gets_the_whole_page(staff_client, three_customers):
    response = staff_client.get("/customers/?q=kowal",
                                headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in response.get_data(as_text=True)


def test_a_search_without_results_says_so_and_offers_a_new_customer(staff_client, three_customers):
    html = staff_client.get("/customers/", query_string={"q": "<b>Zenon</b>"}).get_data(as_text=True)
    assert "No customers match “&lt;b&gt;Zenon&lt;/b&gt;”." in html
    assert 'href="/customers/new"' in html
    assert "<b>Zenon" not in html


def test_the_list_shows_phones_formatted_and_pages_by_fifty(staff_client):
    for number in range(55):
        add_customer(f"Customer {number:03d}", phone=f"600 100 {number:03d}")

    first = staff_client.get("/customers/?q=customer").get_data(as_text=True)
    second = staff_client.get("/customers/?q=customer&page=2").get_data(as_text=True)

    assert len(CARD_LINK.findall(first)) == 50 and len(CARD_LINK.findall(second)) == 5
    assert "Customer 000" in first and "Customer 054" in second and "Customer 054" not in first
    assert "+48 600 100 054" in second
    assert "Page 1 of 2" in first
    assert 'href="/customers/?q=customer&amp;page=2"' in first  # the search is kept while paging


def test_a_customer_picker_gets_at_most_ten_matching_options(staff_client):
    for number in range(12):
        add_customer(f"Kowalski {number:02d}", email=f"k{number}@example.com")
    add_customer("Anna Nowak")

    html = staff_client.get("/customers/options?q=kowal").get_data(as_text=True)
    ids = re.findall(r'data-customer-id="(\d+)"', html)
    assert len(ids) == 10
    assert "Anna Nowak" not in html and "<html" not in html
    assert 'data-customer-label="Kowalski 00 · k0@example.com"' in html


# The customer card

def test_the_card_shows_the_customers_repairs_tickets_and_consent_history(staff_client, staff):
    customer = add_customer("Jan Kowalski", phone="600 100 200", actor=staff)
    status = RepairStatus.ordered()[0]
    repair = Repair(number="R-2026-0001", customer_id=customer.id, device="iPhone 12", status_id=status.id)
    ticket = Ticket(number="Z-2026-0001", customer_id=customer.id, subject="Charging port loose again")
    db.session.add_all([repair, ticket])
    db.session.commit()
    card = f"/customers/{customer.id}"

    repairs = staff_client.get(f"{card}?tab=repairs").get_data(as_text=True)
    tickets = staff_client.get(f"{card}?tab=tickets").get_data(as_text=True)
    consents = staff_client.get(f"{card}?tab=consents").get_data(as_text=True)

    assert f'href="/repairs/{repair.id}"' in repairs and "iPhone 12" in repairs and status.name in repairs
    assert f'href="/tickets/{ticket.id}"' in tickets and "Charging port loose again" in tickets
    assert "Informational SMS" in consents and "Stefan Staff" in consents
    assert f'href="/repairs/new?customer_id={customer.id}"' in repairs


def test_an_unknown_customer_is_not_found(staff_client):
    assert staff_client.get("/customers/999").status_code == 404
    assert staff_client.get("/customers/999/edit").status_code == 404


# Editing

def test_switching_marketing_consent_on_records_exactly_one_consent_event(staff_client, staff):
    customer = add_customer("Jan Kowalski", email="jan@example.com", phone="600 100 200")
    before = db.session.scalar(select(func.count(ConsentEvent.id)))
    path = f"/customers/{customer.id}/edit"
    form = staff_client.get(path).get_data(as_text=True)
    assert 'value="+48 600 100 200"' in form  # the stored number is shown the readable way

    data = form_data(staff_client, path, name="Jan Kowalski", email="jan@example.com", phone="+48 600 100 200",
                     marketing_consent="y")
    response = staff_client.post(path, data=data)

    assert response.status_code == 302 and response.headers["Location"] == f"/customers/{customer.id}"
    new = db.session.scalars(select(ConsentEvent).order_by(ConsentEvent.id).offset(before)).all()
    assert [(e.kind, e.value, e.source, e.user_id) for e in new] == [("marketing", True, "staff", staff.id)]
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.update")).one()
    assert audit.details["fields"] == ["marketing_consent"]


def test_an_invalid_edit_changes_nothing(staff_client):
    customer = add_customer("Jan Kowalski", phone="600 100 200")
    path = f"/customers/{customer.id}/edit"
    data = form_data(staff_client, path, name="Jan Nowak", phone="12")
    response = staff_client.post(path, data=data)

    assert response.status_code == 422
    db.session.refresh(customer)
    assert (customer.name, customer.phone) == ("Jan Kowalski", "+48600100200")


# Access

@pytest.mark.parametrize("path", ["/customers/", "/customers/new", "/customers/1", "/customers/1/edit",
                                  "/customers/options?q=a"])
def test_anonymous_visitors_are_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


# The rules, without HTTP

@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("600 100 200", "+48600100200"),
        ("+48 600-100-200", "+48600100200"),
        ("0048600100200", "+48600100200"),
        ("(22) 123 45 67", "+48221234567"),  # a Warsaw landline
        ("+44 20 7946 0958", "+442079460958"),  # abroad keeps its country
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_phone_numbers_are_stored_in_e164(raw, e164):
    assert parse_phone(raw) == e164


def test_a_number_without_prefix_is_read_in_the_given_region():
    assert parse_phone("020 7946 0958", region="GB") == "+442079460958"


@pytest.mark.parametrize("raw", ["123", "600 100 20", "call me", "600 100 200 ext. 5", "+48 600 100 200 1"])
def test_invalid_phone_numbers_are_refused(request_context, raw):
    with pytest.raises(ValidationFailed) as refused:
        parse_phone(raw)
    assert set(refused.value.fields) == {"phone"}


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [(" Jan.Kowalski@Example.COM ", "jan.kowalski@example.com"), ("", None), (None, None)],
)
def test_email_addresses_are_stored_lower_case(raw, normalized):
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("jan@localhost", "period"),  # the library's reason is passed on
        ("jan kowalski@example.com", "invalid characters"),
        ("jan@example.com\r\nBcc: all@example.com", "one line"),
        ("jan@example.com\n", "one line"),
        ("jan@@example.com", "@"),
    ],
)
def test_invalid_email_addresses_are_refused_with_the_reason(request_context, raw, reason):
    with pytest.raises(ValidationFailed) as refused:
        normalize_email(raw)
    assert reason in refused.value.fields["email"]


def test_a_name_is_kept_on_one_line(app):
    customer = create_customer(name="  Jan   Kowalski ")
    assert customer.name == "Jan Kowalski"
    with pytest.raises(ValidationFailed) as refused:  # a line break would start a new mail header
        create_customer(name="Jan \n  Kowalski")
    assert refused.value.fields == {"name": "Must be on one line."}


def test_two_customers_may_share_an_email_address(app):
    first = add_customer("Jan Kowalski", email="family@example.com")
    second = add_customer("Ewa Kowalska", email="Family@example.com")
    assert first.email == second.email == "family@example.com"


def test_an_update_that_changes_nothing_records_nothing(app, staff):
    customer = add_customer("Jan Kowalski", phone="600 100 200")
    events = db.session.scalar(select(func.count(AuditEvent.id)))

    changed = update_customer(customer, actor=staff, name="Jan Kowalski", phone="+48 600 100 200",
                              sms_informational=True)

    assert changed == []
    assert db.session.scalar(select(func.count(AuditEvent.id))) == events


def test_a_machine_is_named_in_the_audit_trail(app):
    customer = add_customer("Jan Kowalski", actor="api:erp", source="api")
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.target_id == customer.id)).one()
    assert (audit.actor, audit.user_id, audit.details) == ("api:erp", None, {"source": "api"})
