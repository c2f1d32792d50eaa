"""Retention: finished deliveries leave the outbox view after the shop's outbox_retention_days."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, update

from ..extensions import db
from ..models import Delivery, Shop, utcnow
from .actions import FINISHED

log = logging.getLogger(__name__)


def purge_outbox(now: datetime | None = None) -> int:
    """Hide from the outbox the finished deliveries whose last step is older than the retention, and commit.

    The last step is the delivery, sending, cancelling or last claim, whichever is known (else the request).
    Only the outbox forgets them: the messages stay in their threads. Returns how many were hidden.
    """
    now = now or utcnow()
    cutoff = now - timedelta(days=Shop.current().outbox_retention_days)
    last_step = func.coalesce(Delivery.delivered_at, Delivery.sent_at, Delivery.cancelled_at, Delivery.claimed_at,
                              Delivery.created_at)
    hidden = db.session.execute(
        update(Delivery)
        .where(Delivery.status.in_(FINISHED), Delivery.outbox_hidden_at.is_(None), last_step < cutoff)
        .values(outbox_hidden_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if hidden:
        log.info("outbox retention: %d deliveries older than %s hidden", hidden, cutoff)
    return hidden
