"""Settings read once per database transaction: the paths that run for every received mail ask for the same few
rows (the shop's addresses, trusted domains, response times) hundreds of times in one transaction."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, object_session

T = TypeVar("T")
_PREFIX = "per_transaction:"
_watched: set[type] = set()


def per_transaction(session: Session, model: type, load: Callable[[], T]) -> T:
    """`load()` (which reads rows of `model`), read once per transaction of `session` and kept in its `info`.

    Forgotten when the transaction ends (commit or rollback, a savepoint's too) or when a row of `model` is
    written through the session; a Core UPDATE of the table would not be seen (the settings pages change these
    rows through the ORM). A flush does not end the transaction: the values outlive the flushes within it.
    """
    key = _PREFIX + model.__name__
    if model not in _watched:
        for change in ("after_insert", "after_update", "after_delete"):
            event.listen(model, change, _forget_written)
        _watched.add(model)
    info = session.info
    if key not in info:
        info[key] = load()
    return info[key]


@event.listens_for(Session, "after_transaction_end")
def _forget_at_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # Every flush runs in a subtransaction of its own that ends here too: only a real transaction's end (the
    # outermost, or a savepoint that may roll back what was read in it) forgets.
    if transaction.parent is not None and not transaction.nested:
        return
    for key in [key for key in session.info if key.startswith(_PREFIX)]:
        del session.info[key]


def _forget_written(_mapper, _connection, target) -> None:
    session = object_session(target)
    if session is not None:
        session.info.pop(_PREFIX + type(target).__name__, None)
