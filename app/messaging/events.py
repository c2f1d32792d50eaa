"""System events of the thread tools (merged, split) and of the rules for incoming mail in a thread's timeline:
stored as structured meta, told in words when shown, so each reader sees them in their own language."""
from __future__ import annotations

from datetime import datetime

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import ngettext

from ..extensions import db
from ..i18n import quoted
from ..labels import PRIORITY_LABELS
from ..models import Message, Shop, Thread, User

TOOL_EVENTS = ("merged_into", "merged_from", "split_to", "split_from")
# What a rule for incoming mail did (app/inbound/rules.py); the queue, person and tag by name, as they were then.
RULE_EVENTS = ("rule_queue", "rule_assignee", "rule_priority", "rule_tag")
WORDED_EVENTS = TOOL_EVENTS + RULE_EVENTS  # the events event_text words


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
    rule = quoted(meta.get("rule", ""))
    if event == "rule_queue":
        return _("The rule %(rule)s set the queue %(queue)s.", rule=rule, queue=meta.get("queue", ""))
    if event == "rule_assignee":
        return _("The rule %(rule)s assigned the thread to %(name)s.", rule=rule, name=meta.get("name", ""))
    if event == "rule_priority":
        priority = meta.get("priority", "")
        return _("The rule %(rule)s set the priority %(priority)s.", rule=rule,
                 priority=PRIORITY_LABELS.get(priority, priority))
    if event == "rule_tag":
        return _("The rule %(rule)s added the tag %(tag)s.", rule=rule, tag=meta.get("tag", ""))
    return message.body_text
