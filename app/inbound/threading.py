"""Which thread a received mail belongs to: reply token, our signed Message-ID, any stored Message-ID, then a
subject reference from that thread's own customer (DESIGN.md "Threading inbound mail")."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from ..extensions import db
from ..mail_ids import parse_message_id, token_from_address
from ..messaging.threads import context_thread
from ..models import Customer, Mailbox, Repair, Thread, Ticket
from . import batch
from .batch import referenced_ids
from .parse import ParsedMail

# `[#R-2026-0042]` anywhere in the subject; repair numbers may also be typed by hand, so any number without
# spaces or brackets is looked up.
SUBJECT_REFERENCE = re.compile(r"\[#([^\[\]\s]{1,32})\]")


@dataclass
class Match:
    """Where a mail goes: an existing thread, or the repair or ticket a new thread is about."""

    thread: Thread | None
    how: str  # token | our_id | stored_id | subject | none
    repair: Repair | None = None
    ticket: Ticket | None = None

    @property
    def proven(self) -> bool:
        """The mail carries something only our mail gave out (token, our ids): its sender may join the thread."""
        return self.how in ("token", "our_id", "stored_id")


def find_thread(mail: ParsedMail, mailbox: Mailbox | None, customers: list[Customer]) -> Match:
    """The thread for `mail`, trying in order: a thread token in a recipient address on the mailbox's domain,
    our signed Message-ID in In-Reply-To/References, any stored Message-ID there, and a `[#number]` subject
    reference when `customers` (the sender's) include that repair's or ticket's customer.

    Returns Match(None, "subject", repair=...) when a subject reference names a repair of the sender that has
    no thread yet, and Match(None, "none") when nothing matches.
    """
    for how, finder in (("token", _by_token), ("our_id", _by_our_id), ("stored_id", _by_stored_id)):
        thread = finder(mail, mailbox)
        if thread is not None:
            return Match(thread, how)
    return _by_subject(mail.subject, customers)


def _live(thread: Thread | None) -> Thread | None:
    """The thread a mail should land in: merged threads forward to the one they were merged into; deleted ones
    take nothing."""
    seen = set()
    while thread is not None and thread.merged_into_id is not None and thread.id not in seen:
        seen.add(thread.id)
        thread = db.session.get(Thread, thread.merged_into_id)
    if thread is None or thread.deleted_at is not None:
        return None
    return thread


def _our_domains(mailbox: Mailbox | None) -> set[str]:
    """The domains a reply token counts on: the mailbox's own, or every mailbox's when the mail has none (a held
    mail whose mailbox was removed)."""
    if mailbox is not None:
        return {mailbox.email.rpartition("@")[2].lower()}
    return {email.rpartition("@")[2].lower() for email in db.session.scalars(select(Mailbox.email))}


def _by_token(mail: ParsedMail, mailbox: Mailbox | None) -> Thread | None:
    return thread_by_token(mail.all_recipients, mailbox)


def thread_by_token(addresses: Iterable[str], mailbox: Mailbox | None) -> Thread | None:
    """The live thread whose reply token one of `addresses` carries (`local+token@` on the mailbox's domain)."""
    domains = _our_domains(mailbox)
    tried = set()
    for address in addresses:
        token = token_from_address(address)
        if not token or token in tried or address.rpartition("@")[2].lower() not in domains:
            continue
        tried.add(token)
        thread = _live(batch.thread_with_token(token))
        if thread is not None:
            return thread
    return None


def _by_our_id(mail: ParsedMail, _mailbox: Mailbox | None) -> Thread | None:
    for ref in referenced_ids(mail):
        ours = parse_message_id(ref)
        if ours is not None:
            thread = _live(db.session.get(Thread, ours[0]))
            if thread is not None:
                return thread
    return None


def _by_stored_id(mail: ParsedMail, _mailbox: Mailbox | None) -> Thread | None:
    ids = referenced_ids(mail)
    if not ids:
        return None
    found = batch.stored_refs(ids)
    for ref in ids:
        if ref in found:
            thread = _live(db.session.get(Thread, found[ref]))
            if thread is not None:
                return thread
    return None


def subject_references(subject: str) -> list[str]:
    """The `[#number]` references in a subject, in order (reply prefixes around them change nothing)."""
    return list(dict.fromkeys(SUBJECT_REFERENCE.findall(subject or "")))


def _by_subject(subject: str, customers: Iterable[Customer]) -> Match:
    """The thread of the repair or ticket a subject names, only when it belongs to one of `customers`: a subject
    is easy to copy, so it never puts mail into another customer's thread."""
    owners = {customer.id: customer for customer in customers}
    for number in subject_references(subject):
        for model in (Repair, Ticket):
            context = db.session.scalar(select(model).where(model.number == number))
            if context is None or context.customer_id not in owners:
                continue
            customer = owners[context.customer_id]
            repair, ticket = (context, None) if model is Repair else (None, context)
            return Match(_live(context_thread(customer, repair, ticket)), "subject", repair=repair, ticket=ticket)
    return Match(None, "none")
