"""The outbox: every delivery per channel with its state (owners, and staff granted it)."""
from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required
from sqlalchemy import select

from ..extensions import db
from ..models import Delivery

bp = Blueprint("outbox", __name__, url_prefix="/outbox")


@bp.route("/")
@login_required
def index():
    if not (current_user.is_owner or current_user.can_see_outbox):
        abort(403)
    deliveries = db.session.scalars(
        select(Delivery).where(Delivery.outbox_hidden_at.is_(None)).order_by(Delivery.id.desc()).limit(100)
    ).all()
    return render_template("staff/outbox.html", deliveries=deliveries)
