"""Automatic repair notifications: a status change on the card or through the API sends its template once, into
the repair's thread, through the outbox; quiet hours hold automatic SMS only; unreachable channels are noted."""
from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from app.customers import add_contact_person, create_customer
from app.extensions import db
from app.messaging.compose import compose
from app.messaging.notifications import quiet_until
from app.messaging.templates import delete_template, save_template
from app.models import (Delivery, Message, MessageTemplate, RepairEvent, RepairStatus, Shop, StatusNotification,
                        Thread, utcnow)
from app.outbox import dispatch_pass
from app.repairs import change_status, create_repair
from helpers import csrf_token

MOBILE = "+48600100200"


@pytest.fixture
def shop(app):
    shop = Shop.current()
    shop.undo_seconds = 0
    shop.quiet_hours_start = shop.quiet_hours_end = "00:00"  # no quiet hours unless a test sets them
    db.session.commit()
    return shop


# Not the shared `customer`: made after the `shop` settings (no undo delay, no quiet hours) every test here needs.
@pytest.fixture
def customer(shop):
    customer = create_customer(name="Jan Kowalski", email="jan@example.com", phone=MOBILE)
    db.session.commit()
    return customer


@pytest.fixture
def ready():
    """The "ready for pickup" status, notified by e-mail and SMS."""
    status = RepairStatus.ordered()[-1]
    template = save_template(None, actor="test", name="Gotowa", kind="message", language="pl",
                             channels=["email", "sms"], subject="Naprawa {{ repair_number }} gotowa",
                             body="Dzień dobry {{ customer_first_name }}, {{ device }} czeka na odbiór.")
    db.session.add(StatusNotification(status_id=status.id, template_id=template.id, channels=["email", "sms"]))
    db.session.commit()
    return status


def notifications() -> list[Message]:
    return list(db.session.scalars(db.select(Message).where(Message.automatic.is_(True))))


def log_texts(repair) -> list[str]:
    return list(db.session.scalars(db.select(RepairEvent.text).where(RepairEvent.repair_id == repair.id,
                                                                     RepairEvent.kind == "notification")))


def test_a_status_change_on_the_card_sends_one_notification_into_the_repairs_thread(
        staff_client, mailbox, sms_account, smtp_server, twilio_server, repair, ready):
    earlier = compose(customer=repair.customer, channels=["email"], body="Przyjęliśmy telefon.", repair=repair)
    db.session.commit()
    response = staff_client.post(f"/repairs/{repair.id}/status", data={
        "status": ready.id, "csrf_token": csrf_token(staff_client, f"/repairs/{repair.id}")})
    assert response.status_code == 302

    [message] = notifications()
    assert message.thread_id == earlier.thread_id  # the repair's open thread, where replies come back
    assert message.body_text == "Dzień dobry Jan, iPhone 12 czeka na odbiór."
    assert message.subject == f"Naprawa {repair.number} gotowa"
    assert {d.channel for d in message.deliveries} == {"email", "sms"}

    assert dispatch_pass()["sent"] == 3  # the earlier message and the notification's two
    mails = [email.message_from_bytes(m.data, policy=email.policy.default) for m in smtp_server.wait_for(2)]
    notice = next(m for m in mails if "gotowa" in m["Subject"])
    assert notice["Auto-Submitted"] == "auto-generated"
    assert all(m["Auto-Submitted"] is None for m in mails if m is not notice)  # staff mail is not automatic
    assert [m["body"] for m in twilio_server.messages] == ["Dzień dobry Jan, iPhone 12 czeka na odbiór."]

    # Setting the same status again changes nothing and sends nothing.
    staff_client.post(f"/repairs/{repair.id}/status", data={
        "status": ready.id, "csrf_token": csrf_token(staff_client, f"/repairs/{repair.id}")})
    assert len(notifications()) == 1


def test_the_api_notifies_once_and_not_for_an_old_change_applied_late(api, mailbox, repair, ready):
    first, last = RepairStatus.ordered()[0], ready
    assert api.patch(f"/api/v1/repairs/{repair.id}", json={"status": last.name}).status_code == 200
    [message] = notifications()
    thread = db.session.get(Thread, message.thread_id)
    assert thread.repair_id == repair.id and thread.customer_id == repair.customer_id  # opened for it

    # Back and forth: the customer's last notification already says "ready", so no second one.
    api.patch(f"/api/v1/repairs/{repair.id}", json={"status": first.name})
    api.patch(f"/api/v1/repairs/{repair.id}", json={"status": last.name})
    assert len(notifications()) == 1

    api.patch(f"/api/v1/repairs/{repair.id}", json={"status": first.name})
    old = (utcnow() - timedelta(hours=30)).isoformat()
    response = api.patch(f"/api/v1/repairs/{repair.id}", json={"status": last.name, "status_changed_at": old})
    assert response.status_code == 200
    db.session.expire_all()
    assert len(notifications()) == 1
    assert repair.status_id == last.id and repair.status_changed_at < utcnow() - timedelta(hours=29)
    assert any("older than 24 hours" in text for text in log_texts(repair))

    naive = api.patch(f"/api/v1/repairs/{repair.id}", json={"status": first.name,
                                                            "status_changed_at": "2026-01-01T10:00:00"})
    assert naive.status_code == 422 and "status_changed_at" in naive.get_json()["fields"]


def test_a_channel_that_cannot_reach_the_customer_is_skipped_and_noted_on_the_repair(mailbox, repair, ready):
    # No SMS account is set up: the e-mail goes, the SMS is skipped with the reason on the repair's log.
    change_status(repair, ready, actor="test")
    db.session.commit()
    [message] = notifications()
    assert [d.channel for d in message.deliveries] == ["email"]
    texts = log_texts(repair)
    assert any("SMS skipped" in text and "The SMS account is not configured." in text for text in texts)
    assert any("queued" in text for text in texts)


def test_quiet_hours_hold_automatic_sms_but_not_staff_messages(shop, mailbox, sms_account, repair, ready):
    local = datetime.now(ZoneInfo(shop.timezone))
    shop.quiet_hours_start = (local - timedelta(hours=1)).strftime("%H:%M")
    shop.quiet_hours_end = (local + timedelta(hours=2)).replace(minute=0).strftime("%H:%M")
    db.session.commit()
    end = quiet_until(shop, utcnow())
    assert end is not None and end > utcnow() + timedelta(hours=1)

    change_status(repair, ready, actor="test")
    staff = compose(customer=repair.customer, channels=["sms"], body="Pytanie od serwisanta", repair=repair)
    db.session.commit()
    [notice] = notifications()
    deliveries = {d.channel: d for d in notice.deliveries}
    assert deliveries["sms"].next_attempt_at == end
    assert deliveries["email"].next_attempt_at <= utcnow()  # e-mail is not held
    assert staff.deliveries[0].next_attempt_at <= utcnow()  # people's messages are never held
    sent = dispatch_pass()
    assert sent["sent"] == 2
    assert db.session.get(Delivery, deliveries["sms"].id).status == "scheduled"


@pytest.mark.parametrize("start, end, at, expected", [
    ("20:00", "08:00", "2026-03-02T21:15", "2026-03-03T08:00"),
    ("20:00", "08:00", "2026-03-03T06:59", "2026-03-03T08:00"),
    ("20:00", "08:00", "2026-03-03T08:00", None),
    ("20:00", "08:00", "2026-03-03T12:00", None),
    ("13:00", "15:00", "2026-03-03T14:00", "2026-03-03T15:00"),
    ("00:00", "00:00", "2026-03-03T03:00", None),
    ("22:00", "07:00", "2026-03-28T23:30", "2026-03-29T07:00"),  # the night summer time starts
])
def test_quiet_hours_are_read_in_the_shops_time_zone(shop, start, end, at, expected):
    shop.quiet_hours_start, shop.quiet_hours_end = start, end
    zone = ZoneInfo("Europe/Warsaw")
    when = datetime.fromisoformat(at).replace(tzinfo=zone).astimezone(timezone.utc)
    result = quiet_until(shop, when)
    assert result == (datetime.fromisoformat(expected).replace(tzinfo=zone) if expected else None)


def test_a_broken_stored_template_notes_the_problem_and_the_status_still_changes(mailbox, repair, ready):
    template = db.session.get(MessageTemplate, db.session.scalars(db.select(StatusNotification)).one().template_id)
    template.body = "{% if device %}never closed"  # as if written to the database without the check at save
    db.session.commit()
    assert change_status(repair, ready, actor="test")
    db.session.commit()
    assert repair.status_id == ready.id and notifications() == []
    assert any("not sent" in text for text in log_texts(repair))


def test_deleting_a_template_stops_its_notification(mailbox, repair, ready):
    rule = db.session.scalars(db.select(StatusNotification)).one()
    delete_template(db.session.get(MessageTemplate, rule.template_id), actor="test")
    db.session.commit()
    db.session.expire_all()
    assert db.session.scalars(db.select(StatusNotification)).all() == []
    change_status(repair, ready, actor="test")
    db.session.commit()
    assert notifications() == []


def test_the_notification_and_the_repair_cards_messages_use_the_newest_open_thread_of_the_repair(
        staff_client, mailbox, repair, ready):
    older, newer, closed = (Thread(customer_id=repair.customer_id, repair_id=repair.id, subject=s, status=st)
                            for s, st in (("older", "open"), ("newer", "waiting_customer"), ("closed", "closed")))
    db.session.add_all([older, newer])
    db.session.flush()
    db.session.add(closed)  # the newest of all, but closed
    db.session.commit()
    change_status(repair, ready, actor="test")
    db.session.commit()
    assert notifications()[0].thread_id == newer.id

    response = staff_client.post("/compose", data={
        "csrf_token": csrf_token(staff_client, f"/compose?repair_id={repair.id}"), "customer_id": repair.customer_id,
        "repair_id": repair.id, "channels": ["email"], "body": "Z karty naprawy"}, content_type="multipart/form-data")
    assert response.headers["Location"].endswith(f"/threads/{newer.id}")


def test_a_companys_repair_notifies_its_contact_person(shop, mailbox, ready):
    company = create_customer(name="Serwis Biurowy", kind="company", nip="1234563218")  # no address of its own
    ewa = add_contact_person(company, name="Ewa Zielińska", email="ewa@serwis-biurowy.pl", actor="test")
    repair = create_repair(customer=company, device="HP LaserJet")
    repair.contact_id = ewa.id
    db.session.commit()

    change_status(repair, ready, actor="test")
    db.session.commit()

    [message] = notifications()
    assert [(d.channel, d.recipient) for d in message.deliveries] == [("email", "ewa@serwis-biurowy.pl")]
    assert any("Ewa Zielińska has no phone number." in text for text in log_texts(repair))
