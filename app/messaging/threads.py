"""Finding and opening threads: one thread per repair or ticket, and the access rule for staff."""
from __future__ import annotations

from flask import abort
from sqlalchemy import and_, bindparam, case, or_, select
from sqlalchemy.orm import joinedload

from ..customers import refuse_erased
from ..extensions import db
from ..models import Customer, Message, Repair, Thread, Ticket, utcnow


# The queries of a thread's page are built once and run with each thread's values: SQLAlchemy then reuses what it
# worked out about them instead of doing it again for every page.

# What a thread's page shows about the thread itself (banner, header, side panel), loaded with it in one query
# (a thread has a few tags at most: joining them repeats its row only that often).
THREAD_PAGE = select(Thread).where(Thread.id == bindparam("thread_id")).options(
    joinedload(Thread.customer), joinedload(Thread.repair).joinedload(Repair.status), joinedload(Thread.ticket),
    joinedload(Thread.assignee), joinedload(Thread.tags))
# A thread's timeline, latest first, with what each entry shows. Its deliveries and files are joined, not loaded in
# queries of their own: a message has a delivery or two and a few files at most, and one query costs less than
# three (a limit applies to the messages, in a subquery).
TIMELINE = select(Message).where(Message.thread_id == bindparam("thread_id")).order_by(
    Message.created_at.desc(), Message.id.desc()).options(
    joinedload(Message.deliveries), joinedload(Message.attachments), joinedload(Message.author),
    joinedload(Message.author_customer))
TIMELINE_PAGE = TIMELINE.limit(bindparam("limit"))


def thread_for_staff(thread_id: int, query=None) -> Thread:
    """The thread, or 404 when it does not exist or was deleted; `query` (THREAD_PAGE) loads it with more. Every
    staff member sees every thread."""
    if query is None:
        thread = db.session.get(Thread, thread_id)
    else:
        thread = db.session.scalars(query, {"thread_id": thread_id}).unique().one_or_none()
    if thread is None or thread.deleted_at is not None:
        abort(404)
    return thread


def live_thread(thread: Thread) -> Thread:
    """The thread that stands for `thread` now: the one it was merged into (followed to the end), else itself."""
    seen = {thread.id}
    while thread.merged_into_id is not None:
        thread = db.session.get(Thread, thread.merged_into_id)
        if thread.id in seen:  # a loop can only come from hand-edited data; stop rather than spin
            break
        seen.add(thread.id)
    return thread


def thread_label(thread: Thread) -> str:
    """How a thread is named where staff pick it ("R-2026-0042 · iPhone 12"): its repair number and subject."""
    label = thread.subject or f"#{thread.id}"
    if thread.repair is not None and thread.repair.number not in label:
        label = f"{thread.repair.number} · {label}"
    return label


def timeline(thread: Thread, *, before: Message | None = None, limit: int | None = None) -> tuple[list[Message], bool]:
    """The thread's messages in order (the last `limit` of them, those before `before` when given) with what the
    timeline shows of each (deliveries, files, author) loaded in the same query however long the thread is; and
    whether earlier messages are left out."""
    query, values = TIMELINE, {"thread_id": thread.id}
    if limit is not None:
        query, values["limit"] = TIMELINE_PAGE, limit + 1  # one more tells whether earlier ones are left
    if before is not None:
        query = query.where(or_(Message.created_at < before.created_at,
                                and_(Message.created_at == before.created_at, Message.id < before.id)))
    messages = list(db.session.scalars(query, values).unique())
    more = limit is not None and len(messages) > limit
    return messages[:limit][::-1], more


def context_thread(customer: Customer, repair: Repair | None = None, ticket: Ticket | None = None) -> Thread | None:
    """The thread a repair's or ticket's messages live in, if any: the newest open one, else the newest closed one.

    Every writer about a repair or ticket (staff from its card, automatic notifications, the customer in the
    panel, mail naming it in the subject) uses this one rule, so a conversation about it stays in one place.
    """
    if repair is None and ticket is None:
        return None
    query = select(Thread).where(
        Thread.customer_id == customer.id, Thread.deleted_at.is_(None), Thread.merged_into_id.is_(None)
    )
    query = query.where(Thread.repair_id == repair.id) if repair else query.where(Thread.ticket_id == ticket.id)
    is_closed = case((Thread.status == "closed", 1), else_=0)
    return db.session.scalars(query.order_by(is_closed, Thread.id.desc()).limit(1)).first()


def open_thread(
    customer: Customer,
    *,
    subject: str,
    repair: Repair | None = None,
    ticket: Ticket | None = None,
    source_channel: str = "email",
    author=None,
) -> Thread:
    """A new thread of `customer` about the repair or ticket; refuses an erased customer (ValidationFailed)."""
    refuse_erased(customer)
    thread = Thread(
        customer_id=customer.id,
        repair_id=repair.id if repair else None,
        ticket_id=ticket.id if ticket else None,
        subject=subject,
        source_channel=source_channel,
        created_by_id=getattr(author, "id", None),
        last_activity_at=utcnow(),
    )
    if ticket is not None:
        thread.priority, thread.queue_id, thread.category = ticket.priority, ticket.queue_id, ticket.category
    db.session.add(thread)
    db.session.flush()
    return thread


def threads_of(*, customer: Customer | None = None, repair: Repair | None = None, ticket: Ticket | None = None):
    """The threads of a customer, repair or ticket, most recent activity first (deleted and merged left out)."""
    query = select(Thread).where(Thread.deleted_at.is_(None), Thread.merged_into_id.is_(None))
    if customer is not None:
        query = query.where(Thread.customer_id == customer.id)
    if repair is not None:
        query = query.where(Thread.repair_id == repair.id)
    if ticket is not None:
        query = query.where(Thread.ticket_id == ticket.id)
    return list(db.session.scalars(query.order_by(Thread.last_activity_at.desc(), Thread.id.desc())))


def default_subject(repair: Repair | None, ticket: Ticket | None) -> str:
    """A new thread's subject: the device or the ticket's subject. Not the number: lists show it beside the
    subject, and mail adds it as "[#R-2026-0042]" (subject_with_reference)."""
    if repair is not None:
        return repair.device
    if ticket is not None:
        return ticket.subject
    return ""
