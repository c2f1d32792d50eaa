"""Staff accounts (owner or staff) and API tokens."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, Integer, String, func, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow

ROLES = ("owner", "staff")
LOCALES = ("pl", "en")
_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    return _hasher.hash(password)


_stand_in: tuple[PasswordHasher, str] | None = None


def _stand_in_hash() -> str:
    """A hash of nothing anyone knows, made with the current hasher's parameters (and remade if they change)."""
    global _stand_in
    if _stand_in is None or _stand_in[0] is not _hasher:
        _stand_in = (_hasher, _hasher.hash(secrets.token_urlsafe(16)))
    return _stand_in[1]


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches `stored_hash`. Without a hash (no such account, no password set) a stand-in hash
    is checked all the same and False answered: the work, and so the time, does not tell whether an account
    exists (a wrong password for a real one would otherwise take ~100 ms longer than an unknown address)."""
    try:
        return _hasher.verify(stored_hash or _stand_in_hash(), password or "") and bool(stored_hash)
    except (VerificationError, InvalidHashError):
        return False


class User(UserMixin, db.Model):
    """A member of staff. Owners may do everything; staff run the inbox, customers and repairs."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="staff")
    locale: Mapped[str | None] = mapped_column(String(8))  # None: the shop's language
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    can_see_outbox: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped on password change or sign-out everywhere: old session cookies stop loading the user.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    setup_dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # hid the setup banner (owners)

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"

    @property
    def is_active(self) -> bool:  # Flask-Login: disabled accounts cannot sign in or stay signed in
        return self.active

    # The token of the sign-in session (app/sign_in_sessions.py) this object was loaded or signed in with; part of
    # the id Flask-Login keeps in the session and the "remember me" cookie, so signing out ends both.
    session_token = None

    def get_id(self) -> str:
        return f"staff:{self.id}:{self.session_version}:{self.session_token or ''}"

    def set_password(self, password: str) -> None:
        self.password_hash = hash_password(password)
        self.session_version = (self.session_version or 0) + 1

    def check_password(self, password: str) -> bool:
        ok = verify_password(self.password_hash, password)
        if ok and _hasher.check_needs_rehash(self.password_hash):
            self.password_hash = hash_password(password)
        return ok

    @classmethod
    def by_email(cls, email: str) -> "User | None":
        return db.session.scalar(select(cls).where(func.lower(cls.email) == email.strip().lower()))

    @classmethod
    def load_from_session(cls, session_id: str) -> "User | None":
        """Flask-Login's loader: only `staff:<id>:<version>:<token>` ids with the current version load (the caller
        checks that the token's sign-in session has not ended)."""
        kind, user_id, version, token = (session_id.split(":") + ["", "", ""])[:4]
        if kind != "staff" or not user_id.isdigit() or not version.isdigit() or not token:
            return None
        user = db.session.get(cls, int(user_id))
        if user is None or user.session_version != int(version):
            return None
        user.session_token = token
        return user


class ApiToken(db.Model):
    """A bearer token for the HTTP API; only its SHA-256 is stored, the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: until revoked

    created_by: Mapped["User | None"] = relationship()

    def usable(self, now: datetime | None = None) -> bool:
        """Neither revoked nor past its expiry."""
        now = now or utcnow()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def state(self) -> str:
        """"active", "revoked" or "expired", for the lists."""
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.usable() else "expired"

    @staticmethod
    def digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, name: str, created_by_id: int | None = None,
              expires_at: datetime | None = None) -> tuple["ApiToken", str]:
        """Make a token; returns the row and the plain token, which is never stored."""
        plain = "ri_" + secrets.token_urlsafe(32)
        row = cls(name=name, token_hash=cls.digest(plain), created_by_id=created_by_id, expires_at=expires_at)
        db.session.add(row)
        return row, plain

    @classmethod
    def authenticate(cls, plain: str) -> "ApiToken | None":
        row = db.session.scalar(select(cls).where(cls.token_hash == cls.digest(plain)))
        now = utcnow()
        if row is None or not row.usable(now):
            return None
        if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
            row.last_used_at = now  # at most one write a minute per token, committed right away
            db.session.commit()
        return row
