"""Repairs and tickets: the rules every caller goes through (the workflow's statuses and queues: shop/workflow.py)."""
from __future__ import annotations

import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, insert, select
from sqlalchemy.orm import contains_eager, selectinload

from .customers import contact_of, refuse_erased
from .errors import ValidationFailed
from .fields import choice_field, cleaned_fields, line_field, text_field
from .extensions import db
from .models import Customer, Queue, Repair, RepairEvent, RepairStatus, Shop, Thread, Ticket, User, utcnow
from .models.audit import apply_changes, record
from .panel.credentials import ensure_access_code
from .messaging.notifications import notify_status_change
from .messaging.thread_actions import change_context
from .models.repairs import PRIORITIES, TICKET_STATUSES
from .request_input import iso_date, json_id, whole_number

NUMBER_MAX = 32
DEVICE_MAX = 200
SERIAL_MAX = 64
ACCESSORIES_MAX = 255
SUBJECT_MAX = 255
CATEGORY_MAX = 80
TEXT_MAX = 20_000  # fault descriptions and ticket descriptions
PRICE_MAX = Decimal("99999999.99")  # what Numeric(10, 2) holds
CENT = Decimal("0.01")
CLOCK_SKEW = timedelta(minutes=5)  # how far ahead of ours another system's clock may be

Actor = User | str | None  # the signed-in user, a machine label such as "api:erp", or None for the system


# --- cleaning input ---------------------------------------------------------------------------


def _id(raw) -> int | None:
    """A row id from an int or a string of ASCII digits; None for anything else (also for ids no column holds)."""
    if isinstance(raw, str):
        try:
            raw = whole_number(raw.strip())
        except ValueError:
            return None
    return json_id(raw)


def _price(raw) -> Decimal | None:
    """An amount in the shop's currency, or None when empty; "123,50", "1 234.50" and 99 are read alike."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, Decimal):
        amount = raw
    elif isinstance(raw, int) and not isinstance(raw, bool):
        amount = Decimal(raw)
    elif isinstance(raw, (str, float)):
        text = "".join(str(raw).split()).replace(",", ".")  # spaces (also no-break) group thousands
        if not text:
            return None
        try:
            amount = Decimal(text)
        except InvalidOperation:
            amount = None
    else:
        amount = None
    if amount is None or not amount.is_finite():
        raise ValidationFailed({"price_estimate": _("Enter an amount like 150 or 149,99.")})
    if not 0 <= amount <= PRICE_MAX:
        raise ValidationFailed({"price_estimate": _("Enter an amount from 0 to %(max)s.", max=PRICE_MAX)})
    if amount != amount.quantize(CENT):
        raise ValidationFailed({"price_estimate": _("Use at most two decimal places.")})
    return amount.quantize(CENT)


def _pickup_date(raw) -> date | None:
    """A date, or None when empty; strings in ISO form (2026-03-01) as the API sends them."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, date) and not isinstance(raw, datetime):
        raw = raw.isoformat()  # from a form's date field: still checked against the calendar's range
    if isinstance(raw, str):
        try:
            return iso_date(raw)
        except ValueError:
            pass
    raise ValidationFailed({"pickup_date": _("Enter a date like 2026-03-01.")})


def _number(raw) -> str | None:
    """A number typed by hand, or None when empty (the next automatic one is then used)."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationFailed({"number": _("Must be text.")})
    number = raw.strip()
    if not number:
        return None
    if len(number) > NUMBER_MAX:
        raise ValidationFailed({"number": _("At most %(max)s characters.", max=NUMBER_MAX)})
    # Numbers go into e-mail subjects ("[#R-2026-0001]") and SMS texts, so they must be one plain word.
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in number):
        raise ValidationFailed({"number": _("Use letters, digits and signs such as - or /, without spaces.")})
    return number


def row_by_id(model, raw):
    """raw itself when it is a row of model, else the row with the id raw stands for (int or digits), else None."""
    if isinstance(raw, model):
        return raw
    row_id = _id(raw)
    return db.session.get(model, row_id) if row_id else None


def _customer(raw) -> Customer:
    """A Customer or its id (forms and the API send ids); refuses unknown and anonymised customers."""
    customer = row_by_id(Customer, raw)
    if customer is None:
        raise ValidationFailed({"customer_id": _("Choose an existing customer.")})
    refuse_erased(customer)
    return customer


def _queue(raw) -> Queue | None:
    """A Queue or its id, or None for "no queue" (empty, 0)."""
    if raw in (None, "", 0, "0"):
        return None
    queue = row_by_id(Queue, raw)
    if queue is None:
        raise ValidationFailed({"queue": _("Choose an existing queue.")})
    return queue


def resolve_status(value) -> RepairStatus:
    """The active status given by id (int or digits), by name (any letter case) or as the row itself.

    Refuses unknown and deactivated statuses with ValidationFailed({"status": ...}).
    """
    statuses = RepairStatus.ordered()
    if isinstance(value, RepairStatus):
        found = value if value in statuses else None
    elif (status_id := _id(value)) is not None:
        found = next((s for s in statuses if s.id == status_id), None)
    elif isinstance(value, str):
        # Compared in Python: SQLite's lower() leaves Polish capitals (Ę, Ś...) as they are.
        name = value.strip().casefold()
        found = next((s for s in statuses if s.name.casefold() == name), None)
    else:
        found = None
    if found is None:
        raise ValidationFailed({"status": _("Choose one of the active statuses.")})
    return found


def _number_taken(model: type[Repair] | type[Ticket], number: str) -> bool:
    return db.session.scalar(
        select(model.id).where(func.lower(model.number) == number.lower()).limit(1)
    ) is not None


def _new_number(model: type[Repair] | type[Ticket]) -> str:
    """The model's next automatic number for this year in the shop's time zone, skipping numbers typed by hand."""
    year = datetime.now(ZoneInfo(Shop.current().timezone or "Europe/Warsaw")).year
    while True:
        number = model.next_number(year)
        if not _number_taken(model, number):
            return number


def _event(repair: Repair, kind: str, text: str, actor: Actor) -> None:
    db.session.add(
        RepairEvent(repair_id=repair.id, kind=kind, text=text, user_id=actor.id if isinstance(actor, User) else None)
    )


def log_sent(delivery) -> None:
    """Note on the repair's log that a message about it went out (SMS or e-mail), to whom and by whom."""
    message = delivery.message
    repair_id = message.thread.repair_id
    if repair_id is not None and delivery.channel in ("sms", "email") and delivery.purpose == "message":
        # A plain INSERT: the outbox calls this for every delivery, and the ORM's unit of work costs more than it.
        db.session.execute(insert(RepairEvent.__table__), {
            "repair_id": repair_id, "kind": f"{delivery.channel}_sent", "text": delivery.recipient,
            "user_id": message.author_user_id})


# --- repairs ----------------------------------------------------------------------------------

def _first_status() -> RepairStatus:
    statuses = RepairStatus.ordered()
    if not statuses:  # the workflow settings never deactivate the last status, so only a broken database gets here
        raise ValidationFailed({"status": _("The shop has no active repair status.")})
    return statuses[0]


_REPAIR_CLEANERS = {
    "device": line_field("device", DEVICE_MAX, _l("Enter the device.")),
    "serial_number": line_field("serial_number", SERIAL_MAX),
    "accessories": line_field("accessories", ACCESSORIES_MAX),
    "description": text_field("description", TEXT_MAX),
    "price_estimate": _price,
    "pickup_date": _pickup_date,
}


def create_repair(
    *,
    customer: Customer | int | str,
    device: str,
    description: str = "",
    status=None,
    number: str | None = None,
    price_estimate=None,
    pickup_date=None,
    serial_number: str = "",
    accessories: str = "",
    actor: Actor = None,
    source: str = "staff",
) -> Repair:
    """Open a repair order for a customer (a Customer or its id); flushed, the caller commits.

    `status` is an active status (row, id or name), by default the first of the workflow. `number`
    is taken as typed when given, else the next R-<year>-NNNN. Refuses, naming every bad field at
    once and before writing anything: an unknown customer, an empty device, an unknown status, a
    number that is malformed or already used, a bad price or date.
    """
    cleaners = {
        **_REPAIR_CLEANERS,
        "customer": _customer,
        "status": lambda raw: resolve_status(raw) if raw not in (None, "") else _first_status(),
        "number": _number,
    }
    fields = cleaned_fields(cleaners, dict(
        customer=customer, device=device, description=description, status=status, number=number,
        price_estimate=price_estimate, pickup_date=pickup_date, serial_number=serial_number, accessories=accessories,
    ))
    if fields["number"] is None:
        fields["number"] = _new_number(Repair)
    elif _number_taken(Repair, fields["number"]):
        raise ValidationFailed({"number": _("This number is already used.")})

    repair = Repair(**fields, status_changed_at=utcnow())
    ensure_access_code(repair)  # printed on the receipt, it opens the repair's messages in the customer panel
    db.session.add(repair)
    db.session.flush()  # the event and the audit entry need the id
    _event(repair, "created", repair.status.name, actor)
    record("repair.create", by=actor, target=repair, source=source, number=repair.number)
    db.session.flush()
    return repair


def update_repair(repair: Repair, *, actor: Actor, source: str = "staff", **fields) -> list[str]:
    """Change device, serial_number, accessories, description, price_estimate, pickup_date or contact_id (one of
    the company's contact people, or None); returns the names of the changed fields.

    Status changes go through change_status (they are logged and notify the customer). Refuses bad
    fields like create_repair, before touching the repair.
    """
    refuse_erased(repair.customer)
    contact = {"contact_id": getattr(contact_of(repair.customer, fields.pop("contact_id")), "id", None)} \
        if "contact_id" in fields else {}
    changed = apply_changes(repair, {**cleaned_fields(_REPAIR_CLEANERS, fields), **contact}, "repair.update",
                            by=actor, with_values=False, source=source)
    if changed:
        db.session.flush()
    return changed


def change_status(repair: Repair, status, *, actor: Actor = None, source: str = "staff",
                  changed_at: datetime | None = None) -> bool:
    """Move the repair to an active status (row, id or name), log it and queue the customer's automatic
    notification for it (see notify_status_change); False when the repair already is there.

    `changed_at` is when the change really happened (a system applying changes later says so); by default now.
    Refuses unknown and deactivated statuses (ValidationFailed on "status"), and a `changed_at` without a time
    zone or in the future (on "status_changed_at").
    """
    new = resolve_status(status)
    now = utcnow()
    if changed_at is not None and (changed_at.tzinfo is None or changed_at > now + CLOCK_SKEW):
        raise ValidationFailed({"status_changed_at": _("Give a past time with its time zone.")})
    old = repair.status
    if new.id == repair.status_id:
        return False
    repair.status = new
    repair.status_changed_at = changed_at or now
    _event(repair, "status", f"{old.name} → {new.name}", actor)
    record("repair.status", by=actor, target=repair, source=source, old=old.name, new=new.name)
    notify_status_change(repair, new, changed_at=repair.status_changed_at)
    db.session.flush()
    return True


def find_repairs(text: str = "", status_id: int | None = None):
    """A select of repairs whose number, device, fault or customer name contains text, newest first.

    Loads each repair's customer and status with it, for lists.
    """
    return Repair.search(text, status_id).options(contains_eager(Repair.customer), selectinload(Repair.status))


def repair_log(repair: Repair) -> list[RepairEvent]:
    """The repair card's log, newest first."""
    return list(db.session.scalars(
        select(RepairEvent).where(RepairEvent.repair_id == repair.id)
        .order_by(RepairEvent.created_at.desc(), RepairEvent.id.desc())
        .options(selectinload(RepairEvent.user))
    ))


# --- tickets ----------------------------------------------------------------------------------

_TICKET_CLEANERS = {
    "subject": line_field("subject", SUBJECT_MAX, _l("Enter a subject.")),
    "description": text_field("description", TEXT_MAX),
    "queue": _queue,
    "category": line_field("category", CATEGORY_MAX),
    "priority": choice_field("priority", PRIORITIES),
    "status": choice_field("status", TICKET_STATUSES),
}


def create_ticket(
    *,
    customer: Customer | int | str,
    subject: str,
    description: str = "",
    queue=None,
    category: str = "",
    priority: str = "normal",
    actor: Actor = None,
    source: str = "staff",
) -> Ticket:
    """Open a ticket (numbered Z-<year>-NNNN) for a customer (a Customer or its id); flushed, the caller commits.

    `queue` is a Queue, its id or None. Refuses, naming every bad field at once: an unknown customer
    or queue, an empty subject, an unknown priority.
    """
    fields = cleaned_fields({**_TICKET_CLEANERS, "customer": _customer}, dict(
        customer=customer, subject=subject, description=description, queue=queue, category=category,
        priority=priority,
    ))
    ticket = Ticket(**fields, number=_new_number(Ticket), status="open")
    db.session.add(ticket)
    db.session.flush()
    record("ticket.create", by=actor, target=ticket, source=source, number=ticket.number)
    db.session.flush()
    return ticket


def ticket_from_thread(thread: Thread, *, actor: Actor, subject: str = "", source: str = "staff") -> Ticket:
    """Open a ticket of the thread's customer about the thread and attach the thread to it, in one step: the
    ticket takes the thread's subject (unless `subject` is given), queue, category and priority; the thread's
    timeline says it now belongs to the ticket, and both are audited. Flushed, the caller commits.

    Refuses (ValidationFailed) a thread without a customer (`customer_id`: attach it to one first), a thread that
    already has a ticket (`ticket_id`), an erased customer and whatever create_ticket refuses (`subject`).
    """
    if thread.customer is None:
        raise ValidationFailed({"customer_id": _(
            "This thread has no customer. Attach it to a customer first: a ticket belongs to a customer.")})
    if thread.ticket is not None:
        raise ValidationFailed({"ticket_id": _("This thread already belongs to ticket %(number)s.",
                                               number=thread.ticket.number)})
    refuse_erased(thread.customer, "customer_id")
    ticket = create_ticket(customer=thread.customer, subject=(subject or "").strip() or thread.subject,
                           queue=thread.queue_id, category=thread.category, priority=thread.priority,
                           actor=actor, source=source)
    change_context(thread, actor, ticket=ticket)
    record("ticket.from_thread", by=actor, target=ticket, thread_id=thread.id, source=source)
    db.session.flush()
    return ticket


def find_tickets(text: str = "", status: str | None = None):
    """A select of tickets whose number, subject or customer name contains text, newest first, for lists."""
    return Ticket.search(text, status).options(contains_eager(Ticket.customer), selectinload(Ticket.queue))


def update_ticket(ticket: Ticket, *, actor: Actor, source: str = "staff", **fields) -> list[str]:
    """Change subject, description, queue, category, priority or status (open, pending, closed).

    Returns the names of the changed fields; refuses bad fields like create_ticket, before touching it.
    """
    refuse_erased(ticket.customer)
    cleaned = cleaned_fields(_TICKET_CLEANERS, fields)
    # The status's way is kept (the customer's history shows it); the other fields are named only.
    new_status = cleaned.get("status", ticket.status)
    status = {"status": [ticket.status, new_status]} if new_status != ticket.status else {}
    changed = apply_changes(ticket, cleaned, "ticket.update", by=actor, with_values=False, source=source, **status)
    if changed:
        db.session.flush()
    return changed
