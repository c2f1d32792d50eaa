"""Two people on one thread: who else has it open or is writing a reply, and what arrived since a reply began."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models import Message, Thread, ThreadPresence, User, utcnow

# The page beats every 15 s; three missed beats mean the person has gone (closed the tab, lost the network).
PRESENCE_TTL = timedelta(seconds=45)


@dataclass(frozen=True)
class Presence:
    user: User
    replying: bool


def heartbeat(thread: Thread, user: User, *, replying: bool = False) -> None:
    """Note that `user` has `thread` open now (writing a reply when `replying`), and forget everyone whose last
    beat is too old, on any thread. One upsert: two tabs of one person beating at once cannot collide."""
    now = utcnow()
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(ThreadPresence.__table__).values(thread_id=thread.id, user_id=user.id, replying=replying,
                                                        seen_at=now)
    db.session.execute(statement.on_conflict_do_update(
        index_elements=["thread_id", "user_id"], set_={"replying": replying, "seen_at": now}))
    db.session.execute(delete(ThreadPresence).where(ThreadPresence.seen_at < now - PRESENCE_TTL))


# Built once and run with each page's values: every thread page and every beat asks it.
OTHERS_PRESENT = (
    select(User, ThreadPresence.replying).join(ThreadPresence, ThreadPresence.user_id == User.id)
    .where(ThreadPresence.thread_id == bindparam("thread_id"), ThreadPresence.user_id != bindparam("user_id"),
           ThreadPresence.seen_at >= bindparam("since")))


def others_present(thread: Thread, user: User) -> list[Presence]:
    """The other staff who beat on `thread` within PRESENCE_TTL, those replying first, then by name."""
    rows = db.session.execute(
        OTHERS_PRESENT, {"thread_id": thread.id, "user_id": user.id, "since": utcnow() - PRESENCE_TTL}).all()
    return sorted((Presence(u, replying) for u, replying in rows), key=lambda p: (not p.replying, p.user.name))


def latest_message_id(thread: Thread) -> int:
    """The id of the newest entry of `thread` (0 for none): what a reply form remembers as "seen"."""
    return db.session.scalar(select(Message.id).where(Message.thread_id == thread.id)
                             .order_by(Message.id.desc()).limit(1)) or 0


def arrived_since(thread: Thread, seen_id: int) -> list[Message]:
    """The customer's (or anyone's) messages that came into `thread` after the entry `seen_id`, oldest first:
    what a reply begun before them would not answer."""
    return list(db.session.scalars(
        select(Message).where(Message.thread_id == thread.id, Message.id > seen_id, Message.direction == "in",
                              Message.kind == "message")
        .order_by(Message.id)))
