"""Twilio (or a Twilio-compatible provider) behind the SMS provider interface (sms_provider.py), through the
official `twilio` client; its status callbacks and incoming SMS arrive at app/webhooks/twilio.py."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

import requests
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from twilio.base.exceptions import TwilioException
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError

from ..crypto import decrypt
from ..models import SmsAccount
from .base import SendResult
from .sms_provider import Balance, BalanceUnavailable
from .twilio_http import PassHttpClient

STATUS_CALLBACK_PATH = "/webhooks/twilio/status"  # served by app/webhooks/twilio.py
INBOUND_PATH = "/webhooks/twilio/sms"  # where Twilio posts the SMS customers send us (app/webhooks/twilio.py)
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
# Twilio's MessageStatus → the delivery status it stands for; others (accepted, scheduled, read…) are only recorded.
STATUSES = {"queued": "queued", "sending": "sending", "sent": "sent", "delivered": "delivered",
            "undelivered": "failed", "failed": "failed"}
UNDELIVERED = _l("Twilio could not deliver the SMS.")


def error_meaning(code: int | str) -> str:
    """What a Twilio error code means, for people; "Twilio error N" for codes we have no words for."""
    text = str(code)
    meaning = ERROR_MEANINGS.get(int(text)) if text.isascii() and text.isdigit() and len(text) <= 9 else None
    return str(meaning) if meaning else _("Twilio error %(code)s", code=code)


def report_error(status: str, code: str | None) -> str:
    """What Twilio's failed status report means: its ErrorCode in words, or that it could not deliver."""
    return error_meaning(code) if code else str(UNDELIVERED)


class TwilioProvider:
    """The shop's Twilio account for one dispatch pass: one client, its connection kept alive for the pass."""

    name, label = "twilio", "Twilio"
    STATUSES = STATUSES
    report_error = staticmethod(report_error)
    OPT_OUT_CODES = frozenset({str(UNSUBSCRIBED)})
    ACCOUNT_CODES = frozenset({str(AUTH_FAILED)})

    def __init__(self, account: SmsAccount, timeout: float):
        self.account = account
        self.timeout = timeout
        self._client: Client | None = None  # made by the first call: a pass without SMS costs nothing

    def send(self, to: str, body: str, *, report_url: str | None) -> SendResult:
        """Ask Twilio to send `body` to `to` (E.164), with `report_url` as the StatusCallback.

        Twilio's refusals become clear messages (see ERROR_MEANINGS). Busy or unreachable Twilio (429, 5xx,
        refused, timeout) and a rejected token are temporary: the retry succeeds once Twilio is back or the owner
        fixes the token. Raises SecretUnreadable when the stored token cannot be decrypted.
        """
        try:
            message = self._twilio().messages.create(to=to, body=body, status_callback=report_url, **self._sender())
        except TwilioException as exc:
            return _refusal(exc)
        except (HTTPError, requests.RequestException) as exc:  # requests: a malformed base URL or proxy setting
            return _no_answer(exc, self.timeout)
        return SendResult(ok=True, provider_id=message.sid)

    def balance(self) -> Balance:
        """The account's balance (Twilio's Balance resource), or BalanceUnavailable saying why not."""
        try:
            answer = self._twilio().api.v2010.account.balance.fetch()
            return Balance(Decimal(str(answer.balance)), answer.currency or "")
        except TwilioException as exc:
            raise BalanceUnavailable(_refusal(exc).error) from None
        except (HTTPError, requests.RequestException) as exc:
            raise BalanceUnavailable(_no_answer(exc, self.timeout).error) from None
        except (InvalidOperation, TypeError):
            raise BalanceUnavailable(_("Twilio answered without a balance.")) from None

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
