"""Rules for incoming mail: the owner's ordered list of "when a message like this arrives, do this to its thread".

Every new inbound message that lands in a thread (a received e-mail, an incoming SMS, a customer's message in the
panel) goes through `apply_rules`; outbound mail, notes and events never do. Each change a rule makes is written
into the thread's timeline as an event worded when shown (app/messaging/events.py). A rule whose queue, person or
tag was deleted meanwhile skips that action and does the rest.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..errors import ValidationFailed
from ..extensions import db
from ..fields import clean_line, clean_text, gather
from ..messaging.events import add_event
from ..messaging.thread_actions import tag_name, tag_named
from ..models import InboundItem, Mailbox, MailRule, Message, Queue, Tag, Thread, User
from ..models.audit import apply_changes, record
from ..models.conversations import CHANNELS
from ..models.repairs import PRIORITIES
from ..request_input import whole_number
from ..search import fold
from ..transaction_cache import per_transaction
from .trusted import clean_domain

NAME_MAX = 80
WORDS_MAX = 1000
TAGS_MAX = 10
DIRECTIONS = ("up", "down")
RECENT_MESSAGES = 30  # the tester's list of received messages to try the rules on
_WORD_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class Incoming:
    """What the rules look at in a new inbound message."""

    channel: str  # email | sms | portal
    sender: str  # an address or a phone number
    subject: str = ""
    text: str = ""
    mailbox_id: int | None = None  # the mailbox an e-mail came into


@dataclass
class Action:
    """One thing a rule does, with the names it sets (for the tester and the timeline)."""

    kind: str  # queue | assignee | priority | tag
    value: str  # the queue's, person's or tag's name, or the priority code
    target_id: int | None = None


@dataclass
class Verdict:
    """What one matching rule would do to a message (the tester's answer)."""

    rule: MailRule
    actions: list[Action] = field(default_factory=list)


# --- the list of rules ---------------------------------------------------------------------------------------


def rules() -> list[MailRule]:
    """Every rule in the order they are applied."""
    return list(db.session.scalars(select(MailRule).order_by(MailRule.position, MailRule.id)))


def _enabled_rules() -> list[MailRule]:
    # Read once per transaction: a poll batch routes hundreds of mails in one.
    return per_transaction(db.session, MailRule, lambda: [rule for rule in rules() if rule.enabled])


def _id_of(raw) -> int | None:
    """An id as typed or chosen (text or a number), or None when it can name no row."""
    try:
        value = whole_number(str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw)
    except ValueError:
        return None
    return value or None


def _known_id(raw, field_name: str, model, errors: dict, message) -> int | None:
    """An optional id chosen in a list: None when empty, else one of a row that exists (the error otherwise)."""
    if raw in (None, ""):
        return None
    row = db.session.get(model, value) if (value := _id_of(raw)) is not None else None
    if row is None or (model is User and not row.active):
        errors[field_name] = str(message)
        return None
    return row.id


def _tag_ids(raw, errors: dict) -> list[int]:
    """The tags typed as a comma-separated list, each made if new; their ids."""
    if isinstance(raw, (list, tuple)):
        raw = ",".join(str(item) for item in raw)
    text = gather(errors, clean_line, raw or "", "tags", TAGS_MAX * 61)
    names = []
    for part in text.split(","):
        if not part.strip():
            continue
        name = gather(errors, lambda value: tag_name(value), part)
        if "tag" in errors:
            errors["tags"] = errors.pop("tag")
            return []
        if name not in names:
            names.append(name)
    if len(names) > TAGS_MAX:
        errors["tags"] = _("At most %(max)s tags.", max=TAGS_MAX)
        return []
    return [tag_named(name).id for name in names] if not errors else []


def rule_values(*, name, channel="", mailbox_id=None, words="", sender_domain="", queue_id=None, assignee_id=None,
                priority="", tags="", stop=False) -> dict:
    """A rule's fields checked and normalised; refuses (ValidationFailed, every problem at once) a missing name,
    an unknown channel, mailbox, queue, person (or a switched-off account) or priority, a bad domain, a mailbox
    with another channel than e-mail, and a rule that does nothing."""
    errors: dict[str, str] = {}
    values = {"name": gather(errors, clean_line, name, "name", NAME_MAX, _l("Name the rule."))}
    channel = channel or ""
    if channel not in ("", *CHANNELS):
        errors["channel"] = _("Choose a channel.")
    values["channel"] = channel if channel in CHANNELS else ""
    values["mailbox_id"] = _known_id(mailbox_id, "mailbox_id", Mailbox, errors, _l("Choose a mailbox."))
    if values["mailbox_id"] is not None and values["channel"] not in ("", "email"):
        errors["mailbox_id"] = _("A mailbox receives e-mail only: choose the e-mail channel or no mailbox.")
    if values["mailbox_id"] is not None:
        values["channel"] = "email"
    words = gather(errors, clean_text, words, "words", WORDS_MAX)
    values["words"] = ", ".join(word for word in _WORD_SPLIT.split(words) if word)
    domain = ""
    if (sender_domain or "").strip():
        try:
            domain = clean_domain(sender_domain)
        except ValidationFailed as exc:
            errors["sender_domain"] = exc.fields["domain"]
    values["sender_domain"] = domain
    values["queue_id"] = _known_id(queue_id, "queue_id", Queue, errors, _l("Choose a queue."))
    values["assignee_id"] = _known_id(assignee_id, "assignee_id", User, errors, _l("Choose an active account."))
    priority = priority or ""
    if priority not in ("", *PRIORITIES):
        errors["priority"] = _("Choose a priority.")
    values["priority"] = priority if priority in PRIORITIES else ""
    values["stop"] = bool(stop) and stop not in ("0", "false", "n")
    if not errors:
        values["tag_ids"] = _tag_ids(tags, errors)
    if not errors and not (values["queue_id"] or values["assignee_id"] or values["priority"] or values["tag_ids"]):
        errors["queue_id"] = _("Choose at least one thing for the rule to do.")
    if errors:
        raise ValidationFailed(errors)
    return values


def create_rule(*, actor: User, **fields) -> MailRule:
    """A new rule, last in the list and switched on (see rule_values for what is refused)."""
    values = rule_values(**fields)
    last = max((rule.position for rule in rules()), default=-1)
    rule = MailRule(position=last + 1, enabled=True, **values)
    db.session.add(rule)
    db.session.flush()
    record("mail_rule.create", by=actor, target=rule, name=rule.name)
    return rule


def update_rule(rule: MailRule, *, actor: User, **fields) -> list[str]:
    """Change a rule's fields (see rule_values); returns the fields changed."""
    changed = apply_changes(rule, rule_values(**fields), "mail_rule.update", by=actor, name=rule.name)
    db.session.flush()
    return changed


def move_rule(rule: MailRule, direction: str, *, actor: User) -> bool:
    """Swap the rule with its neighbour above or below; False at either end."""
    if direction not in DIRECTIONS:
        raise ValidationFailed({"direction": _("Choose one of: %(values)s.", values=", ".join(DIRECTIONS))})
    ordered = rules()
    index = ordered.index(rule)
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(ordered):
        return False
    ordered[index], ordered[other] = ordered[other], ordered[index]
    for position, row in enumerate(ordered):  # renumbered: positions may repeat or have gaps
        row.position = position
    record("mail_rule.move", by=actor, target=rule, name=rule.name, direction=direction)
    db.session.flush()
    return True


def switch_rule(rule: MailRule, enabled: bool, *, actor: User) -> None:
    """Switch the rule on or off; a rule switched off is kept but never applied."""
    apply_changes(rule, {"enabled": enabled}, "mail_rule.enable" if enabled else "mail_rule.disable", by=actor,
                  name=rule.name)
    db.session.flush()


def delete_rule(rule: MailRule, *, actor: User) -> None:
    record("mail_rule.delete", by=actor, target=rule, name=rule.name)
    db.session.delete(rule)
    db.session.flush()


def rule_tags(rule: MailRule) -> list[Tag]:
    """The rule's tags that still exist, in its order."""
    ids = [tag_id for tag_id in rule.tag_ids or [] if isinstance(tag_id, int)]
    found = {tag.id: tag for tag in db.session.scalars(select(Tag).where(Tag.id.in_(ids)))} if ids else {}
    return [found[tag_id] for tag_id in ids if tag_id in found]


# --- matching and applying -------------------------------------------------------------------------------------


def rule_words(rule: MailRule) -> list[str]:
    """The rule's words folded as the search folds them ("Łódź" → "lodz")."""
    return [word for word in _WORD_SPLIT.split(fold(rule.words or "")) if word]


def matches(rule: MailRule, incoming: Incoming) -> bool:
    """Whether every condition of the rule holds for the message (an empty condition always does)."""
    if rule.channel and incoming.channel != rule.channel:
        return False
    if rule.mailbox_id is not None and incoming.mailbox_id != rule.mailbox_id:
        return False
    if rule.sender_domain:
        domain = incoming.sender.rpartition("@")[2].lower().rstrip(".") if "@" in incoming.sender else ""
        if not (domain == rule.sender_domain or domain.endswith("." + rule.sender_domain)):
            return False
    words = rule_words(rule)
    if words:
        text = fold(f"{incoming.subject}\n{incoming.text}")
        if not any(word in text for word in words):
            return False
    return True


def planned_actions(rule: MailRule) -> list[Action]:
    """What the rule does, as far as its queue, person and tags still exist (the missing ones are skipped)."""
    actions = []
    queue = db.session.get(Queue, rule.queue_id) if rule.queue_id is not None else None
    if queue is not None:
        actions.append(Action("queue", queue.name, queue.id))
    person = db.session.get(User, rule.assignee_id) if rule.assignee_id is not None else None
    if person is not None and person.active:
        actions.append(Action("assignee", person.name, person.id))
    if rule.priority in PRIORITIES:
        actions.append(Action("priority", rule.priority))
    actions += [Action("tag", tag.name, tag.id) for tag in rule_tags(rule)]
    return actions


def matching_rules(incoming: Incoming, candidates: list[MailRule]) -> list[MailRule]:
    """The rules that apply to the message, in order, up to the first matching one that says "stop here"."""
    matched = []
    for rule in candidates:
        if matches(rule, incoming):
            matched.append(rule)
            if rule.stop:
                break
    return matched


def apply_rules(thread: Thread, incoming: Incoming, now: datetime) -> list[Message]:
    """Apply the enabled rules to a new inbound message of `thread`; returns the timeline events written (one
    per change; an action that changes nothing writes none). Adds to the session, never commits."""
    candidates = _enabled_rules()
    if not candidates:
        return []
    # Just after the message: a received mail's row may be written at the end of its batch, after the events.
    at = now + timedelta(microseconds=1)
    events = []
    for rule in matching_rules(incoming, candidates):
        for action in planned_actions(rule):
            event = _apply(thread, rule, action, at)
            if event is not None:
                events.append(event)
    return events


def _apply(thread: Thread, rule: MailRule, action: Action, at: datetime) -> Message | None:
    if action.kind == "queue":
        if thread.queue_id == action.target_id:
            return None
        thread.queue_id = action.target_id
        return add_event(thread, None, "rule_queue", at, rule=rule.name, queue=action.value)
    if action.kind == "assignee":
        if thread.assignee_id == action.target_id:
            return None
        thread.assignee_id = action.target_id
        return add_event(thread, None, "rule_assignee", at, rule=rule.name, name=action.value)
    if action.kind == "priority":
        if thread.priority == action.value:
            return None
        thread.priority = action.value
        return add_event(thread, None, "rule_priority", at, rule=rule.name, priority=action.value)
    tag = db.session.get(Tag, action.target_id)
    if tag is None or tag in thread.tags:
        return None
    thread.tags.append(tag)
    return add_event(thread, None, "rule_tag", at, rule=rule.name, tag=tag.name)


# --- trying the rules on a past message --------------------------------------------------------------------------


def incoming_of(message: Message) -> Incoming:
    """A stored inbound message as the rules see it (an e-mail with the mailbox it came into)."""
    mailbox_id = None
    if message.channel == "email":
        mailbox_id = db.session.scalar(select(InboundItem.mailbox_id).where(InboundItem.message_id == message.id)
                                       .order_by(InboundItem.id).limit(1))
    return Incoming(channel=message.channel or "", sender=message.sender or "", subject=message.subject or "",
                    text=message.body_text or "", mailbox_id=mailbox_id)


def received_message(raw_id) -> Message | None:
    """A received message (a person's, in any channel) by its id as typed; None for anything else."""
    message_id = _id_of(raw_id.strip() if isinstance(raw_id, str) else raw_id)
    message = db.session.get(Message, message_id) if message_id is not None else None
    if message is None or message.direction != "in" or message.kind != "message":
        return None
    return message


def recent_received(limit: int = RECENT_MESSAGES) -> list[Message]:
    """The latest received messages, newest first, for the tester's list."""
    return list(db.session.scalars(
        select(Message).where(Message.direction == "in", Message.kind == "message", Message.channel.in_(CHANNELS))
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)))


def try_rules(message: Message) -> list[Verdict]:
    """Which enabled rules would apply to `message` and what each would do, changing nothing."""
    incoming = incoming_of(message)
    return [Verdict(rule, planned_actions(rule)) for rule in matching_rules(incoming, _enabled_rules())]
