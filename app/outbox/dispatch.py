"""One dispatch pass: claim what is due, send it through its channel, write down each result."""
from __future__ import annotations

import functools
import logging
import os
import socket
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import insert, select
from sqlalchemy.orm import selectinload

from ..channels import get_channel
from ..channels.base import Channel, ChannelSession, SendResult
from ..extensions import db
from ..models import Delivery, DeliveryEvent, Mailbox, Message, Shop, Thread, utcnow
from ..repairs import log_sent
from .backoff import configured_retry_delay
from .claim import Claim, claim_due, release, settle_stale_claims

log = logging.getLogger(__name__)

# Deliveries sent but not yet recorded at any time: one on the wire while the one before is recorded and the next
# one is built. A crash leaves at most these `sending` (uncertain).
IN_FLIGHT = 2
DEFAULT_SENDING_STALE = 600  # seconds a claim may stay unrecorded before it counts as a crash (OUTBOX_SENDING_STALE)
# What each recorded outcome adds to in the counts of a pass.
COUNTED_AS = {"sent": "sent", "delivered": "sent", "retry": "retried", "failed": "failed", "uncertain": "uncertain"}
# A plain INSERT: the ORM's unit of work would cost more than the statement, once per delivery.
_ADD_EVENT = insert(DeliveryEvent.__table__)


def default_worker_id() -> str:
    """Names this process in claims, so the outbox can tell which dispatcher took a delivery."""
    return f"{socket.gethostname()}:{os.getpid()}"[-64:]


def dispatch_pass(registry: Mapping[str, Channel] | None = None, limit: int = 200, worker_id: str | None = None,
                  now: datetime | None = None) -> dict[str, int]:
    """Send the deliveries that are due; returns counts: claimed, sent, retried, failed, uncertain, requeued.

    First settles claims older than OUTBOX_SENDING_STALE (a crashed pass left them): those whose hand-over to
    the provider never started go back to the queue ("requeued"); those whose hand-over had started are flagged
    uncertain (never sent again by a pass, staff decide). Then claims up to `limit` due deliveries, loads them
    with their messages in a few queries, sends each through a session of its channel opened once for the pass
    (connections are reused) and closed at the end even on errors, and records each result in its own short
    transaction as soon as it is known. A session that can `begin` a send (e-mail) sends in the background while
    the pass starts the next delivery and records the one before, so at most IN_FLIGHT deliveries are sent but
    not yet recorded; each delivery's hand-over is committed right before it leaves, so a crash leaves at most
    those in doubt. A channel that raises is a temporary failure with the exception's text; the pass goes on. If
    the pass itself is stopped (Ctrl+C, a database error), the claims whose hand-over had not started are given
    back; those in flight stay `sending` and later show as uncertain.

    `registry` maps channel names to channels (default: app.channels); `now` fixes the clock (tests).
    Commits as it goes: call it without pending changes in the session.
    """
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    worker = worker_id or default_worker_id()
    stale_after = timedelta(seconds=current_app.config.get("OUTBOX_SENDING_STALE", DEFAULT_SENDING_STALE))
    counts = dict.fromkeys(("claimed", "sent", "retried", "failed", "uncertain", "requeued"), 0)
    counts["requeued"], counts["uncertain"] = settle_stale_claims(clock(), stale_after)
    claims = claim_due(clock(), worker, limit)
    counts["claimed"] = len(claims)
    if not claims:
        return counts
    max_attempts = Shop.current().max_attempts
    sessions = _Sessions(registry.__getitem__ if registry is not None else get_channel)
    started = 0
    in_flight: deque[_Sending] = deque()

    def record_oldest() -> None:
        outcome = _record(in_flight.popleft(), clock, max_attempts)
        if outcome in COUNTED_AS:
            counts[COUNTED_AS[outcome]] += 1

    with _rows_kept_between_commits():
        try:
            deliveries = _load(claims)
            claims = _failing_mailboxes_last(claims, deliveries)
            for claim in claims:
                started += 1
                sending = _start(claim, deliveries.get(claim.delivery_id), sessions, clock)
                if sending is not None:
                    in_flight.append(sending)
                if len(in_flight) >= IN_FLIGHT:
                    record_oldest()
            while in_flight:
                record_oldest()
        except BaseException:
            _give_back([sending.claim for sending in in_flight if not sending.under_way] + claims[started:])
            raise
        finally:
            sessions.close()
    log.info("outbox pass by %s: %s", worker, counts)
    return counts


@contextmanager
def _rows_kept_between_commits() -> Iterator[None]:
    """Within a pass, the commit after each result keeps the rows loaded for the pass instead of expiring them,
    so that the next delivery is not read again piece by piece (its message, thread, mailbox, the shop).

    What staff may change meanwhile is asked of the database anyway: whether each claim still holds, right
    before its send. Settings (the shop, mailboxes, the SMS account) stay as the pass first read them, with
    its own changes. Afterwards everything is expired, as the commits would have done.
    """
    session = db.session()
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        yield
    finally:
        session.expire_on_commit = expire_on_commit
        session.expire_all()


def _failing_mailboxes_last(claims: list[Claim], deliveries: dict[int, Delivery]) -> list[Claim]:
    """The claims in their order, except that mail through a mailbox whose last attempt failed goes last: a
    server that hangs until SMTP_TIMEOUT then holds up only its own mail, not the other mailboxes'."""
    failing = set(db.session.scalars(select(Mailbox.id).where(Mailbox.consecutive_failures > 0)))
    if not failing:
        return claims

    def last_if_failing(claim: Claim) -> bool:
        delivery = deliveries.get(claim.delivery_id)
        return delivery is not None and delivery.channel == "email" and delivery.mailbox_id in failing

    return sorted(claims, key=last_if_failing)


def _load(claims: list[Claim]) -> dict[int, Delivery]:
    """The claimed deliveries by id, with what the channels send from: the message, its attachments, its thread
    and the thread's customer, repair and ticket; a few queries for the whole pass instead of several per
    delivery."""
    message = selectinload(Delivery.message)
    thread = message.selectinload(Message.thread)
    deliveries = db.session.scalars(
        select(Delivery)
        .where(Delivery.id.in_([claim.delivery_id for claim in claims]))
        .options(message.selectinload(Message.attachments), thread.selectinload(Thread.customer),
                 thread.selectinload(Thread.repair), thread.selectinload(Thread.ticket))
        .execution_options(populate_existing=True)
    )
    return {delivery.id: delivery for delivery in deliveries}


class _Sessions:
    """The channel sessions of one pass: each opened on first use, all closed together.

    A channel that cannot open a session (its server is down) is not asked again in this pass: each of its
    deliveries fails with the same error.
    """

    def __init__(self, lookup: Callable[[str], Channel]):
        self._lookup = lookup
        self._opened: dict[str, tuple[Channel, ChannelSession] | Exception] = {}

    def get(self, name: str) -> tuple[Channel, ChannelSession]:
        if name not in self._opened:
            try:
                channel = self._lookup(name)
                self._opened[name] = (channel, channel.open_session())
            except Exception as exc:
                self._opened[name] = exc
        opened = self._opened[name]
        if isinstance(opened, Exception):
            raise opened
        return opened

    def close(self) -> None:
        for name, opened in self._opened.items():
            if isinstance(opened, Exception):
                continue
            try:
                opened[1].close()
            except Exception:  # a failed QUIT must not hide the results already recorded
                log.exception("closing the %s session failed", name)


@dataclass(frozen=True)
class _Sending:
    """A delivery whose send has started: `outcome` waits for the channel's result (or raises what it raised)."""

    claim: Claim
    delivery: Delivery
    outcome: Callable[[], SendResult]
    under_way: bool = False  # the channel has begun sending (else it sends when the outcome is asked for)
    delivered_when_sent: bool = False


def _start(claim: Claim, delivery: Delivery | None, sessions: _Sessions,
           clock: Callable[[], datetime]) -> _Sending | None:
    """Start sending one claimed delivery; None when the claim was lost meanwhile.

    A session that can `begin` starts its send now (e-mail: the mail is built here and goes out in the
    background); any other sends when its outcome is asked for, so that its writes to the database and a
    rollback after its failure concern that delivery alone. Right before a delivery leaves for its provider its
    hand-over is written down and committed (Claim.hand_over), so that a crash leaves in doubt only deliveries
    that had started leaving: at most IN_FLIGHT. A channel whose send is committed with its result (the panel)
    needs no such mark: a crash undoes its send.
    """
    if delivery is None:
        return _taken_back(claim)
    try:
        channel, session = sessions.get(delivery.channel)
    except Exception as exc:
        return _Sending(claim, delivery, functools.partial(_reraise, exc)) if claim.holds() else _taken_back(claim)
    delivered_when_sent = getattr(channel, "delivered_when_sent", False)
    if getattr(channel, "sends_in_transaction", False):
        if not claim.holds():
            return _taken_back(claim)
        return _Sending(claim, delivery, functools.partial(session.send, delivery), False, delivered_when_sent)
    if hasattr(session, "begin"):
        if not claim.hand_over(clock()):
            return _taken_back(claim)
        try:
            return _Sending(claim, delivery, session.begin(delivery), True, delivered_when_sent)
        except Exception as exc:
            return _Sending(claim, delivery, functools.partial(_reraise, exc))
    return _Sending(claim, delivery, functools.partial(_hand_over, claim, session, delivery, clock), False,
                    delivered_when_sent)


def _hand_over(claim: Claim, session: ChannelSession, delivery: Delivery, clock: Callable[[], datetime]) -> SendResult:
    """Send through a session without `begin`, its hand-over written down first (Claim.hand_over)."""
    if not claim.hand_over(clock()):
        raise _ClaimLost
    return session.send(delivery)


class _ClaimLost(Exception):
    """The claim was taken back between the delivery's start and its send: nothing was sent, nothing to record."""


def _taken_back(claim: Claim) -> None:
    log.info("delivery %s was taken back before its turn (resent, cancelled or dismissed)", claim.delivery_id)
    return None


def _reraise(exc: Exception) -> SendResult:
    raise exc


def _record(sending: _Sending, clock: Callable[[], datetime], max_attempts: int) -> str:
    """Wait for a started delivery's result and record it (see record_result); returns the outcome."""
    delivery = sending.delivery
    try:
        result = sending.outcome()
        if result.ok:
            log_sent(delivery)  # the repair card's log, committed with the result
    except _ClaimLost:
        _taken_back(sending.claim)
        return "taken back"
    except Exception as exc:
        db.session.rollback()  # whatever the channel had changed is as unreliable as its send
        log.warning("sending delivery %s over %s raised", delivery.id, delivery.channel, exc_info=exc)
        result = SendResult(
            ok=False,
            error=_("Sending failed: %(reason)s", reason=str(exc) or type(exc).__name__),
            error_raw="".join(traceback.format_exception_only(exc)).strip(),
            error_code=type(exc).__name__[:32],
        )
    return record_result(sending.claim, result, clock(), max_attempts, sending.delivered_when_sent)


def record_result(claim: Claim, result: SendResult, now: datetime, max_attempts: int,
                  delivered_when_sent: bool = False) -> str:
    """Write the outcome of one attempt and an event for the delivery's history, and commit; returns the outcome.

    ok → `sent` (or `delivered` for a channel that delivers as it sends); a permanent error, or a temporary one
    on the last allowed attempt → `failed`; a send that may have gone out (no answer after the request) →
    `sending` flagged uncertain; any other error → `queued` again after a backoff ("retry").
    The row changes only while the claim still holds; a result that comes after staff resent or dismissed the
    delivery is only written to its history (outcome "late").
    """
    if result.ok:
        outcome = "delivered" if delivered_when_sent else "sent"
        values = {"status": outcome, "sent_at": now, "provider_id": result.provider_id,
                  "error": None, "error_raw": None, "error_code": None}
        if delivered_when_sent:
            values["delivered_at"] = now
        if result.mailbox_id is not None:
            values["mailbox_id"] = result.mailbox_id
    else:
        errors = {"error": result.error or _("Sending failed."), "error_raw": result.error_raw,
                  "error_code": result.error_code}
        if result.uncertain:  # it may have gone out: staff decide, a pass never sends it again by itself
            outcome, values = "uncertain", {"status": "sending", "uncertain": True, **errors}
        elif result.permanent or claim.attempt >= max_attempts:
            outcome, values = "failed", {"status": "failed", **errors}
        else:
            next_attempt_at = now + configured_retry_delay(claim.attempt)
            outcome, values = "retry", {"status": "queued", "next_attempt_at": next_attempt_at, **errors}
    if result.sms_account_id is not None:  # whatever the outcome: the outbox shows the account with its error
        values["sms_account_id"] = result.sms_account_id
    held = claim.update(**{"uncertain": False, **values})
    detail = {"attempt": claim.attempt, "worker": claim.worker}
    detail.update({key: value.isoformat() if isinstance(value, datetime) else value
                   for key, value in values.items() if value is not None and key != "status"})
    if not held:
        log.warning("delivery %s: result %s came after its claim was taken back", claim.delivery_id, outcome)
        detail["outcome"], outcome = outcome, "late"
    db.session.execute(_ADD_EVENT, {
        "delivery_id": claim.delivery_id, "status": outcome, "provider_ref": f"attempt-{claim.attempt}",
        "error_code": None if result.ok else result.error_code, "detail": detail, "created_at": now,
    })
    db.session.commit()
    return outcome


def _give_back(claims: list[Claim]) -> None:
    """Release claims the stopped pass never attempted; a failure here must not hide why the pass stopped."""
    if not claims:
        return
    try:
        db.session.rollback()
        release(claims)
    except Exception:
        log.exception("could not give back %d claims; they will show as uncertain", len(claims))
