"""The owner's setup checklist: what a new shop still lacks, worked out from its data (nothing is stored but the
owner's choice to hide the banner)."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select

from .accounts.sms import active_account
from .extensions import db
from .messaging.starter_templates import notice_statuses
from .models import Mailbox, RepairStatus, Shop, User, utcnow
from .models.audit import record
from .models.templates import StatusNotification


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    done: bool
    missing: str  # what is missing, in the shop's words ("" when done)
    endpoint: str  # the settings page that fixes it


def setup_steps(shop: Shop) -> list[Step]:
    """Every step of setting the shop up, each ticked when its data is there; a handful of small queries."""
    return [_shop_details(shop), _mailbox(), _sms(), _panel(shop), _notification_address(shop), _notices(),
            _staff_accounts()]


def setup_done(steps: list[Step]) -> bool:
    return all(step.done for step in steps)


def dismiss_setup_banner(user: User) -> None:
    """Hide the setup banner for this owner (the checklist stays in Settings)."""
    if user.setup_dismissed_at is None:
        user.setup_dismissed_at = utcnow()
        record("settings.setup_dismissed", by=user, target=user)
    db.session.flush()


def _step(key: str, title: str, missing: list[str] | str, endpoint: str) -> Step:
    text = "; ".join(missing) if isinstance(missing, list) else missing
    return Step(key=key, title=title, done=not text, missing=text, endpoint=endpoint)


def _shop_details(shop: Shop) -> Step:
    missing = [label for value, label in ((shop.address, _("the address")), (shop.phone, _("the phone number")),
                                          (shop.opening_hours, _("the opening hours"))) if not (value or "").strip()]
    return _step("shop", _("Shop details and opening hours"),
                 _("Missing: %(fields)s.", fields=", ".join(missing)) if missing else "", "settings.shop")


def _mailbox() -> Step:
    title, endpoint = _("A mailbox that sends and receives"), "mailboxes.index"
    boxes = list(db.session.execute(select(
        Mailbox.imap_host, Mailbox.last_send_at, Mailbox.smtp_test_ok_at, Mailbox.last_poll_ok_at,
        Mailbox.imap_test_ok_at).where(Mailbox.active.is_(True))))
    if not boxes:
        return _step("mailbox", title, _("No mailbox is set up (or every mailbox is switched off)."), endpoint)
    sends = any(b.last_send_at or b.smtp_test_ok_at for b in boxes)
    receives = any(b.last_poll_ok_at or b.imap_test_ok_at for b in boxes)
    missing = []
    if not sends:
        missing.append(_("No mailbox has sent mail or passed the sending (SMTP) test yet."))
    if not receives:
        missing.append(_("No mailbox has received mail or passed the receiving (IMAP) test yet.")
                       if any(b.imap_host for b in boxes) else _("No mailbox has a receiving (IMAP) server."))
    return _step("mailbox", title, " ".join(missing), endpoint)


def _sms() -> Step:
    return _step("sms", _("SMS"), "" if active_account() is not None else _("No SMS account is set up."),
                 "sms_settings.index")


def _panel(shop: Shop) -> Step:
    return _step("panel", _("The customer panel"),
                 "" if shop.panel_logo_path else _("The panel has no logo yet: customers will not recognise the shop."),
                 "panel_settings.index")


def _notification_address(shop: Shop) -> Step:
    return _step("notification_address", _("The notification address"),
                 "" if shop.notification_email else
                 _("No address is set for the shop's own notices (a broken mailbox, for example)."), "settings.shop")


def _notices() -> Step:
    statuses = notice_statuses(RepairStatus.ordered())
    on = set(db.session.scalars(select(StatusNotification.status_id).where(StatusNotification.enabled.is_(True))))
    off = [status.name for status in statuses.values() if status.id not in on]
    return _step("notices", _("Automatic notices for the main statuses"),
                 ngettext("No automatic notice is switched on for the status %(names)s.",
                          "No automatic notice is switched on for the statuses %(names)s.", len(off),
                          names=", ".join(f"“{name}”" for name in off)) if off else "",
                 "notifications.index")


def _staff_accounts() -> Step:
    staff = db.session.scalar(select(func.count(User.id)).where(User.active.is_(True), User.role == "staff"))
    return _step("staff", _("Staff accounts"), "" if staff else _("Only owners can sign in: add your staff."),
                 "settings.users")
