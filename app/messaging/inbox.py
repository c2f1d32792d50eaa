"""The inbox list: views, filters, sorting, paging and the counts above it, fast at 100,000 threads."""
from __future__ import annotations

import time
from collections import Counter, namedtuple
from dataclasses import dataclass, field, replace
from itertools import chain

from flask import current_app, has_app_context
from sqlalchemy import Row, Select, event, func, select
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import Customer, Queue, Repair, Thread, Ticket, User, utcnow
from ..models.conversations import SOURCES, THREAD_STATUSES
from ..search import newest_matches_first, search_thread_ids
from .thread_actions import followed_by

PER_PAGE = 50
COUNTS_SECONDS = 10  # how long a process shows the same counts (unless it changes a thread itself)
MAX_PAGE = 10_000
VIEWS = ("mine", "followed", "unassigned", "open", "waiting_customer", "closed")
DEFAULT_VIEW = "open"
OPEN_STATUSES = tuple(status for status in THREAD_STATUSES if status != "closed")
CONTEXTS = ("repair", "ticket", "none")
# Sortable columns by the name the URL uses; the thread id breaks ties, so pages never overlap or skip.
SORTS = {
    "number": Thread.id,
    "customer": Customer.name,
    "channel": Thread.source_channel,
    "queue": Queue.name,
    "status": Thread.status,
    "assignee": User.name,
    "context": func.coalesce(Repair.number, Ticket.number),
    "preview": Thread.last_message_preview,
    "private": Thread.private,
    "due": Thread.due_at,
    "activity": Thread.last_activity_at,
}
DEFAULT_SORT = "activity"
SEARCH_SORT = "number"  # a search lists the newest threads first: see newest_matches_first
NULLABLE_SORTS = ("customer", "queue", "assignee", "context", "due")
# What a row of the list shows, and nothing more: no ORM objects to build for 50 threads and their relations.
ROW_COLUMNS = (
    Thread.id, Thread.subject, Thread.status, Thread.unread, Thread.source_channel, Thread.queue_id, Thread.private,
    Thread.last_message_preview, Thread.due_at, Thread.last_activity_at, Thread.customer_id,
    Customer.name.label("customer_name"), Customer.email.label("customer_email"),
    Customer.phone.label("customer_phone"), User.name.label("assignee_name"),
    Thread.repair_id, Repair.number.label("repair_number"), Thread.ticket_id, Ticket.number.label("ticket_number"),
)
# A row as a plain named tuple: Jinja reads its fields faster than a SQLAlchemy Row's (a fifth off the rows' rendering).
InboxRow = namedtuple("InboxRow", [column.key for column in ROW_COLUMNS])


def default_sort(q: str) -> str:
    """Latest activity first; a search, the newest threads first."""
    return SEARCH_SORT if q else DEFAULT_SORT


def default_direction(sort: str) -> str:
    """Newest first by activity and by number; every other column from A (or the earliest, or the smallest) up."""
    return "desc" if sort in ("activity", "number") else "asc"


@dataclass(frozen=True)
class InboxQuery:
    """What one inbox page shows; built from the URL by `from_args`, which ignores what it cannot read."""

    view: str = DEFAULT_VIEW
    q: str = ""
    status: str = ""
    queue: int | None = None
    assignee: int | str | None = None  # a user id, or "none" for unassigned threads
    channel: str = ""
    context: str = ""
    overdue: bool = False
    private: str = ""  # "yes" | "no" | "" (either)
    sort: str = DEFAULT_SORT
    direction: str = "desc"
    page: int = 1

    @classmethod
    def from_args(cls, args) -> "InboxQuery":
        """The query a URL asks for. Unknown views, sorts and filter values fall back to the defaults."""
        q = args.get("q", "").strip()[:200]
        sort = _choice(args.get("sort"), SORTS, default_sort(q))
        return cls(
            view=_choice(args.get("view"), VIEWS, DEFAULT_VIEW),
            q=q,
            status=_choice(args.get("status"), THREAD_STATUSES, ""),
            queue=_whole_number(args.get("queue")),
            assignee="none" if args.get("assignee") == "none" else _whole_number(args.get("assignee")),
            channel=_choice(args.get("channel"), SOURCES, ""),
            context=_choice(args.get("context"), CONTEXTS, ""),
            overdue=args.get("overdue") == "1",
            private=_choice(args.get("private"), ("yes", "no"), ""),
            sort=sort,
            direction=_choice(args.get("dir"), ("asc", "desc"), default_direction(sort)),
            page=min(_whole_number(args.get("page")) or 1, MAX_PAGE),
        )

    def args(self, **changes) -> dict:
        """This query as URL parameters (defaults left out), with `changes` applied; for links and forms."""
        query = replace(self, **changes)
        values = {
            "view": query.view, "q": query.q, "status": query.status, "queue": query.queue,
            "assignee": query.assignee, "channel": query.channel, "context": query.context,
            "overdue": "1" if query.overdue else "", "private": query.private,
            "sort": query.sort, "dir": query.direction, "page": query.page,
        }
        defaults = {"view": DEFAULT_VIEW, "sort": default_sort(query.q), "dir": default_direction(query.sort),
                    "page": 1}
        return {key: value for key, value in values.items() if value not in ("", None) and defaults.get(key) != value}

    def sorted_by(self, column: str) -> dict:
        """URL parameters for a click on `column`'s heading: sort by it, or turn its direction round."""
        if self.sort == column:
            return self.args(direction="asc" if self.direction == "desc" else "desc", page=1)
        return self.args(sort=column, direction=default_direction(column), page=1)


@dataclass
class InboxPage:
    threads: list[InboxRow]
    has_next: bool
    queues: dict[int, Queue] = field(default_factory=dict)


def _choice(value, allowed, default):
    return value if value in allowed else default


def _whole_number(value) -> int | None:
    if value and value.isascii() and value.isdecimal() and len(value) <= 9:
        return int(value) or None
    return None


def live_threads() -> Select:
    """Threads the inbox lists: neither deleted nor merged into another."""
    return select(Thread).where(Thread.deleted_at.is_(None), Thread.merged_into_id.is_(None))


def overdue():
    """The condition of a thread whose answer is late: waiting for us past its due time."""
    return (Thread.status == "waiting_us") & (Thread.due_at < utcnow())


def filtered(query: InboxQuery, user: User) -> Select:
    """The threads `query` selects for `user`, unsorted, except for the search text (see `inbox_page`)."""
    statement = live_threads()
    statement = {
        "mine": statement.where(Thread.assignee_id == user.id, Thread.status != "closed"),
        "followed": statement.where(followed_by(user), Thread.status != "closed"),
        "unassigned": statement.where(Thread.assignee_id.is_(None), Thread.status != "closed"),
        "open": statement.where(Thread.status != "closed"),
        "waiting_customer": statement.where(Thread.status == "waiting_customer"),
        "closed": statement.where(Thread.status == "closed"),
    }[query.view]
    if query.status:
        statement = statement.where(Thread.status == query.status)
    if query.queue:
        statement = statement.where(Thread.queue_id == query.queue)
    if query.assignee == "none":
        statement = statement.where(Thread.assignee_id.is_(None))
    elif query.assignee:
        statement = statement.where(Thread.assignee_id == query.assignee)
    if query.channel:
        statement = statement.where(Thread.source_channel == query.channel)
    if query.context == "repair":
        statement = statement.where(Thread.repair_id.is_not(None))
    elif query.context == "ticket":
        statement = statement.where(Thread.ticket_id.is_not(None))
    elif query.context == "none":
        statement = statement.where(Thread.repair_id.is_(None), Thread.ticket_id.is_(None))
    if query.overdue:
        statement = statement.where(overdue())
    if query.private:
        statement = statement.where(Thread.private.is_(query.private == "yes"))
    return statement


def inbox_page(query: InboxQuery, user: User) -> InboxPage:
    """One page of the inbox: 50 threads in the asked order, and whether a next page exists (no total count:
    counting every match on every page is what makes big inboxes slow)."""
    ids = db.session.scalars(_page_of_ids(query, user)).all()
    rows = {row.id: InboxRow(*row) for row in db.session.execute(
        select(*ROW_COLUMNS)
        .outerjoin(Customer, Customer.id == Thread.customer_id).outerjoin(User, User.id == Thread.assignee_id)
        .outerjoin(Repair, Repair.id == Thread.repair_id).outerjoin(Ticket, Ticket.id == Thread.ticket_id)
        .where(Thread.id.in_(ids[:PER_PAGE]))
    )}
    threads = [rows[thread_id] for thread_id in ids[:PER_PAGE] if thread_id in rows]
    return InboxPage(threads=threads, has_next=len(ids) > PER_PAGE, queues=queues_by_id())


def _page_of_ids(query: InboxQuery, user: User) -> Select:
    """The ids of the page's threads (and of one more, if a next page exists), in order.

    Only the ids: the columns a row shows are joined to these 50 afterwards, not to every thread sorted.
    """
    statement = filtered(query, user).with_only_columns(Thread.id)
    descending = query.direction == "desc"
    if query.q and query.sort == "number":
        statement = newest_matches_first(statement, query.q, descending)
    else:
        if query.q:
            statement = statement.where(Thread.id.in_(search_thread_ids(query.q)))
        if query.sort == "customer":
            statement = statement.outerjoin(Customer, Customer.id == Thread.customer_id)
        elif query.sort == "queue":
            statement = statement.outerjoin(Queue, Queue.id == Thread.queue_id)
        elif query.sort == "assignee":
            statement = statement.outerjoin(User, User.id == Thread.assignee_id)
        elif query.sort == "context":
            statement = statement.outerjoin(Repair, Repair.id == Thread.repair_id).outerjoin(
                Ticket, Ticket.id == Thread.ticket_id)
        key = SORTS[query.sort]
        key = key.desc() if descending else key.asc()
        if query.sort in NULLABLE_SORTS:
            key = key.nulls_last()  # nothing to sort by: at the end either way (NULLS LAST also defeats an index)
        statement = statement.order_by(key, Thread.id.desc() if descending else Thread.id.asc())
    return statement.offset((query.page - 1) * PER_PAGE).limit(PER_PAGE + 1)


def queues_by_id() -> dict[int, Queue]:
    return {queue.id: queue for queue in db.session.scalars(select(Queue).order_by(Queue.position, Queue.id))}


@dataclass
class InboxCounts:
    """Threads still to deal with, by view, status and queue. Closed ones are not counted: they pile up for
    years, and counting them would cost every page a scan of the whole table."""

    views: dict[str, int]
    statuses: dict[str, int]
    queues: dict[int | None, int]  # open threads (not closed) per queue; None: no queue
    overdue: int


def inbox_counts(user: User) -> InboxCounts:
    """The numbers above the list: from one grouped query over an index and a range of another (overdue),
    made at most every COUNTS_SECONDS per process (see `_tally`)."""
    rows, late = _tally()
    views, statuses, queues = Counter(), Counter(), Counter()
    for status, queue_id, assignee_id, count in rows:
        statuses[status] += count
        views["open"] += count
        queues[queue_id] += count
        if assignee_id is None:
            views["unassigned"] += count
        elif assignee_id == user.id:
            views["mine"] += count
    views["waiting_customer"] = statuses["waiting_customer"]
    return InboxCounts(views=dict(views), statuses=dict(statuses), queues=dict(queues), overdue=late)


def _tally() -> tuple[list[Row], int]:
    """Open threads per status, queue and assignee, and the overdue ones; the same for every member of staff.

    Counting costs a read of every open thread, which every page of the inbox would pay, so a process keeps its
    tally for COUNTS_SECONDS, and forgets it as soon as it commits a change to a thread itself (`_forget_tally`):
    what someone does here shows at once, what another process (a second worker, the mail poller) does shows
    within seconds.
    """
    cache = current_app.extensions.setdefault("inbox_tally", {})
    tally = cache.get("tally")
    if tally is None or time.monotonic() - tally[0] > COUNTS_SECONDS:
        made = time.monotonic()
        rows = db.session.execute(
            select(Thread.status, Thread.queue_id, Thread.assignee_id, func.count())
            .where(Thread.status.in_(OPEN_STATUSES), Thread.deleted_at.is_(None), Thread.merged_into_id.is_(None))
            .group_by(Thread.status, Thread.queue_id, Thread.assignee_id)
        ).all()
        late = db.session.scalar(select(func.count()).select_from(Thread).where(
            overdue(), Thread.deleted_at.is_(None), Thread.merged_into_id.is_(None)))
        tally = cache["tally"] = (made, rows, late or 0)
    return tally[1], tally[2]


@event.listens_for(Session, "after_flush")
def _note_thread_changes(session: Session, _context) -> None:
    if any(isinstance(row, Thread) for row in chain(session.new, session.dirty, session.deleted)):
        session.info["threads_changed"] = True


@event.listens_for(Session, "after_commit")
def _forget_tally(session: Session) -> None:
    if session.info.pop("threads_changed", False) and has_app_context():
        current_app.extensions.get("inbox_tally", {}).pop("tally", None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_thread_changes(session: Session, _transaction) -> None:
    session.info.pop("threads_changed", None)


def next_unanswered() -> Thread | None:
    """The thread that has waited longest for the shop's answer, or None when nobody waits.

    Only threads with a customer: one without (a trusted supplier's mail) has no Reply, and offering it first
    would send staff back to it again and again."""
    return db.session.scalars(
        live_threads().where(Thread.status == "waiting_us", Thread.customer_id.is_not(None))
        .order_by(Thread.last_inbound_at.asc().nulls_last(), Thread.id.asc()).limit(1)
    ).first()

