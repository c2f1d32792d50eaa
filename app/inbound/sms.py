"""Inbound SMS: a customer's text kept once, joined to the thread we last texted them in, keywords obeyed."""
from __future__ import annotations

import hashlib
import string
import zlib
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Literal

from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from ..accounts.sms import active_account
from ..customers import contact_meta, contact_writing_from, parse_phone, set_contact_sms, update_customer
from ..errors import ValidationFailed
from ..extensions import db
from ..messaging.threads import thread_label
from ..models import ContactPerson, Customer, Delivery, InboundItem, Message, Shop, Thread, preview_of, utcnow
from .masking import mask_card_numbers
from .rules import Incoming, apply_rules

# The whole text, trimmed and in any case, is a keyword: Twilio's own list, and Polish "NIE" (STOP and START
# read the same in Polish). A sentence containing one of these words is an ordinary message.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "NIE"})
START_WORDS = frozenset({"START", "UNSTOP"})
# Only SMS that reached the phone can be answered; an uncertain or failed one has no sent_at or never arrived.
ANSWERABLE = ("sent", "delivered")
KEYWORD_SOURCE = "sms_keyword"

Keyword = Literal["stop", "start"]


@dataclass(frozen=True)
class IncomingSms:
    """One SMS as the provider handed it over."""

    sid: str  # the provider's id (Twilio's MessageSid): the same SMS posted twice has the same one
    sender: str  # From, as sent (E.164 for phones)
    to: str  # the shop's number it was sent to
    body: str
    media_urls: list[str] = field(default_factory=list)  # MMS pictures, left at the provider


@dataclass(frozen=True)
class SmsOutcome:
    status: Literal["threaded", "held", "duplicate"]
    item: InboundItem
    message: Message | None = None
    keyword: Keyword | None = None


def keyword_of(body: str) -> Keyword | None:
    """"stop" or "start" when the whole text is such a keyword ("Stop.", " nie! "), else None."""
    word = body.strip().rstrip(string.punctuation + string.whitespace).upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    return None


def compressed(text: str) -> bytes:
    """The text as kept in InboundItem.raw: UTF-8, zlib-compressed like a fetched mail's bytes."""
    return zlib.compress(text.encode("utf-8"))


def receive_sms(sms: IncomingSms) -> SmsOutcome:
    """Keep an incoming SMS once and decide where it goes; adds rows to the session, the caller commits.

    A MessageSid seen before stores nothing and is a "duplicate" (the unique key on the item decides, so
    two deliveries of the same SMS racing each other store it once). A keyword turns informational SMS off
    or on for every customer with the number, and the text is still kept like any other. The text joins
    the thread of the latest SMS we sent the number within the shop's reply window ("threaded"); when SMS
    went to several of the customer's threads in that window, the other threads are listed on the message
    so staff can move it. It is "held" with the reason when no customer has the number, when we send from a
    sender name (customers cannot reply to those), or when we sent the number no SMS in the window.
    """
    now = utcnow()
    sms = replace(sms, body=mask_card_numbers(sms.body))  # card numbers are never stored, raw copy included
    number = _e164(sms.sender)
    item = InboundItem(source="sms", provider_id=sms.sid, sender=number or sms.sender, subject="",
                       raw=compressed(sms.body), content_hash=hashlib.sha256(sms.body.encode("utf-8")).hexdigest(),
                       status="held", received_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(item)
    except IntegrityError:
        return SmsOutcome("duplicate", db.session.scalar(
            select(InboundItem).where(InboundItem.source == "sms", InboundItem.provider_id == sms.sid)))

    customers = _customers_with(number)
    keyword = keyword_of(sms.body)
    if keyword is not None:
        # A contact person's STOP is not the company's: only those whose own number it is change their consent.
        for customer in (customer for customer in customers if customer.phone == number):
            update_customer(customer, actor=f"sms:{number}", source=KEYWORD_SOURCE,
                            consent_note=sms.body.strip(),  # the customer's own word, as evidence
                            sms_informational=keyword == "start")
        if number is not None:  # and a contact person's STOP stops SMS to that person's number alone
            set_contact_sms(number, stop=keyword == "stop", actor=f"sms:{number}", source=KEYWORD_SOURCE)

    threads, reason = [], None
    account = active_account()
    if not customers:
        reason = _("No customer has the number %(number)s.", number=number or sms.sender)
    elif account is not None and account.sender_is_alphanumeric:
        reason = _("Our SMS go out from the sender name %(name)s, which customers cannot reply to, so this SMS "
                   "cannot be tied to a conversation.", name=account.from_number)
    else:
        window = Shop.current().sms_reply_window_days
        threads = _threads_texted(number, [c.id for c in customers], since=now - timedelta(days=window))
        if not threads:
            reason = _("We sent %(number)s no SMS in the last %(days)s days, so this reply cannot be tied to a "
                       "conversation.", number=number, days=window)
    item.decided_at = now
    if reason is not None:
        item.reason = reason
        return SmsOutcome("held", item, keyword=keyword)

    message = _store(sms, number, threads[0], threads[1:], keyword, now)
    item.status, item.message_id = "accepted", message.id
    return SmsOutcome("threaded", item, message, keyword)


def held_text(item: InboundItem) -> str:
    """The text of a held SMS (kept compressed in the item's raw bytes)."""
    return zlib.decompress(item.raw).decode("utf-8") if item.raw else ""


def accept_held_sms(item: InboundItem, customer: Customer, *, actor, add_number: bool = False) -> Thread:
    """Put a held SMS into `customer`'s latest SMS conversation in the reply window, else their latest open one,
    else a new one; with `add_number`, the sender's number becomes the customer's phone when they have none.
    Returns the thread. The caller checks the item is still undecided."""
    now = utcnow()
    if add_number and not customer.phone and _e164(item.sender):
        update_customer(customer, actor=actor, phone=item.sender)
    window = Shop.current().sms_reply_window_days
    threads = _threads_texted(item.sender, [customer.id], since=now - timedelta(days=window))
    thread = threads[0] if threads else _latest_open_thread(customer)
    if thread is None:
        thread = Thread(customer_id=customer.id, subject=_("SMS from %(name)s", name=customer.name),
                        source_channel="sms", created_at=now)
        db.session.add(thread)
        db.session.flush()
    sms = IncomingSms(sid=item.provider_id or "", sender=item.sender, to="", body=held_text(item))
    message = _store(sms, item.sender, thread, [], keyword_of(sms.body), now)
    message.author_customer_id = customer.id
    item.status, item.message_id, item.decided_at = "accepted", message.id, now
    return thread


def _latest_open_thread(customer: Customer) -> Thread | None:
    return db.session.scalars(
        select(Thread).where(Thread.customer_id == customer.id, Thread.deleted_at.is_(None),
                             Thread.merged_into_id.is_(None), Thread.status != "closed")
        .order_by(Thread.last_activity_at.desc(), Thread.id.desc()).limit(1)
    ).first()


def _e164(raw: str) -> str | None:
    """The sender in E.164, or None when it is no phone number (a short code, a carrier's name)."""
    try:
        return parse_phone(raw)
    except ValidationFailed:
        return None


def _customers_with(number: str | None) -> list[Customer]:
    """The customers (not anonymised) with the number, and the companies one of whose contact people has it."""
    if number is None:
        return []
    people = select(ContactPerson.customer_id).where(ContactPerson.phone == number)
    return list(db.session.scalars(
        select(Customer).where(or_(Customer.phone == number, Customer.id.in_(people)),
                               Customer.anonymized_at.is_(None)).order_by(Customer.id)
    ))


def _threads_texted(number: str, customer_ids: list[int], *, since) -> list[Thread]:
    """The customers' threads that an SMS to `number` went out from since `since`, the latest SMS first.

    A thread merged into another counts as that other one.
    """
    last_sent = func.max(Delivery.sent_at).label("last_sent")
    rows = db.session.execute(
        select(Thread, last_sent)
        .join(Message, Message.thread_id == Thread.id)
        .join(Delivery, Delivery.message_id == Message.id)
        .where(Delivery.channel == "sms", Delivery.recipient == number, Delivery.status.in_(ANSWERABLE),
               Delivery.sent_at >= since, Thread.customer_id.in_(customer_ids), Thread.deleted_at.is_(None))
        .group_by(Thread.id)
        .order_by(last_sent.desc(), Thread.id.desc())
    ).scalars()
    threads: list[Thread] = []
    for thread in rows:
        while thread.merged_into_id is not None:
            thread = db.session.get(Thread, thread.merged_into_id)
        if thread.deleted_at is None and thread not in threads:
            threads.append(thread)
    return threads


def _store(sms: IncomingSms, number: str, thread: Thread, others: list[Thread], keyword: Keyword | None,
           now) -> Message:
    meta: dict = {"sms_sid": sms.sid, "to": sms.to}
    if sms.media_urls:
        meta["media"] = {"count": len(sms.media_urls), "urls": sms.media_urls}
    if keyword is not None:
        meta["keyword"] = keyword
    meta.update(contact_meta(contact_writing_from(thread.customer, phone=number)))  # who of a company wrote
    if others:
        meta["may_belong_to"] = [{"id": other.id, "label": thread_label(other)} for other in others]
    message = Message(thread_id=thread.id, kind="message", direction="in", channel="sms",
                      author_customer_id=thread.customer_id, sender=number, body_text=sms.body, body_format="text",
                      meta=meta, created_at=now)
    db.session.add(message)
    db.session.flush()
    thread.unread = True
    thread.status = "waiting_us"
    thread.closed_at = None
    thread.last_inbound_at = thread.last_activity_at = now
    thread.last_message_preview = preview_of(sms.body, _("(picture message)"))
    apply_rules(thread, Incoming("sms", number, "", sms.body), now)
    return message
