"""The signed-in person's own account: their details, password and language."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms.validators import EqualTo

from ..errors import ValidationFailed
from ..extensions import db
from ..models.users import LOCALES
from .auth import safe_next, start_session
from . import show_errors
from ..shop.users import change_own_password

bp = Blueprint("account", __name__, url_prefix="/account")


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"))
    new_password = PasswordField(_l("New password"))
    new_password_again = PasswordField(
        _l("New password again"), validators=[EqualTo("new_password", _l("The two new passwords differ."))]
    )


@bp.route("/")
@login_required
def index():
    return render_template("staff/account/index.html", form=PasswordForm())


@bp.route("/password", methods=["POST"])
@login_required
def password():
    """Change one's own password: other sessions of the account end, this one goes on."""
    user = current_user._get_current_object()
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            change_own_password(user, current=form.current_password.data, new=form.new_password.data)
            db.session.commit()
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            # The session version moved on; sign this browser in again under the new one, keeping "remember me".
            remembered = current_app.config["REMEMBER_COOKIE_NAME"] in request.cookies
            start_session(user, remember=remembered, how="password_set")
            db.session.commit()
            flash(_("Your password has been changed. Other devices have been signed out."), "success")
            return redirect(url_for("account.index"))
    return render_template("staff/account/index.html", form=form), 422


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
