"""Moving a customer's message to another of their threads, when it landed in the wrong one."""
from __future__ import annotations

from flask_babel import gettext as _

from ..customers import refuse_erased
from ..errors import ValidationFailed
from ..extensions import db
from ..formatting import sender_name
from ..i18n import quoted
from ..models import Message, Thread, User, preview_of, utcnow
from ..models.audit import record
from .threads import thread_label


def move_message(message: Message, to_thread: Thread, actor: User | str | None) -> Message:
    """Put a message the customer sent into `to_thread`; returns it. Flushed, the caller commits.

    Both threads get an event saying what moved where, the message loses its "may belong to" marker, and
    the move is audited; each thread's preview and status follow its latest message again. The message keeps
    its time, so it sits where it belongs in the other timeline.
    Refuses (ValidationFailed on "to_thread_id") anything but an incoming message, a move into the thread
    it is in, and a thread that is deleted or belongs to another customer, unless that customer has the
    phone the SMS came from (a family sharing one phone): then the message becomes theirs; and an erased customer.
    """
    refuse_erased(to_thread.customer, "to_thread_id")
    from_thread = message.thread
    if message.direction != "in" or message.kind != "message":
        raise ValidationFailed({"to_thread_id": _("Only a message from the customer can be moved.")})
    if to_thread.id == from_thread.id:
        raise ValidationFailed({"to_thread_id": _("The message is already in this thread.")})
    if to_thread.deleted_at is not None or not _sent_by_customer_of(message, to_thread):
        raise ValidationFailed({"to_thread_id": _("The message can only move to a thread of the customer who "
                                                  "sent it.")})

    now = utcnow()
    who, sms = sender_name(message), message.channel == "sms"  # the customer by name, not by their number
    message.thread = to_thread
    message.author_customer_id = to_thread.customer_id
    message.meta = {key: value for key, value in (message.meta or {}).items() if key != "may_belong_to"}
    # Whole sentences per channel, so translations can agree in gender ("SMS przeniesiony", "wiadomość przeniesiona").
    to_name, from_name = _named(to_thread), _named(from_thread)
    _event(from_thread, actor, now, _("SMS from %(who)s moved to %(thread)s.", who=who, thread=to_name) if sms
           else _("Message from %(who)s moved to %(thread)s.", who=who, thread=to_name))
    _event(to_thread, actor, now, _("SMS from %(who)s moved here from %(thread)s.", who=who, thread=from_name) if sms
           else _("Message from %(who)s moved here from %(thread)s.", who=who, thread=from_name))
    db.session.flush()
    db.session.expire(from_thread, ["messages"])
    db.session.expire(to_thread, ["messages"])
    left = [m for m in from_thread.messages if m.kind == "message"]
    from_thread.last_message_preview = preview_of(left[-1].body_text) if left else ""
    if left and left[-1].direction == "out":  # the moved message was what we owed an answer to
        from_thread.status = "waiting_customer"
    to_thread.last_activity_at = now
    to_thread.last_inbound_at = max(filter(None, (to_thread.last_inbound_at, message.created_at)))
    to_thread.last_message_preview = preview_of(message.body_text)
    to_thread.status, to_thread.closed_at = "waiting_us", None
    record("message.move", by=actor, target=message, from_thread=from_thread.id, to_thread=to_thread.id)
    return message


def _sent_by_customer_of(message: Message, thread: Thread) -> bool:
    if thread.customer_id is not None and thread.customer_id == message.thread.customer_id:
        return True
    return message.channel == "sms" and thread.customer is not None and thread.customer.phone == message.sender


def _named(thread: Thread) -> str:
    return quoted(thread_label(thread))


def _event(thread: Thread, actor: User | str | None, now, text: str) -> None:
    db.session.add(Message(thread_id=thread.id, kind="event", direction="internal", visible_to_customer=False,
                           author_user_id=actor.id if isinstance(actor, User) else None, body_text=text,
                           meta={"event": "message_moved"}, created_at=now))
