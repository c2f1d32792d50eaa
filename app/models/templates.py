"""Message templates and the automatic notification rules that use them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow


class MessageTemplate(db.Model):
    """A reusable message for e-mail and/or SMS, rendered in a sandbox with the offered tags."""

    __tablename__ = "message_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    channels: Mapped[list] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(String(255), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    # A channel's own text, empty when the channel carries `body` (the e-mail's text): an SMS says less.
    sms_body: Mapped[str] = mapped_column(Text, default="", server_default="")
    sms_plain: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    panel_body: Mapped[str] = mapped_column(Text, default="", server_default="")
    language: Mapped[str] = mapped_column(String(8), default="pl")
    marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[str] = mapped_column(String(16), default="message")  # message | header | footer
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    attachments: Mapped[list["TemplateAttachment"]] = relationship(cascade="all, delete-orphan")


class TemplateAttachment(db.Model):
    """A file carried by a template, or a document the app renders (e.g. the acceptance receipt)."""

    __tablename__ = "template_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("message_templates.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="file")  # file | document
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127), default="application/octet-stream")
    sha256: Mapped[str | None] = mapped_column(String(64))
    document: Mapped[str | None] = mapped_column(String(40))  # e.g. "acceptance_receipt"


class StatusNotification(db.Model):
    """When a repair enters a status, send this template on these channels."""

    __tablename__ = "status_notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    status_id: Mapped[int] = mapped_column(ForeignKey("repair_statuses.id", ondelete="CASCADE"), unique=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("message_templates.id", ondelete="CASCADE"))
    channels: Mapped[list] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class StatusReminder(db.Model):
    """When a repair has stayed in a status for `days` of the shop's opening days, send this template on these
    channels (once per repair: see SentReminder)."""

    __tablename__ = "status_reminders"
    __table_args__ = (UniqueConstraint("status_id", "days"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    status_id: Mapped[int] = mapped_column(ForeignKey("repair_statuses.id", ondelete="CASCADE"), index=True)
    days: Mapped[int] = mapped_column(Integer)
    template_id: Mapped[int] = mapped_column(ForeignKey("message_templates.id", ondelete="CASCADE"))
    channels: Mapped[list] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    status = relationship("RepairStatus")
    template: Mapped[MessageTemplate] = relationship()


class SentReminder(db.Model):
    """A reminder's one go for one repair: sent (with its message) or skipped (with the reason).

    The unique pair (repair, reminder) is what keeps a reminder to once per repair, whatever runs the job twice
    or side by side: the row is written first, in the transaction that sends, and the second writer fails.
    """

    __tablename__ = "sent_reminders"
    __table_args__ = (UniqueConstraint("repair_id", "reminder_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reminder_id: Mapped[int] = mapped_column(ForeignKey("status_reminders.id", ondelete="CASCADE"), index=True)
    repair_id: Mapped[int] = mapped_column(ForeignKey("repairs.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    status_since: Mapped[datetime] = mapped_column(UTCDateTime)  # the start of the stay it was about
    outcome: Mapped[str] = mapped_column(String(16), default="sent")  # sent | skipped
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    reminder: Mapped[StatusReminder] = relationship()
    message = relationship("Message")  # the reminder as it went, in the repair's thread
