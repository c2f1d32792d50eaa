"""SMSAPI.pl as the shop's SMS provider, through its official client pointed at a local SMSAPI stand-in: sending
from the shop's sender, delivery reports and customers' replies at URLs that carry a secret, its error codes in
the shop's words, and the balance with one low-balance notice."""
from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.accounts.sms import active_account, callback_secret, configure_sms, configure_smsapi, set_low_balance_threshold
from app.channels.sms import SmsChannel
from app.crypto import decrypt
from app.extensions import db
from app.models import (AuditEvent, ConsentEvent, Customer, Delivery, DeliveryEvent, InboundItem, Message, Shop,
                        SmsAccount, Thread, utcnow)
from app.outbox import dispatch_pass
from app.repairs import create_repair
from app.sms_balance import check_sms_balance
from servers.smsapi import call
from servers.smtp import free_port

pytestmark = pytest.mark.usefixtures("app")

MOBILE = "+48600100200"
TWO_WAY = "+48799100200"  # the shop's two-way number at SMSAPI


@pytest.fixture
def account(smsapi_server):
    """SMSAPI set up with its two-way number as the sender, so customers can answer."""
    account = configure_smsapi(smsapi_server.token, "2way", api_base_url=smsapi_server.url, actor="test")
    Shop.current().undo_seconds = 0
    db.session.commit()
    return account


@pytest.fixture
def customer():
    customer = Customer(name="Anna Nowak", phone=MOBILE)
    db.session.add(customer)
    db.session.commit()
    return customer


def queued_sms(customer: Customer, text: str = "Telefon gotowy do odbioru.", repair_device: str = "Samsung S21"):
    """A message about a new repair with its SMS delivery, due now."""
    repair = create_repair(customer=customer, device=repair_device)
    db.session.flush()
    thread = repair_thread(repair)
    message = Message(thread=thread, body_text=text)
    delivery = Delivery(message=message, channel="sms", recipient=customer.phone, status="queued",
                        next_attempt_at=utcnow())
    db.session.add_all([message, delivery])
    db.session.commit()
    return delivery


def repair_thread(repair):
    thread = Thread(customer_id=repair.customer_id, repair_id=repair.id, subject=repair.device, source_channel="sms")
    db.session.add(thread)
    db.session.flush()
    return thread


def reload(delivery: Delivery) -> Delivery:
    db.session.expire_all()
    return db.session.get(Delivery, delivery.id)


@pytest.fixture
def sent(account, customer, smsapi_server) -> Delivery:
    delivery = queued_sms(customer)
    assert dispatch_pass()["sent"] == 1
    return reload(delivery)


def reports_of(delivery: Delivery) -> list[str]:
    return list(db.session.scalars(select(DeliveryEvent.status).where(
        DeliveryEvent.delivery_id == delivery.id, DeliveryEvent.provider_ref == delivery.provider_id)
        .order_by(DeliveryEvent.id)))


# ---------------------------------------------------------------- sending


def test_the_outbox_sends_through_smsapi_from_the_shops_sender_with_a_report_url(sent, smsapi_server, account):
    [message] = smsapi_server.messages
    assert sent.status == "sent" and sent.provider_id == message["id"] and sent.sms_account_id == account.id
    assert message["number"] == MOBILE.lstrip("+") and message["from"] == "2way"
    assert message["text"] == "Telefon gotowy do odbioru." and message["encoding"] == "utf-8"
    assert message["notify_url"] == f"http://shop.example/webhooks/smsapi/{callback_secret(account)}/report"
    assert len(callback_secret(account)) >= 43
    assert smsapi_server.points == Decimal("25.00") - Decimal("0.16")


def test_the_token_and_the_callback_secret_are_stored_encrypted(account, smsapi_server):
    assert smsapi_server.token not in account.auth_token_enc
    assert decrypt(account.auth_token_enc) == smsapi_server.token
    assert callback_secret(account) not in account.callback_secret_enc


@pytest.mark.parametrize("fault, code, words, permanent", [
    ("invalid", "13", "SMSAPI has no valid number to send to", True),
    ("sender", "14", "SMSAPI does not accept the sender name", True),
    ("credit", "103", "No credit left on the SMSAPI account", False),
    ("busy", "201", "SMSAPI had an internal error; the SMS will be tried again.", False),
])
def test_smsapis_error_codes_become_words_and_only_permanent_ones_fail_at_once(account, customer, smsapi_server,
                                                                               fault, code, words, permanent):
    if fault == "invalid":
        smsapi_server.invalid_numbers.add(MOBILE.lstrip("+"))
    elif fault == "sender":
        smsapi_server.senders.discard("2way")
    elif fault == "credit":
        smsapi_server.points = Decimal("0.05")
    else:
        smsapi_server.fail_next(201)
    delivery = queued_sms(customer)

    dispatch_pass()

    delivery = reload(delivery)
    assert delivery.error_code == code and delivery.error.startswith(words)
    assert code in delivery.error_raw
    if permanent:
        assert delivery.status == "failed" and delivery.attempts == 1
    else:
        assert delivery.status == "queued" and delivery.next_attempt_at > utcnow()  # tried again later


def test_no_credit_is_shown_on_the_account_until_an_sms_goes_through(account, customer, smsapi_server):
    smsapi_server.points = Decimal("0")
    delivery = queued_sms(customer)
    dispatch_pass()
    assert active_account().last_error.startswith("No credit left on the SMSAPI account")

    smsapi_server.points = Decimal("10")
    dispatch_pass(now=utcnow() + timedelta(hours=2))
    assert reload(delivery).status == "sent" and active_account().last_error is None


def test_a_wrong_token_is_temporary_and_clearly_said(customer, smsapi_server):
    configure_smsapi("not-the-token", "2way", api_base_url=smsapi_server.url, actor="test")
    db.session.commit()
    delivery = queued_sms(customer)

    dispatch_pass()

    delivery = reload(delivery)
    assert delivery.status == "queued" and delivery.error_code == "101"
    assert delivery.error == "SMSAPI rejected the API token." and "HTTP 401" in delivery.error_raw


def test_a_blacklisted_number_fails_and_turns_the_customers_sms_off(account, customer, smsapi_server):
    smsapi_server.blacklisted.add(MOBILE.lstrip("+"))
    delivery = queued_sms(customer)

    dispatch_pass()

    assert reload(delivery).status == "failed"
    db.session.expire_all()
    assert customer.sms_informational is False
    assert db.session.scalar(select(ConsentEvent.note).where(ConsentEvent.source == "provider")) == "STOP at SMSAPI (57)"


def test_an_unreachable_smsapi_is_temporary(customer):
    configure_smsapi("token", "2way", api_base_url=f"http://127.0.0.1:{free_port()}", actor="test")
    db.session.commit()
    delivery = queued_sms(customer)

    dispatch_pass()

    delivery = reload(delivery)
    assert delivery.status == "queued" and delivery.error == "Could not connect to SMSAPI; the SMS will be tried again."


# ---------------------------------------------------------------- delivery reports


def test_a_delivery_report_moves_the_sms_to_delivered(client, sent, smsapi_server):
    response = smsapi_server.report(client, sent.provider_id, 404)

    assert response.status_code == 200 and response.get_data(as_text=True) == "OK"
    delivery = reload(sent)
    assert delivery.status == "delivered" and delivery.delivered_at is not None
    assert reports_of(delivery) == ["DELIVERED"]


def test_reports_are_deduplicated_and_only_move_forward(client, sent, smsapi_server):
    smsapi_server.report(client, sent.provider_id, 404)
    smsapi_server.report(client, sent.provider_id, 404, method="POST")  # SMSAPI calling again
    smsapi_server.report(client, sent.provider_id, 403)  # a late SENT

    delivery = reload(sent)
    assert delivery.status == "delivered"
    assert reports_of(delivery) == ["DELIVERED", "SENT"]


def test_an_undelivered_report_fails_the_sms_in_words(client, sent, smsapi_server):
    smsapi_server.report(client, sent.provider_id, 405, method="POST")

    delivery = reload(sent)
    assert delivery.status == "failed" and delivery.error_code == "405"
    assert delivery.error == "The SMS could not be delivered (a wrong number, or the phone cannot receive it)."


def test_several_reports_in_one_call_are_each_applied(client, account, customer, smsapi_server):
    first, second = queued_sms(customer), queued_sms(customer, repair_device="iPad")
    dispatch_pass()
    first, second = reload(first), reload(second)
    url = smsapi_server.message(first.provider_id)["notify_url"]

    response = call(client, url, {"MsgId": f"{first.provider_id},{second.provider_id}", "status": "404,405",
                                  "status_name": "DELIVERED,UNDELIVERED", "to": "48600100200,48600100200"}, "GET")

    assert response.status_code == 200
    assert (reload(first).status, reload(second).status) == ("delivered", "failed")


@pytest.mark.parametrize("path", ["/webhooks/smsapi/{wrong}/report", "/webhooks/smsapi/report",
                                  "/webhooks/smsapi/{wrong}/sms", "/webhooks/smsapi/sms"])
def test_a_callback_without_the_secret_is_refused(client, sent, smsapi_server, caplog, path):
    params = smsapi_server.report_params(sent.provider_id, 405)
    if path.endswith("/sms"):
        params = smsapi_server.incoming_params(MOBILE, "STOP", TWO_WAY)

    with caplog.at_level(logging.WARNING, logger="app.webhooks.smsapi"):
        response = client.post(path.format(wrong="x" * 43), data=params)

    assert response.status_code == 403
    assert reload(sent).status == "sent" and reports_of(sent) == []
    assert db.session.get(Customer, sent.message.thread.customer_id).sms_informational is True
    assert "secret" in caplog.text


def test_a_report_for_another_systems_sms_is_acknowledged(client, account, smsapi_server):
    url = f"http://shop.example/webhooks/smsapi/{callback_secret(account)}/report"
    response = call(client, url, {"MsgId": "123456789", "status": "404", "status_name": "DELIVERED"}, "GET")
    assert response.status_code == 200 and db.session.scalar(select(func.count(DeliveryEvent.id))) == 0


@pytest.mark.parametrize("params", [{}, {"MsgId": "1,2", "status": "404"}, {"MsgId": "1" * 100, "status": "404"}])
def test_a_malformed_report_is_refused(client, account, params):
    url = f"/webhooks/smsapi/{callback_secret(account)}/report"
    assert client.post(url, data=params).status_code == 400


def test_reports_still_arrive_after_the_shop_switched_to_twilio(client, sent, smsapi_server, twilio_server):
    configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number="+48500100200",
                  api_base_url=twilio_server.url, actor="test")
    db.session.commit()
    assert smsapi_server.report(client, sent.provider_id, 404).status_code == 200
    assert reload(sent).status == "delivered"


def test_an_smsapi_that_answers_too_late_leaves_the_sms_uncertain(account, customer, smsapi_server):
    smsapi_server.force(200, {"count": 1, "list": [{"id": "1", "points": 0.16}]}, delay=1.5)
    delivery = queued_sms(customer)

    assert dispatch_pass({"sms": SmsChannel(timeout=0.3)})["uncertain"] == 1

    delivery = reload(delivery)
    assert delivery.status == "sending" and delivery.uncertain
    assert delivery.error.startswith("SMSAPI did not answer within 0.3 seconds; the SMS may have gone out.")


# ---------------------------------------------------------------- customers' replies


def inbound_url(account: SmsAccount) -> str:
    return f"http://shop.example/webhooks/smsapi/{callback_secret(account)}/sms"


def test_a_reply_lands_in_the_thread_we_texted_and_the_same_msgid_again_is_kept_once(client, sent, smsapi_server,
                                                                                    account):
    response = smsapi_server.text(client, inbound_url(account), MOBILE, "Będę jutro po 16.", TWO_WAY, msg_id="AB12")
    again = smsapi_server.text(client, inbound_url(account), MOBILE, "Będę jutro po 16.", TWO_WAY, msg_id="AB12")

    assert (response.status_code, response.get_data(as_text=True), again.status_code) == (200, "OK", 200)
    [reply] = db.session.scalars(select(Message).where(Message.direction == "in"))
    assert reply.thread_id == sent.message.thread_id and reply.channel == "sms"
    assert reply.sender == MOBILE and reply.body_text == "Będę jutro po 16." and reply.meta["sms_sid"] == "AB12"


def test_a_reply_after_sms_about_two_repairs_names_the_other_thread(client, account, customer, smsapi_server):
    older, newer = queued_sms(customer, repair_device="iPhone"), None
    dispatch_pass()
    newer = queued_sms(customer, repair_device="iPad")
    dispatch_pass()
    older, newer = reload(older), reload(newer)

    smsapi_server.text(client, inbound_url(account), MOBILE, "Który jest gotowy?", TWO_WAY)

    [reply] = db.session.scalars(select(Message).where(Message.direction == "in"))
    assert reply.thread_id == newer.message.thread_id
    assert [other["id"] for other in reply.meta["may_belong_to"]] == [older.message.thread_id]


def test_a_reply_outside_the_window_is_held(client, sent, smsapi_server, account):
    sent.sent_at = utcnow() - timedelta(days=16)
    db.session.commit()

    smsapi_server.text(client, inbound_url(account), MOBILE, "Halo?", TWO_WAY)

    assert db.session.scalar(select(func.count(Message.id)).where(Message.direction == "in")) == 0
    [item] = db.session.scalars(select(InboundItem))
    assert item.status == "held" and "15 days" in item.reason


def test_stop_turns_informational_sms_off(client, sent, smsapi_server, account, customer):
    smsapi_server.text(client, inbound_url(account), MOBILE, "STOP", TWO_WAY)

    db.session.expire_all()
    assert customer.sms_informational is False
    consent = db.session.scalars(select(ConsentEvent).where(ConsentEvent.customer_id == customer.id)).one()
    assert consent.source == "sms_keyword" and consent.value is False


def test_replies_to_a_sender_name_are_held_with_the_reason(client, customer, smsapi_server):
    account = configure_smsapi(smsapi_server.token, "SERWIS", api_base_url=smsapi_server.url, actor="test")
    db.session.commit()

    smsapi_server.text(client, inbound_url(account), MOBILE, "Dzięki", TWO_WAY)

    [item] = db.session.scalars(select(InboundItem))
    assert item.status == "held" and "SERWIS" in item.reason


# ---------------------------------------------------------------- balance


def test_a_low_balance_is_told_once_and_again_only_after_it_rose(account, smsapi_server, mailbox, smtp_server,
                                                                 staff_client):
    Shop.current().notification_email = "szef@shop.example"
    set_low_balance_threshold(account, "10", actor="test")
    db.session.commit()

    assert check_sms_balance() is None  # 25 points: fine
    assert active_account().balance == Decimal("25") and active_account().balance_currency == "points"
    assert "sms-balance-banner" not in staff_client.get("/").get_data(as_text=True)

    smsapi_server.points = Decimal("4.5")
    check_sms_balance()
    check_sms_balance()  # still low: no second notice
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["szef@shop.example"]
    text = mail.data.decode()
    assert "Subject: SMS balance is low: 4.5 points left" in text and "below your threshold of 10" in text
    assert "http://shop.example/settings/sms/" in text
    page = staff_client.get("/").get_data(as_text=True)
    assert 'id="sms-balance-banner"' in page and "4.5 points left" in page

    smsapi_server.points = Decimal("50")
    check_sms_balance()
    assert "sms-balance-banner" not in staff_client.get("/").get_data(as_text=True)
    smsapi_server.points = Decimal("3")
    check_sms_balance()
    assert len(smtp_server.wait_for(2)) == 2
    assert len(smtp_server.messages) == 2
    assert db.session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "sms.low_balance")) == 2


def test_a_balance_that_cannot_be_read_keeps_the_last_one(account, smsapi_server):
    check_sms_balance()
    smsapi_server.force(401, {"error": 101, "message": "Authorization failed"})

    assert check_sms_balance() == "SMSAPI rejected the API token."
    assert active_account().balance == Decimal("25")


def test_twilio_tells_its_balance_through_the_same_interface(twilio_server):
    configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number="+48500100200",
                  api_base_url=twilio_server.url, actor="test")
    db.session.commit()
    twilio_server.balance = "3.25"

    assert check_sms_balance() is None
    assert (active_account().balance, active_account().balance_currency) == (Decimal("3.25"), "USD")


def test_report_status_numbers_have_smsapis_published_names():
    """SMSAPI's table of statuses: 409 is QUEUED in reports (sms.do's own answer says QUEUE); both mean queued."""
    from app.channels.smsapi_provider import STATUSES, status_name  # noqa: PLC0415

    assert [status_name(str(code), None) for code in (402, 403, 404, 405, 406, 408, 409, 410)] == [
        "EXPIRED", "SENT", "DELIVERED", "UNDELIVERED", "FAILED", "UNKNOWN", "QUEUED", "ACCEPTED"]
    assert STATUSES["QUEUED"] == STATUSES["QUEUE"] == "queued" and "UNKNOWN" not in STATUSES


def test_the_outbox_names_the_provider_that_carried_each_sms(owner_client, account, customer, smsapi_server,
                                                             twilio_server):
    by_smsapi = queued_sms(customer)
    dispatch_pass()
    configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number="+48500100200",
                  api_base_url=twilio_server.url, actor="test")
    db.session.commit()
    by_twilio = queued_sms(customer, text="Druga wiadomość.")
    dispatch_pass()

    page = owner_client.get("/outbox/").get_data(as_text=True)
    row = page[page.index(f'id="delivery-{by_smsapi.id}"'):]
    assert "from 2way via SMSAPI" in row[:row.index("</tr>")]
    row = page[page.index(f'id="delivery-{by_twilio.id}"'):]
    assert "from +48500100200 via Twilio" in row[:row.index("</tr>")]


def test_the_apis_delivery_names_the_provider_that_carried_the_sms(api, sent):
    assert api.get(f"/api/v1/deliveries/{sent.id}").get_json()["provider"] == "smsapi"
