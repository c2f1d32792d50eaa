"""The inbox's New message: compose opened without a recipient asks for one, and a customer the shop does not have
yet can be added right there (the customer form's rules), then written to; "Record a conversation" likewise."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.customers import create_customer
from app.extensions import db
from app.models import Customer, Message, Thread
from helpers import csrf_token


def add_inline(client, path: str, **fields):
    data = {f"new_customer-{name}": value for name, value in fields.items()}
    return client.post(path, data={**data, "csrf_token": csrf_token(client, path)})


def test_the_inbox_offers_a_new_message(staff_client):
    html = staff_client.get("/").get_data(as_text=True)
    assert re.search(r'<a class="btn" href="/compose" id="new-message">New message</a>', html)
    page = staff_client.get("/compose").get_data(as_text=True)
    assert 'id="customer-search"' in page and "Or add a new customer" in page


def test_a_new_message_to_a_customer_added_inline(staff_client, mailbox):
    response = add_inline(staff_client, "/compose", name="Zofia Nowa", email="Zofia@Example.com", phone="")
    customer = db.session.scalars(select(Customer)).one()
    assert (customer.name, customer.email, customer.phone) == ("Zofia Nowa", "zofia@example.com", None)
    assert response.status_code == 302 and response.headers["Location"] == f"/compose?customer_id={customer.id}"

    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Zofia Nowa" in page and 'id="compose-form"' in page
    sent = staff_client.post("/compose", data={
        "customer_id": customer.id, "channels": ["email"], "subject": "Wycena", "body": "Dzień dobry!",
        "csrf_token": csrf_token(staff_client, f"/compose?customer_id={customer.id}")},
        content_type="multipart/form-data")
    assert sent.status_code == 302
    message = db.session.scalars(select(Message)).one()
    assert message.thread.customer_id == customer.id and [d.channel for d in message.deliveries] == ["email"]


@pytest.mark.parametrize("fields, errors", [
    ({"name": "Jan", "email": "", "phone": ""}, ["Enter an e-mail address or a phone number."]),
    ({"name": "", "email": "not-an-address", "phone": "12"}, ["Enter the customer&#39;s name.", "This is not a valid e-mail address", "This is not a valid phone number"]),
])
def test_an_inline_customer_is_checked_like_the_customer_form(staff_client, fields, errors):
    response = add_inline(staff_client, "/compose", **fields)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert '<details class="card new-contact" id="new-contact" open>' in html
    for error in errors:
        assert error in html
    assert db.session.scalar(select(db.func.count(Customer.id))) == 0


def test_the_inline_customer_needs_the_csrf_token(staff_client):
    response = staff_client.post("/compose", data={"new_customer-name": "Jan", "new_customer-email": "j@example.com"})
    assert response.status_code == 400
    assert db.session.scalar(select(db.func.count(Customer.id))) == 0


def test_a_post_without_a_customer_nor_a_new_one_is_refused(staff_client):
    assert staff_client.post("/compose", data={"body": "x", "csrf_token": csrf_token(staff_client, "/compose")}
                             ).status_code == 400


def test_recording_a_conversation_with_a_customer_added_inline(staff_client):
    assert "Or add a new customer" in staff_client.get("/threads/record").get_data(as_text=True)
    response = add_inline(staff_client, "/threads/record", name="Marek Telefon", email="", phone="600 100 200")
    customer = db.session.scalars(select(Customer)).one()
    assert customer.phone == "+48600100200"
    assert response.status_code == 302 and f"customer_id={customer.id}" in response.headers["Location"]
    recorded = staff_client.post("/threads/record", data={
        "customer_id": customer.id, "source": "phone", "status": "open", "subject": "Termin odbioru",
        "body": "Pyta o termin odbioru.",
        "csrf_token": csrf_token(staff_client, response.headers["Location"])})
    assert recorded.status_code == 302, re.findall(r'class="error"[^>]*>([^<]+)', recorded.get_data(as_text=True))
    assert db.session.scalars(select(Thread)).one().customer_id == customer.id

    refused = add_inline(staff_client, "/threads/record", name="Bez Kontaktu", email="", phone="")
    assert refused.status_code == 422 and "Enter an e-mail address or a phone number." in refused.get_data(as_text=True)


def test_an_existing_customer_is_still_chosen_with_the_picker(staff_client):
    create_customer(name="Anna Znana", email="anna@example.com")
    db.session.commit()
    html = staff_client.get("/customers/options", query_string={"q": "Znana"}).get_data(as_text=True)
    assert "Anna Znana" in html
