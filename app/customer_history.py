"""A customer's whole history on one timeline: repairs and tickets with their status changes, threads with their
last message, consents, panel access, exports and a company's contact people changing, newest first, a page at a
time."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, String, Text, and_, bindparam, cast, func, literal, null, select, type_coerce, union_all
from sqlalchemy.orm import aliased

from .extensions import db
from .models import AuditEvent, ConsentEvent, Customer, Message, Repair, RepairEvent, Thread, Ticket
from .models.deliveries import Delivery
from .models.sessions import SignInSession
from .models.types import UTCDateTime

PER_PAGE = 30
# The kinds of entries, in the order the filter offers them.
KINDS = ("repairs", "tickets", "threads", "consents", "panel", "exports", "contacts")
PANEL_ACTIONS = ("panel.invite", "panel.state", "panel.password")
CONTACT_ACTIONS = ("customer.contact_add", "customer.contact_update", "customer.contact_remove",
                   "customer.contact_sms")


@dataclass
class HistoryEntry:
    """One line of the history. `kind` is one of KINDS; `what` says which event of it (a repair's "created" or
    "status", a consent's kind, an audit action, "sign_in"); `ref_id` and `label` name the repair, ticket or
    thread; `detail` is the status change, preview or value; `direction` and `channel` are a thread's last
    message's; `data` holds an audit entry's details."""

    at: datetime
    kind: str
    what: str
    ref_id: int | None
    label: str
    detail: str
    direction: str | None
    channel: str | None
    data: dict


@dataclass
class HistoryPage:
    entries: list[HistoryEntry]
    page: int
    has_older: bool


def _columns(at, kind: str, what, ref_id, label, detail, direction, channel, data, row_id):
    """One branch's columns in the union's shape and types (typed on every branch: PostgreSQL wants them equal)."""
    return (
        type_coerce(at, UTCDateTime).label("at"), literal(kind, String).label("kind"), cast(what, String).label("what"),
        cast(ref_id, Integer).label("ref_id"), cast(label, String).label("label"),
        cast(detail, Text).label("detail"), cast(direction, String).label("direction"),
        cast(channel, String).label("channel"), cast(data, Text).label("data"), cast(row_id, Integer).label("row_id"),
    )


def _branches() -> dict[str, list]:
    """The union's selects per kind, each narrowed to the customer named by the bound parameter customer_id."""
    customer_id = bindparam("customer_id", type_=Integer)
    repair_events = (
        select(*_columns(RepairEvent.created_at, "repairs", RepairEvent.kind, Repair.id, Repair.number,
                         RepairEvent.text, null(), null(), null(), RepairEvent.id))
        .join(Repair, Repair.id == RepairEvent.repair_id)
        .where(Repair.customer_id == customer_id, RepairEvent.kind.in_(("created", "status"))))
    tickets_created = select(*_columns(Ticket.created_at, "tickets", literal("created"), Ticket.id, Ticket.number,
                                       Ticket.subject, null(), null(), null(), Ticket.id)
                             ).where(Ticket.customer_id == customer_id)
    ticket_status = (
        select(*_columns(AuditEvent.created_at, "tickets", literal("status"), Ticket.id, Ticket.number,
                         literal(""), null(), null(), AuditEvent.details, AuditEvent.id))
        .join(Ticket, and_(AuditEvent.target_type == "tickets", AuditEvent.target_id == Ticket.id))
        .where(Ticket.customer_id == customer_id, AuditEvent.action == "ticket.update",
               cast(AuditEvent.details, Text).like('%"status"%')))
    last = aliased(Message)
    last_id = (select(last.id).where(last.thread_id == Thread.id, last.kind == "message")
               .order_by(last.created_at.desc(), last.id.desc()).limit(1).correlate(Thread).scalar_subquery())
    first_channel = select(func.min(Delivery.channel)).where(Delivery.message_id == Message.id).scalar_subquery()
    threads = (
        select(*_columns(func.coalesce(Message.created_at, Thread.last_activity_at), "threads", literal("last"),
                         Thread.id, Thread.subject, Thread.last_message_preview, Message.direction,
                         func.coalesce(Message.channel, first_channel), null(), Thread.id))
        .outerjoin(Message, Message.id == last_id)
        .where(Thread.customer_id == customer_id, Thread.deleted_at.is_(None), Thread.merged_into_id.is_(None)))
    consents = select(*_columns(ConsentEvent.created_at, "consents", ConsentEvent.kind, null(),
                                ConsentEvent.source, cast(ConsentEvent.value, Integer), null(), null(), null(),
                                ConsentEvent.id)).where(ConsentEvent.customer_id == customer_id)
    sign_ins = select(*_columns(SignInSession.created_at, "panel", literal("sign_in"), SignInSession.repair_id,
                                SignInSession.how, null(), null(), null(), null(), SignInSession.id)
                      ).where(SignInSession.customer_id == customer_id)

    def audited(kind: str, actions) -> select:
        return select(*_columns(AuditEvent.created_at, kind, AuditEvent.action, null(), null(), null(), null(),
                                null(), AuditEvent.details, AuditEvent.id)
                      ).where(AuditEvent.target_type == "customers", AuditEvent.target_id == customer_id,
                              AuditEvent.action.in_(actions))

    return {"repairs": [repair_events], "tickets": [tickets_created, ticket_status], "threads": [threads],
            "consents": [consents], "panel": [sign_ins, audited("panel", PANEL_ACTIONS)],
            "exports": [audited("exports", ("customer.export",))],
            "contacts": [audited("contacts", CONTACT_ACTIONS)]}


def _query(kinds: tuple[str, ...]):
    """Built once per set of kinds: the union of their branches, newest first, a page (limit, offset) of it."""
    branches = _branches()
    union = union_all(*(branch for kind in kinds for branch in branches[kind])).subquery("history")
    return (select(union).order_by(union.c.at.desc(), union.c.kind, union.c.row_id.desc())
            .limit(bindparam("limit")).offset(bindparam("offset")))


_QUERIES: dict[tuple[str, ...], object] = {}


def customer_history(customer: Customer, kind: str | None = None, page: int = 1,
                     per_page: int = PER_PAGE) -> HistoryPage:
    """Page `page` (newest first) of the customer's history, of one kind (KINDS) or all; one UNION ALL query that
    the database orders and cuts, whatever the length of the history.

    For an erased customer only what erasure kept shows: dates, numbers, statuses and counts, no texts (subjects,
    previews, notes) even if some survived elsewhere.
    """
    kinds = (kind,) if kind in KINDS else KINDS
    query = _QUERIES.get(kinds)
    if query is None:
        query = _QUERIES[kinds] = _query(kinds)
    page = max(1, min(page, 10_000))
    rows = db.session.execute(query, {"customer_id": customer.id, "limit": per_page + 1,
                                      "offset": (page - 1) * per_page}).all()
    erased = customer.anonymized_at is not None
    entries = [HistoryEntry(
        at=row.at, kind=row.kind, what=row.what or "", ref_id=row.ref_id,
        label="" if erased and row.kind == "threads" else (row.label or ""),
        detail="" if erased and row.kind in ("threads", "repairs", "tickets") and row.what != "status"
        else (row.detail or ""),
        direction=row.direction, channel=row.channel, data=_data(row.data),
    ) for row in rows[:per_page]]
    _name_contacts(customer, entries)
    return HistoryPage(entries=entries, page=page, has_older=len(rows) > per_page)


def _name_contacts(customer: Customer, entries: list[HistoryEntry]) -> None:
    """Label a contact person's entries with their name while they are still one of the company's (the audit log
    keeps only their id: a removed person's name is gone, and an erased company's people with it)."""
    if customer.anonymized_at is not None or not any(entry.kind == "contacts" for entry in entries):
        return
    names = {contact.id: contact.name for contact in customer.contacts}
    for entry in entries:
        if entry.kind == "contacts":
            entry.ref_id = entry.data.get("contact_id") if isinstance(entry.data.get("contact_id"), int) else None
            entry.label = names.get(entry.ref_id, "")


def _data(raw) -> dict:
    if not raw:
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
