"""Bulk messages: ticked repairs or customers get one template; the preview counts per channel and says who is
skipped and why; sending queues through the outbox spaced at the shop's rate per channel."""
from __future__ import annotations

from datetime import timedelta

import pytest

from app.channels.sms_text import sms_text
from app.customers import create_customer
from app.extensions import db
from app.messaging.templates import save_template
from app.models import Delivery, Message, Shop, Thread
from app.repairs import create_repair
from helpers import csrf_token


@pytest.fixture
def people(app, mailbox, sms_account):
    Shop.current().bulk_rates = {"email": 120, "sms": 120, "portal": 120}  # 2 a second
    agreed = create_customer(name="Anna Zgoda", email="anna@example.com", phone="+48600100201", marketing_consent=True)
    no_phone = create_customer(name="Bartek Bezsms", email="bartek@example.com", marketing_consent=True)
    refused = create_customer(name="Celina Niechce", email="celina@example.com", phone="+48600100203")
    db.session.commit()
    return agreed, no_phone, refused


def promo(marketing=True):
    template = save_template(None, actor="test", name="Promocja", kind="message", language="pl",
                             channels=["email", "sms"], subject="Dla {{ customer_first_name }}",
                             body="{{ customer_first_name }}, bateria -20%!", marketing=marketing)
    db.session.commit()
    return template


def post_bulk(client, **fields):
    token = csrf_token(client, "/bulk/?" + "&".join(f"customer_id={i}" for i in fields.get("customer_id", [])))
    return client.post("/bulk/", data={"csrf_token": token, **fields})


def test_the_preview_counts_per_channel_and_names_who_is_skipped_and_why(staff_client, people):
    agreed, no_phone, refused = people
    template = promo()
    html = post_bulk(staff_client, customer_id=[c.id for c in people], template_id=template.id,
                     channels=["email", "sms"]).get_data(as_text=True)
    assert 'data-count-channel="email"' in html and "E-mail: 2" in html and "SMS: 1" in html
    assert "Celina Niechce" in html and "has not agreed to marketing messages" in html
    assert "Bartek Bezsms · SMS: The customer has no phone number." in html
    assert "Anna, bateria -20%!" in html and "Bartek, bateria -20%!" in html  # the first messages as they read
    assert db.session.scalar(db.select(db.func.count(Message.id))) == 0  # a preview sends nothing


def test_sending_queues_through_the_outbox_spaced_at_the_shops_rate(staff_client, people):
    agreed, no_phone, refused = people
    template = promo()
    response = post_bulk(staff_client, customer_id=[c.id for c in people], template_id=template.id,
                         channels=["email", "sms"], confirm="1")
    assert response.status_code == 302
    messages = db.session.scalars(db.select(Message).order_by(Message.id)).all()
    assert [db.session.get(Thread, m.thread_id).customer_id for m in messages] == [agreed.id, no_phone.id]
    emails = sorted(d.next_attempt_at for d in db.session.scalars(db.select(Delivery).where(Delivery.channel == "email")))
    assert emails[1] - emails[0] == timedelta(milliseconds=500)  # 2 per second
    assert db.session.scalar(db.select(db.func.count(Delivery.id)).where(Delivery.channel == "sms")) == 1


def test_bulk_from_the_repair_list_writes_about_each_repair(staff_client, people):
    agreed, _no_phone, _refused = people
    first = create_repair(customer=agreed, device="iPhone 12")
    second = create_repair(customer=agreed, device="iPad")
    db.session.commit()
    assert 'name="repair_id"' in staff_client.get("/repairs/").get_data(as_text=True)  # the list's tick boxes
    template = save_template(None, actor="test", name="Info", kind="message", language="pl", channels=["email"],
                             subject="", body="{{ device }} ({{ repair_number }})")
    db.session.commit()
    post_bulk(staff_client, repair_id=[first.id, second.id], template_id=template.id, channels=["email"], confirm="1")
    bodies = {m.body_text for m in db.session.scalars(db.select(Message))}
    assert bodies == {f"iPhone 12 ({first.number})", f"iPad ({second.number})"}
    assert {t.repair_id for t in db.session.scalars(db.select(Thread))} == {first.id, second.id}


def test_nothing_is_sent_without_a_template_or_a_channel(staff_client, people):
    response = post_bulk(staff_client, customer_id=[people[0].id], confirm="1")
    assert response.status_code == 422
    assert "Choose a template." in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Message.id))) == 0


def test_bulk_messages_carry_each_channels_own_text_and_the_preview_shows_each(staff_client, people):
    agreed, _no_phone, _refused = people
    template = save_template(None, actor="test", name="Promocja SMS", kind="message", language="pl",
                             channels=["email", "sms"], subject="Dla {{ customer_first_name }}",
                             body="{{ customer_first_name }}, bateria -20% do końca miesiąca. Zapraszamy!",
                             sms_body="{{ customer_first_name }}: bateria -20%, zapraszamy w środę", sms_plain=True, marketing=True)
    db.session.commit()

    html = post_bulk(staff_client, customer_id=[agreed.id], template_id=template.id,
                     channels=["email", "sms"]).get_data(as_text=True)
    card = html[html.index(f'data-preview-customer="{agreed.id}"'):]
    email = card[card.index('data-preview-channel="email"'):card.index('data-preview-channel="sms"')]
    sms = card[card.index('data-preview-channel="sms"'):card.index("</article>")]
    assert "Anna, bateria -20% do końca miesiąca. Zapraszamy!" in email and "Dla Anna" in email
    assert "Anna: bateria -20%, zapraszamy w środę" in sms and "the main text" not in sms

    post_bulk(staff_client, customer_id=[agreed.id], template_id=template.id, channels=["email", "sms"], confirm="1")
    [message] = db.session.scalars(db.select(Message)).all()
    assert message.body_text == "Anna, bateria -20% do końca miesiąca. Zapraszamy!"  # the e-mail's
    assert message.meta["texts"]["sms"] == "Anna: bateria -20%, zapraszamy w środę"
    assert sms_text(message) == "Anna: bateria -20%, zapraszamy w srode"  # without Polish letters, as chosen
