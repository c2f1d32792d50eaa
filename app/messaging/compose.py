"""Writing to a customer: one message, checked against every chosen channel, queued as one delivery per channel."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, update

from ..attachments import StoredFile
from ..channels import get_channel
from ..channels.sms_text import MAX_BODY, sms_body
from ..customers import ThroughContact, refuse_erased, sms_stopped
from ..errors import ValidationFailed
from ..extensions import db
from ..fields import clean_line, clean_text, gather
from ..models import (
    Attachment, ContactPerson, Customer, Delivery, Message, Repair, Shop, Thread, Ticket, preview_of, utcnow,
)
from ..models.audit import record
from ..models.conversations import CHANNELS
from ..models.templates import MessageTemplate
from .templates import refusal_for, template_files
from .thread_actions import give_back, take_on_reply
from .threads import context_thread, default_subject, open_thread

MAX_CC = 30
MAX_SCHEDULE_AHEAD = timedelta(days=14)
MAX_BODY_CHARS = 50_000
SUBJECT_MAX = 255  # a thread's subject column


# compose()'s `contact` when the caller names none: the repair's contact person, when it has one.
REPAIR_CONTACT = "repair"


def _contact_problems(contact: ContactPerson, channels: Sequence[str]) -> dict[str, str]:
    problems = {}
    if "email" in channels and not contact.email:
        problems["channels.email"] = _("%(name)s has no e-mail address.", name=contact.name)
    if "sms" in channels and not contact.phone:
        problems["channels.sms"] = _("%(name)s has no phone number.", name=contact.name)
    elif "sms" in channels and (contact.sms_stopped_at is not None or sms_stopped(contact.phone)):
        problems["channels.sms"] = _("%(name)s turned SMS off (replied STOP).", name=contact.name)
    return problems


def channel_problems(customer: Customer, channels: Sequence[str], shop: Shop,
                     contact: ContactPerson | None = None) -> dict[str, str]:
    """For each chosen channel that cannot reach the customer (or their contact person), the reason (keyed
    `channels.<name>`)."""
    if contact is not None:
        problems = _contact_problems(contact, channels)
        return {**channel_problems(ThroughContact(customer, contact), [c for c in channels if f"channels.{c}" not in
                                                                 problems], shop), **problems}
    problems = {}
    for name in channels:
        if name not in CHANNELS:
            problems[f"channels.{name}"] = _("Unknown channel.")
            continue
        reason = get_channel(name).unreachable_reason(customer, shop)
        if reason:
            problems[f"channels.{name}"] = reason
    return problems


def _clean_cc(cc: Sequence[str]) -> list[str]:
    addresses = [a.strip() for a in cc if a and a.strip()]
    if len(addresses) > MAX_CC:
        raise ValidationFailed({"cc": _("At most %(n)d addresses in CC.", n=MAX_CC)})
    clean = []
    for address in addresses:
        try:
            clean.append(validate_email(address, check_deliverability=False).normalized.lower())
        except EmailNotValidError as exc:
            raise ValidationFailed({"cc": _("%(address)s: %(reason)s", address=address, reason=str(exc))}) from None
    return list(dict.fromkeys(clean))


def sender_address(thread: Thread) -> str | None:
    """The address a reply to a thread without a customer goes to: who last wrote to it by e-mail; None when
    nobody did (the thread came in another way, or its mail had no sender address)."""
    return db.session.scalar(
        select(Message.sender).where(Message.thread_id == thread.id, Message.kind == "message",
                                     Message.direction == "in", Message.channel == "email", Message.sender != "")
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))


def default_channels(customer: Customer, thread: Thread | None, shop: Shop) -> list[str]:
    """Channels to tick first: how the customer last wrote in this thread, else what we last used, else e-mail.

    A channel that cannot reach the customer now (SMS after they replied STOP) is passed over. Each channel is
    checked once, however long the thread (a check may ask the database).
    """
    reachable: dict[str, bool] = {}

    def can_reach(name: str) -> bool:
        if name not in reachable:
            reachable[name] = not channel_problems(customer, [name], shop)
        return reachable[name]

    if thread is not None:
        for message in reversed(thread.messages):
            if message.kind != "message":
                continue
            if message.direction == "in" and message.channel in CHANNELS:
                if can_reach(message.channel):
                    return [message.channel]
            if message.direction == "out" and message.meta.get("channels"):
                usable = [c for c in message.meta["channels"] if can_reach(c)]
                if usable:
                    return usable
    for name in CHANNELS:
        if can_reach(name):
            return [name]
    return []


def compose(
    *,
    customer: Customer | None,
    channels: Sequence[str],
    body: str,
    author=None,
    subject: str = "",
    repair: Repair | None = None,
    ticket: Ticket | None = None,
    thread: Thread | None = None,
    cc: Sequence[str] = (),
    attachments: Sequence[StoredFile] = (),
    send_at: datetime | None = None,
    sms_plain: bool = False,
    automatic: bool = False,
    source: str = "staff",
    template: MessageTemplate | None = None,
    texts: Mapping[str, str] | None = None,
    contact: ContactPerson | None | str = REPAIR_CONTACT,
) -> Message:
    """Store a message to `customer` and one scheduled delivery per channel; nothing leaves before `send_at`.

    `send_at` None means "after the shop's undo window". Refuses (ValidationFailed, nothing stored) when a
    channel cannot reach the customer, the body is empty or too long for SMS, CC or the time are wrong, or
    the thread, repair or ticket belongs to someone else, or the `template` (whose files go with the message on
    e-mail and panel) is marketing and the customer has not agreed to it.

    Without a `customer`, the message answers a `thread` that has none (a partner's or supplier's mail) by e-mail
    to its last e-mail sender (sender_address), and is refused when there is no such thread or sender, on any
    other channel, and with a template (written for a customer).

    `texts` are channels' own texts (a template's SMS and panel texts, keyed "sms" and "portal"): the message
    keeps `body` as its text (the e-mail's, and what staff read in the thread) and the chosen channels' own texts
    in `meta["texts"]`, which each channel reads (sms_text, panel_body_html). Kept on the message rather than
    looked up in the template, so a template edited or deleted later does not change what was sent.

    `contact` is the company's contact person the e-mail and SMS go to (their address and number; None: the
    company's own); by default the repair's contact person, when the message is about a repair that has one.
    Refused when it is not the customer's, or has no address or number for a chosen channel.
    """
    shop = Shop.current()
    now = utcnow()
    channels = list(dict.fromkeys(channels))
    errors: dict[str, str] = {}
    to_sender = None
    if customer is not None:
        refuse_erased(customer)
    elif thread is None or thread.customer_id is not None:
        raise ValidationFailed({"customer_id": _("Choose a customer.")})
    else:
        to_sender = sender_address(thread)

    if not channels:
        errors["channels"] = _("Choose at least one channel.")
    if isinstance(contact, str):  # REPAIR_CONTACT
        about = repair or (thread.repair if thread is not None else None)
        contact = about.contact if about is not None and customer is not None else None
    if contact is not None and (customer is None or contact.customer_id != customer.id):
        errors["contact_id"] = _("Not a contact person of this customer.")
    elif customer is not None:
        errors.update(channel_problems(customer, channels, shop, contact))
    else:
        for name in channels:
            if name != "email":
                errors["channels"] = _("A thread without a customer can only be answered by e-mail.")
            elif reason := get_channel("email").sender_unreachable_reason(to_sender):
                errors["channels.email"] = reason

    try:
        body = clean_text(body, "body", MAX_BODY_CHARS, _l("Write a message."))
    except ValidationFailed as exc:
        errors.update(exc.fields)
    own_texts = {}
    for name, text in (texts or {}).items():
        if name in channels and name != "email":
            own_texts[name] = gather(errors, clean_text, text, "body", MAX_BODY_CHARS)
    if "body" not in errors and "sms" in channels \
            and len(sms_body(own_texts.get("sms") or body, sms_plain)) > MAX_BODY:
        errors["body"] = _("An SMS can have at most %(n)d characters.", n=MAX_BODY)

    if thread is not None:
        if thread.customer_id != getattr(customer, "id", None) or thread.deleted_at is not None:
            errors["thread_id"] = _("This thread belongs to another customer.")
        repair = repair or thread.repair
        ticket = ticket or thread.ticket
    if repair is not None and repair.customer_id != getattr(customer, "id", None):
        errors["repair_id"] = _("This repair belongs to another customer.")
    if ticket is not None and ticket.customer_id != getattr(customer, "id", None):
        errors["ticket_id"] = _("This ticket belongs to another customer.")

    subject = gather(errors, clean_line, subject, "subject", SUBJECT_MAX)  # no CR/LF can reach a mail header
    if send_at is not None:
        if send_at <= now:
            errors["send_at"] = _("Choose a time in the future.")
        elif send_at > now + MAX_SCHEDULE_AHEAD:
            errors["send_at"] = _("A message can be scheduled at most 14 days ahead.")
    try:
        cc_clean = _clean_cc(cc) if "email" in channels else []
    except ValidationFailed as exc:
        errors.update(exc.fields)
    if template is not None and customer is None:
        errors["template_id"] = _("Templates are written for customers: write this reply yourself.")
    elif template is not None and (refusal := refusal_for(template, customer)):
        errors["template_id"] = refusal
    if errors:
        raise ValidationFailed(errors)
    if template is not None and {"email", "portal"} & set(channels):
        attachments = [*attachments, *template_files(template, repair=repair, shop=shop)]

    opened = False
    if thread is None:
        thread = context_thread(customer, repair, ticket)
        if thread is None:
            thread, opened = open_thread(
                customer, subject=subject or default_subject(repair, ticket), repair=repair, ticket=ticket,
                source_channel=channels[0], author=author,
            ), True
    subject = subject or thread.subject or default_subject(repair, ticket) or shop.name

    due = send_at or now + timedelta(seconds=shop.undo_seconds)
    message = Message(
        thread_id=thread.id,
        kind="message",
        direction="out",
        author_user_id=getattr(author, "id", None),
        subject=subject,
        body_text=body,
        body_format="markdown",
        visible_to_customer=True,  # written to the customer: the panel shows it once a channel carried it
        automatic=automatic,
        meta={"channels": channels, "sms_plain": bool(sms_plain),
              **({"contact_id": contact.id, "contact_name": contact.name} if contact is not None else {}),
              **({"template_id": template.id} if template is not None else {}),
              **({"texts": {name: text for name, text in own_texts.items() if text}}
                 if any(own_texts.values()) else {})},
        send_at=due,
        created_at=now,
    )
    message.attachments = [
        Attachment(filename=f.filename, content_type=f.content_type, size=f.size, sha256=f.sha256) for f in attachments
    ]
    db.session.add(message)
    db.session.flush()
    for name in channels:
        db.session.add(
            Delivery(
                message_id=message.id,
                channel=name,
                status="scheduled",
                recipient=to_sender if customer is None else
                {"email": (contact or customer).email, "sms": (contact or customer).phone}.get(name)
                or str(customer.id),
                cc=cc_clean if name == "email" else [],
                next_attempt_at=due,
                created_at=now,
            )
        )
    _touch_thread(thread, message, author, now, opened)
    record("message.send", by=author or source, target=message, channels=channels,
           thread_id=thread.id, scheduled=send_at is not None)
    db.session.flush()
    return message


def _touch_thread(thread: Thread, message: Message, author, now: datetime, opened: bool) -> None:
    thread.last_activity_at = now
    thread.last_message_preview = preview_of(message.body_text)
    thread.unread = False
    if thread.status != "closed" or not message.automatic:
        thread.status, thread.closed_at = "waiting_customer", None
    if author is not None:
        if opened:
            thread.assignee_id = author.id  # a thread one opens is one's own; no event needed to say so
        else:
            take_on_reply(thread, author, message)
        if thread.first_response_at is None and thread.last_inbound_at is not None:
            thread.first_response_at = now


def undo_refusal(message: Message, now: datetime | None = None) -> str | None:
    """Why `message` cannot be taken back, or None when it can.

    Only a message staff wrote to a customer can be undone (never a customer's mail or SMS, a note, an event or
    an automatic notification), and only while nothing of it has been handed to a channel: every delivery not
    cancelled still scheduled or queued and never tried, and its time (the undo window or "send later") ahead.
    """
    now = now or utcnow()
    if (message.kind != "message" or message.direction != "out" or message.author_user_id is None
            or message.automatic or "forward" in message.meta or "panel" in message.meta
            or any(d.purpose != "message" for d in message.deliveries)):
        return _("Only a message written by staff and not sent yet can be taken back.")
    waiting = [d for d in message.deliveries if d.status != "cancelled"]  # one channel may have been cancelled
    if (not waiting or message.send_at is None or message.send_at <= now
            or any(d.status not in ("scheduled", "queued") or d.attempts for d in waiting)):
        return _("Too late to undo: the message is already on its way.")
    return None


def undo(message: Message, actor=None) -> dict:
    """Take back a message none of whose deliveries has started; returns what was written, to edit again.

    Refuses (ValidationFailed on "undo", nothing changed) anything `undo_refusal` refuses. Once a delivery has
    been claimed for sending it is refused too: the cancelling UPDATE is conditional, so a dispatcher claiming
    at the same moment cannot slip through (the caller rolls back).
    """
    now = utcnow()
    if (refusal := undo_refusal(message, now)) is not None:
        raise ValidationFailed({"undo": refusal})
    waiting = [d for d in message.deliveries if d.status != "cancelled"]
    stopped = db.session.execute(
        update(Delivery)
        .where(Delivery.message_id == message.id, Delivery.status.in_(("scheduled", "queued")),
               Delivery.attempts == 0)
        .values(status="cancelled", cancelled_at=now)
    ).rowcount
    if stopped != len(waiting):
        raise ValidationFailed({"undo": _("Too late to undo: the message is already on its way.")})
    draft = {
        "body": message.body_text,
        "subject": message.subject,
        "channels": message.meta.get("channels", []),
        "sms_plain": bool(message.meta.get("sms_plain")),
        "cc": ", ".join(next((d.cc for d in message.deliveries if d.channel == "email"), [])),
        "thread_id": message.thread_id,
    }
    thread = message.thread
    give_back(message)
    record("message.undo", by=actor, target=message, thread_id=thread.id, channels=draft["channels"],
           written_by=message.author_user_id)
    db.session.execute(delete(Delivery).where(Delivery.message_id == message.id))
    db.session.delete(message)
    db.session.flush()
    db.session.expire(thread, ["messages"])
    if not thread.messages:
        db.session.delete(thread)  # it was opened for this message alone
    else:
        last = thread.messages[-1]
        thread.last_activity_at = last.created_at
        thread.last_message_preview = preview_of(last.body_text)
    db.session.flush()
    return draft
