"""Held mail: what came in and was not put into a thread (strangers, loops, robots, unreadable mail), for staff to
accept into a customer's thread, turn into a new customer (either also making a ticket of it), or discard."""
from __future__ import annotations

import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, HiddenField

from ..errors import ValidationFailed
from ..extensions import db
from ..inbound.parse import decompress
from ..inbound.sms import held_text
from ..inbound.record import (
    accept_held, create_customer_from_held, discard_held, held_items, parsed_item,
)
from ..models import Customer, InboundItem, Mailbox
from ..repairs import ticket_from_thread

bp = Blueprint("held", __name__, url_prefix="/held")
bp.add_app_template_global(held_text, "held_sms_text")  # the list shows an SMS by its text, having no subject

RAW_HEADERS_LIMIT = 64 * 1024


class AcceptForm(FlaskForm):
    customer_id = HiddenField()
    add_address = BooleanField(default=False)  # it grants that sender the panel: only when staff choose it


def _held_item(item_id: int) -> InboundItem:
    """The inbound item, or 404; decided ones still open (read-only) so links in audit records keep working."""
    item = db.session.get(InboundItem, item_id)
    if item is None:
        abort(404)
    return item


@bp.route("/")
@login_required
def index():
    items = held_items()
    mailboxes = {m.id: m for m in db.session.scalars(select(Mailbox))}
    return render_template("staff/held/index.html", items=items, mailboxes=mailboxes)


@bp.route("/<int:item_id>", methods=["GET"])
@login_required
def show(item_id: int):
    item = _held_item(item_id)
    return _show(item, AcceptForm())


def _show(item: InboundItem, form: AcceptForm, status: int = 200):
    mail, sms_text, headers = None, None, ""
    if item.source == "sms":
        sms_text = held_text(item)
    else:
        try:
            mail = parsed_item(item) if item.raw else None
        except ValidationFailed:
            mail = None
        headers = _raw_headers(item)
    mailbox = db.session.get(Mailbox, item.mailbox_id) if item.mailbox_id else None
    return render_template("staff/held/show.html", item=item, mail=mail, sms_text=sms_text, headers=headers,
                           mailbox=mailbox, form=form, customer=_chosen_customer(form)), status


def _chosen_customer(form: AcceptForm) -> Customer | None:
    chosen = (form.customer_id.data or "").strip()
    return db.session.get(Customer, int(chosen)) if chosen.isascii() and chosen.isdigit() and len(chosen) < 10 else None


def _raw_headers(item: InboundItem) -> str:
    """The header block of the mail as received (for staff judging a stranger's mail), read as text."""
    if not item.raw:
        return ""
    raw = decompress(item.raw)
    match = re.search(rb"\r?\n\r?\n", raw)
    head = raw[:match.start()] if match else raw
    return head[:RAW_HEADERS_LIMIT].decode("utf-8", errors="replace")


@bp.route("/<int:item_id>/accept", methods=["POST"])
@login_required
def accept(item_id: int):
    item = _held_item(item_id)
    form = AcceptForm()
    if not form.validate_on_submit():
        abort(400)
    customer = _chosen_customer(form)
    try:
        if customer is None:
            raise ValidationFailed({"customer_id": _("Choose a customer.")})
        outcome = accept_held(item, customer, actor=current_user, add_address=form.add_address.data)
        ticket = _ticket_asked(outcome)
    except ValidationFailed as exc:
        db.session.rollback()
        for name, message in exc.fields.items():
            (form.customer_id.errors if name == "customer_id" else form.form_errors).append(message)
        return _show(item, form, 422)
    db.session.commit()
    if ticket is not None:
        flash(_("Ticket %(number)s made for %(name)s with this message.", number=ticket.number, name=customer.name),
              "success")
    elif item.source == "sms":
        flash(_("The SMS was added to %(name)s's conversation.", name=customer.name), "success")
    else:
        flash(_("The mail was added to %(name)s's conversation.", name=customer.name), "success")
    return redirect(url_for("threads.show", thread_id=outcome.thread.id))


@bp.route("/<int:item_id>/create-customer", methods=["POST"])
@login_required
def create_customer(item_id: int):
    item = _held_item(item_id)
    outcome, refused = _decide(item, _create_customer)
    if refused:
        return refused
    outcome, ticket = outcome
    if ticket is not None:
        flash(_("Customer %(name)s added, and ticket %(number)s made with this message.",
                name=outcome.thread.customer.name, number=ticket.number), "success")
    else:
        flash(_("Customer %(name)s added with this mail.", name=outcome.thread.customer.name), "success")
    return redirect(url_for("threads.show", thread_id=outcome.thread.id))


def _create_customer(item: InboundItem, *, actor):
    outcome = create_customer_from_held(item, actor=actor)
    return outcome, _ticket_asked(outcome)


def _ticket_asked(outcome):
    """The ticket made of the accepted mail's thread when the form's "… and make a ticket" button was used."""
    if not request.form.get("make_ticket"):
        return None
    return ticket_from_thread(outcome.thread, actor=current_user, source="held_mail")


@bp.route("/<int:item_id>/discard", methods=["POST"])
@login_required
def discard(item_id: int):
    item = _held_item(item_id)
    _nothing, refused = _decide(item, discard_held)
    if refused:
        return refused
    flash(_("The mail was discarded."), "success")
    return redirect(url_for(".index"))


def _decide(item: InboundItem, decision):
    """Run a staff decision that needs no form fields and commit it: (what `decision` returned, None), or
    (None, the item's page again with the reason it was refused, status 422)."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        result = decision(item, actor=current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        form = AcceptForm()
        form.form_errors.extend(exc.fields.values())
        return None, _show(item, form, 422)
    db.session.commit()
    return result, None
