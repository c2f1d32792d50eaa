"""Repair orders and tickets: the contexts that threads hang on."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Numeric, String, Text, func, or_, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .customers import ContactPerson, Customer
from .shop import NumberSequence, Queue, RepairStatus
from .types import UTCDateTime, utcnow

PRIORITIES = ("low", "normal", "high", "urgent")


def contains_text(text: str, *columns):
    """Any of `columns` contains `text`, ignoring case; % and _ in the text are searched for literally."""
    needle = text.strip().lower()
    return or_(*(func.lower(column).contains(needle, autoescape=True) for column in columns))
TICKET_STATUSES = ("open", "pending", "closed")


class Repair(db.Model):
    """A repair order: a device in the workshop, its fault and where it stands."""

    __tablename__ = "repairs"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    # A company's repair: the contact person it is about (messages go to them unless staff choose another).
    # No foreign key: SQLite cannot add one to an existing table in place; removing a contact clears it.
    contact_id: Mapped[int | None] = mapped_column(index=True)
    device: Mapped[str] = mapped_column(String(200))
    serial_number: Mapped[str] = mapped_column(String(64), default="")  # serial or IMEI, printed on the receipt
    accessories: Mapped[str] = mapped_column(String(255), default="")  # what was left with the device
    description: Mapped[str] = mapped_column(Text, default="")
    status_id: Mapped[int] = mapped_column(ForeignKey("repair_statuses.id"), index=True)
    price_estimate: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    pickup_date: Mapped[date | None] = mapped_column(Date)
    access_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship()
    status: Mapped[RepairStatus] = relationship()
    contact: Mapped[ContactPerson | None] = relationship(
        primaryjoin="foreign(Repair.contact_id) == ContactPerson.id", viewonly=True)

    @staticmethod
    def next_number(year: int) -> str:
        return NumberSequence.next_number("R", year)

    @property
    def label(self) -> str:
        """How messages name this repair: "R-2026-0042 · iPhone 12"."""
        return f"{self.number} · {self.device}"

    @classmethod
    def search(cls, text: str = "", status_id: int | None = None):
        """Repairs whose number, device, fault or customer's name contains `text`, newest first."""
        query = select(cls).join(Customer)
        if text.strip():
            query = query.where(contains_text(text, cls.number, cls.device, cls.description, Customer.name))
        if status_id:
            query = query.where(cls.status_id == status_id)
        return query.order_by(cls.created_at.desc(), cls.id.desc())


class RepairEvent(db.Model):
    """The repair card's log: status changes, messages sent about it, notes."""

    __tablename__ = "repair_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    repair_id: Mapped[int] = mapped_column(ForeignKey("repairs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # created | status | sms_sent | email_sent | note
    text: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user = relationship("User")


class Ticket(db.Model):
    """A ticket (zgłoszenie): a question, complaint or request that is not a repair order."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    subject: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id"))
    category: Mapped[str] = mapped_column(String(80), default="")
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship()
    queue: Mapped[Queue | None] = relationship()

    @staticmethod
    def next_number(year: int) -> str:
        return NumberSequence.next_number("Z", year)

    @property
    def label(self) -> str:
        return f"{self.number} · {self.subject}"

    @classmethod
    def search(cls, text: str = "", status: str | None = None):
        """Tickets whose number, subject or customer's name contains `text`, newest first."""
        query = select(cls).join(Customer)
        if text.strip():
            query = query.where(contains_text(text, cls.number, cls.subject, Customer.name))
        if status:
            query = query.where(cls.status == status)
        return query.order_by(cls.created_at.desc(), cls.id.desc())
