"""Settings → Customer panel: the panel's colour and logo, whether customers may send files there, and the public
request form (on or off, and the link and frame to paste into the shop's website)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, FileField, IntegerField, StringField
from wtforms.validators import Optional

from ..attachments import store
from ..errors import ValidationFailed
from ..extensions import db
from ..i18n import current_shop
from ..shop.branding import update_panel_settings
from ..shop.settings import max_file_mb
from ..request_input import uploads
from . import owner_required, show_errors

bp = Blueprint("panel_settings", __name__, url_prefix="/settings/panel")


class PanelSettingsForm(FlaskForm):
    brand_colour = StringField(_l("Brand colour"), render_kw={"type": "color"})
    logo = FileField(_l("Logo"), render_kw={"accept": "image/png,image/jpeg,image/webp,image/gif"})
    remove_logo = BooleanField(_l("Remove the logo"))
    allows_attachments = BooleanField(_l("Customers may send photos and files"))
    attachment_max_mb = IntegerField(_l("Largest file from a customer (MB)"), validators=[Optional()])
    request_form_enabled = BooleanField(_l("Take requests through the public request form"))


@bp.route("/", methods=["GET", "POST"])
@owner_required
def index():
    shop = current_shop()
    form = PanelSettingsForm(data={"brand_colour": shop.panel_brand_colour,
                                   "allows_attachments": shop.panel_allows_attachments,
                                   "attachment_max_mb": shop.panel_attachment_max_mb,
                                   "request_form_enabled": shop.request_form_enabled})
    if form.validate_on_submit():
        try:
            logo = next((store(f.stream, f.filename) for f in uploads(form.logo.data)), None)
            changed = update_panel_settings(shop, brand_colour=form.brand_colour.data, logo=logo,
                                            remove_logo=form.remove_logo.data,
                                            allows_attachments=form.allows_attachments.data,
                                            attachment_max_mb=form.attachment_max_mb.data,  # empty: unchanged
                                            request_form_enabled=form.request_form_enabled.data,
                                            actor=current_user)
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Panel settings saved.") if changed else _("Nothing changed."), "success")
            return redirect(url_for(".index"))
    return render_template("staff/panel_settings/index.html", form=form, max_file_mb=max_file_mb()), \
        422 if form.errors else 200
