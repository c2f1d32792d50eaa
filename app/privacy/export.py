"""A customer's data as a ZIP (the right of access and to data portability): one JSON file and their files.

What is the customer's: their details and consents, their repairs and tickets with the repair log and the
reminders each repair had (sent, with the message's id, or skipped with the reason), and in their
threads every message they wrote or the shop sent them (with its deliveries and files), and their panel sign-ins.
Internal notes and system events are the shop's working notes about the case, not the customer's data, so
they are left out. The ZIP is built in a temporary file and files are copied in from disk piece by piece, so a
customer with gigabytes of photos does not fill the memory.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from datetime import date, datetime
from decimal import Decimal
from typing import IO

from sqlalchemy import and_, or_, select

from ..attachments import CHUNK, is_stored, open_stored, safe_filename
from ..extensions import db
from ..models import (
    AuditEvent, ConsentEvent, Customer, Delivery, Message, Repair, RepairEvent, SentReminder, Thread, Ticket, User,
    utcnow,
)
from ..models.audit import record

DATA_FILE = "customer.json"
CUSTOMERS_OWN = ("message", "auto_reply", "bounce")  # kinds of entries that are correspondence, not notes


def export_customer(customer: Customer, *, actor: User | str) -> IO[bytes]:
    """The customer's data as a ZIP in a temporary file (read from the start; deleted when closed), with the
    audit entry "customer.export" added to the session for the caller to commit."""
    archive = tempfile.TemporaryFile()
    write_export(customer, archive)
    archive.seek(0)
    record("customer.export", by=actor, target=customer)
    return archive


def write_export(customer: Customer, fileobj: IO[bytes]) -> None:
    """Write the customer's ZIP into `fileobj`: customer.json and attachments/<message id>/<file name>."""
    messages = _messages(customer)
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        files = {}
        for message in messages:
            files[message.id] = _add_files(archive, message)
        data = {
            "exported_at": _iso(utcnow()),
            "customer": _customer(customer),
            "consents": [_consent(event) for event in db.session.scalars(
                select(ConsentEvent).where(ConsentEvent.customer_id == customer.id).order_by(ConsentEvent.id))],
            "repairs": [_repair(repair) for repair in db.session.scalars(
                select(Repair).where(Repair.customer_id == customer.id).order_by(Repair.id))],
            "tickets": [_ticket(ticket) for ticket in db.session.scalars(
                select(Ticket).where(Ticket.customer_id == customer.id).order_by(Ticket.id))],
            "threads": _threads(messages, files),
            "panel_sign_ins": [{"at": _iso(event.created_at), "how": event.details.get("how"), "ip": event.ip}
                               for event in db.session.scalars(
                                   select(AuditEvent).where(AuditEvent.action == "panel.sign_in",
                                                            AuditEvent.target_type == "customers",
                                                            AuditEvent.target_id == customer.id)
                                   .order_by(AuditEvent.id))],
        }
        archive.writestr(DATA_FILE, json.dumps(data, ensure_ascii=False, indent=2, default=_json_value))


def _messages(customer: Customer) -> list[Message]:
    """What the customer wrote anywhere, and what the shop sent them in their threads (not notes and events)."""
    shown = and_(Thread.customer_id == customer.id, Message.direction == "out", Message.kind.in_(CUSTOMERS_OWN))
    return list(db.session.scalars(
        select(Message).join(Thread, Thread.id == Message.thread_id)
        .where(or_(shown, Message.author_customer_id == customer.id))
        .order_by(Message.thread_id, Message.created_at, Message.id)))


def _add_files(archive: zipfile.ZipFile, message: Message) -> list[dict]:
    listed, used = [], set()
    for attachment in message.attachments:
        entry = {"filename": attachment.filename, "content_type": attachment.content_type, "size": attachment.size}
        if is_stored(attachment.sha256):
            name = safe_filename(attachment.filename)
            if name in used:  # two files of one message with the same name
                name = f"{attachment.id}-{name}"
            used.add(name)
            entry["path"] = f"attachments/{message.id}/{name}"
            with open_stored(attachment.sha256) as source, archive.open(entry["path"], "w") as target:
                shutil.copyfileobj(source, target, CHUNK)  # copied in pieces, never whole in memory
        else:
            entry["path"] = None  # listed only: the mailbox did not store it, or it was deleted
        listed.append(entry)
    return listed


def _threads(messages: list[Message], files: dict[int, list[dict]]) -> list[dict]:
    threads: dict[int, dict] = {}
    for message in messages:
        thread = message.thread
        if thread.id not in threads:
            threads[thread.id] = {"id": thread.id, "subject": thread.subject, "created_at": _iso(thread.created_at),
                                  "repair": thread.repair.number if thread.repair else None,
                                  "ticket": thread.ticket.number if thread.ticket else None, "messages": []}
        threads[thread.id]["messages"].append(_message(message, files[message.id]))
    return list(threads.values())


def _message(message: Message, files: list[dict]) -> dict:
    return {
        "id": message.id, "created_at": _iso(message.created_at), "direction": message.direction,
        "kind": message.kind, "channel": message.channel, "from": message.sender or None,
        "author": message.author.name if message.author else None, "recipients": message.recipients or {},
        "contact_person": (message.meta or {}).get("contact_name"),  # who of a company wrote, or was written to
        "subject": message.subject, "text": message.body_text, "quoted_text": message.quoted_text or None,
        "html": message.body_html, "attachments": files,
        "channel_texts": (message.meta or {}).get("texts") or {},  # what the SMS and panel said, when not `text`
        # The shop's own notices about the message went to the shop, not to the customer.
        "deliveries": [_delivery(d) for d in message.deliveries if d.purpose != "shop_notice"],
    }


def _delivery(delivery: Delivery) -> dict:
    return {"channel": delivery.channel, "purpose": delivery.purpose, "status": delivery.status,
            "recipient": delivery.recipient, "cc": delivery.cc or [], "error": delivery.error,
            "queued_at": _iso(delivery.created_at), "sent_at": _iso(delivery.sent_at),
            "delivered_at": _iso(delivery.delivered_at)}


def _customer(customer: Customer) -> dict:
    return {"id": customer.id, "name": customer.name, "email": customer.email, "phone": customer.phone,
            "extra_emails": [extra.address for extra in customer.extra_emails],
            "kind": customer.kind, "nip": customer.nip, "address": customer.address,
            "contacts": [{"name": contact.name, "email": contact.email, "phone": contact.phone,
                          "sms_stopped_at": _iso(contact.sms_stopped_at),
                          "email_bounced_at": _iso(contact.email_bounced_at),
                          "created_at": _iso(contact.created_at)} for contact in customer.contacts],
            "sms_informational": customer.sms_informational, "marketing_consent": customer.marketing_consent,
            "language": customer.language, "vocative": customer.vocative,
            "panel_state": customer.panel_state, "panel_last_sign_in_at": _iso(customer.panel_last_sign_in_at),
            "email_bounced_at": _iso(customer.email_bounced_at), "created_at": _iso(customer.created_at)}


def _consent(event: ConsentEvent) -> dict:
    return {"kind": event.kind, "value": event.value, "source": event.source, "note": event.note,
            "at": _iso(event.created_at)}


def _repair(repair: Repair) -> dict:
    log = db.session.scalars(select(RepairEvent).where(RepairEvent.repair_id == repair.id).order_by(RepairEvent.id))
    return {"number": repair.number, "device": repair.device, "description": repair.description,
            "status": repair.status.name, "price_estimate": repair.price_estimate, "pickup_date": repair.pickup_date,
            "created_at": _iso(repair.created_at), "status_changed_at": _iso(repair.status_changed_at),
            "log": [{"at": _iso(event.created_at), "kind": event.kind, "text": event.text} for event in log],
            "reminders": [_reminder(sent) for sent in db.session.scalars(
                select(SentReminder).where(SentReminder.repair_id == repair.id).order_by(SentReminder.id))]}


def _reminder(sent: SentReminder) -> dict:
    """A reminder's go for the repair; `message_id` is the message's id under "threads" when it was sent."""
    reminder = sent.reminder
    return {"at": _iso(sent.created_at), "template": reminder.template.name, "status": reminder.status.name,
            "days": reminder.days, "in_status_since": _iso(sent.status_since), "outcome": sent.outcome,
            "reason": sent.reason or None, "message_id": sent.message_id}


def _ticket(ticket: Ticket) -> dict:
    return {"number": ticket.number, "subject": ticket.subject, "description": ticket.description,
            "status": ticket.status, "created_at": _iso(ticket.created_at)}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _json_value(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
