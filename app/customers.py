"""Customers: adding and changing them with checked contact data, recording their consents, finding them."""
from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
import polish_inflection
from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update
from stdnum.exceptions import InvalidChecksum
from stdnum.exceptions import ValidationError as NumberInvalid
from stdnum.pl import nip as polish_nip

from .errors import ValidationFailed
from .fields import clean_line, clean_text, cleaned_fields, flag_field
from .extensions import db
from .models import ConsentEvent, ContactPerson, Customer, Repair, Ticket, User, utcnow
from .models.customers import CUSTOMER_KINDS, CUSTOMER_LANGUAGES
from .models.audit import apply_changes, record

PHONE_REGION = "PL"  # most of our shops are Polish: local numbers without +48 are read as Polish
NAME_MAX = 200
CONSENT_NOTE_MAX = 500
CRM_NOTE_MAX = 5_000  # shown beside every thread of the customer
VOCATIVE_MAX = 120
ADDRESS_MAX = 1_000
CONTACTS_MAX = 50  # contact people of one company
SOURCES = ("staff", "api", "cli", "import", "sms_keyword", "panel", "request_form")
# Customer attribute → the ConsentEvent kind that records its changes.
CONSENTS = {"sms_informational": "sms_informational", "marketing_consent": "marketing"}
# Whatever a person puts between the digits of a phone number.
_PHONE_LIKE = re.compile(r"^[\d\s+()./-]+$")
# A NIP with the "PL" of EU VAT numbers in front.
_NIP_LIKE = re.compile(r"^pl[\s-]*\d[\d\s-]{2,}$", re.IGNORECASE)


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


def _clean_kind(raw) -> str:
    if raw not in CUSTOMER_KINDS:
        raise ValidationFailed({"kind": _("Choose a person or a company.")})
    return raw


def clean_nip(raw) -> str | None:
    """A Polish tax number (NIP) as its ten digits, or None when empty: dashes, spaces and a "PL" prefix are
    dropped, and the check digit must match (python-stdnum knows the rule)."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationFailed({"nip": _("The NIP must be text.")})
    if not raw.strip():
        return None
    try:
        return polish_nip.validate(raw.strip())
    except InvalidChecksum:
        raise ValidationFailed({"nip": _("This NIP is not valid: its check digit does not match. Check for a "
                                         "typo.")}) from None
    except NumberInvalid:
        raise ValidationFailed({"nip": _("A NIP has ten digits, like 123-456-32-18.")}) from None


def format_nip(nip: str | None) -> str:
    """A stored NIP the way people write it ("123-456-32-18")."""
    return polish_nip.format(nip) if nip else ""


def _clean_address(raw) -> str:
    return clean_text(raw, "address", ADDRESS_MAX)


_CLEANERS = {
    "name": _clean_name,
    "kind": _clean_kind,
    "nip": clean_nip,
    "address": _clean_address,
    "email": normalize_email,
    "phone": parse_phone,
    "crm_note": _clean_note,
    "language": _clean_language,
    "vocative": _clean_vocative,
    **{field: flag_field(field) for field in CONSENTS},
}


def _cleaned(fields: dict, kind: str = "person") -> dict:
    """The customer fields checked and normalised; every problem at once in one ValidationFailed. A person
    (`kind`, unless the fields change it) has no NIP nor company address: those are cleared."""
    cleaned = cleaned_fields(_CLEANERS, fields)
    if cleaned.get("kind", kind) == "person":
        for field in ("nip", "address"):
            if field in cleaned or "kind" in cleaned:
                cleaned[field] = None if field == "nip" else ""
    return cleaned


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
    kind: str = "person",
    nip: str | None = None,
    address: str = "",
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
        dict(name=name, email=email, phone=phone, kind=kind, nip=nip, address=address, crm_note=crm_note,
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
    cleaned = _cleaned(fields, customer.kind)
    changed = apply_changes(customer, cleaned, "customer.update", by=actor, with_values=False, source=source)
    for field in changed:
        if field in CONSENTS:
            _record_consent(customer, field, actor, source, note)
    if "email" in changed:  # a new address has not bounced yet
        customer.email_bounced_at = customer.email_bounce_reason = None
    db.session.flush()
    return changed


_CONTACT_CLEANERS = {
    "name": lambda raw: clean_line(raw, "name", NAME_MAX, _l("Enter the contact person's name.")),
    "email": normalize_email,
    "phone": parse_phone,
}


def _cleaned_contact(fields: dict) -> dict:
    return cleaned_fields(_CONTACT_CLEANERS, fields)


def _refuse_person(customer: Customer, field: str = "contacts") -> None:
    if not customer.is_company:
        raise ValidationFailed({field: _("Only a company has contact people.")})


def add_contact_person(customer: Customer, *, name: str, email: str | None = None, phone: str | None = None,
                       actor: User | str | None, source: str = "staff") -> ContactPerson:
    """Add a contact person to a company (their mail and texts thread to the company); flushed, the caller
    commits. Refuses bad fields, a person (not a company), too many contacts and an erased customer."""
    _check_source(source)
    refuse_erased(customer)
    _refuse_person(customer)
    fields = _cleaned_contact(dict(name=name, email=email, phone=phone))
    if len(customer.contacts) >= CONTACTS_MAX:
        raise ValidationFailed({"contacts": _("A company can have at most %(n)d contact people.", n=CONTACTS_MAX)})
    contact = ContactPerson(**fields)
    customer.contacts.append(contact)
    db.session.flush()
    record("customer.contact_add", by=actor, target=customer, contact_id=contact.id, source=source)
    return contact


def update_contact_person(contact: ContactPerson, *, actor: User | str | None, source: str = "staff",
                          **fields) -> list[str]:
    """Change a contact person's name, e-mail or phone; returns the names of the fields that changed."""
    _check_source(source)
    refuse_erased(contact.customer)
    cleaned = _cleaned_contact(fields)
    changed = [name for name, value in cleaned.items() if getattr(contact, name) != value]
    for name in changed:
        setattr(contact, name, cleaned[name])
    if "email" in changed:  # a new address has not bounced yet
        contact.email_bounced_at = contact.email_bounce_reason = None
    if "phone" in changed:  # nor has a new number said STOP
        contact.sms_stopped_at = None
    if changed:  # on the company's record, like the other contact entries; names of fields, never their values
        record("customer.contact_update", by=actor, target=contact.customer, contact_id=contact.id,
               fields=changed, source=source)
    db.session.flush()
    return changed


def remove_contact_person(contact: ContactPerson, *, actor: User | str | None, source: str = "staff") -> None:
    """Remove a contact person; the company's repairs that were about them are about nobody in particular."""
    _check_source(source)
    customer = contact.customer
    refuse_erased(customer)
    db.session.execute(update(Repair).where(Repair.contact_id == contact.id).values(contact_id=None))
    customer.contacts.remove(contact)
    record("customer.contact_remove", by=actor, target=customer, contact_id=contact.id, source=source)
    db.session.flush()


def set_contact_sms(number: str, *, stop: bool, actor: User | str | None, source: str, at=None) -> int:
    """Stop (STOP from the number, or the provider saying it opted out) or allow again (START) SMS to every
    contact person with the E.164 `number`, of companies not erased; each change is on the company's record as
    "customer.contact_sms". Only the number that spoke changes: the company's own consent and its other contact
    people stay as they are. Returns how many contact people changed; flushed, the caller commits."""
    people = db.session.scalars(
        select(ContactPerson).join(Customer, Customer.id == ContactPerson.customer_id)
        .where(ContactPerson.phone == number, Customer.anonymized_at.is_(None),
               ContactPerson.sms_stopped_at.is_(None) if stop else ContactPerson.sms_stopped_at.is_not(None))
        .order_by(ContactPerson.id)).all()
    for contact in people:
        contact.sms_stopped_at = (at or utcnow()) if stop else None
        record("customer.contact_sms", by=actor, target=contact.customer, contact_id=contact.id, sms=not stop,
               source=source)
    db.session.flush()
    return len(people)


def sms_stopped(number: str | None) -> bool:
    """Whether a contact person's number said STOP (and not START since): such a number never gets an SMS, whoever
    of the shop's companies lists it."""
    return bool(number) and db.session.scalar(
        select(func.count(ContactPerson.id)).where(ContactPerson.phone == number,
                                                   ContactPerson.sms_stopped_at.is_not(None))) > 0


def set_contact_people(customer: Customer, contacts, *, actor: User | str | None, source: str) -> None:
    """Make the company's contact people those of `contacts` (the API's list: an item with the `id` of one of
    theirs changes it, one without adds a person, a person not listed is removed). Every problem at once,
    keyed `contacts.<index>.<field>`, before anything changes."""
    if not isinstance(contacts, list) or not all(isinstance(item, dict) for item in contacts):
        raise ValidationFailed({"contacts": _("Must be a list of contact people.")})
    if contacts:
        _refuse_person(customer)
    if len(contacts) > CONTACTS_MAX:
        raise ValidationFailed({"contacts": _("A company can have at most %(n)d contact people.", n=CONTACTS_MAX)})
    own = {contact.id: contact for contact in customer.contacts}
    errors, plan = {}, []
    listed = set()
    for index, item in enumerate(contacts):
        contact_id = item.get("id")
        for key in sorted(set(item) - {"id", *_CONTACT_CLEANERS}):  # a typo must not be ignored silently
            errors[f"contacts.{index}.{key}"] = "unknown field"
        if contact_id is not None and (type(contact_id) is not int or contact_id not in own or contact_id in listed):
            errors[f"contacts.{index}.id"] = _("Not a contact person of this customer.")
            continue
        listed.add(contact_id)
        fields = {key: item.get(key) for key in _CONTACT_CLEANERS}
        try:
            plan.append((own.get(contact_id), _cleaned_contact(fields)))
        except ValidationFailed as exc:
            errors.update({f"contacts.{index}.{key}": value for key, value in exc.fields.items()})
    if errors:
        raise ValidationFailed(errors)
    kept = {contact.id for contact, _fields in plan if contact is not None}
    for contact in list(customer.contacts):
        if contact.id not in kept:
            remove_contact_person(contact, actor=actor, source=source)
    for contact, fields in plan:
        if contact is None:
            add_contact_person(customer, **fields, actor=actor, source=source)
        else:
            update_contact_person(contact, actor=actor, source=source, **fields)


def contact_of(customer: Customer, contact_id, field: str = "contact_id") -> ContactPerson | None:
    """The customer's contact person with `contact_id` (None for an empty id); refuses anyone else's."""
    if contact_id in (None, ""):
        return None
    try:
        contact_id = None if isinstance(contact_id, bool) else int(contact_id)
    except (TypeError, ValueError, OverflowError):
        contact_id = None
    contact = next((contact for contact in customer.contacts if contact.id == contact_id), None)
    if contact is None:
        raise ValidationFailed({field: _("Not a contact person of this customer.")})
    return contact


def contact_writing_from(customer: Customer | None, *, email: str | None = None,
                         phone: str | None = None) -> ContactPerson | None:
    """The company's contact person with this e-mail address (any case) or phone number (E.164), or None: who of
    the company wrote a received mail or SMS."""
    if customer is None or not customer.is_company:
        return None
    email = (email or "").lower() or None
    return next((contact for contact in customer.contacts
                 if (email and contact.email == email) or (phone and contact.phone == phone)), None)


class ThroughContact:
    """A company as the channels see it when a message goes to one of its contact people: the contact's address
    and number, the company's consents and settings."""

    def __init__(self, customer: Customer, contact: ContactPerson):
        self._customer, self.email, self.phone = customer, contact.email, contact.phone

    def __getattr__(self, name):
        return getattr(self._customer, name)


def contact_meta(contact: ContactPerson | None) -> dict:
    """What a received message keeps of the contact person who wrote it (shown beside the company's name)."""
    return {"contact_id": contact.id, "contact_name": contact.name} if contact is not None else {}


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
    """A select of the customers (not anonymised) whose name, e-mail, phone or NIP contains `text`, or one of
    whose contact people's name or e-mail does.

    Phone numbers match however they are typed: "600 100", "600-100-200", "+48 600" or "0048 600".
    """
    query = select(Customer).where(Customer.anonymized_at.is_(None))
    text = text.strip()
    if text:
        like = f"%{_escape_like(text.lower())}%"
        people = select(ContactPerson.customer_id).where(or_(
            func.lower(ContactPerson.name).like(like, escape="\\"), ContactPerson.email.like(like, escape="\\")))
        conditions = [
            func.lower(Customer.name).like(like, escape="\\"),
            Customer.email.like(like, escape="\\"),
            Customer.id.in_(people),  # a company is found by its people's names and addresses too
        ]
        digits = re.sub(r"\D", "", text)
        if _PHONE_LIKE.match(text) and len(digits) >= 3:
            conditions.append(Customer.nip.like(f"%{digits}%"))
            if digits.startswith("00"):  # "0048..." is how "+48..." is dialled from Poland
                digits = digits[2:]
            conditions.append(Customer.phone.like(f"%{digits}%"))
        elif _NIP_LIKE.match(text):  # "PL 123-456-32-18", as printed on invoices
            conditions.append(Customer.nip.like(f"%{digits}%"))
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
