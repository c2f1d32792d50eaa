"""The shop itself: its settings, the repair statuses it uses, trusted partner domains, numbering."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, String, Text, UniqueConstraint, select, update
from sqlalchemy import false as sa_false
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..opening_hours import opening_text
from .types import UTCDateTime, utcnow

STATUS_COLOURS = ["grey", "blue", "amber", "violet", "green", "red", "slate"]
DEFAULT_BULK_RATES = {"email": 60, "sms": 60, "portal": 60}


class Shop(db.Model):
    """One row: the shop's name, contact data and every setting the owner can change in the UI."""

    __tablename__ = "shop"
    # The currency of prices and quotes: every shop using the app so far counts in złoty, so it is no setting (yet).
    currency = "PLN"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(Text, default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    opening_hours: Mapped[str] = mapped_column(Text, default="")
    receipt_terms: Mapped[str] = mapped_column(Text, default="")  # printed on every acceptance receipt
    locale: Mapped[str] = mapped_column(String(8), default="pl")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Warsaw")
    notification_email: Mapped[str | None] = mapped_column(String(254))
    # Messaging settings (outbound, inbound, panel, notifications); defaults are the product's.
    undo_seconds: Mapped[int] = mapped_column(Integer, default=30)
    sms_countries: Mapped[list] = mapped_column(JSON, default=lambda: ["PL"])
    sms_reply_window_days: Mapped[int] = mapped_column(Integer, default=15)
    outbox_retention_days: Mapped[int] = mapped_column(Integer, default=30)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    attachment_quota_mb: Mapped[int] = mapped_column(Integer, default=1024)
    quiet_hours_start: Mapped[str] = mapped_column(String(5), default="20:00")
    quiet_hours_end: Mapped[str] = mapped_column(String(5), default="08:00")
    notify_max_age_hours: Mapped[int] = mapped_column(Integer, default=24)
    # Bulk messages per minute on each channel (app/messaging/bulk.py spaces them out).
    bulk_rates: Mapped[dict] = mapped_column(JSON, default=lambda: dict(DEFAULT_BULK_RATES))
    response_times: Mapped[dict] = mapped_column(JSON, default=lambda: {"urgent": 1, "high": 4, "normal": 8, "low": 24})
    merge_notifies_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    panel_allows_attachments: Mapped[bool] = mapped_column(Boolean, default=True)
    panel_attachment_max_mb: Mapped[int] = mapped_column(Integer, default=10)
    # Business time (app/opening_hours.py): seven entries from Monday, ["09:00", "17:00"] or null (closed); null
    # for the whole week means "not set" (response times are then clock hours). Closed days are ISO dates.
    opening_week: Mapped[list | None] = mapped_column(JSON)
    closed_days: Mapped[list] = mapped_column(JSON, default=list)
    panel_brand_colour: Mapped[str] = mapped_column(String(16), default="#1f6feb")
    panel_logo_path: Mapped[str | None] = mapped_column(String(255))
    # The public request form (/p/<slug>/zapytanie): off until the owner turns it on, since anyone may write there.
    request_form_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def opening_hours_text(self) -> str:
        """The hours for customers (the {{ opening_hours }} tag, the panel, e-mails): the owner's text, else the
        weekly hours in the shop's language."""
        return opening_text(self.opening_hours, self.opening_week, self.timezone, self.locale or "pl")

    @classmethod
    def current(cls) -> "Shop":
        """The shop row; the first migration creates it, so every database has exactly one."""
        return db.session.scalars(select(cls).order_by(cls.id).limit(1)).one()


class ShopSlug(db.Model):
    """Every slug the shop has used, so panel links and receiving addresses keep working after a rename."""

    __tablename__ = "shop_slugs"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrustedDomain(db.Model):
    """A mail domain whose senders are accepted without being customers (partners, suppliers)."""

    __tablename__ = "trusted_domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RepairStatus(db.Model):
    """A step of the shop's repair workflow; the owner edits the list and its order."""

    __tablename__ = "repair_statuses"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    colour: Mapped[str] = mapped_column(String(16), default="grey")
    is_final: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @classmethod
    def ordered(cls, active_only: bool = True) -> list["RepairStatus"]:
        query = select(cls).order_by(cls.position, cls.id)
        if active_only:
            query = query.where(cls.active.is_(True))
        return list(db.session.scalars(query))



class Queue(db.Model):
    """A queue of tickets and threads (e.g. Front desk, Workshop, Warranty)."""

    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class NumberSequence(db.Model):
    """Counters for human numbers such as R-2026-0001, one row per prefix and year."""

    __tablename__ = "number_sequences"
    __table_args__ = (UniqueConstraint("prefix", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(8))
    year: Mapped[int] = mapped_column(Integer)
    value: Mapped[int] = mapped_column(Integer, default=0)

    @classmethod
    def next_number(cls, prefix: str, year: int) -> str:
        """The next number for prefix and year, taken with one atomic UPDATE so two requests never share it."""
        stmt = (
            update(cls)
            .where(cls.prefix == prefix, cls.year == year)
            .values(value=cls.value + 1)
            .returning(cls.value)
        )
        value = db.session.execute(stmt).scalar()
        if value is None:
            # First number of the year: create the counter; a concurrent creator wins the unique key, then retry.
            try:
                with db.session.begin_nested():
                    db.session.add(cls(prefix=prefix, year=year, value=1))
                value = 1
            except IntegrityError:
                value = db.session.execute(stmt).scalar()
        return f"{prefix}-{year}-{value:04d}"

