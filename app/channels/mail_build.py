"""Building a thread's mail: text and HTML with the shop's signature, the subject with its reference, the files,
and the threading ids (References, In-Reply-To) from the ids the thread's mail is known by."""
from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import format_datetime

from flask import current_app
from flask_babel import force_locale
from markupsafe import escape
from sqlalchemy import Integer, String, bindparam, exists, insert, literal, select

from ..attachments import read_stored
from ..extensions import db
from ..formatting import html_body, plain_text
from ..mail_ids import (
    INSTANCE_HEADER, instance_id, make_message_id, reply_address, thread_index, thread_topic,
)
from ..models import Delivery, Mailbox, Message, MessageRef, Shop, Thread, utcnow
from . import mime
from .base import notice_content

MAX_REFERENCES = 20  # enough for every client to thread; long chains make headers some servers refuse


@dataclass(frozen=True)
class OutgoingMail:
    """A mail ready for the wire: its bytes and its envelope."""

    data: bytes
    message_id: str  # without angle brackets
    sender: str
    recipients: list[str]
    international: bool  # an address has non-ASCII letters: the server must offer SMTPUTF8



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
            data = read_stored(attachment.sha256)
        except FileNotFoundError:
            raise ValueError(f"attachment file missing: {attachment.filename}") from None
        files.append(mime.File(attachment.filename, attachment.content_type or "", data))
    return files


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


def remember_our_id(delivery: Delivery, ref: str) -> None:
    """Keep the Message-ID we sent, so the thread's next mail can refer to it (a resend reuses the same id)."""
    if delivery.purpose == "shop_notice":
        return  # the shop's own copy: a reply to it must not land in the customer's thread
    db.session.execute(_ADD_REF_ONCE, {"ref": ref, "message_id": delivery.message_id,
                                       "thread_id": delivery.message.thread_id})
