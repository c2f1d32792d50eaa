"""Requests sent through the shop's public request form that wait for the sender to confirm their contact."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow

REQUEST_STATES = ("pending", "confirmed", "expired")


class WebRequest(db.Model):
    """A request from the public form whose e-mail address or phone number belongs to an existing customer.

    It stays here, attached to nobody, until the sender types the one-time code sent to that contact (then it
    becomes a ticket of that customer) or its time runs out (then it becomes a thread of nobody in the inbox,
    for staff to judge). Requests from new contacts never wait here: they become a new customer's ticket at once.
    """

    __tablename__ = "web_requests"
    __table_args__ = (Index("ix_web_requests_state", "state", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # the sender's browser holds the token
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    code_channel: Mapped[str] = mapped_column(String(8))  # email | sms: where the code goes
    code_recipient: Mapped[str] = mapped_column(String(254))  # the customer's own address or number on file
    code_hash: Mapped[str | None] = mapped_column(String(64))  # made when the code is sent, never stored plain
    code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    code_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    device: Mapped[str] = mapped_column(String(200))
    problem: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="pl")
    attachments: Mapped[list] = mapped_column(JSON, default=list)  # [{filename, content_type, size, sha256}]
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    thread_id: Mapped[int | None] = mapped_column(ForeignKey("threads.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
