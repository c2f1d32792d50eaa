"""What the staff's pages and the customer panel's pages share: the domain's refusals shown on a form, and a safe
place to return to after signing in."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash
from flask_wtf import FlaskForm
from htmx_flask import request

from .errors import ValidationFailed


def show_errors(form: FlaskForm, exc: ValidationFailed) -> None:
    """Put the domain's messages next to the form's fields of the same name; one about no field of the form (an
    erased customer, say) is shown at the top of the page."""
    for name, message in exc.fields.items():
        if name in form:
            form[name].errors.append(message)
        else:
            form.form_errors.append(message)
            flash(message, "error")


def wants_fragment(target: str | None = None) -> bool:
    """An htmx request wants just a fragment (the one of element `target`, when given); a history restore after
    a cache miss needs the whole page."""
    htmx = request.htmx
    return bool(htmx) and not htmx.history_restore_request and (target is None or htmx.target == target)


def safe_next(target: str | None) -> str | None:
    """A local path to return to after sign-in; anything pointing elsewhere is ignored."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target
