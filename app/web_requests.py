"""The public request form (/p/<slug>/zapytanie): what a stranger's request becomes, and when.

Nobody may write into someone else's history. So a request whose e-mail address or phone number is new becomes
a new customer's ticket at once, while one naming the contact of an existing customer waits (a WebRequest) until
the sender types the one-time code sent to that contact: then it becomes a ticket of that customer. A request
whose code is never typed is not lost and not attached: after REQUEST_WAIT it becomes a thread of nobody in the
inbox, marked "Website request", with a note naming the customer it claimed to be, for staff to judge (attach it,
reply, or delete it). Nothing is sent to the contacts of a request except that one code, and only to a contact
the shop already has on file.
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, or_, select, update

from .attachments import StoredFile
from .channels.sms import DEFAULT_COUNTRIES, country_names
from .customers import (
    contact_meta, contact_writing_from, create_customer, normalize_email, parse_phone, record_contact_consent,
)
from .errors import ValidationFailed
from .extensions import db
from .fields import clean_line, clean_text
from .inbound.masking import mask_card_numbers
from .inbound.rules import Incoming, apply_rules
from .messaging.threads import open_thread
from .models import Attachment, ContactPerson, Customer, CustomerEmail, Delivery, Message, Shop, Thread, WebRequest, preview_of, utcnow
from .models.audit import record
from .models.conversations import NAMES_CUSTOMER
from .models.customers import CUSTOMER_LANGUAGES
from .panel import credentials
from .panel.conversation import check_files
from .panel.notices import queue_shop_notice, send_request_code
from .repairs import create_ticket

SOURCE = "request_form"  # the thread's channel, the consent's and the new customer's source
REQUEST_WAIT = timedelta(hours=1)  # how long a request naming a known contact waits for its code
KEEP_DONE = timedelta(days=1)  # how long a confirmed or expired request's row stays (its thread has it all)
NAME_MAX = 200
DEVICE_MAX = 200
PROBLEM_MAX = 5_000


@dataclass
class Submitted:
    """What a request became: a ticket's thread (a new customer), or a request waiting for its code."""
    thread: Thread | None = None
    waiting: WebRequest | None = None
    token: str | None = None  # the sender's browser keeps it to type the code


def _digest(token: str) -> str:
    return hashlib.sha256(f"web-request:{token}".encode()).hexdigest()


def _allowed_phone(phone: str | None, shop: Shop) -> str | None:
    """Why the number cannot be taken (outside the shop's SMS countries), or None."""
    if not phone:
        return None
    countries = shop.sms_countries or DEFAULT_COUNTRIES
    if phonenumbers.region_code_for_number(phonenumbers.parse(phone, None)) not in countries:
        return _("The shop takes phone numbers from %(countries)s only. Leave an e-mail address instead.",
                 countries=country_names(countries))
    return None


def check_request(*, name, email, phone, device, problem, consent, attachments: Sequence[StoredFile]) -> dict:
    """The form's fields checked and cleaned; every problem at once in one ValidationFailed: a name, a device and
    what is wrong are required, an e-mail address or a phone number (in one of the shop's SMS countries), the
    consent to be contacted, and files by the panel's rules."""
    errors, values = {}, {}
    for field, check in (
        ("name", lambda: clean_line(name, "name", NAME_MAX, _l("Enter your name."))),
        ("email", lambda: normalize_email(email)),
        ("phone", lambda: parse_phone(phone)),
        ("device", lambda: clean_line(device, "device", DEVICE_MAX, _l("Enter the device."))),
        ("problem", lambda: clean_text(problem, "problem", PROBLEM_MAX, _l("Tell us what is wrong."))),
        ("attachments", lambda: check_files(attachments)),
    ):
        try:
            values[field] = check()
        except ValidationFailed as exc:
            errors.update(exc.fields)
    if "email" not in errors and "phone" not in errors and not values.get("email") and not values.get("phone"):
        errors["email"] = _("Enter an e-mail address or a phone number.")
    if "phone" not in errors and (reason := _allowed_phone(values.get("phone"), Shop.current())):
        errors["phone"] = reason
    if consent is not True:
        errors["consent"] = _("We can answer only if you agree to be contacted.")
    if errors:
        raise ValidationFailed(errors)
    values["problem"] = mask_card_numbers(values["problem"])  # card numbers are never stored
    values.pop("attachments")
    return values


def known_contact(email: str | None, phone: str | None) -> tuple[Customer, str, str] | None:
    """The existing customer the request names, with the channel and the contact on file the code goes to: the
    e-mail address (main or extra, else a company's contact person's) first, else the phone number (the
    customer's, else a contact person's: the request is then the company's); None for a new contact. Erased
    customers count as unknown."""
    if email:
        customer = _first_customer(or_(
            Customer.email == email,
            Customer.id.in_(select(CustomerEmail.customer_id).where(CustomerEmail.address == email))),
            ) or _first_customer(Customer.id.in_(select(ContactPerson.customer_id).where(ContactPerson.email == email)))
        if customer is not None:
            return customer, "email", email
    if phone:
        customer = _first_customer(Customer.phone == phone) or _first_customer(
            Customer.id.in_(select(ContactPerson.customer_id).where(ContactPerson.phone == phone)))
        if customer is not None:
            return customer, "sms", phone
    return None


def _first_customer(condition) -> Customer | None:
    return db.session.scalars(select(Customer).where(condition, Customer.anonymized_at.is_(None))
                              .order_by(Customer.id).limit(1)).first()


def submit_request(*, name, email, phone, device, problem, consent, attachments: Sequence[StoredFile] = (),
                   language: str = "pl") -> Submitted:
    """Take a request from the public form (checked by check_request). A new contact becomes a new customer
    (in the form's language) with a ticket and its thread; a known contact's request waits for its code, which is
    queued to that customer's contact on file. Flushed; the caller commits."""
    values = check_request(name=name, email=email, phone=phone, device=device, problem=problem, consent=consent,
                           attachments=attachments)
    language = language if language in CUSTOMER_LANGUAGES else "pl"
    files = [{"filename": f.filename, "content_type": f.content_type, "size": f.size, "sha256": f.sha256}
             for f in attachments]
    known = known_contact(values["email"], values["phone"])
    now = utcnow()
    if known is None:
        customer = create_customer(name=values["name"], email=values["email"], phone=values["phone"],
                                   language=language, actor=SOURCE, source=SOURCE)
        return Submitted(thread=_ticket(customer, values, files, now))
    customer, channel, recipient = known
    token = secrets.token_urlsafe(32)
    waiting = WebRequest(token_hash=_digest(token), customer_id=customer.id, code_channel=channel,
                         code_recipient=recipient, language=language, attachments=files, consent_at=now,
                         state="pending", created_at=now, expires_at=now + REQUEST_WAIT, **values)
    db.session.add(waiting)
    db.session.flush()
    send_request_code(waiting, customer)
    record("request_form.wait", by=SOURCE, target=waiting, customer_id=customer.id, channel=channel)
    db.session.flush()
    return Submitted(waiting=waiting, token=token)


def waiting_request(token: str | None) -> WebRequest | None:
    """The request still waiting for its code that this browser's token stands for, or None."""
    if not token:
        return None
    return db.session.scalar(select(WebRequest).where(WebRequest.token_hash == _digest(token),
                                                      WebRequest.state == "pending",
                                                      WebRequest.expires_at > utcnow()))


def confirm_request(waiting: WebRequest, code: str) -> Thread | None:
    """The ticket's thread the request became once `code` is its live code (attached to the customer the code
    went to), or None for a wrong, used or expired code (each try counted: the caller commits either way)."""
    if not credentials.redeem_request_code(waiting, code):
        return None
    claimed = db.session.execute(
        update(WebRequest).where(WebRequest.id == waiting.id, WebRequest.state == "pending")
        .values(state="confirmed"), execution_options={"synchronize_session": False}).rowcount
    customer = db.session.get(Customer, waiting.customer_id) if waiting.customer_id else None
    if not claimed or customer is None or customer.anonymized_at is not None:
        return None
    db.session.refresh(waiting)
    values = {field: getattr(waiting, field) for field in ("name", "email", "phone", "device", "problem")}
    thread = _ticket(customer, values, waiting.attachments or [], waiting.consent_at)
    waiting.thread_id = thread.id
    record("request_form.confirm", by=f"customer:{customer.id}", target=waiting, thread_id=thread.id)
    db.session.flush()
    return thread


def expire_requests(now: datetime | None = None) -> int:
    """Turn requests whose code was not typed in time into threads of nobody in the inbox (see the module's
    docstring), cancel their codes still in the outbox, forget requests done for a day, and commit; returns how
    many expired."""
    now = now or utcnow()
    count = 0
    for waiting in db.session.scalars(select(WebRequest).where(WebRequest.state == "pending",
                                                               WebRequest.expires_at <= now)
                                      .order_by(WebRequest.id).limit(200)).all():
        if not db.session.execute(update(WebRequest).where(WebRequest.id == waiting.id,
                                                           WebRequest.state == "pending")
                                  .values(state="expired"), execution_options={"synchronize_session": False}
                                  ).rowcount:
            continue
        thread = _unattached(waiting, now)
        waiting.thread_id = thread.id
        db.session.execute(
            update(Delivery).where(Delivery.purpose == "panel_request", Delivery.status.in_(("queued", "scheduled")),
                                   Delivery.message_id.in_(select(Message.id).where(
                                       Message.meta["web_request"].as_integer() == waiting.id)))
            .values(status="cancelled"), execution_options={"synchronize_session": False})
        record("request_form.expire", target=waiting, thread_id=thread.id)
        count += 1
    # What a request said lives on in its thread: the waiting row, with the sender's data, goes a day later.
    db.session.execute(delete(WebRequest).where(WebRequest.state != "pending", WebRequest.expires_at < now - KEEP_DONE))
    db.session.commit()
    return count


# --- what a request becomes ------------------------------------------------------------------------------------


def _text(values: dict) -> str:
    """The message staff read: the contact as given, the device, then the sender's words (in the shop's
    language, like everything staff read)."""
    lines = [_("Request from the website form."), _("Name: %(name)s", name=values["name"])]
    if values.get("email"):
        lines.append(_("E-mail: %(email)s", email=values["email"]))
    if values.get("phone"):
        lines.append(_("Phone: %(phone)s", phone=values["phone"]))
    lines.append(_("Device: %(device)s", device=values["device"]))
    return "\n".join(lines) + "\n\n" + values["problem"]


def _message(thread: Thread, customer: Customer | None, values: dict, files: list[dict], at: datetime) -> Message:
    with force_locale(Shop.current().locale or "pl"):
        body = _text(values)
    message = Message(
        thread_id=thread.id, kind="message", direction="in", channel=SOURCE,
        author_customer_id=customer.id if customer else None, sender=values.get("email") or values.get("phone") or "",
        subject=thread.subject, body_text=body, body_format="text", visible_to_customer=True, created_at=at,
        # who of a company sent it, when the contact was one of its people's
        meta=contact_meta(contact_writing_from(customer, email=values.get("email"), phone=values.get("phone"))),
        attachments=[Attachment(filename=f["filename"], content_type=f["content_type"], size=f["size"],
                                sha256=f["sha256"]) for f in files],
    )
    db.session.add(message)
    db.session.flush()
    thread.last_message_preview = preview_of(body, ", ".join(f["filename"] for f in files))
    thread.last_activity_at = thread.last_inbound_at = at
    thread.unread = True
    thread.status = "waiting_us"
    apply_rules(thread, Incoming(SOURCE, message.sender, thread.subject, body), at)
    return message


def _ticket(customer: Customer, values: dict, files: list[dict], consent_at: datetime) -> Thread:
    """The customer's new ticket about the device, its thread (marked "Website request") with the request as the
    customer's message, the consent to be contacted, and the shop's notice."""
    ticket = create_ticket(customer=customer, subject=values["device"], description=values["problem"],
                           actor=f"customer:{customer.id}", source=SOURCE)
    thread = open_thread(customer, subject=ticket.subject, ticket=ticket, source_channel=SOURCE)
    message = _message(thread, customer, values, files, utcnow())
    with force_locale(Shop.current().locale or "pl"):
        note = _("Website request form, sent %(at)s.", at=consent_at.strftime("%Y-%m-%d %H:%M UTC"))
    record_contact_consent(customer, source=SOURCE, note=note)
    queue_shop_notice(message)
    record("request_form.ticket", by=f"customer:{customer.id}", target=ticket, thread_id=thread.id)
    db.session.flush()
    return thread


def _unattached(waiting: WebRequest, at: datetime) -> Thread:
    """The expired request as a thread of nobody, with a note saying whose contact it named and that the code
    was not typed: staff decide (attach it to a customer, reply, or delete it)."""
    thread = Thread(subject=waiting.device, source_channel=SOURCE, last_activity_at=at)
    db.session.add(thread)
    db.session.flush()
    values = {field: getattr(waiting, field) for field in ("name", "email", "phone", "device", "problem")}
    request_message = _message(thread, None, values, waiting.attachments or [], waiting.created_at)
    customer = db.session.get(Customer, waiting.customer_id) if waiting.customer_id else None
    # Both texts carry that customer's contact (the form's contact was theirs) and the note their name: the
    # reference lets erasing the customer find them, though the thread is nobody's.
    names = {NAMES_CUSTOMER: customer.id} if customer is not None else {}
    request_message.meta = {**(request_message.meta or {}), **names}
    with force_locale(Shop.current().locale or "pl"):
        note = _("The sender gave the contact %(contact)s of the customer %(customer)s but did not confirm it with "
                 "the code sent there. The request is attached to nobody: check who wrote before you attach it or "
                 "reply.", contact=waiting.code_recipient, customer=customer.name if customer else "—")
    db.session.add(Message(thread_id=thread.id, kind="note", direction="internal", visible_to_customer=False,
                           body_text=note, body_format="text", created_at=at, meta=names))
    db.session.flush()
    return thread
