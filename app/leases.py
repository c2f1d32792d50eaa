"""Named leases in the database: one holder at a time across processes (two polls of a mailbox never overlap),
taken over when the holder died and its lease expired."""
from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .extensions import db
from .models import Lease, utcnow

_leases = Lease.__table__


def new_owner() -> str:
    """A name no other holder has: this host and process, and a random part for each pass within it."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def acquire(name: str, owner: str, ttl: timedelta, now: datetime | None = None, session: Session | None = None) -> bool:
    """Take the lease `name` for `owner` until now + `ttl` and commit; False while someone else holds it.

    An expired lease (its holder died or hung) is taken over. Safe against a concurrent taker: the UPDATE only
    succeeds while the lease is expired or ours (on SQLite it takes the database's write lock first, on
    PostgreSQL a concurrent UPDATE waits for the row and then sees it taken), and of two INSERTs of a new lease
    the primary key lets one through. Call it without pending changes in the session (default: db.session).
    """
    now = now or utcnow()
    session = session or db.session
    taken = session.execute(
        update(_leases)
        .where(_leases.c.name == name, (_leases.c.expires_at < now) | (_leases.c.owner == owner))
        .values(owner=owner, expires_at=now + ttl)
    ).rowcount
    if not taken:
        try:
            with session.begin_nested():
                session.execute(insert(_leases).values(name=name, owner=owner, expires_at=now + ttl))
        except IntegrityError:
            session.rollback()
            return False
    session.commit()
    return True


def renew(name: str, owner: str, ttl: timedelta, now: datetime | None = None) -> bool:
    """Extend the lease if `owner` still holds it, in the caller's transaction (no commit): commit it together
    with the work it covers. False when another holder took it over after it expired: stop, roll back."""
    now = now or utcnow()
    return db.session.execute(
        update(_leases).where(_leases.c.name == name, _leases.c.owner == owner).values(expires_at=now + ttl)
    ).rowcount == 1


def release(name: str, owner: str, session: Session | None = None) -> None:
    """Give the lease up (if still ours) and commit (`session`, default db.session)."""
    session = session or db.session
    session.execute(delete(_leases).where(_leases.c.name == name, _leases.c.owner == owner))
    session.commit()
