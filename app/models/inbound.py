"""What came in from outside (mail, SMS), kept once, with what was decided about it."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow

INBOUND_STATUSES = ("accepted", "held", "duplicate", "discarded", "error")


class InboundItem(db.Model):
    """One fetched mail or received SMS. Held items are the "not accepted" list staff review.

    Uniqueness: mailbox + UIDVALIDITY + UID for IMAP; the provider id (MessageSid) for SMS; and one item per
    mail (`copy_key`: Message-ID plus a content hash) keeps it, so the same mail arriving by other ways (a second
    mailbox in CC, a reply to all) is stored once even when two polls record it at the same moment: the second
    to commit fails on the index and records its copy again, as a duplicate of the first.
    """

    __tablename__ = "inbound_items"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "uidvalidity", "uid"),
        UniqueConstraint("source", "provider_id"),
        Index("ix_inbound_items_copy_key", "copy_key", unique=True),
        Index("ix_inbound_items_status", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(8))  # email | sms | portal
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id", ondelete="SET NULL"))
    # IMAP numbers are unsigned 32-bit: above PostgreSQL's integer.
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    provider_id: Mapped[str | None] = mapped_column(String(64))
    message_id_header: Mapped[str | None] = mapped_column(String(998))
    content_hash: Mapped[str] = mapped_column(String(64))
    # sha256 of Message-ID and content hash (app.inbound.batch.copy_key) on the item that keeps the mail; None on
    # its duplicates, on mail that could not be read, on SMS, and once the mail was erased.
    copy_key: Mapped[str | None] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(998), default="")
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)  # zlib-compressed original
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Lease(db.Model):
    """A named lease held in the database (mail polling, scheduler), so it holds across processes."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    owner: Mapped[str] = mapped_column(String(80))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
