"""Signed-in sessions kept in the database, so that signing out ends a session on every web instance."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class SignInSession(db.Model):
    """One sign-in of a member of staff (user_id) or a customer in the panel (customer_id). The cookie carries a
    random token; only its SHA-256 is stored. A session counts while ended_at is empty: signing out sets it, so a
    copied cookie (or "remember me" cookie) stops working at once. A panel session with repair_id came in with that
    repair's receipt access code and sees only that repair."""

    __tablename__ = "sign_in_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    repair_id: Mapped[int | None] = mapped_column(ForeignKey("repairs.id", ondelete="CASCADE"))
    how: Mapped[str] = mapped_column(String(16))  # password | code | login | invite | access_code | ...
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
