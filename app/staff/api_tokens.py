"""Settings → API tokens (owners): which systems can use the API, since when, last seen; make and revoke tokens."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField
from wtforms.validators import Optional

from ..api_tokens import api_tokens, create_token, revoke_token
from ..errors import ValidationFailed
from ..extensions import db
from ..models import ApiToken
from . import owner_required, show_errors

bp = Blueprint("api_tokens", __name__, url_prefix="/settings/api-tokens")


class TokenForm(FlaskForm):
    name = StringField(_l("Name"))
    expires_days = IntegerField(_l("Expires after (days)"), validators=[Optional()])


@bp.route("/", methods=["GET", "POST"])
@owner_required
def index():
    form = TokenForm()
    if form.validate_on_submit():
        try:
            token, plain = create_token(form.name.data, actor=current_user, expires_days=form.expires_days.data)
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            db.session.commit()
            # Rendered, never redirected or flashed: the token must not travel in a URL or the session cookie.
            return render_template("staff/settings/api_token_created.html", token=token, plain=plain), \
                {"Cache-Control": "no-store"}
    return render_template("staff/settings/api_tokens.html", form=form,
                           tokens=api_tokens()), 422 if form.errors else 200


@bp.route("/<int:token_id>/revoke", methods=["GET", "POST"])
@owner_required
def revoke(token_id: int):
    """GET asks for confirmation (a page of its own, so it works without JavaScript); POST revokes."""
    token = db.get_or_404(ApiToken, token_id)
    form = FlaskForm()
    if form.validate_on_submit():
        revoke_token(token, actor=current_user)
        db.session.commit()
        flash(_("Token “%(name)s” revoked: it no longer works.", name=token.name), "success")
        return redirect(url_for(".index"))
    return render_template("staff/settings/api_token_revoke.html", token=token, form=form)
