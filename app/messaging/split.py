"""Splitting one message out of a thread into a new thread of its own (a new question asked in an old thread)."""
from __future__ import annotations

from flask_babel import gettext as _

from ..customers import refuse_erased
from ..errors import ValidationFailed
from ..extensions import db
from ..fields import clean_line
from ..models import Attachment, Message, Thread, User, preview_of, utcnow
from ..models.audit import record
from .compose import SUBJECT_MAX
from .events import add_event
from .threads import thread_label

# What a copy of a message keeps of the original: everything it says and how it came, not where it went.
_COPIED = ("kind", "direction", "channel", "author_user_id", "author_customer_id", "sender", "recipients", "subject",
           "body_text", "body_html", "quoted_text", "body_format", "visible_to_customer", "automatic", "created_at")
_COPIED_FILE = ("filename", "content_type", "size", "sha256", "content_id", "inline", "skipped_reason")


def split_message(message: Message, actor: User | str | None, subject: str = "") -> Thread:
    """A new thread (same customer, repair or ticket, queue, priority and category) holding a copy of `message`
    with its files (new rows naming the same stored content: no file is copied); returns it. Flushed, the caller
    commits. The original stays where it was; both threads get an event naming the other.
    Refuses (ValidationFailed on "message_id") notes, events and redacted messages.
    """
    refuse_erased(message.thread.customer, "message_id")
    if message.kind != "message" or message.redacted_at is not None:
        raise ValidationFailed({"message_id": _("Only a message (not a note or an event) can be split out.")})
    old = message.thread
    now = utcnow()
    subject = (clean_line(subject, "subject", SUBJECT_MAX)
               or " ".join((message.subject or old.subject).split())[:SUBJECT_MAX])
    thread = Thread(customer_id=old.customer_id, repair_id=old.repair_id, ticket_id=old.ticket_id, subject=subject,
                    priority=old.priority, queue_id=old.queue_id, category=old.category, private=old.private,
                    source_channel=message.channel or old.source_channel, created_by_id=getattr(actor, "id", None),
                    last_activity_at=now, last_message_preview=preview_of(message.body_text))
    if message.direction == "in":
        thread.status, thread.last_inbound_at = "waiting_us", message.created_at
    else:
        thread.status = "waiting_customer"
    db.session.add(thread)
    db.session.flush()

    copy = Message(thread_id=thread.id, meta={**(message.meta or {}), "split_from": message.id},
                   **{name: getattr(message, name) for name in _COPIED})
    copy.attachments = [Attachment(**{name: getattr(a, name) for name in _COPIED_FILE}) for a in message.attachments]
    db.session.add(copy)
    add_event(old, actor, "split_to", now, thread_id=thread.id, label=thread_label(thread), message_id=message.id)
    add_event(thread, actor, "split_from", now, thread_id=old.id, label=thread_label(old), message_id=message.id)
    record("thread.split", by=actor, target=thread, from_thread=old.id, message_id=message.id)
    db.session.flush()
    return thread
