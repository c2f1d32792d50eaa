"""The outbox: every delivery per channel with its state, filters, and resend/cancel/dismiss/hide per row.

For owners, and staff granted `can_see_outbox`. The list URL answers with the whole page, the results (an htmx
filter or page change) or just the table body (its own polling, while something on it waits).
"""
from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from htmx_flask import request

from ..channels.sms_text import sms_text
from ..errors import ValidationFailed
from ..extensions import db
from ..i18n import current_shop
from ..models import Delivery
from ..models.conversations import CHANNELS
from ..outbox import can_cancel, can_dismiss, can_hide, can_resend, cancel, dismiss, hide, resend
from ..outbox.listing import (
    SHOWN_STATUSES,
    OutboxFilters,
    SenderNames,
    find_deliveries,
    shown_status,
    waits,
)
from ..request_input import whole_number
from . import PER_PAGE, wants_fragment

bp = Blueprint("outbox", __name__, url_prefix="/outbox")

ROWS_TARGET = "outbox-rows"  # the tbody's id: its polling asks for the rows alone
ACTIONS = {"resend": resend, "cancel": cancel, "dismiss": dismiss, "hide": hide}
DONE = {"resend": _l("The message will be sent again in a moment."), "cancel": _l("The delivery was cancelled."),
        "dismiss": _l("The delivery is marked as sent."), "hide": _l("The delivery was removed from the outbox.")}


def outbox_access(view):
    """Owners, and staff granted the outbox; other staff get 403, anonymous users the sign-in page."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not (current_user.is_owner or current_user.can_see_outbox):
            abort(403)
        return view(*args, **kwargs)

    return wrapped


@bp.context_processor
def _vocabulary():
    return {"SENDING_CHANNELS": CHANNELS, "SHOWN_STATUSES": SHOWN_STATUSES, "shown_status": shown_status, "can_resend": can_resend,
            "can_cancel": can_cancel, "can_dismiss": can_dismiss, "can_hide": can_hide, "sms_text": sms_text}


@bp.route("/")
@outbox_access
def index():
    filters = OutboxFilters.from_args(request.args)
    page = db.paginate(find_deliveries(filters, current_shop().timezone),
                       page=request.args.get("page", 1, type=whole_number), per_page=PER_PAGE, error_out=False)
    if not wants_fragment():
        template = "staff/outbox.html"
    elif wants_fragment(ROWS_TARGET):
        template = "staff/outbox/_rows.html"
    else:
        template = "staff/outbox/_results.html"
    return render_template(
        template, page=page, filters=filters, sender_of=SenderNames.load(),
        waiting=any(waits(d) for d in page.items),
        list_url=url_for(".index", page=page.page if page.page > 1 else None, **filters.query_args()),
    ), {"Vary": "HX-Request, HX-Target"}  # one URL, three answers: caches must tell them apart


@bp.post("/<int:delivery_id>/<any(resend, cancel, dismiss, hide):action>")
@outbox_access
def act(delivery_id: int, action: str):
    """Apply one row action; htmx gets the row back (none after hiding), a plain form a redirect to the list."""
    delivery = db.get_or_404(Delivery, delivery_id)
    error = None
    try:
        ACTIONS[action](delivery, current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        error = exc.message_for("delivery")
    else:
        db.session.commit()
    if not wants_fragment():
        flash(error or str(DONE[action]), "error" if error else "success")
        return redirect(_back_to_list())
    if action == "hide" and not error:
        return ""
    # Refresh the table body too: a resent row waits again, so its polling must start.
    headers = {} if error else {"HX-Trigger-After-Swap": "outbox-changed"}
    return render_template("staff/outbox/_row.html", d=delivery, sender_of=SenderNames.load(), row_error=error,
                           list_url=_back_to_list()), headers


def _back_to_list() -> str:
    """The list the action came from (its filters and page), never another site."""
    target = request.form.get("next", "")
    list_url = url_for(".index")
    return target if target.startswith(list_url) else list_url
