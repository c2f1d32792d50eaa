"""Settings → SMS and `flask sms configure`: the owner sets up the Twilio account and sends a test SMS."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.accounts.sms import active_account
from app.crypto import decrypt
from app.extensions import db
from app.models import AuditEvent, Shop, SmsAccount
from helpers import csrf_token

pytestmark = pytest.mark.usefixtures("app")  # every test works in the app's context

PAGE = "/settings/sms/"
ACCOUNT_SID = "AC" + "a1" * 16
TOKEN = "s3cret-auth-token-0123456789"


def save(client, **fields):
    data = {"account_sid": ACCOUNT_SID, "auth_token": TOKEN, "sender": "number", "from_number": "+48 500 100 200",
            "messaging_service_sid": "", "api_base_url": "", "csrf_token": csrf_token(client, PAGE), **fields}
    return client.post(PAGE, data=data)


def send_test(client, to: str):
    return client.post(PAGE + "test", data={"test-to": to, "test-csrf_token": csrf_token(client, PAGE)})


@pytest.fixture
def configured(owner_client, twilio_server):
    """The owner has saved the local Twilio's account through the page."""
    response = save(owner_client, account_sid=twilio_server.account_sid, auth_token=twilio_server.auth_token,
                    api_base_url=twilio_server.url)
    assert response.status_code == 302, response.get_data(as_text=True)
    return owner_client


def test_owner_saves_the_account_and_the_token_is_stored_encrypted_and_never_shown(owner_client):
    response = save(owner_client)

    assert response.status_code == 302
    account = active_account()
    assert (account.account_sid, account.from_number, account.messaging_service_sid) == (
        ACCOUNT_SID, "+48500100200", None)
    assert TOKEN not in account.auth_token_enc and decrypt(account.auth_token_enc) == TOKEN
    page = owner_client.get(PAGE).get_data(as_text=True)
    assert "SMS account saved." in page and ACCOUNT_SID in page
    assert TOKEN not in page
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sms.configure"))
    assert audit.user_id is not None and TOKEN not in str(audit.details)


def test_saving_again_with_an_empty_token_keeps_the_token(owner_client):
    save(owner_client)
    response = save(owner_client, auth_token="", from_number="+48 500 100 300")

    assert response.status_code == 302
    account = active_account()
    assert account.from_number == "+48500100300" and decrypt(account.auth_token_enc) == TOKEN
    assert db.session.scalar(select(db.func.count(SmsAccount.id))) == 1


def test_a_messaging_service_can_be_the_sender(owner_client):
    response = save(owner_client, sender="service", messaging_service_sid="MG" + "b2" * 16)

    assert response.status_code == 302
    account = active_account()
    assert (account.from_number, account.messaging_service_sid) == (None, "MG" + "b2" * 16)


def test_mistakes_are_shown_next_to_their_fields(owner_client):
    response = save(owner_client, account_sid="", auth_token="", from_number="+48 12",
                    api_base_url="http://sms.provider.example")

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Enter the account SID from Twilio&#39;s console" in page
    assert "Enter the auth token from Twilio&#39;s console." in page
    assert "Enter the number in international form" in page
    assert "http:// only for a server on this machine" in page
    assert active_account() is None


def test_a_chosen_messaging_service_needs_its_sid(owner_client):
    response = save(owner_client, sender="service", messaging_service_sid="")

    assert response.status_code == 422
    assert "Choose one sender: a phone number or name, or a Messaging Service SID." in response.get_data(as_text=True)


def test_the_owner_is_warned_that_customers_cannot_answer_a_sender_name(owner_client):
    save(owner_client, from_number="SERWIS")

    page = owner_client.get(PAGE).get_data(as_text=True)
    assert active_account().sender_is_alphanumeric
    assert 'id="alphanumeric-warning"' in page and "Customers cannot answer SMS sent from a sender name" in page


def test_a_sender_name_must_fit_what_carriers_accept(owner_client):
    response = save(owner_client, from_number="SERWIS-NAPRAWA")
    assert response.status_code == 422
    assert "1 to 11 letters" in response.get_data(as_text=True)


def test_the_page_shows_the_addresses_to_paste_into_twilio(owner_client):
    page = owner_client.get(PAGE).get_data(as_text=True)
    assert 'id="inbound-url">http://shop.example/webhooks/twilio/sms<' in page
    assert 'id="status-callback-url">http://shop.example/webhooks/twilio/status<' in page


def test_owner_sets_how_long_a_reply_finds_its_conversation(owner_client, owner):
    token = csrf_token(owner_client, PAGE)
    response = owner_client.post(PAGE + "replies", data={"replies-sms_reply_window_days": "30",
                                                         "replies-csrf_token": token})

    assert response.status_code == 302
    db.session.expire_all()
    assert Shop.current().sms_reply_window_days == 30
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "settings.shop"))
    assert audit.user_id == owner.id and audit.details["changed"] == ["sms_reply_window_days"]


@pytest.mark.parametrize("days", ["0", "91", ""])
def test_a_reply_window_outside_one_to_ninety_days_is_refused(owner_client, days):
    token = csrf_token(owner_client, PAGE)
    response = owner_client.post(PAGE + "replies", data={"replies-sms_reply_window_days": days,
                                                         "replies-csrf_token": token})

    assert response.status_code == 422
    assert "Enter a number of days from 1 to 90." in response.get_data(as_text=True)
    db.session.expire_all()
    assert Shop.current().sms_reply_window_days == 15


def test_staff_cannot_open_or_change_the_sms_settings(staff_client):
    assert staff_client.get(PAGE).status_code == 403
    assert save(staff_client).status_code == 403
    response = staff_client.post(PAGE + "replies", data={"replies-sms_reply_window_days": "60",
                                                         "csrf_token": csrf_token(staff_client, PAGE)})
    assert response.status_code == 403
    assert active_account() is None and Shop.current().sms_reply_window_days == 15


def test_a_test_sms_reaches_twilio_and_the_page_says_so(configured, twilio_server):
    response = send_test(configured, "600 100 200")

    assert response.status_code == 200
    [message] = twilio_server.messages
    assert message["to"] == "+48600100200" and message["from"] == "+48500100200"
    assert message["body"].startswith("Test SMS from ")
    assert f"Twilio accepted the test SMS ({message['sid']})" in response.get_data(as_text=True)


def test_a_refused_test_sms_shows_twilios_reason(configured, twilio_server):
    twilio_server.invalid_numbers.add("+48600100200")

    response = send_test(configured, "+48 600 100 200")

    page = response.get_data(as_text=True)
    assert "The test SMS did not go out: Twilio says the number is not valid." in page
    assert "21211" in page


def test_test_sms_are_limited_because_they_cost_money(configured, twilio_server):
    for _ in range(5):
        assert send_test(configured, "600 100 200").status_code == 200

    assert send_test(configured, "600 100 200").status_code == 429
    assert len(twilio_server.messages) == 5


def test_a_test_sms_to_a_bad_number_is_refused_before_twilio_and_not_counted(configured, twilio_server):
    for _ in range(6):
        response = send_test(configured, "12")
        assert response.status_code == 422
    assert "This is not a valid phone number" in response.get_data(as_text=True)
    assert twilio_server.requests == []
    assert send_test(configured, "600 100 200").status_code == 200


# ---------------------------------------------------------------- the command line


def test_the_command_line_configures_the_account_that_then_sends(app, twilio_server):
    result = app.test_cli_runner().invoke(args=[
        "sms", "configure", "--account-sid", twilio_server.account_sid, "--auth-token", twilio_server.auth_token,
        "--from", "+48 500 100 200", "--api-base-url", twilio_server.url,
    ])

    assert result.exit_code == 0, result.output
    assert f"SMS account {twilio_server.account_sid} configured: sending as +48500100200" in result.output
    account = active_account()
    assert decrypt(account.auth_token_enc) == twilio_server.auth_token and account.api_base_url == twilio_server.url
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sms.configure"))
    assert audit.actor == "cli" and audit.details["source"] == "cli"

    from app.channels.sms import send_test_sms
    assert send_test_sms("600 100 200", actor="cli").ok
    assert twilio_server.messages[0]["to"] == "+48600100200"


def test_the_command_line_refuses_two_senders(app):
    result = app.test_cli_runner().invoke(args=[
        "sms", "configure", "--account-sid", ACCOUNT_SID, "--auth-token", TOKEN,
        "--from", "+48500100200", "--messaging-service", "MG" + "0" * 32,
    ])

    assert result.exit_code == 1
    assert "Choose one sender" in result.output
    assert active_account() is None
