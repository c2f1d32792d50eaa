"""What the shop's machinery is doing right now, read from the database: the outbox by channel and status, the
oldest delivery waiting past its time, each mailbox's polling, held mail. The same snapshot feeds /metrics and
`flask status`, and being read from the database it is the same whichever process answers."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from ..extensions import db
from ..models import Delivery, InboundItem, Mailbox, SmsAccount, utcnow

DUE_STATUSES = ("scheduled", "queued")  # what the dispatcher takes once its time has come
FAILED_STATUSES = ("failed", "bounced")


@dataclass(frozen=True)
class MailboxHealth:
    id: int
    name: str
    email: str
    receiving: bool  # has an IMAP server to poll
    broken: bool
    consecutive_failures: int
    last_error: str | None
    last_poll_at: datetime | None
    last_poll_ok_at: datetime | None
    last_poll_counts: dict[str, int]
    created_at: datetime


@dataclass(frozen=True)
class Health:
    now: datetime
    deliveries: dict[tuple[str, str], int]  # (channel, status) -> number
    oldest_due_at: datetime | None  # when the longest-waiting due delivery became due
    delivery_failures: dict[tuple[str, str, str], int]  # (channel, status, error code) -> number
    mailboxes: list[MailboxHealth]
    held: int
    inbound_errors: int  # mail that was fetched but could not be recorded
    sms_balance_error: str | None = None  # why the active SMS account's last balance check failed
    problems: list[str] = field(default_factory=list)

    @property
    def oldest_due_seconds(self) -> float:
        """How long the longest-waiting due delivery has waited past its time; 0 when nothing waits."""
        if self.oldest_due_at is None:
            return 0.0
        return max(0.0, (self.now - self.oldest_due_at).total_seconds())


def shop_health(now: datetime | None = None, *, overdue_after: timedelta = timedelta(minutes=15),
                poll_stale_after: timedelta = timedelta(minutes=30)) -> Health:
    """The snapshot at `now`, with the problems someone should look at: a broken mailbox, a receiving mailbox
    without a good poll for `poll_stale_after` (the scheduler may be down), a delivery due for longer than
    `overdue_after` (the dispatcher is stuck or not running)."""
    now = now or utcnow()
    deliveries = {(channel, status): number for channel, status, number in db.session.execute(
        select(Delivery.channel, Delivery.status, func.count()).group_by(Delivery.channel, Delivery.status))}
    oldest_due_at = db.session.scalar(
        select(func.min(func.coalesce(Delivery.next_attempt_at, Delivery.created_at))).where(
            Delivery.status.in_(DUE_STATUSES),
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now)))
    if oldest_due_at is not None and oldest_due_at.tzinfo is None:  # func.min() loses the column's type
        oldest_due_at = Delivery.__table__.c.created_at.type.process_result_value(oldest_due_at, None)
    error_code = func.coalesce(Delivery.error_code, "unknown")
    failures = {(channel, status, code): number for channel, status, code, number in db.session.execute(
        select(Delivery.channel, Delivery.status, error_code, func.count())
        .where(Delivery.status.in_(FAILED_STATUSES)).group_by(Delivery.channel, Delivery.status, error_code))}
    inbound = dict(db.session.execute(
        select(InboundItem.status, func.count()).where(InboundItem.status.in_(("held", "error")))
        .group_by(InboundItem.status)).all())
    mailboxes = [_mailbox_health(mailbox) for mailbox in db.session.scalars(
        select(Mailbox).where(Mailbox.active.is_(True)).order_by(Mailbox.id))]
    health = Health(now=now, deliveries=deliveries, oldest_due_at=oldest_due_at, delivery_failures=failures,
                    mailboxes=mailboxes, held=inbound.get("held", 0), inbound_errors=inbound.get("error", 0),
                    sms_balance_error=db.session.scalar(select(SmsAccount.balance_error).where(
                        SmsAccount.active.is_(True)).order_by(SmsAccount.id.desc()).limit(1)))
    health.problems.extend(_problems(health, overdue_after, poll_stale_after))
    return health


def _mailbox_health(mailbox: Mailbox) -> MailboxHealth:
    return MailboxHealth(
        id=mailbox.id, name=mailbox.name, email=mailbox.email, receiving=bool(mailbox.imap_host),
        broken=mailbox.broken_at is not None, consecutive_failures=mailbox.consecutive_failures or 0,
        last_error=mailbox.last_error if mailbox.consecutive_failures else None,
        last_poll_at=mailbox.last_poll_at, last_poll_ok_at=mailbox.last_poll_ok_at,
        last_poll_counts=dict(mailbox.last_poll_counts or {}), created_at=mailbox.created_at)


def _problems(health: Health, overdue_after: timedelta, poll_stale_after: timedelta) -> list[str]:
    problems = []
    for mailbox in health.mailboxes:
        if mailbox.broken:
            problems.append(f"mailbox {mailbox.name} <{mailbox.email}> is broken: {mailbox.last_error or '-'}")
        elif mailbox.receiving and health.now - (mailbox.last_poll_ok_at or mailbox.created_at) > poll_stale_after:
            problems.append(f"mailbox {mailbox.name} <{mailbox.email}> has had no good poll for more than "
                            f"{_minutes(poll_stale_after)} minutes")
    if health.oldest_due_seconds > overdue_after.total_seconds():
        problems.append(f"deliveries are overdue: the oldest has waited {_minutes(health.oldest_due_seconds)} "
                        f"minutes past its time (limit {_minutes(overdue_after)})")
    return problems


def _minutes(value: timedelta | float) -> int:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    return int(seconds // 60)
