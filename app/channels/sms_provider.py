"""What an SMS provider offers the SMS channel (Twilio and SMSAPI.pl implement it): send, balance, and the words
for its error codes and report statuses. The channel (sms.py) picks the provider of the active account."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from .base import SendResult

if TYPE_CHECKING:
    from ..models import SmsAccount


@dataclass(frozen=True)
class Balance:
    """What is left on the account: an amount (SMSAPI: points) and its unit."""

    amount: Decimal
    unit: str


class BalanceUnavailable(Exception):
    """The provider could not tell the balance (not reachable, credentials refused); the message says why."""


class SmsProvider(Protocol):
    """One provider account, for one dispatch pass (its HTTP connection reused for the pass).

    `send` never raises for the provider's refusals: they come back as a SendResult whose error_code is the
    provider's own, with `permanent` set when retrying cannot help. Codes in OPT_OUT_CODES mean the number opted
    out at the provider; codes in ACCOUNT_CODES are the account's problem (credentials), kept for the settings page.
    """

    name: str  # as stored on SmsAccount.provider
    label: str  # as people know it
    OPT_OUT_CODES: frozenset[str]
    ACCOUNT_CODES: frozenset[str]
    STATUSES: dict[str, str]  # the provider's word for a delivery report's status → the delivery's status

    def __init__(self, account: SmsAccount, timeout: float) -> None: ...

    @staticmethod
    def report_error(status: str, code: str | None) -> str:
        """What a failed delivery report (its status, and its error code when it has one) means, for people."""

    def send(self, to: str, body: str, *, report_url: str | None) -> SendResult: ...

    def balance(self) -> Balance: ...

    def close(self) -> None: ...
