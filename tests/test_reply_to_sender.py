"""Answering a thread without a customer (a trusted partner's or supplier's mail): by e-mail to whoever last wrote
to it, from the thread's reply box, with the thread's Reply-To token and References; their answer comes back into
the same thread. A thread nobody wrote to by e-mail says why it cannot be answered."""
from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta

import pytest
from helpers import csrf_token
from inbound_helpers import plain_mail, receive
from sqlalchemy import func, select

from app.extensions import db
from app.errors import ValidationFailed
from app.messaging.compose import compose
from app.models import Delivery, Message, Shop, Thread, TrustedDomain, utcnow
from app.outbox import dispatch_pass

pytestmark = pytest.mark.usefixtures("app")


def partner_thread(mailbox) -> Thread:
    """Mail from a trusted supplier's domain: a new thread with no customer."""
    db.session.add(TrustedDomain(domain="hurtownia.example"))
    db.session.commit()
    outcome = receive(mailbox, plain_mail(
        sender="Hurtownia Części <Biuro@Hurtownia.example>", to="serwis@shop.example", subject="Dostawa ekranów",
        body="Ekrany do iPhone 12 będą w piątek.", message_id="<dostawa-1@hurtownia.example>"))
    assert outcome.status == "new_thread" and outcome.thread.customer_id is None
    return outcome.thread


def reply_form(page: str) -> dict:
    form = re.search(r'<form[^>]*id="reply-form".*?</form>', page, re.S).group(0)
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def test_a_suppliers_thread_is_answered_by_email_and_their_answer_comes_back(
        staff_client, staff, mailbox, smtp_server):
    thread = partner_thread(mailbox)
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "Reply to biuro@hurtownia.example" in page
    assert 'value="sms"' not in page and 'value="portal"' not in page  # e-mail only, without a customer
    fields = reply_form(page)
    assert "customer_id" not in fields and fields["thread_id"] == str(thread.id)

    response = staff_client.post("/compose", data={**fields, "channels": "email",
                                                   "body": "Dziękujemy, poproszę 3 sztuki."})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/threads/{thread.id}")
    sent = dispatch_pass(now=utcnow() + timedelta(seconds=Shop.current().undo_seconds + 1))
    assert sent["sent"] == 1
    mail = email.message_from_bytes(smtp_server.wait_for(1)[0].data, policy=email.policy.default)
    assert mail["To"] == "biuro@hurtownia.example"
    assert thread.token in mail["Reply-To"]
    assert mail["In-Reply-To"] == "<dostawa-1@hurtownia.example>"
    assert "<dostawa-1@hurtownia.example>" in mail["References"]
    assert "poproszę 3 sztuki" in mail.get_body(preferencelist=("plain",)).get_content()
    db.session.expire_all()
    reply = db.session.scalar(select(Message).where(Message.direction == "out"))
    assert reply.thread_id == thread.id and reply.author_user_id == staff.id
    assert [(d.channel, d.recipient, d.status) for d in reply.deliveries] == [
        ("email", "biuro@hurtownia.example", "sent")]

    answer = receive(mailbox, plain_mail(
        sender="Hurtownia Części <biuro@hurtownia.example>", to=mail["Reply-To"], subject=f"Re: {mail['Subject']}",
        body="Wysłane, numer przesyłki 123.", message_id="<dostawa-2@hurtownia.example>",
        extra=f"In-Reply-To: {mail['Message-ID']}"))
    assert answer.status == "threaded" and answer.thread.id == thread.id
    shown = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "Wysłane, numer przesyłki 123." in shown and "poproszę 3 sztuki" in shown
    assert db.session.scalar(select(func.count(Thread.id))) == 1


def test_the_more_options_page_answers_the_sender_too(staff_client, mailbox):
    thread = partner_thread(mailbox)
    page = staff_client.get(f"/compose?thread_id={thread.id}").get_data(as_text=True)
    assert 'id="compose-sender">biuro@hurtownia.example<' in page and 'id="customer-search"' not in page
    token = csrf_token(staff_client, f"/compose?thread_id={thread.id}")
    refused = staff_client.post("/compose", data={"csrf_token": token, "thread_id": thread.id, "channels": "sms",
                                                  "body": "SMS?"})
    assert refused.status_code == 422
    assert "A thread without a customer can only be answered by e-mail." in refused.get_data(as_text=True)
    sent = staff_client.post("/compose", data={"csrf_token": token, "thread_id": thread.id, "channels": "email",
                                               "subject": "Zamówienie", "body": "Proszę o fakturę."})
    assert sent.status_code == 302
    delivery = db.session.scalars(select(Delivery)).one()
    assert delivery.recipient == "biuro@hurtownia.example" and delivery.message.subject == "Zamówienie"


def test_a_thread_nobody_wrote_to_by_email_says_why_it_cannot_be_answered(staff_client, mailbox):
    thread = Thread(subject="Notatka z targów", source_channel="phone")
    db.session.add(thread)
    db.session.commit()
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert 'id="reply-unavailable"' in page and "nobody wrote to it by e-mail" in page
    assert 'id="reply-form"' not in page
    response = staff_client.post("/compose", data={
        "csrf_token": csrf_token(staff_client, f"/threads/{thread.id}"), "thread_id": thread.id,
        "channels": "email", "body": "Halo?"})
    assert response.status_code == 422 and "nobody wrote to it by e-mail" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Delivery.id))) == 0


def test_the_rule_without_http_refuses_a_customer_less_reply_without_a_thread(mailbox):
    with pytest.raises(ValidationFailed) as refused:
        compose(customer=None, channels=["email"], body="Do kogo?")
    assert "customer_id" in refused.value.fields
