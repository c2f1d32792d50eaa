"""Making a ticket of a conversation: from a thread's tools, or from held mail as it is accepted; the thread is
attached to the new ticket in the same step, audited, with an event in its timeline."""
from __future__ import annotations

import pytest
from helpers import csrf_token
from inbound_helpers import make_customer, make_mailbox, plain_mail, receive
from sqlalchemy import func, select

from app.extensions import db
from app.messaging.threads import open_thread
from app.models import AuditEvent, InboundItem, Message, Queue, Thread, Ticket, TrustedDomain

STRANGER = "Ewa Nowa <ewa.nowa@example.net>"


@pytest.fixture
def customer(app):  # Not the shared customer: the inbound helpers' one, whose address the sample mails use
    return make_customer()


def ticket_of(thread_id: int) -> Ticket | None:
    db.session.expire_all()
    return db.session.get(Thread, thread_id).ticket


def audited(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_a_ticket_is_made_from_a_thread_with_its_subject_and_the_thread_attached(staff_client, staff, customer):
    queue = Queue(name="Warsztat", position=1)
    db.session.add(queue)
    thread = open_thread(customer, subject="Wymiana baterii")
    thread.queue_id, thread.priority = queue.id, "high"
    db.session.commit()

    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert 'id="ticket-tool"' in page and 'value="Wymiana baterii"' in page
    response = staff_client.post(f"/threads/{thread.id}/ticket", data={
        "csrf_token": csrf_token(staff_client, f"/threads/{thread.id}"), "subject": "Bateria: wymiana"})

    assert response.status_code == 302 and response.headers["Location"].endswith(f"/threads/{thread.id}")
    ticket = ticket_of(thread.id)
    assert (ticket.subject, ticket.customer_id, ticket.queue_id, ticket.priority) == (
        "Bateria: wymiana", customer.id, queue.id, "high")
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert f"Ticket {ticket.number} made; this thread belongs to it." in page
    assert f"attached the thread to {ticket.number}." in page
    assert 'id="ticket-tool"' not in page  # one ticket per thread
    assert [a.details["thread_id"] for a in audited("ticket.from_thread")] == [thread.id]
    assert audited("ticket.create") and audited("thread.context")


def test_an_empty_subject_takes_the_threads_and_a_second_ticket_is_refused(staff_client, customer):
    thread = open_thread(customer, subject="Pęknięta szybka")
    db.session.commit()
    token = csrf_token(staff_client, f"/threads/{thread.id}")
    assert staff_client.post(f"/threads/{thread.id}/ticket", data={"csrf_token": token}).status_code == 302
    assert ticket_of(thread.id).subject == "Pęknięta szybka"

    again = staff_client.post(f"/threads/{thread.id}/ticket", data={"csrf_token": token}, follow_redirects=True)
    assert "This thread already belongs to ticket" in again.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Ticket.id))) == 1


def partner_thread() -> Thread:
    """A thread without a customer: mail from a trusted partner's domain."""
    db.session.add(TrustedDomain(domain="partner.pl"))
    db.session.commit()
    outcome = receive(make_mailbox(), plain_mail(sender="Hurtownia <biuro@partner.pl>", message_id="<p1@partner.pl>",
                                                 subject="Dostawa ekranów"))
    assert outcome.status == "new_thread" and outcome.thread.customer_id is None
    return outcome.thread


def test_a_thread_without_a_customer_must_be_attached_first(staff_client, app):
    thread = partner_thread()
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "Attach it to a customer first" in page

    response = staff_client.post(f"/threads/{thread.id}/ticket", data={
        "csrf_token": csrf_token(staff_client, f"/threads/{thread.id}")}, follow_redirects=True)
    assert "This thread has no customer. Attach it to a customer first" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Ticket.id))) == 0


def test_making_a_ticket_needs_the_csrf_token_and_a_thread_that_exists(staff_client, customer):
    thread = open_thread(customer, subject="Bez tokenu")
    db.session.commit()
    assert staff_client.post(f"/threads/{thread.id}/ticket", data={}).status_code == 400
    token = csrf_token(staff_client, f"/threads/{thread.id}")
    assert staff_client.post("/threads/999999/ticket", data={"csrf_token": token}).status_code == 404
    assert ticket_of(thread.id) is None


# --- from held mail --------------------------------------------------------------------------------------------


@pytest.fixture
def held(app):
    outcome = receive(make_mailbox(), plain_mail(sender=STRANGER, subject="Naprawa laptopa Lenovo",
                                                 body="Czy naprawiacie Lenovo?", message_id="<h1@example.net>"))
    assert outcome.status == "held"
    return outcome.item


def thread_of(item: InboundItem) -> Thread:
    db.session.expire_all()
    return db.session.get(Message, db.session.get(InboundItem, item.id).message_id).thread


def test_held_mail_is_accepted_into_a_customers_new_ticket(staff_client, staff, customer, held):
    page = staff_client.get(f"/held/{held.id}").get_data(as_text=True)
    assert "Accept and make a ticket" in page and "Create customer and make a ticket" in page
    response = staff_client.post(f"/held/{held.id}/accept", data={
        "csrf_token": csrf_token(staff_client, f"/held/{held.id}"), "customer_id": customer.id, "make_ticket": "1"})

    thread = thread_of(held)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/threads/{thread.id}")
    assert thread.customer_id == customer.id and thread.ticket.subject == "Naprawa laptopa Lenovo"
    assert thread.ticket.customer_id == customer.id
    shown = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert f"Ticket {thread.ticket.number} made for Jan Kowalski with this message." in shown
    assert [a.details["source"] for a in audited("ticket.from_thread")] == ["held_mail"]


def test_a_held_senders_new_customer_gets_a_ticket_in_one_step(staff_client, held):
    response = staff_client.post(f"/held/{held.id}/create-customer", data={
        "csrf_token": csrf_token(staff_client, f"/held/{held.id}"), "make_ticket": "1"})

    thread = thread_of(held)
    assert response.status_code == 302
    assert thread.customer.email == "ewa.nowa@example.net" and thread.ticket.customer_id == thread.customer_id
    assert f"and ticket {thread.ticket.number} made" in staff_client.get(
        f"/threads/{thread.id}").get_data(as_text=True)


def test_accepting_without_the_ticket_button_makes_no_ticket(staff_client, customer, held):
    staff_client.post(f"/held/{held.id}/accept", data={
        "csrf_token": csrf_token(staff_client, f"/held/{held.id}"), "customer_id": customer.id})
    assert thread_of(held).ticket is None and db.session.scalar(select(func.count(Ticket.id))) == 0


def test_a_refused_ticket_leaves_the_held_mail_held(staff_client, customer, app):
    outcome = receive(make_mailbox(), plain_mail(sender=STRANGER, subject="", body="Bez tematu",
                                                 message_id="<h2@example.net>"))
    response = staff_client.post(f"/held/{outcome.item.id}/accept", data={
        "csrf_token": csrf_token(staff_client, f"/held/{outcome.item.id}"), "customer_id": customer.id,
        "make_ticket": "1"})
    assert response.status_code == 422 and "Enter a subject." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(InboundItem, outcome.item.id).status == "held"
    assert db.session.scalar(select(func.count(Ticket.id))) == 0
