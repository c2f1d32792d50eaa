"""Owner settings: which template goes to the customer, on which channels, when a repair enters each status; quiet
hours for automatic SMS and how old a status change may be to still notify; reminders after days in a status."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from htmx_flask import request

from ..errors import ValidationFailed
from ..extensions import db
from ..i18n import current_shop
from ..labels import CHANNEL_LABELS
from ..messaging import reminders as status_reminders
from ..messaging.notifications import rules_by_status, save_settings
from ..messaging.templates import message_templates
from ..models import RepairStatus, StatusReminder
from ..models.conversations import CHANNELS
from ..pages import one_button
from ..request_input import whole_number
from . import owner_required

bp = Blueprint("notifications", __name__, url_prefix="/settings/notifications")


@bp.route("/", methods=["GET", "POST"])
@owner_required
def index():
    statuses = RepairStatus.ordered(active_only=False)
    errors, status = {}, 200
    if request.method == "POST" and FlaskForm().validate_on_submit():
        form = request.form
        # The page's "On" switches; a form without them (an older page) switches every chosen notice on.
        switches = "switches" in form
        rules = {s.id: (form.get(f"template_{s.id}", type=whole_number), form.getlist(f"channels_{s.id}"),
                        f"enabled_{s.id}" in form if switches else True) for s in statuses}
        try:
            save_settings(current_shop(), rules=rules, quiet_hours_start=form.get("quiet_hours_start", ""),
                          quiet_hours_end=form.get("quiet_hours_end", ""),
                          notify_max_age_hours=form.get("notify_max_age_hours", type=whole_number), actor=current_user)
        except ValidationFailed as exc:
            db.session.rollback()
            errors, status = exc.fields, 422
        else:
            db.session.commit()
            flash(_("Notification settings saved."), "success")
            return redirect(url_for("notifications.index"))
    return render_template("staff/notifications/index.html", statuses=statuses, rules=rules_by_status(),
                           templates=message_templates(), channels=CHANNELS, channel_labels=CHANNEL_LABELS,
                           shop=current_shop(), errors=errors, posted=request.form if errors else None), status


@bp.route("/reminders", methods=["GET", "POST"])
@owner_required
def reminders():
    """The reminders with who would get each today; a POST adds one."""
    errors, status = {}, 200
    if request.method == "POST" and FlaskForm().validate_on_submit():
        form = request.form
        try:
            status_reminders.add_reminder(
                status_id=form.get("status_id", type=whole_number), days=form.get("days", type=whole_number),
                template_id=form.get("template_id", type=whole_number), channels=form.getlist("channels"),
                actor=current_user)
        except ValidationFailed as exc:
            db.session.rollback()
            errors, status = exc.fields, 422
        else:
            db.session.commit()
            flash(_("Reminder added."), "success")
            return redirect(url_for("notifications.reminders"))
    return render_template("staff/notifications/reminders.html", reminders=status_reminders.reminders(),
                           recipients=status_reminders.preview(), statuses=RepairStatus.ordered(active_only=False),
                           templates=message_templates(), channels=CHANNELS, channel_labels=CHANNEL_LABELS,
                           errors=errors, posted=request.form if errors else None), status


@bp.route("/reminders/<int:reminder_id>/switch", methods=["POST"])
@owner_required
def reminder_switch(reminder_id: int):
    reminder = db.get_or_404(StatusReminder, reminder_id)
    enabled = request.form.get("enabled") == "1"
    return one_button(status_reminders.switch_reminder, reminder, enabled,
                      back=url_for("notifications.reminders"),
                      done=_("Reminder switched on.") if enabled else _("Reminder switched off."))


@bp.route("/reminders/<int:reminder_id>/delete", methods=["POST"])
@owner_required
def reminder_delete(reminder_id: int):
    return one_button(status_reminders.delete_reminder, db.get_or_404(StatusReminder, reminder_id),
                      back=url_for("notifications.reminders"), done=_("Reminder deleted."))
