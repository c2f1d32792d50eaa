"""System events of the thread tools (merged, split) in a thread's timeline: stored as structured meta, told
in words when shown, so each reader sees them in their own language."""
from __future__ import annotations

from datetime import datetime

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import ngettext

from ..extensions import db
from ..i18n import quoted
from ..models import Message, Shop, Thread, User

TOOL_EVENTS = ("merged_into", "merged_from", "split_to", "split_from")


def add_event(thread: Thread, actor: User | str | None, event: str, now: datetime, **meta) -> Message:
    """An internal event of `thread` (never shown to the customer); its body keeps the words in the shop's
    language for search and previews, the timeline tells it again from `meta`."""
    message = Message(thread_id=thread.id, kind="event", direction="internal", visible_to_customer=False,
                      author_user_id=actor.id if isinstance(actor, User) else None,
                      meta={"event": event, **meta}, created_at=now)
    with force_locale(Shop.current().locale):
        message.body_text = event_text(message)
    db.session.add(message)
    return message


def event_text(message: Message) -> str:
    """What the event says, in the current language, the other thread named by its label."""
    meta = message.meta or {}
    label = quoted(meta.get("label", ""))
    event = meta.get("event")
    if event == "merged_into":
        return _("This thread was merged into %(thread)s.", thread=label)
    if event == "merged_from":
        return ngettext("%(thread)s was merged into this thread (%(num)d message).",
                        "%(thread)s was merged into this thread (%(num)d messages).", meta.get("count", 0), thread=label)
    if event == "split_to":
        return _("A message was split out into the new thread %(thread)s.", thread=label)
    if event == "split_from":
        return _("Split out of %(thread)s.", thread=label)
    return message.body_text
