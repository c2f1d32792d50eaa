"""A poll batch of received mail recorded together: what routing its mails reads (earlier copies of them, their
senders' customers, the threads their reply tokens and our Message-IDs name, the stored Message-IDs they refer
to) read at once, and their messages written at once.

Asked mail by mail these are five queries per mail, and two INSERTs, most of a mail's recording time.
`preloaded()` reads them for a batch of up to a hundred mails in five queries, and the lookups answer from what
it read; messages without files wait (`defer_message`) to be written in one statement. What recording adds
during the batch stays visible: items are remembered as they are made, a deferred message's Message-IDs are
known to the batch, and one stored at once is looked up in the database again. Outside a batch (a staff
decision on one held mail) or for something the batch did not read, each lookup queries for itself.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select

from ..extensions import db
from ..mail_ids import parse_message_id, token_from_address
from ..models import ContactPerson, Customer, CustomerEmail, InboundItem, MessageRef, Thread
from .parse import ParsedMail

MAX_IDS = 50  # References of a long thread; more than this is noise (or an attack on the lookup)
_KEY = "inbound.batch"


@dataclass
class _Batch:
    mailbox_id: int
    uidvalidity: int | None
    uids: set[int]
    copies: set[str]  # the copy keys (copy_key) of the batch's readable mails
    uid_items: dict[int | None, list[InboundItem]]  # earlier items with one of those UIDs, then the batch's own
    copy_items: dict[str, list[InboundItem]]  # the mail kept for each of those copy keys, stored or the batch's
    customers: dict[str, list[Customer]]
    tokens: dict[str, Thread | None]
    refs: dict[str, int | None]  # stored Message-ID -> its thread, None when not stored
    threads: list[Thread] = field(default_factory=list)  # keeps the threads read in the session's identity map
    deferred: list[tuple[dict, dict[str, str], InboundItem]] = field(default_factory=list)  # see defer_message


def message_id_header(mail: ParsedMail) -> str | None:
    """The mail's Message-ID as the items keep it."""
    return (mail.message_id or None) and mail.message_id[:998]


def copy_key(mail: ParsedMail) -> str:
    """What makes two fetched mails one mail (its Message-ID header and content hash, or the content hash alone
    for mail without a Message-ID), as one short value: the item that keeps the mail carries it, and a unique
    index on it lets one item per mail hold it, however many polls, processes or mailboxes record copies of the
    mail at the same time (InboundItem.copy_key)."""
    identity = f"{message_id_header(mail) or ''}\x00{mail.content_hash}"
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()


def referenced_ids(mail: ParsedMail) -> list[str]:
    """In-Reply-To first (the parent), then References newest first; without repeats, as stored refs are kept."""
    return [ref[:998] for ref in dict.fromkeys([*mail.in_reply_to, *mail.references])][:MAX_IDS]


@contextmanager
def preloaded(mailbox_id: int, uidvalidity: int | None, mails: list[tuple[int, ParsedMail | None]]) -> Iterator[None]:
    """Within the block, the lookups answer for these mails (UID, parsed mail or None when unreadable) of the
    mailbox from what is read here at once."""
    readable = [mail for _uid, mail in mails if mail is not None]
    uids = {uid for uid, _mail in mails}
    copies = {copy_key(mail) for mail in readable}
    tokens = {token for mail in readable for address in mail.all_recipients if (token := token_from_address(address))}
    refs = {ref for mail in readable for ref in referenced_ids(mail)}
    ours = {ids[0] for ref in refs if (ids := parse_message_id(ref)) is not None}
    customers = customers_by_address(mail.from_address for mail in readable)
    batch = _Batch(mailbox_id, uidvalidity, uids, copies, {}, {}, customers, dict.fromkeys(tokens),
                   dict.fromkeys(refs))
    for item in _items(mailbox_id, uidvalidity, uids, copies):
        _index(batch, item)
    if tokens or ours:
        batch.threads = list(db.session.scalars(select(Thread).where(or_(Thread.token.in_(tokens),
                                                                         Thread.id.in_(ours)))))
        batch.tokens.update((thread.token, thread) for thread in batch.threads if thread.token in tokens)
    if refs:
        batch.refs.update(db.session.execute(select(MessageRef.ref, MessageRef.thread_id)
                                             .where(MessageRef.ref.in_(refs))).tuples().all())
    db.session.info[_KEY] = batch
    try:
        yield
    finally:
        db.session.info.pop(_KEY, None)


def _batch() -> _Batch | None:
    return db.session.info.get(_KEY)


# --- the lookups -----------------------------------------------------------------------------------


def earlier_items(mailbox_id: int, uidvalidity: int | None, uid: int | None, mail: ParsedMail | None,
                  ) -> list[InboundItem]:
    """Items, oldest first, that may be this mail fetched before: the same UID of the mailbox, or the item that
    keeps the same mail (its copy key). The caller decides which of them count."""
    copy = copy_key(mail) if mail is not None else None
    batch = _batch()
    if (batch is not None and (batch.mailbox_id, batch.uidvalidity) == (mailbox_id, uidvalidity)
            and (uid is None or uid in batch.uids) and (copy is None or copy in batch.copies)):
        return [*batch.uid_items.get(uid, ()), *batch.copy_items.get(copy, ())]
    return _items(mailbox_id, uidvalidity, {uid} - {None}, {copy} - {None})


def remember_item(item: InboundItem) -> None:
    """An item recorded during the batch: later mails of the batch may be copies of it."""
    batch = _batch()
    if batch is not None:
        _index(batch, item)


def _index(batch: _Batch, item: InboundItem) -> None:
    if (item.mailbox_id, item.uidvalidity) == (batch.mailbox_id, batch.uidvalidity):
        batch.uid_items.setdefault(item.uid, []).append(item)
    if item.copy_key is not None:
        batch.copy_items.setdefault(item.copy_key, []).append(item)


def customers_with_address(address: str) -> list[Customer]:
    """The customers (not anonymised) who have `address` as their e-mail or one of their extra addresses, or a
    company one of whose contact people has it."""
    if not address:
        return []
    address = address.lower()
    batch = _batch()
    if batch is not None and address in batch.customers:
        return batch.customers[address]
    return customers_by_address([address])[address]


def thread_with_token(token: str) -> Thread | None:
    """The thread whose reply token this is (merged or deleted ones too: the caller decides)."""
    batch = _batch()
    if batch is not None and token in batch.tokens:
        return batch.tokens[token]
    return db.session.scalar(select(Thread).where(Thread.token == token))


def stored_refs(refs: list[str]) -> dict[str, int]:
    """Stored Message-ID -> its thread id, for those of `refs` that are stored."""
    batch = _batch()
    if batch is not None and all(ref in batch.refs for ref in refs):
        return {ref: batch.refs[ref] for ref in refs if batch.refs[ref] is not None}
    return dict(db.session.execute(select(MessageRef.ref, MessageRef.thread_id).where(MessageRef.ref.in_(refs)))
                .tuples().all())


def refs_stored(refs: Iterable[str]) -> None:
    """Message-IDs were just stored (where no other mail had them): later mails ask the database for them."""
    batch = _batch()
    if batch is not None:
        for ref in refs:
            batch.refs.pop(ref, None)


def defer_message(row: dict, refs: dict[str, str], item: InboundItem) -> bool:
    """Within a batch, keep a received message (its row, its own Message-IDs and their kinds, its item) to be
    written with the batch's others (take_deferred); its Message-IDs count as stored for the batch's later mails
    (an id stored already, or by an earlier mail of the batch, stays with that mail). False outside a batch."""
    batch = _batch()
    if batch is None:
        return False
    batch.deferred.append((row, refs, item))
    for ref in refs:
        if ref in batch.refs and batch.refs[ref] is None:
            batch.refs[ref] = row["thread_id"]
    return True


def take_deferred() -> list[tuple[dict, dict[str, str], InboundItem]]:
    """The messages deferred so far (defer_message), in order, for the caller to write now."""
    batch = _batch()
    if batch is None:
        return []
    taken, batch.deferred = batch.deferred, []
    return taken


# --- reading many at once ---------------------------------------------------------------------------


def customers_by_address(addresses: Iterable[str]) -> dict[str, list[Customer]]:
    """Lower-case address -> the customers (not anonymised, by id) who have it as e-mail or extra address, or
    whose contact person (of a company) has it."""
    found: dict[str, list[Customer]] = {address: [] for address in addresses if address}
    if not found:
        return found
    # A company's contact people write from their own addresses: their mail is the company's.
    extra = db.session.execute(
        select(CustomerEmail.customer_id, CustomerEmail.address).where(CustomerEmail.address.in_(found))
        .union_all(select(ContactPerson.customer_id, ContactPerson.email).where(ContactPerson.email.in_(found)))
    ).tuples().all()
    customers = db.session.scalars(
        select(Customer)
        .where(Customer.anonymized_at.is_(None),
               or_(Customer.email.in_(found), Customer.id.in_({customer_id for customer_id, _ in extra})))
        .order_by(Customer.id)
    )
    for customer in customers:
        addresses = {customer.email} | {address for customer_id, address in extra if customer_id == customer.id}
        for address in addresses & found.keys():
            found[address].append(customer)
    return found


def _items(mailbox_id: int, uidvalidity: int | None, uids: set[int], copies: set[str]) -> list[InboundItem]:
    same = []
    if uids:
        same.append(and_(InboundItem.mailbox_id == mailbox_id, InboundItem.uidvalidity == uidvalidity,
                         InboundItem.uid.in_(uids)))
    if copies:
        same.append(InboundItem.copy_key.in_(copies))
    if not same:
        return []
    return list(db.session.scalars(select(InboundItem).where(or_(*same)).order_by(InboundItem.id)))
