"""What every channel offers the rest of the app: whether a customer can be reached, and a sending session."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..models import Customer, Delivery, Shop


@dataclass(frozen=True)
class SendResult:
    """The outcome of one attempt to send one delivery."""

    ok: bool
    provider_id: str | None = None  # Twilio SID, our Message-ID for mail
    error: str | None = None  # for people, in the shop's words
    error_raw: str | None = None  # what the server said, for the outbox's details
    error_code: str | None = None  # e.g. "21211", "550", "auth"
    permanent: bool = False  # retrying cannot help (invalid number, mailbox does not exist)
    uncertain: bool = False  # the request reached the provider but no answer came: it may have gone out
    mailbox_id: int | None = None  # the mailbox that actually sent (the default one when the first is broken)
    sms_account_id: int | None = None  # the SMS account it went through


class Unreachable(str):
    """Why a channel cannot reach a customer, in the shop's words, and what fixes it: `fix` names the place ("customer",
    "customer_edit", "mailbox", "mailboxes", "sms_settings") and `fix_id` the row, for the web pages to link to.
    A plain string everywhere else (forms, the API's 422, bulk messages, the repair's log)."""

    fix: str | None
    fix_id: int | None

    def __new__(cls, text: str, fix: str | None = None, fix_id: int | None = None) -> "Unreachable":
        reason = super().__new__(cls, text)
        reason.fix, reason.fix_id = fix, fix_id
        return reason


class ChannelSession(Protocol):
    """Open connections for one dispatch pass; `send` is called once per claimed delivery.

    A session may also offer `begin(delivery)`: start the send and return at once with a function that waits for
    its SendResult. The dispatcher then starts the next delivery and records the last one while this one is on
    its way, and asks for the results in order; `begin` must not write to the database (the result function may).
    """

    def send(self, delivery: "Delivery") -> SendResult: ...

    def close(self) -> None: ...


class Channel(Protocol):
    name: str  # "email" | "sms" | "portal"

    def unreachable_reason(self, customer: "Customer", shop: "Shop") -> Unreachable | None:
        """Why this channel cannot reach the customer (translated, with what fixes it), or None when it can."""

    def open_session(self) -> ChannelSession: ...


@dataclass(frozen=True)
class NoticeContent:
    """How to write a delivery whose purpose is not the message itself (a panel invitation, a sign-in link, a
    "new message" notice): by e-mail (delivery, shop, home and sending mailbox → the mail) and by SMS (→ the text).
    Who writes these notices registers them here by purpose, so that the channels never import their writer."""

    mail: Callable[..., object]  # -> mail_build.OutgoingMail
    sms: Callable[["Delivery"], str]


_NOTICES: dict[str, NoticeContent] = {}


def register_notices(purposes, content: NoticeContent) -> None:
    """Let the channels write deliveries of these `purposes` with `content` (the panel's notices register at import;
    the app factory imports them, so every process that sends has them)."""
    for purpose in purposes:
        _NOTICES[purpose] = content


_ON_PUBLISH: dict[str, Callable] = {}


def on_publish(name: str, callback: Callable) -> None:
    """Call `callback(message)` whenever the panel channel publishes a message (the panel's "a new message waits
    for you" notice registers itself here, as "panel_notice")."""
    _ON_PUBLISH[name] = callback


def published(message) -> None:
    """Tell what registered with on_publish that `message` is now in the customer's panel."""
    for callback in _ON_PUBLISH.values():
        callback(message)


def notice_content(purpose: str) -> NoticeContent:
    """The registered content of `purpose`; LookupError for a purpose nobody registered."""
    try:
        return _NOTICES[purpose]
    except KeyError:
        raise LookupError(f"no notice content is registered for the delivery purpose {purpose!r}") from None
