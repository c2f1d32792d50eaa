"""Forwarding a thread's conversation by e-mail to someone who is not its customer (a supplier, a colleague);
their answers come back into the thread through the Reply-To token and References the mail carries."""
from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from ..channels.email import NO_MAILBOX
from ..errors import ValidationFailed
from ..extensions import db
from ..fields import clean_text, gather
from ..i18n import shown_datetime
from ..accounts.mailboxes import default_mailbox
from ..models import Attachment, Delivery, InboundItem, Message, Shop, Thread, User, utcnow
from ..models.audit import record
from .compose import MAX_BODY_CHARS
from ..formatting import sender_name

MAX_FORWARD_FILES_BYTES = 20 * 1024 * 1024  # what most mail servers take in one mail, with room for the text


def forwardable(thread: Thread, include_notes: bool) -> list[Message]:
    """The messages a forward of `thread` carries, oldest first: messages in and out (and notes when asked), but
    no events, redacted messages or earlier forwards (their text is already the conversation)."""
    kinds = ("message", "note") if include_notes else ("message",)
    return [m for m in thread.messages
            if m.kind in kinds and m.redacted_at is None and "forward" not in (m.meta or {})]


def forward_thread(thread: Thread, *, to: str, actor: User | None, note: str = "", include_notes: bool = False
                   ) -> Message:
    """Queue the conversation of `thread` as one e-mail to `to`, after the covering `note`; returns the message
    standing for it in the thread (never shown to the customer). Flushed, the caller commits.

    The mail goes through the outbox from the mailbox the thread last used (else the shop's default) and carries
    the thread's Reply-To token and References, so an answer lands in this thread; the files of the forwarded
    messages go along while they fit in one mail (the rest are named in the text).
    Refuses (ValidationFailed) a bad address, a note that is too long, a thread with nothing to forward and a
    shop without a mailbox.
    """
    errors = {}
    try:
        to = validate_email((to or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        errors["to"] = _("Enter a valid e-mail address: %(reason)s", reason=str(exc))
    note = gather(errors, clean_text, note, "note", MAX_BODY_CHARS)
    messages = forwardable(thread, include_notes)
    if not messages:
        errors["to"] = _("This thread has no messages to forward.")
    if default_mailbox() is None:
        errors["to"] = str(NO_MAILBOX)
    if errors:
        raise ValidationFailed(errors)

    now = utcnow()
    shop = Shop.current()
    with force_locale(shop.locale):  # the recipient reads the shop's language, whoever forwards
        subject = _("Fwd: %(subject)s", subject=thread.subject or shop.name)
        body = _transcript(messages, note)
    message = Message(
        thread_id=thread.id, kind="message", direction="out", author_user_id=getattr(actor, "id", None),
        subject=subject, body_text=body, body_format="text", visible_to_customer=False, created_at=now,
        meta={"forward": {"to": to, "note": note, "notes": include_notes, "messages": [m.id for m in messages]}},
        attachments=_files_of(messages),
    )
    db.session.add(message)
    db.session.flush()
    db.session.add(Delivery(message_id=message.id, channel="email", status="queued", recipient=to,
                            mailbox_id=thread_mailbox_id(thread), next_attempt_at=now, created_at=now))
    thread.last_activity_at = now
    record("thread.forward", by=actor, target=thread, to=to, messages=len(messages), notes=include_notes)
    db.session.flush()
    return message


def thread_mailbox_id(thread: Thread) -> int | None:
    """The mailbox the thread's mail last went out from or came in to; None (the shop's default) for a thread
    that never used e-mail."""
    sent = db.session.scalar(
        select(Delivery.mailbox_id).join(Message, Message.id == Delivery.message_id)
        .where(Message.thread_id == thread.id, Delivery.channel == "email", Delivery.mailbox_id.is_not(None))
        .order_by(Delivery.id.desc()).limit(1))
    if sent is not None:
        return sent
    return db.session.scalar(
        select(InboundItem.mailbox_id).join(Message, Message.id == InboundItem.message_id)
        .where(Message.thread_id == thread.id, InboundItem.mailbox_id.is_not(None))
        .order_by(InboundItem.id.desc()).limit(1))


def _transcript(messages: list[Message], note: str) -> str:
    """The covering note, then each message with who wrote it, when, and its files, as plain text."""
    parts = [note, _("---------- Forwarded conversation ----------")] if note else \
        [_("---------- Forwarded conversation ----------")]
    for m in messages:
        who = sender_name(m) if m.direction == "in" else (m.author.name if m.author else _("Automatic"))
        heading = _("Internal note by %(who)s", who=who) if m.kind == "note" else _("From: %(who)s", who=who)
        lines = [heading, _("Date: %(when)s", when=shown_datetime(m.created_at))]
        if m.subject:
            lines.append(_("Subject: %(subject)s", subject=m.subject))
        lines += ["", m.body_text.strip()]
        if m.attachments:
            lines += ["", _("Attachments: %(files)s", files=", ".join(
                f"{a.filename} ({_size(a.size)})" for a in m.attachments))]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _size(size: int) -> str:
    return f"{max(size, 0) / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{max(size, 0) // 1024 or 1} kB"


def _files_of(messages: list[Message]) -> list[Attachment]:
    """Copies of the messages' stored files (naming the same content) while they fit in one mail."""
    files, total = [], 0
    for a in (a for m in messages for a in m.attachments if a.sha256):
        if total + a.size > MAX_FORWARD_FILES_BYTES:
            continue
        total += a.size
        files.append(Attachment(filename=a.filename, content_type=a.content_type, size=a.size, sha256=a.sha256))
    return files
