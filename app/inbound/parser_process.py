"""Received mail parsed in a process of its own, so that a backlog (a mailbox connected with thousands of mails,
a day of downtime) is parsed on one core while the poller records the batch before it on another.

Parsing is pure-Python work that holds the interpreter lock, about half of what a received mail costs; a thread
would not run it beside the recording. The process is started on first use by a pass with more than one batch
to fetch, and kept: the usual pass, a few new mails, parses where it records. `MAIL_PARSER_PROCESSES = 0` turns
it off (the pass then parses each batch itself). A parser process that dies (killed for memory, say) costs
nothing but time: its batch is parsed in the pass, and the next backlog starts a new one.
"""
from __future__ import annotations

import logging
import multiprocessing
import pickle
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .parse import ParsedMail, ParserFailed, read_mails

log = logging.getLogger(__name__)

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_started: Future | None = None  # done once the parser process has started (it imports the app's code)


def parse_later(raws: list[bytes], processes: int) -> Future:
    """A future of read_mails(raws), run in the parser process (started when needed; `processes` of them).

    Until the process has started (a second or two of imports), the mail is parsed here and now: a backlog
    never waits for it."""
    pool, started = _running(processes)
    if not started.done():
        return _done(read_mails(raws))
    try:
        return pool.submit(_read_mails_portably, raws)
    except BrokenProcessPool:  # it died since the last batch
        _forget(pool)
        return _done(read_mails(raws))


def start(processes: int) -> Future:
    """Start the parser process (`processes` of them) unless it runs: a future done once it has started."""
    return _running(processes)[1]


def _running(processes: int) -> tuple[ProcessPoolExecutor, Future]:
    global _pool, _started
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
            _started = _pool.submit(_start)
        return _pool, _started


def parsed(future: Future, raws: list[bytes]) -> list[ParsedMail | Exception]:
    """What `future` (of parse_later(raws)) parsed; parsed here instead if the parser process died."""
    try:
        return future.result()
    except BrokenProcessPool:
        log.warning("the mail parser process stopped; parsing this batch in the polling pass")
        _forget(_pool)
        return read_mails(raws)


def _forget(pool: ProcessPoolExecutor | None) -> None:
    """Drop a broken pool (once, whichever pass notices first); the next backlog starts a new one."""
    global _pool
    with _lock:
        if pool is None or pool is not _pool:
            return
        _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def _start() -> None:
    """Run first in the parser process: by the time it is done there, the process has imported the parser."""


def _done(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def _read_mails_portably(raws: list[bytes]) -> list[ParsedMail | Exception]:
    """read_mails, with each failure made something the poller's process can unpickle."""
    return [mail if isinstance(mail, ParsedMail) or _portable(mail) else ParserFailed(f"{type(mail).__name__}: {mail}")
            for mail in read_mails(raws)]


def _portable(error: Exception) -> bool:
    try:
        pickle.loads(pickle.dumps(error))
        return True
    except Exception:  # noqa: BLE001 - whatever fails to cross, its text does
        return False
