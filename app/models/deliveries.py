"""Deliveries: one per message and channel, with everything the outbox shows about it."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow

DELIVERY_STATUSES = ("scheduled", "queued", "sending", "sent", "delivered", "failed", "bounced", "cancelled")
WAITING_STATUSES = ("scheduled", "queued", "sending")
# message: the message's own text; panel_invite / panel_sign_in: the customer's panel link (and code), made at
# send time so no usable secret is ever stored; panel_notice: "a new message waits in your panel";
# shop_notice: the shop is told a customer wrote in the panel; panel_request: the code that confirms a request from
# the public request form, made at send time too.
DELIVERY_PURPOSES = ("message", "panel_invite", "panel_sign_in", "panel_notice", "shop_notice", "panel_request")


class Delivery(db.Model):
    """A message on its way to a customer over one channel; the outbox is a list of these."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # email | sms | portal
    # What the delivery carries: the message itself, or a notice about it rendered when it is sent (DELIVERY_PURPOSES).
    purpose: Mapped[str] = mapped_column(String(16), default="message", server_default="message")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    recipient: Mapped[str] = mapped_column(String(320), default="")  # address or E.164 number
    cc: Mapped[list] = mapped_column(JSON, default=list)
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id", ondelete="SET NULL"))
    sms_account_id: Mapped[int | None] = mapped_column(ForeignKey("sms_accounts.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    uncertain: Mapped[bool] = mapped_column(Boolean, default=False)  # left in `sending` by a crash
    error: Mapped[str | None] = mapped_column(Text)  # for people
    error_raw: Mapped[str | None] = mapped_column(Text)  # as the server said it
    error_code: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(255), index=True)  # Twilio SID, SMTP queue id
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # requested
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the claimed attempt began handing the delivery to the provider (SMTP, Twilio); None while it has not:
    # a crash then leaves nothing in doubt (outbox.claim.settle_stale_claims).
    handover_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # executed
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outbox_hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # retention or "delete from outbox"

    message = relationship("Message", back_populates="deliveries")
    sms_account = relationship("SmsAccount")  # the account (and so the provider) an SMS went through


class DeliveryEvent(db.Model):
    """A status report about a delivery (attempt result, provider callback, bounce), deduplicated."""

    __tablename__ = "delivery_events"
    __table_args__ = (UniqueConstraint("delivery_id", "status", "provider_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(32))
    provider_ref: Mapped[str] = mapped_column(String(255), default="")
    error_code: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
