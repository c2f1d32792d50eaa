"""The shop's rules for incoming messages: conditions on a new message, and what to do with its thread."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .types import UTCDateTime, utcnow
from ..extensions import db


class MailRule(db.Model):
    """One rule, applied in `position` order to every new inbound message that lands in a thread.

    The queue, assignee and tags are kept as plain ids, not foreign keys: deleting a queue, an account or a tag
    must never be refused because a rule names it; a rule whose queue (or person, or tag) is gone skips that
    action when it runs.
    """

    __tablename__ = "mail_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    position: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # conditions, all of which must hold; an empty one always holds
    channel: Mapped[str] = mapped_column(String(16), default="")  # "", email, sms, portal
    mailbox_id: Mapped[int | None] = mapped_column(Integer)  # an e-mail's mailbox
    words: Mapped[str] = mapped_column(Text, default="")  # any of them in the subject or text
    sender_domain: Mapped[str] = mapped_column(String(253), default="")
    # actions
    queue_id: Mapped[int | None] = mapped_column(Integer)
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[str] = mapped_column(String(16), default="")
    tag_ids: Mapped[list] = mapped_column(JSON, default=list)
    stop: Mapped[bool] = mapped_column(Boolean, default=False)  # later rules are not applied
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
