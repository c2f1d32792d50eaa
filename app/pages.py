"""What the staff's pages and the customer panel's pages share: the domain's refusals shown on a form, a safe place
to return to after signing in, whether htmx wants a fragment, and the one-button actions of a settings list."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect
from flask_login import current_user
from flask_wtf import FlaskForm
from htmx_flask import request

from .errors import ValidationFailed
from .extensions import db


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


def one_button(action, *args, back: str, done: str | None = None):
    """Run a one-button action of a settings list (move, switch, deactivate, delete) as the signed-in user and go
    back to `back`, saying how it went: the domain's refusals as errors, else `done` unless the action answered
    False (nothing to do)."""
    try:
        result = action(*args, actor=current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        for message in exc.fields.values():
            flash(message, "error")
    else:
        db.session.commit()
        if done and result is not False:
            flash(done, "success")
    return redirect(back)
