"""Bulk messages: one template to many repairs or customers, checked per person and channel before anything is
queued, then sent through the outbox spaced at the shop's rate per channel so providers do not throttle us."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from flask_babel import gettext as _

from ..errors import ValidationFailed
from ..extensions import db
from ..models import Customer, Message, Repair, Shop, utcnow
from ..models.audit import record
from ..models.conversations import CHANNELS
from ..models.shop import DEFAULT_BULK_RATES
from ..models.templates import MessageTemplate
from .compose import channel_problems, compose
from .templates import Rendered, refusal_for, render, version_for

MAX_RECIPIENTS = 500
PREVIEWS = 3


@dataclass(frozen=True)
class Recipient:
    customer: Customer
    repair: Repair | None


@dataclass(frozen=True)
class Skip:
    customer: Customer
    channel: str | None  # None: the whole message (no marketing consent, no usable channel)
    reason: str


@dataclass
class BulkPlan:
    """Who gets the message on which channels, who is skipped and why, and the counts per channel."""

    template: MessageTemplate
    sends: list[tuple[Recipient, list[str]]] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    @property
    def counts(self) -> Counter:
        return Counter(channel for _recipient, channels in self.sends for channel in channels)

    def previews(self, shop: Shop) -> list[tuple[Recipient, list[str], Rendered]]:
        """The first few messages as they will read, with the channels each goes by (each channel carries its own
        text when the template has one: Rendered.text_for)."""
        return [(recipient, channels, render(version_for(self.template, recipient.customer, shop), shop=shop,
                                             customer=recipient.customer, repair=recipient.repair))
                for recipient, channels in self.sends[:PREVIEWS]]


def recipients(*, repairs: Sequence[Repair] = (), customers: Sequence[Customer] = ()) -> list[Recipient]:
    """One recipient per selected repair (about that repair) and per selected customer (about nothing)."""
    return [Recipient(r.customer, r) for r in repairs] + [Recipient(c, None) for c in customers]


def plan(template: MessageTemplate | None, channels: Sequence[str], people: Sequence[Recipient]) -> BulkPlan:
    """Check every recipient against the template and channels. Refuses (ValidationFailed) no template, no
    channel, nobody or too many recipients; people who cannot get it are skipped with the reason, not refused."""
    errors = {}
    if template is None or template.kind != "message":
        errors["template_id"] = _("Choose a template.")
    channels = [c for c in CHANNELS if c in channels]
    if not channels:
        errors["channels"] = _("Choose at least one channel.")
    if not people:
        errors["recipients"] = _("Select the repairs or customers to write to.")
    elif len(people) > MAX_RECIPIENTS:
        errors["recipients"] = _("At most %(n)d recipients at once.", n=MAX_RECIPIENTS)
    if errors:
        raise ValidationFailed(errors)
    shop, result = Shop.current(), BulkPlan(template)
    needs_repair = any(a.kind == "document" for a in template.attachments)
    for person in people:
        if refusal := refusal_for(template, person.customer):
            result.skipped.append(Skip(person.customer, None, refusal))
            continue
        if needs_repair and person.repair is None:
            result.skipped.append(Skip(person.customer, None, _("The template attaches a repair's receipt; "
                                                                "select repairs, not customers.")))
            continue
        problems = channel_problems(person.customer, channels, shop)
        usable = [c for c in channels if f"channels.{c}" not in problems]
        result.skipped += [Skip(person.customer, c, problems[f"channels.{c}"]) for c in channels if c not in usable]
        if usable:
            result.sends.append((person, usable))
    return result


def send(bulk: BulkPlan, *, actor) -> list[Message]:
    """Queue every planned message in its recipient's thread; on each channel the n-th delivery waits n / rate
    seconds more than the first (Shop.bulk_rates: messages per minute for each channel), starting after the undo
    window.

    A message compose refuses (an SMS rendered too long) is added to `bulk.skipped` and the others still go.
    The messages have no author: a mailing must not assign hundreds of threads to whoever sent it (the audit
    entry names them).
    """
    shop = Shop.current()
    start = utcnow() + timedelta(seconds=shop.undo_seconds)
    rates = {**DEFAULT_BULK_RATES, **(shop.bulk_rates or {})}
    spacing = {channel: timedelta(seconds=60 / max(int(rate), 1)) for channel, rate in rates.items()}
    position: Counter = Counter()
    messages = []
    for person, channels in bulk.sends:
        rendered = render(version_for(bulk.template, person.customer, shop), shop=shop, customer=person.customer,
                          repair=person.repair)
        try:
            with db.session.begin_nested():
                message = compose(customer=person.customer, channels=channels, body=rendered.body,
                                  subject=rendered.subject, repair=person.repair, template=bulk.template,
                                  source="bulk", texts=rendered.texts, sms_plain=rendered.sms_plain)
        except ValidationFailed as exc:
            bulk.skipped.append(Skip(person.customer, None, " ".join(exc.fields.values())))
            continue
        for delivery in message.deliveries:
            delivery.next_attempt_at = start + position[delivery.channel] * spacing[delivery.channel]
            position[delivery.channel] += 1
        message.send_at = min(d.next_attempt_at for d in message.deliveries)
        messages.append(message)
    record("message.bulk", by=actor, template_id=bulk.template.id, messages=len(messages),
           skipped=len(bulk.skipped), channels=dict(bulk.counts))
    db.session.flush()
    return messages
