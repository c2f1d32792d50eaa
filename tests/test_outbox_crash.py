"""A dispatcher killed with SIGKILL in the middle of a pass: the deliveries whose hand-over to the provider had not
started go back to the queue and are sent once by the next pass; only those in flight (at most two) are shown as
uncertain, and never sent again by themselves."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path

import pytest
from sqlalchemy import select

from app.customers import create_customer
from app.extensions import db
from app.accounts.mailboxes import create_mailbox
from app.messaging.compose import compose
from app.models import Delivery, DeliveryEvent, Shop, utcnow
from app.outbox import dispatch_pass, resend
from app.outbox.dispatch import IN_FLIGHT
from app.accounts.sms import configure_sms
from helpers import TEST_CONFIG

ROOT = Path(__file__).resolve().parent.parent
STALE = timedelta(minutes=11)  # past OUTBOX_SENDING_STALE
MAILS = 6


@pytest.fixture
def mail_server(app, smtp_server):
    app.config["SMTP_CA_FILE"] = smtp_server.cafile
    create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                   smtp_security="starttls", username=smtp_server.username, password=smtp_server.password)
    Shop.current().undo_seconds = 0
    db.session.commit()
    return smtp_server


@pytest.fixture
def sms_server(app, twilio_server):
    configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number="+48500100200",
                  api_base_url=twilio_server.url, actor="test")
    Shop.current().undo_seconds = 0
    db.session.commit()
    return twilio_server


def queue(channel: str, count: int) -> list[int]:
    """`count` deliveries over `channel`, each to a customer of its own (so the server's log tells them apart)."""
    ids = []
    for number in range(count):
        customer = create_customer(name=f"Klient {number}", email=f"klient{number}@example.com",
                                   phone=f"+48600100{number:03d}")
        message = compose(customer=customer, channels=[channel], body=f"Telefon numer {number} gotowy.",
                          source="test")
        ids.append(message.deliveries[0].id)
    db.session.commit()
    return ids


@contextmanager
def dispatcher(app, database_url: str, tmp_path: Path, hang_in: str | None = None):
    """`flask --app wsgi outbox dispatch` in a process of its own, killed with SIGKILL when the block ends.

    With `hang_in` ("module:Class.method"), that function signals and hangs the first time it is called, and the
    block runs once it was reached; otherwise the block runs at once (the test waits for a server's event)."""
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": app.instance_path,
           "SECRET_KEY": TEST_CONFIG["SECRET_KEY"], "SCHEDULER_ENABLED": "0", "FLASK_APP": "wsgi",
           "SMTP_TIMEOUT": "120"}
    if app.config["SMTP_CA_FILE"]:
        env["SMTP_CA_FILE"] = app.config["SMTP_CA_FILE"]
    marker = tmp_path / "arrived"
    patch = ""
    if hang_in:
        module, _, path = hang_in.partition(":")
        owner, _, name = path.rpartition(".")
        patch = textwrap.dedent(f"""
            import importlib, pathlib, time
            owner = importlib.import_module({module!r})
            for part in {owner!r}.split("."):
                owner = getattr(owner, part) if part else owner
            def hang(*args, **kwargs):
                pathlib.Path({str(marker)!r}).write_text("here")
                time.sleep(120)
            setattr(owner, {name!r}, hang)
        """)
    script = patch + "\nfrom flask.cli import main\nmain()\n"
    process = subprocess.Popen([sys.executable, "-c", script, "outbox", "dispatch"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        if hang_in:
            wait_until(marker.exists, process, f"the dispatcher never got to {hang_in}")
        yield process
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        process.stdout.close()


def wait_until(arrived, process: subprocess.Popen, why: str) -> None:
    """Wait for an event of the test's servers (or a marker), failing when the process died or a minute passed."""
    deadline = time.monotonic() + 60
    while not arrived():
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, why
        time.sleep(0.02)


def statuses(ids: list[int]) -> dict[int, tuple[str, bool]]:
    db.session.expire_all()
    rows = db.session.execute(select(Delivery.id, Delivery.status, Delivery.uncertain).where(Delivery.id.in_(ids)))
    return {row.id: (row.status, row.uncertain) for row in rows}


def mails_per_delivery(server, ids: list[int]) -> Counter:
    """How many mails the SMTP server got for each delivery (by the recipient, one customer per delivery)."""
    numbers = Counter()
    for mail in server.messages:
        to = message_from_bytes(mail.data)["To"]
        numbers[next(i for number, i in enumerate(ids) if f"klient{number}@example.com" in to)] += 1
    return numbers


def sms_per_delivery(server, ids: list[int]) -> Counter:
    return Counter(ids[int(request.form["To"][-3:])] for request in server.requests)


def assert_sent_once_or_in_doubt(ids: list[int], received: Counter) -> list[int]:
    """Every delivery is sent (and the server got it exactly once) or uncertain (got at most once); at most the
    IN_FLIGHT ones are uncertain. Returns the uncertain ones."""
    found = statuses(ids)
    uncertain = [i for i in ids if found[i] == ("sending", True)]
    assert all(found[i] == ("sent", False) for i in ids if i not in uncertain), found
    assert all(received[i] == 1 for i in ids if i not in uncertain), received
    assert all(received[i] <= 1 for i in uncertain), received
    assert len(uncertain) <= IN_FLIGHT, found
    return uncertain


def test_a_dispatcher_killed_before_its_first_send_leaves_nothing_in_doubt_and_the_next_pass_sends_all_once(
        app, database_url, tmp_path, mail_server):
    ids = queue("email", MAILS)

    with dispatcher(app, database_url, tmp_path, hang_in="app.outbox.claim:Claim.hand_over"):
        assert all(status == ("sending", False) for status in statuses(ids).values())  # all claimed

    assert dispatch_pass(now=utcnow() + timedelta(minutes=5))["claimed"] == 0  # not stale yet: it may be alive
    counts = dispatch_pass(now=utcnow() + STALE)

    assert (counts["requeued"], counts["uncertain"], counts["sent"]) == (MAILS, 0, MAILS)
    mail_server.wait_for(MAILS)
    assert assert_sent_once_or_in_doubt(ids, mails_per_delivery(mail_server, ids)) == []
    db.session.expire_all()
    assert {delivery.attempts for delivery in db.session.scalars(select(Delivery))} == {1}


def test_a_dispatcher_killed_mid_batch_leaves_at_most_the_mails_in_flight_uncertain(
        app, database_url, tmp_path, mail_server):
    ids = queue("email", MAILS)
    mail_server.stall(3)  # takes in the third mail and never answers

    with dispatcher(app, database_url, tmp_path) as process:
        wait_until(mail_server.stalled.is_set, process, "the third mail never reached the server")

    counts = dispatch_pass(now=utcnow() + STALE)

    uncertain = assert_sent_once_or_in_doubt(ids, mails_per_delivery(mail_server, ids))
    assert ids[2] in uncertain  # the server has it: only staff can tell whether it went on
    assert counts["uncertain"] == len(uncertain) and counts["requeued"] == counts["sent"] >= MAILS - 4
    assert dispatch_pass(now=utcnow() + timedelta(hours=2))["claimed"] == 0  # never resent silently
    events = db.session.scalars(select(DeliveryEvent.status).where(DeliveryEvent.delivery_id == ids[-1])).all()
    assert events == ["requeued", "sent"]


def test_a_dispatcher_killed_while_an_sms_request_is_open_leaves_only_that_sms_uncertain(
        app, database_url, tmp_path, sms_server):
    ids = queue("sms", 5)
    sms_server.hold(2)  # the second request reaches Twilio and stays open

    with dispatcher(app, database_url, tmp_path) as process:
        wait_until(sms_server.holding.is_set, process, "the second SMS never reached the server")

    counts = dispatch_pass(now=utcnow() + STALE)

    assert (counts["uncertain"], counts["requeued"], counts["sent"]) == (1, 3, 3)
    uncertain = assert_sent_once_or_in_doubt(ids, sms_per_delivery(sms_server, ids))
    assert uncertain == [ids[1]]
    sms_server.release()


def test_staff_resend_an_uncertain_delivery_and_it_goes_out_once_more(
        app, database_url, tmp_path, sms_server, owner):
    ids = queue("sms", 2)
    sms_server.hold(1)

    with dispatcher(app, database_url, tmp_path) as process:
        wait_until(sms_server.holding.is_set, process, "the SMS never reached the server")
    sms_server.release()
    dispatch_pass(now=utcnow() + STALE)
    assert statuses(ids) == {ids[0]: ("sending", True), ids[1]: ("sent", False)}

    resend(db.session.get(Delivery, ids[0]), owner)
    db.session.commit()

    assert dispatch_pass()["sent"] == 1
    assert statuses(ids)[ids[0]] == ("sent", False)
    assert sms_per_delivery(sms_server, ids) == {ids[0]: 2, ids[1]: 1}  # the held one did reach Twilio


def test_a_dispatcher_killed_while_the_server_is_silent_leaves_that_mail_uncertain(
        app, database_url, tmp_path, silent_smtp_server):
    create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host=silent_smtp_server.host,
                   smtp_port=silent_smtp_server.port, smtp_security="none")
    Shop.current().undo_seconds = 0
    db.session.commit()
    [delivery_id] = queue("email", 1)

    with dispatcher(app, database_url, tmp_path) as process:
        wait_until(lambda: silent_smtp_server.accepted, process, "the dispatcher never connected")

    counts = dispatch_pass(now=utcnow() + STALE)  # past OUTBOX_SENDING_STALE
    assert counts["uncertain"] == 1 and counts["claimed"] == 0
    assert statuses([delivery_id]) == {delivery_id: ("sending", True)}
    assert dispatch_pass(now=utcnow() + timedelta(hours=2))["claimed"] == 0  # never resent silently
