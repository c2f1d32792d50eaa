"""The staff side of the app: one blueprint per area, and the access rules they share."""
from __future__ import annotations

from functools import wraps

from flask import abort, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from ..pages import show_errors, wants_fragment

__all__ = ["PER_PAGE", "form_values", "owner_required", "show_errors", "wants_fragment"]

PER_PAGE = 50  # rows per page in every list


def owner_required(view):
    """Only owners may use this view; staff get 403, anonymous users the sign-in page."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_owner:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def form_values(form: FlaskForm) -> dict:
    """The form's data as keyword arguments for a domain function."""
    return {name: value for name, value in form.data.items() if name != "csrf_token"}


# Where each kind of unreachable channel is fixed (app/channels/base.py Unreachable.fix): the page, and the name of
# its row's id.
FIX_PAGES = {
    "customer": ("customers.show", "customer_id"),
    "customer_edit": ("customers.edit", "customer_id"),
    "mailbox": ("mailboxes.edit", "mailbox_id"),
    "mailboxes": ("mailboxes.index", None),
    "sms_settings": ("sms_settings.index", None),
}


def fix_url(reason) -> str | None:
    """The page that fixes an unreachable channel, for owners (staff see just the reason, and ask the owner); None
    when there is nothing to link to."""
    page = FIX_PAGES.get(getattr(reason, "fix", None))
    if page is None or not current_user.is_owner:
        return None
    endpoint, id_arg = page
    if id_arg is None:
        return url_for(endpoint)
    return url_for(endpoint, **{id_arg: reason.fix_id}) if reason.fix_id else None
