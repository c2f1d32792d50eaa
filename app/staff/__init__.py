"""The staff side of the app: one blueprint per area, and the access rules they share."""
from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required


def owner_required(view):
    """Only owners may use this view; staff get 403, anonymous users the sign-in page."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_owner:
            abort(403)
        return view(*args, **kwargs)

    return wrapped
