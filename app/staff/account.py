"""The signed-in person's own preferences (language)."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, request, session, url_for
from flask_login import current_user

from ..extensions import db
from ..models.users import LOCALES
from .auth import safe_next

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.route("/language", methods=["POST"])
def language():
    """Switch the UI language: stored on the account when signed in, in the session otherwise."""
    locale = request.form.get("locale")
    if locale not in LOCALES:
        abort(400)
    session["locale"] = locale
    if current_user.is_authenticated:
        current_user.locale = locale
        db.session.commit()
    return redirect(safe_next(request.form.get("next")) or url_for("inbox.index"))
