"""Owner settings: the shop's details and the staff accounts (the shop rules live here too)."""
from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from htmx_flask import request
from sqlalchemy import func, select
from wtforms import (BooleanField, EmailField, IntegerField, PasswordField, SelectChoice, SelectField, StringField,
                     TextAreaField)
from wtforms.validators import Optional

from ..errors import ValidationFailed
from ..extensions import db
from ..i18n import LANGUAGE_NAMES
from ..models import Shop, User
from . import form_values, owner_required, show_errors
from ..shop import update_shop
from .users import create_user, generate_password, reset_password, update_user

bp = Blueprint("settings", __name__, url_prefix="/settings")

LANGUAGE_CHOICES = [SelectChoice(code, name) for code, name in LANGUAGE_NAMES.items()]
ROLE_CHOICES = [SelectChoice("staff", _l("Staff")), SelectChoice("owner", _l("Owner"))]

# The overview lists only sections whose screens are registered: (endpoint, title, description).
SECTIONS = [
    ("settings.shop", _l("Shop"), _l("Name, address, opening hours, language, time zone and the panel address.")),
    ("settings.users", _l("Staff accounts"), _l("Who can sign in, their roles, and password resets.")),
    ("workflow.index", _l("Repair statuses & queues"), _l("The steps of a repair and the queues for tickets.")),
    ("mailboxes.index", _l("Mailboxes"), _l("The e-mail accounts the shop sends from, and their health.")),
    ("sms_settings.index", _l("SMS"), _l("The Twilio account, the sender, and a test SMS.")),
    ("panel_settings.index", _l("Customer panel"), _l("The panel's colour and logo, and files from customers.")),
    ("trusted_domains.index", _l("Trusted domains"),
     _l("Partners and suppliers whose mail is accepted without being customers.")),
    ("api_tokens.index", _l("API tokens"),
     _l("Tokens for the shop's other systems: who made them, their last use, revoking them.")),
    ("templates.index", _l("Templates"), _l("Ready texts with tags, their files, and the reply header and footer.")),
    ("notifications.index", _l("Notifications"),
     _l("Automatic messages when a repair changes status, and quiet hours for SMS.")),
    ("backups.index", _l("Backups"), _l("The daily backup, its files to download, and a backup right now.")),
    ("audit.index", _l("Audit log"), _l("Who did what and when: sign-ins, sends, deletions, exports, erasures.")),
]


@cache
def timezone_names(first_area: str = "Europe") -> list[str]:
    """Every IANA time zone the system knows, for the shop form's list: those of the shop's own continent first
    (Europe for a shop in Warsaw, not Africa/Abidjan), then the rest, each part alphabetically."""
    return sorted(available_timezones(), key=lambda name: (name.partition("/")[0] != first_area, name))


# --- forms ------------------------------------------------------------------------------------
# Choices are not checked by the forms (validate_choice=False): the rules above give the clearer message.


class ShopForm(FlaskForm):
    name = StringField(_l("Shop name"))
    slug = StringField(_l("Short name (slug)"))
    address = TextAreaField(_l("Address"))
    phone = StringField(_l("Phone"))
    opening_hours = TextAreaField(_l("Opening hours"))
    locale = SelectField(_l("Default language"), choices=LANGUAGE_CHOICES, validate_choice=False)
    timezone = SelectField(_l("Time zone"), validate_choice=False)
    notification_email = EmailField(_l("Notification e-mail"))
    undo_seconds = IntegerField(_l("Seconds to undo a sent message"), validators=[Optional()])
    merge_notifies_customer = BooleanField(_l("Tell the customer when their threads are merged"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_names((self.timezone.data or "Europe/Warsaw").partition("/")[0])


class NewUserForm(FlaskForm):
    name = StringField(_l("Name"))
    email = EmailField(_l("E-mail"))
    role = SelectField(_l("Role"), choices=ROLE_CHOICES, validate_choice=False)
    password = PasswordField(_l("Initial password"))


class EditUserForm(FlaskForm):
    name = StringField(_l("Name"))
    email = EmailField(_l("E-mail"))
    role = SelectField(_l("Role"), choices=ROLE_CHOICES, validate_choice=False)
    active = BooleanField(_l("Active (can sign in)"))
    can_see_outbox = BooleanField(_l("Can see the outbox"))


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"))


def _status(form: FlaskForm) -> int:
    return 422 if form.errors else 200


# --- views ------------------------------------------------------------------------------------


@bp.route("/")
@owner_required
def index():
    sections = [(endpoint, title, text) for endpoint, title, text in SECTIONS
                if endpoint in current_app.view_functions]
    return render_template("staff/settings/index.html", sections=sections)


@bp.route("/shop", methods=["GET", "POST"])
@owner_required
def shop():
    shop = Shop.current()
    form = ShopForm(obj=shop)
    if form.validate_on_submit():
        try:
            changed = update_shop(shop, actor=current_user, **form_values(form))
            db.session.commit()
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            flash(_("Shop settings saved.") if changed else _("Nothing changed."), "success")
            return redirect(url_for("settings.shop"))
    return render_template("staff/settings/shop.html", form=form), _status(form)


@bp.route("/users")
@owner_required
def users():
    accounts = db.session.scalars(select(User).order_by(User.active.desc(), func.lower(User.name), User.id)).all()
    return render_template("staff/settings/users.html", users=accounts)


@bp.route("/users/new", methods=["GET", "POST"])
@owner_required
def user_new():
    form = NewUserForm()
    if form.validate_on_submit():
        password = form.password.data or generate_password()
        try:
            user = create_user(name=form.name.data, email=form.email.data, role=form.role.data,
                               password=password, actor=current_user)
            db.session.commit()
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            # A generated password is shown in this response only: never kept in the session or a flash.
            return render_template("staff/settings/password_shown.html", user=user, created=True,
                                   password=None if form.password.data else password)
    return render_template("staff/settings/user_new.html", form=form), _status(form)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@owner_required
def user_edit(user_id: int):
    user = db.get_or_404(User, user_id)
    form = EditUserForm(obj=user)
    if form.validate_on_submit():
        try:
            changed = update_user(user, actor=current_user, **form_values(form))
            db.session.commit()
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            flash(_("Account of %(name)s saved.", name=user.name) if changed else _("Nothing changed."), "success")
            # An owner who made themselves staff can no longer open the settings.
            return redirect(url_for("settings.users" if current_user.is_owner else "account.index"))
    return render_template("staff/settings/user_edit.html", user=user, form=form,
                           reset_form=ResetPasswordForm()), _status(form)


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@owner_required
def user_password(user_id: int):
    """Reset someone else's password; one's own is changed on My account, with the current password."""
    user = db.get_or_404(User, user_id)
    if user.id == current_user.id:
        return redirect(url_for("account.index"))
    reset_form = ResetPasswordForm()
    if reset_form.validate_on_submit():
        try:
            password = reset_password(user, reset_form.password.data or None, actor=current_user)
            db.session.commit()
        except ValidationFailed as exc:
            show_errors(reset_form, exc)
        else:
            template = "_password_shown.html" if request.htmx else "password_shown.html"
            return render_template("staff/settings/" + template, user=user,
                                   password=None if reset_form.password.data else password)
    if request.htmx:
        # htmx swaps only 2xx answers, so the form with its errors comes back as 200.
        return render_template("staff/settings/_reset_password.html", user=user, reset_form=reset_form)
    return render_template("staff/settings/user_edit.html", user=user, form=EditUserForm(obj=user),
                           reset_form=reset_form), 422
