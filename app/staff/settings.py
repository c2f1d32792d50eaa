"""Owner settings: the shop's details and the staff accounts (the shop rules live here too)."""
from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import (BooleanField, EmailField, IntegerField, PasswordField, SelectChoice, SelectField, StringField,
                     TextAreaField)
from wtforms.validators import Optional

from ..errors import ValidationFailed
from ..extensions import db
from ..i18n import LANGUAGE_NAMES, current_shop
from ..labels import CHANNEL_LABELS, PRIORITY_LABELS
from ..models import Shop, User
from . import form_values, owner_required, show_errors, wants_fragment
from ..models.conversations import CHANNELS
from ..models.repairs import PRIORITIES
from ..opening_hours import WEEKDAYS
from ..setup_checklist import dismiss_setup_banner, setup_steps
from ..shop.settings import LIMITS, SETTING_LABELS, WEEKDAY_LABELS, update_shop
from ..shop.users import create_user, generate_password, reset_password, update_user

bp = Blueprint("settings", __name__, url_prefix="/settings")

LANGUAGE_CHOICES = [SelectChoice(code, name) for code, name in LANGUAGE_NAMES.items()]
ROLE_CHOICES = [SelectChoice("staff", _l("Staff")), SelectChoice("owner", _l("Owner"))]

# The overview lists only sections whose screens are registered: (endpoint, title, description).
SECTIONS = [
    ("settings.shop", _l("Shop"), _l("Name, address, language, time zone and the panel address.")),
    ("settings.opening_hours", _l("Opening hours"),
     _l("The weekly hours, closed days and holidays: response times count only open time.")),
    ("settings.messaging", _l("Messages and delivery"),
     _l("Response times, SMS countries, delivery attempts, outbox retention, file space and bulk rates.")),
    ("settings.users", _l("Staff accounts"), _l("Who can sign in, their roles, and password resets.")),
    ("workflow.index", _l("Repair statuses & queues"), _l("The steps of a repair and the queues for tickets.")),
    ("mailboxes.index", _l("Mailboxes"), _l("The e-mail accounts the shop sends from, and their health.")),
    ("sms_settings.index", _l("SMS"), _l("The Twilio account, the sender, and a test SMS.")),
    ("panel_settings.index", _l("Customer panel"), _l("The panel's colour and logo, and files from customers.")),
    ("mail_rules.index", _l("Rules for incoming mail"),
     _l("Set the queue, the person, the priority and tags of new messages by their channel, words and sender.")),
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
    receipt_terms = TextAreaField(_l("Terms on the acceptance receipt"))
    locale = SelectField(_l("Default language"), choices=LANGUAGE_CHOICES, validate_choice=False)
    timezone = SelectField(_l("Time zone"), validate_choice=False)
    notification_email = EmailField(_l("Notification e-mail"))
    undo_seconds = IntegerField(_l("Seconds to undo a sent message"), validators=[Optional()])
    merge_notifies_customer = BooleanField(_l("Tell the customer when their threads are merged"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_names((self.timezone.data or "Europe/Warsaw").partition("/")[0])


class OpeningHoursForm(FlaskForm):
    """Seven days of open/close times (both empty: closed), the owner's closed days and the optional text."""

    closed_days = TextAreaField(SETTING_LABELS["closed_days"])
    opening_hours = TextAreaField(_l("Text for customers instead (optional)"))


for _day in range(WEEKDAYS):
    setattr(OpeningHoursForm, f"open_{_day}", StringField(_l("Opens"), render_kw={"type": "time"}))
    setattr(OpeningHoursForm, f"close_{_day}", StringField(_l("Closes"), render_kw={"placeholder": "17:00"}))


class MessagingForm(FlaskForm):
    sms_countries = StringField(SETTING_LABELS["sms_countries"])
    outbox_retention_days = IntegerField(SETTING_LABELS["outbox_retention_days"], validators=[Optional()])
    max_attempts = IntegerField(SETTING_LABELS["max_attempts"], validators=[Optional()])
    attachment_quota_mb = IntegerField(SETTING_LABELS["attachment_quota_mb"], validators=[Optional()])


for _priority in PRIORITIES:
    setattr(MessagingForm, f"response_{_priority}", IntegerField(PRIORITY_LABELS[_priority], validators=[Optional()]))
for _channel in CHANNELS:
    setattr(MessagingForm, f"bulk_{_channel}", IntegerField(CHANNEL_LABELS[_channel], validators=[Optional()]))


def _field_errors(form: FlaskForm, exc: ValidationFailed, renames: dict[str, str]) -> None:
    """The domain's messages next to the form's fields; `renames` maps its names ("response_times.low") to ours."""
    for name, message in exc.fields.items():
        form[renames.get(name, name)].errors.append(message)


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
    return render_template("staff/settings/index.html", sections=sections, steps=setup_steps(current_shop()))


@bp.route("/setup/dismiss", methods=["POST"])
@owner_required
def dismiss_setup():
    """Hide the setup banner for the signed-in owner; the checklist stays on this page."""
    dismiss_setup_banner(current_user)
    db.session.commit()
    flash(_("The setup checklist stays here in Settings."), "info")
    return redirect(url_for("settings.index"))


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


@bp.route("/opening-hours", methods=["GET", "POST"])
@owner_required
def opening_hours():
    """The weekly hours, closed days and the text customers read; the setup checklist links here (keep the URL)."""
    shop = Shop.current()
    week = shop.opening_week or [None] * WEEKDAYS
    form = OpeningHoursForm(data={"closed_days": "\n".join(shop.closed_days or []),
                                  "opening_hours": shop.opening_hours,
                                  **{f"open_{d}": (week[d] or ["", ""])[0] for d in range(WEEKDAYS)},
                                  **{f"close_{d}": (week[d] or ["", ""])[1] for d in range(WEEKDAYS)}})
    if form.validate_on_submit():
        times = [(form[f"open_{d}"].data or "").strip() for d in range(WEEKDAYS)]
        closes = [(form[f"close_{d}"].data or "").strip() for d in range(WEEKDAYS)]
        try:
            changed = update_shop(shop, actor=current_user, opening_hours=form.opening_hours.data or "",
                                  closed_days=form.closed_days.data or "",
                                  opening_week=[[o, c] if o or c else None for o, c in zip(times, closes)])
            db.session.commit()
        except ValidationFailed as exc:
            db.session.rollback()
            _field_errors(form, exc, {f"opening_week.{d}": f"open_{d}" for d in range(WEEKDAYS)}
                          | {"opening_week": "open_0"})
        else:
            flash(_("Opening hours saved.") if changed else _("Nothing changed."), "success")
            return redirect(url_for("settings.opening_hours"))
    return render_template("staff/settings/opening_hours.html", form=form, weekdays=WEEKDAY_LABELS,
                           shop=shop), _status(form)


@bp.route("/messages", methods=["GET", "POST"])
@owner_required
def messaging():
    """Response times, SMS countries, delivery attempts, outbox retention, space for files and bulk rates."""
    shop = Shop.current()
    form = MessagingForm(data={
        "sms_countries": ", ".join(shop.sms_countries or []), "outbox_retention_days": shop.outbox_retention_days,
        "max_attempts": shop.max_attempts, "attachment_quota_mb": shop.attachment_quota_mb,
        **{f"response_{p}": (shop.response_times or {}).get(p) for p in PRIORITIES},
        **{f"bulk_{c}": (shop.bulk_rates or {}).get(c) for c in CHANNELS}})
    if form.validate_on_submit():
        try:
            changed = update_shop(
                shop, actor=current_user, sms_countries=form.sms_countries.data or "",
                outbox_retention_days=form.outbox_retention_days.data, max_attempts=form.max_attempts.data,
                attachment_quota_mb=form.attachment_quota_mb.data,
                response_times={p: form[f"response_{p}"].data for p in PRIORITIES},
                bulk_rates={c: form[f"bulk_{c}"].data for c in CHANNELS})
            db.session.commit()
        except ValidationFailed as exc:
            db.session.rollback()
            _field_errors(form, exc, {f"response_times.{p}": f"response_{p}" for p in PRIORITIES}
                          | {f"bulk_rates.{c}": f"bulk_{c}" for c in CHANNELS})
        else:
            flash(_("Settings saved.") if changed else _("Nothing changed."), "success")
            return redirect(url_for("settings.messaging"))
    return render_template("staff/settings/messaging.html", form=form, limits=LIMITS, priorities=PRIORITIES,
                           channels=CHANNELS), _status(form)


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
            template = "_password_shown.html" if wants_fragment() else "password_shown.html"
            return render_template("staff/settings/" + template, user=user,
                                   password=None if reset_form.password.data else password)
    if wants_fragment():
        # htmx swaps only 2xx answers, so the form with its errors comes back as 200.
        return render_template("staff/settings/_reset_password.html", user=user, reset_form=reset_form)
    return render_template("staff/settings/user_edit.html", user=user, form=EditUserForm(obj=user),
                           reset_form=reset_form), 422
