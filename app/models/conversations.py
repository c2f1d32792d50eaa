"""Threads (conversations), their messages, attachments, and the ids that let replies find them."""
from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow

THREAD_STATUSES = ("open", "waiting_us", "waiting_customer", "closed")
CHANNELS = ("email", "sms", "portal")
SOURCES = CHANNELS + ("phone", "chat", "web", "letter", "in_person", "request_form")
MESSAGE_KINDS = ("message", "note", "event", "auto_reply", "bounce")
PREVIEW_CHARS = 300  # how much of a thread's last message the inbox keeps (threads.last_message_preview)


def preview_of(text: str, fallback: str = "") -> str:
    """A message's text as a list shows it: one line, at most PREVIEW_CHARS characters; `fallback` when empty."""
    return (" ".join(text.split()) or fallback)[:PREVIEW_CHARS]


def new_thread_token() -> str:
    """The reply token in `inbox+<token>@shop`: short, unguessable, safe in a mail local part."""
    return secrets.token_hex(8)


thread_tags = Table(
    "thread_tags",
    db.metadata,
    Column("thread_id", ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
)



NAMES_CUSTOMER = "names_customer"  # a Message.meta key: see Message.meta

class Tag(db.Model):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)


class Thread(db.Model):
    """A conversation with one customer (or a partner), about a repair, a ticket or nothing in particular."""

    __tablename__ = "threads"
    __table_args__ = (
        Index("ix_threads_status_activity", "status", "last_activity_at"),
        Index("ix_threads_assignee_activity", "assignee_id", "last_activity_at"),
        # The inbox: its default order; its counts per status, queue and assignee, and of overdue threads, read
        # from indexes alone. Status leads, so no filter on deleted_at tempts the planner away from the order.
        Index("ix_threads_activity", "last_activity_at", "id"),
        Index("ix_threads_counts", "status", "queue_id", "assignee_id", "deleted_at", "merged_into_id"),
        Index("ix_threads_overdue", "status", "due_at", "deleted_at", "merged_into_id"),
        Index("ix_threads_unread", "unread", "deleted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True, default=new_thread_token)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    repair_id: Mapped[int | None] = mapped_column(ForeignKey("repairs.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    subject: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(20), default="open")
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id"))
    category: Mapped[str] = mapped_column(String(80), default="")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source_channel: Mapped[str] = mapped_column(String(16), default="email")
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    unread: Mapped[bool] = mapped_column(Boolean, default=False)
    last_message_preview: Mapped[str] = mapped_column(String(PREVIEW_CHARS), default="")
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("threads.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    customer = relationship("Customer")
    repair = relationship("Repair")
    ticket = relationship("Ticket")
    assignee = relationship("User", foreign_keys=[assignee_id])
    tags: Mapped[list[Tag]] = relationship(secondary=thread_tags)
    messages: Mapped[list["Message"]] = relationship(
        back_populates="thread", order_by="Message.created_at, Message.id", foreign_keys="Message.thread_id"
    )


class Message(db.Model):
    """One entry of a thread's timeline: a message in or out, an internal note, or a system event."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_thread_created", "thread_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="message")
    direction: Mapped[str] = mapped_column(String(8), default="out")  # in | out | internal
    channel: Mapped[str | None] = mapped_column(String(16))  # channel it came in on; None for outbound (see deliveries)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author_customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    sender: Mapped[str] = mapped_column(String(320), default="")  # the real From address or phone shown
    recipients: Mapped[dict] = mapped_column(JSON, default=dict)  # {"to": [...], "cc": [...]}
    subject: Mapped[str] = mapped_column(String(998), default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str | None] = mapped_column(Text)  # sanitised
    quoted_text: Mapped[str] = mapped_column(Text, default="")  # the history a reply quoted, folded in the UI
    body_format: Mapped[str] = mapped_column(String(16), default="text")  # text | markdown
    # Written to or by the customer: not a note, an event, a forward to a supplier or a panel invitation. The panel
    # shows such a message of the shop's once a channel carried it (see portal.access.customer_sees).
    visible_to_customer: Mapped[bool] = mapped_column(Boolean, default=True)
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)  # sent by a rule, not a person
    # NAMES_CUSTOMER in meta: the id of a customer the text names though the thread is not theirs (erasure finds it)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_by_customer_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    thread: Mapped[Thread] = relationship(back_populates="messages", foreign_keys=[thread_id])
    author = relationship("User", foreign_keys=[author_user_id])
    author_customer = relationship("Customer", foreign_keys=[author_customer_id])
    attachments: Mapped[list["Attachment"]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="Attachment.id"
    )
    deliveries = relationship("Delivery", back_populates="message", order_by="Delivery.id")


class Attachment(db.Model):
    """A file on a message. Content lives under instance/attachments/ by SHA-256, or is only listed."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)  # None: listed, not stored
    content_id: Mapped[str | None] = mapped_column(String(255))  # for cid: inline images
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    skipped_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    message: Mapped[Message] = relationship(back_populates="attachments")


class MessageRef(db.Model):
    """Every RFC 5322 Message-ID we have seen for a message (ours, received, rewritten by a provider)."""

    __tablename__ = "message_refs"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(998), unique=True)  # without angle brackets
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="ours")  # ours | received | alias


class ThreadFollower(db.Model):
    __tablename__ = "thread_followers"

    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class ThreadPresence(db.Model):
    """Who has a thread open right now, and whether they are writing a reply ("Anna is replying")."""

    __tablename__ = "thread_presence"

    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    replying: Mapped[bool] = mapped_column(Boolean, default=False)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
