"""Tickets (questions, complaints, requests) through the staff screens: opening, finding, reading, closing."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from helpers import csrf_token
from sqlalchemy import select

from app.errors import ValidationFailed
from app.extensions import db
from app.models import Customer, Queue, Ticket
from app.repairs import create_ticket

YEAR = datetime.now(ZoneInfo("Europe/Warsaw")).year
HTMX = {"HX-Request": "true"}


# Not the shared `customer`: phone only (no e-mail).
@pytest.fixture
def customer(app):
    customer = Customer(name="Jan Kowalski", phone="+48600100200")
    db.session.add(customer)
    db.session.commit()
    return customer


@pytest.fixture
def warranty(app):
    queue = Queue(name="Warranty", position=1)
    db.session.add(queue)
    db.session.commit()
    return queue


def open_ticket(client, **form):
    data = {"csrf_token": csrf_token(client, "/tickets/new"), "description": "", "queue": "0", "category": "",
            "priority": "normal", **form}
    return client.post("/tickets/new", data=data)


def test_staff_open_a_ticket_and_read_it_on_its_card(staff_client, customer, warranty):
    response = open_ticket(staff_client, customer_id=customer.id, subject="Invoice for last repair",
                           description="Needs the company's tax number", queue=str(warranty.id), category="invoice",
                           priority="high")

    assert response.status_code == 302
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.number == f"Z-{YEAR}-0001"
    card = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    for text in (f"Z-{YEAR}-0001 · Invoice for last repair", "Jan Kowalski", "Warranty", "invoice", "High", "Open",
                 "Needs the company&#39;s tax number"):
        assert text in card


def test_tickets_are_numbered_in_order(app, customer):
    numbers = [create_ticket(customer=customer, subject=f"Question {n}").number for n in range(2)]

    assert numbers == [f"Z-{YEAR}-0001", f"Z-{YEAR}-0002"]


def test_a_ticket_without_customer_and_subject_is_refused_naming_both(staff_client):
    response = open_ticket(staff_client, customer_id="", subject="")

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Choose an existing customer." in page and "Enter a subject." in page
    assert db.session.scalars(select(Ticket)).all() == []


def test_an_unknown_priority_or_queue_is_refused_by_the_rules(app, customer):
    with pytest.raises(ValidationFailed) as refused:
        create_ticket(customer=customer, subject="Hello", priority="whenever", queue=999)

    assert set(refused.value.fields) == {"priority", "queue"}


def test_the_new_ticket_form_comes_with_the_customer_of_the_link(staff_client, customer):
    page = staff_client.get(f"/tickets/new?customer_id={customer.id}").get_data(as_text=True)

    assert f'value="{customer.id}"' in page and "Jan Kowalski" in page


def test_the_ticket_list_finds_by_subject_and_filters_by_status(staff_client, customer):
    create_ticket(customer=customer, subject="Warranty claim for the kettle")
    closed = create_ticket(customer=customer, subject="Opening hours question")
    closed.status = "closed"
    db.session.commit()

    found = staff_client.get("/tickets/?q=kettle", headers=HTMX).get_data(as_text=True)
    only_closed = staff_client.get("/tickets/?status=closed", headers=HTMX).get_data(as_text=True)
    page = staff_client.get("/tickets/").get_data(as_text=True)

    assert "Warranty claim" in found and "Opening hours" not in found and "<html" not in found
    assert "Opening hours" in only_closed and "Warranty claim" not in only_closed
    assert 'href="/repairs/"' in page and 'aria-current="page">Tickets' in page


def test_staff_close_a_ticket_and_move_it_to_a_queue(staff_client, customer, warranty):
    ticket = create_ticket(customer=customer, subject="Where is my phone?")
    db.session.commit()

    response = staff_client.post(f"/tickets/{ticket.id}/edit", data={
        "csrf_token": csrf_token(staff_client, f"/tickets/{ticket.id}/edit"), "subject": "Where is my phone?",
        "description": "", "queue": str(warranty.id), "category": "", "priority": "normal", "status": "closed",
    })

    assert response.status_code == 302
    assert (ticket.status, ticket.queue_id) == ("closed", warranty.id)
    assert "Where is my phone?" in staff_client.get("/tickets/?status=closed", headers=HTMX).get_data(as_text=True)


def test_a_ticket_that_does_not_exist_is_not_found(staff_client):
    assert staff_client.get("/tickets/999").status_code == 404
