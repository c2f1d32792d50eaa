"""Every panel query goes through these loaders, which take the signed-in customer: a customer sees their own
threads, messages, repairs and files, and nobody else's."""
from __future__ import annotations

from dataclasses import dataclass

from flask import abort
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import aliased, defer, joinedload

from ..attachments import servable
from ..extensions import db
from ..messaging.threads import live_thread
from ..models import Attachment, Customer, Delivery, Message, Repair, Thread
from .auth import repair_scope


# --- loaders: every panel query goes through these -------------------------------------------------


# The delivery states in which a message has reached the customer by at least one channel: e-mail and SMS handed
# over (or confirmed delivered), a panel message published. A message still in its undo window, scheduled for
# later, cancelled, or only failed or bounced on every channel was never the customer's to read.
REACHED = ("sent", "delivered")
# The channels a customer writes by; what staff record of a phone call or a visit is their note, not the customer's.
CUSTOMER_CHANNELS = ("email", "sms", "portal")


def _reached_the_customer():
    """The message itself (not a notice about it) went to the customer and arrived on at least one channel."""
    return exists().where(Delivery.message_id == Message.id, Delivery.purpose == "message",
                          Delivery.status.in_(REACHED))


def customer_sees(customer: Customer):
    """The messages the customer sees in the panel, whichever channel carried them: what the shop wrote to them
    (by e-mail, SMS or the panel) once it reached them, and what they wrote themselves (an e-mail, an SMS, a panel
    message). Never notes, events, automatic replies, bounces, a forward to a supplier or what someone else
    wrote into the thread."""
    return and_(
        Message.kind == "message",
        Message.redacted_at.is_(None),
        or_(
            and_(Message.direction == "out", Message.visible_to_customer.is_(True), _reached_the_customer()),
            and_(Message.direction == "in", Message.channel.in_(CUSTOMER_CHANNELS),
                 Message.author_customer_id == customer.id),
        ),
    )


def _own_threads(customer: Customer):
    """The customer's live threads that staff have not marked private (only the access code's repair's in such a
    session)."""
    query = select(Thread).where(Thread.customer_id == customer.id, Thread.deleted_at.is_(None),
                                 Thread.merged_into_id.is_(None), Thread.private.is_(False))
    if repair_scope() is not None:
        query = query.where(Thread.repair_id == repair_scope())
    return query


@dataclass(frozen=True)
class PanelThread:
    """A line of the panel's inbox: the thread, whether the customer has unread messages, the newest one they see."""

    thread: Thread
    unread: bool
    last: Message


def threads_for_customer(customer: Customer) -> list[PanelThread]:
    """The customer's threads that have something for them, newest first, in one query (with each thread's repair
    and the newest message the customer sees, and its files for a preview of a message without text). The preview
    is that message, not the thread's own preview, which may be a note or a message still waiting to go."""
    last = aliased(Message)
    newest = (select(Message.id).where(Message.thread_id == Thread.id, customer_sees(customer))
              .order_by(Message.created_at.desc(), Message.id.desc()).limit(1).correlate(Thread).scalar_subquery())
    unread = exists().where(Message.thread_id == Thread.id, customer_sees(customer), Message.direction == "out",
                            Message.read_by_customer_at.is_(None)).correlate(Thread)
    rows = db.session.execute(
        _own_threads(customer).add_columns(last, unread.label("unread")).join(last, last.id == newest)
        .options(joinedload(Thread.repair).joinedload(Repair.status), joinedload(last.attachments),
                 defer(last.body_html), defer(last.quoted_text))  # a mail's HTML can be long; the line shows text
        .order_by(last.created_at.desc(), last.id.desc())
    ).unique()
    return [PanelThread(thread, bool(is_unread), message) for thread, message, is_unread in rows]


def thread_for_customer(thread_id: int, customer: Customer) -> Thread:
    """The customer's thread (one with something for them), or 404 for anyone else's, deleted or empty ones.
    A thread merged into another stands for that other one (a link in an older notice, a reply form left open)."""
    merged_into = db.session.scalar(select(Thread.merged_into_id).where(
        Thread.id == thread_id, Thread.customer_id == customer.id, Thread.merged_into_id.is_not(None)))
    if merged_into is not None:
        thread_id = live_thread(db.session.get(Thread, merged_into)).id
    thread = db.session.scalar(_own_threads(customer).where(
        Thread.id == thread_id,
        select(Message.id).where(Message.thread_id == Thread.id, customer_sees(customer)).exists()))
    if thread is None:
        abort(404)
    return thread


def messages_for_customer(thread: Thread, customer: Customer) -> list[Message]:
    """What the customer sees of a thread (already loaded through thread_for_customer), oldest first, with the
    files and deliveries each shows (how it travelled) joined in the same query."""
    return list(db.session.scalars(
        select(Message).where(Message.thread_id == thread.id, customer_sees(customer))
        .options(joinedload(Message.attachments), joinedload(Message.deliveries))
        .order_by(Message.created_at, Message.id)
    ).unique())


def travelled_by(message: Message) -> list[str]:
    """The channels by which a message the customer sees reached the panel's reader: the one a customer's message
    came in on, or those on which the shop's message was sent or delivered (in the order e-mail, SMS, panel)."""
    if message.direction == "in":
        return [message.channel]
    reached = {d.channel for d in message.deliveries if d.purpose == "message" and d.status in REACHED}
    return [channel for channel in CUSTOMER_CHANNELS if channel in reached]


def repairs_for_customer(customer: Customer) -> list[Repair]:
    """The customer's repairs, newest first (only the access code's repair in such a session)."""
    query = select(Repair).where(Repair.customer_id == customer.id)
    if repair_scope() is not None:
        query = query.where(Repair.id == repair_scope())
    return list(db.session.scalars(query.order_by(Repair.created_at.desc(), Repair.id.desc())))


def repair_for_customer(repair_id: int, customer: Customer) -> Repair:
    """The customer's repair, or 404."""
    repair = db.session.get(Repair, repair_id)
    if repair is None or repair.customer_id != customer.id or repair_scope() not in (None, repair.id):
        abort(404)
    return repair


def attachment_for_customer(attachment_id: int, customer: Customer) -> Attachment:
    """A stored file of a message the customer sees, or 404."""
    attachment = db.session.scalar(
        select(Attachment).join(Message).join(Thread, Thread.id == Message.thread_id)
        .where(Attachment.id == attachment_id, Attachment.sha256.is_not(None), customer_sees(customer),
               Thread.id.in_(_own_threads(customer).with_only_columns(Thread.id)))
    )
    if attachment is None or not servable(attachment.filename, attachment.sha256):
        abort(404)
    return attachment
