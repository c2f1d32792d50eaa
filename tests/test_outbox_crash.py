"""A dispatcher killed in the middle of sending: the delivery is shown as uncertain and never sent again by itself."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from servers.smtp import silent_smtp_server  # noqa: F401  (fixture)

from app.customers import create_customer
from app.extensions import db
from app.mailboxes import create_mailbox
from app.messaging.compose import compose
from app.models import Delivery, Shop, utcnow
from app.outbox import dispatch_pass
from conftest import TEST_CONFIG

ROOT = Path(__file__).resolve().parent.parent


def test_a_dispatcher_killed_while_sending_leaves_an_uncertain_delivery_that_is_not_resent(
        app, database_url, silent_smtp_server):
    create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host=silent_smtp_server.host,
                   smtp_port=silent_smtp_server.port, smtp_security="none")
    Shop.current().undo_seconds = 0
    customer = create_customer(name="Jan Kowalski", email="jan@example.com")
    message = compose(customer=customer, channels=["email"], body="Telefon gotowy.", source="test")
    db.session.commit()
    delivery_id = message.deliveries[0].id

    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": app.instance_path,
           "SECRET_KEY": TEST_CONFIG["SECRET_KEY"], "SCHEDULER_ENABLED": "0", "SMTP_TIMEOUT": "120"}
    dispatcher = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "outbox", "dispatch"],
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while _status(delivery_id) != "sending":  # claimed, now waiting on the mail server
            assert dispatcher.poll() is None, dispatcher.stdout.read().decode()
            assert time.monotonic() < deadline, "the dispatcher never claimed the delivery"
            time.sleep(0.05)
    finally:
        dispatcher.send_signal(signal.SIGKILL)
        dispatcher.wait(timeout=10)

    counts = dispatch_pass(now=utcnow() + timedelta(minutes=11))  # past OUTBOX_SENDING_STALE
    assert counts["uncertain"] == 1 and counts["claimed"] == 0
    db.session.expire_all()
    delivery = db.session.get(Delivery, delivery_id)
    assert delivery.status == "sending" and delivery.uncertain
    assert dispatch_pass(now=utcnow() + timedelta(hours=2))["claimed"] == 0  # never resent silently


def _status(delivery_id: int) -> str:
    db.session.expire_all()
    status = db.session.scalar(db.select(Delivery.status).where(Delivery.id == delivery_id))
    db.session.rollback()
    return status
