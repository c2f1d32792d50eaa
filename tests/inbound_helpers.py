"""Shared by the inbound mail tests: the shop's mailbox, a customer with a repair, mail the shop sent them, and
the sample mails of tests/mail filled in with that thread's token and Message-ID."""
from __future__ import annotations

import itertools
import re
from pathlib import Path

from app.customers import create_customer
from app.extensions import db
from app.mail_ids import instance_id, make_message_id
from app.accounts.mailboxes import create_mailbox
from app.messaging.compose import compose
from app.inbound.record import record_mail
from app.models import Delivery, Message, MessageRef, utcnow
from app.repairs import create_repair

MAIL = Path(__file__).resolve().parent / "mail"
_uids = itertools.count(1)


def make_mailbox(**settings):
    mailbox = create_mailbox(name="Serwis", email="serwis@shop.example", display_name="Serwis GSM",
                             smtp_host="smtp.shop.example", smtp_port=587, smtp_security="starttls", **settings)
    db.session.commit()
    return mailbox


def make_customer(name: str = "Jan Kowalski", email: str = "jan.kowalski@example.com", **fields):
    customer = create_customer(name=name, email=email, **fields)
    db.session.commit()
    return customer


def make_repair(customer, device: str = "iPhone 12"):
    repair = create_repair(customer=customer, device=device)
    db.session.commit()
    return repair


def send_mail(customer, *, repair=None, body: str = "Wycena naprawy: 450 zł.", cc=(), contact=None) -> Message:
    """A mail the shop sent the customer (or a company's `contact` person) and the mail server accepted: its
    delivery `sent`, our id remembered."""
    message = compose(customer=customer, channels=["email"], body=body, repair=repair, cc=list(cc),
                      **({"contact": contact} if contact is not None else {}))
    delivery = message.deliveries[0]
    delivery.status, delivery.sent_at = "sent", utcnow()
    ref = our_id(message)
    delivery.provider_id = ref
    db.session.add(MessageRef(ref=ref, message_id=message.id, thread_id=message.thread_id, kind="ours"))
    db.session.commit()
    return message


def our_id(message: Message) -> str:
    return make_message_id(message.thread_id, message.id, "shop.example").strip("<>")


def sample(name: str, message: Message | None = None, **replace: str) -> bytes:
    """A sample mail from tests/mail with its placeholders filled for `message` (see tests/mail/README.md);
    `replace` swaps further text (header lines, subjects) as plain strings."""
    raw = (MAIL / name).read_bytes()
    if message is not None:
        raw = raw.replace(b"ri.THREAD.MESSAGE.SIG@shop.example", our_id(message).encode())
        raw = raw.replace(b"TOKEN", message.thread.token.encode())
    raw = raw.replace(b"INSTANCE", instance_id().encode())
    for old, new in replace.items():
        raw = raw.replace(old.encode(), new.encode())
    return raw


def without_headers(raw: bytes, *names: str) -> bytes:
    """The mail without the named top-level headers (folded continuation lines included)."""
    match = re.search(rb"\r?\n\r?\n", raw)
    head, body = raw[:match.end()], raw[match.end():]
    pattern = re.compile(rb"^(?:%s):.*(?:\r?\n[ \t].*)*\r?\n" % b"|".join(re.escape(n.encode()) for n in names),
                         re.IGNORECASE | re.MULTILINE)
    return pattern.sub(b"", head) + body


def plain_mail(*, sender: str = "Jan Kowalski <jan.kowalski@example.com>", to: str = "serwis@shop.example",
               subject: str = "Pytanie", body: str = "Dzień dobry, czy telefon jest gotowy?",
               message_id: str | None = "<q1@example.com>", extra: str = "") -> bytes:
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", "Date: Mon, 23 Nov 2026 10:00:00 +0100"]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    lines += [line for line in extra.split("\n") if line]
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


def receive(mailbox, raw: bytes, uid: int | None = None):
    """Record a mail as the poller does (a UID of its own unless given) and commit."""
    outcome = record_mail(mailbox, raw, uidvalidity=1, uid=next(_uids) if uid is None else uid)
    db.session.commit()
    return outcome


def deliveries_of(message: Message) -> list[Delivery]:
    db.session.expire_all()
    return list(db.session.get(Message, message.id).deliveries)
