"""Reminders: a repair that has stayed in a status for N opening days gets the reminder's template once, into its
thread; never after the status changed; SMS wait out quiet hours; unreachable channels are skipped with the
reason; the settings page previews who gets each reminder today; the API shows the reminders a repair had."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import IntegrityError

from app import jobs
from app.customers import create_customer
from app.extensions import db
from app.messaging.compose import compose
from app.messaging.notifications import quiet_until
from app.messaging.reminders import send_due_reminders
from app.messaging.templates import save_template
from app.models import (Message, RepairEvent, RepairStatus, SentReminder, Shop, StatusReminder, Thread, utcnow)
from app.repairs import change_status, create_repair
from helpers import csrf_token

WARSAW = ZoneInfo("Europe/Warsaw")
MOBILE = "+48600100200"
OPEN_WEEK = [["09:00", "17:00"]] * 5 + [None, None]


def at(text: str) -> datetime:
    """A moment given in the shop's time (Warsaw)."""
    return datetime.fromisoformat(text).replace(tzinfo=WARSAW)


@pytest.fixture
def shop(app):
    shop = Shop.current()
    shop.undo_seconds = 0
    shop.quiet_hours_start = shop.quiet_hours_end = "00:00"  # no quiet hours unless a test sets them
    shop.opening_week = OPEN_WEEK
    shop.timezone = "Europe/Warsaw"
    db.session.commit()
    return shop


@pytest.fixture
def customer(shop):
    customer = create_customer(name="Jan Kowalski", email="jan@example.com", phone=MOBILE)
    db.session.commit()
    return customer


@pytest.fixture
def repair(customer):
    repair = create_repair(customer=customer, device="iPhone 12", description="Pęknięty ekran")
    db.session.commit()
    return repair


@pytest.fixture
def ready():
    return RepairStatus.ordered()[-1]


@pytest.fixture
def template():
    template = save_template(None, actor="test", name="Przypomnienie", kind="message", language="pl",
                             channels=["email", "sms"], subject="{{ repair_number }} czeka",
                             body="Dzień dobry {{ customer_first_name }}, {{ device }} wciąż czeka na odbiór.",
                             sms_body="{{ device }} czeka na odbior.")
    db.session.commit()
    return template


def add_reminder(status, template, days=3, channels=("email",)) -> StatusReminder:
    reminder = StatusReminder(status_id=status.id, days=days, template_id=template.id, channels=list(channels))
    db.session.add(reminder)
    db.session.commit()
    return reminder


def in_status_since(repair, status, when: datetime) -> None:
    """Put the repair in `status` as if it had entered it at `when` (also a day after today's date)."""
    change_status(repair, status, actor="test")
    repair.status_changed_at = when
    db.session.commit()


def reminder_messages() -> list[Message]:
    return [m for m in db.session.scalars(db.select(Message).where(Message.automatic.is_(True)).order_by(Message.id))
            if (m.meta or {}).get("reminder_id")]


def log_texts(repair) -> list[str]:
    return list(db.session.scalars(db.select(RepairEvent.text).where(RepairEvent.repair_id == repair.id,
                                                                     RepairEvent.kind == "notification")))


def test_a_reminder_is_due_after_n_opening_days_not_counting_weekends_and_holidays(mailbox, repair, ready, template):
    add_reminder(ready, template, days=3)
    # Tuesday 22 December; Christmas Eve, both days of Christmas and the weekend are not opening days:
    # the three days are Wednesday 23, Monday 28 and Tuesday 29.
    in_status_since(repair, ready, at("2026-12-22T10:00"))
    assert send_due_reminders(at("2026-12-28T16:00")) == {"sent": 0, "skipped": 0}  # 6 calendar days, 2 open
    assert send_due_reminders(at("2026-12-29T09:59")) == {"sent": 0, "skipped": 0}
    assert send_due_reminders(at("2026-12-29T10:01")) == {"sent": 1, "skipped": 0}

    [message] = reminder_messages()
    thread = db.session.get(Thread, message.thread_id)
    assert thread.repair_id == repair.id  # into the repair's thread, where the reply comes back
    assert message.body_text == "Dzień dobry Jan, iPhone 12 wciąż czeka na odbiór."
    assert [d.channel for d in message.deliveries] == ["email"]
    assert any("Przypomnienie" in text and "queued" in text for text in log_texts(repair))


def test_a_reminder_goes_once_even_when_the_job_runs_twice(mailbox, repair, ready, template):
    add_reminder(ready, template, days=3)
    in_status_since(repair, ready, at("2026-12-01T10:00"))
    assert send_due_reminders(at("2026-12-10T12:00"))["sent"] == 1
    assert send_due_reminders(at("2026-12-10T12:00"))["sent"] == 0
    assert send_due_reminders(at("2026-12-17T12:00"))["sent"] == 0
    assert len(reminder_messages()) == 1


def test_the_scheduler_sends_a_due_reminder_once_across_restarts(app, mailbox, repair, ready, template):
    add_reminder(ready, template, days=3)
    in_status_since(repair, ready, utcnow() - timedelta(days=30))
    for _restart in range(2):  # a new process builds its scheduler afresh and runs the job again
        [job] = [job for job in jobs.build_scheduler(app).get_jobs() if job.id == "send_due_reminders"]
        job.func()
    assert len(reminder_messages()) == 1


def test_the_database_refuses_a_second_go_of_one_reminder_for_one_repair(repair, ready, template):
    reminder = add_reminder(ready, template)
    db.session.add(SentReminder(reminder_id=reminder.id, repair_id=repair.id, status_since=utcnow()))
    db.session.commit()
    db.session.add(SentReminder(reminder_id=reminder.id, repair_id=repair.id, status_since=utcnow()))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_two_passes_side_by_side_send_each_reminder_once(app, mailbox, customer, ready, template):
    add_reminder(ready, template, days=3)
    repairs = [create_repair(customer=customer, device=f"Telefon {n}") for n in range(6)]
    db.session.commit()
    for repair in repairs:
        in_status_since(repair, ready, at("2026-12-01T10:00"))
    start = threading.Barrier(2)
    results, errors = [], []

    def run():
        with app.app_context():
            try:
                start.wait(timeout=30)
                results.append(send_due_reminders(at("2026-12-10T12:00")))
            except Exception as exc:  # shown by the assertion below
                errors.append(exc)
            finally:
                db.session.remove()

    passes = [threading.Thread(target=run) for _ in range(2)]
    for thread in passes:
        thread.start()
    for thread in passes:
        thread.join(timeout=120)
    assert errors == []
    assert sum(result["sent"] for result in results) == len(repairs)
    db.session.expire_all()
    assert len(reminder_messages()) == len(repairs)
    assert db.session.scalar(db.select(db.func.count(SentReminder.id))) == len(repairs)


def test_no_reminder_after_the_status_changed(mailbox, repair, ready, template):
    add_reminder(ready, template, days=3)
    first = RepairStatus.ordered()[0]
    in_status_since(repair, ready, at("2026-12-01T10:00"))
    in_status_since(repair, first, at("2026-12-03T10:00"))
    assert send_due_reminders(at("2026-12-10T12:00"))["sent"] == 0
    # Back in the status: the days count from the last change to it.
    in_status_since(repair, ready, at("2026-12-09T10:00"))
    assert send_due_reminders(at("2026-12-10T12:00"))["sent"] == 0
    assert send_due_reminders(at("2026-12-14T12:00"))["sent"] == 1
    assert reminder_messages()[0].meta["status_id"] == ready.id


def test_quiet_hours_hold_a_reminders_sms(shop, mailbox, sms_account, repair, ready, template):
    add_reminder(ready, template, days=3, channels=("email", "sms"))
    local = datetime.now(WARSAW)
    shop.quiet_hours_start = (local - timedelta(hours=1)).strftime("%H:%M")
    shop.quiet_hours_end = (local + timedelta(hours=2)).replace(minute=0).strftime("%H:%M")
    db.session.commit()
    end = quiet_until(shop, utcnow())
    in_status_since(repair, ready, utcnow() - timedelta(days=30))
    assert send_due_reminders()["sent"] == 1
    [message] = reminder_messages()
    deliveries = {d.channel: d for d in message.deliveries}
    assert deliveries["sms"].next_attempt_at == end
    assert deliveries["email"].next_attempt_at <= utcnow()
    assert message.meta["texts"]["sms"] == "iPhone 12 czeka na odbior."  # the template's own SMS text


def test_a_channel_that_cannot_reach_the_customer_is_skipped_with_the_reason(mailbox, repair, ready, template):
    # No SMS account is set up: the e-mail goes, the SMS is skipped and the repair's log says why.
    add_reminder(ready, template, days=3, channels=("email", "sms"))
    in_status_since(repair, ready, at("2026-12-01T10:00"))
    assert send_due_reminders(at("2026-12-10T12:00"))["sent"] == 1
    assert [d.channel for d in reminder_messages()[0].deliveries] == ["email"]
    assert any("SMS skipped" in text for text in log_texts(repair))


def test_a_reminder_no_channel_can_deliver_is_skipped_once_with_the_reason(shop, ready, template):
    add_reminder(ready, template, days=3, channels=("sms",))
    customer = create_customer(name="Anna Nowak", email="anna@example.com")  # no phone
    repair = create_repair(customer=customer, device="Laptop")
    db.session.commit()
    in_status_since(repair, ready, at("2026-12-01T10:00"))
    assert send_due_reminders(at("2026-12-10T12:00")) == {"sent": 0, "skipped": 1}
    assert send_due_reminders(at("2026-12-11T12:00")) == {"sent": 0, "skipped": 0}
    [sent] = db.session.scalars(db.select(SentReminder)).all()
    assert sent.outcome == "skipped" and sent.reason and sent.message_id is None
    assert reminder_messages() == []
    assert any("SMS skipped" in text for text in log_texts(repair))


def test_a_repair_due_for_two_reminders_at_once_gets_the_later_only(mailbox, repair, ready, template):
    add_reminder(ready, template, days=3)
    add_reminder(ready, template, days=7)
    in_status_since(repair, ready, at("2026-11-02T10:00"))
    assert send_due_reminders(at("2026-12-10T12:00")) == {"sent": 1, "skipped": 1}
    [message] = reminder_messages()
    assert db.session.get(StatusReminder, message.meta["reminder_id"]).days == 7


def test_the_settings_page_adds_a_reminder_and_previews_who_gets_it_today(owner_client, mailbox, repair, ready,
                                                                          template):
    in_status_since(repair, ready, utcnow() - timedelta(days=30))
    other = create_repair(customer=repair.customer, device="Laptop")  # still in the first status
    db.session.commit()
    page = "/settings/notifications/reminders"
    response = owner_client.post(page, data={
        "status_id": ready.id, "days": "7", "template_id": template.id, "channels": ["email", "sms"],
        "csrf_token": csrf_token(owner_client, page)})
    assert response.status_code == 302
    [reminder] = db.session.scalars(db.select(StatusReminder)).all()
    assert (reminder.status_id, reminder.days, reminder.channels) == (ready.id, 7, ["email", "sms"])

    html = owner_client.get(page).get_data(as_text=True)
    assert repair.number in html and other.number not in html
    assert "Jan Kowalski" in html
    assert "SMS skipped" in html  # no SMS account: the preview says so

    again = owner_client.post(page, data={
        "status_id": ready.id, "days": "7", "template_id": template.id, "channels": ["email"],
        "csrf_token": csrf_token(owner_client, page)})
    assert again.status_code == 422  # one reminder per status and number of days
    bad = owner_client.post(page, data={"status_id": "x", "days": "0", "template_id": "999999", "csrf_token":
                                        csrf_token(owner_client, page)})
    assert bad.status_code == 422

    owner_client.post(f"/settings/notifications/reminders/{reminder.id}/switch",
                      data={"enabled": "0", "csrf_token": csrf_token(owner_client, page)})
    db.session.expire_all()
    assert reminder.enabled is False
    assert repair.number not in owner_client.get(page).get_data(as_text=True)
    assert send_due_reminders()["sent"] == 0
    owner_client.post(f"/settings/notifications/reminders/{reminder.id}/delete",
                      data={"csrf_token": csrf_token(owner_client, page)})
    assert db.session.scalars(db.select(StatusReminder)).all() == []


def test_reminder_settings_are_for_owners_only(staff_client, ready, template):
    reminder = add_reminder(ready, template)
    assert staff_client.get("/settings/notifications/reminders").status_code == 403
    token = csrf_token(staff_client, "/")
    assert staff_client.post("/settings/notifications/reminders", data={
        "status_id": ready.id, "days": "5", "template_id": template.id, "channels": ["email"],
        "csrf_token": token}).status_code == 403
    assert staff_client.post(f"/settings/notifications/reminders/{reminder.id}/delete",
                             data={"csrf_token": token}).status_code == 403
    assert db.session.scalar(db.select(db.func.count(StatusReminder.id))) == 1


def test_the_api_shows_the_reminders_a_repair_had(api, mailbox, repair, ready, template):
    reminder = add_reminder(ready, template, days=3)
    assert api.get(f"/api/v1/repairs/{repair.id}").get_json()["reminders"] == []
    in_status_since(repair, ready, at("2026-12-01T10:00"))
    send_due_reminders(at("2026-12-10T12:00"))
    [shown] = api.get(f"/api/v1/repairs/{repair.id}").get_json()["reminders"]
    [message] = reminder_messages()
    assert shown["reminder_id"] == reminder.id and shown["days"] == 3 and shown["status_id"] == ready.id
    assert shown["template"] == "Przypomnienie" and shown["outcome"] == "sent" and shown["reason"] is None
    assert shown["message_id"] == message.id
    assert datetime.fromisoformat(shown["status_since"]) == at("2026-12-01T10:00")


def test_the_repair_card_shows_the_reminders_it_had_with_the_message_or_the_reason(owner_client, mailbox, repair,
                                                                                   ready, template):
    add_reminder(ready, template, days=3)
    add_reminder(ready, template, days=7)
    in_status_since(repair, ready, at("2026-11-02T10:00"))
    send_due_reminders(at("2026-12-10T12:00"))  # the 7-day one goes, the 3-day one is passed over
    [message] = reminder_messages()

    page = owner_client.get(f"/repairs/{repair.id}").get_data(as_text=True)
    card = page[page.index('id="repair-reminders"'):]
    card = card[:card.index("</section>")]
    assert "Przypomnienie" in card and "after 7 days" in card and "after 3 days" in card
    assert f'/threads/{message.thread_id}#message-{message.id}"' in card
    assert "Reminder sent" in card and "Reminder skipped" in card
    assert "A later reminder of the same status went instead." in card


def test_a_repair_without_reminders_shows_no_reminders_card(owner_client, repair):
    assert 'id="repair-reminders"' not in owner_client.get(f"/repairs/{repair.id}").get_data(as_text=True)
