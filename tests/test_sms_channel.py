"""SMS channel: who can get an SMS, and sending through the official twilio client to a local Twilio stand-in."""
from __future__ import annotations

import threading
from contextlib import closing
from datetime import timedelta

import pytest
from flask_babel import refresh
from sqlalchemy import select

from app.channels.sms import SmsChannel
from app.accounts.sms import active_account
from app.channels.sms_text import MAX_BODY
from app.extensions import db
from app.models import ConsentEvent, Customer, Delivery, Message, Shop, Thread, utcnow
from app.outbox import dispatch_pass
from app.accounts.sms import configure_sms
from servers.smtp import free_port

pytestmark = pytest.mark.usefixtures("app")  # every test works in the app's context

SHOP_NUMBER = "+48500100200"
MOBILE = "+48600100200"
LANDLINE = "+48221234567"  # Warsaw
GERMAN_MOBILE = "+4915112345678"


@pytest.fixture
def account(twilio_server):
    account = configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number=SHOP_NUMBER,
                            api_base_url=twilio_server.url, actor="test")
    db.session.commit()
    return account


def make_customer(phone: str | None = MOBILE, **fields) -> Customer:
    customer = Customer(name="Jan Kowalski", phone=phone, **fields)
    db.session.add(customer)
    db.session.commit()
    return customer


# Not the shared `customer`: phone only, so SMS is the one channel.
@pytest.fixture
def customer():
    return make_customer()


def sms_delivery(customer: Customer, text: str = "Dzień dobry, telefon jest gotowy do odbioru.", **meta) -> Delivery:
    """A message to the customer with its SMS delivery, claimed by a dispatcher ("sending")."""
    thread = Thread(customer_id=customer.id, subject="iPhone 12", source_channel="sms")
    message = Message(thread=thread, body_text=text, meta=meta)
    delivery = Delivery(message=message, channel="sms", recipient=customer.phone, status="sending")
    db.session.add_all([thread, message, delivery])
    db.session.commit()
    return delivery


def send(delivery: Delivery, channel: SmsChannel | None = None):
    with closing((channel or SmsChannel()).open_session()) as session:
        return session.send(delivery)


# ---------------------------------------------------------------- who can get an SMS


def reason(customer: Customer) -> str | None:
    return SmsChannel().unreachable_reason(customer, Shop.current())


def test_a_customer_with_a_polish_mobile_can_get_an_sms(account, customer):
    assert reason(customer) is None


def test_a_customer_without_a_phone_number_cannot_get_an_sms(account):
    assert reason(make_customer(phone=None)) == "The customer has no phone number."


def test_a_landline_cannot_get_an_sms(account):
    assert reason(make_customer(phone=LANDLINE)) == (
        f"The number {LANDLINE} is a landline: it cannot receive SMS.")


def test_a_foreign_number_is_refused_while_the_shop_sends_only_to_poland(account):
    german = make_customer(phone=GERMAN_MOBILE)
    assert reason(german) == f"The number {GERMAN_MOBILE} is outside the allowed countries (Poland)."

    Shop.current().sms_countries = ["PL", "DE"]
    assert reason(german) is None


def test_the_allowed_countries_are_named_in_the_shops_language(account):
    shop = Shop.current()
    shop.locale = "pl"
    shop.sms_countries = ["PL", "DE"]
    db.session.commit()
    refresh()  # this app context already looked its language up, in English
    assert "Niemcy, Polska" in reason(make_customer(phone="+12025550123"))


def test_a_customer_who_turned_informational_sms_off_cannot_get_one(account):
    assert reason(make_customer(sms_informational=False)) == "The customer turned SMS off."


def test_nobody_can_get_an_sms_before_the_shop_sets_up_an_account(customer):
    assert reason(customer) == "The SMS account is not configured."


# ---------------------------------------------------------------- sending


def test_an_sms_goes_through_the_official_client_and_keeps_twilios_sid(account, customer, twilio_server):
    delivery = sms_delivery(customer, "Dzień dobry, telefon jest gotowy do odbioru.")

    result = send(delivery)

    assert result.ok and not result.error
    [request] = twilio_server.requests
    assert request.path == f"/2010-04-01/Accounts/{twilio_server.account_sid}/Messages.json"
    assert request.auth == (twilio_server.account_sid, twilio_server.auth_token)
    assert request.form["To"] == MOBILE
    assert request.form["From"] == SHOP_NUMBER
    assert request.form["Body"] == "Dzień dobry, telefon jest gotowy do odbioru."
    assert request.form["StatusCallback"] == "http://shop.example/webhooks/twilio/status"
    assert result.provider_id == twilio_server.messages[0]["sid"]
    assert result.provider_id.startswith("SM")
    assert result.sms_account_id == account.id  # the outbox records it with the result


def test_an_sms_without_polish_letters_is_sent_transliterated(account, customer, twilio_server):
    result = send(sms_delivery(customer, "Łączna kwota: 250 zł.", sms_plain=True))

    assert result.ok
    assert twilio_server.requests[0].form["Body"] == "Laczna kwota: 250 zl."


def test_a_messaging_service_picks_the_sender(customer, twilio_server):
    configure_sms(twilio_server.account_sid, twilio_server.auth_token, messaging_service_sid="MG" + "0" * 32,
                  api_base_url=twilio_server.url, actor="test")
    db.session.commit()

    assert send(sms_delivery(customer)).ok
    form = twilio_server.requests[0].form
    assert form["MessagingServiceSid"] == "MG" + "0" * 32
    assert "From" not in form


def test_one_pass_reuses_one_connection_to_twilio(account, customer, twilio_server):
    first, second = sms_delivery(customer, "one"), sms_delivery(customer, "two")
    with closing(SmsChannel().open_session()) as session:
        assert session.send(first).ok and session.send(second).ok
    assert len({request.peer for request in twilio_server.requests}) == 1


def test_an_sms_goes_through_the_proxy_the_environment_names(customer, twilio_server, monkeypatch):
    # Nothing listens at the provider's address: only the proxy (the stand-in, taking the whole URL) answers.
    configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number=SHOP_NUMBER,
                  api_base_url=f"http://localhost:{free_port()}", actor="test")
    db.session.commit()
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", twilio_server.url)

    result = send(sms_delivery(customer))

    assert result.ok and result.provider_id == twilio_server.messages[0]["sid"]
    assert twilio_server.requests[0].auth == (twilio_server.account_sid, twilio_server.auth_token)


def test_a_text_over_twilios_limit_is_refused_without_calling_twilio(account, customer, twilio_server):
    result = send(sms_delivery(customer, "a" * (MAX_BODY + 1)))

    assert not result.ok and result.permanent
    assert result.error == f"The SMS has {MAX_BODY + 1} characters; at most {MAX_BODY} can be sent."
    assert twilio_server.requests == []


# ---------------------------------------------------------------- Twilio's errors


def test_a_twilio_500_is_temporary_and_the_retry_succeeds(account, customer, twilio_server):
    delivery = sms_delivery(customer)
    twilio_server.fail_next(500)

    failed = send(delivery)
    assert not failed.ok and not failed.permanent
    assert failed.error == "Twilio is busy or unavailable (HTTP 500); the SMS will be tried again."

    retried = send(delivery)
    assert retried.ok and retried.provider_id == twilio_server.messages[0]["sid"]
    assert len(twilio_server.requests) == 2


def test_too_many_requests_is_temporary(account, customer, twilio_server):
    twilio_server.fail_next(429, code=20429, message="Too Many Requests")
    result = send(sms_delivery(customer))
    assert not result.ok and not result.permanent and result.error_code == "20429"


def test_an_invalid_number_fails_at_once_with_the_reason(account, customer, twilio_server):
    twilio_server.invalid_numbers.add(MOBILE)

    result = send(sms_delivery(customer))

    assert not result.ok and result.permanent
    assert result.error == "Twilio says the number is not valid."
    assert result.error_code == "21211"
    assert "21211" in result.error_raw and f"The 'To' number {MOBILE} is not a valid phone number." in result.error_raw


def test_a_landline_refused_by_twilio_fails_at_once(account, customer, twilio_server):
    twilio_server.landlines.add(MOBILE)
    result = send(sms_delivery(customer))
    assert result.permanent and result.error == "The number is a landline or cannot receive SMS."


def test_an_unsubscribed_number_fails_and_turns_the_customers_sms_off(account, customer, twilio_server):
    neighbour = make_customer(phone="+48600100300")
    twilio_server.unsubscribed.add(MOBILE)

    result = send(sms_delivery(customer))
    db.session.commit()

    assert not result.ok and result.permanent and result.error_code == "21610"
    assert "unsubscribed" in result.error
    assert customer.sms_informational is False
    [consent] = db.session.scalars(select(ConsentEvent).where(ConsentEvent.customer_id == customer.id,
                                                              ConsentEvent.source == "provider"))
    assert (consent.kind, consent.value, consent.note) == ("sms_informational", False, "STOP at Twilio (21610)")
    assert neighbour.sms_informational is True
    assert reason(customer) == "The customer turned SMS off."


def test_a_wrong_auth_token_gives_a_clear_message_and_the_settings_page_shows_it(customer, twilio_server):
    configure_sms(twilio_server.account_sid, "not-the-token", from_number=SHOP_NUMBER,
                  api_base_url=twilio_server.url, actor="test")
    db.session.commit()

    result = send(sms_delivery(customer))

    assert not result.ok and result.error_code == "20003"
    assert result.error == "Twilio rejected the account SID or auth token."
    assert not result.permanent  # once the owner fixes the token, the retry goes out
    assert active_account().last_error == "Twilio rejected the account SID or auth token."


def test_a_twilio_that_refuses_connections_is_temporary(customer):
    configure_sms("AC" + "1" * 32, "token", from_number=SHOP_NUMBER, api_base_url=f"http://127.0.0.1:{free_port()}",
                  actor="test")
    db.session.commit()

    result = send(sms_delivery(customer))

    assert not result.ok and not result.permanent and result.error_code == "connection"
    assert result.error == "Could not connect to Twilio; the SMS will be tried again."


def test_a_twilio_that_does_not_answer_in_time_leaves_the_sms_uncertain(account, customer, twilio_server):
    twilio_server.force(201, {"sid": "SM" + "0" * 32}, delay=1.5)  # it accepts the SMS, but answers too late

    result = send(sms_delivery(customer), SmsChannel(timeout=0.3))

    assert not result.ok and not result.permanent and result.uncertain and result.error_code == "timeout"
    assert result.error.startswith("Twilio did not answer within 0.3 seconds; the SMS may have gone out.")


def test_an_sms_that_may_have_gone_out_is_not_sent_again_by_the_outbox(account, customer, twilio_server):
    delivery = sms_delivery(customer)
    delivery.status, delivery.next_attempt_at = "queued", utcnow()
    db.session.commit()
    twilio_server.force(201, {"sid": "SM" + "1" * 32}, delay=1.5)
    registry = {"sms": SmsChannel(timeout=0.3)}

    assert dispatch_pass(registry)["uncertain"] == 1
    db.session.expire_all()
    assert delivery.status == "sending" and delivery.uncertain
    assert delivery.sms_account_id == account.id  # the outbox shows which account may have sent it
    assert dispatch_pass(registry, now=utcnow() + timedelta(hours=1))["claimed"] == 0
    assert len(twilio_server.requests) == 1  # one SMS request, never a second one


def test_a_dispatch_pass_in_a_scheduler_thread_explains_a_refusal(app, account, customer, twilio_server):
    twilio_server.invalid_numbers.add(MOBILE)
    delivery_id = sms_delivery(customer).id
    outcome = {}

    def dispatch_pass():  # as an APScheduler job runs: its own thread, an app context, no request
        try:
            with app.app_context():
                outcome["result"] = send(db.session.get(Delivery, delivery_id))
                db.session.rollback()
        except Exception as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=dispatch_pass)
    worker.start()
    worker.join(timeout=10)
    if "error" in outcome:
        raise outcome["error"]
    assert outcome["result"].error == "Twilio says the number is not valid."
