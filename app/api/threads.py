"""API: reading conversations (threads and their messages) and the inbound items held back for staff."""
from __future__ import annotations

from flask import jsonify, request
from flask_babel import gettext as _
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import NotFound

from ..errors import ValidationFailed
from ..extensions import db
from ..messaging.inbound import HELD_STATUSES
from ..messaging.threads import thread_for_staff
from ..models import InboundItem, Message, Thread
from ..request_input import LARGEST_ID
from ..search import search_thread_ids
from . import bp, token_required
from .messages import delivery_summary, iso

PER_PAGE = 50
HELD_LIMIT = 100
THREAD_FILTERS = ("customer_id", "repair_id", "ticket_id")


def filter_threads(query: Select, q: str) -> Select:
    """`query` (of threads) narrowed to those matching the search text `q` (the inbox's full-text search);
    an empty `q` keeps them all."""
    if not q.strip():
        return query
    return query.where(Thread.id.in_(search_thread_ids(q)))


def thread_json(thread: Thread) -> dict:
    return {
        "id": thread.id,
        "subject": thread.subject,
        "status": thread.status,
        "customer_id": thread.customer_id,
        "repair_id": thread.repair_id,
        "ticket_id": thread.ticket_id,
        "last_activity_at": iso(thread.last_activity_at),
        "unread": thread.unread,
        "preview": thread.last_message_preview,
    }


def message_json(message: Message) -> dict:
    """A timeline entry; `channel` is the one an inbound message came by, `channels` those an outbound one goes by.
    A system event also carries what happened, as data (`event`: {"event": "assigned", "to": "Anna", ...})."""
    entry = {
        "id": message.id,
        "kind": message.kind,
        "direction": message.direction,
        "channel": message.channel,
        "channels": [d.channel for d in message.deliveries],
        "author": message.author.name if message.author else None,
        "sender": message.sender,
        "subject": message.subject,
        "text": message.body_text,
        "created_at": iso(message.created_at),
        "attachments": [
            {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in message.attachments
        ],
        "deliveries": [delivery_summary(d) for d in message.deliveries],
    }
    if message.kind == "event":
        entry["event"] = message.meta
    return entry


def held_json(item: InboundItem) -> dict:
    return {"id": item.id, "source": item.source, "sender": item.sender, "subject": item.subject,
            "reason": item.reason, "received_at": iso(item.received_at)}


def _whole_numbers(names: tuple[str, ...]) -> dict[str, int | None]:
    """The query string's values for `names` as positive integers (None when absent or empty).

    Refuses (422 naming each) anything else: a filter that cannot be read must not silently widen the list.
    """
    values, errors = {}, {}
    for name in names:
        raw = request.args.get(name, "").strip()
        if not raw:
            values[name] = None
        elif raw.isascii() and raw.isdecimal() and len(raw) <= 10 and 1 <= int(raw) <= LARGEST_ID:
            values[name] = int(raw)
        else:
            errors[name] = _("Must be a whole number from 1 to %(max)s.", max=LARGEST_ID)
    if errors:
        raise ValidationFailed(errors)
    return values


@bp.get("/threads")
@token_required
def list_threads():
    """Threads newest activity first, 50 a page, narrowed by customer, repair, ticket and search text `q`."""
    args = _whole_numbers(THREAD_FILTERS + ("page",))
    query = select(Thread).where(Thread.deleted_at.is_(None))
    for name in THREAD_FILTERS:
        if args[name] is not None:
            query = query.where(getattr(Thread, name) == args[name])
    query = filter_threads(query, request.args.get("q", ""))
    page = db.paginate(query.order_by(Thread.last_activity_at.desc(), Thread.id.desc()),
                       page=args["page"] or 1, per_page=PER_PAGE, error_out=False)
    return jsonify(threads=[thread_json(t) for t in page.items], page=page.page, pages=page.pages, total=page.total)


@bp.get("/threads/<int:thread_id>")
@token_required
def get_thread(thread_id: int):
    """The thread with its whole timeline, internal notes included (this API is for the shop's own systems)."""
    try:
        thread = thread_for_staff(thread_id)
    except NotFound:
        raise NotFound("thread not found") from None
    messages = db.session.scalars(
        select(Message)
        .where(Message.thread_id == thread.id)
        .order_by(Message.created_at, Message.id)
        .options(selectinload(Message.attachments), selectinload(Message.deliveries), selectinload(Message.author))
    ).all()
    return jsonify({**thread_json(thread), "messages": [message_json(m) for m in messages]})


@bp.get("/held")
@token_required
def list_held():
    """Inbound mail and SMS that were not accepted into a thread (held, or unreadable), with the reason; the
    newest 100."""
    items = db.session.scalars(
        select(InboundItem).where(InboundItem.status.in_(HELD_STATUSES))
        .order_by(InboundItem.received_at.desc(), InboundItem.id.desc()).limit(HELD_LIMIT)
    )
    return jsonify(held=[held_json(item) for item in items])
