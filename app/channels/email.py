"""E-mail: building a thread's mail (text + HTML with the shop's signature, our threading ids) and sending it
over SMTP, one reused connection per mailbox and dispatch pass, with failures told in plain words."""
from __future__ import annotations

import base64
import functools
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import format_datetime

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import escape
from sqlalchemy import Integer, String, bindparam, exists, insert, literal, select

from ..attachments import path_for as attachment_path
from ..crypto import SecretUnreadable, decrypt
from ..extensions import db
from ..mail_ids import (
    INSTANCE_HEADER, instance_id, make_message_id, reply_address, thread_index, thread_topic,
)
from ..formatting import html_body, plain_text
from ..accounts.mailboxes import default_mailbox, record_failure, record_sent
from ..models import Customer, Delivery, Mailbox, Message, MessageRef, Shop, Thread, utcnow
from ..accounts.oauth import TokenUnavailable, access_token
from . import mime
from .base import SendResult, Unreachable, notice_content

MAX_REFERENCES = 20  # enough for every client to thread; long chains make headers some servers refuse
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

    def open_session(self) -> "EmailSession":
        return EmailSession()

    def build_mail(self, delivery: Delivery, via: Mailbox | None = None) -> "OutgoingMail":
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
        if not _login_of(mailbox):
            return True, _("Connected to %(host)s:%(port)s (%(security)s). No login is set up.", **values)
        return True, _("Connected to %(host)s:%(port)s (%(security)s) and signed in as %(user)s.",
                       user=_login_of(mailbox), **values)


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

    def _hand_over(self, mailbox: Mailbox, mail: "OutgoingMail") -> dict:
        """MAIL, RCPT and DATA over the mailbox's connection; a reused connection the server has dropped is
        replaced once. Returns the refused recipients (when others were accepted)."""
        reused = mailbox.id in self._connections
        try:
            return mail.hand_over(self._connection(mailbox))
        except smtplib.SMTPServerDisconnected:
            self._drop(mailbox)
            if not reused:
                raise
        return mail.hand_over(self._connection(mailbox))

    def _settle(self) -> None:
        """Read the server's answer to the mail handed over last, if it is still to be read."""
        handover, self._awaiting = self._awaiting, None
        if handover is None:
            return
        try:
            handover.mail.read_answer(self._connections[handover.via.id])
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
        _remember_our_id(delivery, mail.message_id)
        if handover.refused:  # some CC addresses were refused, the rest accepted the mail
            refused = handover.refused
            raw = "; ".join(f"{address}: {code} {_text(reply)}" for address, (code, reply) in refused.items())
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
    mail: "OutgoingMail"
    refused: dict = field(default_factory=dict)  # recipients refused while others were accepted
    failure: SendResult | None = None
    mailbox_failed: bool = False  # the failure is the mailbox's (it counts towards "broken")


def _known(result: SendResult) -> Callable[[], SendResult]:
    return lambda: result


class AnswerLost(smtplib.SMTPException):
    """The whole mail went out (up to DATA's final dot) but the server's answer never came: it may have taken it."""



# --- building mail ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingMail:
    """A mail ready for the wire: its bytes and its envelope."""

    data: bytes
    message_id: str  # without angle brackets
    sender: str
    recipients: list[str]
    international: bool  # an address has non-ASCII letters: the server must offer SMTPUTF8

    def hand_over(self, connection: smtplib.SMTP) -> dict:
        """The first half of smtplib's sendmail: MAIL, RCPT and DATA with the mail up to its final dot; the
        server's answer to it is left to read_answer. Returns the refused recipients when others were accepted;
        raises what sendmail raises."""
        connection.ehlo_or_helo_if_needed()
        options = [f"SIZE={len(self.data)}"] if connection.has_extn("size") else []
        if self.international:
            if not connection.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError(
                    "One or more source or delivery addresses require internationalized email support, but the "
                    "server does not advertise the required SMTPUTF8 capability")
            options += ["SMTPUTF8", "BODY=8BITMIME"]
            connection.command_encoding = "utf-8"  # as smtplib's mail() does for SMTPUTF8
        # MAIL and RCPT as smtplib's mail() and rcpt() write them, without parsing each plain address again.
        connection.putcmd("mail", f"FROM:{_quoted(self.sender)}" + "".join(f" {option}" for option in options))
        code, reply = connection.getreply()
        if code != 250:
            _abandon(connection, code)
            raise smtplib.SMTPSenderRefused(code, reply, self.sender)
        refused = {}
        for recipient in self.recipients:
            connection.putcmd("rcpt", f"TO:{_quoted(recipient)}")
            code, reply = connection.getreply()
            if code not in (250, 251):
                refused[recipient] = (code, reply)
            if code == 421:
                connection.close()
                raise smtplib.SMTPRecipientsRefused(refused)
        if len(refused) == len(self.recipients):
            _abandon(connection, 0)
            raise smtplib.SMTPRecipientsRefused(refused)
        code, reply = connection.docmd("DATA")
        if code != 354:
            _abandon(connection, code)
            raise smtplib.SMTPDataError(code, reply)
        connection.send(_LEADING_DOT.sub(b"..", self.data) + b".\r\n")  # the data ends with CRLF
        return refused

    def read_answer(self, connection: smtplib.SMTP) -> None:
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


def compose_mail(delivery: Delivery, *, shop: Shop, home: Mailbox, via: Mailbox) -> OutgoingMail:
    """The mail for a delivery of `home` (the delivery's own mailbox), sent through `via`.

    Reply-To always names `home` with the thread token, also when another mailbox sends in its place. The
    subject ends with the thread's repair or ticket number (see subject_with_reference).
    Refuses (ValueError) a subject or address with a line break, and an attachment whose file is missing.
    """
    if delivery.purpose != "message":  # a panel notice about the message, not the message itself
        return notice_content(delivery.purpose).mail(delivery, shop=shop, home=home, via=via)
    message: Message = delivery.message
    thread = message.thread
    subject = subject_with_reference(message.subject or thread.subject or shop.name, thread)
    sender_name, reply_name = via.display_name or shop.name, home.display_name or shop.name
    for value in (subject, sender_name, reply_name, delivery.recipient, *delivery.cc):
        if "\r" in value or "\n" in value:
            raise ValueError(f"line break in a header value: {value!r}")

    message_id = make_message_id(thread.id, message.id, via.email.rpartition("@")[2])
    headers = [
        f"From: {mime.address(sender_name, via.email)}",
        mime.folded("To", [delivery.recipient]),
        *([mime.folded("Cc", list(delivery.cc), ",")] if delivery.cc else []),
        f"Reply-To: {mime.address(reply_name, reply_address(home.email, thread.token))}",
        mime.header("Subject", subject),
        f"Date: {format_datetime(utcnow())}",
        f"Message-ID: {message_id}",
    ]
    earlier = _earlier_refs(message)
    if earlier:
        refs = [ref for ref, _message_id in earlier]
        headers.append(f"In-Reply-To: <{refs[-1]}>")
        if len(refs) > MAX_REFERENCES:
            refs = [refs[0], *refs[-(MAX_REFERENCES - 1):]]  # the root lets clients find the thread
        headers.append(mime.folded("References", [f"<{ref}>" for ref in refs]))
    replies = len({message_id for _ref, message_id in earlier})
    headers.append(f"Thread-Index: {thread_index(thread.token, thread.created_at, replies)}")
    headers.append(mime.header("Thread-Topic", thread_topic(subject)))
    if message.automatic:
        headers += ["Auto-Submitted: auto-generated", "X-Auto-Response-Suppress: OOF, AutoReply"]
    headers.append(f"{INSTANCE_HEADER}: {instance_id()}")

    # The signature's words in the reader's language: the customer's, or the shop's for anyone else.
    language = thread.customer.language_or(shop.locale) if thread.customer is not None else shop.locale
    text = _render("emails/message.txt", shop, language, body=plain_text(message))
    html = _render("emails/message.html", shop, language, body=html_body(message), subject=subject)
    recipients = [delivery.recipient, *delivery.cc]
    international = not all(address.isascii() for address in (via.email, *recipients))
    data = mime.mail_bytes(headers, text, html, _files(message), encoding="utf-8" if international else "ascii")
    return OutgoingMail(data, message_id.strip("<>"), via.email, recipients, international)


# The message templates rendered once with a marker where each mail's own values go, in pieces: the layout, its
# styles and the shop's signature are the same in every mail, and rendering them cost more than the rest of
# building a mail's text. Keyed on the template (a new object when Flask reloads it), the names of the values and
# what the templates read of the shop: its locale (their words) and its signature. A template that reads more of
# the shop must add it to _shop_key. A template that does not print a value as given (a filter on it, say) loses
# its marker, and is then rendered whole for every mail.
_frames: dict[tuple, list[str] | None] = {}
_MAX_FRAMES = 64  # a few templates times the signatures a shop has had since the process started
_MARKER = "\x00{}\x00"  # NUL: not in the templates' own text
_UNSEEN = object()


def _shop_key(shop: Shop) -> tuple:
    return shop.locale, shop.name, shop.address, shop.phone, shop.opening_hours_text


def _render(name: str, shop: Shop, language: str | None, **values: str) -> str:
    """The mail template `name` rendered for the shop in `language` (the shop's when None) with `values` (escaped
    as the template's autoescaping says); needs no request context."""
    template = current_app.jinja_env.get_template(name)
    language = language or shop.locale
    key = (template, tuple(values), _shop_key(shop), language)
    pieces = _frames.get(key, _UNSEEN)  # one lookup: another thread (the web, the dispatcher) may clear
    if pieces is _UNSEEN:
        if len(_frames) >= _MAX_FRAMES:
            _frames.clear()
        with force_locale(language):
            output = template.render(shop=shop, **{value: _MARKER.format(value) for value in values})
        pieces = re.split("\x00(%s)\x00" % "|".join(values), output)
        # Each marker once and no NUL left over: else a template repeats or changes a value, or the shop's own
        # text has a NUL in it.
        whole = sorted(pieces[1::2]) == sorted(values) and "\x00" not in "".join(pieces[::2])
        pieces = _frames[key] = pieces if whole else None
    if pieces is None:
        with force_locale(language):
            return template.render(shop=shop, **values)
    if current_app.select_jinja_autoescape(name):
        values = {value: escape(text) for value, text in values.items()}
    return "".join(values[piece] if number % 2 else piece for number, piece in enumerate(pieces))


def subject_with_reference(subject: str, thread: Thread) -> str:
    """The subject with the number of the repair or ticket the thread is about, "[#R-2026-0042]": a reply from a
    mail program that drops every header still finds its context. Added at the end, or, where the subject names
    the number already (a template's "Wycena naprawy {{ repair_number }}"), put in that place: never twice."""
    context = thread.repair or thread.ticket
    if context is None or f"[#{context.number}]" in subject:
        return subject
    reference = f"[#{context.number}]"
    named = re.compile(rf"(?<![\w#-]){re.escape(context.number)}(?![\w-])")
    if named.search(subject):
        return named.sub(lambda _match: reference, subject, count=1)
    return f"{subject} {reference}"


def _files(message: Message) -> list[mime.File]:
    files = []
    for attachment in message.attachments:
        if not attachment.sha256:
            continue  # listed only (too big, skipped): nothing to send
        try:
            data = attachment_path(attachment.sha256).read_bytes()
        except FileNotFoundError:
            raise ValueError(f"attachment file missing: {attachment.filename}") from None
        files.append(mime.File(attachment.filename, attachment.content_type or "", data))
    return files


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


def _login_of(mailbox: Mailbox) -> str:
    return mailbox.smtp_username or mailbox.username or ""


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
        elif _login_of(mailbox):
            password = mailbox.smtp_password_enc or mailbox.password_enc
            _login(connection, _login_of(mailbox), decrypt(password) if password else "")
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
        connection.auth("XOAUTH2", _xoauth2(_login_of(mailbox), access_token(mailbox)))
    except smtplib.SMTPAuthenticationError:
        connection.auth("XOAUTH2", _xoauth2(_login_of(mailbox), access_token(mailbox, renew=True)))


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


# --- failures in words --------------------------------------------------------------------------


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
                         reply=f"{code} {_text(reply)}"), raw, str(code), permanent=code >= 500)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return Failure(_("The mail server rejected the login %(user)s (authentication failed): %(reply)s",
                         user=_login_of(mailbox), reply=f"{exc.smtp_code} {_text(exc.smtp_error)}"),
                       raw, "auth", mailbox_fault=True)
    if isinstance(exc, smtplib.SMTPResponseException) and _too_big(exc):
        return Failure(_("The message is too big for the mail server: %(reply)s",
                         reply=f"{exc.smtp_code} {_text(exc.smtp_error)}"), raw, str(exc.smtp_code), permanent=True)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return Failure(_("The mail server refused the sender address %(address)s: %(reply)s",
                         address=_text(exc.sender), reply=f"{exc.smtp_code} {_text(exc.smtp_error)}"),
                       raw, str(exc.smtp_code), permanent=exc.smtp_code >= 500)
    if isinstance(exc, (smtplib.SMTPConnectError, smtplib.SMTPHeloError)):
        return Failure(_("The mail server %(host)s:%(port)s turned the connection down: %(reply)s",
                         reply=f"{exc.smtp_code} {_text(exc.smtp_error)}", **where),
                       raw, str(exc.smtp_code), mailbox_fault=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        return Failure(_("The mail server refused the message: %(reply)s",
                         reply=f"{exc.smtp_code} {_text(exc.smtp_error)}"),
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
    return exc.smtp_code == 552 or "5.3.4" in _text(exc.smtp_error)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _raw(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{address}: {code} {_text(reply)}" for address, (code, reply) in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}"


# Run for every mail, so built once with parameters, on the table rather than the mapped class: building a
# statement, and the ORM's work around executing one, cost more than running it.
_refs = MessageRef.__table__
_EARLIER_REFS = (
    select(_refs.c.ref, _refs.c.message_id)
    .where(_refs.c.thread_id == bindparam("thread_id"), _refs.c.message_id != bindparam("message_id"))
    .order_by(_refs.c.id)
)
# Adds the ref unless it is known already (a resend reuses the same Message-ID): one statement.
_ADD_REF_ONCE = insert(_refs).from_select(
    ["ref", "message_id", "thread_id", "kind"],
    select(bindparam("ref", type_=String), bindparam("message_id", type_=Integer),
           bindparam("thread_id", type_=Integer), literal("ours", String))
    .where(~exists().where(_refs.c.ref == bindparam("ref", type_=String))),
)


def _earlier_refs(message: Message) -> list[tuple[str, int]]:
    """Every id the thread's other messages are known by, (ref, message id), in the order they were seen."""
    return list(db.session.execute(_EARLIER_REFS, {"thread_id": message.thread_id, "message_id": message.id})
                .tuples())


def _remember_our_id(delivery: Delivery, ref: str) -> None:
    """Keep the Message-ID we sent, so the thread's next mail can refer to it (a resend reuses the same id)."""
    if delivery.purpose == "shop_notice":
        return  # the shop's own copy: a reply to it must not land in the customer's thread
    db.session.execute(_ADD_REF_ONCE, {"ref": ref, "message_id": delivery.message_id,
                                       "thread_id": delivery.message.thread_id})
