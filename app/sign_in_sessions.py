"""Sign-in sessions in the database: started at sign-in, checked on every request, ended at sign-out.

A signed cookie alone cannot be taken back: a copy keeps working until it expires. So the cookie carries a random
token, and a session counts only while its row has not ended. Rows live in the database (not in one process's
memory) so that several web instances agree at once."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, or_, select, update

from .extensions import db
from .models import SignInSession, utcnow


MAX_AGE = timedelta(days=90)  # then anyone signs in again, however often the session was used


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(*, how: str, user_id: int | None = None, customer_id: int | None = None,
          repair_id: int | None = None) -> str:
    """A new session for a member of staff or a customer (`repair_id`: limited to that repair); its token."""
    token = secrets.token_urlsafe(32)
    db.session.add(SignInSession(token_hash=_digest(token), user_id=user_id, customer_id=customer_id,
                                 repair_id=repair_id, how=how[:16], created_at=utcnow()))
    return token


def find(token: str | None, *, user_id: int | None = None, customer_id: int | None = None) -> SignInSession | None:
    """The live session of this token for this member of staff or customer, or None (unknown, ended, someone else's)."""
    if not token:
        return None
    row = db.session.scalar(select(SignInSession).where(SignInSession.token_hash == _digest(token),
                                                        SignInSession.ended_at.is_(None),
                                                        SignInSession.created_at > utcnow() - MAX_AGE))
    if row is None or row.user_id != user_id or row.customer_id != customer_id:
        return None
    return row


def end(token: str | None) -> None:
    """End the session of this token (signing out); an unknown or ended one is left as it is."""
    if token:
        db.session.execute(update(SignInSession).where(SignInSession.token_hash == _digest(token),
                                                       SignInSession.ended_at.is_(None)).values(ended_at=utcnow()))


def end_all(*, user_id: int | None = None, customer_id: int | None = None, keep: str | None = None) -> None:
    """End every session of a member of staff or a customer (password changed, access closed), but `keep`'s."""
    query = update(SignInSession).where(SignInSession.ended_at.is_(None))
    query = query.where(SignInSession.user_id == user_id) if user_id is not None else \
        query.where(SignInSession.customer_id == customer_id)
    if keep:
        query = query.where(SignInSession.token_hash != _digest(keep))
    db.session.execute(query.values(ended_at=utcnow()), execution_options={"synchronize_session": False})


def purge() -> int:
    """Delete sessions that ended more than a day ago or are past MAX_AGE; how many."""
    now = utcnow()
    return db.session.execute(delete(SignInSession).where(or_(
        SignInSession.ended_at < now - timedelta(days=1), SignInSession.created_at < now - MAX_AGE))).rowcount
