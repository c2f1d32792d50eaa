"""The owner's audit log page: who did what and when, filterable, paged, every view a bookmarkable URL."""
from __future__ import annotations

from itertools import groupby

from flask import Blueprint, render_template
from flask_babel import lazy_gettext as _l
from htmx_flask import request
from sqlalchemy import select

from ..extensions import db
from ..labels import audit_action_label, audit_area_label
from ..models import User
from ..privacy.audit_log import AuditQuery, audit_events, recorded_actions, recorded_target_types
from ..request_input import whole_number
from . import PER_PAGE, owner_required, wants_fragment

bp = Blueprint("audit", __name__, url_prefix="/audit")

# Where an entry's target can be opened: table name → (endpoint, its id argument).
TARGET_LINKS = {"customers": ("customers.show", "customer_id"), "threads": ("threads.show", "thread_id"),
                "repairs": ("repairs.show", "repair_id"), "tickets": ("tickets.show", "ticket_id")}
TARGET_LABELS = {"customers": _l("Customer"), "threads": _l("Thread"), "messages": _l("Message"),
                 "repairs": _l("Repair"), "tickets": _l("Ticket"), "users": _l("Staff account"),
                 "deliveries": _l("Delivery"), "inbound_items": _l("Received mail or SMS"),
                 "mailboxes": _l("Mailbox"), "sms_accounts": _l("SMS account"), "shop": _l("Shop settings"),
                 "repair_statuses": _l("Repair status"), "queues": _l("Queue"),
                 "trusted_domains": _l("Trusted domain"), "api_tokens": _l("API token")}


@bp.route("/")
@owner_required
def index():
    query = AuditQuery.from_args(request.args)
    statement, problems = audit_events(query)
    page = db.paginate(statement, page=request.args.get("page", 1, type=whole_number), per_page=PER_PAGE, error_out=False)
    template = "staff/audit/_results.html" if wants_fragment() else "staff/audit/index.html"
    actions = recorded_actions()
    context = dict(
        query=query, page=page, problems=problems, target_links=TARGET_LINKS, target_labels=TARGET_LABELS,
        users=db.session.scalars(select(User).order_by(User.name)).all(),
        action_areas=[(area, list(names)) for area, names in groupby(actions, key=lambda a: a.partition(".")[0])],
        target_types=recorded_target_types(), action_label=audit_action_label, area_label=audit_area_label,
    )
    return render_template(template, **context), {"Vary": "HX-Request"}
