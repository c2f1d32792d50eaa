"""What staff do with a delivery: send it again now, cancel it, confirm that it arrived, remove it from the outbox.

Each action is one conditional UPDATE, so it cannot race a dispatcher: a delivery claimed a moment ago is no longer
in a state the action accepts, and the action is refused (ValidationFailed; the caller rolls back). On success an
action returns the delivery as it now is; the caller commits.
"""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import and_, or_, update

from ..errors import ValidationFailed
from ..extensions import db
from ..models import Delivery, DeliveryEvent, Message, User, utcnow
from ..models.audit import record

WAITING = ("scheduled", "queued")
FINISHED = ("sent", "delivered", "failed", "bounced", "cancelled")

Actor = User | str  # a signed-in user, or a label such as "api:erp"


def is_uncertain(delivery: Delivery) -> bool:
    """Left in `sending` by a crash: it may or may not have gone out."""
    return delivery.status == "sending" and delivery.uncertain


def can_resend(delivery: Delivery) -> bool:
    return delivery.status in ("failed", *WAITING) or is_uncertain(delivery)


def can_cancel(delivery: Delivery) -> bool:
    return delivery.status in WAITING


def can_dismiss(delivery: Delivery) -> bool:
    return is_uncertain(delivery)


def can_hide(delivery: Delivery) -> bool:
    return delivery.status in FINISHED


_UNCERTAIN = and_(Delivery.status == "sending", Delivery.uncertain.is_(True))


def resend(delivery: Delivery, actor: Actor, now: datetime | None = None) -> Delivery:
    """Make a failed, uncertain or waiting delivery due now: the next dispatch pass really sends it (again).

    The attempts keep counting, so resending one that used all its attempts gives it one more try, not a new
    round of retries. A delivery removed from the outbox comes back to it. Refuses sent, delivered, bounced and
    cancelled deliveries, and one that a dispatcher is sending right now.
    """
    now = now or utcnow()
    return _change(delivery, actor, now, "outbox.resend", "resent",
            allowed=or_(Delivery.status.in_(("failed", *WAITING)), _UNCERTAIN),
            values={"status": "queued", "next_attempt_at": now, "uncertain": False, "claimed_at": None,
                    "claimed_by": None, "outbox_hidden_at": None},
            refusal=_("Only a failed, uncertain or waiting delivery can be sent again."))


def cancel(delivery: Delivery, actor: Actor, now: datetime | None = None) -> Delivery:
    """Stop a delivery that waits (scheduled or queued); it will never be sent. Refuses once it is being sent."""
    now = now or utcnow()
    return _change(delivery, actor, now, "outbox.cancel", "cancelled",
            allowed=Delivery.status.in_(WAITING),
            values={"status": "cancelled", "cancelled_at": now},
            refusal=_("Too late to cancel: this delivery is already on its way or finished."))


def cancel_message(message: Message, actor: Actor, now: datetime | None = None) -> int:
    """Stop every delivery of a message to a customer that still waits; the message stays in its thread, marked.

    Returns how many were stopped (0 when all had gone already; one claimed a moment ago is left alone).
    Refuses (ValidationFailed on "message") anything but a message the shop sends out: a customer's mail, a note
    or an event has nothing to cancel.
    """
    if message.kind != "message" or message.direction != "out":
        raise ValidationFailed({"message": _("Only a message the shop sends can be cancelled.")})
    now = now or utcnow()
    stopped = 0
    for delivery in message.deliveries:
        if not can_cancel(delivery):
            continue
        try:
            cancel(delivery, actor, now)
        except ValidationFailed:  # a dispatcher claimed it a moment ago; the refused UPDATE changed nothing
            continue
        stopped += 1
    return stopped


def dismiss(delivery: Delivery, actor: Actor, now: datetime | None = None) -> Delivery:
    """Close an uncertain delivery as `sent`: staff checked that it arrived (with the customer, in the sent mail).

    Its time of sending is taken to be the time it was claimed, the last moment we know of. Refuses any delivery
    that is not uncertain.
    """
    return _change(delivery, actor, now or utcnow(), "outbox.dismiss", "dismissed",
            allowed=_UNCERTAIN,
            values={"status": "sent", "uncertain": False, "sent_at": Delivery.claimed_at},
            refusal=_("Only a delivery whose result is uncertain can be marked as sent."))


def hide(delivery: Delivery, actor: Actor, now: datetime | None = None) -> Delivery:
    """Remove a finished delivery from the outbox view (its message stays in its thread); refuses one on its way."""
    now = now or utcnow()
    return _change(delivery, actor, now, "outbox.hide", "hidden",
            allowed=Delivery.status.in_(FINISHED),
            values={"outbox_hidden_at": now},
            refusal=_("A delivery still on its way cannot be removed from the outbox; cancel it first."))


def _change(delivery: Delivery, actor: Actor, now: datetime, action: str, event: str, *, allowed, values: dict,
            refusal: str) -> Delivery:
    """Apply `values` if the delivery is still in an `allowed` state, with its history event and audit record."""
    status_before = "uncertain" if is_uncertain(delivery) else delivery.status
    changed = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id, allowed)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.expire(delivery)  # show what the database now holds, changed or not
    if not changed:
        raise ValidationFailed({"delivery": refusal})
    by = actor.email if isinstance(actor, User) else actor
    db.session.add(DeliveryEvent(delivery_id=delivery.id, status=event, provider_ref=f"staff-{now.isoformat()}",
                                 detail={"by": by, "before": status_before}, created_at=now))
    record(action, target=delivery, channel=delivery.channel, before=status_before, by=actor)
    return delivery
