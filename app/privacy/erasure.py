"""Erasure (the right to be forgotten): a customer anonymised, their conversations kept only as counts and dates.

What goes: the customer's name (replaced by "Anonymised customer #id"), contacts, notes, panel password and
links; in every thread of theirs (and any message they wrote elsewhere) the texts, subjects, senders, recipients
and files of every message, notes and events included; the addresses and error texts of the deliveries; the
raw copies of their mail and SMS, and held mail and SMS from their addresses and number; the fault descriptions
and logs of their repairs and tickets; their contacts wherever the audit trail quoted them.
What stays, so the statistics still add up: the customer row, threads, messages (empty, with kind, direction,
channel and times), deliveries (channel, status, times), repairs (number, device model, status, dates), tickets
(number, status, dates), consent events (kind, value, source, time) and the audit trail of who did what.
"""
from __future__ import annotations

import re

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import Text, cast, delete, func, or_, select, text, update

from ..attachments import delete_stored, digest_of
from ..errors import ValidationFailed
from ..extensions import db
from ..models import (
    Attachment, AuditEvent, ConsentEvent, ContactPerson, Customer, CustomerEmail, Delivery, DeliveryEvent,
    InboundItem, KeptDraft, Message, MessageRef, PanelToken, Repair, RepairEvent, Shop, TemplateAttachment, Thread,
    Ticket, User, WebRequest, utcnow,
)
from ..models.audit import record
from ..models.conversations import NAMES_CUSTOMER
from ..models.deliveries import WAITING_STATUSES
from ..search import SEARCH_TABLE

ERASED = "[erased]"
_CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


def anonymised_name(customer: Customer) -> str:
    """The name an erased customer keeps, in the shop's language."""
    with force_locale(Shop.current().locale):
        return _("Anonymised customer #%(id)s", id=customer.id)


def erase_customer(customer: Customer, *, actor: User, confirmation: str) -> None:
    """Anonymise `customer` as the module docstring says, audit it as "customer.erase", commit, then delete the
    stored files no other message or template uses.

    Refuses (ValidationFailed on "confirmation") unless `confirmation` is the customer's name as shown (case and
    spacing aside), and a customer already anonymised.
    """
    if customer.anonymized_at is not None:
        raise ValidationFailed({"confirmation": _("This customer is anonymised already.")})
    if " ".join((confirmation or "").split()).casefold() != " ".join(customer.name.split()).casefold():
        raise ValidationFailed({"confirmation": _("Type the customer's name exactly as shown to confirm.")})

    now = utcnow()
    contacts = _contacts(customer)
    threads = select(Thread.id).where(Thread.customer_id == customer.id)
    thread_count = db.session.scalar(select(func.count()).select_from(threads.subquery()))
    message_ids = list(db.session.scalars(select(Message.id).where(
        or_(Message.thread_id.in_(threads), Message.author_customer_id == customer.id))))
    files = _erase_messages(message_ids, now)
    db.session.execute(delete(MessageRef).where(MessageRef.thread_id.in_(threads)))
    db.session.execute(update(Thread).where(Thread.customer_id == customer.id)
                       .values(subject="", last_message_preview=""))
    _erase_inbound(message_ids, _addresses(customer))
    _erase_repairs(customer)
    _erase_customer_row(customer, now)
    db.session.execute(delete(KeptDraft).where(KeptDraft.customer_id == customer.id))  # Undo's, of a message to them
    _scrub_audit_trail(customer, contacts)
    _scrub_naming_messages(customer, contacts, now)
    record("customer.erase", by=actor, target=customer, threads=thread_count, messages=len(message_ids))
    db.session.flush()
    _purge_search_index()
    db.session.commit()
    _delete_unused_files(files)


def _addresses(customer: Customer) -> list[str]:
    """The customer's e-mail addresses and phone number, and their contact people's, as stored (lower-case,
    E.164)."""
    found = [customer.email, customer.phone, *(extra.address for extra in customer.extra_emails),
             *(value for contact in customer.contacts for value in (contact.email, contact.phone))]
    return [value for value in found if value]


def _contacts(customer: Customer) -> list[str]:
    """Every text that identifies the customer: name, addresses, phone (also without its "+"), a company's NIP and
    its contact people's names, addresses and phones."""
    found = [customer.name, *_addresses(customer), *(contact.name for contact in customer.contacts)]
    found += [phone.lstrip("+") for phone in (customer.phone, *(contact.phone for contact in customer.contacts))
              if phone]
    if customer.nip:
        found.append(customer.nip)
    return [value for value in found if len(value) >= 3]


def _chunks(ids: list[int]):
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


def _erase_messages(message_ids: list[int], now) -> set[str]:
    """Empty the messages and their deliveries, drop their files' rows; returns the files' SHA-256s."""
    files: set[str] = set()
    for chunk in _chunks(message_ids):
        files.update(db.session.scalars(
            select(Attachment.sha256).where(Attachment.message_id.in_(chunk), Attachment.sha256.is_not(None))))
        db.session.execute(delete(Attachment).where(Attachment.message_id.in_(chunk)))
        db.session.execute(delete(MessageRef).where(MessageRef.message_id.in_(chunk)))
        db.session.execute(update(Message).where(Message.id.in_(chunk)).values(
            subject="", body_text="", body_html=None, quoted_text="", sender="", recipients={}, meta={},
            redacted_at=now))
        delivery_ids = select(Delivery.id).where(Delivery.message_id.in_(chunk)).scalar_subquery()
        # What was still waiting to go has nowhere to go now.
        db.session.execute(update(Delivery).where(Delivery.message_id.in_(chunk),
                                                  Delivery.status.in_(WAITING_STATUSES))
                           .values(status="cancelled", cancelled_at=now))
        db.session.execute(update(Delivery).where(Delivery.message_id.in_(chunk)).values(
            recipient="", cc=[], error=None, error_raw=None))
        db.session.execute(update(DeliveryEvent).where(DeliveryEvent.delivery_id.in_(delivery_ids)).values(detail={}))
    return files


def _erase_inbound(message_ids: list[int], addresses: list[str]) -> None:
    """Raw copies of their received mail and SMS emptied; held and discarded ones from their addresses deleted."""
    for chunk in _chunks(message_ids):
        db.session.execute(update(InboundItem).where(InboundItem.message_id.in_(chunk)).values(
            raw=None, sender="", subject="", reason=None, error=None, message_id_header=None,
            copy_key=None))
    addresses = [value.lower() for value in addresses]
    db.session.execute(delete(InboundItem).where(InboundItem.message_id.is_(None),
                                                 func.lower(InboundItem.sender).in_(addresses)))


def _erase_repairs(customer: Customer) -> None:
    repairs = select(Repair.id).where(Repair.customer_id == customer.id).scalar_subquery()
    db.session.execute(update(Repair).where(Repair.customer_id == customer.id).values(description="", access_code=None))
    db.session.execute(update(RepairEvent).where(RepairEvent.repair_id.in_(repairs)).values(text=""))
    db.session.execute(update(Ticket).where(Ticket.customer_id == customer.id).values(subject="", description=""))


def _erase_customer_row(customer: Customer, now) -> None:
    db.session.execute(delete(CustomerEmail).where(CustomerEmail.customer_id == customer.id))
    db.session.execute(update(Repair).where(Repair.customer_id == customer.id).values(contact_id=None))
    db.session.execute(delete(ContactPerson).where(ContactPerson.customer_id == customer.id))
    db.session.execute(delete(PanelToken).where(PanelToken.customer_id == customer.id))
    # Requests from the public form naming the customer's contact: whoever sent them, they carry that contact.
    db.session.execute(delete(WebRequest).where(WebRequest.customer_id == customer.id))
    db.session.execute(update(ConsentEvent).where(ConsentEvent.customer_id == customer.id).values(note=""))
    db.session.expire(customer, ["extra_emails", "contacts"])
    customer.nip, customer.address = None, ""
    customer.name = anonymised_name(customer)
    customer.email = customer.phone = None
    customer.crm_note = ""
    customer.vocative = None  # a form of their name
    customer.sms_informational = customer.marketing_consent = False
    customer.panel_state, customer.panel_password_hash = "none", None
    customer.panel_session_version = (customer.panel_session_version or 0) + 1  # any open panel session ends
    customer.email_bounced_at = customer.email_bounce_reason = None
    customer.anonymized_at = now


def _scrub_audit_trail(customer: Customer, contacts: list[str]) -> None:
    """Keep who did what, but not the customer's contacts where an entry quoted them (the sender of a discarded
    mail, the number of an SMS keyword) nor the addresses they used the panel from."""
    panel_actor = f"customer:{customer.id}"
    db.session.execute(update(AuditEvent).where(AuditEvent.actor == panel_actor).values(ip=None))
    # Details are JSON, which may escape letters: compare in Python, not with LIKE. An erasure is rare.
    rows = db.session.execute(select(AuditEvent.id, AuditEvent.actor, AuditEvent.details)).yield_per(1000)
    pattern = re.compile("|".join(re.escape(c) for c in sorted(contacts, key=len, reverse=True)), re.IGNORECASE)
    changes = []
    for event_id, actor, details in rows:
        new_actor, new_details = _scrub(actor, pattern), _scrub(details, pattern)
        if (new_actor, new_details) != (actor, details):
            changes.append({"id": event_id, "actor": new_actor, "details": new_details})
    for change in changes:
        db.session.execute(update(AuditEvent).where(AuditEvent.id == change["id"])
                           .values(actor=change["actor"], details=change["details"]))


def _scrub_naming_messages(customer: Customer, contacts: list[str], now) -> None:
    """Messages of other threads that name the customer (an expired request from the public form gave their
    contact, its note their name): the customer's name and contacts are cut out of them, the rest stays for the
    thread's owner to read."""
    if not contacts:
        return
    pattern = re.compile("|".join(re.escape(c) for c in sorted(contacts, key=len, reverse=True)), re.IGNORECASE)
    naming = db.session.scalars(select(Message).where(Message.meta[NAMES_CUSTOMER].as_integer() == customer.id))
    for message in naming.all():
        message.body_text, message.sender = _scrub(message.body_text, pattern), _scrub(message.sender, pattern)
        message.subject = _scrub(message.subject, pattern)
        message.meta = {key: value for key, value in (message.meta or {}).items() if key != NAMES_CUSTOMER}
        message.redacted_at = now
    db.session.flush()


def _scrub(value, contacts: re.Pattern):
    """`value` (text or JSON-like) with every contact replaced by "[erased]"."""
    if isinstance(value, str):
        return contacts.sub(ERASED, value)
    if isinstance(value, dict):
        return {key: _scrub(item, contacts) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, contacts) for item in value]
    return value


def _purge_search_index() -> None:
    """The search triggers rewrote the threads' documents; on SQLite, FTS5 keeps the old words in its index
    segments until they merge, so merge them now."""
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(text(f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}) VALUES ('optimize')"))


def _delete_unused_files(files: set[str]) -> None:
    """Delete the stored files nothing else uses any more: the same content may also be another message's file, a
    template's, the shop's logo (a customer's reply can carry it back inline), a request from the public form still
    waiting for its code, or a draft kept by Undo."""
    logo = digest_of(Shop.current().panel_logo_path)
    for sha256 in files - {logo}:
        if not _file_in_use(sha256):
            delete_stored(sha256)


def _file_in_use(sha256: str) -> bool:
    as_text = f"%{sha256}%"
    return any(db.session.scalar(select(func.count()).select_from(query)) for query in (
        select(Attachment.id).where(Attachment.sha256 == sha256).subquery(),
        select(TemplateAttachment.id).where(TemplateAttachment.sha256 == sha256).subquery(),
        select(WebRequest.id).where(cast(WebRequest.attachments, Text).like(as_text)).subquery(),
        select(KeptDraft.token).where(KeptDraft.data.like(as_text)).subquery(),
    ))
