"""Recording a conversation the shop had outside the app (a phone call, a visit, a letter) as a new thread."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..customers import refuse_erased
from ..errors import ValidationFailed
from ..extensions import db
from ..fields import clean_line, clean_text, gather
from ..models import Customer, Message, Queue, Repair, Ticket, User, preview_of, utcnow
from ..models.audit import record
from ..models.conversations import THREAD_STATUSES
from ..models.repairs import PRIORITIES
from .compose import MAX_BODY_CHARS
from .threads import default_subject, open_thread

# Where a recorded conversation took place. Not the customer panel: what a customer writes there arrives by itself.
RECORD_SOURCES = ("phone", "email", "sms", "chat", "web", "letter", "in_person")
SUBJECT_MAX = 255


def record_conversation(
    *,
    customer: Customer,
    source: str,
    body: str,
    author: User,
    subject: str = "",
    repair: Repair | None = None,
    ticket: Ticket | None = None,
    status: str = "open",
    queue: Queue | None = None,
    assignee: User | None = None,
    priority: str | None = None,
) -> Message:
    """Open a new thread holding what the customer said (an incoming message on `source`, written down by
    `author`); nothing is sent to anyone. Returns the message; flushed, the caller commits.

    The new thread goes to `queue` and `assignee` and gets `priority` (None for each: the ticket's queue and
    priority, else none and normal; nobody assigned).
    Refuses (ValidationFailed, nothing stored) an unknown source, status or priority, a switched-off assignee,
    an empty or overlong text, no subject where no repair or ticket names the thread, a repair or ticket of
    another customer, and an erased customer.
    """
    refuse_erased(customer)
    errors = {}
    if source not in RECORD_SOURCES:
        errors["source"] = _("Choose where the conversation took place.")
    if status not in THREAD_STATUSES:
        errors["status"] = _("Choose a status.")
    if priority is not None and priority not in PRIORITIES:
        errors["priority"] = _("Choose a priority.")
    if assignee is not None and not assignee.active:
        errors["assignee_id"] = _("This account is switched off.")
    body = gather(errors, clean_text, body, "body", MAX_BODY_CHARS, _l("Write what the customer said."))
    if repair is not None and repair.customer_id != customer.id:
        errors["repair_id"] = _("This repair belongs to another customer.")
    if ticket is not None and ticket.customer_id != customer.id:
        errors["ticket_id"] = _("This ticket belongs to another customer.")
    subject = gather(errors, clean_line, subject, "subject", SUBJECT_MAX) or default_subject(repair, ticket)
    if not subject and "subject" not in errors:
        errors["subject"] = _("Write a subject.")
    if errors:
        raise ValidationFailed(errors)

    now = utcnow()
    thread = open_thread(customer, subject=subject, repair=repair, ticket=ticket, source_channel=source,
                         author=author)
    message = Message(
        thread_id=thread.id, kind="message", direction="in", channel=source, author_customer_id=customer.id,
        author_user_id=author.id, sender={"email": customer.email, "sms": customer.phone}.get(source) or "",
        subject=subject, body_text=body, meta={"recorded_by": author.name}, created_at=now,
    )
    db.session.add(message)
    thread.status = status
    if priority is not None:
        thread.priority = priority
    if queue is not None:
        thread.queue_id = queue.id
    if assignee is not None:
        thread.assignee_id = assignee.id
    thread.closed_at = now if status == "closed" else None
    thread.last_inbound_at = thread.last_activity_at = now
    thread.last_message_preview = preview_of(body)
    record("thread.record", by=author, target=thread, source=source, queue_id=thread.queue_id,
           assignee_id=thread.assignee_id, priority=thread.priority)
    db.session.flush()
    return message
