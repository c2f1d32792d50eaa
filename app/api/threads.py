"""API: reading conversations (threads and their messages) and the inbound items held back for staff."""
from __future__ import annotations

from flask import jsonify, request
from flask_babel import gettext as _
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import NotFound

from ..errors import ValidationFailed
from ..extensions import db
from ..inbound.record import HELD_STATUSES
from ..messaging.thread_actions import UNCHANGED, change_context
from ..messaging.threads import thread_for_staff
from ..models import Customer, InboundItem, Message, Repair, Thread, Ticket
from ..request_input import LARGEST_ID
from ..search import search_thread_ids
from .base import api_actor, bp, json_body, token_required
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
        "repair_number": thread.repair.number if thread.repair else None,
        "ticket_id": thread.ticket_id,
        "ticket_number": thread.ticket.number if thread.ticket else None,
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
        # The channels' own texts (SMS, panel) when they carry other words than `text`, e.g. from a template.
        "texts": (message.meta or {}).get("texts", {}) if message.kind != "event" else {},
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
    query = query.options(selectinload(Thread.repair), selectinload(Thread.ticket))  # their numbers in thread_json
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


CONTEXT_FIELDS = {"customer_id": Customer, "repair_id": Repair, "ticket_id": Ticket}


def _context(data: dict) -> dict:
    """The JSON body's customer, repair and ticket as rows for change_context (null: detach; a field left out:
    unchanged). Refuses (422 naming each field) anything but a JSON integer, and ids that name no row."""
    parts, errors = {}, {}
    for field, model in CONTEXT_FIELDS.items():
        part = field.removesuffix("_id")
        if field not in data:
            parts[part] = UNCHANGED
            continue
        value = data[field]
        if value is None:
            parts[part] = None
        elif not isinstance(value, int) or isinstance(value, bool):
            errors[field] = _("Must be a whole number or null.")
        elif not 1 <= value <= LARGEST_ID or (row := db.session.get(model, value)) is None:
            errors[field] = _("No such id.")
        else:
            parts[part] = row
    if errors:
        raise ValidationFailed(errors)
    return parts


@bp.patch("/threads/<int:thread_id>")
@token_required
def patch_thread(thread_id: int):
    """Re-attach the thread: `customer_id` moves it to another customer (a repair or ticket of the old one is
    detached), `repair_id` and `ticket_id` attach it (null detaches). Answers with the thread."""
    try:
        thread = thread_for_staff(thread_id)
    except NotFound:
        raise NotFound("thread not found") from None
    change_context(thread, api_actor(), **_context(json_body(tuple(CONTEXT_FIELDS))))
    db.session.commit()
    return jsonify(thread_json(thread))


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
