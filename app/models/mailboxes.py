"""The shop's sending and receiving accounts: mailboxes (SMTP + IMAP) and the SMS provider account."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, Boolean, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow

SECURITY_MODES = ("tls", "starttls", "none")
AFTER_FETCH = ("seen", "move", "delete")


class Mailbox(db.Model):
    """A mail account: SMTP for sending, IMAP for receiving, its health and its IMAP cursor.

    Passwords and tokens are stored encrypted (app/crypto.py) and never shown back.
    """

    __tablename__ = "mailboxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(120), default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    auth_kind: Mapped[str] = mapped_column(String(16), default="password")  # password | google | microsoft
    username: Mapped[str] = mapped_column(String(254), default="")
    password_enc: Mapped[str | None] = mapped_column(Text)
    oauth_refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    oauth_access_token_enc: Mapped[str | None] = mapped_column(Text)
    oauth_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # SMTP
    smtp_host: Mapped[str] = mapped_column(String(253), default="")
    smtp_port: Mapped[int] = mapped_column(Integer, default=587)
    smtp_security: Mapped[str] = mapped_column(String(16), default="starttls")
    smtp_username: Mapped[str | None] = mapped_column(String(254))  # None: same as username
    smtp_password_enc: Mapped[str | None] = mapped_column(Text)  # None: same as password
    # IMAP
    imap_host: Mapped[str] = mapped_column(String(253), default="")
    imap_port: Mapped[int] = mapped_column(Integer, default=993)
    imap_security: Mapped[str] = mapped_column(String(16), default="tls")
    imap_validate_cert: Mapped[bool] = mapped_column(Boolean, default=True)
    imap_folder: Mapped[str] = mapped_column(String(255), default="INBOX")
    after_fetch: Mapped[str] = mapped_column(String(16), default="seen")
    after_fetch_folder: Mapped[str | None] = mapped_column(String(255))
    allow_new_threads: Mapped[bool] = mapped_column(Boolean, default=True)
    store_attachments: Mapped[bool] = mapped_column(Boolean, default=False)
    poll_interval: Mapped[int] = mapped_column(Integer, default=60)
    # IMAP numbers are unsigned 32-bit: above PostgreSQL's integer.
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    # Health
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    broken_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last pass, whatever its outcome
    last_poll_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last pass that went through
    last_poll_counts: Mapped[dict | None] = mapped_column(JSON)  # what the last pass did (app/inbound/poll.py COUNTS)
    last_send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last mail the server took
    broken_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the shop was told it broke
    smtp_test_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the owner's last passed sending test
    imap_test_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the owner's last passed receiving test
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def uses_oauth(self) -> bool:
        """Signs in with OAuth2 tokens (Google, Microsoft 365) instead of a password."""
        return self.auth_kind != "password"


class OAuthClient(db.Model):
    """The shop's own OAuth client at a provider (google, microsoft), through which its mailboxes sign in."""

    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16), unique=True)
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_enc: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


SMS_PROVIDERS = ("twilio", "smsapi")
TWO_WAY_SENDER = "2way"  # SMSAPI's sender for its two-way numbers: customers can answer it


class SmsAccount(db.Model):
    """An SMS provider account (Twilio or a Twilio-compatible one, or SMSAPI.pl); the active one sends.

    One row per provider, so switching back keeps the other's settings. For SMSAPI `account_sid` is empty and
    `auth_token_enc` holds its API token; it does not sign its callbacks, so their URLs carry a secret, stored
    encrypted like the token (`callback_secret_enc`; app.accounts.sms.callback_secret reads it).
    """

    __tablename__ = "sms_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16), default="twilio", server_default="twilio")
    account_sid: Mapped[str] = mapped_column(String(64))
    auth_token_enc: Mapped[str] = mapped_column(Text)
    callback_secret_enc: Mapped[str | None] = mapped_column(Text)
    # The balance as the provider last told it (SMSAPI: points; Twilio: the account's currency), and the owner's
    # threshold below which they are told once (low_balance_noticed_at, cleared when it rises above again).
    balance: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    balance_currency: Mapped[str | None] = mapped_column(String(16))
    balance_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    low_balance_threshold: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    low_balance_noticed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the last balance check failed (cleared by a good one): a check in the background job is otherwise only
    # a log line nobody reads.
    balance_error: Mapped[str | None] = mapped_column(Text)
    balance_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    from_number: Mapped[str | None] = mapped_column(String(32))  # E.164 or an alphanumeric sender
    messaging_service_sid: Mapped[str | None] = mapped_column(String(64))
    api_base_url: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def sender_is_alphanumeric(self) -> bool:
        """Customers cannot answer an alphanumeric sender such as SERWIS (SMSAPI's "2way" is a number)."""
        if self.provider == "smsapi" and (self.from_number or "").lower() == TWO_WAY_SENDER:
            return False
        return bool(self.from_number) and not self.from_number.lstrip("+").isdigit()

    @property
    def balance_is_low(self) -> bool:
        return (self.balance is not None and self.low_balance_threshold is not None
                and self.balance < self.low_balance_threshold)
