"""SMSAPI.pl behind the SMS provider interface (sms_provider.py), through its official client (`smsapi-client`).

SMSAPI does not sign its callbacks: the delivery report URL we hand it with each SMS (notify_url) and the URL for
incoming SMS set in its panel carry the account's long random callback secret instead (app/webhooks/smsapi.py).
"""
from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import requests
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from smsapi.client import Client
from smsapi.exception import EndpointException, SmsApiException

from ..crypto import decrypt
from ..models import SmsAccount
from .base import SendResult
from .sms_provider import Balance, BalanceUnavailable

DEFAULT_BASE_URL = "https://api.smsapi.pl"
REPORT_PATH = "/webhooks/smsapi/{secret}/report"  # served by app/webhooks/smsapi.py
INBOUND_PATH = "/webhooks/smsapi/{secret}/sms"
AUTH_FAILED, WRONG_LOGIN, NO_CREDIT, WRONG_IP = 101, 102, 103, 105
BLACKLISTED = 57
# SMSAPI's error codes at sending, as a shop would say them, and whether retrying can help.
_BAD_REQUEST = _l("SMSAPI refused the request as malformed.")
ERROR_MEANINGS = {
    8: _BAD_REQUEST,
    11: _l("The text is empty, too long or has characters SMSAPI cannot send."),
    12: _l("The text is longer than one SMS and SMSAPI was asked to send a single one."),
    13: _l("SMSAPI has no valid number to send to: the number is wrong, a landline, or on the account's "
           "blacklist."),
    14: _l("SMSAPI does not accept the sender name (it is not registered or was blocked); check it in SMSAPI's panel."),
    18: _BAD_REQUEST,
    52: _l("Too many SMS to this number in a short time; the SMS will be tried again."),
    BLACKLISTED: _l("The number is on the SMSAPI account's blacklist (the recipient opted out); "
                    "informational SMS to them are now off."),
    94: _l("The SMSAPI account may not send links."),
    96: _l("The SMSAPI account may not send to this country."),
    AUTH_FAILED: _l("SMSAPI rejected the API token."),
    WRONG_LOGIN: _l("SMSAPI rejected the API token."),
    NO_CREDIT: _l("No credit left on the SMSAPI account; top it up. The SMS will be tried again."),
    WRONG_IP: _l("SMSAPI refuses requests from this server's IP address (the account's IP filter)."),
    110: _l("The SMSAPI account cannot use this service."),
    200: _l("SMSAPI could not take the SMS; it will be tried again."),
    201: _l("SMSAPI had an internal error; the SMS will be tried again."),
    202: _l("SMSAPI is busy; the SMS will be tried again."),
    203: _l("SMSAPI is busy; the SMS will be tried again."),
    999: _l("SMSAPI had an internal error; the SMS will be tried again."),
}
TEMPORARY_ERRORS = frozenset({52, AUTH_FAILED, WRONG_LOGIN, NO_CREDIT, WRONG_IP, 200, 201, 202, 203, 999})
# Delivery reports: SMSAPI's status (its name, and its number) → the delivery status it stands for; the rest
# (UNKNOWN, RENEWAL, NOT_FOUND) are only recorded. Checked against SMSAPI's published table of statuses and error
# codes (smsapi.pl/statusy-wiadomosci, smsapi.com/resp): 409 is named QUEUED in reports (sms.do's own answer says
# QUEUE, so both are understood); 407 REJECTED and 412 STOP come from its newer API documentation.
STATUS_NAMES = {401: "NOT_FOUND", 402: "EXPIRED", 403: "SENT", 404: "DELIVERED", 405: "UNDELIVERED", 406: "FAILED",
                407: "REJECTED", 408: "UNKNOWN", 409: "QUEUED", 410: "ACCEPTED", 411: "RENEWAL", 412: "STOP"}
STATUSES = {"QUEUED": "queued", "QUEUE": "queued", "ACCEPTED": "sent", "SENT": "sent", "DELIVERED": "delivered",
            "EXPIRED": "failed", "UNDELIVERED": "failed", "FAILED": "failed", "REJECTED": "failed", "STOP": "failed"}
REPORT_MEANINGS = {
    "EXPIRED": _l("The SMS expired: the phone was unreachable for too long."),
    "UNDELIVERED": _l("The SMS could not be delivered (a wrong number, or the phone cannot receive it)."),
    "FAILED": _l("SMSAPI could not send the SMS."),
    "REJECTED": _l("The carrier rejected the SMS."),
    "STOP": _l("The SMS was stopped at SMSAPI before it went out."),
}


def error_meaning(code: int | str) -> str:
    """What an SMSAPI error code means, for people; "SMSAPI error N" for codes we have no words for."""
    text = str(code)
    meaning = ERROR_MEANINGS.get(int(text)) if text.isascii() and text.isdigit() and len(text) <= 9 else None
    return str(meaning) if meaning else _("SMSAPI error %(code)s", code=code)


def report_error(status_name: str, code: str | None) -> str:
    """What a failed delivery report means, for people."""
    meaning = REPORT_MEANINGS.get(status_name)
    return str(meaning) if meaning else _("SMSAPI could not deliver the SMS (%(status)s).", status=status_name or code)


def status_name(status: str, name: str | None) -> str:
    """The report's status name: SMSAPI's `status_name`, else the name of its numeric `status`."""
    if name:
        return name.strip().upper()
    return STATUS_NAMES.get(int(status), status) if status.isascii() and status.isdigit() and len(status) < 6 \
        else status


class SmsapiProvider:
    """The shop's SMSAPI.pl account for one dispatch pass, through the official client."""

    name, label = "smsapi", "SMSAPI"
    STATUSES = STATUSES
    report_error = staticmethod(report_error)
    OPT_OUT_CODES = frozenset({str(BLACKLISTED)})
    ACCOUNT_CODES = frozenset({str(AUTH_FAILED), str(WRONG_LOGIN), str(NO_CREDIT), str(WRONG_IP)})

    def __init__(self, account: SmsAccount, timeout: float):
        self.account = account
        self.timeout = timeout
        self._client: Client | None = None

    def send(self, to: str, body: str, *, report_url: str | None) -> SendResult:
        """Ask SMSAPI to send `body` to `to` (E.164) from the account's sender, reports to `report_url`.

        Its refusals become clear messages (ERROR_MEANINGS), permanent unless TEMPORARY_ERRORS says otherwise;
        a busy or unreachable SMSAPI is temporary, and no answer after the request went out is uncertain.
        Raises SecretUnreadable when the stored token cannot be decrypted.
        """
        try:
            answer = self._smsapi().sms.send(to=to.lstrip("+"), message=body, from_=self.account.from_number,
                                             encoding="utf-8", notify_url=report_url, timeout=self.timeout)
            sent = next(iter(answer.results), None)
        except SmsApiException as exc:
            return _refusal(exc)
        except requests.RequestException as exc:
            return _no_answer(exc, self.timeout)
        if sent is None or not sent.id:
            return SendResult(ok=False, error_code="no_id", error=_("SMSAPI answered without the SMS's id."),
                              uncertain=True)
        return SendResult(ok=True, provider_id=str(sent.id))

    def balance(self) -> Balance:
        """The account's points (SMSAPI's user.do with credits), or BalanceUnavailable saying why not."""
        try:
            points = self._smsapi().account.balance(timeout=self.timeout).points
            return Balance(Decimal(str(points)), "points")
        except SmsApiException as exc:
            raise BalanceUnavailable(_refusal(exc).error) from None
        except requests.RequestException as exc:
            raise BalanceUnavailable(_no_answer(exc, self.timeout).error) from None
        except (InvalidOperation, TypeError, ValueError):
            raise BalanceUnavailable(_("SMSAPI answered without a balance.")) from None

    def close(self) -> None:
        self._client = None  # the official client opens a connection per request: nothing is kept open

    def _smsapi(self) -> Client:
        if self._client is None:
            base = (self.account.api_base_url or DEFAULT_BASE_URL).rstrip("/") + "/"
            self._client = Client(base, access_token=decrypt(self.account.auth_token_enc))
        return self._client


def _code_of(exc: SmsApiException) -> tuple[int | None, int | None, str]:
    """(SMSAPI's error code, the HTTP status, what it said) of an error answer.

    Errors answered with 200 come as SendException(message, code); others as EndpointException(body, HTTP status),
    whose body is usually SMSAPI's error JSON.
    """
    if isinstance(exc, EndpointException) and exc.http_method is not None:
        status = exc.code if isinstance(exc.code, int) else None
        try:
            data = json.loads(exc.message)
        except (TypeError, ValueError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("error"), int):
            return data["error"], status, str(data.get("message") or "")
        return None, status, str(exc.message)[:500]
    code = exc.code if isinstance(exc.code, int) else None
    return code, None, str(exc.message or "")


def _refusal(exc: SmsApiException) -> SendResult:
    code, status, said = _code_of(exc)
    raw = f"HTTP {status}, error {code}: {said}" if status else f"error {code}: {said}"
    if code is None and status == 401:
        code = AUTH_FAILED
    if code is not None and code in ERROR_MEANINGS:
        return SendResult(ok=False, error=error_meaning(code), error_raw=raw, error_code=str(code),
                          permanent=code not in TEMPORARY_ERRORS)
    if status is not None and (status == 429 or status >= 500):
        return SendResult(ok=False, error_raw=raw, error_code=str(code or status), error=_(
            "SMSAPI is busy or unavailable (HTTP %(status)s); the SMS will be tried again.", status=status))
    return SendResult(ok=False, error=_("SMSAPI refused the SMS: %(reason)s", reason=said or code), error_raw=raw,
                      error_code=str(code or status), permanent=True)


def _no_answer(exc: requests.RequestException, timeout: float) -> SendResult:
    """No answer from SMSAPI: temporary when the request never got there, uncertain after it went out."""
    if isinstance(exc, requests.ReadTimeout):
        return SendResult(ok=False, uncertain=True, error_raw=str(exc), error_code="timeout", error=_(
            "SMSAPI did not answer within %(seconds)s seconds; the SMS may have gone out. Check it, then resend "
            "or mark it as sent.", seconds=timeout))
    return SendResult(ok=False, error_raw=str(exc), error_code="connection",
                      error=_("Could not connect to SMSAPI; the SMS will be tried again."))
