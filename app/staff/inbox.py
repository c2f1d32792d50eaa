"""The staff inbox: threads that need the shop's attention, in views, filtered, sorted and searched."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from ..extensions import db
from ..messaging.inbox import VIEWS, InboxQuery, inbox_counts, inbox_page, next_unanswered
from ..models import User
from ..models.conversations import SOURCES, THREAD_STATUSES
from . import wants_fragment

bp = Blueprint("inbox", __name__)


@bp.app_template_filter("translated")
def translated(labels: dict) -> dict[str, str]:
    """`labels` (lazy strings) translated once, for a page that shows each of them on fifty rows."""
    return {key: str(label) for key, label in labels.items()}


@bp.route("/")
@login_required
def index():
    """The list; an htmx request (the search box, the filters) gets only the results."""
    query = InboxQuery.from_args(request.args)
    page = inbox_page(query, current_user)
    if wants_fragment("inbox-results"):
        return render_template("staff/inbox/_results.html", query=query, page=page)
    staff = db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.name)).all()
    return render_template("staff/inbox.html", query=query, page=page, counts=inbox_counts(current_user),
                           views=VIEWS, statuses=THREAD_STATUSES, channels=SOURCES, staff=staff)


@bp.route("/inbox/next")
@login_required
def next_thread():
    """Open the thread that has waited longest for an answer, or say that nobody waits."""
    thread = next_unanswered()
    if thread is None:
        flash(_("No customer is waiting for an answer."), "success")
        return redirect(url_for("inbox.index"))
    return redirect(url_for("threads.show", thread_id=thread.id))


@bp.route("/inbox/unread")
def unread():
    """The unread counter of the top navigation; it polls this to stay current.

    A signed-out poll gets 204 (nothing to swap), not the sign-in page squeezed into the counter.
    """
    if not current_user.is_authenticated:
        return "", 204
    return render_template("staff/inbox/_unread.html")
