"""Merging another thread of the same customer into a thread: its messages, ids and followers move over."""
from __future__ import annotations

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, update

from ..customers import refuse_erased
from ..errors import ValidationFailed
from ..extensions import db
from ..models import Message, MessageRef, Shop, Thread, ThreadFollower, User, preview_of, utcnow
from ..models.audit import record
from .compose import compose, default_channels
from .events import add_event
from .threads import thread_label
from .thread_actions import same_context_first


def merge_candidates(thread: Thread) -> list[Thread]:
    """The customer's other threads that can be merged into `thread`: open ones (not closed, deleted or merged),
    those of the same repair or ticket first, then the others, each most recent activity first."""
    if thread.customer_id is None:
        return []
    return same_context_first(thread, list(db.session.scalars(
        select(Thread)
        .where(Thread.customer_id == thread.customer_id, Thread.id != thread.id, Thread.deleted_at.is_(None),
               Thread.merged_into_id.is_(None), Thread.status != "closed")
        .order_by(Thread.last_activity_at.desc(), Thread.id.desc())
    )))


def merge_threads(target: Thread, source: Thread, actor: User | str | None) -> Thread:
    """Move every message of `source` (with its ids, deliveries and files) into `target`; returns `target`.
    Flushed, the caller commits.

    `source` is left empty but for an event, marked merged into `target` (the inbox leaves it out, its page and
    replies to it lead to `target`); both threads get an event, followers and tags join `target`, and `target`'s
    unread mark, last activity, preview and status follow its messages again. When the shop wants it, the
    customer is told on the channel they last used (an automatic message through the outbox).
    Refuses (ValidationFailed on "source_id") the thread itself, a thread of another customer or none, and
    deleted or already merged threads on either side.
    """
    refuse_erased(target.customer, "source_id")
    if source.id == target.id:
        raise ValidationFailed({"source_id": _("A thread cannot be merged into itself.")})
    if target.customer_id is None or source.customer_id != target.customer_id:
        raise ValidationFailed({"source_id": _("Only threads of the same customer can be merged.")})
    if source.merged_into_id is not None or target.merged_into_id is not None:
        raise ValidationFailed({"source_id": _("This thread has already been merged into another.")})
    if source.deleted_at is not None or target.deleted_at is not None:
        raise ValidationFailed({"source_id": _("A deleted thread cannot be merged.")})

    now = utcnow()
    moved = db.session.execute(
        update(Message).where(Message.thread_id == source.id).values(thread_id=target.id)).rowcount
    db.session.execute(update(MessageRef).where(MessageRef.thread_id == source.id).values(thread_id=target.id))
    _join_followers(target, source)
    target.tags = list(dict.fromkeys([*target.tags, *source.tags]))
    source.merged_into_id = target.id
    target.unread = target.unread or source.unread
    source.unread = False

    db.session.expire(source, ["messages"])
    db.session.expire(target, ["messages"])
    _recompute(target, source)
    notified = _tell_customer(target, actor) if Shop.current().merge_notifies_customer else None
    add_event(source, actor, "merged_into", now, thread_id=target.id, label=thread_label(target))
    add_event(target, actor, "merged_from", now, thread_id=source.id, label=thread_label(source), count=moved,
              notified=notified)
    record("thread.merge", by=actor, target=target, source_id=source.id, messages=moved, notified=notified)
    db.session.flush()
    return target


def _join_followers(target: Thread, source: Thread) -> None:
    following = set(db.session.scalars(select(ThreadFollower.user_id).where(ThreadFollower.thread_id == target.id)))
    for user_id in db.session.scalars(select(ThreadFollower.user_id).where(ThreadFollower.thread_id == source.id)):
        if user_id not in following:
            db.session.add(ThreadFollower(thread_id=target.id, user_id=user_id))


def _recompute(target: Thread, source: Thread) -> None:
    """Times, preview and status of `target` from the messages it now holds."""
    target.last_activity_at = max(target.last_activity_at, source.last_activity_at)
    target.last_inbound_at = max(filter(None, (target.last_inbound_at, source.last_inbound_at)), default=None)
    target.first_response_at = min(filter(None, (target.first_response_at, source.first_response_at)),
                                   default=None)
    messages = [m for m in target.messages if m.kind == "message"]
    if messages:
        last = messages[-1]
        target.last_message_preview = preview_of(last.body_text)
        if last.direction == "in":  # the customer's latest word, perhaps from the other thread, waits for us
            target.status, target.closed_at = "waiting_us", None


def _tell_customer(target: Thread, actor) -> str | None:
    """A short automatic message on the channel the customer last used; returns that channel, or None when no
    channel reaches them. The notice is no answer: the thread's status and assignee stay as they were."""
    shop = Shop.current()
    channels = default_channels(target.customer, target, shop)[:1]
    if not channels:
        return None
    kept = target.status, target.closed_at, target.assignee_id, target.first_response_at
    with force_locale(shop.locale):
        body = _("We have joined your messages about “%(subject)s” into one conversation. Please reply to this "
                 "message from now on.", subject=thread_label(target))
    compose(customer=target.customer, channels=channels, body=body, thread=target, automatic=True,
            author=actor if isinstance(actor, User) else None, source="merge")
    target.status, target.closed_at, target.assignee_id, target.first_response_at = kept
    return channels[0]
