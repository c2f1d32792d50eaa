"""Telling the shop that a mailbox broke: one e-mail per breakage to its notification address, through another
mailbox that works (the owners' banner shows it anyway)."""
from __future__ import annotations

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, update

from .channels.shop_mail import mail_the_shop, working_mailbox
from .extensions import db
from .models import Mailbox, Shop, utcnow
from .models.audit import record
from .urls import absolute_url


def notify_broken_mailboxes() -> int:
    """E-mail the shop's notification address about each mailbox that broke and was not told yet, through the
    default working mailbox; returns the number of mails sent. Commits.

    Each breakage is told once (broken_notified_at), also when there is nobody or nothing to tell it through
    (no notification address, no other working mailbox, the sending failed): then the owners' banner is all.
    A mailbox that works again is told about again when it breaks next time. Two processes running this at once
    tell each breakage once: each claims a breakage (sets broken_notified_at where it is still unset) before
    telling it.
    """
    sent = 0
    for mailbox in _untold_breakages():
        claimed = db.session.execute(
            update(Mailbox).where(Mailbox.id == mailbox.id, Mailbox.broken_notified_at.is_(None))
            .values(broken_notified_at=utcnow()).execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if not claimed:
            continue  # another process told it
        shop = Shop.current()
        via = working_mailbox(besides=mailbox)
        told = bool(shop.notification_email and via is not None and _send_notice(mailbox, via, shop))
        sent += told
        record("mailbox.broken", target=mailbox, error=mailbox.last_error,
               notified=shop.notification_email if told else None, via=via.email if told else None)
        db.session.commit()
    return sent


def _untold_breakages() -> list[Mailbox]:
    """The active mailboxes that are broken and whose breakage was not told yet (as this process reads it)."""
    return list(db.session.scalars(select(Mailbox).where(
        Mailbox.active.is_(True), Mailbox.broken_at.is_not(None), Mailbox.broken_notified_at.is_(None),
    ).order_by(Mailbox.id)))


def _send_notice(mailbox: Mailbox, via: Mailbox, shop: Shop) -> bool:
    """Send the notice about `mailbox` through `via` in the shop's language; False when it could not go out."""
    with force_locale(shop.locale):
        return mail_the_shop(shop, via, _("The mailbox %(name)s is not working", name=mailbox.name),
                             render_template("emails/mailbox_broken.txt", mailbox=mailbox, shop=shop,
                                             link=absolute_url("mailboxes.edit", mailbox_id=mailbox.id)))
