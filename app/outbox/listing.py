"""The outbox list: its filters (from a bookmarkable query string), the query behind it, and how rows are named."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import selectinload

from ..channels.sms import PROVIDER_NAMES
from ..extensions import db
from ..models import Delivery, Mailbox, Message, SmsAccount, Thread
from ..models.conversations import CHANNELS
from ..models.deliveries import DELIVERY_STATUSES, WAITING_STATUSES
from ..request_input import iso_date
from .actions import is_uncertain

# Statuses as the outbox shows them: an uncertain delivery is a `sending` one that a crash left behind.
SHOWN_STATUSES = DELIVERY_STATUSES + ("uncertain",)
RECIPIENT_MAX = 100


@dataclass(frozen=True)
class OutboxFilters:
    channel: str | None = None
    status: str | None = None
    date_from: date | None = None  # requested on or after this day (the shop's time zone)
    date_to: date | None = None  # requested on or before this day
    recipient: str = ""  # part of an address or of a phone number

    @classmethod
    def from_args(cls, args) -> "OutboxFilters":
        """Filters from a query string; values that make no sense are dropped rather than refused."""
        channel = args.get("channel")
        status = args.get("status")
        return cls(
            channel=channel if channel in CHANNELS else None,
            status=status if status in SHOWN_STATUSES else None,
            date_from=_day(args.get("from")),
            date_to=_day(args.get("to")),
            recipient=args.get("recipient", "").strip()[:RECIPIENT_MAX],
        )

    def query_args(self) -> dict[str, str]:
        """The filters as query-string arguments (for links that keep them), empty ones left out."""
        names = {"date_from": "from", "date_to": "to"}
        return {names.get(key, key): str(value) for key, value in asdict(self).items() if value}

    @property
    def active(self) -> bool:
        return bool(self.query_args())


def _day(raw: str | None) -> date | None:
    try:
        return iso_date(raw) if raw else None
    except ValueError:
        return None


def shown_status(delivery: Delivery) -> str:
    return "uncertain" if is_uncertain(delivery) else delivery.status


def waits(delivery: Delivery) -> bool:
    """Still moving by itself (so a page showing it should refresh); an uncertain one waits for staff, not time."""
    return delivery.status in WAITING_STATUSES and not delivery.uncertain


def find_deliveries(filters: OutboxFilters, timezone: str) -> Select:
    """The outbox's deliveries matching `filters`, newest request first, with what a row shows loaded along."""
    query = (
        select(Delivery)
        .where(Delivery.outbox_hidden_at.is_(None))
        .options(
            selectinload(Delivery.message).selectinload(Message.attachments),
            selectinload(Delivery.message).selectinload(Message.thread).options(
                selectinload(Thread.repair), selectinload(Thread.ticket), selectinload(Thread.customer)
            ),
        )
        .order_by(Delivery.created_at.desc(), Delivery.id.desc())
    )
    if filters.channel:
        query = query.where(Delivery.channel == filters.channel)
    if filters.status == "uncertain":
        query = query.where(Delivery.status == "sending", Delivery.uncertain.is_(True))
    elif filters.status == "sending":
        query = query.where(Delivery.status == "sending", Delivery.uncertain.is_(False))
    elif filters.status:
        query = query.where(Delivery.status == filters.status)
    zone = ZoneInfo(timezone)
    if filters.date_from:
        query = query.where(Delivery.created_at >= _start_of(filters.date_from, zone))
    if filters.date_to:
        query = query.where(Delivery.created_at < _start_of(filters.date_to + timedelta(days=1), zone))
    if filters.recipient:
        query = query.where(_recipient_matches(filters.recipient))
    return query


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


def _recipient_matches(text: str):
    """An address part matches case-insensitively; a phone number also by its digits ("600 100" finds +48600100…)."""
    condition = func.lower(Delivery.recipient).contains(text.lower(), autoescape=True)
    digits = "".join(ch for ch in text if ch.isdigit())
    if "@" not in text and len(digits) >= 3:
        condition = condition | and_(Delivery.channel == "sms", Delivery.recipient.contains(digits))
    return condition


class SenderNames:
    """Who sends a delivery, as the outbox shows it: the mailbox's name and address, or the SMS sender and the
    provider that carried it (after a switch of provider, older SMS still name the one they went through)."""

    def __init__(self, mailboxes: dict[int, Mailbox], sms_accounts: dict[int, SmsAccount]):
        self._mailboxes = mailboxes
        self._sms_accounts = sms_accounts

    @classmethod
    def load(cls) -> "SenderNames":
        """All mailboxes and SMS accounts, once per page: a shop has a handful."""
        return cls({m.id: m for m in db.session.scalars(select(Mailbox))},
                   {a.id: a for a in db.session.scalars(select(SmsAccount))})

    def __call__(self, delivery: Delivery) -> str:
        """The sender's name, or "" while the channel has not picked one (it does when it sends)."""
        if delivery.channel == "email" and delivery.mailbox_id in self._mailboxes:
            mailbox = self._mailboxes[delivery.mailbox_id]
            return f"{mailbox.name} <{mailbox.email}>"
        if delivery.channel == "sms" and delivery.sms_account_id in self._sms_accounts:
            account = self._sms_accounts[delivery.sms_account_id]
            return _("%(sender)s via %(provider)s", sender=account.from_number or account.messaging_service_sid or "",
                     provider=PROVIDER_NAMES.get(account.provider, account.provider))
        return ""
