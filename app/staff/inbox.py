"""The staff inbox: threads that need the shop's attention."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required
from sqlalchemy import select

from ..extensions import db
from ..models import Thread

bp = Blueprint("inbox", __name__)


@bp.route("/")
@login_required
def index():
    threads = db.session.scalars(
        select(Thread).where(Thread.deleted_at.is_(None)).order_by(Thread.last_activity_at.desc()).limit(50)
    ).all()
    return render_template("staff/inbox.html", threads=threads)
