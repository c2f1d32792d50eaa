"""Received mail into the shop's threads: stored once, classified, threaded, or held for staff with the reason.

Functions here add rows to the session and never commit: the poller commits a batch together with its IMAP
cursor, the held-mail page commits a staff decision with its audit record.
"""
from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..attachments import is_stored, refusal, store
from ..customers import NAME_MAX, contact_meta, contact_writing_from, create_customer, refuse_erased
from ..errors import ValidationFailed
from ..extensions import db
from ..mail_ids import parse_message_id
from ..messaging.threads import open_thread
from ..models import (
    Attachment, Customer, CustomerEmail, Delivery, DeliveryEvent, InboundItem, Mailbox, Message, MessageRef, Shop,
    Thread, User, preview_of, utcnow,
)
from ..models.audit import record
from . import batch
from .charsets import decode_words
from .classify import is_auto_reply, is_loop, is_trusted
from .masking import mask_parsed_mail, mask_raw_mail
from .parse import (
    ParsedMail, ParserFailed, UnparseableMail, compress, decompress, drop_nul, parse_mail, read_mails,
)
from .rules import Incoming, apply_rules
from .sms import accept_held_sms
from .threading import find_thread, thread_by_token

log = logging.getLogger(__name__)

OUTCOMES = ("threaded", "new_thread", "held", "duplicate", "error")
HELD_STATUSES = ("held", "error")  # items waiting for a staff decision (the held list)
# Why an attachment was listed and not stored (Attachment.skipped_reason); the thread view words them.
NOT_STORED, OVER_QUOTA, PROGRAM = "not stored", "over quota", "program"
# Delivery statuses a bounce may replace: the mail left us, and a bounce proves it did not arrive.
BOUNCEABLE = ("sending", "sent", "delivered")
_LONG_TEXT = 100_000  # a diagnostic or error kept in full up to this
# Why mail was held, stored in the shop's language for the held list and the API.
UNREADABLE = _l("The mail could not be read.")
LOOP = _l("Our own mail came back (a mail loop); it was not threaded.")
AUTOMATIC_UNTHREADED = _l("An automatic reply that belongs to no thread.")
UNKNOWN_SENDER = _l("Unknown sender: not a customer's address nor a trusted domain.")
NO_NEW_THREADS = _l("No thread matches and this mailbox does not open new threads.")
UNKNOWN_BOUNCE = _l("A bounce for mail we cannot find.")


@dataclass
class InboundOutcome:
    """What record_mail decided: `status` (one of OUTCOMES), the stored item, and the thread it went to."""

    status: str
    item: InboundItem
    thread: Thread | None = None


# --- receiving ----------------------------------------------------------------------------------


def record_mail(mailbox: Mailbox, raw: bytes, *, uidvalidity: int | None, uid: int | None) -> InboundOutcome:
    """Store one fetched mail once and put it where it belongs: a thread, a new thread, or the held list.

    A UID already fetched, or the same mail (same Message-ID and content; or no Message-ID and the same content)
    fetched another way, is a "duplicate". Mail that cannot be parsed is kept raw as an "error" item. Adds to
    the session, never commits.
    """
    return _record_read(mailbox, raw, read_mails([raw])[0], uidvalidity, uid)


def record_batch(mailbox: Mailbox, mails: list[tuple[int, bytes]], uidvalidity: int | None,
                 read: list[ParsedMail | Exception] | None = None) -> list[InboundOutcome]:
    """record_mail for each of a poll batch's mails (UID, raw), in order, given what read_mails made of them
    (read here when not given); what routing them reads is read for the whole batch at once
    (app/inbound/batch.py). Adds to the session, never commits."""
    read = read_mails([raw for _uid, raw in mails]) if read is None else read
    parsed = [(uid, mail if isinstance(mail, ParsedMail) else None) for (uid, _raw), mail in zip(mails, read)]
    with batch.preloaded(mailbox.id, uidvalidity, parsed):
        outcomes = [_record_read(mailbox, raw, mail, uidvalidity, uid) for (uid, raw), mail in zip(mails, read)]
        _write_deferred()
    return outcomes


def _record_read(mailbox: Mailbox, raw: bytes, mail: ParsedMail | Exception, uidvalidity: int | None,
                 uid: int | None) -> InboundOutcome:
    if isinstance(mail, Exception):
        known = _fetched_before(mailbox, uidvalidity, uid, None)
        if known is not None:
            return InboundOutcome("duplicate", known, _thread_of(known))
        if not isinstance(mail, UnparseableMail):
            log.error("mailbox %s: parsing UID %s failed", mailbox.id, uid, exc_info=mail)
        error = str(mail) if isinstance(mail, (UnparseableMail, ParserFailed)) else f"{type(mail).__name__}: {mail}"
        item = record_fetch_error(mailbox, raw, uidvalidity, uid, error=error)
        batch.remember_item(item)
        return InboundOutcome("error", item)
    if mask_parsed_mail(mail):  # card numbers are never stored, not even in the raw copy
        raw = mask_raw_mail(raw)

    item = InboundItem(
        source="email", mailbox_id=mailbox.id, uidvalidity=uidvalidity, uid=uid,
        message_id_header=batch.message_id_header(mail), content_hash=mail.content_hash,
        sender=mail.from_address[:320], subject=mail.subject[:998], received_at=utcnow(),
    )
    earlier = _fetched_before(mailbox, uidvalidity, uid, mail)
    if earlier is not None and (earlier.mailbox_id, earlier.uidvalidity, earlier.uid) == (mailbox.id, uidvalidity, uid):
        return InboundOutcome("duplicate", earlier, _thread_of(earlier))  # this very UID: nothing to add
    if earlier is not None:
        _write_deferred()  # a copy earlier in the same batch may still wait for its message
        if earlier.id is None:  # or for its own row
            db.session.flush()
        item.status, item.message_id = "duplicate", earlier.message_id
        item.reason = f"#{earlier.id}"  # the item this one repeats
        _add_copy_facts(earlier, mail, mailbox)
        outcome = InboundOutcome("duplicate", item, _thread_of(earlier))
    else:
        # The mail's own item: the unique copy key lets only one item per mail be it (see InboundItem).
        item.raw, item.copy_key = compress(raw), batch.copy_key(mail)
        outcome = route(item, mail, mailbox)
    db.session.add(item)  # added once decided: one INSERT, and no flush of it before each routing query
    batch.remember_item(item)
    return outcome


def record_fetch_error(mailbox: Mailbox, raw: bytes, uidvalidity: int | None, uid: int | None,
                       error: str) -> InboundItem:
    """Keep a mail that could not be read: raw (compressed), with the error, on the held list as "error"."""
    raw = mask_raw_mail(raw)
    sender, subject = drop_nul(_peek(raw))
    error = drop_nul(error)
    item = InboundItem(
        source="email", mailbox_id=mailbox.id if mailbox is not None else None, uidvalidity=uidvalidity, uid=uid,
        content_hash=hashlib.sha256(raw).hexdigest(), sender=sender[:320], subject=subject[:998],
        raw=compress(raw), status="error", error=error[:_LONG_TEXT], received_at=utcnow(),
    )
    item.reason = _in_shop_language(UNREADABLE)
    db.session.add(item)
    return item


def route(item: InboundItem, mail: ParsedMail, mailbox: Mailbox | None,
          customer: Customer | None = None) -> InboundOutcome:
    """Classify and thread a stored item (see the module docstring of app/inbound/threading.py for the order).

    With `customer` (staff accepting a held mail for that customer) the mail goes to the thread it names, else
    to a new thread of that customer, whatever its sender, loops and new-thread settings.
    """
    if mail.report is not None:
        return _bounce(item, mail, mailbox)
    if customer is None and is_loop(mail):
        return _hold(item, LOOP)
    customers = [customer] if customer is not None else batch.customers_with_address(mail.from_address)
    automatic = mail.read_receipt or is_auto_reply(mail)
    kind = "auto_reply" if automatic else "message"
    match = find_thread(mail, mailbox, customers)
    if match.thread is not None:
        _store(item, mail, match.thread, kind, customers, mailbox)
        return InboundOutcome("threaded", item, match.thread)
    if customer is None:
        if automatic:
            return _hold(item, AUTOMATIC_UNTHREADED)
        if not customers and not is_trusted(mail.from_address):
            return _hold(item, UNKNOWN_SENDER)
        if mailbox is not None and not mailbox.allow_new_threads:
            return _hold(item, NO_NEW_THREADS)
    owner = customers[0] if customers else None
    thread = _new_thread(mail, owner, match.repair, match.ticket)
    _store(item, mail, thread, kind, customers, mailbox)
    return InboundOutcome("new_thread", item, thread)


def _hold(item: InboundItem, reason) -> InboundOutcome:
    item.status, item.reason, item.message_id = "held", _in_shop_language(reason), None
    return InboundOutcome("held", item)


def _fetched_before(mailbox: Mailbox, uidvalidity: int | None, uid: int | None,
                    mail: ParsedMail | None) -> InboundItem | None:
    """The item of this UID of the mailbox, else the oldest of the same mail fetched another way (another
    mailbox, a CC, a re-sent copy): same Message-ID and content, or, for mail without a Message-ID, the same
    content (sender, date, subject, bodies, files)."""
    candidates = batch.earlier_items(mailbox.id, uidvalidity, uid, mail)
    if uid is not None:
        this_uid = (mailbox.id, uidvalidity, uid)
        found = next((item for item in candidates if (item.mailbox_id, item.uidvalidity, item.uid) == this_uid), None)
        if found is not None:
            return found
    if mail is None:
        return None
    copy = batch.copy_key(mail)
    return next((item for item in candidates if item.copy_key == copy), None)


def _add_copy_facts(kept: InboundItem, mail: ParsedMail, mailbox: Mailbox) -> None:
    """What a copy of a kept mail adds to its message: the mailbox it arrived in and anyone its To and CC name
    that the kept copy's did not (a copy of the same mail received by another of the shop's mailboxes)."""
    if kept.message_id is None:
        return
    # Locked (on PostgreSQL) and read afresh: a third mailbox's copy recorded meanwhile must not be overwritten.
    message = db.session.get(Message, kept.message_id, with_for_update=True, populate_existing=True)
    if message is None:
        return
    meta, recipients = dict(message.meta or {}), {key: list(value) for key, value in (message.recipients or {}).items()}
    mailboxes = list(meta.get("mailboxes") or [])
    if mailbox.email and mailbox.email.lower() not in mailboxes:
        meta["mailboxes"] = [*mailboxes, mailbox.email.lower()]
    for field, addresses in (("to", mail.to), ("cc", mail.cc)):
        known = {address.lower() for value in recipients.values() for address in value}
        recipients[field] = recipients.get(field, []) + [a for a in dict.fromkeys(addresses) if a.lower() not in known]
    if meta != message.meta:
        message.meta = meta
    if recipients != message.recipients:
        message.recipients = recipients


def _thread_of(item: InboundItem) -> Thread | None:
    message = db.session.get(Message, item.message_id) if item.message_id else None
    return message.thread if message is not None else None


def _peek(raw: bytes) -> tuple[str, str]:
    """Sender and subject of a mail that could not be parsed, as far as its headers can be read."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536])
        sender = next((addr for _name, addr in getaddresses([str(headers.get("from", ""))]) if addr), "")
        return sender.lower(), " ".join(decode_words(str(headers.get("subject", ""))).split())
    except Exception:  # headers too broken to read: the raw mail is kept anyway
        return "", ""


def _in_shop_language(text) -> str:
    """A lazy text stored for the shop's people (reasons, errors), in the shop's language."""
    with force_locale(Shop.current().locale):
        return str(text)


# --- storing --------------------------------------------------------------------------------------


def _new_thread(mail: ParsedMail, customer: Customer | None, repair, ticket) -> Thread:
    """A thread for a mail that answers none: the customer's (or nobody's, for a trusted partner)."""
    subject = mail.subject[:255]
    if customer is not None:
        return open_thread(customer, subject=subject, repair=repair, ticket=ticket, source_channel="email")
    thread = Thread(subject=subject, source_channel="email", last_activity_at=utcnow())
    db.session.add(thread)
    db.session.flush()
    return thread


# Core INSERTs: nothing here reads the message back as an object, and the ORM's unit of work (a flush for the id,
# then the files) cost more than the statements themselves on every received mail. The values go as parameters,
# not .values(): building a statement around each mail's texts costs more than running it. On the tables, not
# the mapped classes: an ORM-enabled INSERT goes through the ORM's bulk machinery (and flushes the session
# first), twice the cost of the plain statement. The ids come back in the order of the rows (a batch's messages
# are written in one statement).
_INSERT_MESSAGE = insert(Message.__table__).returning(Message.__table__.c.id, sort_by_parameter_order=True)
# One INSERT that leaves the refs already stored alone (ON CONFLICT on the unique ref), instead of a lookup and an
# insert; both databases speak it, each through its own dialect's insert. Built once: every received mail runs it.
_INSERT_REFS = {dialect.__name__.rpartition(".")[2]: dialect.insert(MessageRef.__table__)
                .on_conflict_do_nothing(index_elements=["ref"]) for dialect in (postgresql, sqlite)}


def _store(item: InboundItem, mail: ParsedMail, thread: Thread, kind: str, customers: list[Customer],
           mailbox: Mailbox | None) -> None:
    """The mail as a message of `thread`, with its files and ids; a person's message makes the thread unread and
    waiting for the shop (reopening it), automatic ones and bounces change nothing about the thread.

    In a poll batch a message without files is written with the batch's others (_write_deferred); one with
    files is written at once, as it counts towards the attachment quota the next mail's files are checked
    against."""
    now = utcnow()
    author = next((c for c in customers if c.id == thread.customer_id), customers[0] if customers else None)
    meta = {"message_id": mail.message_id, "from_name": mail.from_name,
            "date": mail.date.isoformat() if mail.date else None}
    meta.update(contact_meta(contact_writing_from(author, email=mail.from_address)))  # who of a company wrote
    if mailbox is not None and mailbox.email:
        meta["mailboxes"] = [mailbox.email.lower()]  # the shop's mailboxes it arrived in (_add_copy_facts)
    if mail.defects:
        meta["defects"] = mail.defects[:20]
    if mail.read_receipt:
        meta["read_receipt"] = True
    if mail.sender_header != "from":  # no From: staff see where the sender was taken from
        meta["sender_header"] = mail.sender_header or "none"
    files = _attachments(mail, stored=bool(mailbox and mailbox.store_attachments))
    skipped = sum(1 for file in files if file["skipped_reason"] == OVER_QUOTA)
    if skipped:
        meta["over_quota"] = skipped
    row = dict(
        thread_id=thread.id, kind=kind, direction="in", channel="email",
        author_customer_id=author.id if author else None, sender=mail.from_address[:320],
        recipients={"to": mail.to, "cc": mail.cc}, subject=mail.subject[:998], body_text=mail.text,
        quoted_text=mail.quoted_text, body_html=mail.html, body_format="text",
        visible_to_customer=kind == "message", meta=meta, created_at=now,
    )
    item.status, item.decided_at = "accepted", now
    refs = _own_ids(mail)
    if files or not batch.defer_message(row, refs, item):
        _write_deferred()  # first: messages keep the order their mails came in
        item.message_id = db.session.scalar(_INSERT_MESSAGE, row)
        if files:
            db.session.execute(insert(Attachment.__table__), [dict(file, message_id=item.message_id) for file in files])
        _remember_ids(refs, item.message_id, thread.id)
    if kind == "message":
        thread.unread = True
        thread.last_inbound_at = thread.last_activity_at = now
        thread.last_message_preview = preview_of(mail.text)
        if thread.status == "closed":
            thread.closed_at = None
        thread.status = "waiting_us"
        apply_rules(thread, Incoming("email", mail.from_address, mail.subject, mail.text,
                                     mailbox.id if mailbox is not None else None), now)


def _write_deferred() -> None:
    """Write the messages the batch deferred, in one INSERT, and their Message-IDs; their items learn their ids."""
    deferred = batch.take_deferred()
    if not deferred:
        return
    ids = db.session.scalars(_INSERT_MESSAGE, [row for row, _refs, _item in deferred]).all()
    refs = []
    for (row, own, item), message_id in zip(deferred, ids):
        item.message_id = message_id
        refs += [{"ref": ref, "message_id": message_id, "thread_id": row["thread_id"], "kind": kind}
                 for ref, kind in own.items()]
    if refs:
        db.session.execute(_INSERT_REFS[db.session.get_bind().dialect.name], refs)


def _own_ids(mail: ParsedMail) -> dict[str, str]:
    """The mail's Message-ID and the ids its provider replaced, each with its MessageRef kind."""
    ids = {mail.message_id[:998]: "received"} if mail.message_id else {}
    for ref in mail.message_id_aliases:
        ids.setdefault(ref[:998], "alias")
    return ids


def _remember_ids(refs: dict[str, str], message_id: int, thread_id: int) -> None:
    """Keep the mail's own ids (_own_ids) so replies to it find the thread; an id some other mail already used
    stays with that mail."""
    if not refs:
        return
    batch.refs_stored(refs)
    db.session.execute(_INSERT_REFS[db.session.get_bind().dialect.name],
                       [{"ref": ref, "message_id": message_id, "thread_id": thread_id, "kind": kind}
                        for ref, kind in refs.items()])


def _attachments(mail: ParsedMail, stored: bool) -> list[dict]:
    """Attachment rows (column values, without the message) for the mail's files: stored (content-addressed)
    when `stored` and the shop's quota allows, else only listed with the reason. Programs are never stored."""
    rows, room = [], None
    for part in mail.attachments:
        row = {"filename": part.filename[:255],
               "content_type": (part.content_type or "")[:127] or "application/octet-stream", "size": part.size,
               "content_id": (part.content_id or None) and part.content_id[:255], "inline": part.inline,
               "sha256": None, "skipped_reason": None}
        rows.append(row)
        if not stored:
            row["skipped_reason"] = NOT_STORED
            continue
        if refusal(part.filename, io.BytesIO(part.payload)) is not None:
            row["skipped_reason"] = PROGRAM
            continue
        sha = hashlib.sha256(part.payload).hexdigest()
        already = is_stored(sha) and db.session.scalar(
            select(Attachment.id).where(Attachment.sha256 == sha).limit(1)) is not None
        if not already:
            room = _quota_left() if room is None else room
            if part.size > room:
                row["skipped_reason"] = OVER_QUOTA
                continue
            room -= part.size
        try:
            kept = store(io.BytesIO(part.payload), part.filename, limit=max(part.size, 1))
        except ValidationFailed:  # refused by the store's own rules
            row["skipped_reason"] = PROGRAM
            continue
        row["sha256"], row["content_type"] = kept.sha256, kept.content_type
    return rows


def _quota_left() -> int:
    """Bytes the shop may still store: its quota minus the files kept (each distinct file counted once)."""
    files = (select(Attachment.sha256, func.max(Attachment.size).label("size"))
             .where(Attachment.sha256.is_not(None)).group_by(Attachment.sha256).subquery())
    used = db.session.scalar(select(func.coalesce(func.sum(files.c.size), 0)))
    return Shop.current().attachment_quota_mb * 1024 * 1024 - int(used)


# --- bounces --------------------------------------------------------------------------------------


def _bounce(item: InboundItem, mail: ParsedMail, mailbox: Mailbox | None) -> InboundOutcome:
    """A delivery report: the delivery it answers is marked bounced (permanent failures) and the report is kept on
    its thread, without making it unread; a report that matches none of our mail is held."""
    report = mail.report
    delivery = _reported_delivery(mail)
    thread = delivery.message.thread if delivery is not None else thread_by_token(
        [*report.original_recipients, *mail.all_recipients], mailbox)
    if thread is None:
        return _hold(item, UNKNOWN_BOUNCE)
    if delivery is not None:
        _mark_bounced(delivery, mail)
    _store(item, mail, thread, "bounce", [], None)
    return InboundOutcome("threaded", item, thread)


def _reported_delivery(mail: ParsedMail) -> Delivery | None:
    """The e-mail delivery a report answers: by our Message-ID (or a stored one) of the returned mail, to the
    reported recipient; by the thread token of its Reply-To, the thread's last mail to that recipient."""
    report = mail.report
    message_ids = []
    for ref in report.original_ids:
        ours = parse_message_id(ref)
        if ours is not None:
            message_ids.append(ours[1])
        else:
            stored = db.session.scalar(select(MessageRef.message_id).where(MessageRef.ref == ref[:998]))
            if stored is not None:
                message_ids.append(stored)
    query = select(Delivery).where(Delivery.channel == "email").order_by(Delivery.id.desc())
    candidates = list(db.session.scalars(query.where(Delivery.message_id.in_(message_ids)))) if message_ids else []
    by_our_id = bool(candidates)
    if not candidates:
        thread = thread_by_token(report.original_recipients, None)
        if thread is None:
            return None
        candidates = list(db.session.scalars(query.join(Message).where(Message.thread_id == thread.id)))
    recipient = (report.recipient or "").lower()
    for delivery in candidates:
        if not recipient or recipient in {delivery.recipient.lower(), *(cc.lower() for cc in delivery.cc)}:
            return delivery
    # Our Message-ID proves which mail came back, even when the failed address is one it was forwarded to.
    return candidates[0] if by_our_id else None


def _mark_bounced(delivery: Delivery, mail: ParsedMail) -> None:
    """Record the report on the delivery once; a permanent failure moves it to bounced (only forward) and
    warns on the customer's card when it was their address (or one of a company's contact people's) that
    failed."""
    report = mail.report
    status = "bounced" if report.permanent else "delayed"
    ref = (mail.message_id or mail.content_hash)[:255]
    seen = db.session.scalar(select(DeliveryEvent.id).where(
        DeliveryEvent.delivery_id == delivery.id, DeliveryEvent.status == status, DeliveryEvent.provider_ref == ref))
    if seen is not None:
        return
    db.session.add(DeliveryEvent(delivery_id=delivery.id, status=status, provider_ref=ref,
                                 error_code=(report.status or None) and report.status[:32],
                                 detail={"recipient": report.recipient, "diagnostic": report.diagnostic[:2000]}))
    if not report.permanent:
        return
    error = _in_shop_language(_l("The recipient's mail server returned the mail: %(reason)s",
                                 reason=report.diagnostic or report.status or "?"))
    db.session.execute(
        update(Delivery).where(Delivery.id == delivery.id, Delivery.status.in_(BOUNCEABLE))
        .values(status="bounced", error=error[:_LONG_TEXT], error_raw=report.diagnostic[:_LONG_TEXT],
                error_code=(report.status or None) and report.status[:32])
    )
    customer = delivery.message.thread.customer
    failed = (report.recipient or delivery.recipient).lower()
    reason = report.diagnostic[:_LONG_TEXT] or report.status
    if customer is not None and customer.email and customer.email.lower() == failed:
        customer.email_bounced_at = utcnow()
        customer.email_bounce_reason = reason
    # a company's contact person's address is flagged on the contact the same way
    for contact in (customer.contacts if customer is not None and customer.is_company else []):
        if contact.email and contact.email.lower() == failed:
            contact.email_bounced_at, contact.email_bounce_reason = utcnow(), reason


# --- held mail: staff decisions --------------------------------------------------------------------


def held_items(limit: int = 200) -> list[InboundItem]:
    """Mail waiting for a staff decision (held, and mail that could not be read), newest first."""
    return list(db.session.scalars(
        select(InboundItem).where(InboundItem.status.in_(HELD_STATUSES))
        .order_by(InboundItem.received_at.desc(), InboundItem.id.desc()).limit(limit)))


def held_count() -> int:
    return db.session.scalar(select(func.count(InboundItem.id)).where(InboundItem.status.in_(HELD_STATUSES)))


def parsed_item(item: InboundItem) -> ParsedMail:
    """The held mail read again from its raw bytes; refuses (ValidationFailed) mail that cannot be read."""
    try:
        return parse_mail(decompress(item.raw or b""))
    except Exception:  # noqa: BLE001 - whatever broke the first reading
        raise ValidationFailed({"item": _("This mail could not be read, so it can only be discarded.")}) from None


def _decidable(item: InboundItem) -> None:
    if item.status not in HELD_STATUSES:
        raise ValidationFailed({"item": _("This mail has already been decided.")})


def accept_held(item: InboundItem, customer: Customer, *, actor: User, add_address: bool = False) -> InboundOutcome:
    """Put a held mail into `customer`'s thread (the one it names, else a new one). With `add_address`, the
    sender's address becomes one of the customer's, and the other held mail from it is threaded as if it
    had just arrived. Refuses (ValidationFailed) decided or unreadable mail, and an erased customer."""
    _decidable(item)
    refuse_erased(customer)
    if item.source == "sms":
        return _accept_held_sms(item, customer, actor=actor, add_number=add_address)
    mail = parsed_item(item)
    if add_address and mail.from_address:
        _add_address(customer, mail.from_address, actor)
    outcome = route(item, mail, _mailbox_of(item), customer=customer)
    if outcome.thread is None:  # a bounce that matches none of our mail has no conversation to go to
        raise ValidationFailed({"item": _("This mail belongs in no conversation; discard it instead.")})
    item.decided_by_id = actor.id
    record("inbound.accept", by=actor, target=item, customer_id=customer.id,
           thread_id=outcome.thread.id if outcome.thread else None)
    if add_address and mail.from_address:
        recheck_held_from(mail.from_address, actor)
    return outcome


def create_customer_from_held(item: InboundItem, *, actor: User) -> InboundOutcome:
    """A new customer named after the held mail's sender (the From display name, else the address), the mail
    accepted into their new thread and the other held mail from that address re-checked."""
    _decidable(item)
    if item.source == "sms":
        customer = create_customer(name=item.sender, phone=item.sender, actor=actor)
        return _accept_held_sms(item, customer, actor=actor)
    mail = parsed_item(item)
    if not mail.from_address:
        raise ValidationFailed({"item": _("This mail has no sender address.")})
    name = " ".join("".join(c for c in mail.from_name or "" if c.isprintable() or c.isspace()).split())
    customer = create_customer(name=name[:NAME_MAX] or mail.from_address, email=mail.from_address, actor=actor)
    outcome = accept_held(item, customer, actor=actor)
    recheck_held_from(mail.from_address, actor)
    return outcome


def discard_held(item: InboundItem, *, actor: User) -> None:
    """Mark a held mail as discarded: kept (raw included) for audit, off the held list."""
    _decidable(item)
    item.status, item.decided_at, item.decided_by_id = "discarded", utcnow(), actor.id
    record("inbound.discard", by=actor, target=item, sender=item.sender)


def recheck_held_from(address: str, actor: User) -> int:
    """Route the held mail from `address` again (after it became a customer's address); returns how many
    went into threads."""
    threaded = 0
    held = db.session.scalars(select(InboundItem).where(
        InboundItem.status == "held", InboundItem.source == "email", InboundItem.sender == address.lower()))
    for other in list(held):
        try:
            mail = parse_mail(decompress(other.raw or b""))
        except Exception:  # noqa: BLE001 - left on the list for staff
            continue
        outcome = route(other, mail, _mailbox_of(other))
        if outcome.status != "held":
            other.decided_by_id = actor.id
            record("inbound.accept", by=actor, target=other, recheck=True,
                   thread_id=outcome.thread.id if outcome.thread else None)
            threaded += 1
    return threaded


def _accept_held_sms(item: InboundItem, customer: Customer, *, actor: User, add_number: bool = False) -> InboundOutcome:
    thread = accept_held_sms(item, customer, actor=actor, add_number=add_number)
    item.decided_by_id = actor.id
    record("inbound.accept", by=actor, target=item, customer_id=customer.id, thread_id=thread.id)
    return InboundOutcome("threaded", item, thread)


def _add_address(customer: Customer, address: str, actor: User) -> None:
    refuse_erased(customer)
    address = address.lower()
    if customer.email == address or any(extra.address == address for extra in customer.extra_emails):
        return
    customer.extra_emails.append(CustomerEmail(address=address[:254]))
    record("customer.add_email", by=actor, target=customer, source="held_mail")


def _mailbox_of(item: InboundItem) -> Mailbox | None:
    return db.session.get(Mailbox, item.mailbox_id) if item.mailbox_id else None
