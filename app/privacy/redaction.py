"""Staff mark part of a message as sensitive (a device passcode, an ID number): it is replaced everywhere it is kept."""
from __future__ import annotations

import html

from flask_babel import gettext as _
from sqlalchemy import select

from ..errors import ValidationFailed
from ..extensions import db
from ..inbound.masking import REDACTED, rewrite_raw_mail, sensitive_pattern
from ..inbound.parse import compress, decompress
from ..inbound.sms import compressed, held_text
from ..models import InboundItem, Message, User, utcnow
from ..models.audit import record

MAX_SELECTION = 2000  # a selection longer than this is a slip of the mouse, not a passcode


def redact_message(message: Message, selected: str, actor: User) -> Message:
    """Replace `selected` with "[redacted]" in the message's subject, text, quoted text, HTML and own SMS and
    panel texts, in the raw copy of the mail or SMS it came from and in its thread's preview; the message is marked
    redacted, the thread gets an event saying who did it, and the audit entry names the message, never the text.
    Flushed, the caller commits. Refuses (ValidationFailed on "text") an empty or overlong selection and text the
    message does not contain."""
    selected = (selected or "").strip()
    if len(selected) > MAX_SELECTION:
        raise ValidationFailed({"text": _("Select at most %(max)s characters.", max=MAX_SELECTION)})
    plain, escaped = sensitive_pattern(selected), sensitive_pattern(html.escape(selected, quote=False))
    if plain is None:
        raise ValidationFailed({"text": _("Select the text to redact first.")})

    def change(text: str) -> str:
        text = plain.sub(REDACTED, text)
        return escaped.sub(REDACTED, text)

    texts = (message.meta or {}).get("texts") or {}  # its own SMS and panel texts (a template's)
    before = (message.subject, message.body_text, message.quoted_text, message.body_html, texts)
    message.subject = change(message.subject)
    message.body_text = change(message.body_text)
    message.quoted_text = change(message.quoted_text)
    if message.body_html is not None:
        message.body_html = change(message.body_html)
    if texts:
        message.meta = {**message.meta, "texts": {channel: change(text) for channel, text in texts.items()}}
    contact_name = (message.meta or {}).get("contact_name")  # a company's contact person who wrote it
    if contact_name:
        message.meta = {**message.meta, "contact_name": change(contact_name)}
    if (message.subject, message.body_text, message.quoted_text, message.body_html,
            (message.meta or {}).get("texts") or {}) == before and (message.meta or {}).get("contact_name") == \
            contact_name:
        raise ValidationFailed({"text": _("This text is not in the message (it may be redacted already).")})

    for item in db.session.scalars(select(InboundItem).where(InboundItem.message_id == message.id)):
        redact_raw_copy(item, change)
    thread = message.thread
    thread.last_message_preview = change(thread.last_message_preview)
    now = utcnow()
    message.redacted_at = now
    db.session.add(Message(thread_id=thread.id, kind="event", direction="internal", visible_to_customer=False,
                           author_user_id=actor.id, body_text=_("%(name)s redacted part of a message.", name=actor.name),
                           meta={"event": "message_redacted", "message_id": message.id}, created_at=now))
    record("message.redact", by=actor, target=message, thread_id=thread.id)
    db.session.flush()
    return message


def redact_raw_copy(item: InboundItem, change) -> None:
    """Apply `change` (text → text) to an inbound item's kept raw mail or SMS and to its subject."""
    item.subject = change(item.subject)
    if not item.raw:
        return
    if item.source == "sms":
        item.raw = compressed(change(held_text(item)))
    else:
        item.raw = compress(rewrite_raw_mail(decompress(item.raw), change))
