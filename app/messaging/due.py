"""When a thread waiting for the shop must be answered: its last inbound message plus the priority's response time.

Times are clock hours (Shop.response_times, e.g. urgent 1, normal 8), not working hours. `Thread.due_at` is
kept by a flush hook, so every path that makes a thread wait for us (inbound mail and SMS, the panel, a moved
message, a status change) sets it without having to remember to.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from itertools import chain

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from ..models import Shop, Thread
from ..transaction_cache import per_transaction

DEFAULT_HOURS = 8
_INPUTS = ("status", "priority", "last_inbound_at")


def due_time(thread: Thread, response_times: dict) -> datetime | None:
    """The time `thread`'s answer is due, or None when it is not waiting for us."""
    if thread.status != "waiting_us" or thread.last_inbound_at is None:
        return None
    hours = response_times.get(thread.priority or "normal", response_times.get("normal", DEFAULT_HOURS))
    if not isinstance(hours, (int, float)) or isinstance(hours, bool) or hours <= 0:
        hours = DEFAULT_HOURS  # a broken setting must not hide a waiting customer
    return thread.last_inbound_at + timedelta(hours=hours)


def refresh_due(thread: Thread, response_times: dict | None = None) -> None:
    """Set `thread.due_at` from its status, priority and last inbound message (the shop's settings by default)."""
    if response_times is None:
        response_times = Shop.current().response_times or {}
    thread.due_at = due_time(thread, response_times)


def _due_inputs_changed(thread: Thread) -> bool:
    state = inspect(thread)
    return state.pending or any(state.attrs[name].history.has_changes() for name in _INPUTS)


@event.listens_for(Session, "before_flush")
def _keep_due_times(session: Session, flush_context, instances) -> None:
    threads = [obj for obj in chain(session.new, session.dirty)
               if isinstance(obj, Thread) and _due_inputs_changed(obj)]
    if not threads:
        return
    def load() -> dict:
        with session.no_autoflush:
            return session.scalars(select(Shop.response_times).order_by(Shop.id).limit(1)).first() or {}

    # Read once per transaction: a polling pass flushes once per received mail, hundreds in one transaction.
    response_times = per_transaction(session, Shop, load)
    for thread in threads:
        refresh_due(thread, response_times)
