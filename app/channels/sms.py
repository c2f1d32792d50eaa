"""SMS: who can get one, sending through the shop's provider (Twilio or SMSAPI.pl), and the providers' reports
(what a text says and costs: sms_text.py).

Each provider implements sms_provider.SmsProvider (twilio_provider.py, smsapi_provider.py); one is made per
dispatch pass for the active account. Their callbacks (app/webhooks/) move deliveries forward with
`record_status_report`.
"""
from __future__ import annotations

from contextlib import closing
from dataclasses import replace
from typing import Literal

import phonenumbers
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..crypto import SecretUnreadable
from ..customers import PHONE_REGION, parse_phone, set_contact_sms, sms_stopped
from ..errors import ValidationFailed
from ..extensions import db
from ..models import ConsentEvent, Customer, Delivery, DeliveryEvent, Shop, SmsAccount, User, utcnow
from ..models.audit import record
from ..accounts.sms import active_account, callback_secret
from ..urls import public_url
from . import smsapi_provider
from .base import SendResult, Unreachable, notice_content
from .sms_provider import Balance, SmsProvider
from .sms_text import MAX_BODY, sms_text
from .smsapi_provider import SmsapiProvider
from .twilio_provider import INBOUND_PATH, STATUS_CALLBACK_PATH, TwilioProvider

__all__ = ["INBOUND_PATH", "STATUS_CALLBACK_PATH", "SmsChannel", "record_status_report", "send_test_sms"]

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


# ---------------------------------------------------------------- sending through the provider

REQUEST_TIMEOUT = 30  # seconds per call to the provider: a stuck call must not stall the whole dispatch pass
PROVIDERS: dict[str, type[SmsProvider]] = {"twilio": TwilioProvider, "smsapi": SmsapiProvider}
PROVIDER_NAMES = {name: provider.label for name, provider in PROVIDERS.items()}


def provider_for(account: SmsAccount, timeout: float = REQUEST_TIMEOUT) -> SmsProvider:
    """The provider object speaking for `account`, for one pass."""
    return PROVIDERS[account.provider](account, timeout)


def report_url(account: SmsAccount) -> str:
    """Where the account's provider reports on each SMS: Twilio's signed callback, SMSAPI's URL with the secret."""
    if account.provider == "smsapi":
        return public_url(smsapi_provider.REPORT_PATH.format(secret=callback_secret(account) or ""))
    return public_url(STATUS_CALLBACK_PATH)


def inbound_url(account: SmsAccount | None) -> str:
    """Where the provider posts the SMS customers send us (to paste into the provider's console or panel)."""
    if account is not None and account.provider == "smsapi":
        return public_url(smsapi_provider.INBOUND_PATH.format(secret=callback_secret(account) or ""))
    return public_url(INBOUND_PATH)


def opt_out_number(number: str, note: str) -> None:
    """Turn informational SMS off for every customer with `number`, as the provider says the number opted out.

    An opt-out at the provider belongs to the number, so a family sharing it stops getting SMS together, and a
    company's contact person with it gets none either.
    """
    customers = db.session.scalars(
        select(Customer).where(Customer.phone == number, Customer.sms_informational.is_(True))
    )
    for customer in customers:
        customer.sms_informational = False
        db.session.add(ConsentEvent(customer_id=customer.id, kind="sms_informational", value=False,
                                    source="provider", note=note))
    set_contact_sms(number, stop=True, actor="provider", source="provider")


class SmsChannel:
    """SMS through the shop's provider account (Twilio, a Twilio-compatible provider, or SMSAPI.pl)."""

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
    """The active account's provider for a dispatch pass, so its HTTP connection is reused for every SMS of the pass."""

    def __init__(self, account: SmsAccount | None, timeout: float):
        self.account = account
        self.timeout = timeout
        self.provider: SmsProvider | None = provider_for(account, timeout) if account is not None else None

    def send(self, delivery: Delivery) -> SendResult:
        """Send the delivery's message text to delivery.recipient, with the provider's report URL.

        Refuses (permanently, without calling the provider) a text over MAX_BODY characters, and a message to a
        contact person's number that replied STOP after it was written. The result names the
        account it went through (the outbox records it on the delivery with the result).
        """
        if delivery.purpose == "message" and sms_stopped(delivery.recipient):  # STOP came after it was written
            return SendResult(ok=False, permanent=True, error_code="stopped", error=_(
                "%(number)s replied STOP: no SMS goes to it.", number=delivery.recipient))
        body = sms_text(delivery.message) if delivery.purpose == "message" else notice_content(delivery.purpose).sms(delivery)
        if len(body) > MAX_BODY:
            return SendResult(ok=False, permanent=True, error_code="too_long", error=_(
                "The SMS has %(count)s characters; at most %(max)s can be sent.", count=len(body), max=MAX_BODY))
        result = self.send_text(delivery.recipient, body, with_report=True)
        return replace(result, sms_account_id=self.account.id) if self.account else result

    def send_text(self, to: str, body: str, *, with_report: bool = False) -> SendResult:
        """Ask the provider to send `body` to the number `to` (E.164) and say how it went.

        The provider's refusals come back in the shop's words; a number the provider says opted out also has
        informational SMS turned off for its customers; a refusal of the account's credentials is kept on the
        account for the settings page until an SMS goes through again.
        """
        if self.account is None:
            return SendResult(ok=False, error=str(NOT_SET_UP), error_code="not_configured")
        try:
            result = self.provider.send(to, body, report_url=report_url(self.account) if with_report else None)
        except SecretUnreadable:
            result = SendResult(ok=False, error_code="token_unreadable", error=_(
                "The stored auth token cannot be read (the app's secret key changed); "
                "enter it again in Settings → SMS."))
        if result.error_code in self.provider.OPT_OUT_CODES:
            opt_out_number(to, f"STOP at {PROVIDER_NAMES[self.account.provider]} ({result.error_code})")
        self._note_account_health(result)
        return result

    def close(self) -> None:
        if self.provider is not None:
            self.provider.close()

    def _note_account_health(self, result: SendResult) -> None:
        """Keep the account's last error for the settings page while its credentials are refused."""
        if result.error_code in self.provider.ACCOUNT_CODES or result.error_code == "token_unreadable":
            self.account.last_error = result.error
        elif result.ok and self.account.last_error:
            self.account.last_error = None


def fetch_balance(account: SmsAccount, timeout: float = REQUEST_TIMEOUT) -> Balance:
    """Ask the account's provider for its balance (BalanceUnavailable, or SecretUnreadable, when it cannot tell)."""
    with closing(provider_for(account, timeout)) as provider:
        return provider.balance()


# ---------------------------------------------------------------- the providers' delivery reports

# How far an SMS has got. Reports arrive out of order, so a delivery only moves forward along this line,
# or to failed from anywhere before delivered; delivered and failed are final.
PROGRESS = ("queued", "sending", "sent", "delivered")
ReportOutcome = Literal["unknown", "duplicate", "moved", "kept"]


def _replaceable_by(status: str) -> tuple[str, ...]:
    """The statuses a delivery may leave for `status`."""
    if status == "failed":
        return PROGRESS[:-1]
    return PROGRESS[:PROGRESS.index(status)]


def record_status_report(message_sid: str, reported: str, error_code: str | None = None,
                         detail: dict | None = None, *, provider: str = "twilio") -> ReportOutcome:
    """Apply the provider's report that the SMS `message_sid` reached `reported` (the provider's own word for
    it: Twilio's MessageStatus, SMSAPI's status name), with the provider's error code on failures.

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
    statuses, failure_meaning = PROVIDERS[provider].STATUSES, PROVIDERS[provider].report_error
    try:
        with db.session.begin_nested():
            db.session.add(DeliveryEvent(delivery_id=delivery.id, status=reported, provider_ref=message_sid,
                                         error_code=error_code, detail=detail or {}))
    except IntegrityError:
        return "duplicate"

    target = statuses.get(reported)
    if target is None:
        return "kept"
    values: dict = {"status": target}
    if target == "sent":
        values["sent_at"] = delivery.sent_at or utcnow()
    elif target == "delivered":
        values["delivered_at"] = utcnow()
    elif target == "failed":
        values.update(
            error=failure_meaning(reported, error_code),
            error_code=error_code,
            error_raw=f"{reported}, ErrorCode {error_code}" if error_code else reported,
        )
    moved = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id, Delivery.status.in_(_replaceable_by(target)))
        .values(**values)
    ).rowcount
    if moved and error_code is not None and error_code in PROVIDERS[provider].OPT_OUT_CODES:
        opt_out_number(delivery.recipient, f"STOP at {PROVIDER_NAMES[provider]} ({error_code})")
    return "moved" if moved else "kept"


def send_test_sms(to: str | None, *, actor: User | str | None) -> SendResult:
    """Send a short test SMS to `to` at once, past the outbox, so the owner sees the account work.

    Refuses (ValidationFailed on "to") an empty or invalid number, and any number while no account is set
    up. The provider's answer comes back as the SendResult; the attempt is audited either way.
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
