"""E-mail: who can get one, and sending over SMTP, one reused connection per mailbox and dispatch pass (building the
mail: mail_build.py; failures in words: smtp_failures.py)."""
from __future__ import annotations

import base64
import functools
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..accounts.mailboxes import default_mailbox, record_failure, record_sent
from ..accounts.oauth import TokenUnavailable, access_token
from ..crypto import SecretUnreadable, decrypt
from ..extensions import db
from ..models import Customer, Delivery, Mailbox, Shop
from .base import SendResult, Unreachable
from .mail_build import OutgoingMail, compose_mail, remember_our_id
from .smtp_failures import AnswerLost, describe_failure, login_of, reply_text

# What connecting and signing in can raise besides a mail's own refusal.
CONNECT_ERRORS = (smtplib.SMTPException, OSError, SecretUnreadable, TokenUnavailable)
NO_MAILBOX = _l("No mailbox is set up for sending (Settings → Mailboxes).")


def _no_mailbox_reason() -> Unreachable:
    """No active mailbox: either none is set up, or the ones there are switched off (named, to be switched on)."""
    off = list(db.session.execute(select(Mailbox.id, Mailbox.name).order_by(Mailbox.is_default.desc(), Mailbox.id)))
    if not off:
        return Unreachable(str(NO_MAILBOX), "mailboxes")
    if len(off) == 1:
        return Unreachable(_("The mailbox %(name)s is switched off.", name=off[0].name), "mailbox", off[0].id)
    return Unreachable(_("The mailboxes %(names)s are switched off.", names=", ".join(m.name for m in off)),
                       "mailboxes")


class EmailChannel:
    """The e-mail channel (app/channels/base.py): reachability, building mail, sending sessions."""

    name = "email"

    def unreachable_reason(self, customer: Customer, shop: Shop) -> Unreachable | None:
        """Why no mail can go to the customer, or None: no address, or no mailbox to send from (none set up, or
        every one switched off, named)."""
        if not customer.email:
            return Unreachable(_("The customer has no e-mail address."), "customer_edit", customer.id)
        if default_mailbox() is None:
            return _no_mailbox_reason()
        return None

    def sender_unreachable_reason(self, address: str | None) -> Unreachable | None:
        """Why no mail can go back to the sender of a thread without a customer (a partner, a supplier), or None:
        the thread has no e-mail sender to answer, or no mailbox can send."""
        if not address:
            return Unreachable(_("This thread cannot be answered by e-mail: nobody wrote to it by e-mail "
                                 "(add the thread to a customer to answer on another channel)."))
        if default_mailbox() is None:
            return _no_mailbox_reason()
        return None

    def open_session(self) -> "EmailSession":
        return EmailSession()

    def build_mail(self, delivery: Delivery, via: Mailbox | None = None) -> OutgoingMail:
        """The mail for a delivery, sent through `via` (default: the delivery's own mailbox); see compose_mail.

        Refuses (ValueError) a delivery without any mailbox to send from.
        """
        home = home_mailbox(delivery, default_mailbox())
        if home is None:
            raise ValueError("no mailbox to send from")
        return compose_mail(delivery, shop=Shop.current(), home=home, via=via or home)

    def test_connection(self, mailbox: Mailbox) -> tuple[bool, str]:
        """Connect, secure the connection, sign in and say goodbye; (True, what worked) or (False, what failed)."""
        try:
            connection = connect(mailbox)
        except CONNECT_ERRORS as exc:
            return False, describe_failure(exc, mailbox).error
        say_goodbye(connection)
        values = {"host": mailbox.smtp_host, "port": mailbox.smtp_port, "security": _security_name(mailbox)}
        if not login_of(mailbox):
            return True, _("Connected to %(host)s:%(port)s (%(security)s). No login is set up.", **values)
        return True, _("Connected to %(host)s:%(port)s (%(security)s) and signed in as %(user)s.",
                       user=login_of(mailbox), **values)


class EmailSession:
    """The SMTP side of one dispatch pass: one connection per mailbox, opened on first use and reused for the rest.

    A mail is handed to the server up to the final dot of its DATA, and the server's answer to it is read when
    the result is asked for or, at the latest, before the next mail's first command: meanwhile the dispatcher
    builds the next mail and records the last result while the server takes in this one (`begin`, see
    ChannelSession). Without the PIPELINING extension (which not every server offers) a client may not send
    more before that answer, so this is the only wait we can overlap.

    A mailbox that cannot be reached is tried once per pass: its later deliveries get the same failure at
    once instead of waiting for the same timeout again. A mailbox that works is marked healthy by its first
    mail of the pass (its last send time is that mail's: an UPDATE per mail would cost more than the rest of
    writing the result). The shop (for the signature) and its default mailbox are read once per pass too.
    """

    def __init__(self) -> None:
        self._connections: dict[int, smtplib.SMTP] = {}
        self._unreachable: dict[int, SendResult] = {}
        self._healthy: set[int] = set()  # mailboxes whose health this pass has recorded
        self._awaiting: _Handover | None = None  # the mail whose final answer is still to be read

    @functools.cached_property
    def _shop(self) -> Shop:
        return Shop.current()

    @functools.cached_property
    def _default_mailbox(self) -> Mailbox | None:
        return default_mailbox()

    def send(self, delivery: Delivery) -> SendResult:
        """Send one e-mail delivery; the mailbox's health is updated (flushed with the caller's transaction)."""
        return self.begin(delivery)()

    def begin(self, delivery: Delivery) -> Callable[[], SendResult]:
        """Build the delivery's mail and hand it to the server without waiting for the final answer; the function
        returned waits for that answer and records what it means for the mailbox (flushed with the caller's
        transaction)."""
        with force_locale(self._shop.locale):  # errors are stored for the shop's people, in its language
            home = home_mailbox(delivery, self._default_mailbox)
            if home is None:
                return _known(SendResult(ok=False, error=str(NO_MAILBOX), error_code="no_mailbox"))
            via = _standing_in_for(home, self._default_mailbox)
            if via.id in self._unreachable:
                return _known(self._unreachable[via.id])
            try:
                mail = compose_mail(delivery, shop=self._shop, home=home, via=via)
            except ValueError as exc:
                return _known(SendResult(
                    ok=False, permanent=True, mailbox_id=via.id, error_code="invalid", error_raw=str(exc),
                    error=_("This mail cannot be built: %(reason)s", reason=str(exc))))
            self._settle()
            if via.id in self._unreachable:  # the answer to the mail before showed the mailbox is gone
                return _known(self._unreachable[via.id])
            handover = _Handover(via, mail)
            try:
                handover.refused = self._hand_over(via, mail)
                self._awaiting = handover
            except CONNECT_ERRORS as exc:
                self._fail(handover, exc)
        return functools.partial(self._outcome, delivery, handover)

    def _hand_over(self, mailbox: Mailbox, mail: OutgoingMail) -> dict:
        """MAIL, RCPT and DATA over the mailbox's connection; a reused connection the server has dropped is
        replaced once. Returns the refused recipients (when others were accepted)."""
        reused = mailbox.id in self._connections
        try:
            return hand_over(mail, self._connection(mailbox))
        except smtplib.SMTPServerDisconnected:
            self._drop(mailbox)
            if not reused:
                raise
        return hand_over(mail, self._connection(mailbox))

    def _settle(self) -> None:
        """Read the server's answer to the mail handed over last, if it is still to be read."""
        handover, self._awaiting = self._awaiting, None
        if handover is None:
            return
        try:
            read_answer(handover.mail, self._connections[handover.via.id])
        except (smtplib.SMTPException, OSError) as exc:
            self._fail(handover, exc)

    def _fail(self, handover: "_Handover", exc: BaseException) -> None:
        """Note why a mail failed; a failure of the mailbox itself (not of this mail) ends its use for the pass."""
        via = handover.via
        failure = describe_failure(exc, via)
        handover.failure = SendResult(ok=False, error=failure.error, error_raw=failure.raw, error_code=failure.code,
                                      permanent=failure.permanent, uncertain=failure.uncertain, mailbox_id=via.id)
        if failure.mailbox_fault:
            handover.mailbox_failed = True
            self._unreachable[via.id] = handover.failure
        if failure.mailbox_fault or failure.uncertain:
            self._drop(via)  # gone or out of step: a later mail of the pass needs a new connection, if any

    def _outcome(self, delivery: Delivery, handover: "_Handover") -> SendResult:
        if handover is self._awaiting:
            with force_locale(self._shop.locale):
                self._settle()
        via = handover.via
        if handover.failure is not None:
            if handover.mailbox_failed:
                record_failure(via, handover.failure.error)
            return handover.failure
        if via.id not in self._healthy:
            record_sent(via)
            self._healthy.add(via.id)
        mail = handover.mail
        remember_our_id(delivery, mail.message_id)
        if handover.refused:  # some CC addresses were refused, the rest accepted the mail
            refused = handover.refused
            raw = "; ".join(f"{address}: {code} {reply_text(reply)}" for address, (code, reply) in refused.items())
            with force_locale(self._shop.locale):
                error = _("Sent, but the mail server refused %(addresses)s.", addresses=", ".join(refused))
            return SendResult(ok=True, provider_id=mail.message_id, mailbox_id=via.id, error_raw=raw, error=error)
        return SendResult(ok=True, provider_id=mail.message_id, mailbox_id=via.id)

    def _connection(self, mailbox: Mailbox) -> smtplib.SMTP:
        if mailbox.id not in self._connections:
            self._connections[mailbox.id] = connect(mailbox)
        return self._connections[mailbox.id]

    def _drop(self, mailbox: Mailbox) -> None:
        connection = self._connections.pop(mailbox.id, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        """Read the last answer still due, then say goodbye to every server; a server that went away meanwhile is
        no error."""
        if self._awaiting is not None:
            with force_locale(self._shop.locale):
                self._settle()
        for connection in self._connections.values():
            say_goodbye(connection)
        self._connections.clear()


@dataclass
class _Handover:
    """A mail handed to a mailbox's server within a session, and what became of it."""

    via: Mailbox
    mail: OutgoingMail
    refused: dict = field(default_factory=dict)  # recipients refused while others were accepted
    failure: SendResult | None = None
    mailbox_failed: bool = False  # the failure is the mailbox's (it counts towards "broken")


def _known(result: SendResult) -> Callable[[], SendResult]:
    return lambda: result


# --- handing a mail to the server -------------------------------------------------------------


def hand_over(mail: OutgoingMail, connection: smtplib.SMTP) -> dict:
    """The first half of smtplib's sendmail: MAIL, RCPT and DATA with the mail up to its final dot; the
    server's answer to it is left to read_answer. Returns the refused recipients when others were accepted;
    raises what sendmail raises."""
    connection.ehlo_or_helo_if_needed()
    options = [f"SIZE={len(mail.data)}"] if connection.has_extn("size") else []
    if mail.international:
        if not connection.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError(
                "One or more source or delivery addresses require internationalized email support, but the "
                "server does not advertise the required SMTPUTF8 capability")
        options += ["SMTPUTF8", "BODY=8BITMIME"]
        connection.command_encoding = "utf-8"  # as smtplib's mail() does for SMTPUTF8
    # MAIL and RCPT as smtplib's mail() and rcpt() write them, without parsing each plain address again.
    connection.putcmd("mail", f"FROM:{_quoted(mail.sender)}" + "".join(f" {option}" for option in options))
    code, reply = connection.getreply()
    if code != 250:
        _abandon(connection, code)
        raise smtplib.SMTPSenderRefused(code, reply, mail.sender)
    refused = {}
    for recipient in mail.recipients:
        connection.putcmd("rcpt", f"TO:{_quoted(recipient)}")
        code, reply = connection.getreply()
        if code not in (250, 251):
            refused[recipient] = (code, reply)
        if code == 421:
            connection.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(mail.recipients):
        _abandon(connection, 0)
        raise smtplib.SMTPRecipientsRefused(refused)
    code, reply = connection.docmd("DATA")
    if code != 354:
        _abandon(connection, code)
        raise smtplib.SMTPDataError(code, reply)
    connection.send(_LEADING_DOT.sub(b"..", mail.data) + b".\r\n")  # the data ends with CRLF
    return refused

def read_answer(mail: OutgoingMail, connection: smtplib.SMTP) -> None:
    """The second half: the server's answer to the mail handed over. Raises SMTPDataError when it refuses the
    mail, AnswerLost when the answer never comes (the server may have taken the mail: sending it again
    could deliver it twice)."""
    try:
        code, reply = connection.getreply()
    except smtplib.SMTPServerDisconnected as exc:
        raise AnswerLost(str(exc)) from exc
    if code != 250:
        _abandon(connection, code)
        raise smtplib.SMTPDataError(code, reply)


_LEADING_DOT = re.compile(rb"(?m)^\.")  # SMTP's dot-stuffing (RFC 5321 4.5.2), as smtplib does it
_PLAIN_ADDRESS = re.compile(r"[^\s<>()\[\]\",;:\\@]+@[^\s<>()\[\]\",;:\\@]+")  # nothing to quote or strip


def _quoted(address: str) -> str:
    """`<address>` for MAIL FROM and RCPT TO: what smtplib.quoteaddr makes of it, which parses every address (a
    cost per mail) though ours are plain addr-specs."""
    return f"<{address}>" if _PLAIN_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)


def _abandon(connection: smtplib.SMTP, code: int) -> None:
    """End a refused mail transaction as smtplib does: 421 means the server is closing the connection."""
    if code == 421:
        connection.close()
        return
    try:
        connection.rset()
    except smtplib.SMTPServerDisconnected:
        pass  # the refusal is what counts; the next mail reconnects


# --- mailboxes ----------------------------------------------------------------------------------


def home_mailbox(delivery: Delivery, default: Mailbox | None) -> Mailbox | None:
    """The mailbox a delivery belongs to: its own when set and active, else `default` (the shop's default)."""
    if delivery.mailbox_id is not None:
        mailbox = db.session.get(Mailbox, delivery.mailbox_id)
        if mailbox is not None and mailbox.active:
            return mailbox
    return default


def _standing_in_for(home: Mailbox, default: Mailbox | None) -> Mailbox:
    """The mailbox that sends for `home`: `default` (the shop's default) while `home` is broken, when that one
    works."""
    if home.broken_at is None:
        return home
    if default is None or default.id == home.id or default.broken_at is not None:
        return home  # nothing better: keep trying, a success ends the broken state
    return default


def _security_name(mailbox: Mailbox) -> str:
    return {"tls": "TLS", "starttls": "STARTTLS"}.get(mailbox.smtp_security) or _("no encryption")


def tls_context() -> ssl.SSLContext:
    """Certificates are verified; SMTP_CA_FILE names a CA to trust instead of the system's (tests, private CAs)."""
    return ssl.create_default_context(cafile=current_app.config.get("SMTP_CA_FILE"))


def connect(mailbox: Mailbox) -> smtplib.SMTP:
    """An SMTP connection secured as the mailbox says and signed in; raises what smtplib, ssl or socket raise."""
    timeout = current_app.config.get("SMTP_TIMEOUT", 30)
    if mailbox.smtp_security == "tls":
        connection = smtplib.SMTP_SSL(mailbox.smtp_host, mailbox.smtp_port, timeout=timeout, context=tls_context())
    else:
        connection = smtplib.SMTP(mailbox.smtp_host, mailbox.smtp_port, timeout=timeout)
    try:
        # A mail longer than one TLS record leaves in several writes; with Nagle's algorithm the last one waits
        # for the server's delayed ACK (40 ms or more) before the server can answer. Commands are whole writes.
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.ehlo()
        if mailbox.smtp_security == "starttls":
            connection.starttls(context=tls_context())
            connection.ehlo()
        if mailbox.uses_oauth:
            _login_xoauth2(connection, mailbox)
        elif login_of(mailbox):
            password = mailbox.smtp_password_enc or mailbox.password_enc
            _login(connection, login_of(mailbox), decrypt(password) if password else "")
    except BaseException:
        connection.close()
        raise
    return connection


def _login(connection: smtplib.SMTP, user: str, password: str) -> None:
    """Sign in; smtplib sends credentials as ASCII only, so a Polish letter in a password goes as UTF-8 by hand
    (AUTH PLAIN, RFC 4616; or AUTH LOGIN)."""
    if (user + password).isascii():
        connection.login(user, password)
        return
    if not connection.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    mechanisms = connection.esmtp_features["auth"].upper().split()
    if "PLAIN" in mechanisms:
        code, reply = connection.docmd("AUTH", "PLAIN " + _base64(f"\0{user}\0{password}"))
    elif "LOGIN" in mechanisms:
        code, reply = connection.docmd("AUTH", "LOGIN " + _base64(user))
        if code == 334:
            code, reply = connection.docmd(_base64(password))
    else:
        raise smtplib.SMTPException("No suitable authentication method found.")
    if code not in (235, 503):  # 503: already signed in
        raise smtplib.SMTPAuthenticationError(code, reply)


def _login_xoauth2(connection: smtplib.SMTP, mailbox: Mailbox) -> None:
    """AUTH XOAUTH2 with the mailbox's access token as the initial response. A refused token is renewed once and
    tried again: it may have been cut short, and when the consent was revoked the provider's refusal of the
    refresh token says so in words (TokenUnavailable)."""
    try:
        connection.auth("XOAUTH2", _xoauth2(login_of(mailbox), access_token(mailbox)))
    except smtplib.SMTPAuthenticationError:
        connection.auth("XOAUTH2", _xoauth2(login_of(mailbox), access_token(mailbox, renew=True)))


def _xoauth2(user: str, token: str) -> Callable:
    """smtplib's auth object for XOAUTH2: the credentials first; to the server's error challenge (334 with a
    JSON reason) the client answers empty, and the server then refuses with 535."""
    return lambda challenge=None: f"user={user}\x01auth=Bearer {token}\x01\x01" if challenge is None else ""


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def say_goodbye(connection: smtplib.SMTP) -> None:
    """QUIT; a server that went away meanwhile is no error."""
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


