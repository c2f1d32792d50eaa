"""Mailbox health the shop can see: last good poll and send, a broken mailbox told once by e-mail through another
mailbox that works, and one failing mailbox never holding up the others."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.inbound.poll import poll_due_mailboxes
from app.mailbox_health import notify_broken_mailboxes
from app.accounts.mailboxes import create_mailbox, record_failure, record_polled, record_sent
from app.models import AuditEvent, Customer, Delivery, InboundItem, Message, Shop, Thread
from app.outbox import dispatch_pass
from inbound_helpers import plain_mail
from servers.smtp import free_port


def hang_up_once_reached(silent_server, worker: threading.Thread) -> None:
    """Let the hanging server end its connection once the worker has reached it, then wait for the worker."""
    deadline = time.monotonic() + 30
    while not silent_server.accepted and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    silent_server.hang_up()
    worker.join(timeout=30)
    assert not worker.is_alive()


def broken_mailbox(name: str = "Sklep", email: str = "sklep@shop.example"):
    """A mailbox whose server refuses every connection, failed often enough to count as broken."""
    box = create_mailbox(name=name, email=email, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="none")
    for _attempt in range(3):
        record_failure(box, "The mail server 127.0.0.1 refused the connection: check the host and port.")
    db.session.commit()
    assert box.broken_at is not None
    return box


def test_a_broken_mailbox_is_told_once_to_the_notification_address_through_a_working_one(app, mailbox,
                                                                                          smtp_server):
    Shop.current().notification_email = "szef@shop.example"
    broken = broken_mailbox()

    assert notify_broken_mailboxes() == 1
    assert notify_broken_mailboxes() == 0  # the next passes do not repeat it

    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["szef@shop.example"] and mail.mail_from == mailbox.email
    text = mail.data.decode()
    assert "Subject: The mailbox Sklep is not working" in text
    assert "refused the connection" in text and f"http://shop.example/settings/mailboxes/{broken.id}" in text
    assert "Auto-Submitted: auto-generated" in text
    assert mailbox.last_send_at is not None  # the notice counts as the working mailbox's success
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "mailbox.broken")).one()
    assert event.details["notified"] == "szef@shop.example"

    # Working again, then broken again: told again.
    record_sent(broken)
    for _attempt in range(3):
        record_failure(broken, "timed out")
    db.session.commit()
    assert notify_broken_mailboxes() == 1
    assert len(smtp_server.wait_for(2)) == 2


def test_without_another_working_mailbox_only_the_owners_banner_tells(owner_client, smtp_server):
    Shop.current().notification_email = "szef@shop.example"
    broken = broken_mailbox()

    assert notify_broken_mailboxes() == 0

    assert broken.broken_notified_at is not None
    assert smtp_server.messages == []
    page = owner_client.get("/").get_data(as_text=True)
    assert "The mailbox Sklep is not working: The mail server 127.0.0.1 refused the connection" in page


def test_the_mailbox_list_shows_the_last_successful_send_and_check_of_every_mailbox(owner_client, mailbox):
    mailbox.imap_host = "imap.shop.example"
    record_sent(mailbox)
    record_polled(mailbox)
    db.session.commit()
    broken = broken_mailbox()

    page = owner_client.get("/settings/mailboxes/").get_data(as_text=True)

    working_row = page[page.index("imap.shop.example"):page.index("</tr>", page.index("imap.shop.example"))]
    assert "last received" in working_row and "Working" in working_row
    assert "Not working" in page and "refused the connection" in page
    assert broken.last_poll_ok_at is None and broken.last_send_at is None


@pytest.mark.app_config(IMAP_TIMEOUT=60)
def test_a_hanging_mail_server_does_not_hold_up_polling_the_other_mailboxes(app, imap_server, silent_smtp_server):
    # The hanging one comes first: polled one after the other, the working one would wait its whole minute.
    hanging = imap_server.make_mailbox(name="Hanging", email="hanging@shop.example", imap_host=silent_smtp_server.host,
                                       imap_port=silent_smtp_server.port)
    working = imap_server.make_mailbox(name="Working")
    db.session.commit()
    imap_server.append(plain_mail())
    results = []

    def scheduler_pass():
        with app.app_context():
            results.extend(poll_due_mailboxes())

    scheduler = threading.Thread(target=scheduler_pass)
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while not db.session.scalar(select(func.count()).select_from(InboundItem)
                                    .where(InboundItem.mailbox_id == working.id)):
            assert time.monotonic() < deadline, "the working mailbox was not polled while the other one hung"
            time.sleep(0.05)
    finally:
        hang_up_once_reached(silent_smtp_server, scheduler)

    by_name = {result.mailbox_name: result for result in results}
    assert by_name["Working"].error is None and by_name["Working"].counts["fetched"] == 1
    assert "closed the connection" in by_name["Hanging"].error
    db.session.expire_all()  # the pass ran in sessions of its own
    assert hanging.consecutive_failures == 1 and working.last_poll_ok_at is not None


def queued_mail(thread: Thread, mailbox) -> Delivery:
    message = Message(thread_id=thread.id, direction="out", subject=thread.subject, body_text="Telefon gotowy.",
                      body_format="markdown")
    db.session.add(message)
    db.session.flush()
    delivery = Delivery(message_id=message.id, channel="email", status="queued", recipient="jan@example.com",
                        mailbox_id=mailbox.id)
    db.session.add(delivery)
    return delivery


@pytest.mark.app_config(SMTP_TIMEOUT=60)
def test_a_hanging_mail_server_that_failed_before_does_not_hold_up_the_other_mailboxes_mail(app, mailbox, smtp_server,
                                                                                           silent_smtp_server):
    hanging = create_mailbox(name="Hanging", email="hanging@shop.example", smtp_host=silent_smtp_server.host,
                             smtp_port=silent_smtp_server.port, smtp_security="none")
    record_failure(hanging, "The mail server did not answer: timed out after 60 s.")
    customer = Customer(name="Jan Kowalski", email="jan@example.com")
    db.session.add(customer)
    db.session.flush()
    thread = Thread(customer_id=customer.id, subject="Naprawa")
    db.session.add(thread)
    db.session.flush()
    queued_mail(thread, hanging)  # first in the outbox
    queued_mail(thread, mailbox)
    db.session.commit()
    counts = {}

    def scheduler_pass():
        with app.app_context():
            counts.update(dispatch_pass())

    scheduler = threading.Thread(target=scheduler_pass)
    scheduler.start()
    try:
        [mail] = smtp_server.wait_for(1, timeout=30)  # while the other server still hangs
    finally:
        hang_up_once_reached(silent_smtp_server, scheduler)

    assert mail.mail_from == mailbox.email
    assert (counts["sent"], counts["retried"]) == (1, 1)
