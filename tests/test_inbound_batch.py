"""A poll batch recorded together: mail that answers or repeats mail of the same batch, and a backlog parsed in
the parser process, which may die without costing a mail."""
from __future__ import annotations

import os

from sqlalchemy import select
from test_inbound_imap import mail, poll, stored

from app.customers import create_customer
from app.extensions import db
from app.inbound import parser_process
from app.inbound.imap import ImapFolder
from app.inbound.poll import BATCH_MESSAGES
from app.models import InboundItem, Message, MessageRef


def our_mail_id(number: int) -> str:
    return f"m{number}.{os.getpid()}@example.com"  # the Message-ID test_inbound_imap.mail gives mail `number`


def test_a_reply_to_a_mail_of_the_same_batch_lands_in_the_thread_that_mail_opened(app, imap_server):
    mailbox = imap_server.make_mailbox()
    create_customer(name="Jan Klient", email="klient@example.com", actor="cli", source="import")
    db.session.commit()
    # The customer writes; his wife, copied, answers him before the shop polls: one batch holds both.
    imap_server.append_many([
        mail(1, subject="Pralka nie wiruje"),
        mail(2, subject="Re: Pralka nie wiruje", sender="zona@example.com",
             extra=f"In-Reply-To: <{our_mail_id(1)}>\r\nReferences: <{our_mail_id(1)}>\r\n"),
    ])

    result = poll(mailbox)

    assert result.counts["new_threads"] == 1 and result.counts["threaded"] == 1 and result.counts["held"] == 0
    messages = db.session.scalars(select(Message).order_by(Message.id)).all()
    assert [m.sender for m in messages] == ["klient@example.com", "zona@example.com"]
    assert messages[0].thread_id == messages[1].thread_id
    refs = dict(db.session.execute(select(MessageRef.ref, MessageRef.message_id)).tuples().all())
    assert refs == {our_mail_id(1): messages[0].id, our_mail_id(2): messages[1].id}


def test_the_same_mail_twice_in_one_batch_is_stored_once(app, imap_server):
    mailbox = imap_server.make_mailbox()
    create_customer(name="Jan Klient", email="klient@example.com", actor="cli", source="import")
    db.session.commit()
    imap_server.append_many([mail(1), mail(1)])  # a client that saved it twice, say

    result = poll(mailbox)

    assert result.counts["fetched"] == 2 and result.counts["duplicates"] == 1
    items = db.session.scalars(select(InboundItem).order_by(InboundItem.uid)).all()
    assert [item.status for item in items] == ["accepted", "duplicate"]
    assert items[1].message_id == items[0].message_id is not None and items[1].reason == f"#{items[0].id}"
    assert db.session.scalar(select(db.func.count()).select_from(Message)) == 1


def test_a_backlog_is_parsed_in_the_parser_process_and_outlives_its_death(app, imap_server, monkeypatch):
    app.config["MAIL_PARSER_PROCESSES"] = 1
    mailbox = imap_server.make_mailbox()
    create_customer(name="Jan Klient", email="klient@example.com", actor="cli", source="import")
    db.session.commit()
    total = BATCH_MESSAGES * 2 + 30
    imap_server.append_many(mail(n) for n in range(total))
    real_fetch = ImapFolder.fetch
    parsers = []

    def fetch_then_kill_the_parser(folder, uids):
        # By the second FETCH the first batch is being parsed in the parser process: kill it mid-work (once).
        pool = parser_process._pool
        if pool is not None and not parsers:
            parsers.extend(pool._processes.values())
            for process in parsers:
                process.kill()
        return real_fetch(folder, uids)

    monkeypatch.setattr(ImapFolder, "fetch", fetch_then_kill_the_parser)
    parser_process.start(1).result(timeout=60)  # until it runs, a backlog is parsed in the pass
    result = poll(mailbox)

    assert parsers and all(process.pid != os.getpid() for process in parsers)  # it ran elsewhere
    assert result.error is None and result.counts["fetched"] == total and result.counts["errors"] == 0
    assert len(stored(mailbox)) == total and mailbox.last_uid == total
    threads = set(db.session.scalars(select(Message.thread_id)))
    assert len(threads) == total  # every mail read whole: its own subject, its own new thread

    imap_server.append_many(mail(n) for n in range(total, total + BATCH_MESSAGES + 5))
    parser_process.start(1).result(timeout=60)  # a new parser for the next backlog
    again = poll(mailbox)

    assert again.error is None and again.counts["fetched"] == BATCH_MESSAGES + 5 and again.counts["errors"] == 0
    assert {process.pid for process in parser_process._pool._processes.values()}.isdisjoint(
        process.pid for process in parsers)
