"""Settings → Trusted domains (owners): mail from these domains opens conversations without a customer."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField

from ..errors import ValidationFailed
from ..extensions import db
from ..inbound.trusted import add_trusted_domain, remove_trusted_domain, trusted_domains
from ..models import TrustedDomain
from . import owner_required, show_errors

bp = Blueprint("trusted_domains", __name__, url_prefix="/settings/trusted-domains")


class TrustedDomainForm(FlaskForm):
    domain = StringField(_l("Domain"))


@bp.route("/", methods=["GET", "POST"])
@owner_required
def index():
    form = TrustedDomainForm()
    if form.validate_on_submit():
        try:
            trusted = add_trusted_domain(form.domain.data, actor=current_user)
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Mail from %(domain)s is now accepted.", domain=trusted.domain), "success")
            return redirect(url_for(".index"))
    return render_template("staff/settings/trusted_domains.html", form=form,
                           domains=trusted_domains()), 422 if form.errors else 200


@bp.route("/<int:domain_id>/delete", methods=["POST"])
@owner_required
def delete(domain_id: int):
    trusted = db.get_or_404(TrustedDomain, domain_id)
    if FlaskForm().validate_on_submit():
        remove_trusted_domain(trusted, actor=current_user)
        db.session.commit()
        flash(_("%(domain)s is no longer trusted.", domain=trusted.domain), "success")
    return redirect(url_for(".index"))
