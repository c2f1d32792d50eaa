"""Customers: adding and changing them with checked contact data, recording their consents, finding them."""
from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
import polish_inflection
from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select

from .errors import ValidationFailed
from .fields import clean_line, clean_text, cleaned_fields, flag_field
from .extensions import db
from .models import ConsentEvent, Customer, Repair, Ticket, User
from .models.customers import CUSTOMER_LANGUAGES
from .models.audit import apply_changes, record

PHONE_REGION = "PL"  # most of our shops are Polish: local numbers without +48 are read as Polish
NAME_MAX = 200
CONSENT_NOTE_MAX = 500
CRM_NOTE_MAX = 5_000  # shown beside every thread of the customer
VOCATIVE_MAX = 120
SOURCES = ("staff", "api", "cli", "import", "sms_keyword", "panel", "request_form")
# Customer attribute → the ConsentEvent kind that records its changes.
CONSENTS = {"sms_informational": "sms_informational", "marketing_consent": "marketing"}
# Whatever a person puts between the digits of a phone number.
_PHONE_LIKE = re.compile(r"^[\d\s+()./-]+$")


def parse_phone(raw: str | None, region: str = PHONE_REGION) -> str | None:
    """The number in E.164 ("+48600100200"), or None when empty.

    Numbers without a country prefix are read as numbers of `region`; refuses anything that is not
    a valid number there or abroad, and extensions (a text message cannot reach one).
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationFailed({"phone": _("The phone number must be text.")})
    if not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationFailed(
            {"phone": _("This is not a valid phone number. Type it like 600 100 200, or with the country code, "
                        "like +44 20 7946 0958.")}
        )
    if number.extension:
        raise ValidationFailed({"phone": _("Enter the number without an extension.")})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)
def format_phone(e164: str | None) -> str:
    """A stored number the way people read it ("+48 600 100 200"); anything unparsable as it is.

    Cached: the inbox shows fifty on every page, and phonenumbers takes longer over one than Jinja over a row.
    """
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def normalize_email(raw: str | None) -> str | None:
    """The address checked for syntax (not deliverability) and lower-cased, or None when empty.

    Refuses line breaks outright: the address ends up in mail headers.
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationFailed({"email": _("The e-mail address must be text.")})
    if not raw.strip():
        return None
    if "\r" in raw or "\n" in raw:
        raise ValidationFailed({"email": _("The e-mail address must be on one line.")})
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        reason = str(exc)
        raise ValidationFailed({"email": _("This is not a valid e-mail address: %(reason)s", reason=reason)}) from None
    return result.normalized.lower()


def _clean_name(raw: str | None) -> str:
    # one line: the name goes into mail headers and SMS greetings
    return clean_line(raw, "name", NAME_MAX, _l("Enter the customer's name."))


def _clean_note(raw: str | None) -> str:
    return clean_text(raw, "crm_note", CRM_NOTE_MAX)


def _clean_language(raw) -> str | None:
    """One of CUSTOMER_LANGUAGES, or None (empty) for the shop's language."""
    if raw is None or raw == "":
        return None
    if raw not in CUSTOMER_LANGUAGES:
        raise ValidationFailed({"language": _("Choose Polish, English or Ukrainian.")})
    return raw


def _clean_vocative(raw) -> str | None:
    """Staff's spelling of the first name's vocative, on one line; None (empty) lets the dictionary decide."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationFailed({"vocative": _("Must be text.")})
    return clean_line(raw, "vocative", VOCATIVE_MAX) or None


@lru_cache(maxsize=4096)
def _dictionary_vocative(first_name: str) -> str:
    """The vocative of a Polish first name from the SGJP dictionary ("Katarzyna" → "Katarzyno"), or the name
    itself when the dictionary does not know it (a foreign name is better left as it is than declined wrongly)."""
    if not first_name:
        return ""
    try:
        form = polish_inflection.odmien_lub_none(first_name, polish_inflection.WOŁACZ)
    except Exception:  # noqa: BLE001  (any odd input the dictionary chokes on: keep the plain name)
        form = None
    if not form:
        return first_name
    return form[:1].upper() + form[1:] if first_name[:1].isupper() else form


def first_name_vocative(customer: Customer) -> str:
    """How a Polish greeting addresses the customer ("Dzień dobry Katarzyno"): staff's correction on the card
    when there is one, else the dictionary's form of the first name, else the first name as it is."""
    return customer.vocative or _dictionary_vocative(customer.first_name)


_CLEANERS = {
    "name": _clean_name,
    "email": normalize_email,
    "phone": parse_phone,
    "crm_note": _clean_note,
    "language": _clean_language,
    "vocative": _clean_vocative,
    **{field: flag_field(field) for field in CONSENTS},
}


def _cleaned(fields: dict) -> dict:
    """The customer fields checked and normalised; every problem at once in one ValidationFailed."""
    return cleaned_fields(_CLEANERS, fields)


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; one of {SOURCES}")


def _clean_consent_note(raw) -> str:
    return clean_text(raw, "consent_note", CONSENT_NOTE_MAX)


def _record_consent(customer: Customer, field: str, actor: User | str | None, source: str, note: str = "") -> None:
    """The one place a consent change is written down: every source (staff, API, SMS keyword, panel) comes here."""
    db.session.add(
        ConsentEvent(
            customer_id=customer.id,
            kind=CONSENTS[field],
            value=getattr(customer, field),
            source=source,
            user_id=actor.id if isinstance(actor, User) else None,
            note=note,
        )
    )


def record_contact_consent(customer: Customer, *, source: str, note: str = "") -> None:
    """Write down that the customer agreed to be contacted about what they asked (the public request form's
    required box), with the consents' other changes: kind "contact", on, from `source`."""
    _check_source(source)
    db.session.add(ConsentEvent(customer_id=customer.id, kind="contact", value=True, source=source,
                                note=_clean_consent_note(note)))


def create_customer(
    *,
    name: str,
    email: str | None = None,
    phone: str | None = None,
    crm_note: str = "",
    sms_informational: bool = True,
    marketing_consent: bool = False,
    language: str | None = None,
    vocative: str | None = None,
    actor: User | str | None = None,
    source: str = "staff",
) -> Customer:
    """Add a customer and record their initial consents; flushed, the caller commits.

    `actor` is the signed-in user, or a label for a machine ("api:erp"). Refuses bad fields with one
    ValidationFailed naming all of them. Two customers may share an e-mail address (families do).
    """
    _check_source(source)
    fields = _cleaned(
        dict(name=name, email=email, phone=phone, crm_note=crm_note,
             sms_informational=sms_informational, marketing_consent=marketing_consent,
             language=language, vocative=vocative)
    )
    customer = Customer(**fields)
    db.session.add(customer)
    db.session.flush()  # the consent events and the audit entry need the id
    for field in CONSENTS:
        _record_consent(customer, field, actor, source)
    record("customer.create", by=actor, target=customer, source=source)
    db.session.flush()
    return customer


def add_contact(*, name: str, email: str | None, phone: str | None, actor: User | str | None,
                source: str = "staff") -> Customer:
    """A customer added while writing to them (a new message, a recorded conversation): the rules of
    create_customer, and an e-mail address or a phone number to reach them by. Every problem at once."""
    errors = {}
    if not (email or "").strip() and not (phone or "").strip():
        errors["email"] = _("Enter an e-mail address or a phone number.")
    try:
        _cleaned(dict(name=name, email=email, phone=phone))
    except ValidationFailed as exc:
        errors.update(exc.fields)
    if errors:
        raise ValidationFailed(errors)
    return create_customer(name=name, email=email, phone=phone, actor=actor, source=source)


def update_customer(customer: Customer, *, actor: User | str | None, source: str = "staff", consent_note: str = "",
                    **fields) -> list[str]:
    """Change the given fields (those of create_customer); returns the names of those that changed.

    A consent is recorded only when it really changes, with `consent_note` (why, what the customer said); the
    audit entry names the changed fields, never their values. Refuses bad fields like create_customer, before
    touching the customer.
    """
    _check_source(source)
    refuse_erased(customer)
    note = _clean_consent_note(consent_note)
    cleaned = _cleaned(fields)
    changed = apply_changes(customer, cleaned, "customer.update", by=actor, with_values=False, source=source)
    for field in changed:
        if field in CONSENTS:
            _record_consent(customer, field, actor, source, note)
    if "email" in changed:  # a new address has not bounced yet
        customer.email_bounced_at = customer.email_bounce_reason = None
    db.session.flush()
    return changed


def refuse_erased(customer: Customer | None, field: str = "customer_id") -> None:
    """The one guard for writing to or about a customer: refuses (ValidationFailed on `field`) an erased one.

    Erasure must stay erasure: nothing may put a name, a contact, a note, a consent, a thread, a message, a
    repair or a ticket back on an anonymised customer, whichever door (staff page, API, CLI, held mail) it uses.
    Every domain function that writes for a customer calls this before touching anything.
    """
    if customer is not None and customer.anonymized_at is not None:
        raise ValidationFailed({field: _("This customer's data has been erased: nothing can be added or changed "
                                         "for them.")})


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_customers(text: str = ""):
    """A select of the customers (not anonymised) whose name, e-mail or phone contains `text`.

    Phone numbers match however they are typed: "600 100", "600-100-200", "+48 600" or "0048 600".
    """
    query = select(Customer).where(Customer.anonymized_at.is_(None))
    text = text.strip()
    if text:
        like = f"%{_escape_like(text.lower())}%"
        conditions = [
            func.lower(Customer.name).like(like, escape="\\"),
            Customer.email.like(like, escape="\\"),
        ]
        digits = re.sub(r"\D", "", text)
        if _PHONE_LIKE.match(text) and len(digits) >= 3:
            if digits.startswith("00"):  # "0048..." is how "+48..." is dialled from Poland
                digits = digits[2:]
            conditions.append(Customer.phone.like(f"%{digits}%"))
        query = query.where(or_(*conditions))
    return query.order_by(func.lower(Customer.name), Customer.id)


def repairs_of(customer: Customer) -> list[Repair]:
    """The customer's repairs, newest first."""
    return list(db.session.scalars(
        select(Repair).where(Repair.customer_id == customer.id).order_by(Repair.created_at.desc(), Repair.id.desc())
    ))


def tickets_of(customer: Customer) -> list[Ticket]:
    """The customer's tickets, newest first."""
    return list(db.session.scalars(
        select(Ticket).where(Ticket.customer_id == customer.id).order_by(Ticket.created_at.desc(), Ticket.id.desc())
    ))


def consent_history(customer: Customer) -> list[tuple[ConsentEvent, User | None]]:
    """The customer's consent changes, newest first, each with the user who made it (None for machines)."""
    return list(db.session.execute(
        select(ConsentEvent, User)
        .outerjoin(User, User.id == ConsentEvent.user_id)
        .where(ConsentEvent.customer_id == customer.id)
        .order_by(ConsentEvent.created_at.desc(), ConsentEvent.id.desc())
    ).tuples())
