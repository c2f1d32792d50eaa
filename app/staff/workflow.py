"""Owner settings for the workflow: the repair statuses (names, colours, order) and the ticket queues."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from htmx_flask import request
from wtforms import BooleanField, SelectChoice, SelectField, StringField

from ..errors import ValidationFailed
from ..extensions import db
from ..models import Queue, RepairStatus
from ..models.shop import STATUS_COLOURS
from ..pages import one_button
from ..shop import workflow as rules
from . import owner_required, show_errors

bp = Blueprint("workflow", __name__, url_prefix="/settings/workflow")

COLOUR_LABELS = {
    "grey": _l("Grey"), "blue": _l("Blue"), "amber": _l("Amber"), "violet": _l("Violet"),
    "green": _l("Green"), "red": _l("Red"), "slate": _l("Slate"),
}


class StatusForm(FlaskForm):
    name = StringField(_l("Name"), id="status-name")  # both forms share one page: ids of their own
    colour = SelectField(_l("Colour"), choices=[SelectChoice(c, COLOUR_LABELS.get(c, c)) for c in STATUS_COLOURS])
    is_final = BooleanField(_l("Final (the repair is over, e.g. handed back)"))


class QueueForm(FlaskForm):
    name = StringField(_l("Name"), id="queue-name")


def _page(status_form: StatusForm | None = None, queue_form: QueueForm | None = None):
    """The settings page; forms with errors are passed in to show them next to their fields."""
    forms = {"status_form": status_form or StatusForm(formdata=None),
             "queue_form": queue_form or QueueForm(formdata=None)}
    status_code = 422 if any(form.errors for form in forms.values()) else 200
    return render_template(
        "staff/workflow/index.html", statuses=RepairStatus.ordered(active_only=False), queues=rules.queues(),
        status_usage=rules.status_usage(), queue_usage=rules.queue_usage(), **forms,
    ), status_code


def _back():
    return redirect(url_for("workflow.index"))


def _attempt(action, *args, done: str | None = None):
    """Run a one-button action (move, deactivate, delete...) and go back to the page, saying how it went."""
    return one_button(action, *args, back=url_for("workflow.index"), done=done)


@bp.route("/")
@owner_required
def index():
    return _page()


@bp.route("/statuses", methods=["POST"])
@owner_required
def add_status():
    form = StatusForm()
    if form.validate_on_submit():
        try:
            status = rules.add_status(form.name.data, form.colour.data, is_final=form.is_final.data,
                                      actor=current_user)
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Status “%(name)s” added.", name=status.name), "success")
            return _back()
    return _page(status_form=form)


@bp.route("/statuses/<int:status_id>", methods=["GET", "POST"])
@owner_required
def edit_status(status_id: int):
    status = db.get_or_404(RepairStatus, status_id)
    form = StatusForm(obj=status)
    if form.validate_on_submit():
        try:
            changed = rules.update_status(status, form.name.data, form.colour.data, form.is_final.data,
                                          actor=current_user)
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Status “%(name)s” saved.", name=status.name) if changed else _("Nothing changed."), "success")
            return _back()
    return render_template("staff/workflow/edit_status.html", status=status, form=form), 422 if form.errors else 200


@bp.route("/statuses/<int:status_id>/move", methods=["POST"])
@owner_required
def move_status(status_id: int):
    return _attempt(rules.move_status, db.get_or_404(RepairStatus, status_id), request.form.get("direction", ""))


@bp.route("/statuses/<int:status_id>/deactivate", methods=["POST"])
@owner_required
def deactivate_status(status_id: int):
    status = db.get_or_404(RepairStatus, status_id)
    return _attempt(rules.deactivate_status, status,
                    done=_("“%(name)s” is no longer offered for repairs.", name=status.name))


@bp.route("/statuses/<int:status_id>/reactivate", methods=["POST"])
@owner_required
def reactivate_status(status_id: int):
    status = db.get_or_404(RepairStatus, status_id)
    return _attempt(rules.reactivate_status, status, done=_("“%(name)s” is offered again.", name=status.name))


@bp.route("/queues", methods=["POST"])
@owner_required
def add_queue():
    form = QueueForm()
    if form.validate_on_submit():
        try:
            queue = rules.add_queue(form.name.data, actor=current_user)
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Queue “%(name)s” added.", name=queue.name), "success")
            return _back()
    return _page(queue_form=form)


@bp.route("/queues/<int:queue_id>", methods=["POST"])
@owner_required
def rename_queue(queue_id: int):
    queue = db.get_or_404(Queue, queue_id)
    return _attempt(rules.rename_queue, queue, request.form.get("name", ""), done=_("Queue renamed."))


@bp.route("/queues/<int:queue_id>/delete", methods=["POST"])
@owner_required
def delete_queue(queue_id: int):
    queue = db.get_or_404(Queue, queue_id)
    return _attempt(rules.delete_queue, queue, done=_("Queue “%(name)s” deleted.", name=queue.name))
