"""Bulk messages: the repairs or customers ticked in their lists get one template, previewed before it is sent."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import ngettext
from flask_login import current_user, login_required
from htmx_flask import request
from sqlalchemy import select

from ..errors import ValidationFailed
from ..extensions import db
from ..i18n import current_shop
from ..labels import CHANNEL_LABELS
from ..messaging.bulk import MAX_RECIPIENTS, plan, recipients, send
from ..messaging.templates import message_templates
from ..models import Customer, MessageTemplate, Repair
from ..models.conversations import CHANNELS
from ..request_input import whole_number
from . import wants_fragment

bp = Blueprint("bulk", __name__, url_prefix="/bulk")


def _selected(model, name: str) -> list:
    ids = request.values.getlist(name, type=whole_number)[:MAX_RECIPIENTS + 1]  # one more lets the rule say "too many"
    rows = {row.id: row for row in db.session.scalars(select(model).where(model.id.in_(ids)))} if ids else {}
    return [rows[i] for i in dict.fromkeys(ids) if i in rows]


@bp.route("/", methods=["GET", "POST"])
@login_required
def page():
    """GET: choose the template and channels for the selection; POST: preview it, or send it when confirmed."""
    repairs, customers = _selected(Repair, "repair_id"), _selected(Customer, "customer_id")
    people = recipients(repairs=repairs, customers=customers)
    template_id = request.form.get("template_id", type=whole_number)
    chosen = request.form.getlist("channels")
    bulk, errors = None, {}
    if request.method == "POST":
        try:
            bulk = plan(db.session.get(MessageTemplate, template_id or 0), chosen, people)
        except ValidationFailed as exc:
            errors = exc.fields
        if bulk is not None and request.form.get("confirm") and bulk.sends:
            messages = send(bulk, actor=current_user)
            db.session.commit()
            flash(ngettext("%(num)d message queued.", "%(num)d messages queued.", len(messages)), "success")
            return redirect(url_for("outbox.index"))
    fragment = wants_fragment()  # htmx swaps only 2xx answers: the preview shows its errors with a 200
    return render_template("staff/bulk/_preview.html" if fragment else "staff/bulk/page.html", repairs=repairs, customers=customers, people=people, bulk=bulk,
                           errors=errors, templates=message_templates(), template_id=template_id, chosen=chosen,
                           channels=CHANNELS, channel_labels=CHANNEL_LABELS,
                           previews=bulk.previews(current_shop()) if bulk else []), 422 if errors and not fragment else 200
