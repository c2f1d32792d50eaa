"""SMS: who can get one, sending through Twilio, and its reports (what a text says and costs: sms_text.py).

Sending uses the official `twilio` client, one per dispatch pass; Twilio's status callbacks
(app/webhooks/twilio.py) move deliveries forward with `record_status_report`.
"""
from __future__ import annotations

from contextlib import closing
from dataclasses import replace
from typing import Literal

import phonenumbers
import requests
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from twilio.base.exceptions import TwilioException
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError

from ..crypto import SecretUnreadable, decrypt
from ..customers import PHONE_REGION, parse_phone
from ..errors import ValidationFailed
from ..extensions import db
from ..models import ConsentEvent, Customer, Delivery, DeliveryEvent, Shop, SmsAccount, User, utcnow
from ..models.audit import record
from ..accounts.sms import active_account
from ..urls import public_url
from .base import SendResult, Unreachable, notice_content
from .sms_text import MAX_BODY, sms_text
from .twilio_http import PassHttpClient

# ---------------------------------------------------------------- who can get an SMS

DEFAULT_COUNTRIES = ["PL"]  # when the shop has not chosen (Shop.sms_countries)
SMS_CAPABLE = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
NOT_SET_UP = _l("The SMS account is not configured.")


def country_names(codes: list[str]) -> str:
    """Region codes as country names in the current language, sorted ("Germany, Poland")."""
    territories = get_locale().territories
    return ", ".join(sorted(territories.get(code, code) for code in codes))


def _parsed_number(raw: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(raw, PHONE_REGION)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


# ---------------------------------------------------------------- sending through Twilio

STATUS_CALLBACK_PATH = "/webhooks/twilio/status"  # served by app/webhooks/twilio.py
INBOUND_PATH = "/webhooks/twilio/sms"  # where Twilio posts the SMS customers send us (app/webhooks/twilio.py)
REQUEST_TIMEOUT = 30  # seconds per call to Twilio: a stuck call must not stall the whole dispatch pass
AUTH_FAILED = 20003
UNSUBSCRIBED = 21610
# Retrying cannot help: the number is wrong, unsubscribed or a landline.
PERMANENT_ERRORS = frozenset({21211, UNSUBSCRIBED, 21614, 21635})
_LANDLINE = _l("The number is a landline or cannot receive SMS.")
# Twilio's error codes, as a shop would say them: at sending (2xxxx) and in status reports (3xxxx).
ERROR_MEANINGS = {
    AUTH_FAILED: _l("Twilio rejected the account SID or auth token."),
    21211: _l("Twilio says the number is not valid."),
    UNSUBSCRIBED: _l("The recipient has unsubscribed from our SMS (replied STOP); "
                     "informational SMS to them are now off."),
    21614: _LANDLINE,
    21635: _LANDLINE,
    30003: _l("The phone is unreachable (switched off or out of coverage)."),
    30005: _l("The number is unknown or no longer exists."),
    30006: _l("The number is a landline or its carrier cannot receive SMS."),
    30007: _l("The carrier filtered the message out (it looked like spam to them)."),
    30008: _l("The carrier reported an unknown error."),
}


def error_meaning(code: int | str) -> str:
    """What a Twilio error code means, for people; "Twilio error N" for codes we have no words for."""
    text = str(code)
    meaning = ERROR_MEANINGS.get(int(text)) if text.isascii() and text.isdigit() and len(text) <= 9 else None
    return str(meaning) if meaning else _("Twilio error %(code)s", code=code)


def opt_out_number(number: str) -> None:
    """Turn informational SMS off for every customer with `number`, as Twilio says the number replied STOP.

    An opt-out at the provider belongs to the number, so a family sharing it stops getting SMS together.
    """
    customers = db.session.scalars(
        select(Customer).where(Customer.phone == number, Customer.sms_informational.is_(True))
    )
    for customer in customers:
        customer.sms_informational = False
        db.session.add(ConsentEvent(customer_id=customer.id, kind="sms_informational", value=False,
                                    source="provider", note=f"STOP at Twilio ({UNSUBSCRIBED})"))


class SmsChannel:
    """SMS through the shop's Twilio (or Twilio-compatible) account."""

    name = "sms"

    def __init__(self, timeout: float = REQUEST_TIMEOUT):
        self.timeout = timeout

    def unreachable_reason(self, customer: Customer, shop: Shop) -> Unreachable | None:
        """Why no SMS can go to the customer, or None: SMS not set up, no number, an invalid number or a
        landline, a number outside the shop's SMS countries, or informational SMS turned off."""
        if active_account() is None:
            return Unreachable(str(NOT_SET_UP), "sms_settings")
        if not customer.phone:
            return Unreachable(_("The customer has no phone number."), "customer_edit", customer.id)
        number = _parsed_number(customer.phone)
        if number is None:
            return Unreachable(_("The customer's phone number is not valid."), "customer_edit", customer.id)
        if phonenumbers.number_type(number) not in SMS_CAPABLE:
            return Unreachable(_("The number %(number)s is a landline: it cannot receive SMS.",
                                 number=customer.phone), "customer_edit", customer.id)
        countries = shop.sms_countries or DEFAULT_COUNTRIES
        if phonenumbers.region_code_for_number(number) not in countries:
            return Unreachable(_("The number %(number)s is outside the allowed countries (%(countries)s).",
                                 number=customer.phone, countries=country_names(countries)),
                               "customer_edit", customer.id)
        if not customer.sms_informational:
            return Unreachable(_("The customer turned SMS off."), "customer", customer.id)
        return None

    def open_session(self) -> "SmsSession":
        return SmsSession(active_account(), self.timeout)


class SmsSession:
    """One Twilio client for a dispatch pass, so its HTTP connection is reused for every SMS of the pass."""

    def __init__(self, account: SmsAccount | None, timeout: float):
        self.account = account
        self.timeout = timeout
        self._client: Client | None = None  # made by the first send: a pass without SMS costs nothing

    def send(self, delivery: Delivery) -> SendResult:
        """Send the delivery's message text to delivery.recipient, with a status callback to our webhook.

        Refuses (permanently, without calling Twilio) a text over MAX_BODY characters. The result names the
        account it went through (the outbox records it on the delivery with the result).
        """
        body = sms_text(delivery.message) if delivery.purpose == "message" else notice_content(delivery.purpose).sms(delivery)
        if len(body) > MAX_BODY:
            return SendResult(ok=False, permanent=True, error_code="too_long", error=_(
                "The SMS has %(count)s characters; at most %(max)s can be sent.", count=len(body), max=MAX_BODY))
        result = self.send_text(delivery.recipient, body, status_callback=public_url(STATUS_CALLBACK_PATH))
        return replace(result, sms_account_id=self.account.id) if self.account else result

    def send_text(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        """Ask Twilio to send `body` to the number `to` (E.164) and say how it went.

        Twilio's refusals become clear messages (see ERROR_MEANINGS); an unsubscribed number also turns
        informational SMS off for its customers. Busy or unreachable Twilio (429, 5xx, refused, timeout)
        and a rejected token are temporary: the retry succeeds once Twilio is back or the owner fixes the token.
        """
        if self.account is None:
            return SendResult(ok=False, error=str(NOT_SET_UP), error_code="not_configured")
        try:
            message = self._twilio().messages.create(to=to, body=body, status_callback=status_callback,
                                                     **self._sender())
        except SecretUnreadable:
            result = SendResult(ok=False, error_code="token_unreadable", error=_(
                "The stored auth token cannot be read (the app's secret key changed); "
                "enter it again in Settings → SMS."))
        except TwilioException as exc:
            result = _refusal(exc)
        except (HTTPError, requests.RequestException) as exc:  # requests: a malformed base URL or proxy setting
            result = _no_answer(exc, self.timeout)
        else:
            result = SendResult(ok=True, provider_id=message.sid)
        if result.error_code == str(UNSUBSCRIBED):
            opt_out_number(to)
        self._note_account_health(result)
        return result

    def close(self) -> None:
        if self._client is not None:
            self._client.http_client.close()

    def _twilio(self) -> Client:
        if self._client is None:
            http_client = PassHttpClient(self.timeout, base_url=self.account.api_base_url or None)
            self._client = Client(self.account.account_sid, decrypt(self.account.auth_token_enc),
                                  http_client=http_client)
        return self._client

    def _sender(self) -> dict[str, str]:
        if self.account.messaging_service_sid:
            return {"messaging_service_sid": self.account.messaging_service_sid}
        return {"from_": self.account.from_number}

    def _note_account_health(self, result: SendResult) -> None:
        """Keep the account's last error for the settings page while its credentials are refused."""
        if result.error_code in (str(AUTH_FAILED), "token_unreadable"):
            self.account.last_error = result.error
        elif result.ok and self.account.last_error:
            self.account.last_error = None


def _refusal(exc: TwilioException) -> SendResult:
    """A SendResult for Twilio's error answer (TwilioRestException, or the RFC 9457 TwilioServiceException)."""
    status, code = getattr(exc, "status", None), getattr(exc, "code", None)
    said = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", None) or str(exc)
    raw = f"HTTP {status}, code {code}: {said}"
    if status == 401:  # a Twilio-compatible provider may refuse the credentials without Twilio's code
        code = AUTH_FAILED
    if code in ERROR_MEANINGS:
        return SendResult(ok=False, error=error_meaning(code), error_raw=raw, error_code=str(code),
                          permanent=code in PERMANENT_ERRORS)
    if status == 429 or (status or 0) >= 500:
        return SendResult(ok=False, error_raw=raw, error_code=str(code),
                          error=_("Twilio is busy or unavailable (HTTP %(status)s); the SMS will be tried again.",
                                  status=status))
    return SendResult(ok=False, error=_("Twilio refused the SMS: %(reason)s", reason=said), error_raw=raw,
                      error_code=str(code), permanent=True)


def _no_answer(exc: HTTPError | requests.RequestException, timeout: float) -> SendResult:
    """The SendResult for a Twilio that could not be reached (temporary) or did not answer in time.

    A read timeout comes after the request went out: Twilio may have accepted the SMS, so it is uncertain and
    waits for staff instead of being sent again by itself (a customer would get it twice).
    """
    if isinstance(exc, ReadTimeoutError):
        return SendResult(ok=False, uncertain=True, error_raw=str(exc), error_code="timeout", error=_(
            "Twilio did not answer within %(seconds)s seconds; the SMS may have gone out. Check it, then resend "
            "or mark it as sent.", seconds=timeout))
    if isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError):  # refused is not slow
        return SendResult(ok=False, error_raw=str(exc), error_code="timeout", error=_(
            "Twilio did not answer within %(seconds)s seconds; the SMS will be tried again.", seconds=timeout))
    return SendResult(ok=False, error_raw=str(exc), error_code="connection",
                      error=_("Could not connect to Twilio; the SMS will be tried again."))


# ---------------------------------------------------------------- Twilio's status reports

# How far an SMS has got. Reports arrive out of order, so a delivery only moves forward along this line,
# or to failed from anywhere before delivered; delivered and failed are final.
PROGRESS = ("queued", "sending", "sent", "delivered")
# Twilio's MessageStatus → the delivery status it stands for; others (accepted, scheduled, read…) are only recorded.
TWILIO_STATUSES = {"queued": "queued", "sending": "sending", "sent": "sent", "delivered": "delivered",
                   "undelivered": "failed", "failed": "failed"}
ReportOutcome = Literal["unknown", "duplicate", "moved", "kept"]


def _replaceable_by(status: str) -> tuple[str, ...]:
    """The statuses a delivery may leave for `status`."""
    if status == "failed":
        return PROGRESS[:-1]
    return PROGRESS[:PROGRESS.index(status)]


def record_status_report(message_sid: str, twilio_status: str, error_code: str | None = None,
                         detail: dict | None = None) -> ReportOutcome:
    """Apply Twilio's report that the SMS `message_sid` reached `twilio_status` (with ErrorCode on failures).

    Each (SID, status) counts once: the report is kept as a DeliveryEvent, unique per delivery, status and
    SID, so a repeated report changes nothing. The delivery then moves only forward (see PROGRESS), with one
    conditional UPDATE so two reports racing each other cannot move it back; a failure stores the error
    code and its meaning. Returns "unknown" when no SMS delivery has that SID, "duplicate", "moved" or "kept".
    """
    delivery = db.session.scalar(
        select(Delivery).where(Delivery.provider_id == message_sid, Delivery.channel == "sms")
    )
    if delivery is None:
        return "unknown"
    error_code = error_code or None  # Twilio sends an empty ErrorCode on some successful reports
    try:
        with db.session.begin_nested():
            db.session.add(DeliveryEvent(delivery_id=delivery.id, status=twilio_status, provider_ref=message_sid,
                                         error_code=error_code, detail=detail or {}))
    except IntegrityError:
        return "duplicate"

    target = TWILIO_STATUSES.get(twilio_status)
    if target is None:
        return "kept"
    values: dict = {"status": target}
    if target == "sent":
        values["sent_at"] = delivery.sent_at or utcnow()
    elif target == "delivered":
        values["delivered_at"] = utcnow()
    elif target == "failed":
        values.update(
            error=error_meaning(error_code) if error_code else _("Twilio could not deliver the SMS."),
            error_code=error_code,
            error_raw=f"{twilio_status}, ErrorCode {error_code}" if error_code else twilio_status,
        )
    moved = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id, Delivery.status.in_(_replaceable_by(target)))
        .values(**values)
    ).rowcount
    if moved and error_code == str(UNSUBSCRIBED):
        opt_out_number(delivery.recipient)
    return "moved" if moved else "kept"


def send_test_sms(to: str | None, *, actor: User | str | None) -> SendResult:
    """Send a short test SMS to `to` at once, past the outbox, so the owner sees the account work.

    Refuses (ValidationFailed on "to") an empty or invalid number, and any number while no account is set
    up. Twilio's answer comes back as the SendResult; the attempt is audited either way.
    """
    if active_account() is None:
        raise ValidationFailed({"to": _("Save the SMS account first.")})
    try:
        number = parse_phone(to)
    except ValidationFailed as exc:
        raise ValidationFailed({"to": exc.message_for("phone")}) from None
    if number is None:
        raise ValidationFailed({"to": _("Enter the number to send the test SMS to.")})
    body = _("Test SMS from %(shop)s: sending works.", shop=Shop.current().name)
    with closing(SmsChannel().open_session()) as session:
        result = session.send_text(number, body)
    record("sms.test", to=number, ok=result.ok, error_code=result.error_code, by=actor)
    return result
