"""Customers, their extra e-mail addresses, panel access and the record of their consents."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow

PANEL_STATES = ("none", "invited", "active", "disabled")
# The languages a customer can read the panel, sign-in messages and notifications in (staff use Polish or English).
CUSTOMER_LANGUAGES = ("pl", "en", "uk")
# A customer is a person, or a company with a tax number (NIP), an address and contact people.
CUSTOMER_KINDS = ("person", "company")


class Customer(db.Model):
    """A person or company the shop repairs for and writes to."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="person", server_default="person")  # CUSTOMER_KINDS
    nip: Mapped[str | None] = mapped_column(String(10), index=True)  # a company's NIP, ten digits
    address: Mapped[str] = mapped_column(Text, default="", server_default="")  # a company's postal address
    email: Mapped[str | None] = mapped_column(String(254), index=True)  # stored lower-case
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164
    crm_note: Mapped[str] = mapped_column(Text, default="")
    sms_informational: Mapped[bool] = mapped_column(Boolean, default=True)
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    panel_state: Mapped[str] = mapped_column(String(16), default="none")
    language: Mapped[str | None] = mapped_column(String(8))  # one of CUSTOMER_LANGUAGES; None: the shop's
    vocative: Mapped[str | None] = mapped_column(String(120))  # staff's correction of the first name's vocative
    panel_password_hash: Mapped[str | None] = mapped_column(String(255))
    panel_session_version: Mapped[int] = mapped_column(default=1)
    panel_last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_bounce_reason: Mapped[str | None] = mapped_column(Text)
    anonymized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    extra_emails: Mapped[list["CustomerEmail"]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerEmail.id"
    )
    contacts: Mapped[list["ContactPerson"]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="ContactPerson.id"
    )

    @property
    def is_company(self) -> bool:
        return self.kind == "company"

    @property
    def panel_active(self) -> bool:
        return self.panel_state == "active"

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else ""

    def language_or(self, shop_language: str | None) -> str:
        """The language the customer reads: their own when set, else the shop's (Polish when neither is)."""
        return self.language if self.language in CUSTOMER_LANGUAGES else (shop_language or "pl")


class CustomerEmail(db.Model):
    """Another address a customer writes from (accepted by inbound mail like the main one)."""

    __tablename__ = "customer_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(254), index=True)  # stored lower-case
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="extra_emails")


class ContactPerson(db.Model):
    """One of a company's people: their mail and texts thread to the company, and staff may write to them."""

    __tablename__ = "contact_people"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), index=True)  # stored lower-case
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164
    sms_stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the number texted STOP (START clears)
    email_bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # mail to the address came back
    email_bounce_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="contacts")


class ConsentEvent(db.Model):
    """A change of a customer's consent (informational SMS, marketing), with time, source and who."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # sms_informational | marketing
    value: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(32))  # staff | api | sms_keyword | panel | import
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PanelToken(db.Model):
    """A one-time panel sign-in or invitation link or code; only its hash is stored."""

    __tablename__ = "panel_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))  # invite | login | code
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")  # wrong codes typed against this one
