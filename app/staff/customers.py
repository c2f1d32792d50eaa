"""Staff pages for customers: the searchable list, the customer card, the add and edit form, the picker."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from htmx_flask import request
from wtforms import (BooleanField, EmailField, RadioField, SelectChoice, SelectField, StringField, TelField,
                     TextAreaField)

from ..customers import (
    add_contact,
    add_contact_person,
    consent_history,
    contact_of,
    create_customer,
    format_nip,
    format_phone,
    remove_contact_person,
    update_contact_person,
    repairs_of,
    search_customers,
    tickets_of,
    update_customer,
)
from ..customer_history import KINDS as HISTORY_KINDS
from ..customer_history import customer_history
from ..errors import ValidationFailed
from ..messaging.threads import threads_of
from ..extensions import db
from ..i18n import CUSTOMER_LANGUAGE_NAMES
from ..models import Customer
from ..panel.credentials import set_panel_state
from ..panel.notices import invite
from ..privacy.erasure import erase_customer
from ..privacy.export import export_customer
from ..request_input import whole_number
from . import PER_PAGE, form_values, owner_required, show_errors, wants_fragment
from .tickets import STATUS_LABELS as TICKET_STATUS_LABELS

bp = Blueprint("customers", __name__, url_prefix="/customers")

PICKER_LIMIT = 10
TABS = {"details": _l("Details"), "history": _l("History"), "messages": _l("Messages"), "repairs": _l("Repairs"), "tickets": _l("Tickets"),
        "consents": _l("Consent history")}
TAB_ROWS = {"messages": lambda customer: threads_of(customer=customer), "repairs": repairs_of,
            "tickets": tickets_of, "consents": consent_history}
# The words staff read for the stored values (models.customers.PANEL_STATES, ConsentEvent.kind and .source).
PANEL_STATE_LABELS = {"none": _l("No access"), "invited": _l("Invited"), "active": _l("Active"),
                      "disabled": _l("Disabled")}
CONSENT_LABELS = {"sms_informational": _l("Informational SMS"), "marketing": _l("Marketing"),
                  "contact": _l("Contact about a request")}
HISTORY_KIND_LABELS = {"repairs": _l("Repairs"), "tickets": _l("Tickets"), "threads": _l("Threads"),
                       "consents": _l("Consents"), "panel": _l("Panel access"), "exports": _l("Exports"),
                       "contacts": _l("Contact people")}
SOURCE_LABELS = {"staff": _l("Staff"), "api": _l("API"), "cli": _l("Command line"), "import": _l("Import"),
                 "sms_keyword": _l("SMS reply"), "panel": _l("Customer panel"),
                 "request_form": _l("Website request"), "provider": _l("Provider")}


class ConsentForm(FlaskForm):
    """The customer's consents as they are now, and a note on what they said and where."""

    sms_informational = BooleanField(_l("Send informational SMS"))
    marketing_consent = BooleanField(_l("Marketing consent"))
    consent_note = StringField(_l("Note"), render_kw={"maxlength": 500,
                                                      "placeholder": _l("e.g. asked by phone on 12 May")})


class EraseForm(FlaskForm):
    confirmation = StringField(_l("Type the customer's name to confirm"), render_kw={"autocomplete": "off",
                                                                                    "required": True})


KIND_LABELS = {"person": _l("Person"), "company": _l("Company")}


class CustomerForm(FlaskForm):
    """The customer's fields; the rules live in app.customers, whose messages land next to the fields."""

    kind = RadioField(_l("Customer is"), default="person", validate_choice=False,
                      choices=[SelectChoice(kind, label) for kind, label in KIND_LABELS.items()])
    name = StringField(_l("Name"), render_kw={"required": True, "maxlength": 200})
    nip = StringField(_l("NIP"), render_kw={"maxlength": 40, "inputmode": "text"})
    address = TextAreaField(_l("Address"), render_kw={"rows": 3})
    email = EmailField(_l("E-mail"))
    phone = TelField(_l("Phone"))
    crm_note = TextAreaField(_l("CRM note"), render_kw={"rows": 4})
    sms_informational = BooleanField(_l("Send informational SMS"), default=True)
    marketing_consent = BooleanField(_l("Marketing consent"), default=False)
    language = SelectField(_l("Language"), default="", validate_choice=False, choices=[
        SelectChoice("", _l("The shop's language")),
        *(SelectChoice(code, name) for code, name in CUSTOMER_LANGUAGE_NAMES.items())])
    vocative = StringField(_l("First name in the vocative"), render_kw={"maxlength": 120})

    def validate_language(self, field):  # the domain checks the value; an empty choice stands for None
        field.data = field.data or None


class NewContactForm(FlaskForm):
    """A new customer added where a message or conversation needs one (compose, "Record a conversation"); the
    app-wide CSRF check covers it, as its fields carry a prefix (NEW_CONTACT) beside the page's own form."""

    class Meta:
        csrf = False

    name = StringField(_l("Name"), render_kw={"maxlength": 200, "autocomplete": "off"})
    email = EmailField(_l("E-mail"), render_kw={"autocomplete": "off"})
    phone = TelField(_l("Phone"), render_kw={"autocomplete": "off"})


NEW_CONTACT = "new_customer"


class ContactPersonForm(FlaskForm):
    """One of a company's contact people."""

    name = StringField(_l("Name"), render_kw={"required": True, "maxlength": 200, "autocomplete": "off"})
    email = EmailField(_l("E-mail"), render_kw={"autocomplete": "off"})
    phone = TelField(_l("Phone"), render_kw={"autocomplete": "off"})


def new_contact_form() -> NewContactForm:
    return NewContactForm(prefix=NEW_CONTACT)


def new_contact_posted() -> bool:
    """Whether this POST is the new-customer form rather than the page's own."""
    return f"{NEW_CONTACT}-name" in request.form


def add_posted_contact(form: NewContactForm) -> Customer | None:
    """Create the customer the form describes (committed); None, with the messages at the fields, when refused."""
    form.validate()  # the rules are the domain's; this readies the fields to carry its messages
    try:
        customer = add_contact(name=form.name.data or "", email=form.email.data, phone=form.phone.data,
                               actor=current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        show_errors(form, exc)
        return None
    db.session.commit()
    flash(_("Customer %(name)s saved.", name=customer.name), "success")
    return customer


@bp.app_template_filter("phone")
def phone_filter(e164: str | None) -> str:
    return format_phone(e164)


@bp.app_template_filter("nip")
def nip_filter(nip: str | None) -> str:
    return format_nip(nip)


@bp.context_processor
def _labels():
    return {"KIND_LABELS": KIND_LABELS, "PANEL_STATE_LABELS": PANEL_STATE_LABELS, "CONSENT_LABELS": CONSENT_LABELS,
            "HISTORY_KIND_LABELS": HISTORY_KIND_LABELS,
            "SOURCE_LABELS": SOURCE_LABELS, "TICKET_STATUS_LABELS": TICKET_STATUS_LABELS}


@bp.route("/")
@login_required
def index():
    q = request.args.get("q", "").strip()
    page = db.paginate(search_customers(q), page=request.args.get("page", 1, type=whole_number), per_page=PER_PAGE,
                       error_out=False)
    template = "staff/customers/_results.html" if wants_fragment() else "staff/customers/index.html"
    # The same URL answers with a fragment or a page: caches must tell them apart.
    return render_template(template, q=q, page=page), {"Vary": "HX-Request"}


@bp.route("/options")
@login_required
def search_options():
    """Matching customers as buttons for the customer pickers of other forms (an htmx fragment)."""
    q = request.args.get("q", "").strip()
    found = db.session.scalars(search_customers(q).limit(PICKER_LIMIT)).all() if q else []
    return render_template("staff/customers/_options.html", q=q, customers=found)


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    form = CustomerForm()
    if form.validate_on_submit():
        try:
            customer = create_customer(**form_values(form), actor=current_user, source="staff")
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Customer %(name)s saved.", name=customer.name), "success")
            return redirect(url_for(".show", customer_id=customer.id))
    return render_template("staff/customers/form.html", form=form, customer=None), 422 if form.errors else 200


@bp.route("/<int:customer_id>")
@login_required
def show(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    tab = request.args.get("tab", "details")
    if tab not in TABS:
        tab = "details"
    if tab == "history":
        return history(customer)
    load_rows = TAB_ROWS.get(tab)
    rows = load_rows(customer) if load_rows else []
    consent_form = ConsentForm(obj=customer) if tab == "consents" else None
    contact_form = ContactPersonForm() if tab == "details" and customer.is_company else None
    return render_template("staff/customers/show.html", customer=customer, tab=tab, tabs=TABS, rows=rows,
                           consent_form=consent_form, contact_form=contact_form)


def history(customer: Customer):
    """The History tab: the customer's timeline, of one kind (?kind=) or all, a page (?page=) at a time; htmx
    asks for the list alone (filter links, "Older")."""
    kind = request.args.get("kind") if request.args.get("kind") in HISTORY_KINDS else None
    page = request.args.get("page", 1, type=whole_number)
    found = customer_history(customer, kind, page if page and page > 0 else 1)
    template = "staff/customers/_history.html" if wants_fragment() else "staff/customers/show.html"
    return render_template(template, customer=customer, tab="history", tabs=TABS, rows=[], history=found,
                           kind=kind, kinds=HISTORY_KINDS), {"Vary": "HX-Request"}


@bp.route("/<int:customer_id>/consents", methods=["POST"])
@login_required
def consents(customer_id: int):
    """Change the customer's consents; each change is recorded with the note, the source "staff" and who.
    An anonymised customer has no contacts to consent for: 404."""
    customer = db.get_or_404(Customer, customer_id)
    if customer.anonymized_at is not None:
        abort(404)
    form = ConsentForm()
    if form.validate_on_submit():
        try:
            changed = update_customer(customer, actor=current_user, source="staff", **form_values(form))
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Consents saved.") if changed else _("The consents are as they were."),
                  "success" if changed else "info")
            return redirect(url_for(".show", customer_id=customer.id, tab="consents"))
    return render_template("staff/customers/show.html", customer=customer, tab="consents", tabs=TABS,
                           rows=consent_history(customer), consent_form=form), 422


@bp.route("/<int:customer_id>/edit", methods=["GET", "POST"])
@login_required
def edit(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    form = CustomerForm(obj=customer)
    if not form.is_submitted():
        form.phone.data = format_phone(customer.phone)
        form.nip.data = format_nip(customer.nip)
    if form.validate_on_submit():
        try:
            update_customer(customer, actor=current_user, source="staff", **form_values(form))
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Customer %(name)s saved.", name=customer.name), "success")
            return redirect(url_for(".show", customer_id=customer.id))
    return render_template("staff/customers/form.html", form=form, customer=customer), 422 if form.errors else 200


# --- a company's contact people ---------------------------------------------------------------------


@bp.route("/<int:customer_id>/contacts", methods=["POST"])
@login_required
def contact_add(customer_id: int):
    """Add a contact person to a company; refused fields come back on the card with their messages."""
    customer = db.get_or_404(Customer, customer_id)
    form = ContactPersonForm()
    if form.validate_on_submit():
        try:
            contact = add_contact_person(customer, **form_values(form), actor=current_user)
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Contact person %(name)s saved.", name=contact.name), "success")
            return redirect(url_for(".show", customer_id=customer.id) + "#contacts")
    return render_template("staff/customers/show.html", customer=customer, tab="details", tabs=TABS, rows=[],
                           consent_form=None, contact_form=form), 422


def _contact_or_404(customer: Customer, contact_id: int):
    try:
        return contact_of(customer, contact_id)
    except ValidationFailed:
        abort(404)


@bp.route("/<int:customer_id>/contacts/<int:contact_id>", methods=["GET", "POST"])
@login_required
def contact_edit(customer_id: int, contact_id: int):
    customer = db.get_or_404(Customer, customer_id)
    contact = _contact_or_404(customer, contact_id)
    form = ContactPersonForm(obj=contact)
    if not form.is_submitted():
        form.phone.data = format_phone(contact.phone)
    if form.validate_on_submit():
        try:
            update_contact_person(contact, actor=current_user, **form_values(form))
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Contact person %(name)s saved.", name=contact.name), "success")
            return redirect(url_for(".show", customer_id=customer.id) + "#contacts")
    return render_template("staff/customers/contact_form.html", customer=customer, contact=contact,
                           form=form), 422 if form.errors else 200


@bp.route("/<int:customer_id>/contacts/<int:contact_id>/remove", methods=["POST"])
@login_required
def contact_remove(customer_id: int, contact_id: int):
    customer = db.get_or_404(Customer, customer_id)
    contact = _contact_or_404(customer, contact_id)
    name = contact.name
    try:
        remove_contact_person(contact, actor=current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(next(iter(exc.fields.values())), "error")
    else:
        db.session.commit()
        flash(_("Contact person %(name)s removed.", name=name), "success")
    return redirect(url_for(".show", customer_id=customer.id) + "#contacts")


# --- the customer's data: export and erasure (owners only) -----------------------------------------


@bp.route("/<int:customer_id>/export")
@owner_required
def export(customer_id: int):
    """The customer's data as a ZIP download (see app/privacy/export.py for what is in it)."""
    customer = db.get_or_404(Customer, customer_id)
    archive = export_customer(customer, actor=current_user)
    db.session.commit()
    return send_file(archive, mimetype="application/zip", as_attachment=True,
                     download_name=f"customer-{customer.id}.zip")


@bp.route("/<int:customer_id>/erase", methods=["GET", "POST"])
@owner_required
def erase(customer_id: int):
    """Anonymise the customer once the owner has typed their name; what goes and what stays is on the page."""
    customer = db.get_or_404(Customer, customer_id)
    form = EraseForm()
    if customer.anonymized_at is None and form.validate_on_submit():
        try:
            erase_customer(customer, actor=current_user, confirmation=form.confirmation.data)
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            flash(_("The customer is anonymised."), "success")
            return redirect(url_for(".show", customer_id=customer.id))
    return render_template("staff/customers/erase.html", customer=customer, form=form), 422 if form.errors else 200


# --- panel access ---------------------------------------------------------------------------------


@bp.route("/<int:customer_id>/panel/invite", methods=["POST"])
@login_required
def panel_invite(customer_id: int):
    """Open the customer's panel and send the invitation (channel=email|sms) through the outbox."""
    customer = db.get_or_404(Customer, customer_id)
    try:
        invite(customer, request.form.get("channel", ""), actor=current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(exc.fields.get("channel") or str(exc), "error")
    else:
        db.session.commit()
        flash(_("The invitation to the customer panel is on its way (see the outbox)."), "success")
    return redirect(url_for(".show", customer_id=customer.id))


@bp.route("/<int:customer_id>/panel/disable", methods=["POST"])
@login_required
def panel_disable(customer_id: int):
    """Close the customer's panel: every panel session ends and links stop working."""
    customer = db.get_or_404(Customer, customer_id)
    set_panel_state(customer, "disabled", actor=current_user)
    db.session.commit()
    flash(_("Panel access is disabled."), "success")
    return redirect(url_for(".show", customer_id=customer.id))
