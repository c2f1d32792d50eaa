"""What a customer does in the panel: reply in a thread, start one about a repair, read what the shop sent."""
from __future__ import annotations

from collections.abc import Sequence

from flask_babel import gettext as _
from sqlalchemy import update

from ..attachments import StoredFile, max_bytes
from ..customers import refuse_erased
from ..errors import ValidationFailed
from ..extensions import db
from ..fields import clean_text
from ..inbound.masking import mask_card_numbers
from ..inbound.rules import Incoming, apply_rules
from ..messaging.compose import MAX_BODY_CHARS
from ..messaging.threads import context_thread, default_subject, open_thread
from ..models import Attachment, Customer, Message, Repair, Shop, Thread, preview_of, utcnow
from ..models.audit import record
from .notices import queue_shop_notice


def panel_file_limit(shop: Shop) -> int:
    """The largest file, in bytes, a customer may send in the panel: the shop's setting, within the upload limit."""
    return min(shop.panel_attachment_max_mb * 1024 * 1024, max_bytes())


def _clean_body(body: str, attachments: Sequence[StoredFile]) -> str:
    body = clean_text(body, "body", MAX_BODY_CHARS)
    if not body and not attachments:
        raise ValidationFailed({"body": _("Write a message.")})
    check_files(attachments)
    return mask_card_numbers(body)  # card numbers are never stored


def check_files(attachments: Sequence[StoredFile]) -> None:
    """The panel's rules for a customer's files (the panel and the public request form): refuses files when the
    shop takes none, and any over the shop's largest file. Type and content were checked as they were stored."""
    shop = Shop.current()
    if attachments and not shop.panel_allows_attachments:
        raise ValidationFailed({"attachments": _("The shop does not accept files in the panel.")})
    limit = panel_file_limit(shop)
    for file in attachments:
        if file.size > limit:
            raise ValidationFailed({"attachments": _("%(name)s is larger than %(limit)d MB.", name=file.filename,
                                                     limit=limit // (1024 * 1024))})


def customer_reply(thread: Thread, customer: Customer, body: str,
                   attachments: Sequence[StoredFile] = ()) -> Message:
    """Store what the customer wrote in the panel as an inbound message of `thread` (one of theirs, loaded through
    the panel's loader): the thread becomes unread for staff and is reopened, and the shop's notification address
    is told. Refuses (ValidationFailed) an empty or too long text and files when the shop does not take them."""
    refuse_erased(customer, "body")
    body = _clean_body(body, attachments)
    now = utcnow()
    message = Message(
        thread_id=thread.id, kind="message", direction="in", channel="portal", author_customer_id=customer.id,
        sender=customer.email or customer.phone or "", subject=thread.subject, body_text=body, body_format="text",
        visible_to_customer=True, created_at=now,
        attachments=[Attachment(filename=f.filename, content_type=f.content_type, size=f.size, sha256=f.sha256)
                     for f in attachments],
    )
    db.session.add(message)
    db.session.flush()
    thread.last_message_preview = preview_of(body, ", ".join(a.filename for a in message.attachments))
    thread.last_activity_at = thread.last_inbound_at = now
    thread.unread = True
    thread.status = "waiting_us"
    thread.closed_at = None
    apply_rules(thread, Incoming("portal", message.sender, thread.subject, body), now)
    queue_shop_notice(message)
    record("panel.reply", by=f"customer:{customer.id}", target=message, thread_id=thread.id)
    db.session.flush()
    return message


def customer_new_thread(customer: Customer, repair: Repair, body: str,
                        attachments: Sequence[StoredFile] = ()) -> Message:
    """Start a conversation about one of the customer's repairs (loaded through the panel's loader) and store the
    first message as customer_reply does; the repair's existing thread is reused when there is one the customer
    may see (never one staff marked private)."""
    _clean_body(body, attachments)
    thread = context_thread(customer, repair)
    if thread is None or thread.private:
        thread = open_thread(customer, subject=default_subject(repair, None), repair=repair, source_channel="portal")
    return customer_reply(thread, customer, body, attachments)


def mark_read(thread: Thread, messages: Sequence[Message]) -> int:
    """Mark the shop's messages among `messages` (what the customer was shown of `thread`) as read by the customer;
    returns how many were unread."""
    ids = [m.id for m in messages if m.direction == "out" and m.read_by_customer_at is None]
    if not ids:
        return 0
    now = utcnow()
    db.session.execute(update(Message).where(Message.thread_id == thread.id, Message.id.in_(ids),
                                             Message.read_by_customer_at.is_(None))
                       .values(read_by_customer_at=now), execution_options={"synchronize_session": False})
    for message in messages:
        if message.id in ids:
            message.read_by_customer_at = now
    return len(ids)
