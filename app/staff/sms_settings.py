"""Settings → SMS (owners): the provider (Twilio or SMSAPI.pl) and its account, the addresses for the provider's
console (SMSAPI's with their secret, rotated here), the balance and its threshold, the reply window, a test SMS."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, PasswordField, RadioField, SelectChoice, StringField, TelField, URLField
from wtforms.validators import Optional

from ..channels.base import SendResult
from ..channels.sms import PROVIDER_NAMES, STATUS_CALLBACK_PATH, inbound_url, report_url, send_test_sms
from ..errors import ValidationFailed
from ..extensions import db, limiter
from ..models import Shop
from ..shop.settings import update_shop
from ..accounts.sms import (account_of, active_account, configure_sms, configure_smsapi, rotate_callback_secret,
                            set_low_balance_threshold, use_provider)
from ..sms_balance import check_sms_balance
from ..urls import public_url
from . import form_values, owner_required, show_errors

bp = Blueprint("sms_settings", __name__, url_prefix="/settings/sms")

# Every test SMS is billed, and a stolen session must not turn the button into a toll-fraud pump: shop-wide.
TEST_SMS_PER_HOUR = 5
SENDER_CHOICES = [SelectChoice("number", _l("A phone number or a sender name")),
                  SelectChoice("service", _l("A Messaging Service"))]


class SmsAccountForm(FlaskForm):
    account_sid = StringField(_l("Account SID"))
    auth_token = PasswordField(_l("Auth token"))  # PasswordField never renders its value back
    sender = RadioField(_l("Send as"), choices=SENDER_CHOICES, default="number", validate_choice=False)
    from_number = StringField(_l("Sender number or name"))
    messaging_service_sid = StringField(_l("Messaging Service SID"))
    api_base_url = URLField(_l("API base URL (for Twilio-compatible providers)"))


class SmsapiForm(FlaskForm):
    token = PasswordField(_l("API token"))
    from_number = StringField(_l("Sender name or number"))
    api_base_url = URLField(_l("API base URL"))


class ProviderForm(FlaskForm):
    provider = HiddenField()


class BalanceForm(FlaskForm):
    low_balance_threshold = StringField(_l("Tell me when the balance falls below"))


class TestSmsForm(FlaskForm):
    to = TelField(_l("Phone number"))


class RepliesForm(FlaskForm):
    sms_reply_window_days = IntegerField(_l("Days a reply finds its conversation"), validators=[Optional()])


def _page(form: SmsAccountForm, test_form: TestSmsForm, result: SendResult | None = None,
          replies_form: RepliesForm | None = None, smsapi_form: SmsapiForm | None = None,
          balance_form: BalanceForm | None = None, balance_error: str | None = None):
    account, smsapi = active_account(), account_of("smsapi")
    replies_form = replies_form or RepliesForm(prefix="replies", obj=Shop.current())
    smsapi_form = smsapi_form or SmsapiForm(prefix="smsapi", obj=smsapi)
    balance_form = balance_form or BalanceForm(prefix="balance", obj=account)
    forms = (form, test_form, replies_form, smsapi_form, balance_form)
    status = 422 if any(f.errors for f in forms) or balance_error else 200
    return render_template(
        "staff/sms_settings/index.html", account=account, form=form, test_form=test_form, result=result,
        replies_form=replies_form, smsapi_form=smsapi_form, balance_form=balance_form, balance_error=balance_error,
        twilio=account_of("twilio"), smsapi=smsapi, provider_names=PROVIDER_NAMES,
        status_callback_url=public_url(STATUS_CALLBACK_PATH), inbound_url=inbound_url(None),
        smsapi_report_url=report_url(smsapi) if smsapi else None,
        smsapi_inbound_url=inbound_url(smsapi) if smsapi else None, test_limit=TEST_SMS_PER_HOUR,
    ), status


def _account_form() -> SmsAccountForm:
    account = account_of("twilio")
    sender = "service" if account is not None and account.messaging_service_sid else "number"
    return SmsAccountForm(obj=account, sender=sender)


@bp.route("/", methods=["GET", "POST"])
@owner_required
def index():
    form = _account_form()
    if form.validate_on_submit():
        by_service = form.sender.data == "service"
        try:
            configure_sms(
                form.account_sid.data, form.auth_token.data,
                from_number=None if by_service else form.from_number.data,
                messaging_service_sid=form.messaging_service_sid.data if by_service else None,
                api_base_url=form.api_base_url.data, actor=current_user,
            )
            db.session.commit()
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            flash(_("SMS account saved."), "success")
            return redirect(url_for("sms_settings.index"))
    return _page(form, TestSmsForm(prefix="test"))


@bp.route("/replies", methods=["POST"])
@owner_required
def replies():
    """How many days after our last SMS a customer's reply still joins that conversation (Shop setting)."""
    replies_form = RepliesForm(prefix="replies")
    if replies_form.validate_on_submit():
        try:
            update_shop(Shop.current(), actor=current_user, **form_values(replies_form))
            db.session.commit()
        except ValidationFailed as exc:
            show_errors(replies_form, exc)
        else:
            flash(_("Reply settings saved."), "success")
            return redirect(url_for("sms_settings.index"))
    return _page(_account_form(), TestSmsForm(prefix="test"), replies_form=replies_form)


@bp.route("/test", methods=["POST"])
@owner_required
@limiter.limit(f"{TEST_SMS_PER_HOUR} per hour", key_func=lambda: "sms-test",
               deduct_when=lambda response: response.status_code == 200)  # only SMS that went to Twilio count
def test():
    test_form = TestSmsForm(prefix="test")
    result = None
    if test_form.validate_on_submit():
        try:
            result = send_test_sms(test_form.to.data, actor=current_user)
        except ValidationFailed as exc:
            show_errors(test_form, exc)
        db.session.commit()  # the audit entry, and the account's health or a STOP Twilio told us about
    return _page(_account_form(), test_form, result)


@bp.route("/smsapi", methods=["POST"])
@owner_required
def smsapi():
    """Save the SMSAPI.pl account and make it the provider SMS go out through."""
    smsapi_form = SmsapiForm(prefix="smsapi")
    if smsapi_form.validate_on_submit():
        try:
            configure_smsapi(smsapi_form.token.data, smsapi_form.from_number.data,
                             api_base_url=smsapi_form.api_base_url.data, actor=current_user)
            db.session.commit()
        except ValidationFailed as exc:
            show_errors(smsapi_form, exc)
        else:
            flash(_("SMSAPI account saved; SMS now go out through SMSAPI."), "success")
            return redirect(url_for("sms_settings.index"))
    return _page(_account_form(), TestSmsForm(prefix="test"), smsapi_form=smsapi_form)


@bp.route("/smsapi/rotate", methods=["POST"])
@owner_required
def rotate():
    """A new secret in SMSAPI's callback URLs: the old URLs get 403 from now on, so paste the new ones."""
    account = account_of("smsapi")
    if ProviderForm().validate_on_submit() and account is not None:
        rotate_callback_secret(account, actor=current_user)
        db.session.commit()
        flash(_("New callback addresses made; paste the address for incoming SMS into SMSAPI's panel again."),
              "success")
    return redirect(url_for("sms_settings.index"))


@bp.route("/provider", methods=["POST"])
@owner_required
def provider():
    """Send SMS through the other stored account (Twilio or SMSAPI) again, with its saved settings."""
    form = ProviderForm()
    if form.validate_on_submit():
        try:
            use_provider(form.provider.data, actor=current_user)
            db.session.commit()
        except ValidationFailed as exc:
            flash(exc.message_for("provider"), "error")
        else:
            flash(_("SMS now go out through %(provider)s.", provider=PROVIDER_NAMES[form.provider.data]), "success")
    return redirect(url_for("sms_settings.index"))


@bp.route("/balance", methods=["POST"])
@owner_required
def balance():
    """Save the low-balance threshold and ask the provider for the balance now."""
    account = active_account()
    balance_form = BalanceForm(prefix="balance")
    if account is not None and balance_form.validate_on_submit():
        try:
            set_low_balance_threshold(account, balance_form.low_balance_threshold.data, actor=current_user)
            db.session.commit()
        except ValidationFailed as exc:
            show_errors(balance_form, exc)
        else:
            error = check_sms_balance()
            if error is None:
                flash(_("Balance checked."), "success")
                return redirect(url_for("sms_settings.index"))
            return _page(_account_form(), TestSmsForm(prefix="test"), balance_error=error)
    return _page(_account_form(), TestSmsForm(prefix="test"), balance_form=balance_form)
