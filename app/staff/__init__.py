"""The staff side of the app: one blueprint per area, and the access rules they share."""
from __future__ import annotations

from functools import wraps

from flask import abort, flash
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from htmx_flask import request

from ..errors import ValidationFailed

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


def wants_fragment() -> bool:
    """An htmx swap wants just the fragment; a history restore after a cache miss needs the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def show_errors(form: FlaskForm, exc: ValidationFailed) -> None:
    """Put the domain's messages next to the form's fields of the same name; one about no field of the form (an
    erased customer, say) is shown at the top of the page."""
    for name, message in exc.fields.items():
        if name in form:
            form[name].errors.append(message)
        else:
            form.form_errors.append(message)
            flash(message, "error")


def form_values(form: FlaskForm) -> dict:
    """The form's data as keyword arguments for a domain function."""
    return {name: value for name, value in form.data.items() if name != "csrf_token"}
