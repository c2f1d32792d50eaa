"""Settings → SMS and `flask sms configure --provider smsapi`: the owner chooses SMSAPI.pl, sees the callback
addresses with their secret and makes new ones, switches back to Twilio, and sets the low-balance threshold."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.accounts.sms import account_of, active_account, callback_secret
from app.crypto import decrypt
from app.extensions import db
from app.models import AuditEvent
from helpers import csrf_token

pytestmark = pytest.mark.usefixtures("app")

PAGE = "/settings/sms/"


def save_smsapi(client, **fields):
    data = {"smsapi-token": "tok-123", "smsapi-from_number": "SERWIS", "smsapi-api_base_url": "",
            "smsapi-csrf_token": csrf_token(client, PAGE), **fields}
    return client.post(PAGE + "smsapi", data=data)


@pytest.fixture
def smsapi_configured(owner_client, smsapi_server):
    response = save_smsapi(owner_client, **{"smsapi-token": smsapi_server.token, "smsapi-from_number": "2way",
                                            "smsapi-api_base_url": smsapi_server.url})
    assert response.status_code == 302, response.get_data(as_text=True)
    return owner_client


def test_owner_chooses_smsapi_and_sees_the_addresses_with_their_secret(smsapi_configured, smsapi_server):
    account = active_account()
    assert account.provider == "smsapi" and account.from_number == "2way" and account.api_base_url == smsapi_server.url
    assert decrypt(account.auth_token_enc) == smsapi_server.token
    page = smsapi_configured.get(PAGE).get_data(as_text=True)
    assert "SMS go out through SMSAPI." in page
    assert smsapi_server.token not in page
    secret = callback_secret(account)
    assert f'id="smsapi-inbound-url">http://shop.example/webhooks/smsapi/{secret}/sms<' in page
    assert f'id="smsapi-report-url">http://shop.example/webhooks/smsapi/{secret}/report<' in page
    assert "alphanumeric-warning" not in page  # customers can answer SMSAPI's two-way number


def test_a_test_sms_goes_out_through_smsapi(smsapi_configured, smsapi_server):
    response = smsapi_configured.post(PAGE + "test", data={"test-to": "600 100 200",
                                                           "test-csrf_token": csrf_token(smsapi_configured, PAGE)})
    [message] = smsapi_server.messages
    assert message["number"] == "48600100200"
    assert f"SMSAPI accepted the test SMS ({message['id']})" in response.get_data(as_text=True)


def test_mistakes_are_shown_next_to_their_fields(owner_client):
    response = save_smsapi(owner_client, **{"smsapi-token": "", "smsapi-from_number": "SERWIS NAPRAWY TELEFONÓW",
                                            "smsapi-api_base_url": "http://api.example"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Enter the API token from SMSAPI" in page
    assert "A sender name can have 1 to 11 letters" in page
    assert "Enter an https:// address" in page
    assert active_account() is None


def test_rotating_the_secret_refuses_the_old_addresses(smsapi_configured, smsapi_server, client):
    old = callback_secret(active_account())
    old_url = f"/webhooks/smsapi/{old}/sms"
    params = smsapi_server.incoming_params("+48600100200", "Halo", "+48799100200")
    assert client.post(old_url, data=params).status_code == 200

    response = smsapi_configured.post(PAGE + "smsapi/rotate", data={"csrf_token": csrf_token(smsapi_configured, PAGE)})

    assert response.status_code == 302
    db.session.expire_all()
    new = callback_secret(active_account())
    assert new != old and len(new) >= 43
    assert client.post(old_url, data={**params, "MsgId": "other"}).status_code == 403
    assert client.post(f"/webhooks/smsapi/{new}/sms", data={**params, "MsgId": "other"}).status_code == 200
    assert new in smsapi_configured.get(PAGE).get_data(as_text=True)
    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.action == "sms.rotate_secret"))


def test_switching_back_to_twilio_keeps_both_accounts(smsapi_configured, twilio_server):
    twilio = {"account_sid": twilio_server.account_sid, "auth_token": twilio_server.auth_token, "sender": "number",
              "from_number": "+48500100200", "api_base_url": twilio_server.url,
              "csrf_token": csrf_token(smsapi_configured, PAGE)}
    assert smsapi_configured.post(PAGE, data=twilio).status_code == 302
    assert active_account().provider == "twilio" and account_of("smsapi").active is False
    page = smsapi_configured.get(PAGE).get_data(as_text=True)
    assert "SMS go out through Twilio." in page and "Send through SMSAPI instead" in page

    response = smsapi_configured.post(PAGE + "provider", data={"provider": "smsapi",
                                                               "csrf_token": csrf_token(smsapi_configured, PAGE)})

    assert response.status_code == 302
    assert active_account().provider == "smsapi" and account_of("twilio").active is False


def test_a_provider_without_an_account_cannot_be_chosen(owner_client):
    response = owner_client.post(PAGE + "provider", data={"provider": "smsapi", "csrf_token": csrf_token(owner_client, PAGE)},
                                 follow_redirects=True)
    assert "Save that provider&#39;s account first." in response.get_data(as_text=True)
    assert active_account() is None


def test_the_owner_sets_the_threshold_and_sees_the_balance(smsapi_configured, smsapi_server):
    response = smsapi_configured.post(PAGE + "balance", data={"balance-low_balance_threshold": "12,5",
                                                              "balance-csrf_token": csrf_token(smsapi_configured, PAGE)})
    assert response.status_code == 302
    account = active_account()
    assert account.low_balance_threshold == Decimal("12.5") and account.balance == Decimal("25")
    page = smsapi_configured.get(PAGE).get_data(as_text=True)
    assert "25 points left" in page


@pytest.mark.parametrize("value", ["-1", "lots", "1e400", "nan"])
def test_a_threshold_that_is_no_amount_is_refused(smsapi_configured, value):
    response = smsapi_configured.post(PAGE + "balance", data={"balance-low_balance_threshold": value,
                                                              "balance-csrf_token": csrf_token(smsapi_configured, PAGE)})
    assert response.status_code == 422
    assert "Enter an amount from 0 up" in response.get_data(as_text=True)


def test_staff_cannot_change_the_provider(staff_client):
    for path in ("smsapi", "smsapi/rotate", "provider", "balance"):
        assert staff_client.post(PAGE + path, data={"csrf_token": csrf_token(staff_client, "/")}).status_code == 403


def test_the_command_line_configures_smsapi_that_then_sends(app, smsapi_server):
    result = app.test_cli_runner().invoke(args=[
        "sms", "configure", "--provider", "smsapi", "--token", smsapi_server.token, "--from", "SERWIS",
        "--api-base-url", smsapi_server.url,
    ])

    assert result.exit_code == 0, result.output
    account = active_account()
    assert "SMSAPI account configured: sending as SERWIS" in result.output
    assert f"/webhooks/smsapi/{callback_secret(account)}/sms" in result.output
    assert account.provider == "smsapi" and decrypt(account.auth_token_enc) == smsapi_server.token
    assert "Customers cannot answer SMS from a sender name" in result.output

    from app.channels.sms import send_test_sms  # noqa: PLC0415 - as the twilio CLI test does
    assert send_test_sms("600 100 200", actor="cli").ok
    assert smsapi_server.messages[0]["from"] == "SERWIS"


def test_the_command_line_refuses_smsapi_without_a_sender(app):
    result = app.test_cli_runner().invoke(args=["sms", "configure", "--provider", "smsapi", "--token", "t"])
    assert result.exit_code == 1 and "Enter the sender" in result.output
    assert active_account() is None


def test_the_command_line_still_needs_twilios_sid(app):
    result = app.test_cli_runner().invoke(args=["sms", "configure", "--auth-token", "t", "--from", "+48500100200"])
    assert result.exit_code == 2 and "--account-sid" in result.output


def test_a_balance_check_that_failed_in_the_background_shows_on_the_page_and_in_status(app, smsapi_configured,
                                                                                    smsapi_server):
    from app.sms_balance import check_sms_balance  # noqa: PLC0415 - the background job's own entry point

    smsapi_server.force(401, {"error": 101, "message": "Authorization failed"})
    assert check_sms_balance() == "SMSAPI rejected the API token."
    db.session.remove()  # the page and the command read the account afresh, as another process would

    page = smsapi_configured.get(PAGE).get_data(as_text=True)
    assert "The last balance check" in page and "SMSAPI rejected the API token." in page
    status = app.test_cli_runner().invoke(args=["status"])
    assert "SMS balance check failed: SMSAPI rejected the API token." in status.output

    assert check_sms_balance() is None  # a good check clears it
    db.session.remove()
    assert "The last balance check" not in smsapi_configured.get(PAGE).get_data(as_text=True)
    assert "SMS balance check failed" not in app.test_cli_runner().invoke(args=["status"]).output
