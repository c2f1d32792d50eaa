"""The same mail in two of the shop's mailboxes (a customer writing to serwis@ with reklamacje@ in CC, or answering
"reply all" to our mail that had both) is stored once, however the two polls interleave: threads of one process
side by side, two `mail poll` processes, SQLite or PostgreSQL. The second copy becomes a duplicate of the first,
and the message keeps what both copies say (the mailboxes it arrived in, everyone in To and CC)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from servers.imap import ImapAccount
from sqlalchemy import func, select

from app.customers import create_customer
from app.extensions import db
from app.inbound.poll import poll_side_by_side
from app.inbound import record as inbound
from app.models import InboundItem, Message, MessageRef, Thread
from helpers import TEST_CONFIG
from inbound_helpers import our_id, send_mail

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 20
SERWIS, REKLAMACJE = "serwis@shop.example", "reklamacje@shop.example"


@pytest.fixture
def shop_mailboxes(app, dovecot):
    """Two of the shop's mailboxes, each receiving from an account of its own on the test Dovecot."""
    accounts = [ImapAccount(dovecot, dovecot.add_user()) for _ in range(2)]
    mailboxes = [account.make_mailbox(name=name, email=email)
                 for account, name, email in zip(accounts, ("Serwis", "Reklamacje"), (SERWIS, REKLAMACJE))]
    db.session.commit()
    return list(zip(accounts, mailboxes))


# Not the shared `customer`: e-mail only (no phone).
@pytest.fixture
def customer(app):
    customer = create_customer(name="Jan Kowalski", email="jan@example.com")
    db.session.commit()
    return customer


class DecideTogether:
    """Makes the first two lookups for an earlier copy (one in each poll) wait for each other, so both polls have
    looked before either writes: the interleaving in which "look, then insert" stores a mail twice."""

    def __init__(self, monkeypatch):
        self._lookup = inbound._fetched_before
        self._lock = threading.Lock()
        self.next_round()
        monkeypatch.setattr(inbound, "_fetched_before", self)

    def next_round(self) -> None:
        self._barrier, self._arrived = threading.Barrier(2, timeout=60), 0

    def __call__(self, *args, **kwargs):
        found = self._lookup(*args, **kwargs)
        with self._lock:
            self._arrived += 1
            first_of_its_poll = self._arrived <= 2
        if first_of_its_poll:
            self._barrier.wait()
        return found


def mail_to_both(number: int, *, to: str = SERWIS, cc: str = REKLAMACJE, extra: str = "") -> bytes:
    return (
        f"From: Jan Kowalski <jan@example.com>\r\nTo: {to}\r\nCc: {cc}\r\nSubject: Ekran po naprawie {number}\r\n"
        f"Message-ID: <both-{number}.{os.getpid()}@example.com>\r\nDate: Mon, 07 Dec 2026 10:00:00 +0100\r\n{extra}"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"Dzień dobry, ekran znowu miga (zgłoszenie {number}).\r\n"
    ).encode()


def deliver(accounts, raw: bytes) -> None:
    """The mail as each mailbox's server stores it: the same mail, with a transport header of its own."""
    for account in accounts:
        account.append(f"Delivered-To: {account.user}\r\n".encode() + raw)


def assert_kept_once(number: int, *recipients: str) -> Message:
    """The round's mail: one message, kept by one item; the other mailbox's copy a duplicate pointing at it."""
    db.session.expire_all()
    ref = f"both-{number}.{os.getpid()}@example.com"
    items = db.session.scalars(select(InboundItem).where(InboundItem.message_id_header == ref)
                               .order_by(InboundItem.id)).all()
    messages = db.session.scalars(select(Message).where(Message.direction == "in",
                                                        Message.body_text.contains(f"(zgłoszenie {number})"))).all()
    assert len(messages) == 1, f"round {number}: {len(messages)} messages"
    kept = [item for item in items if item.status != "duplicate"]
    assert len(items) == 2 and len(kept) == 1, f"round {number}: {[item.status for item in items]}"
    copy = next(item for item in items if item.status == "duplicate")
    assert kept[0].message_id == copy.message_id == messages[0].id and copy.reason == f"#{kept[0].id}"
    assert len({item.mailbox_id for item in items}) == 2
    message = messages[0]
    assert sorted(message.meta["mailboxes"]) == [REKLAMACJE, SERWIS]
    named = [address.lower() for addresses in message.recipients.values() for address in addresses]
    assert sorted(named) == sorted(recipients)
    return message


def test_a_mail_to_one_mailbox_with_the_other_in_cc_is_one_message_however_the_polls_interleave(
        app, shop_mailboxes, customer, monkeypatch):
    accounts = [account for account, _mailbox in shop_mailboxes]
    ids = [mailbox.id for _account, mailbox in shop_mailboxes]
    together = DecideTogether(monkeypatch)

    for number in range(ROUNDS):
        together.next_round()
        deliver(accounts, mail_to_both(number))

        results = poll_side_by_side(ids)  # as the scheduler polls: each mailbox in a thread of its own

        assert [result.error for result in results] == [None, None]
        assert sorted(result.counts["duplicates"] for result in results) == [0, 1]
        assert_kept_once(number, SERWIS, REKLAMACJE)
    assert db.session.scalar(select(func.count()).select_from(Thread)) == ROUNDS  # one new thread per mail


def test_a_reply_to_all_of_our_mail_lands_once_in_the_repairs_thread_however_the_polls_interleave(
        app, shop_mailboxes, customer, monkeypatch):
    accounts = [account for account, _mailbox in shop_mailboxes]
    ids = [mailbox.id for _account, mailbox in shop_mailboxes]
    ours = send_mail(customer, cc=[REKLAMACJE], body="Ekran wymieniony, zapraszamy.")
    token_address = f"serwis+{ours.thread.token}@shop.example"
    together = DecideTogether(monkeypatch)

    for number in range(ROUNDS):
        together.next_round()
        deliver(accounts, mail_to_both(number, to=token_address, cc=REKLAMACJE,
                                       extra=f"In-Reply-To: <{our_id(ours)}>\r\nReferences: <{our_id(ours)}>\r\n"))

        results = poll_side_by_side(ids)

        assert [result.error for result in results] == [None, None]
        assert sorted(result.counts["duplicates"] for result in results) == [0, 1]
        message = assert_kept_once(number, token_address, REKLAMACJE)
        assert message.thread_id == ours.thread_id
    assert db.session.scalar(select(func.count()).select_from(Thread)) == 1
    replies = db.session.scalar(select(func.count()).select_from(Message).where(Message.direction == "in"))
    assert replies == ROUNDS
    refs = db.session.scalar(select(func.count()).select_from(MessageRef).where(MessageRef.kind == "received"))
    assert refs == ROUNDS


def test_the_thread_shows_both_mailboxes_a_mail_arrived_in(app, shop_mailboxes, customer, owner_client):
    accounts = [account for account, _mailbox in shop_mailboxes]
    deliver(accounts, mail_to_both(1))
    poll_side_by_side([mailbox.id for _account, mailbox in shop_mailboxes])
    message = assert_kept_once(1, SERWIS, REKLAMACJE)

    page = owner_client.get(f"/threads/{message.thread_id}")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count("ekran znowu miga (zgłoszenie 1)") == 1
    assert f"Received in mailboxes: {SERWIS}, {REKLAMACJE}" in html or \
        f"Received in mailboxes: {REKLAMACJE}, {SERWIS}" in html


def test_two_mail_poll_processes_started_at_once_store_a_mail_in_both_mailboxes_once(
        app, database_url, shop_mailboxes, customer, tmp_path):
    accounts = [account for account, _mailbox in shop_mailboxes]
    for number in range(5):
        deliver(accounts, mail_to_both(number))
        meeting = tmp_path / f"round-{number}"
        meeting.mkdir()
        pollers = [_poller(app, database_url, meeting, mailbox.id) for _account, mailbox in shop_mailboxes]
        outputs = []
        for poller in pollers:
            output, _ = poller.communicate(timeout=120)
            outputs.append(output.decode())
            assert poller.returncode == 0, output.decode()
        assert sorted("duplicates 1" in output for output in outputs) == [False, True], outputs
        assert_kept_once(number, SERWIS, REKLAMACJE)


def _poller(app, database_url: str, meeting: Path, mailbox_id: int) -> subprocess.Popen:
    """`flask mail poll --mailbox ID` in a process of its own whose first lookup for an earlier copy waits until
    the other process has made its own (a file each in `meeting`): both look before either writes."""
    script = textwrap.dedent(f"""
        import pathlib, sys, time
        from app.inbound import record as inbound
        lookup, meeting, met = inbound._fetched_before, pathlib.Path({str(meeting)!r}), []
        def fetched_before(*args, **kwargs):
            found = lookup(*args, **kwargs)
            if not met:
                met.append(True)
                (meeting / "{mailbox_id}").write_text("looked")
                deadline = time.monotonic() + 60
                while len(list(meeting.iterdir())) < 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
            return found
        inbound._fetched_before = fetched_before
        from flask.cli import main
        main()
    """)
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": app.instance_path,
           "SECRET_KEY": TEST_CONFIG["SECRET_KEY"], "SCHEDULER_ENABLED": "0", "FLASK_APP": "wsgi"}
    return subprocess.Popen([sys.executable, "-c", script, "mail", "poll", "--mailbox", str(mailbox_id)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
