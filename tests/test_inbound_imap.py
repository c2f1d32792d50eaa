"""Fetching mail over IMAP from a real Dovecot: the UID cursor, backfill, UIDVALIDITY changes, after-fetch actions,
a server that goes away, a poller killed before its commit, overlapping polls, and failures the owner can read."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.crypto import encrypt
from app.customers import create_customer
from app.extensions import db
from app import leases
from app.inbound.imap import ImapFailure, ImapFolder
from app.inbound.poll import BATCH_MESSAGES, lease_name, poll_due_mailboxes, poll_mailbox
from app.messaging.compose import compose
from app.models import InboundItem, Lease, Mailbox, Message, Shop, utcnow
from app.outbox import dispatch_pass
from helpers import TEST_CONFIG

ROOT = Path(__file__).resolve().parent.parent


def mail(number: int, *, subject: str | None = None, sender: str = "klient@example.com", body: str = "",
         extra: str = "") -> bytes:
    """A small plain mail, different for every `number`."""
    return (
        f"From: Klient <{sender}>\r\nTo: serwis@shop.example\r\nSubject: {subject or f'Pytanie {number}'}\r\n"
        f"Message-ID: <m{number}.{os.getpid()}@example.com>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n{extra}"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body or f'Treść numer {number}.'}\r\n"
    ).encode()


def stored(mailbox: Mailbox) -> list[InboundItem]:
    """The mailbox's items that are mail of their own (not a recognised copy of one stored before)."""
    db.session.expire_all()
    return list(db.session.scalars(select(InboundItem).where(InboundItem.mailbox_id == mailbox.id,
                                                             InboundItem.status != "duplicate")
                                   .order_by(InboundItem.id)))


def fetched_uids(mailbox: Mailbox) -> list[tuple[int, int]]:
    db.session.expire_all()
    return list(db.session.execute(select(InboundItem.uidvalidity, InboundItem.uid)
                                   .where(InboundItem.mailbox_id == mailbox.id).order_by(InboundItem.uid)).tuples())


def poll(mailbox: Mailbox):
    result = poll_mailbox(mailbox)
    db.session.expire_all()
    return result


def test_a_customers_reply_to_our_mail_is_polled_into_its_thread(app, imap_server, smtp_server):
    app.config["SMTP_CA_FILE"] = smtp_server.cafile
    mailbox = imap_server.make_mailbox(smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                                       smtp_security="starttls")
    mailbox.smtp_username, mailbox.smtp_password_enc = smtp_server.username, encrypt(smtp_server.password)
    Shop.current().undo_seconds = 0
    customer = create_customer(name="Jan Kowalski", email="jan@example.com")
    sent = compose(customer=customer, channels=["email"], subject="Telefon gotowy", body="Zapraszamy po odbiór.",
                   source="test")
    db.session.commit()
    assert dispatch_pass()["sent"] == 1
    ours = message_from_bytes(smtp_server.wait_for(1)[0].data)

    imap_server.append((
        f"From: Jan Kowalski <jan@example.com>\r\nTo: {ours['Reply-To']}\r\nSubject: Re: {ours['Subject']}\r\n"
        f"Message-ID: <reply-1@example.com>\r\nIn-Reply-To: {ours['Message-ID']}\r\n"
        f"References: {ours['Message-ID']}\r\nDate: Mon, 23 Nov 2026 12:00:00 +0100\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Dziękuję, odbiorę jutro.\r\n\r\nW dniu 23.11.2026 o 11:00, Serwis pisze:\r\n> Zapraszamy po odbiór.\r\n"
    ).encode())
    result = app.test_cli_runner().invoke(args=["mail", "poll"])

    assert result.exit_code == 0 and "fetched 1, threaded 1," in result.output, result.output
    db.session.expire_all()
    reply = db.session.scalars(select(Message).where(Message.direction == "in")).one()
    assert reply.thread_id == sent.thread_id and "jan@example.com" in reply.sender
    assert reply.body_text.strip() == "Dziękuję, odbiorę jutro."
    assert imap_server.messages()[0].flags == ("\\Seen",)


def test_mail_that_arrived_during_downtime_is_backfilled_and_nothing_is_fetched_twice(app, imap_server):
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    imap_server.append_many(mail(n) for n in range(120))  # more than one batch

    first = poll(mailbox)

    assert first.error is None and first.counts["fetched"] == 120
    assert len(stored(mailbox)) == 120
    assert mailbox.uidvalidity == imap_server.uidvalidity() and mailbox.last_uid == 120
    assert mailbox.last_poll_at is not None

    imap_server.append_many(mail(n) for n in range(120, 125))
    second = poll(mailbox)
    third = poll(mailbox)

    assert second.counts["fetched"] == 5 and third.counts["fetched"] == 0
    assert len(stored(mailbox)) == 125
    assert [uid for _validity, uid in fetched_uids(mailbox)] == list(range(1, 126))


def test_a_uid_is_never_stored_twice_even_when_the_cursor_is_wound_back(app, imap_server):
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    imap_server.append_many(mail(n) for n in range(3))
    poll(mailbox)

    mailbox.last_uid = 0  # as if the commit of the cursor had been lost
    db.session.commit()
    again = poll(mailbox)

    assert again.counts["fetched"] == 3 and again.counts["duplicates"] == 3
    assert len(stored(mailbox)) == 3 and len(fetched_uids(mailbox)) == 3


def test_a_changed_uidvalidity_reads_the_folder_again_and_only_new_mail_is_new(app, imap_server, recorder):
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    imap_server.append_many(mail(n) for n in range(3))
    poll(mailbox)
    old_validity = mailbox.uidvalidity

    # The server lost its index (a restored backup): the folder is rebuilt with the same mail and more, one of
    # which the recorder cannot take (the batch is then recorded again mail by mail).
    imap_server.clear()
    new_validity = imap_server.reset_uidvalidity()
    imap_server.append_many([*(mail(n) for n in range(4)), mail(4, extra=f"{recorder.EXPLODE}: yes\r\n")])
    result = poll(mailbox)

    assert new_validity != old_validity and mailbox.uidvalidity == new_validity
    assert result.counts["fetched"] == 5 and result.counts["duplicates"] == 3 and result.counts["errors"] == 1
    assert [item.subject for item in stored(mailbox)] == ["Pytanie 0", "Pytanie 1", "Pytanie 2", "Pytanie 3",
                                                          "Pytanie 4"]
    assert poll(mailbox).counts["fetched"] == 0 and mailbox.uidvalidity == new_validity


def test_a_30_mb_mail_is_fetched_on_its_own_and_the_small_ones_around_it_together(app, imap_server, monkeypatch):
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    photo = b"Content-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b"QUJD" * 19 + b"\r\n"
    big = mail(2, body="x").replace(b"\r\n\r\nx", b"\r\n\r\n" + photo * (30 * 2**20 // len(photo)))
    imap_server.append_many([mail(1), big, mail(3), mail(4)])
    fetches = []
    real_fetch = ImapFolder.fetch
    monkeypatch.setattr(ImapFolder, "fetch", lambda folder, uids: fetches.append(list(uids)) or
                        real_fetch(folder, fetches[-1]))

    result = poll(mailbox)

    assert result.counts["fetched"] == 4 and len(stored(mailbox)) == 4
    assert fetches == [[1], [2], [3, 4]]


def test_mail_read_in_another_mail_program_is_fetched_all_the_same(app, imap_server):
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    imap_server.append(mail(1), flags=("\\Seen",))
    imap_server.append(mail(2))

    result = poll(mailbox)

    assert result.counts["fetched"] == 2 and len(stored(mailbox)) == 2


def test_fetched_mail_is_marked_as_seen_and_kept_by_default(app, imap_server):
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    imap_server.append_many(mail(n) for n in range(2))

    poll(mailbox)

    assert [m.flags for m in imap_server.messages()] == [("\\Seen",), ("\\Seen",)]


def test_fetched_mail_is_moved_to_the_folder_the_mailbox_names(app, imap_server):
    imap_server.create_folder("Processed")
    mailbox = imap_server.make_mailbox(after_fetch="move", after_fetch_folder="Processed")
    db.session.commit()
    imap_server.append_many(mail(n) for n in range(2))

    result = poll(mailbox)

    assert result.error is None and len(stored(mailbox)) == 2
    assert imap_server.messages() == []
    assert [m.subject for m in imap_server.messages("Processed")] == ["Pytanie 0", "Pytanie 1"]


def test_moving_to_a_folder_that_does_not_exist_keeps_the_mail_and_says_why(app, imap_server):
    mailbox = imap_server.make_mailbox(after_fetch="move", after_fetch_folder="Gone")
    db.session.commit()
    imap_server.append(mail(1))

    result = poll(mailbox)

    assert len(stored(mailbox)) == 1  # recorded before the move was tried
    assert "Gone" in result.error and "Gone" in mailbox.last_error
    assert [m.subject for m in imap_server.messages()] == ["Pytanie 1"]


def test_fetched_mail_is_deleted_when_the_mailbox_says_so_but_unreadable_mail_stays(app, imap_server, recorder):
    mailbox = imap_server.make_mailbox(after_fetch="delete")
    db.session.commit()
    imap_server.append(mail(1))
    imap_server.append(mail(2, extra=f"{recorder.EXPLODE}: yes\r\n"))  # the recorder raises for this one
    imap_server.append(mail(3))

    result = poll(mailbox)

    assert result.counts == {"fetched": 3, "threaded": 0, "new_threads": 0, "held": 2, "duplicates": 0,
                             "errors": 1}
    assert [(m.subject, m.flags) for m in imap_server.messages()] == [("Pytanie 2", ("\\Seen",))]
    error = [item for item in stored(mailbox) if item.status == "error"]
    assert len(error) == 1 and error[0].uid == 2 and "exploded" in error[0].error


def test_mail_fetched_by_a_pass_that_stopped_before_moving_it_is_moved_by_the_next(app, imap_server, monkeypatch):
    imap_server.create_folder("Processed")
    mailbox = imap_server.make_mailbox(after_fetch="move", after_fetch_folder="Processed")
    db.session.commit()
    imap_server.append_many(mail(n) for n in range(3))
    real_move = ImapFolder.move

    def connection_lost(folder, uids, target):
        raise ImapFailure("The IMAP server closed the connection unexpectedly.", "disconnected")

    monkeypatch.setattr(ImapFolder, "move", connection_lost)
    assert poll(mailbox).error
    assert len(stored(mailbox)) == 3 and len(imap_server.messages()) == 3  # stored, not moved

    monkeypatch.setattr(ImapFolder, "move", real_move)
    imap_server.append(mail(3))
    result = poll(mailbox)

    assert result.error is None and result.counts["fetched"] == 1
    assert imap_server.messages() == [] and len(imap_server.messages("Processed")) == 4


@pytest.mark.parametrize("parser_processes", [0, 1], ids=["parsed in the pass", "parsed in a parser process"])
def test_the_server_going_away_mid_fetch_keeps_what_was_committed_and_the_next_pass_fetches_the_rest(
        app, imap_server, monkeypatch, parser_processes):
    app.config["MAIL_PARSER_PROCESSES"] = parser_processes
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    total = BATCH_MESSAGES * 2 + 30
    imap_server.append_many(mail(n) for n in range(total))
    real_fetch = ImapFolder.fetch
    stopped = []

    def fetch_with_the_server_going_away(folder, uids):
        if mailbox.last_uid == BATCH_MESSAGES and not stopped:  # the first batch is stored and marked: now the
            stopped.append(imap_server.stop())                  # server dies
        return real_fetch(folder, uids)

    monkeypatch.setattr(ImapFolder, "fetch", fetch_with_the_server_going_away)
    broken = poll(mailbox)

    assert broken.error and "closed the connection" in broken.error
    assert broken.counts["fetched"] == BATCH_MESSAGES  # what the pass committed
    assert mailbox.last_uid == BATCH_MESSAGES and len(stored(mailbox)) == BATCH_MESSAGES
    assert mailbox.consecutive_failures == 1 and mailbox.last_error.startswith("IMAP: ")

    imap_server.start()
    mended = poll(mailbox)

    assert mended.error is None and mended.counts["fetched"] == total - BATCH_MESSAGES
    assert len(stored(mailbox)) == total and len(fetched_uids(mailbox)) == total
    assert mailbox.consecutive_failures == 0
    assert all(message.flags == ("\\Seen",) for message in imap_server.messages())


def test_the_server_going_away_after_a_batch_was_fetched_keeps_the_whole_batch(app, imap_server, recorder):
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    imap_server.append_many(mail(n) for n in range(BATCH_MESSAGES + 30))
    recorder.after(BATCH_MESSAGES + 10, imap_server.stop)  # the second batch is in memory already

    broken = poll(mailbox)
    imap_server.start()
    mended = poll(mailbox)

    assert "closed the connection" in broken.error and broken.counts["fetched"] == BATCH_MESSAGES + 30
    assert mended.counts["fetched"] == 0
    assert len(stored(mailbox)) == BATCH_MESSAGES + 30 and mailbox.last_uid == BATCH_MESSAGES + 30


def test_a_poller_killed_after_fetching_and_before_its_commit_loses_nothing_and_doubles_nothing(
        app, database_url, imap_server, tmp_path):
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    imap_server.append_many(mail(n) for n in range(5))

    # The real `mail poll`, stopped just before it commits its first batch (when it renews its lease).
    with hanging_poller(app, database_url, tmp_path, leases.__name__, "renew"):
        pass  # killed with SIGKILL on the way out

    assert stored(mailbox) == [] and mailbox.last_uid == 0  # nothing committed
    assert imap_server.messages()[0].flags == ()  # and nothing marked
    # Its lease outlives it; the next pass after the lease's expiry takes over.
    db.session.execute(Lease.__table__.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    result = poll(mailbox)

    assert result.counts["fetched"] == 5 and len(stored(mailbox)) == 5 and len(fetched_uids(mailbox)) == 5


def test_a_poller_killed_after_its_commit_and_before_moving_the_mail_loses_nothing_and_doubles_nothing(
        app, database_url, imap_server, tmp_path):
    mailbox = imap_server.make_mailbox(after_fetch="move", after_fetch_folder="Archiwum")
    db.session.commit()
    imap_server.create_folder("Archiwum")
    imap_server.append_many(mail(n) for n in range(5))

    # The real `mail poll`, killed after committing its batch, while it would move the mail on the server.
    with hanging_poller(app, database_url, tmp_path, poll_mailbox.__module__, "_after_fetch"):
        pass

    assert len(stored(mailbox)) == 5 and mailbox.last_uid == 5  # committed with the cursor
    assert len(imap_server.messages()) == 5  # not moved yet
    db.session.execute(Lease.__table__.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()  # its lease expires by itself (LEASE_TTL): nobody has to clear it
    imap_server.append(mail(5))
    result = poll(mailbox)

    assert result.error is None and result.counts["fetched"] == 1 and result.counts["duplicates"] == 0
    assert len(stored(mailbox)) == 6 and len(fetched_uids(mailbox)) == 6  # the five kept once, the new one added
    assert imap_server.messages() == [] and len(imap_server.messages("Archiwum")) == 6  # the five moved too


def test_a_poll_while_another_process_polls_the_same_mailbox_skips_it(app, database_url, imap_server, tmp_path):
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    imap_server.append(mail(1))

    with hanging_poller(app, database_url, tmp_path, ImapFolder.__module__, "ImapFolder.fetch"):
        result = poll(mailbox)  # while the other process is fetching

    assert result.skipped and stored(mailbox) == []
    assert poll(mailbox).skipped  # its lease outlives it until it expires


@contextmanager
def hanging_poller(app, database_url: str, tmp_path: Path, module: str, function: str):
    """`flask mail poll` in a process of its own, hanging in `module.function` until killed with SIGKILL when the
    block ends; the block runs once it got there. Callers name the module by an imported object's, so that a
    module that moves cannot leave a stale name here."""
    marker = tmp_path / "arrived"
    name = function.rpartition(".")[2]
    script = textwrap.dedent(f"""
        import importlib, pathlib, time
        module = importlib.import_module({module!r})
        owner = module
        for part in {function!r}.split(".")[:-1]:
            owner = getattr(owner, part)
        def hang(*args, **kwargs):
            pathlib.Path({str(marker)!r}).write_text("here")
            time.sleep(120)
        setattr(owner, {name!r}, hang)
        from flask.cli import main
        main()
    """)
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": app.instance_path,
           "SECRET_KEY": TEST_CONFIG["SECRET_KEY"], "SCHEDULER_ENABLED": "0", "FLASK_APP": "wsgi"}
    poller = subprocess.Popen([sys.executable, "-c", script, "mail", "poll"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert poller.poll() is None, poller.stdout.read().decode()
            assert time.monotonic() < deadline, f"the poller never got to {function}"
            time.sleep(0.05)
        yield
    finally:
        poller.send_signal(signal.SIGKILL)
        poller.wait(timeout=10)
        poller.stdout.close()


def test_a_second_pass_over_the_same_mailbox_skips_while_the_first_holds_it(app, imap_server):
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    imap_server.append(mail(1))
    assert leases.acquire(lease_name(mailbox), "other-host:1:abc", timedelta(minutes=5))

    result = poll(mailbox)

    assert result.skipped and result.counts["fetched"] == 0 and stored(mailbox) == []
    assert db.session.get(Lease, lease_name(mailbox)).owner == "other-host:1:abc"  # untouched


def test_an_expired_lease_of_a_dead_pass_is_taken_over(app, imap_server):
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    imap_server.append(mail(1))
    leases.acquire(lease_name(mailbox), "dead-host:1:abc", timedelta(minutes=5), now=utcnow() - timedelta(minutes=6))

    result = poll(mailbox)

    assert not result.skipped and result.counts["fetched"] == 1
    assert db.session.get(Lease, lease_name(mailbox)) is None  # released at the end


def test_a_pass_whose_lease_was_taken_over_commits_nothing(app, imap_server, recorder):
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    imap_server.append_many(mail(n) for n in range(3))

    def steal():  # our lease expired and another pass took it, while this one was fetching
        db.session.execute(Lease.__table__.update().values(owner="thief:1:abc"))

    recorder.after(2, steal)
    result = poll(mailbox)

    assert "Another polling pass" in result.error and result.counts["fetched"] == 0
    assert stored(mailbox) == [] and mailbox.last_uid == 0


def test_a_wrong_password_is_written_on_the_mailbox_and_the_owner_is_warned_after_repeated_failures(
        app, imap_server):
    mailbox = imap_server.make_mailbox(password="wrong password")
    db.session.commit()

    results = [poll(mailbox) for _attempt in range(3)]

    assert "rejected the login" in results[0].error and imap_server.user in results[0].error
    assert mailbox.last_error.startswith("IMAP: The IMAP server rejected the login")
    assert mailbox.consecutive_failures == 3 and mailbox.broken_at is not None


def test_a_sent_mail_does_not_hide_that_receiving_is_failing(app, imap_server):
    from app.accounts.mailboxes import record_sent

    mailbox = imap_server.make_mailbox(password="wrong password")
    db.session.commit()
    poll(mailbox)
    record_sent(mailbox)
    poll(mailbox)

    assert mailbox.consecutive_failures == 2


@pytest.mark.parametrize("validate, expected", [(True, "certificate is not trusted"), (False, None)])
def test_tls_with_a_self_signed_certificate_is_refused_unless_the_check_is_off(app, imap_server, validate,
                                                                                 expected):
    mailbox = imap_server.make_mailbox(security="tls", imap_validate_cert=validate)
    db.session.commit()
    imap_server.append(mail(1))

    result = poll(mailbox)

    if expected:
        assert expected in result.error and result.counts["fetched"] == 0
    else:
        assert result.error is None and result.counts["fetched"] == 1


def test_tls_with_the_servers_certificate_trusted_works_with_the_check_on(app, imap_server):
    app.config["IMAP_CA_FILE"] = imap_server.cafile
    mailbox = imap_server.make_mailbox(security="tls")
    db.session.commit()
    imap_server.append(mail(1))

    assert poll(mailbox).counts["fetched"] == 1


def test_starttls_is_used_on_the_plain_port(app, imap_server):
    app.config["IMAP_CA_FILE"] = imap_server.cafile
    mailbox = imap_server.make_mailbox(security="starttls")
    db.session.commit()
    imap_server.append(mail(1))

    assert poll(mailbox).counts["fetched"] == 1


@pytest.mark.app_config(IMAP_TIMEOUT=1)
def test_a_server_that_never_answers_times_out_and_is_written_on_the_mailbox(app, imap_server, silent_smtp_server):
    mailbox = imap_server.make_mailbox(imap_host=silent_smtp_server.host, imap_port=silent_smtp_server.port)
    db.session.commit()

    result = poll(mailbox)

    assert "did not answer: timed out after 1 s" in result.error
    assert mailbox.consecutive_failures == 1 and "timed out" in mailbox.last_error


def test_the_scheduler_polls_only_the_mailboxes_whose_interval_has_passed(app, imap_server):
    mailbox = imap_server.make_mailbox(poll_interval=60)
    db.session.commit()
    imap_server.append(mail(1))

    assert [r.counts["fetched"] for r in poll_due_mailboxes()] == [1]  # never polled: due
    imap_server.append(mail(2))
    assert poll_due_mailboxes() == []  # polled just now
    later = poll_due_mailboxes(now=utcnow() + timedelta(seconds=61))
    assert [r.counts["fetched"] for r in later] == [1]


def test_the_scheduler_job_survives_an_unreachable_mailbox(app, imap_server):
    from servers.smtp import free_port

    broken = imap_server.make_mailbox(name="Broken", email="broken@shop.example", imap_port=free_port())
    working = imap_server.make_mailbox(name="Working")
    db.session.commit()
    imap_server.append(mail(1))

    results = {result.mailbox_name: result for result in poll_due_mailboxes()}

    assert "refused the connection" in results["Broken"].error
    assert results["Working"].counts["fetched"] == 1
    assert db.session.scalar(select(func.count()).select_from(InboundItem)
                             .where(InboundItem.mailbox_id == working.id)) == 1
    assert broken.last_poll_at is not None  # waits for its interval before the next try


# ---------------------------------------------------------------- the command line


def test_mail_poll_prints_the_counts_of_each_mailbox(app, imap_server):
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    imap_server.append_many(mail(n) for n in range(2))

    result = app.test_cli_runner().invoke(args=["mail", "poll"])

    assert result.exit_code == 0, result.output
    assert result.output == (f"mailbox {mailbox.id} (Serwis): fetched 2, threaded 0, new threads 0, held 2, "
                             "duplicates 0, errors 0\n")


def test_mail_poll_fails_with_the_reason_when_a_mailbox_cannot_be_polled(app, imap_server):
    mailbox = imap_server.make_mailbox(password="wrong password")
    db.session.commit()

    result = app.test_cli_runner().invoke(args=["mail", "poll", "--mailbox", str(mailbox.id)])

    assert result.exit_code == 1
    assert "rejected the login" in result.stderr


def test_mail_poll_of_an_unknown_mailbox_says_so(app):
    result = app.test_cli_runner().invoke(args=["mail", "poll", "--mailbox", "99"])

    assert result.exit_code == 1 and "mailbox 99 does not exist" in result.output


def test_mail_poll_says_when_another_pass_holds_the_mailbox(app, imap_server):
    mailbox = imap_server.make_mailbox()
    db.session.commit()
    leases.acquire(lease_name(mailbox), "other-host:1:abc", timedelta(minutes=5))

    result = app.test_cli_runner().invoke(args=["mail", "poll"])

    assert result.exit_code == 0 and "skipped, another pass is polling it" in result.output


# ---------------------------------------------------------------- the recorder, watched


class Recorder:
    """Wraps the real recording (a batch's, and a mail's when the batch is recorded again mail by mail): a mail
    with an `X-Test-Explode` header makes it raise, and `after(n, action)` runs `action` once n mails have been
    recorded in the test (to stop the server mid-fetch, say)."""

    EXPLODE = "X-Test-Explode"

    def __init__(self, batch, single):
        self._batch, self._single = batch, single
        self.count = 0
        self._action = None
        self._at = None

    def after(self, count, action) -> None:
        self.count, self._at, self._action = 0, count, action

    def record_batch(self, mailbox, mails, uidvalidity, read=None):
        self._check(raw for _uid, raw in mails)
        return self._recorded(self._batch(mailbox, mails, uidvalidity, read))

    def record_mail(self, mailbox, raw, *, uidvalidity, uid):
        self._check([raw])
        return self._recorded([self._single(mailbox, raw, uidvalidity=uidvalidity, uid=uid)])[0]

    def _check(self, raws) -> None:
        if any(f"\r\n{self.EXPLODE}: ".encode() in raw for raw in raws):
            raise RuntimeError("the recorder exploded")

    def _recorded(self, outcomes):
        before, self.count = self.count, self.count + len(outcomes)
        if self._action is not None and before < self._at <= self.count:
            self._action()
        return outcomes


@pytest.fixture
def recorder(monkeypatch):
    from app.inbound import poll

    watched = Recorder(poll.record_batch, poll.record_mail)
    monkeypatch.setattr(poll, "record_batch", watched.record_batch)
    monkeypatch.setattr(poll, "record_mail", watched.record_mail)
    return watched
