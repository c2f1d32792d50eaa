"""Customers' SMS replies: signed by Twilio, kept once, joined to the repair we texted them about, or held."""
from __future__ import annotations

import logging
import re
import zlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.customers import create_customer
from app.extensions import db
from app.inbound.sms import IncomingSms, keyword_of, receive_sms
from app.models import AuditEvent, ConsentEvent, Customer, Delivery, InboundItem, Message, Shop, Thread, utcnow
from app.outbox import dispatch_pass
from app.repairs import create_repair
from app.accounts.sms import configure_sms
from helpers import csrf_token
from servers.twilio import post_callback, sign

pytestmark = pytest.mark.usefixtures("app")  # every test works in the app's context

MOBILE = "+48600100200"
SHOP_NUMBER = "+48500100200"
INBOUND_URL = "http://shop.example/webhooks/twilio/sms"  # PUBLIC_BASE_URL of the tests + the path
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@pytest.fixture
def account(twilio_server):
    account = configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number=SHOP_NUMBER,
                            api_base_url=twilio_server.url, actor="test")
    Shop.current().undo_seconds = 0  # what staff send is due at once, for the outbox pass
    db.session.commit()
    return account


def new_repair(customer, device: str):
    repair = create_repair(customer=customer, device=device)
    db.session.commit()
    return repair


def text_about(client, customer, repair, body: str = "Telefon gotowy do odbioru.") -> Delivery:
    """Staff write to the customer by SMS from the repair card; the outbox sends it through the local Twilio."""
    data = {"customer_id": customer.id, "repair_id": repair.id, "channels": ["sms"], "body": body,
            "csrf_token": csrf_token(client, f"/compose?repair_id={repair.id}")}
    response = client.post("/compose", data=data, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)
    assert dispatch_pass()["sent"] == 1
    return db.session.scalars(select(Delivery).order_by(Delivery.id.desc()).limit(1)).one()


def replied(twilio_server, client, body: str, sender: str = MOBILE, **fields):
    """The customer answers from `sender`: Twilio posts the signed SMS to the app."""
    return twilio_server.text(client, INBOUND_URL, sender, body, SHOP_NUMBER, **fields)


def count_of(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def inbound_messages() -> list[Message]:
    db.session.expire_all()
    return list(db.session.scalars(select(Message).where(Message.direction == "in").order_by(Message.id)))


def held_items() -> list[InboundItem]:
    return list(db.session.scalars(select(InboundItem).where(InboundItem.status == "held")))


def test_a_signed_reply_lands_unread_in_the_repairs_thread_and_the_answer_defaults_to_sms(
        staff_client, account, customer, twilio_server):
    repair = new_repair(customer, "iPhone 12")
    delivery = text_about(staff_client, customer, repair)
    thread = delivery.message.thread

    response = replied(twilio_server, staff_client, "Dzięki, będę jutro po 16.")

    assert response.status_code == 200
    assert response.mimetype == "text/xml" and response.get_data(as_text=True) == EMPTY_TWIML
    [message] = inbound_messages()
    assert message.thread_id == thread.id and (message.channel, message.kind) == ("sms", "message")
    assert (message.author_customer_id, message.sender) == (customer.id, MOBILE)
    assert message.body_text == "Dzięki, będę jutro po 16."
    thread = db.session.get(Thread, thread.id)
    assert thread.unread and thread.status == "waiting_us" and thread.last_inbound_at is not None
    assert thread.last_message_preview == "Dzięki, będę jutro po 16."
    item = db.session.scalars(select(InboundItem)).one()
    assert (item.source, item.status, item.message_id, item.sender) == ("sms", "accepted", message.id, MOBILE)

    inbox = staff_client.get("/").get_data(as_text=True)
    assert "is-unread" in inbox and "Dzięki, będę jutro po 16." in inbox
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "Dzięki, będę jutro po 16." in page
    compose = staff_client.get(f"/compose?thread_id={thread.id}").get_data(as_text=True)
    assert re.search(r'value="sms"[^>]*checked', compose) and not re.search(r'value="email"[^>]*checked', compose)


def test_a_forged_sms_is_refused_logged_and_stores_nothing(client, account, customer, twilio_server, caplog):
    params = twilio_server.incoming_params(MOBILE, "Proszę o zwrot 500 zł", SHOP_NUMBER)

    with caplog.at_level(logging.WARNING, logger="app.webhooks.twilio"):
        forged = post_callback(client, INBOUND_URL, params,
                               sign("not-the-auth-token", INBOUND_URL, params))
        unsigned = client.post("/webhooks/twilio/sms", data=params, base_url="http://shop.example")

    assert forged.status_code == 403 and unsigned.status_code == 403
    assert "refused an inbound SMS" in caplog.text
    assert count_of(InboundItem) == 0 and count_of(Message) == 0


def test_a_nul_character_in_the_text_does_not_lose_the_sms(staff_client, account, customer, twilio_server):
    text_about(staff_client, customer, new_repair(customer, "iPhone 12"))

    response = replied(twilio_server, staff_client, "Odbiorę\x00 jutro")

    assert response.status_code == 200
    assert [m.body_text for m in inbound_messages()] == ["Odbiorę jutro"]


def test_the_same_sms_posted_twice_is_stored_once(staff_client, account, customer, twilio_server):
    repair = new_repair(customer, "iPhone 12")
    text_about(staff_client, customer, repair)

    first = replied(twilio_server, staff_client, "OK", sid="SM" + "1" * 32)
    again = replied(twilio_server, staff_client, "OK", sid="SM" + "1" * 32)

    assert first.status_code == again.status_code == 200
    assert again.mimetype == "text/xml" and again.get_data(as_text=True) == EMPTY_TWIML
    assert len(inbound_messages()) == 1 and count_of(InboundItem) == 1


def test_a_repeat_that_loses_the_race_for_the_unique_key_leaves_the_rest_of_the_transaction_alone(
        account, customer):
    first = receive_sms(IncomingSms(sid="SM" + "2" * 32, sender=MOBILE, to=SHOP_NUMBER, body="STOP"))
    again = receive_sms(IncomingSms(sid="SM" + "2" * 32, sender=MOBILE, to=SHOP_NUMBER, body="STOP"))
    db.session.commit()

    assert again.status == "duplicate" and again.item.id == first.item.id
    assert count_of(InboundItem) == 1
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).sms_informational is False  # the first one's work stayed
    assert count_of(ConsentEvent) == 3  # two consents at creation, one STOP


def test_a_reply_after_the_fifteen_day_window_is_held_with_the_reason(staff_client, account, customer,
                                                                      twilio_server):
    repair = new_repair(customer, "iPhone 12")
    delivery = text_about(staff_client, customer, repair)
    delivery.sent_at = utcnow() - timedelta(days=16)
    db.session.commit()

    response = replied(twilio_server, staff_client, "Czy telefon nadal czeka?")

    assert response.status_code == 200 and response.get_data(as_text=True) == EMPTY_TWIML
    assert inbound_messages() == []
    [item] = held_items()
    assert item.source == "sms" and item.sender == MOBILE and item.message_id is None
    assert item.reason == ("We sent +48600100200 no SMS in the last 15 days, so this reply cannot be tied to "
                           "a conversation.")
    assert zlib.decompress(item.raw).decode() == "Czy telefon nadal czeka?"  # the text is kept for staff


def test_the_owners_longer_reply_window_lets_a_late_reply_in(staff_client, account, customer, twilio_server):
    repair = new_repair(customer, "iPhone 12")
    delivery = text_about(staff_client, customer, repair)
    delivery.sent_at = utcnow() - timedelta(days=16)
    Shop.current().sms_reply_window_days = 30
    db.session.commit()

    replied(twilio_server, staff_client, "Czy telefon nadal czeka?")

    [message] = inbound_messages()
    assert message.thread_id == delivery.message.thread_id and held_items() == []


def test_an_sms_from_an_unknown_number_is_held(client, account, twilio_server):
    response = replied(twilio_server, client, "Dzień dobry, ile kosztuje wymiana ekranu?", sender="+48601999888")

    assert response.status_code == 200 and response.get_data(as_text=True) == EMPTY_TWIML
    [item] = held_items()
    assert item.reason == "No customer has the number +48601999888."
    assert item.sender == "+48601999888" and inbound_messages() == []


def test_a_reply_while_we_send_from_a_sender_name_is_held_with_that_reason(
        staff_client, account, customer, twilio_server):
    repair = new_repair(customer, "iPhone 12")
    text_about(staff_client, customer, repair)
    account.from_number = "SERWIS"  # the shop switched to a name; replies come only to its own number
    db.session.commit()

    replied(twilio_server, staff_client, "Dziękuję")

    [item] = held_items()
    assert "sender name SERWIS, which customers cannot reply to" in item.reason
    assert inbound_messages() == []


def test_with_two_repairs_texted_the_reply_goes_to_the_latest_and_staff_move_it_in_one_click(
        staff_client, staff, account, customer, twilio_server):
    screen = new_repair(customer, "iPhone 12")
    laptop = new_repair(customer, "ThinkPad T14")
    earlier = text_about(staff_client, customer, screen, "Ekran wymieniony, do odbioru.")
    earlier.sent_at = utcnow() - timedelta(days=2)
    db.session.commit()
    latest = text_about(staff_client, customer, laptop, "Wycena naprawy laptopa: 450 zł. Naprawiamy?")
    screen_thread, laptop_thread = earlier.message.thread, latest.message.thread

    replied(twilio_server, staff_client, "Odbiorę jutro")

    [message] = inbound_messages()
    assert message.thread_id == laptop_thread.id
    assert message.meta["may_belong_to"] == [{"id": screen_thread.id, "label": f"{screen.number} · {screen_thread.subject}"}]
    page = staff_client.get(f"/threads/{laptop_thread.id}").get_data(as_text=True)
    assert f"May belong to {screen.number} · iPhone 12" in page
    assert f"Move to {screen.number} · iPhone 12" in page

    response = staff_client.post(f"/threads/{laptop_thread.id}/messages/{message.id}/move",
                                 data={"to_thread_id": screen_thread.id,
                                       "csrf_token": csrf_token(staff_client, f"/threads/{laptop_thread.id}")})

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/threads/{screen_thread.id}#message-{message.id}")
    db.session.expire_all()
    message = db.session.get(Message, message.id)
    assert message.thread_id == screen_thread.id and "may_belong_to" not in message.meta
    events = db.session.scalars(select(Message).where(Message.kind == "event").order_by(Message.thread_id)).all()
    assert {e.thread_id for e in events} == {screen_thread.id, laptop_thread.id}
    assert all(e.author_user_id == staff.id and not e.visible_to_customer for e in events)
    moved_in = next(e for e in events if e.thread_id == screen_thread.id)
    assert moved_in.body_text == f"SMS from Jan Kowalski moved here from “{laptop.number} · {laptop_thread.subject}”."
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "message.move")).one()
    assert audit.user_id == staff.id and audit.details == {"from_thread": laptop_thread.id,
                                                           "to_thread": screen_thread.id}
    screen_page = staff_client.get(f"/threads/{screen_thread.id}").get_data(as_text=True)
    assert "Odbiorę jutro" in screen_page and "May belong to" not in screen_page
    assert "Moved to" in screen_page  # the flash


def test_a_message_cannot_be_moved_into_another_customers_thread(staff_client, account, customer, twilio_server):
    repair = new_repair(customer, "iPhone 12")
    thread = text_about(staff_client, customer, repair).message.thread
    replied(twilio_server, staff_client, "Odbiorę jutro")
    [message] = inbound_messages()
    stranger = create_customer(name="Ewa Obca", phone="600 300 400")
    db.session.flush()
    other = Thread(customer_id=stranger.id, subject="Cudzy wątek")
    db.session.add(other)
    db.session.commit()

    response = staff_client.post(f"/threads/{thread.id}/messages/{message.id}/move",
                                 data={"to_thread_id": other.id,
                                       "csrf_token": csrf_token(staff_client, f"/threads/{thread.id}")},
                                 follow_redirects=True)

    assert "The message can only move to a thread of the customer who sent it." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Message, message.id).thread_id == thread.id
    assert db.session.scalar(select(func.count()).where(AuditEvent.action == "message.move")) == 0


def test_a_reply_from_a_phone_two_customers_share_can_move_to_the_other_ones_thread(
        staff_client, account, customer, twilio_server):
    wife = create_customer(name="Anna Kowalska", phone=MOBILE)
    db.session.commit()
    his = text_about(staff_client, customer, new_repair(customer, "iPhone 12"))
    his.sent_at = utcnow() - timedelta(days=1)
    db.session.commit()
    hers = text_about(staff_client, wife, new_repair(wife, "Galaxy A52"))
    replied(twilio_server, staff_client, "Odbiorę oba jutro")
    [message] = inbound_messages()
    assert message.thread_id == hers.message.thread_id and message.author_customer_id == wife.id
    his_thread = his.message.thread

    response = staff_client.post(f"/threads/{message.thread_id}/messages/{message.id}/move",
                                 data={"to_thread_id": his_thread.id,
                                       "csrf_token": csrf_token(staff_client, f"/threads/{message.thread_id}")})

    assert response.status_code == 302
    db.session.expire_all()
    message = db.session.get(Message, message.id)
    assert (message.thread_id, message.author_customer_id) == (his_thread.id, customer.id)


def test_stop_turns_informational_sms_off_and_compose_then_refuses_sms_with_the_reason(
        staff_client, account, customer, twilio_server):
    repair = new_repair(customer, "iPhone 12")
    thread = text_about(staff_client, customer, repair).message.thread

    response = replied(twilio_server, staff_client, "Stop.")

    assert response.get_data(as_text=True) == EMPTY_TWIML
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).sms_informational is False
    event = db.session.scalars(select(ConsentEvent).where(ConsentEvent.source == "sms_keyword")).one()
    assert (event.customer_id, event.kind, event.value) == (customer.id, "sms_informational", False)
    [message] = inbound_messages()  # staff still see what the customer wrote
    assert message.thread_id == thread.id and message.meta["keyword"] == "stop"
    assert "Informational SMS turned off by this reply" in staff_client.get(f"/threads/{thread.id}").get_data(
        as_text=True)
    card = staff_client.get(f"/customers/{customer.id}?tab=consents").get_data(as_text=True)
    assert "SMS reply" in card

    data = {"customer_id": customer.id, "repair_id": repair.id, "channels": ["sms"], "body": "Czy odbiór jutro?",
            "csrf_token": csrf_token(staff_client, f"/compose?repair_id={repair.id}")}
    refused = staff_client.post("/compose", data=data, content_type="multipart/form-data")
    assert refused.status_code == 422
    assert "The customer turned SMS off." in refused.get_data(as_text=True)
    answer = staff_client.get(f"/compose?thread_id={thread.id}").get_data(as_text=True)
    assert not re.search(r'value="sms"[^>]*checked', answer)  # the STOP reply no longer makes SMS the default

    replied(twilio_server, staff_client, "START")

    db.session.expire_all()
    assert db.session.get(Customer, customer.id).sms_informational is True
    assert db.session.scalars(select(ConsentEvent.value).where(ConsentEvent.source == "sms_keyword")
                              .order_by(ConsentEvent.id)).all() == [False, True]


def test_stop_from_a_number_we_never_texted_still_turns_sms_off_and_is_held(client, account, customer,
                                                                             twilio_server):
    replied(twilio_server, client, "NIE")

    db.session.expire_all()
    assert db.session.get(Customer, customer.id).sms_informational is False
    [item] = held_items()
    assert "no SMS in the last 15 days" in item.reason


@pytest.mark.parametrize("body, keyword", [
    ("STOP", "stop"), (" stop ", "stop"), ("Stop!", "stop"), ("stopall", "stop"), ("Unsubscribe", "stop"),
    ("cancel", "stop"), ("END", "stop"), ("quit.", "stop"), ("Nie", "stop"), ("NIE!!", "stop"),
    ("start", "start"), ("Unstop", "start"), ("START.", "start"),
    ("Stop wysyłania proszę", None), ("Nie wiem, kiedy przyjdę", None), ("", None), ("Startuje jutro", None),
])
def test_only_a_whole_message_of_one_keyword_counts(body, keyword):
    assert keyword_of(body) == keyword


def test_the_pictures_of_an_mms_are_counted_and_kept_as_links(staff_client, account, customer, twilio_server):
    repair = new_repair(customer, "iPhone 12")
    thread = text_about(staff_client, customer, repair).message.thread
    urls = (f"https://api.twilio.com/2010-04-01/Accounts/{twilio_server.account_sid}/Messages/MM1/Media/ME1",
            f"https://api.twilio.com/2010-04-01/Accounts/{twilio_server.account_sid}/Messages/MM1/Media/ME2")

    replied(twilio_server, staff_client, "Tak wygląda pęknięcie", media_urls=urls)

    [message] = inbound_messages()
    assert message.meta["media"] == {"count": 2, "urls": list(urls)}
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "The SMS came with 2 pictures (MMS)" in page


def test_staff_read_a_held_sms_and_create_the_customer_from_it(staff_client, account, twilio_server):
    replied(twilio_server, staff_client, "Dzień dobry, czy mój laptop już gotowy?", sender="+48601222333")
    item = held_items()[0]

    assert "czy mój laptop już gotowy?" in staff_client.get("/held/").get_data(as_text=True)  # the list shows it
    page = staff_client.get(f"/held/{item.id}").get_data(as_text=True)
    assert "czy mój laptop już gotowy?" in page
    assert "+48 601 222 333" in page and "&lt;+48601222333&gt;" not in page  # a number, not a mail address
    response = staff_client.post(f"/held/{item.id}/create-customer",
                                 data={"csrf_token": csrf_token(staff_client, f"/held/{item.id}")})

    assert response.status_code == 302
    customer = db.session.scalars(select(Customer).where(Customer.phone == "+48601222333")).one()
    [message] = inbound_messages()
    assert message.channel == "sms" and message.thread.customer_id == customer.id
    assert message.body_text == "Dzień dobry, czy mój laptop już gotowy?" and message.thread.unread
    assert db.session.get(InboundItem, item.id).status == "accepted" and not held_items()


def test_a_held_sms_accepted_into_a_customer_joins_their_open_conversation_and_saves_the_number(
        staff_client, account, twilio_server):
    customer = create_customer(name="Ewa Nowak", email="ewa@example.com")
    repair = new_repair(customer, "Rower Kross")
    thread = Thread(customer_id=customer.id, repair_id=repair.id, subject=repair.label)
    db.session.add(thread)
    db.session.commit()
    replied(twilio_server, staff_client, "To ja, Ewa, piszę z telefonu męża.", sender="+48601444555")
    item = held_items()[0]

    response = staff_client.post(f"/held/{item.id}/accept", data={
        "customer_id": customer.id, "add_address": "y", "csrf_token": csrf_token(staff_client, f"/held/{item.id}")})

    assert response.status_code == 302 and response.headers["Location"].endswith(f"/threads/{thread.id}")
    [message] = inbound_messages()
    assert message.thread_id == thread.id and message.author_customer_id == customer.id
    assert db.session.get(Customer, customer.id).phone == "+48601444555"
