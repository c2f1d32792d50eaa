"""Twilio's status callbacks: signed reports move an SMS delivery forward, forged ones are refused."""
from __future__ import annotations

import logging

import pytest
from flask import url_for
from sqlalchemy import select

from app.channels.sms import STATUS_CALLBACK_PATH
from app.extensions import db
from app.models import ConsentEvent, Customer, Delivery, DeliveryEvent, Message, Thread
from app.outbox import dispatch_pass
from app.accounts.sms import configure_sms
from servers.twilio import post_callback, sign

pytestmark = pytest.mark.usefixtures("app")  # every test works in the app's context

MOBILE = "+48600100200"
CALLBACK_URL = "http://shop.example/webhooks/twilio/status"  # PUBLIC_BASE_URL of the tests + the path


@pytest.fixture
def account(twilio_server):
    account = configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number="+48500100200",
                            api_base_url=twilio_server.url, actor="test")
    db.session.commit()
    return account


# Not the shared `customer`: phone only (no e-mail).
@pytest.fixture
def customer():
    customer = Customer(name="Anna Nowak", phone=MOBILE)
    db.session.add(customer)
    db.session.commit()
    return customer


@pytest.fixture
def sent(account, customer, twilio_server) -> Delivery:
    """An SMS the outbox sent through the local Twilio: `sent`, with Twilio's SID as provider_id."""
    thread = Thread(customer_id=customer.id, subject="Samsung S21")
    message = Message(thread=thread, body_text="Telefon gotowy do odbioru.")
    delivery = Delivery(message=message, channel="sms", recipient=MOBILE, status="queued")
    db.session.add_all([thread, message, delivery])
    db.session.commit()
    assert dispatch_pass()["sent"] == 1
    return reload(delivery)


def reload(delivery: Delivery) -> Delivery:
    db.session.expire_all()
    return db.session.get(Delivery, delivery.id)


def reports_of(delivery: Delivery) -> list[str]:
    """Twilio's reports kept for the delivery (the outbox's own attempt events are left out)."""
    return list(db.session.scalars(
        select(DeliveryEvent.status)
        .where(DeliveryEvent.delivery_id == delivery.id, DeliveryEvent.provider_ref == delivery.provider_id)
        .order_by(DeliveryEvent.id)
    ))


def test_the_webhook_answers_at_the_address_every_sms_gives_twilio(app):
    with app.test_request_context():
        assert url_for("webhooks.twilio_status") == STATUS_CALLBACK_PATH


def test_a_sent_sms_becomes_delivered_when_twilio_says_so(client, sent, twilio_server):
    assert sent.status == "sent" and sent.provider_id == twilio_server.messages[0]["sid"]

    response = twilio_server.report(client, sent.provider_id, "delivered")

    assert response.status_code == 204
    delivery = reload(sent)
    assert delivery.status == "delivered" and delivery.delivered_at is not None
    assert reports_of(delivery) == ["delivered"]


def test_an_undelivered_sms_fails_with_the_meaning_of_twilios_error_code(client, sent, twilio_server):
    twilio_server.report(client, sent.provider_id, "sent")
    response = twilio_server.report(client, sent.provider_id, "undelivered", error_code=30006)

    assert response.status_code == 204
    delivery = reload(sent)
    assert delivery.status == "failed"
    assert delivery.error == "The number is a landline or its carrier cannot receive SMS."
    assert delivery.error_code == "30006"
    assert "30006" in delivery.error_raw


@pytest.mark.parametrize("code, meaning", [
    (30003, "The phone is unreachable (switched off or out of coverage)."),
    (30005, "The number is unknown or no longer exists."),
    (30007, "The carrier filtered the message out (it looked like spam to them)."),
    (30008, "The carrier reported an unknown error."),
    (30410, "Twilio error 30410"),
])
def test_each_failure_code_is_explained(client, sent, twilio_server, code, meaning):
    twilio_server.report(client, sent.provider_id, "failed", error_code=code)
    assert reload(sent).error == meaning


def test_an_unsubscribed_report_turns_the_customers_sms_off(client, sent, twilio_server, customer):
    twilio_server.report(client, sent.provider_id, "failed", error_code=21610)

    db.session.expire_all()
    assert customer.sms_informational is False
    assert db.session.scalar(select(ConsentEvent.note).where(ConsentEvent.source == "provider")) == (
        "STOP at Twilio (21610)")


def test_a_report_signed_with_another_token_is_refused(client, sent, twilio_server, caplog):
    params = twilio_server.status_params(sent.provider_id, "delivered")

    with caplog.at_level(logging.WARNING, logger="app.webhooks.twilio"):
        response = post_callback(client, CALLBACK_URL, params, sign("not-the-auth-token", CALLBACK_URL, params))

    assert response.status_code == 403
    assert reload(sent).status == "sent" and reports_of(sent) == []
    assert "X-Twilio-Signature" in caplog.text


def test_a_report_changed_after_signing_is_refused(client, sent, twilio_server):
    honest = twilio_server.status_params(sent.provider_id, "delivered")
    forged = {**honest, "MessageStatus": "failed", "ErrorCode": "30007"}

    response = post_callback(client, CALLBACK_URL, forged, sign(twilio_server.auth_token, CALLBACK_URL, honest))

    assert response.status_code == 403
    assert reload(sent).status == "sent"


def test_a_report_without_a_signature_is_refused(client, sent, twilio_server):
    response = client.post(STATUS_CALLBACK_PATH, data=twilio_server.status_params(sent.provider_id, "delivered"))
    assert response.status_code == 403 and reload(sent).status == "sent"


def test_the_same_report_twice_is_kept_once(client, sent, twilio_server):
    first = twilio_server.report(client, sent.provider_id, "delivered")
    second = twilio_server.report(client, sent.provider_id, "delivered")

    assert (first.status_code, second.status_code) == (204, 204)
    assert reports_of(reload(sent)) == ["delivered"]


def test_a_late_sent_report_does_not_undo_delivered(client, sent, twilio_server):
    twilio_server.report(client, sent.provider_id, "delivered")
    twilio_server.report(client, sent.provider_id, "sent")

    delivery = reload(sent)
    assert delivery.status == "delivered"
    assert reports_of(delivery) == ["delivered", "sent"]  # both kept for the history


def test_a_delivered_report_after_a_failure_leaves_it_failed(client, sent, twilio_server):
    twilio_server.report(client, sent.provider_id, "failed", error_code=30003)
    twilio_server.report(client, sent.provider_id, "delivered")

    delivery = reload(sent)
    assert delivery.status == "failed" and delivery.error_code == "30003"


def test_a_report_about_an_unknown_sms_is_acknowledged_and_logged(client, account, twilio_server, caplog):
    params = {"AccountSid": twilio_server.account_sid, "MessageSid": "SM" + "f" * 32, "MessageStatus": "delivered"}

    with caplog.at_level(logging.INFO, logger="app.webhooks.twilio"):
        response = post_callback(client, CALLBACK_URL, params, sign(twilio_server.auth_token, CALLBACK_URL, params))

    assert response.status_code == 204
    assert "SM" + "f" * 32 in caplog.text
    assert db.session.scalar(select(DeliveryEvent.id).where(DeliveryEvent.provider_ref == "SM" + "f" * 32)) is None


@pytest.mark.app_config(PUBLIC_BASE_URL="https://serwis.example/inbox")
def test_behind_a_proxy_the_signature_is_checked_against_the_public_address(client, sent, twilio_server):
    callback = twilio_server.message(sent.provider_id)["status_callback"]
    assert callback == "https://serwis.example/inbox/webhooks/twilio/status"
    params = twilio_server.status_params(sent.provider_id, "delivered")
    signature = sign(twilio_server.auth_token, callback, params)

    # The proxy hands the request on to the app's internal address, without the /inbox prefix it strips.
    response = client.post(STATUS_CALLBACK_PATH, data=params, base_url="http://127.0.0.1:8000",
                           headers={"X-Twilio-Signature": signature})

    assert response.status_code == 204 and reload(sent).status == "delivered"
