"""Taking due deliveries for sending with one atomic statement, and spotting claims that a crash left behind."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, or_, select, update

from ..extensions import db
from ..models import Delivery, DeliveryEvent

CLAIMABLE = ("scheduled", "queued")

# The statements run once or twice per delivery are built once, with parameters, on the table rather than the
# mapped class: building a statement, and the ORM's work around executing one, cost more than running it.
_deliveries = Delivery.__table__
# True while the claim named by the parameters (Claim.params) still holds: not resent or dismissed meanwhile.
_STILL_HELD = and_(
    _deliveries.c.id == bindparam("claim_id"),
    _deliveries.c.status == "sending",
    _deliveries.c.claimed_by == bindparam("claim_worker"),
    _deliveries.c.claimed_at == bindparam("claim_at"),
)
_IS_HELD = select(_deliveries.c.id).where(_STILL_HELD)
_UPDATE_HELD = update(_deliveries).where(_STILL_HELD)  # sets the columns named by the other parameters


@dataclass(frozen=True)
class Claim:
    """One delivery taken by one dispatcher: the attempt it makes and the stamp that proves the claim is its own."""

    delivery_id: int
    attempt: int  # 1 for the first attempt
    worker: str
    claimed_at: datetime

    @property
    def params(self) -> dict:
        """The parameters of _STILL_HELD for this claim."""
        return {"claim_id": self.delivery_id, "claim_worker": self.worker, "claim_at": self.claimed_at}

    def holds(self) -> bool:
        """Whether the delivery is still ours, asked of the database (one lookup by primary key)."""
        return db.session.execute(_IS_HELD, self.params).first() is not None

    def update(self, **values) -> bool:
        """Set `values` on the delivery if the claim still holds (no commit); whether it did."""
        return db.session.execute(_UPDATE_HELD, {**values, **self.params}).rowcount == 1

    def hand_over(self, now: datetime) -> bool:
        """Write down, and commit, that the delivery is about to leave for the provider (before the SMTP MAIL
        command, before the Twilio request): from here on a crash leaves it in doubt; before, a crash leaves a
        claim that goes back to the queue (settle_stale_claims). False when the claim no longer holds (staff
        resent, cancelled or dismissed it meanwhile): then it must not be sent."""
        held = self.update(handover_at=now)
        db.session.commit()
        return held


def claim_due(now: datetime, worker: str, limit: int) -> list[Claim]:
    """Mark up to `limit` deliveries due at `now` as `sending` by `worker`, count the attempt, and commit.

    One UPDATE ... WHERE id IN (due ones) AND status is still claimable, so two dispatchers never take the same
    delivery: on SQLite an UPDATE that opens its transaction takes the database's write lock before it reads
    anything (as BEGIN IMMEDIATE would); on PostgreSQL the subquery locks its rows FOR UPDATE SKIP LOCKED, so a
    second dispatcher takes the next rows instead of waiting. The commit follows at once: nothing stays locked while the deliveries are sent.
    A scheduled or queued delivery without a time is due.
    """
    due = (
        select(Delivery.id)
        .where(
            Delivery.status.in_(CLAIMABLE),
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # SQLite's compiler leaves it out: its lock is the whole database
    )
    claimed = db.session.execute(
        update(Delivery)
        .where(Delivery.id.in_(due), Delivery.status.in_(CLAIMABLE))
        .values(status="sending", claimed_at=now, claimed_by=worker, attempts=Delivery.attempts + 1, uncertain=False,
                handover_at=None)
        .returning(Delivery.id, Delivery.attempts, Delivery.claimed_at)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return sorted((Claim(row.id, row.attempts, worker, row.claimed_at) for row in claimed),
                  key=lambda claim: claim.delivery_id)


def release(claims: list[Claim]) -> None:
    """Give back claims that were never attempted (the pass stopped first): due again, the attempt not counted.
    A claim whose hand-over had started stays `sending`, to be settled as uncertain (settle_stale_claims)."""
    for claim in claims:
        db.session.execute(
            update(Delivery)
            .where(_STILL_HELD, _deliveries.c.handover_at.is_(None))
            .values(status="queued", attempts=Delivery.attempts - 1, claimed_at=None, claimed_by=None,
                    handover_at=None)
            .execution_options(synchronize_session=False),
            claim.params,
        )
    db.session.commit()


def settle_stale_claims(now: datetime, stale_after: timedelta) -> tuple[int, int]:
    """Settle the claims taken before `now - stale_after` and still `sending`, and commit; returns how many went
    back to the queue and how many were flagged uncertain this time.

    Such a claim was left by a dispatcher that died (or hung) between claiming and recording. One whose
    hand-over never started (Claim.hand_over) cannot have reached anyone: it is queued again, the attempt not
    counted, and a pass sends it normally. One whose hand-over had started may or may not have gone out: it is
    flagged uncertain and stays `sending` (no pass claims it again) until staff resend or dismiss it. A live
    dispatcher that reaches a claim given back meanwhile finds it no longer its own and skips it.
    """
    stale = and_(Delivery.status == "sending", Delivery.uncertain.is_(False), Delivery.claimed_at < now - stale_after)
    returned = (Delivery.id, Delivery.attempts, Delivery.claimed_at, Delivery.claimed_by)
    untouched = and_(stale, Delivery.handover_at.is_(None))
    left = {row.id: row for row in db.session.execute(select(*returned).where(untouched))}  # before they are cleared
    requeued = [left[delivery_id] for delivery_id in db.session.scalars(
        update(Delivery)
        .where(untouched, Delivery.id.in_(left))
        .values(status="queued", attempts=Delivery.attempts - 1, claimed_at=None, claimed_by=None)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )] if left else []
    flagged = db.session.execute(
        update(Delivery)
        .where(stale, Delivery.handover_at.is_not(None))
        .values(uncertain=True)
        .returning(*returned, Delivery.handover_at)
        .execution_options(synchronize_session=False)
    ).all()
    for row in requeued:  # the claim's time tells a second requeue of the same attempt from the first
        db.session.add(DeliveryEvent(
            delivery_id=row.id, status="requeued", provider_ref=f"claim-{row.claimed_at.isoformat()}", created_at=now,
            detail={"attempt": row.attempts, "worker": row.claimed_by, "claimed_at": row.claimed_at.isoformat()},
        ))
    for row in flagged:
        db.session.add(DeliveryEvent(
            delivery_id=row.id, status="uncertain", provider_ref=f"attempt-{row.attempts}", created_at=now,
            detail={"attempt": row.attempts, "worker": row.claimed_by, "claimed_at": row.claimed_at.isoformat(),
                    "handover_at": row.handover_at.isoformat()},
        ))
    db.session.commit()
    return len(requeued), len(flagged)
