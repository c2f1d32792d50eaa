"""What staff do to a thread (assign, queue, status, priority, category, tags, follow, notes, its customer, repair
and ticket, delete), each change written down as a system event in its timeline."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, bindparam, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ..customers import refuse_erased
from ..errors import ValidationFailed
from ..extensions import db
from ..fields import clean_line, clean_text
from ..models import Customer, Message, Queue, Repair, Tag, Thread, ThreadFollower, Ticket, User, utcnow
from ..models.audit import apply_changes, record
from ..models.conversations import THREAD_STATUSES
from ..models.repairs import PRIORITIES

TAG_MAX = 60  # Tag.name's column
CATEGORY_MAX = 80  # Thread.category's column
NOTE_MAX = 50_000
OTHER_THREADS = 3  # the side panel's "other threads of this customer"
# The events these actions write (Message.meta["event"]); staff/threads/_event.html words each of them.
EVENTS = ("assigned", "queue", "status", "priority", "category", "tag_added", "tag_removed", "customer", "repair",
          "ticket")


def add_event(thread: Thread, actor: User | None, event: str, **details) -> Message:
    """Write a system event into the thread's timeline; `details` are names and values the timeline turns into a
    sentence in the reader's language (app/staff templates: staff/threads/_event.html)."""
    message = Message(thread_id=thread.id, kind="event", direction="internal", visible_to_customer=False,
                      author_user_id=actor.id if actor is not None else None, meta={"event": event, **details},
                      created_at=utcnow())
    db.session.add(message)
    return message


def _name(user: User | None) -> str | None:
    return user.name if user is not None else None


def assign(thread: Thread, assignee: User | None, actor: User | None, *, reply: Message | None = None
           ) -> Message | None:
    """Give the thread to `assignee` (None: to nobody), because of `reply` if given; returns the event, or None
    when nothing changed.

    Refuses (ValidationFailed on "assignee_id") an account that is switched off.
    """
    if thread.assignee_id == (assignee.id if assignee else None):
        return None
    if assignee is not None and not assignee.active:
        raise ValidationFailed({"assignee_id": _("This account is switched off.")})
    previous = thread.assignee
    thread.assignee_id = assignee.id if assignee else None
    return add_event(thread, actor, "assigned", to=_name(assignee), to_id=assignee.id if assignee else None,
                     previous=_name(previous), reply_id=reply.id if reply else None)


def take_on_reply(thread: Thread, author: User, reply: Message) -> None:
    """Who answers an unassigned thread takes it (the event says so)."""
    if thread.assignee_id is None:
        assign(thread, author, author, reply=reply)


def give_back(reply: Message) -> None:
    """Undo what `reply` did by taking its thread (the reply is being taken back in its undo window): the thread
    is unassigned again, unless someone has given it to another since, and the event goes."""
    thread = reply.thread
    for event in db.session.scalars(select(Message).where(
            Message.thread_id == thread.id, Message.kind == "event", Message.created_at >= reply.created_at)):
        if event.meta.get("reply_id") == reply.id:
            if thread.assignee_id == event.meta.get("to_id"):
                thread.assignee_id = None
            db.session.delete(event)


def change_queue(thread: Thread, queue: Queue | None, actor: User | None) -> Message | None:
    """Move the thread to `queue` (None: no queue); the assignee is cleared, as the new queue's people pick it up.
    Returns the event, or None when the thread already was there."""
    if thread.queue_id == (queue.id if queue else None):
        return None
    previous = db.session.get(Queue, thread.queue_id) if thread.queue_id else None
    unassigned = thread.assignee
    thread.queue_id = queue.id if queue else None
    thread.assignee_id = None
    return add_event(thread, actor, "queue", to=queue.name if queue else None,
                     previous=previous.name if previous else None, unassigned=_name(unassigned))


def set_status(thread: Thread, status: str, actor: User | None) -> Message | None:
    """Set the thread's status (closing stamps closed_at, anything else clears it; the due time follows by
    itself, see app.messaging.due). Returns the event, or None when nothing changed.

    Refuses (ValidationFailed on "status") a status the shop does not know.
    """
    if status not in THREAD_STATUSES:
        raise ValidationFailed({"status": _("Choose a status.")})
    if thread.status == status:
        return None
    previous = thread.status
    thread.status = status
    thread.closed_at = utcnow() if status == "closed" else None
    return add_event(thread, actor, "status", to=status, previous=previous)


def set_priority(thread: Thread, priority: str, actor: User | None) -> Message | None:
    """Set the thread's priority (its answer's due time moves with it). Refuses an unknown priority."""
    if priority not in PRIORITIES:
        raise ValidationFailed({"priority": _("Choose a priority.")})
    if thread.priority == priority:
        return None
    previous, thread.priority = thread.priority, priority
    return add_event(thread, actor, "priority", to=priority, previous=previous)


def set_category(thread: Thread, category: str, actor: User | None) -> Message | None:
    """Set the thread's category (free text on one line; empty clears it). Refuses one that is too long."""
    category = clean_line(category, "category", CATEGORY_MAX)
    if thread.category == category:
        return None
    previous, thread.category = thread.category, category
    return add_event(thread, actor, "category", to=category, previous=previous)


def categories_in_use(limit: int = 100) -> list[str]:
    """The categories threads have, A to Z, to suggest while typing one."""
    return list(db.session.scalars(
        select(Thread.category).where(Thread.category != "").distinct().order_by(Thread.category).limit(limit)))


def tag_name(raw: str) -> str:
    """A tag as stored: one line, single spaces, lower case ("Warranty  claim" and "warranty claim" are one tag).

    Refuses (ValidationFailed on "tag") an empty name or one over 60 characters.
    """
    return clean_line(raw, "tag", TAG_MAX, _l("Write a tag.")).lower()


def tag_named(name: str) -> Tag:
    """The tag of that name, made if it does not exist yet (two people adding one at once both get it)."""
    tag = db.session.scalar(select(Tag).where(Tag.name == name))
    if tag is not None:
        return tag
    try:
        with db.session.begin_nested():
            tag = Tag(name=name)
            db.session.add(tag)
    except IntegrityError:
        tag = db.session.scalar(select(Tag).where(Tag.name == name))
    return tag


def add_tag(thread: Thread, raw: str, actor: User | None) -> Message | None:
    """Tag the thread (the tag is made on first use); returns the event, or None when it already had the tag."""
    tag = tag_named(tag_name(raw))
    if tag in thread.tags:
        return None
    thread.tags.append(tag)
    return add_event(thread, actor, "tag_added", tag=tag.name)


def remove_tag(thread: Thread, tag_id: int, actor: User | None) -> Message | None:
    """Take the tag off the thread; returns the event, or None when the thread did not have it."""
    tag = next((t for t in thread.tags if t.id == tag_id), None)
    if tag is None:
        return None
    thread.tags.remove(tag)
    return add_event(thread, actor, "tag_removed", tag=tag.name)


UNCHANGED = object()  # change_context: leave this part of the context as it is


def change_context(thread: Thread, actor: User | str | None, *, customer=UNCHANGED, repair=UNCHANGED,
                   ticket=UNCHANGED) -> list[Message]:
    """Re-attach the thread: to another `customer`, to a `repair` or `ticket` (None detaches either). Returns the
    timeline events written (one per part that changed; none when nothing did) and audits the change.

    The thread's reply token and Message-IDs stay with it, so e-mail and SMS replies follow it to its new context;
    the panel shows it to its customer only. Moving it to another customer also detaches a repair or ticket of
    the old one. Refuses (ValidationFailed naming the field) a thread of an erased customer, a move to an erased
    customer, taking the customer away (`customer_id`: a thread keeps one), and a repair or ticket of a customer
    other than the thread's (its new one, on a move).
    """
    refuse_erased(thread.customer, "customer_id")
    errors = {}
    if customer is UNCHANGED:
        customer = thread.customer
    elif customer is None:
        errors["customer_id"] = _("A thread belongs to a customer: choose the customer to move it to.")
    else:
        refuse_erased(customer, "customer_id")
    if repair is UNCHANGED:
        repair = thread.repair if customer is not None and thread.repair is not None \
            and thread.repair.customer_id == customer.id else None
    elif repair is not None and (customer is None or repair.customer_id != customer.id):
        errors["repair_id"] = _("This repair belongs to another customer than the thread's.")
    if ticket is UNCHANGED:
        ticket = thread.ticket if customer is not None and thread.ticket is not None \
            and thread.ticket.customer_id == customer.id else None
    elif ticket is not None and (customer is None or ticket.customer_id != customer.id):
        errors["ticket_id"] = _("This ticket belongs to another customer than the thread's.")
    if errors:
        raise ValidationFailed(errors)
    before = {"customer": thread.customer_id, "repair": thread.repair, "ticket": thread.ticket}
    changed = apply_changes(thread, {"customer_id": customer.id, "repair_id": repair.id if repair else None,
                                     "ticket_id": ticket.id if ticket else None},
                            "thread.context", by=actor)
    events = []
    # Events name customers by id only: a name written here would outlive the customer's erasure.
    if "customer_id" in changed:
        thread.customer = customer
        events.append(add_event(thread, actor if isinstance(actor, User) else None, "customer",
                                to_id=customer.id, previous_id=before["customer"]))
    for part, row in (("repair", repair), ("ticket", ticket)):
        if f"{part}_id" in changed:
            setattr(thread, part, row)
            previous = before[part]
            events.append(add_event(thread, actor if isinstance(actor, User) else None, part,
                                    to=row.number if row else None, to_id=row.id if row else None,
                                    previous=previous.number if previous else None))
    db.session.flush()
    return events


def context_choices(customer: Customer | None) -> tuple[list[Repair], list[Ticket]]:
    """The repairs and tickets a thread of `customer` can be attached to, newest first."""
    if customer is None:
        return [], []
    repairs = db.session.scalars(select(Repair).where(Repair.customer_id == customer.id)
                                 .order_by(Repair.created_at.desc(), Repair.id.desc()))
    tickets = db.session.scalars(select(Ticket).where(Ticket.customer_id == customer.id)
                                 .order_by(Ticket.created_at.desc(), Ticket.id.desc()))
    return list(repairs), list(tickets)


def follow(thread: Thread, user: User) -> None:
    """`user` follows the thread (it shows in their "Followed" view); following twice changes nothing."""
    if db.session.get(ThreadFollower, (thread.id, user.id)) is None:
        db.session.add(ThreadFollower(thread_id=thread.id, user_id=user.id))


def unfollow(thread: Thread, user: User) -> None:
    db.session.execute(delete(ThreadFollower).where(ThreadFollower.thread_id == thread.id,
                                                    ThreadFollower.user_id == user.id))


def add_note(thread: Thread, body: str, author: User) -> Message:
    """An internal note in the timeline: for staff only, never shown to the customer and never sent.

    Refuses (ValidationFailed on "body") an empty or overlong note, and one about an erased customer.
    """
    refuse_erased(thread.customer, "body")
    body = clean_text(body, "body", NOTE_MAX, _l("Write a note."))
    now = utcnow()
    note = Message(thread_id=thread.id, kind="note", direction="internal", visible_to_customer=False,
                   author_user_id=author.id, body_text=body, body_format="markdown", created_at=now)
    db.session.add(note)
    thread.last_activity_at = now
    db.session.flush()
    return note


def delete_thread(thread: Thread, actor: User) -> None:
    """Hide the thread everywhere (soft delete: its rows stay for the audit trail) and audit who did it."""
    thread.deleted_at = utcnow()
    record("thread.delete", by=actor, target=thread, subject=thread.subject, customer_id=thread.customer_id)


# --- what the thread page shows around the timeline -------------------------------------------------


@dataclass
class ThreadHeader:
    """The choices of the thread's header: who it can go to, which queues, who follows it."""

    staff: list[User]
    queues: list[Queue]
    followers: list[User]
    following: bool
    repairs: list[Repair]
    tickets: list[Ticket]


# The queries of the header and the side panel, built once and run with each thread's values (as
# app/messaging/threads.py builds the page's others): active staff and the thread's followers, former staff included.
STAFF_AND_FOLLOWERS = (
    select(User, ThreadFollower.user_id.is_not(None))
    .outerjoin(ThreadFollower, and_(ThreadFollower.user_id == User.id,
                                    ThreadFollower.thread_id == bindparam("thread_id")))
    .where(or_(User.active.is_(True), ThreadFollower.user_id.is_not(None))).order_by(User.name, User.id))
QUEUES = select(Queue).order_by(Queue.position, Queue.id)


def thread_header(thread: Thread, user: User) -> ThreadHeader:
    """The header's choices for `user` on `thread`: active staff and the thread's followers (former staff
    included) come in one query, the queues in another, the customer's repairs and tickets in two more."""
    rows = db.session.execute(STAFF_AND_FOLLOWERS, {"thread_id": thread.id}).all()
    followers = [u for u, follows in rows if follows]
    repairs, tickets = context_choices(thread.customer)
    return ThreadHeader(
        staff=[u for u, _follows in rows if u.active],
        queues=list(db.session.scalars(QUEUES)),
        followers=followers,
        following=any(f.id == user.id for f in followers),
        repairs=repairs,
        tickets=tickets,
    )


@dataclass
class SidePanel:
    """What staff want to know about the customer while answering: their other threads and last repair; and the
    threads the Merge tool offers (merge_candidates), which come from the same query."""

    customer: Customer | None
    other_threads: list[Thread]
    last_repair: Repair | None
    merge_candidates: list[Thread]


def _other_threads():
    """The customer's other threads, open or among their latest few: in the same order, the latest few come first."""
    live_others = (Thread.customer_id == bindparam("customer_id"), Thread.id != bindparam("thread_id"),
                   Thread.deleted_at.is_(None), Thread.merged_into_id.is_(None))
    latest_first = (Thread.last_activity_at.desc(), Thread.id.desc())
    latest = select(Thread.id).where(*live_others).order_by(*latest_first).limit(OTHER_THREADS)
    return select(Thread).where(*live_others, or_(Thread.status != "closed", Thread.id.in_(latest.scalar_subquery()))
                                ).order_by(*latest_first)


OTHER_THREADS_QUERY = _other_threads()
LAST_REPAIR = (select(Repair).where(Repair.customer_id == bindparam("customer_id")).options(joinedload(Repair.status))
               .order_by(Repair.created_at.desc(), Repair.id.desc()).limit(1))


def joins_other_context(target: Thread, source: Thread) -> bool:
    """Whether merging `source` into `target` would join another repair's (or ticket's) conversation to it: a
    step staff must take knowingly, as the customer's messages about two devices then read as one."""
    return ((source.repair_id is not None and source.repair_id != target.repair_id)
            or (source.ticket_id is not None and source.ticket_id != target.ticket_id))


def same_context_first(target: Thread, candidates: list[Thread]) -> list[Thread]:
    """Merge candidates with those of `target`'s own repair or ticket first, each part in its given order."""
    return sorted(candidates, key=lambda other: joins_other_context(target, other))


def side_panel(thread: Thread) -> SidePanel:
    """The customer of the thread, their last three other threads and their latest repair, and their other open
    threads (as merge_candidates in app/messaging/merge.py chooses them), in two queries."""
    customer = thread.customer
    if customer is None:
        return SidePanel(None, [], None, [])
    others = list(db.session.scalars(OTHER_THREADS_QUERY, {"customer_id": customer.id, "thread_id": thread.id}))
    last_repair = db.session.scalars(LAST_REPAIR, {"customer_id": customer.id}).first()
    return SidePanel(customer, others[:OTHER_THREADS], last_repair,
                     same_context_first(thread, [t for t in others if t.status != "closed"]))


def followed_by(user: User):
    """The condition of threads `user` follows (the inbox's "Followed" view)."""
    return Thread.id.in_(select(ThreadFollower.thread_id).where(ThreadFollower.user_id == user.id))

