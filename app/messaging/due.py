"""When a thread waiting for the shop must be answered: its last inbound message plus the priority's response time.

Response times (Shop.response_times, e.g. urgent 1, normal 8 hours) count the shop's open time once its weekly
opening hours are set (app/opening_hours.py: closed evenings, weekends, Polish public holidays and the owner's
closed days do not count); before that they are clock hours. `Thread.due_at` is kept by a flush hook, so every
path that makes a thread wait for us (inbound mail and SMS, the panel, a moved message, a status change) sets it
without having to remember to, and a change of the shop's response times or hours moves the waiting threads' due
times with it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from ..models import Shop, Thread
from ..opening_hours import OpeningHours, parse_hour
from ..transaction_cache import per_transaction

log = logging.getLogger(__name__)
DEFAULT_HOURS = 8
_INPUTS = ("status", "priority", "last_inbound_at")
_SHOP_INPUTS = ("response_times", "opening_week", "closed_days", "timezone")


@dataclass(frozen=True)
class ResponseRules:
    """What due times are computed from: hours per priority, and the opening hours (None: clock hours)."""

    response_times: dict
    opening_hours: OpeningHours | None = None

    @classmethod
    def of(cls, response_times, opening_week, timezone, closed_days) -> "ResponseRules":
        """The rules from the shop's stored settings; hours that cannot be read (a row edited by hand) give clock
        hours, because a broken setting must not stop mail from being received or hide a waiting customer."""
        try:
            hours = OpeningHours.from_settings(opening_week, timezone, closed_days or ())
            for entry in hours.week if hours is not None else ():
                if entry is not None and (len(entry) != 2 or parse_hour(entry[0]) is None):
                    raise ValueError(entry)
                if entry is not None:
                    parse_hour(entry[1])
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("unreadable opening hours %r in %r; due times in clock hours", opening_week, timezone)
            hours = None
        return cls(response_times if isinstance(response_times, dict) else {}, hours)


def shop_rules(shop: Shop) -> ResponseRules:
    return ResponseRules.of(shop.response_times, shop.opening_week, shop.timezone, shop.closed_days)


def response_hours(priority: str | None, response_times: dict) -> float:
    """The response time of a priority in hours; a missing or broken setting gives DEFAULT_HOURS."""
    hours = response_times.get(priority or "normal", response_times.get("normal", DEFAULT_HOURS))
    if not isinstance(hours, (int, float)) or isinstance(hours, bool) or hours <= 0:
        hours = DEFAULT_HOURS  # a broken setting must not hide a waiting customer
    return hours


def due_time(thread: Thread, response_times: dict, opening_hours: OpeningHours | None = None) -> datetime | None:
    """The time `thread`'s answer is due, or None when it is not waiting for us; open time only when the shop's
    `opening_hours` are given."""
    if thread.status != "waiting_us" or thread.last_inbound_at is None:
        return None
    duration = timedelta(hours=response_hours(thread.priority, response_times))
    if opening_hours is None:
        return thread.last_inbound_at + duration
    return opening_hours.add(thread.last_inbound_at, duration)


def refresh_due(thread: Thread, rules: ResponseRules | None = None) -> None:
    """Set `thread.due_at` from its status, priority and last inbound message (the shop's settings by default)."""
    if rules is None:
        rules = shop_rules(Shop.current())
    thread.due_at = due_time(thread, rules.response_times, rules.opening_hours)


def _due_inputs_changed(thread: Thread) -> bool:
    state = inspect(thread)
    return state.pending or any(state.attrs[name].history.has_changes() for name in _INPUTS)


def _shop_rules_changed(session: Session) -> Shop | None:
    for obj in session.dirty:
        if isinstance(obj, Shop):
            state = inspect(obj)
            if any(state.attrs[name].history.has_changes() for name in _SHOP_INPUTS):
                return obj
    return None


@event.listens_for(Session, "before_flush")
def _keep_due_times(session: Session, flush_context, instances) -> None:
    threads = {obj for obj in chain(session.new, session.dirty)
               if isinstance(obj, Thread) and _due_inputs_changed(obj)}
    shop = _shop_rules_changed(session)
    if shop is not None:
        # New response times or hours: every thread waiting for us gets its due time again.
        rules = shop_rules(shop)
        with session.no_autoflush:
            threads.update(session.scalars(select(Thread).where(Thread.status == "waiting_us")))
    elif threads:
        def load() -> ResponseRules:
            with session.no_autoflush:
                row = session.execute(select(Shop.response_times, Shop.opening_week, Shop.timezone,
                                             Shop.closed_days).order_by(Shop.id).limit(1)).first()
            return ResponseRules.of(*row) if row else ResponseRules({})

        # Read once per transaction: a polling pass flushes once per received mail, hundreds in one transaction.
        rules = per_transaction(session, Shop, load)
    for thread in threads:
        refresh_due(thread, rules)
