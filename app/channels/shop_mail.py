"""Mail from the app to the shop itself (its notification address), not to a customer: a broken mailbox, a low SMS
balance. It goes through the default working mailbox, and counts towards that mailbox's health."""
from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from sqlalchemy import select

from ..accounts.mailboxes import record_failure, record_sent
from ..extensions import db
from ..models import Mailbox, Shop, utcnow
from .email import CONNECT_ERRORS, connect, say_goodbye
from .smtp_failures import describe_failure

log = logging.getLogger(__name__)


def working_mailbox(besides: Mailbox | None = None) -> Mailbox | None:
    """An active mailbox (other than `besides`) whose last attempts went through, the default one first."""
    query = select(Mailbox).where(Mailbox.active.is_(True), Mailbox.broken_at.is_(None),
                                  Mailbox.consecutive_failures == 0)
    if besides is not None:
        query = query.where(Mailbox.id != besides.id)
    return db.session.scalar(query.order_by(Mailbox.is_default.desc(), Mailbox.id).limit(1))


def mail_the_shop(shop: Shop, via: Mailbox, subject: str, text: str) -> bool:
    """Send `text` to the shop's notification address through `via`, as automatic mail; False when it could not go
    out (the failure counts towards `via`'s health)."""
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = formataddr((shop.name, via.email))
    mail["To"] = shop.notification_email
    mail["Date"] = format_datetime(utcnow())
    mail["Message-ID"] = make_msgid(domain=via.email.rpartition("@")[2])
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(text)
    try:
        connection = connect(via)
        try:
            connection.send_message(mail)
        finally:
            say_goodbye(connection)
    except CONNECT_ERRORS as exc:
        log.warning("mail to the shop (%s) failed through mailbox %s: %s", subject, via.id, exc)
        record_failure(via, describe_failure(exc, via).error)
        return False
    record_sent(via)
    return True
