"""Staff screens for repair orders: the searchable list, adding one, the repair card, editing, status changes."""
from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from htmx_flask import request
from wtforms import DateField, HiddenField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from ..errors import ValidationFailed
from ..messaging.receipt import acceptance_receipt
from ..messaging.reminders import sent_reminders
from ..messaging.threads import threads_of, timeline
from .threads import PAGE_MESSAGES
from ..extensions import db
from ..models import Customer, Repair, RepairStatus, Shop
from ..panel.credentials import ensure_access_code
from ..repairs import change_status, create_repair, find_repairs, repair_log, row_by_id, update_repair
from ..request_input import whole_number
from . import PER_PAGE, show_errors, wants_fragment

bp = Blueprint("repairs", __name__, url_prefix="/repairs")

TABS = ("details", "messages", "log")


class RepairForm(FlaskForm):
    device = StringField(_l("Device"))
    serial_number = StringField(_l("Serial number or IMEI"))
    accessories = StringField(_l("Accessories left"))
    description = TextAreaField(_l("Fault description"))
    price_estimate = StringField(_l("Price estimate"), render_kw={"inputmode": "decimal"})
    pickup_date = DateField(_l("Pickup date"), validators=[Optional()])


class NewRepairForm(RepairForm):
    customer_id = HiddenField()
    status = SelectField(_l("Status"), coerce=int)
    number = StringField(_l("Number"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.status.choices = [SelectChoice(s.id, s.name) for s in RepairStatus.ordered()]


@bp.route("/")
@login_required
def index():
    q = request.args.get("q", "").strip()
    status_id = request.args.get("status", type=whole_number)
    page = db.paginate(find_repairs(q, status_id), page=request.args.get("page", 1, type=whole_number),
                       per_page=PER_PAGE, error_out=False)
    template = "staff/repairs/_results.html" if wants_fragment() else "staff/repairs/index.html"
    # The same URL answers with a fragment or a page: caches must tell them apart.
    return render_template(template, page=page, q=q, status_id=status_id,
                           statuses=RepairStatus.ordered(active_only=False)), {"Vary": "HX-Request"}


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    form = NewRepairForm(customer_id=request.args.get("customer_id", ""))
    if form.validate_on_submit():
        try:
            repair = create_repair(
                customer=form.customer_id.data, device=form.device.data, description=form.description.data,
                serial_number=form.serial_number.data, accessories=form.accessories.data,
                status=form.status.data, number=form.number.data, price_estimate=form.price_estimate.data,
                pickup_date=form.pickup_date.data, actor=current_user,
            )
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Repair %(number)s added.", number=repair.number), "success")
            return redirect(url_for("repairs.show", repair_id=repair.id))
    return render_template("staff/repairs/new.html", form=form, customer=row_by_id(Customer, form.customer_id.data)), \
        422 if form.errors else 200


@bp.route("/<int:repair_id>")
@login_required
def show(repair_id: int):
    repair = db.get_or_404(Repair, repair_id)
    tab = request.args.get("tab") if request.args.get("tab") in TABS else "details"
    return render_template("staff/repairs/show.html", repair=repair, tab=tab, statuses=RepairStatus.ordered(),
                           log=repair_log(repair) if tab == "log" else None,
                           reminders=sent_reminders(repair) if tab == "details" else None,
                           timelines=_timelines(repair) if tab == "messages" else None)


def _timelines(repair: Repair) -> list[tuple]:
    """Each of the repair's threads with its latest messages and whether earlier ones are left out."""
    return [(thread, *timeline(thread, limit=PAGE_MESSAGES)) for thread in threads_of(repair=repair)]


@bp.route("/<int:repair_id>/receipt")
@login_required
def receipt(repair_id: int):
    """The acceptance receipt to print: two copies on A4 (the default), or one for an 80 mm printer."""
    repair = db.get_or_404(Repair, repair_id)
    layout = "80mm" if request.args.get("layout") == "80mm" else "a4"
    if repair.access_code is None:  # a repair from before access codes
        ensure_access_code(repair)
        db.session.commit()
    pdf = acceptance_receipt(repair, Shop.current(), layout)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{repair.number.replace("/", "-")}-receipt.pdf"'})


@bp.route("/<int:repair_id>/edit", methods=["GET", "POST"])
@login_required
def edit(repair_id: int):
    repair = db.get_or_404(Repair, repair_id)
    form = RepairForm(obj=repair)
    contacts = repair.customer.contacts if repair.customer.is_company else []
    if form.validate_on_submit():
        chosen = {"contact_id": request.form.get("contact_id") or None} if contacts else {}
        try:
            changed = update_repair(repair, actor=current_user, **chosen, device=form.device.data,
                                    serial_number=form.serial_number.data, accessories=form.accessories.data,
                                    description=form.description.data, price_estimate=form.price_estimate.data,
                                    pickup_date=form.pickup_date.data)
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Repair %(number)s saved.", number=repair.number) if changed else _("Nothing changed."), "success")
            return redirect(url_for("repairs.show", repair_id=repair.id))
    return render_template("staff/repairs/edit.html", repair=repair, form=form, contacts=contacts,
                           contact_error=None), 422 if form.errors else 200


@bp.route("/<int:repair_id>/status", methods=["POST"])
@login_required
def set_status(repair_id: int):
    """Change the status from the repair card: htmx swaps the card's head, a plain form gets the card again."""
    repair = db.get_or_404(Repair, repair_id)
    error = None
    try:
        changed = change_status(repair, request.form.get("status", ""), actor=current_user)
    except ValidationFailed as exc:
        changed, error = False, exc.message_for("status")
    if changed:
        db.session.commit()
    if wants_fragment():
        # 200 even for a refusal: htmx does not swap error responses, and the head shows the message.
        return render_template("staff/repairs/_head.html", repair=repair, statuses=RepairStatus.ordered(),
                               status_error=error)
    if error:
        flash(error, "error")
    elif changed:
        flash(_("Status changed to %(status)s.", status=repair.status.name), "success")
    return redirect(url_for("repairs.show", repair_id=repair.id))
