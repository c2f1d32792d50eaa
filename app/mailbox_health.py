"""Telling the shop that a mailbox broke: one e-mail per breakage to its notification address, through another
mailbox that works (the owners' banner shows it anyway)."""
from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, update

from .channels.email import CONNECT_ERRORS, connect, say_goodbye
from .channels.smtp_failures import describe_failure
from .extensions import db
from .accounts.mailboxes import record_failure, record_sent
from .models import Mailbox, Shop, utcnow
from .models.audit import record
from .urls import absolute_url

log = logging.getLogger(__name__)


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
        via = _working_mailbox(besides=mailbox)
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


def _working_mailbox(besides: Mailbox) -> Mailbox | None:
    """An active mailbox other than `besides` whose last attempts went through, the default one first."""
    return db.session.scalar(
        select(Mailbox).where(Mailbox.id != besides.id, Mailbox.active.is_(True), Mailbox.broken_at.is_(None),
                              Mailbox.consecutive_failures == 0)
        .order_by(Mailbox.is_default.desc(), Mailbox.id).limit(1))


def _send_notice(mailbox: Mailbox, via: Mailbox, shop: Shop) -> bool:
    """Send the notice about `mailbox` through `via` in the shop's language; False when it could not go out (the
    failure counts towards `via`'s health)."""

    with force_locale(shop.locale):
        mail = EmailMessage()
        mail["Subject"] = _("The mailbox %(name)s is not working", name=mailbox.name)
        mail["From"] = formataddr((shop.name, via.email))
        mail["To"] = shop.notification_email
        mail["Date"] = format_datetime(utcnow())
        mail["Message-ID"] = make_msgid(domain=via.email.rpartition("@")[2])
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(render_template("emails/mailbox_broken.txt", mailbox=mailbox, shop=shop,
                                         link=absolute_url("mailboxes.edit", mailbox_id=mailbox.id)))
        try:
            connection = connect(via)
            try:
                connection.send_message(mail)
            finally:
                say_goodbye(connection)
        except CONNECT_ERRORS as exc:
            log.warning("telling the shop that mailbox %s broke failed through mailbox %s: %s", mailbox.id, via.id,
                        exc)
            record_failure(via, describe_failure(exc, via).error)
            return False
    record_sent(via)
    return True
