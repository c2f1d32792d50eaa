"""Staff screens for tickets (questions, complaints, requests that are not repairs): list, add, card, edit."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from htmx_flask import request
from wtforms import HiddenField, SelectChoice, SelectField, StringField, TextAreaField

from ..errors import ValidationFailed
from ..extensions import db
from ..models import Customer, Ticket
from ..labels import PRIORITY_LABELS
from ..repairs import create_ticket, find_tickets, row_by_id, update_ticket
from ..shop.workflow import queues
from ..request_input import whole_number
from . import PER_PAGE, show_errors, wants_fragment

bp = Blueprint("tickets", __name__, url_prefix="/tickets")

# The words staff read for the stored values (models.repairs.TICKET_STATUSES and PRIORITIES).
STATUS_LABELS = {"open": _l("Open"), "pending": _l("Pending"), "closed": _l("Closed")}


@bp.context_processor
def _labels():
    return {"STATUS_LABELS": STATUS_LABELS, "PRIORITY_LABELS": PRIORITY_LABELS}


class TicketForm(FlaskForm):
    subject = StringField(_l("Subject"))
    description = TextAreaField(_l("Description"))
    queue = SelectField(_l("Queue"), coerce=int)
    category = StringField(_l("Category"))
    priority = SelectField(_l("Priority"), choices=[SelectChoice(*c) for c in PRIORITY_LABELS.items()],
                           default="normal")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.queue.choices = [SelectChoice(0, _("No queue")), *(SelectChoice(q.id, q.name) for q in queues())]

    def values(self) -> dict:
        return {name: field.data for name, field in self._fields.items() if name not in ("csrf_token", "customer_id")}


class NewTicketForm(TicketForm):
    customer_id = HiddenField()


class EditTicketForm(TicketForm):
    status = SelectField(_l("Status"), choices=[SelectChoice(*c) for c in STATUS_LABELS.items()])


@bp.route("/")
@login_required
def index():
    q = request.args.get("q", "").strip()
    status = request.args.get("status") if request.args.get("status") in STATUS_LABELS else None
    page = db.paginate(find_tickets(q, status), page=request.args.get("page", 1, type=whole_number),
                       per_page=PER_PAGE, error_out=False)
    template = "staff/tickets/_results.html" if wants_fragment() else "staff/tickets/index.html"
    return render_template(template, page=page, q=q, status=status), {"Vary": "HX-Request"}


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    form = NewTicketForm(customer_id=request.args.get("customer_id", ""))
    if form.validate_on_submit():
        try:
            ticket = create_ticket(customer=form.customer_id.data, **form.values(), actor=current_user)
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Ticket %(number)s added.", number=ticket.number), "success")
            return redirect(url_for("tickets.show", ticket_id=ticket.id))
    return render_template("staff/tickets/new.html", form=form, customer=row_by_id(Customer, form.customer_id.data)), \
        422 if form.errors else 200


@bp.route("/<int:ticket_id>")
@login_required
def show(ticket_id: int):
    return render_template("staff/tickets/show.html", ticket=db.get_or_404(Ticket, ticket_id))


@bp.route("/<int:ticket_id>/edit", methods=["GET", "POST"])
@login_required
def edit(ticket_id: int):
    ticket = db.get_or_404(Ticket, ticket_id)
    form = EditTicketForm(obj=ticket, queue=ticket.queue_id or 0)
    if form.validate_on_submit():
        try:
            changed = update_ticket(ticket, actor=current_user, **form.values())
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Ticket %(number)s saved.", number=ticket.number) if changed else _("Nothing changed."), "success")
            return redirect(url_for("tickets.show", ticket_id=ticket.id))
    return render_template("staff/tickets/edit.html", ticket=ticket, form=form), 422 if form.errors else 200
