"""The SMS account's balance: asked of the provider regularly (and on demand in Settings → SMS), kept on the
account, and one notice to the shop's notification address when it falls below the owner's threshold."""
from __future__ import annotations

import logging

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import update

from .accounts.sms import active_account
from .channels.shop_mail import mail_the_shop, working_mailbox
from .channels.sms import fetch_balance
from .channels.sms_provider import BalanceUnavailable
from .crypto import SecretUnreadable
from .extensions import db
from .models import Shop, SmsAccount, utcnow
from .models.audit import record
from .urls import absolute_url

log = logging.getLogger(__name__)


def check_sms_balance() -> str | None:
    """Ask the active account's provider for its balance, keep it, and tell the shop once when it is low.

    Returns None, or why the balance could not be read: logged, and kept on the account (balance_error) for
    Settings → SMS and `flask status` until a check succeeds; the last known balance stays. Commits.
    """
    account = active_account()
    if account is None:
        return None
    try:
        balance = fetch_balance(account)
    except (BalanceUnavailable, SecretUnreadable) as exc:
        log.warning("could not read the SMS balance: %s", exc)
        error = str(exc) or _("The stored auth token cannot be read (the app's secret key changed); "
                              "enter it again in Settings → SMS.")
        account.balance_error, account.balance_error_at = error, utcnow()
        db.session.commit()
        return error
    account.balance, account.balance_currency, account.balance_checked_at = balance.amount, balance.unit, utcnow()
    account.balance_error = account.balance_error_at = None
    notify_low_balance(account)
    db.session.commit()
    return None


def notify_low_balance(account: SmsAccount) -> bool:
    """Mail the shop's notification address when the balance is below the threshold and it was not told since the
    balance last was above it; True when that notice went out. A balance back above the threshold re-arms it.

    The notice counts as given also when nobody can be mailed (no address, no working mailbox): staff see the
    banner anyway, and a later check must not send a stale one. The caller commits.
    """
    if not account.balance_is_low:
        account.low_balance_noticed_at = None
        return False
    # Claimed by a conditional UPDATE: the job and a check from the settings page running at once tell it once.
    claimed = db.session.execute(
        update(SmsAccount).where(SmsAccount.id == account.id, SmsAccount.low_balance_noticed_at.is_(None))
        .values(low_balance_noticed_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    db.session.refresh(account, ["low_balance_noticed_at"])
    if not claimed:
        return False
    shop = Shop.current()
    via = working_mailbox() if shop.notification_email else None
    told = False
    if via is not None:
        with force_locale(shop.locale):
            told = mail_the_shop(shop, via, _("SMS balance is low: %(amount)s %(unit)s left",
                                              amount=_amount(account), unit=account.balance_currency or ""),
                                 render_template("emails/sms_low_balance.txt", account=account, shop=shop,
                                                 amount=_amount(account), threshold=_amount(account, threshold=True),
                                                 link=absolute_url("sms_settings.index")))
    record("sms.low_balance", target=account, balance=str(account.balance),
           threshold=str(account.low_balance_threshold), notified=shop.notification_email if told else None)
    return told


def _amount(account: SmsAccount, threshold: bool = False) -> str:
    value = account.low_balance_threshold if threshold else account.balance
    return f"{value.normalize():f}" if value is not None else ""
