"""The owner's statistics page: opened and closed threads per day, response and closing times, backlog."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, render_template
from flask_babel import format_timedelta
from flask_login import login_required

from ..messaging.stats import shop_stats
from . import owner_required

bp = Blueprint("stats", __name__, url_prefix="/stats")


@bp.app_template_filter("duration")
def duration(value: timedelta | None) -> str:
    """A span of time in the reader's language, rounded ("3 hours"); empty when there is none."""
    return format_timedelta(value, threshold=1.5) if value is not None else ""


@bp.route("/")
@login_required
@owner_required
def index():
    return render_template("staff/stats.html", stats=shop_stats())
