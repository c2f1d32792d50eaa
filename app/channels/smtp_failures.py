"""What went wrong with a mail server, in the shop's words: which failure it was, whose fault (the mailbox's
settings or the recipient), and the server's own reply for the outbox's details."""
from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _

from ..accounts.oauth import TokenUnavailable
from ..crypto import SecretUnreadable
from ..models import Mailbox


class AnswerLost(smtplib.SMTPException):
    """The whole mail went out (up to DATA's final dot) but the server's answer never came: it may have taken it."""


def login_of(mailbox: Mailbox) -> str:
    """The name a mailbox signs in to its SMTP server with."""
    return mailbox.smtp_username or mailbox.username or ""


@dataclass(frozen=True)
class Failure:
    error: str  # for people
    raw: str  # the server's code and text, or the exception
    code: str  # the SMTP reply code, or a word: dns, refused, timeout, tls, auth, disconnected, connect
    permanent: bool = False  # retrying the same mail cannot help
    mailbox_fault: bool = False  # the mailbox cannot connect or sign in: counts towards "broken"
    uncertain: bool = False  # the mail may have been delivered: sending it again could send it twice


def describe_failure(exc: BaseException, mailbox: Mailbox) -> Failure:
    """What went wrong talking to the mailbox's server, in the shop's words; 5xx refusals are permanent."""
    where = {"host": mailbox.smtp_host, "port": mailbox.smtp_port}
    raw = _raw(exc)
    if isinstance(exc, AnswerLost):  # a timeout or a closed connection after the mail's final dot
        return Failure(_("The mail server %(host)s:%(port)s took the whole message but never confirmed it; the "
                         "mail may have been delivered. Check it, then resend or mark it as sent.", **where),
                       raw, "no_answer", uncertain=True)
    # smtplib's exceptions are OSErrors too: the SMTP ones are told apart first.
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        address, (code, reply) = next(iter(exc.recipients.items()))
        return Failure(_("The mail server refused the recipient %(address)s: %(reply)s", address=address,
                         reply=f"{code} {reply_text(reply)}"), raw, str(code), permanent=code >= 500)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return Failure(_("The mail server rejected the login %(user)s (authentication failed): %(reply)s",
                         user=login_of(mailbox), reply=f"{exc.smtp_code} {reply_text(exc.smtp_error)}"),
                       raw, "auth", mailbox_fault=True)
    if isinstance(exc, smtplib.SMTPResponseException) and _too_big(exc):
        return Failure(_("The message is too big for the mail server: %(reply)s",
                         reply=f"{exc.smtp_code} {reply_text(exc.smtp_error)}"),
                       raw, str(exc.smtp_code), permanent=True)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return Failure(_("The mail server refused the sender address %(address)s: %(reply)s",
                         address=reply_text(exc.sender), reply=f"{exc.smtp_code} {reply_text(exc.smtp_error)}"),
                       raw, str(exc.smtp_code), permanent=exc.smtp_code >= 500)
    if isinstance(exc, (smtplib.SMTPConnectError, smtplib.SMTPHeloError)):
        return Failure(_("The mail server %(host)s:%(port)s turned the connection down: %(reply)s",
                         reply=f"{exc.smtp_code} {reply_text(exc.smtp_error)}", **where),
                       raw, str(exc.smtp_code), mailbox_fault=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        return Failure(_("The mail server refused the message: %(reply)s",
                         reply=f"{exc.smtp_code} {reply_text(exc.smtp_error)}"),
                       raw, str(exc.smtp_code), permanent=exc.smtp_code >= 500)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        if "STARTTLS" in str(exc):
            message = _("The mail server %(host)s:%(port)s does not offer STARTTLS: choose TLS or no encryption.",
                        **where)
            return Failure(message, raw, "tls", mailbox_fault=True)
        if "AUTH" in str(exc):
            message = _("The mail server %(host)s:%(port)s does not offer a login on this connection: "
                        "check the security setting.", **where)
            return Failure(message, raw, "auth", mailbox_fault=True)
        # An address with non-ASCII letters for a server without SMTPUTF8.
        return Failure(_("The mail server cannot take this message: %(reason)s", reason=exc), raw, "unsupported",
                       permanent=True)
    if isinstance(exc, TokenUnavailable):
        return Failure(str(exc), raw, "auth", mailbox_fault=True)
    if isinstance(exc, SecretUnreadable):
        return Failure(_("The stored password cannot be read (the app's secret key changed): enter it again."),
                       raw, "auth", mailbox_fault=True)
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        # smtplib reports a server that stops answering as "disconnected", with the timeout as its context.
        seconds = current_app.config.get("SMTP_TIMEOUT", 30)
        return Failure(_("The mail server %(host)s:%(port)s did not answer: timed out after %(seconds)s s.",
                         seconds=seconds, **where), raw, "timeout", mailbox_fault=True)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return Failure(_("The mail server %(host)s:%(port)s closed the connection unexpectedly.", **where),
                       raw, "disconnected", mailbox_fault=True)
    if isinstance(exc, socket.gaierror):
        return Failure(_("The mail server %(host)s was not found (DNS lookup failed).", **where),
                       raw, "dns", mailbox_fault=True)
    if isinstance(exc, ConnectionRefusedError):
        return Failure(_("The mail server %(host)s:%(port)s refused the connection: check the host and port.",
                         **where), raw, "refused", mailbox_fault=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Failure(_("The secure connection (TLS) to %(host)s failed: its certificate is not trusted "
                         "(%(reason)s).", reason=exc.verify_message, **where), raw, "tls", mailbox_fault=True)
    if isinstance(exc, ssl.SSLError):
        return Failure(_("The secure connection (TLS) to %(host)s:%(port)s failed (%(reason)s): check the "
                         "port and the security setting.", reason=exc.reason or exc, **where),
                       raw, "tls", mailbox_fault=True)
    return Failure(_("Could not connect to the mail server %(host)s:%(port)s: %(reason)s",
                     reason=getattr(exc, "strerror", None) or exc, **where), raw, "connect", mailbox_fault=True)


def _too_big(exc: smtplib.SMTPResponseException) -> bool:
    return exc.smtp_code == 552 or "5.3.4" in reply_text(exc.smtp_error)


def reply_text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _raw(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{address}: {code} {reply_text(reply)}" for address, (code, reply) in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {reply_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}"
