"""E-mail: building a thread's mail (text + HTML with the shop's signature, our threading ids) and sending it
over SMTP, one reused connection per mailbox and dispatch pass, with failures told in plain words."""
from __future__ import annotations

import base64
import functools
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, insert, select

from ..attachments import path_for as attachment_path
from ..crypto import SecretUnreadable, decrypt
from ..extensions import db
from ..mail_ids import (
    INSTANCE_HEADER, instance_id, make_message_id, reply_address, thread_index, thread_topic,
)
from ..mailboxes import default_mailbox, record_failure, record_sent
from ..messaging.formatting import html_body, plain_text
from ..models import Customer, Delivery, Mailbox, Message, MessageRef, Shop, utcnow
from .base import SendResult

MAX_REFERENCES = 20  # enough for every client to thread; long chains make headers some servers refuse
NO_MAILBOX = _l("No mailbox is set up for sending (Settings → Mailboxes).")


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, making each header's class once: the stdlib makes a new class for every
    header set, about a sixth of the time it takes to build a mail."""

    @functools.cache
    def __getitem__(self, name: str):
        return super().__getitem__(name)


MAIL_POLICY = policy.SMTP.clone(header_factory=_HeaderClasses())


@functools.lru_cache(maxsize=64)
def _shared_header(name: str, value: str, addr_spec: str | None = None):
    """The header `name: value` as the mail policy parses it (with `addr_spec`: the address `value <addr_spec>`),
    made once and shared by the mails that carry it, as header objects are immutable: for the headers that are
    the same in many mails (the sender, our instance id, the markers of automatic mail), parsing being most of
    what a header costs."""
    return MAIL_POLICY.header_factory(name, value if addr_spec is None else Address(value, addr_spec=addr_spec))


class EmailChannel:
    """The e-mail channel (app/channels/base.py): reachability, building mail, sending sessions."""

    name = "email"

    def unreachable_reason(self, customer: Customer, shop: Shop) -> str | None:
        if not customer.email:
            return _("The customer has no e-mail address.")
        if default_mailbox() is None:
            return str(NO_MAILBOX)
        return None

    def open_session(self) -> "EmailSession":
        return EmailSession()

    def build_mail(self, delivery: Delivery, via: Mailbox | None = None) -> EmailMessage:
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
        except (smtplib.SMTPException, OSError, SecretUnreadable) as exc:
            return False, describe_failure(exc, mailbox).error
        _quit(connection)
        values = {"host": mailbox.smtp_host, "port": mailbox.smtp_port, "security": _security_name(mailbox)}
        if not _login_of(mailbox):
            return True, _("Connected to %(host)s:%(port)s (%(security)s). No login is set up.", **values)
        return True, _("Connected to %(host)s:%(port)s (%(security)s) and signed in as %(user)s.",
                       user=_login_of(mailbox), **values)


class EmailSession:
    """The SMTP connections of one dispatch pass: one per mailbox, opened on first use, reused for the rest.

    A mailbox that cannot be reached is tried once per pass: its later deliveries get the same failure at
    once instead of waiting for the same timeout again. A mailbox that works is marked healthy by its first
    mail of the pass (its last send time is that mail's: an UPDATE per mail would cost more than the rest of
    writing the result). The shop (for the signature) and its default mailbox are read once per pass too.
    """

    def __init__(self) -> None:
        self._connections: dict[int, smtplib.SMTP] = {}
        self._unreachable: dict[int, SendResult] = {}
        self._healthy: set[int] = set()  # mailboxes whose health this pass has recorded

    @functools.cached_property
    def _shop(self) -> Shop:
        return Shop.current()

    @functools.cached_property
    def _default_mailbox(self) -> Mailbox | None:
        return default_mailbox()

    def send(self, delivery: Delivery) -> SendResult:
        """Send one e-mail delivery; the mailbox's health is updated (flushed with the caller's transaction)."""
        with force_locale(self._shop.locale):  # errors are stored for the shop's people, in its language
            return self._send(delivery, self._shop)

    def _send(self, delivery: Delivery, shop: Shop) -> SendResult:
        home = home_mailbox(delivery, self._default_mailbox)
        if home is None:
            return SendResult(ok=False, error=str(NO_MAILBOX), error_code="no_mailbox")
        via = _standing_in_for(home, self._default_mailbox)
        if via.id in self._unreachable:
            return self._unreachable[via.id]
        try:
            mail = compose_mail(delivery, shop=shop, home=home, via=via)
        except ValueError as exc:
            return SendResult(ok=False, permanent=True, mailbox_id=via.id, error_code="invalid",
                              error=_("This mail cannot be built: %(reason)s", reason=str(exc)), error_raw=str(exc))

        provider_id = mail["Message-ID"].strip("<>")
        recipients = [delivery.recipient, *delivery.cc]
        try:
            refused = self._transmit(via, mail, recipients)
        except (smtplib.SMTPException, OSError, SecretUnreadable) as exc:
            failure = describe_failure(exc, via)
            result = SendResult(ok=False, error=failure.error, error_raw=failure.raw, error_code=failure.code,
                                permanent=failure.permanent, mailbox_id=via.id)
            if failure.mailbox_fault:
                record_failure(via, failure.error)
                self._unreachable[via.id] = result
                self._drop(via)
            return result
        if via.id not in self._healthy:
            record_sent(via)
            self._healthy.add(via.id)
        _remember_our_id(delivery, provider_id)
        if refused:  # some CC addresses were refused, the rest accepted the mail
            raw = "; ".join(f"{address}: {code} {_text(reply)}" for address, (code, reply) in refused.items())
            return SendResult(ok=True, provider_id=provider_id, mailbox_id=via.id, error_raw=raw,
                              error=_("Sent, but the mail server refused %(addresses)s.",
                                      addresses=", ".join(refused)))
        return SendResult(ok=True, provider_id=provider_id, mailbox_id=via.id)

    def _transmit(self, mailbox: Mailbox, mail: EmailMessage, recipients: list[str]) -> dict:
        """Send over the mailbox's connection; a reused connection the server has dropped is replaced once."""
        reused = mailbox.id in self._connections
        connection = self._connection(mailbox)
        try:
            return connection.send_message(mail, from_addr=mailbox.email, to_addrs=recipients)
        except smtplib.SMTPServerDisconnected:
            self._drop(mailbox)
            if not reused:
                raise
        return self._connection(mailbox).send_message(mail, from_addr=mailbox.email, to_addrs=recipients)

    def _connection(self, mailbox: Mailbox) -> smtplib.SMTP:
        if mailbox.id not in self._connections:
            self._connections[mailbox.id] = connect(mailbox)
        return self._connections[mailbox.id]

    def _drop(self, mailbox: Mailbox) -> None:
        connection = self._connections.pop(mailbox.id, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        """Say goodbye to every server; a server that went away meanwhile is no error."""
        for connection in self._connections.values():
            _quit(connection)
        self._connections.clear()


# --- building mail ------------------------------------------------------------------------------


def compose_mail(delivery: Delivery, *, shop: Shop, home: Mailbox, via: Mailbox) -> EmailMessage:
    """The mail for a delivery of `home` (the delivery's own mailbox), sent through `via`.

    Reply-To always names `home` with the thread token, also when another mailbox sends in its place.
    Refuses (ValueError) a subject or address with a line break, and an attachment whose file is missing.
    """
    if delivery.purpose != "message":  # a panel notice about the message, not the message itself
        from ..portal.notices import notice_mail
        return notice_mail(delivery, shop=shop, home=home, via=via)
    message: Message = delivery.message
    thread = message.thread
    subject = message.subject or thread.subject or shop.name
    sender_name, reply_name = via.display_name or shop.name, home.display_name or shop.name
    for value in (subject, sender_name, reply_name, delivery.recipient, *delivery.cc):
        if "\r" in value or "\n" in value:
            raise ValueError(f"line break in a header value: {value!r}")

    mail = EmailMessage(policy=MAIL_POLICY)
    mail["From"] = _shared_header("From", sender_name, via.email)
    mail["To"] = delivery.recipient
    if delivery.cc:
        mail["Cc"] = ", ".join(delivery.cc)
    mail["Reply-To"] = Address(reply_name, addr_spec=reply_address(home.email, thread.token))
    mail["Subject"] = subject
    mail["Date"] = format_datetime(utcnow())
    mail["Message-ID"] = make_message_id(thread.id, message.id, via.email.rpartition("@")[2])
    earlier = _earlier_refs(message)
    if earlier:
        refs = [ref for ref, _message_id in earlier]
        mail["In-Reply-To"] = f"<{refs[-1]}>"
        if len(refs) > MAX_REFERENCES:
            refs = [refs[0], *refs[-(MAX_REFERENCES - 1):]]  # the root lets clients find the thread
        mail["References"] = " ".join(f"<{ref}>" for ref in refs)
    replies = len({message_id for _ref, message_id in earlier})
    mail["Thread-Index"] = thread_index(thread.token, thread.created_at, replies)
    mail["Thread-Topic"] = thread_topic(subject)
    if message.automatic:
        mail["Auto-Submitted"] = _shared_header("Auto-Submitted", "auto-generated")
        mail["X-Auto-Response-Suppress"] = _shared_header("X-Auto-Response-Suppress", "OOF, AutoReply")
    mail[INSTANCE_HEADER] = _shared_header(INSTANCE_HEADER, instance_id())

    with force_locale(shop.locale):
        text = render_template("emails/message.txt", body=plain_text(message), shop=shop)
        html = render_template("emails/message.html", body=html_body(message), shop=shop, subject=subject)
    # Quoted-printable keeps both parts 7-bit, for servers that do not take 8BITMIME.
    mail.set_content(text, cte="quoted-printable")
    mail.add_alternative(html, subtype="html", cte="quoted-printable")
    for attachment in message.attachments:
        if not attachment.sha256:
            continue  # listed only (too big, skipped): nothing to send
        try:
            data = attachment_path(attachment.sha256).read_bytes()
        except FileNotFoundError:
            raise ValueError(f"attachment file missing: {attachment.filename}") from None
        maintype, _slash, subtype = (attachment.content_type or "").partition("/")
        if not maintype or not subtype:
            maintype, subtype = "application", "octet-stream"
        # Non-ASCII names (Polish letters) are written as RFC 2231 parameters by the policy.
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return mail


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
        if _login_of(mailbox):
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


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _quit(connection: smtplib.SMTP) -> None:
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


def describe_failure(exc: BaseException, mailbox: Mailbox) -> Failure:
    """What went wrong talking to the mailbox's server, in the shop's words; 5xx refusals are permanent."""
    where = {"host": mailbox.smtp_host, "port": mailbox.smtp_port}
    raw = _raw(exc)
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
_REF_KNOWN = select(_refs.c.id).where(_refs.c.ref == bindparam("ref"))
_ADD_REF = insert(_refs)


def _earlier_refs(message: Message) -> list[tuple[str, int]]:
    """Every id the thread's other messages are known by, (ref, message id), in the order they were seen."""
    return list(db.session.execute(_EARLIER_REFS, {"thread_id": message.thread_id, "message_id": message.id})
                .tuples())


def _remember_our_id(delivery: Delivery, ref: str) -> None:
    """Keep the Message-ID we sent, so the thread's next mail can refer to it (a resend reuses the same id)."""
    if delivery.purpose == "shop_notice":
        return  # the shop's own copy: a reply to it must not land in the customer's thread
    if db.session.execute(_REF_KNOWN, {"ref": ref}).first() is None:
        db.session.execute(_ADD_REF, {"ref": ref, "message_id": delivery.message_id,
                                      "thread_id": delivery.message.thread_id, "kind": "ours"})
