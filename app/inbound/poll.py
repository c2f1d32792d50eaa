"""One polling pass over a mailbox: under a lease, fetch the mail above the IMAP cursor in batches, record each
mail, commit the rows with the cursor, then apply the after-fetch action; and the scheduler's pass over the
mailboxes that are due."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..extensions import db
from ..accounts.mailboxes import record_polled, record_receive_failure
from .record import InboundOutcome, record_batch, record_fetch_error, record_mail
from ..models import InboundItem, Mailbox, Shop, utcnow
from .. import leases
from . import parser_process
from .imap import ImapFailure, ImapFolder, Listed, open_folder
from .parse import read_mails

log = logging.getLogger(__name__)

BATCH_MESSAGES = 100  # mail per FETCH and per commit
BATCH_BYTES = 16 * 1024 * 1024  # and at most this much of it (a bigger mail is a batch of its own)
LEASE_TTL = timedelta(minutes=5)  # renewed with every batch; a dead pass's lease is taken over after this
POLL_WORKERS = 4  # mailboxes polled at the same time
RECORD_ATTEMPTS = 5  # times a batch is recorded again after another pass stored some of its mail first
DEADLOCK = "40P01"  # PostgreSQL's SQLSTATE for a deadlock it broke by failing one side
COUNTS = ("fetched", "threaded", "new_threads", "held", "duplicates", "errors")
# What each outcome of record_mail adds to.
COUNTED_AS = {"threaded": "threaded", "new_thread": "new_threads", "held": "held", "duplicate": "duplicates",
              "error": "errors"}


@dataclass
class PollResult:
    """What one pass over one mailbox did: counts, or that it was skipped, or why it stopped."""

    mailbox_id: int
    mailbox_name: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    skipped: bool = False  # another pass holds the mailbox's lease
    error: str | None = None  # the pass could not start or was cut short; what it committed stays


class LeaseLost(Exception):
    """Another pass took the mailbox's lease over (ours expired): stop without committing."""


def lease_name(mailbox: Mailbox) -> str:
    return f"mail-poll:{mailbox.id}"


def poll_mailbox(mailbox: Mailbox) -> PollResult:
    """Fetch and record the mailbox's new mail; never raises for a server, network or mail problem.

    Skips (result.skipped) while another pass, in any process, holds the mailbox's lease. Mail is fetched by
    UID above the stored cursor, lowest first, in batches (BATCH_MESSAGES, BATCH_BYTES), a backlog's next batch
    parsed in the parser process while this one is recorded (_fetched); a mail that cannot be
    recorded is kept as an error item with its raw bytes and the rest go on (_record_batch); the
    rows and the advanced cursor are committed together, then the batch gets the after-fetch action (seen,
    move, delete; mail that ended as an error is never deleted from the server). A changed UIDVALIDITY means
    the old UIDs mean nothing: the folder is read again from the start and the recorder drops the mail it
    already has. A failure (connection, login, timeout, folder) ends the pass with what was committed kept,
    and counts towards the mailbox's health; the next pass goes on from the cursor.
    Commits as it goes: call it without pending changes in the session.
    """
    result = PollResult(mailbox.id, mailbox.name)
    owner = leases.new_owner()
    if not leases.acquire(lease_name(mailbox), owner, LEASE_TTL):
        result.skipped = True
        return result
    try:
        with force_locale(Shop.current().locale):  # errors are stored for the shop's people, in its language
            try:
                _poll(mailbox, owner, result)
            except ImapFailure as exc:
                result.error = str(exc)
            except LeaseLost:
                result.error = _("Another polling pass took this mailbox over.")
            except Exception as exc:  # a bug or a database error: the other mailboxes and the scheduler go on
                log.exception("polling mailbox %s failed", mailbox.id)
                result.error = _("Fetching mail failed unexpectedly: %(reason)s",
                                 reason=f"{type(exc).__name__}: {exc}")
            if result.error is not None:
                db.session.rollback()
                record_receive_failure(mailbox, result.error)
            mailbox.last_poll_counts = dict(result.counts)  # for monitoring (app/monitoring)
            db.session.commit()
    finally:
        leases.release(lease_name(mailbox), owner)
    log.info("mail poll of mailbox %s: %s%s", mailbox.id, result.counts, f" ({result.error})" if result.error else "")
    return result


def _poll(mailbox: Mailbox, owner: str, result: PollResult) -> None:
    with open_folder(mailbox) as folder:
        if folder.uidvalidity != mailbox.uidvalidity:
            if mailbox.uidvalidity is not None:
                log.warning("mailbox %s: UIDVALIDITY changed from %s to %s, reading the folder again",
                            mailbox.id, mailbox.uidvalidity, folder.uidvalidity)
            mailbox.uidvalidity, mailbox.last_uid = folder.uidvalidity, 0
            db.session.commit()  # before any batch: a batch recorded again after a rollback must not undo it
        _finish_leftovers(folder, mailbox)
        for batch, mails, read in _fetched(folder, mailbox.last_uid):
            counts = dict.fromkeys(COUNTS, 0)  # the pass's counts take only what was committed
            readable = _record_batch(mailbox, mails, read, folder.uidvalidity, counts)
            if not leases.renew(lease_name(mailbox), owner, LEASE_TTL):
                raise LeaseLost
            mailbox.last_uid = batch[-1].uid  # also past mail another client deleted meanwhile
            db.session.commit()
            for name, number in counts.items():
                result.counts[name] += number
            _after_fetch(folder, mailbox, readable)
        record_polled(mailbox)
        db.session.commit()


def batches(listed: list[Listed]) -> list[list[Listed]]:
    """The listing cut into FETCH batches of at most BATCH_MESSAGES mails and BATCH_BYTES bytes, in UID order."""
    cut: list[list[Listed]] = []
    size = 0
    for mail in listed:
        if not cut or len(cut[-1]) >= BATCH_MESSAGES or size + mail.size > BATCH_BYTES:
            cut.append([])
            size = 0
        cut[-1].append(mail)
        size += mail.size
    return cut


def _fetched(folder: ImapFolder, last_uid: int) -> Iterator[tuple[list[Listed], list[tuple[int, bytes]], list]]:
    """Each batch above the cursor: its listing, its mails (UID, raw) and what read_mails made of them. With more
    than one batch, each is parsed in the parser process while the caller records the one before it."""
    cut = batches(folder.list_after(last_uid))
    processes = current_app.config["MAIL_PARSER_PROCESSES"]
    if len(cut) < 2 or processes < 1:
        for batch in cut:
            mails = list(folder.fetch(listed.uid for listed in batch))
            yield batch, mails, read_mails([raw for _uid, raw in mails])
        return
    ahead = None
    for batch in cut:
        mails = list(folder.fetch(listed.uid for listed in batch))
        fetched = batch, mails, parser_process.parse_later([raw for _uid, raw in mails], processes)
        if ahead is not None:
            yield _parsed(*ahead)
        ahead = fetched
    yield _parsed(*ahead)


def _parsed(batch: list[Listed], mails: list[tuple[int, bytes]], parsing: Future) -> tuple:
    return batch, mails, parser_process.parsed(parsing, [raw for _uid, raw in mails])


def _record_batch(mailbox: Mailbox, mails: list[tuple[int, bytes]], read: list, uidvalidity: int,
                  counts: dict[str, int]) -> dict[int, bool]:
    """Record a batch's mails (UID, raw), given what read_mails made of them, in the open transaction; for each
    UID, whether the mail could be read.

    A savepoint per mail would cost a tenth of the time, for a recorder that rarely raises: the batch is
    recorded straight, and only when a mail makes the recorder raise is it rolled back and recorded again with
    each mail in a savepoint of its own, so that mail alone ends as an error item (raw kept) and the rest go in.
    """
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            outcomes = record_batch(mailbox, mails, uidvalidity, read)
            db.session.flush()  # a mail another pass kept meanwhile conflicts here, before the cursor moves
            break
        except Exception as exc:
            db.session.rollback()
            if not lost_race(exc) or attempt == RECORD_ATTEMPTS:
                log.warning("mailbox %s: a mail of the batch could not be recorded, recording the batch mail by "
                            "mail", mailbox.id)
                outcomes = [_record_isolated(mailbox, raw, uidvalidity, uid) for uid, raw in mails]
                break
            # Another poll (another mailbox, process or machine) kept one of these mails first; recorded again,
            # its copy here becomes a duplicate of that one.
            log.info("mailbox %s: another pass stored a mail of this batch first, recording the batch again",
                     mailbox.id)
    return {uid: _count(mailbox, uid, raw, outcome, counts) for (uid, raw), outcome in zip(mails, outcomes)}


def lost_race(exc: BaseException) -> bool:
    """Whether a write failed only because another transaction wrote the same thing first: a unique key (the
    copy key of a mail, a Message-ID) or, on PostgreSQL, a deadlock between two such writers. Done again, the
    work sees what the other one committed."""
    if isinstance(exc, IntegrityError):
        return True
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == DEADLOCK


def _record_isolated(mailbox: Mailbox, raw: bytes, uidvalidity: int, uid: int) -> InboundOutcome:
    """Record one mail in a savepoint of its own: if the recorder raises, an error item keeps the raw mail."""
    try:
        try:
            with db.session.begin_nested():
                return record_mail(mailbox, raw, uidvalidity=uidvalidity, uid=uid)
        except IntegrityError:  # another pass kept this mail meanwhile: now its copy is seen
            with db.session.begin_nested():
                return record_mail(mailbox, raw, uidvalidity=uidvalidity, uid=uid)
    except Exception as exc:  # one bad mail never blocks the mailbox
        log.exception("mailbox %s: recording UID %s failed", mailbox.id, uid)
        with db.session.begin_nested():
            item = record_fetch_error(mailbox, raw, uidvalidity, uid, error=f"{type(exc).__name__}: {exc}")
        return InboundOutcome("error", item)


def _count(mailbox: Mailbox, uid: int, raw: bytes, outcome: InboundOutcome, counts: dict[str, int]) -> bool:
    """Log and count one recorded mail; returns whether it could be read: mail that could not stays on the
    server whatever the mailbox says."""
    item = outcome.item
    error = item.error if item is not None else None
    why = error or (item.reason if item is not None else None)
    log.info("mailbox %s: UID %s (%s bytes) %s%s", mailbox.id, uid, len(raw), outcome.status, f": {why}" if why else "")
    counts["fetched"] += 1
    counts[COUNTED_AS[outcome.status]] += 1
    return outcome.status != "error" and not error


def _after_fetch(folder: ImapFolder, mailbox: Mailbox, readable: dict[int, bool]) -> None:
    """Seen, moved or deleted, as the mailbox says; mail that could not be read is never deleted."""
    uids = sorted(readable)
    if mailbox.after_fetch == "move" and mailbox.after_fetch_folder:
        folder.move(uids, mailbox.after_fetch_folder)
    elif mailbox.after_fetch == "delete":
        folder.delete([uid for uid in uids if readable[uid]])
        folder.mark_seen([uid for uid in uids if not readable[uid]])
    else:
        folder.mark_seen(uids)


def _finish_leftovers(folder: ImapFolder, mailbox: Mailbox) -> None:
    """Move or delete what an earlier pass fetched and committed but stopped before moving or deleting (the
    connection dropped, the process died): with those settings fetched mail should not stay in the folder.
    Mail read elsewhere and marked unread again is left alone with "seen"."""
    if mailbox.after_fetch not in ("move", "delete"):
        return
    leftovers = [listed.uid for listed in folder.list_upto(mailbox.last_uid)]
    if not leftovers:
        return
    unreadable = set(db.session.scalars(
        select(InboundItem.uid).where(InboundItem.mailbox_id == mailbox.id,
                                      InboundItem.uidvalidity == folder.uidvalidity,
                                      InboundItem.uid.in_(leftovers), InboundItem.error.is_not(None))
    ))
    _after_fetch(folder, mailbox, {uid: uid not in unreadable for uid in leftovers})


# --- every mailbox ------------------------------------------------------------------------------


def receiving_mailboxes(mailbox_id: int | None = None) -> list[Mailbox]:
    """The active mailboxes with an IMAP server set up (or just the one asked for, if it is one of them)."""
    query = select(Mailbox).where(Mailbox.active.is_(True), Mailbox.imap_host != "").order_by(Mailbox.id)
    if mailbox_id is not None:
        query = query.where(Mailbox.id == mailbox_id)
    return list(db.session.scalars(query))


def poll_all(mailbox_id: int | None = None) -> list[PollResult]:
    """One pass over every receiving mailbox (or one of them)."""
    return poll_side_by_side([mailbox.id for mailbox in receiving_mailboxes(mailbox_id)])


def poll_side_by_side(mailbox_ids: list[int]) -> list[PollResult]:
    """Poll the mailboxes at the same time (up to POLL_WORKERS), each in a thread with an app context and
    database session of its own, so that a server that hangs until IMAP_TIMEOUT, or a slow one, holds up only
    its own mailbox. Returns the results in the order asked; the caller's session sees the changes afterwards.
    """
    if not mailbox_ids:
        return []
    app = current_app._get_current_object()

    def poll_one(mailbox_id: int) -> PollResult:
        with app.app_context():
            return poll_mailbox(db.session.get(Mailbox, mailbox_id))

    with ThreadPoolExecutor(min(POLL_WORKERS, len(mailbox_ids)), thread_name_prefix="mail-poll") as pool:
        results = list(pool.map(poll_one, mailbox_ids))
    db.session.expire_all()  # the threads changed the mailboxes in sessions of their own
    return results


def poll_due_mailboxes(now: datetime | None = None) -> list[PollResult]:
    """The scheduler's job: poll each receiving mailbox whose polling interval has passed since its last pass.

    Run often (every few seconds) it picks up changed intervals and new mailboxes without rescheduling.
    """
    now = now or utcnow()
    due = [mailbox.id for mailbox in receiving_mailboxes()
           if mailbox.last_poll_at is None or mailbox.last_poll_at + timedelta(seconds=mailbox.poll_interval) <= now]
    return poll_side_by_side(due)
