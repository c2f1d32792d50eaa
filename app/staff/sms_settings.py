"""Settings → SMS (owners): the Twilio account, the addresses for Twilio's console, the reply window, a test SMS."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, RadioField, SelectChoice, StringField, TelField, URLField
from wtforms.validators import Optional

from ..channels.base import SendResult
from ..channels.sms import INBOUND_PATH, STATUS_CALLBACK_PATH, send_test_sms
from ..errors import ValidationFailed
from ..extensions import db, limiter
from ..models import Shop, SmsAccount
from ..shop.settings import update_shop
from ..accounts.sms import active_account, configure_sms
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


class TestSmsForm(FlaskForm):
    to = TelField(_l("Phone number"))


class RepliesForm(FlaskForm):
    sms_reply_window_days = IntegerField(_l("Days a reply finds its conversation"), validators=[Optional()])


def _account_form(account: SmsAccount | None) -> SmsAccountForm:
    sender = "service" if account is not None and account.messaging_service_sid else "number"
    return SmsAccountForm(obj=account, sender=sender)


def _page(form: SmsAccountForm, test_form: TestSmsForm, result: SendResult | None = None,
          replies_form: RepliesForm | None = None):
    replies_form = replies_form or RepliesForm(prefix="replies", obj=Shop.current())
    status = 422 if form.errors or test_form.errors or replies_form.errors else 200
    return render_template(
        "staff/sms_settings/index.html", account=active_account(), form=form, test_form=test_form, result=result,
        replies_form=replies_form, status_callback_url=public_url(STATUS_CALLBACK_PATH),
        inbound_url=public_url(INBOUND_PATH), test_limit=TEST_SMS_PER_HOUR,
    ), status


@bp.route("/", methods=["GET", "POST"])
@owner_required
def index():
    form = _account_form(active_account())
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
    return _page(_account_form(active_account()), TestSmsForm(prefix="test"), replies_form=replies_form)


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
    return _page(_account_form(active_account()), test_form, result)
