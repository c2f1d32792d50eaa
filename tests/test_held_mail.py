"""Held mail: staff see what was not let in and why, and accept it into a customer's conversation (teaching the
shop the sender's address), make a customer of its sender, or discard it, never losing it."""
from __future__ import annotations

import re

import pytest
from inbound_helpers import make_customer, make_mailbox, plain_mail, receive
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Customer, CustomerEmail, InboundItem, Message, Thread, TrustedDomain
from helpers import csrf_token

STRANGER = "Ewa Nowa <ewa.nowa@example.net>"


@pytest.fixture
def mailbox(app):
    return make_mailbox()


@pytest.fixture
def held(mailbox):
    """Two mails from a stranger, both held."""
    first = receive(mailbox, plain_mail(sender=STRANGER, subject="Naprawa laptopa <script>alert(1)</script>",
                                        body="Czy naprawiacie Lenovo?", message_id="<e1@example.net>"))
    second = receive(mailbox, plain_mail(sender=STRANGER, subject="Jeszcze pytanie", body="A Dell też?",
                                         message_id="<e2@example.net>"))
    assert first.status == second.status == "held"
    return first.item, second.item


def item(item_id: int) -> InboundItem:
    db.session.expire_all()
    return db.session.get(InboundItem, item_id)


def actions(item_id: int) -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "inbound_items",
                                                                   AuditEvent.target_id == item_id)))


def test_held_mail_is_listed_with_its_reason_and_shown_safely(staff_client, held):
    listing = staff_client.get("/held/").get_data(as_text=True)

    assert "ewa.nowa@example.net" in listing and "Unknown sender" in listing
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing and "<script>alert(1)" not in listing
    assert '<span class="counter" title="Held mail">2</span>' in listing

    page = staff_client.get(f"/held/{held[0].id}").get_data(as_text=True)
    assert "Czy naprawiacie Lenovo?" in page and "Ewa Nowa" in page
    assert "Message-ID: &lt;e1@example.net&gt;" in page  # the raw headers, escaped
    assert "<script>alert(1)" not in page


def test_the_accept_form_leaves_add_the_address_unticked_and_says_it_opens_the_panel(staff_client, held):
    """Adding the address lets whoever writes from it sign in to the customer's panel: a choice, never a default."""
    page = staff_client.get(f"/held/{held[0].id}").get_data(as_text=True)
    checkbox = re.search(r'<input[^>]*name="add_address"[^>]*>', page).group(0)
    assert "checked" not in checkbox
    assert "sign in to the customer's panel" in page or "zalogować się do panelu klienta" in page


def test_accepting_with_the_address_threads_the_senders_other_held_mail_too(staff_client, staff, held):
    customer = make_customer(name="Ewa Nowa-Kowalska", email="ewa@example.com")
    first, second = held

    response = staff_client.post(f"/held/{first.id}/accept", data={
        "csrf_token": csrf_token(staff_client, f"/held/{first.id}"), "customer_id": customer.id, "add_address": "y"})

    assert response.status_code == 302
    first, second = item(first.id), item(second.id)
    assert first.status == second.status == "accepted" and first.decided_by_id == staff.id
    threads = {db.session.get(Message, i.message_id).thread for i in (first, second)}
    assert {t.customer_id for t in threads} == {customer.id}
    assert response.headers["Location"].endswith(f"/threads/{db.session.get(Message, first.message_id).thread_id}")
    assert [e.address for e in db.session.get(Customer, customer.id).extra_emails] == ["ewa.nowa@example.net"]
    assert actions(first.id) == ["inbound.accept"] and actions(second.id) == ["inbound.accept"]
    assert staff_client.get("/held/").get_data(as_text=True).count("ewa.nowa@example.net") == 0


def test_accepting_without_the_address_leaves_the_other_mail_held(staff_client, held):
    customer = make_customer(name="Ewa", email="ewa@example.com")
    first, second = held

    staff_client.post(f"/held/{first.id}/accept", data={
        "csrf_token": csrf_token(staff_client, f"/held/{first.id}"), "customer_id": customer.id})

    assert item(first.id).status == "accepted" and item(second.id).status == "held"
    assert db.session.scalar(select(CustomerEmail.id)) is None


def test_accepting_needs_a_customer(staff_client, held):
    response = staff_client.post(f"/held/{held[0].id}/accept", data={
        "csrf_token": csrf_token(staff_client, f"/held/{held[0].id}"), "customer_id": ""})

    assert response.status_code == 422 and "Choose a customer." in response.get_data(as_text=True)
    assert item(held[0].id).status == "held"


def test_a_customer_is_made_from_the_sender_and_all_their_held_mail_goes_in(staff_client, held):
    first, second = held

    response = staff_client.post(f"/held/{first.id}/create-customer",
                                 data={"csrf_token": csrf_token(staff_client, f"/held/{first.id}")})

    assert response.status_code == 302
    customer = db.session.scalar(select(Customer).where(Customer.email == "ewa.nowa@example.net"))
    assert customer.name == "Ewa Nowa"
    assert item(first.id).status == item(second.id).status == "accepted"
    assert all(db.session.get(Message, i.message_id).thread.customer_id == customer.id
               for i in (item(first.id), item(second.id)))


def test_discarded_mail_leaves_the_list_but_is_kept(staff_client, staff, held):
    first = held[0]

    response = staff_client.post(f"/held/{first.id}/discard",
                                 data={"csrf_token": csrf_token(staff_client, f"/held/{first.id}")})

    assert response.status_code == 302
    kept = item(first.id)
    assert kept.status == "discarded" and kept.raw and kept.decided_by_id == staff.id
    assert actions(first.id) == ["inbound.discard"]
    assert f"/held/{first.id}\"" not in staff_client.get("/held/").get_data(as_text=True)
    again = staff_client.post(f"/held/{first.id}/discard",
                              data={"csrf_token": csrf_token(staff_client, f"/held/{first.id}")})
    assert again.status_code == 422


def test_decisions_need_the_csrf_token(staff_client, held):
    assert staff_client.post(f"/held/{held[0].id}/discard").status_code == 400
    assert item(held[0].id).status == "held"


def test_unreadable_mail_is_listed_and_can_only_be_discarded(staff_client, mailbox):
    broken = receive(mailbox, b"\r\n \r\n").item
    customer = make_customer()

    assert "could not be read" in staff_client.get("/held/").get_data(as_text=True)
    response = staff_client.post(f"/held/{broken.id}/accept", data={
        "csrf_token": csrf_token(staff_client, f"/held/{broken.id}"), "customer_id": customer.id})
    assert response.status_code == 422 and item(broken.id).status == "error"


def test_the_api_lists_held_and_unreadable_mail(api, held, mailbox):
    broken = receive(mailbox, b"\r\n \r\n").item

    body = api.get("/api/v1/held").get_json()

    assert {h["id"] for h in body["held"]} == {held[0].id, held[1].id, broken.id}
    assert {h["reason"] for h in body["held"]} >= {"Unknown sender: not a customer's address nor a trusted domain."}


def test_held_pages_need_a_signed_in_user(client, held):
    assert client.get("/held/").status_code == 302
    assert client.get(f"/held/{held[0].id}").status_code == 302
    assert client.get("/held/999999").status_code == 302


def test_a_new_thread_for_an_accepted_stranger_is_the_customers(staff_client, held):
    customer = make_customer(name="Ewa", email="ewa@example.com")
    staff_client.post(f"/held/{held[0].id}/accept", data={
        "csrf_token": csrf_token(staff_client, f"/held/{held[0].id}"), "customer_id": customer.id})

    thread = db.session.scalar(select(Thread).where(Thread.customer_id == customer.id))
    assert thread.unread and thread.subject.startswith("Naprawa laptopa")


# --- Settings → Trusted domains ------------------------------------------------------------------------------


def test_the_owner_trusts_a_partner_domain_and_its_mail_then_opens_threads(owner_client, mailbox):
    page = "/settings/trusted-domains/"
    response = owner_client.post(page, data={"csrf_token": csrf_token(owner_client, page), "domain": " @Partner.PL "})

    assert response.status_code == 302
    assert "partner.pl" in owner_client.get(page).get_data(as_text=True)
    outcome = receive(mailbox, plain_mail(sender="Hurtownia <biuro@partner.pl>", message_id="<td@partner.pl>"))
    assert outcome.status == "new_thread" and outcome.thread.customer_id is None
    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.action == "trusted_domain.add"))


@pytest.mark.parametrize("domain", ["pl", "", "partner..pl", "-zly.pl", "a b.pl", "http://partner.pl"])
def test_a_bad_domain_is_refused_with_a_reason(owner_client, domain):
    page = "/settings/trusted-domains/"

    response = owner_client.post(page, data={"csrf_token": csrf_token(owner_client, page), "domain": domain})

    assert response.status_code == 422 and "Enter a domain such as partner.pl." in response.get_data(as_text=True)


def test_a_trusted_domain_is_removed_and_its_mail_held_again(owner_client, mailbox):
    page = "/settings/trusted-domains/"
    owner_client.post(page, data={"csrf_token": csrf_token(owner_client, page), "domain": "partner.pl"})
    trusted_id = db.session.scalar(select(TrustedDomain.id))

    owner_client.post(f"{page}{trusted_id}/delete", data={"csrf_token": csrf_token(owner_client, page)})

    assert db.session.scalar(select(TrustedDomain.id)) is None
    assert receive(mailbox, plain_mail(sender="biuro@partner.pl", message_id="<td2@partner.pl>")).status == "held"


def test_staff_cannot_change_trusted_domains(staff_client):
    assert staff_client.get("/settings/trusted-domains/").status_code == 403


def test_a_bounce_for_unknown_mail_cannot_be_accepted_only_discarded(staff_client, mailbox):
    from inbound_helpers import sample

    bounce = receive(mailbox, sample("bounce_postfix.eml").replace(b"TOKEN", b"0123456789abcdef")).item
    customer = make_customer()

    response = staff_client.post(f"/held/{bounce.id}/accept", data={
        "csrf_token": csrf_token(staff_client, f"/held/{bounce.id}"), "customer_id": customer.id})

    assert response.status_code == 422 and "discard it instead" in response.get_data(as_text=True)
    assert item(bounce.id).status == "held"
