"""Every shop setting is edited in Settings by the owner: saved, checked with the setting named, audited with its old
and new value; staff get 403, a post without CSRF token 400. Response times count the shop's opening hours."""
from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from panel_helpers import panel_csrf, panel_customer, panel_path, publish, sign_in_customer
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text

from app import web
from app.errors import ValidationFailed
from app.extensions import db
from app.messaging import inbox
from app.messaging.templates import tag_values
from app.models import AuditEvent, Customer, Message, Shop, Thread
from app.shop.settings import update_shop
from helpers import csrf_token

WARSAW = ZoneInfo("Europe/Warsaw")
MESSAGES = "/settings/messages"
HOURS = "/settings/opening-hours"
PANEL = "/settings/panel/"


def messaging_form(client, **changes) -> dict:
    shop = Shop.current()
    data = {"csrf_token": csrf_token(client, MESSAGES), "sms_countries": ", ".join(shop.sms_countries),
            "outbox_retention_days": shop.outbox_retention_days, "max_attempts": shop.max_attempts,
            "attachment_quota_mb": shop.attachment_quota_mb,
            **{f"response_{p}": hours for p, hours in shop.response_times.items()},
            **{f"bulk_{c}": rate for c, rate in shop.bulk_rates.items()}}
    data.update(changes)
    return {name: str(value) for name, value in data.items()}


def hours_form(client, week=None, **changes) -> dict:
    data = {"csrf_token": csrf_token(client, HOURS), "closed_days": "", "opening_hours": ""}
    for day, hours in enumerate(week or [None] * 7):
        data[f"open_{day}"], data[f"close_{day}"] = hours or ("", "")
    data.update(changes)
    return data


def last_audit(action: str = "settings.shop") -> AuditEvent:
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.id.desc())).first()


@pytest.mark.parametrize("path", [MESSAGES, HOURS, PANEL])
def test_staff_cannot_open_or_change_these_settings(staff_client, path):
    assert staff_client.get(path).status_code == 403
    token = csrf_token(staff_client, "/")
    assert staff_client.post(path, data={"csrf_token": token, "max_attempts": "3"}).status_code == 403
    assert Shop.current().max_attempts == 8


@pytest.mark.parametrize("path, data", [
    (MESSAGES, {"max_attempts": "3"}), (HOURS, {"open_0": "09:00", "close_0": "17:00"}),
    (PANEL, {"brand_colour": "#000000", "attachment_max_mb": "2"}),
])
def test_a_post_without_csrf_token_changes_nothing(owner_client, path, data):
    assert owner_client.post(path, data=data).status_code == 400
    shop = Shop.current()
    assert (shop.max_attempts, shop.opening_week, shop.panel_attachment_max_mb) == (8, None, 10)


def test_the_settings_overview_links_the_new_pages(owner_client):
    page = owner_client.get("/settings/").get_data(as_text=True)
    assert f'href="{HOURS}"' in page and f'href="{MESSAGES}"' in page


@pytest.mark.parametrize("field, posted, attribute, stored", [
    ("sms_countries", "pl, de ,CZ", "sms_countries", ["CZ", "DE", "PL"]),
    ("outbox_retention_days", "90", "outbox_retention_days", 90),
    ("max_attempts", "3", "max_attempts", 3),
    ("attachment_quota_mb", "5000", "attachment_quota_mb", 5000),
    ("response_urgent", "2", "response_times", {"low": 24, "normal": 8, "high": 4, "urgent": 2}),
    ("bulk_sms", "6", "bulk_rates", {"email": 60, "sms": 6, "portal": 60}),
])
def test_the_owner_saves_a_messaging_setting_and_the_change_is_audited(owner_client, owner, field, posted,
                                                                       attribute, stored):
    before = getattr(Shop.current(), attribute)
    response = owner_client.post(MESSAGES, data=messaging_form(owner_client, **{field: posted}))
    assert response.status_code == 302
    db.session.expire_all()
    assert getattr(Shop.current(), attribute) == stored
    audit = last_audit()
    assert audit.user_id == owner.id and audit.details["changed"] == [attribute]
    assert audit.details["changes"] == {attribute: [before, stored]}
    assert posted.split(",")[0].strip().upper() in owner_client.get(MESSAGES).get_data(as_text=True)
    log = owner_client.get("/audit/?action=settings.shop").get_data(as_text=True)
    assert f'<span class="muted">{attribute}:</span>' in log and " → " in log


@pytest.mark.parametrize("field, posted, named", [
    ("sms_countries", "PL, XX", "Countries for SMS: Not a country code: XX"),
    ("sms_countries", "", "Countries for SMS: Enter from 1 to 50"),
    ("outbox_retention_days", "0", "Days finished entries stay in the outbox: Enter a number of days from 1 to 365"),
    ("outbox_retention_days", "366", "from 1 to 365"),
    ("max_attempts", "21", "Attempts before a delivery fails: Enter a number of attempts from 1 to 20"),
    ("max_attempts", "", "Attempts before a delivery fails"),
    ("attachment_quota_mb", "5", "Space for received files (MB): Enter a number of megabytes from 10 to 1048576"),
    ("response_high", "0", "Response time (hours), High: Enter hours from 1 to 720"),
    ("response_low", "721", "Response time (hours), Low"),
    ("bulk_email", "601", "Bulk messages per minute, E-mail: Enter messages per minute from 1 to 600"),
])
def test_a_bad_messaging_setting_is_refused_with_the_setting_named(owner_client, field, posted, named):
    response = owner_client.post(MESSAGES, data=messaging_form(owner_client, **{field: posted}))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="{field}-error"' in page and named in page
    db.session.expire_all()
    shop = Shop.current()
    assert (shop.sms_countries, shop.outbox_retention_days, shop.max_attempts) == (["PL"], 30, 8)
    assert last_audit() is None


def test_the_domain_refuses_what_the_form_would_refuse(app):
    shop = Shop.current()
    with pytest.raises(ValidationFailed) as refused:
        update_shop(shop, max_attempts=0, response_times={"urgent": 1}, bulk_rates={"email": 0, "sms": 1, "portal": 1},
                    opening_week=[["18:00", "09:00"]] + [None] * 6, closed_days=["31.12.2026"],
                    panel_attachment_max_mb=26, outbox_retention_days=True)
    assert set(refused.value.fields) == {
        "max_attempts", "response_times.normal", "response_times.high", "response_times.low", "bulk_rates.email",
        "opening_week.0", "closed_days", "panel_attachment_max_mb", "outbox_retention_days"}
    assert refused.value.fields["opening_week.0"].startswith("Opening hours, Monday: ")


def test_the_owner_sets_opening_hours_and_closed_days(owner_client, owner):
    week = [("9:00", "17:00")] * 5 + [("10:00", "14:00"), None]
    response = owner_client.post(HOURS, data=hours_form(owner_client, week, closed_days="2026-12-31\n2026-12-28"))
    assert response.status_code == 302
    db.session.expire_all()
    shop = Shop.current()
    assert shop.opening_week == [["09:00", "17:00"]] * 5 + [["10:00", "14:00"], None]
    assert shop.closed_days == ["2026-12-28", "2026-12-31"]
    audit = last_audit()
    assert audit.user_id == owner.id and set(audit.details["changed"]) == {"opening_week", "closed_days"}
    assert audit.details["changes"]["closed_days"] == [[], ["2026-12-28", "2026-12-31"]]
    page = owner_client.get(HOURS).get_data(as_text=True)
    assert 'value="09:00"' in page and "2026-12-31" in page

    # The text customers read is made from the hours, in the shop's language, unless the owner writes one.
    assert shop.opening_hours_text == "Mon–Fri 9:00–17:00, Sat 10:00–14:00"  # the tests' shop speaks English
    update_shop(shop, locale="pl")
    assert shop.opening_hours_text == "pon.–pt. 9:00–17:00, sob. 10:00–14:00"
    db.session.commit()
    assert tag_values(shop, None, None, "pl")["opening_hours"] == "pon.–pt. 9:00–17:00, sob. 10:00–14:00"
    panel = owner_client.application.test_client()
    assert "pon.–pt. 9:00–17:00, sob. 10:00–14:00" in panel.get(panel_path("/sign-in")).get_data(as_text=True)
    owner_client.post(HOURS, data=hours_form(owner_client, week, opening_hours="Zapraszamy po umówieniu"))
    db.session.expire_all()
    assert Shop.current().opening_hours_text == "Zapraszamy po umówieniu"
    assert last_audit().details["changes"]["opening_hours"] == ["", "Zapraszamy po umówieniu"]


@pytest.mark.parametrize("changes, field, named", [
    ({"open_2": "17:00", "close_2": "09:00"}, "open_2", "Opening hours, Wednesday: Enter an opening time before"),
    ({"open_4": "9:00", "close_4": ""}, "open_4", "Opening hours, Friday:"),
    ({"open_0": "25:00", "close_0": "26:00"}, "open_0", "Opening hours, Monday:"),
    ({"closed_days": "jutro"}, "closed_days", "Closed days: Not a date: jutro"),
])
def test_bad_opening_hours_are_refused_with_the_day_named(owner_client, changes, field, named):
    response = owner_client.post(HOURS, data=hours_form(owner_client, **changes))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="{field}-error"' in page and named in page
    db.session.expire_all()
    assert Shop.current().opening_week is None and last_audit() is None


def test_the_owner_sets_the_largest_file_a_customer_may_send_in_the_panel(owner_client, owner):
    token = csrf_token(owner_client, PANEL)
    response = owner_client.post(PANEL, data={"csrf_token": token, "brand_colour": "#1f6feb",
                                              "allows_attachments": "y", "attachment_max_mb": "2"})
    assert response.status_code == 302
    db.session.expire_all()
    assert Shop.current().panel_attachment_max_mb == 2
    assert last_audit("settings.panel").details["changes"] == {"panel_attachment_max_mb": [10, 2]}

    response = owner_client.post(PANEL, data={"csrf_token": token, "brand_colour": "#1f6feb",
                                              "allows_attachments": "y", "attachment_max_mb": "26"})
    assert response.status_code == 422
    assert "Largest file from a customer (MB): Enter a number of megabytes from 1 to 25" in response.get_data(
        as_text=True)


def test_the_panel_refuses_a_file_over_the_shops_size(app, staff, mailbox):
    Shop.current().panel_attachment_max_mb = 1
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    message = publish(customer, "Gotowe", author=staff)
    client = app.test_client()
    sign_in_customer(client, customer)
    token = panel_csrf(client, f"/threads/{message.thread_id}")
    assert "up to 1 MB each" in client.get(panel_path(f"/threads/{message.thread_id}")).get_data(as_text=True)
    big = b"%PDF-1.4\n" + b"0" * (1024 * 1024 + 1)
    response = client.post(panel_path(f"/threads/{message.thread_id}/reply"), content_type="multipart/form-data",
                           data={"body": "Faktura", "csrf_token": token, "attachments": [(io.BytesIO(big), "f.pdf")]})
    assert response.status_code in (400, 422)
    assert "f.pdf is larger than 1 MB." in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Message.id)).where(Message.direction == "in")) == 0


# --- due times in opening hours ----------------------------------------------------------------


def at(*args) -> datetime:
    return datetime(*args, tzinfo=WARSAW).astimezone(UTC)


@pytest.fixture
def weekday_hours(app):
    update_shop(Shop.current(), opening_week=[["09:00", "17:00"]] * 5 + [None, None])
    db.session.commit()


def waiting_thread(received: datetime, priority: str = "normal") -> Thread:
    customer = Customer(name="Anna Nowak", email="anna@example.com")
    db.session.add(customer)
    db.session.flush()
    thread = Thread(customer_id=customer.id, subject="Ekran", status="waiting_us", priority=priority,
                    last_inbound_at=received, last_activity_at=received)
    db.session.add(thread)
    db.session.commit()
    return thread


def shown_at(monkeypatch, client, moment: datetime, query: str = "") -> str:
    """The inbox as it looks at `moment`."""
    monkeypatch.setattr(inbox, "utcnow", lambda: moment)  # the overdue filter and count
    monkeypatch.setattr(web, "utcnow", lambda: moment)  # the templates' now()
    return client.get("/" + query).get_data(as_text=True)


def test_mail_on_friday_evening_is_not_overdue_on_saturday_morning(weekday_hours, staff_client, monkeypatch):
    thread = waiting_thread(at(2026, 12, 4, 19, 0))  # Friday 19:00; normal priority: 8 opening hours
    assert thread.due_at == at(2026, 12, 7, 17, 0)  # Monday at closing time

    saturday = shown_at(monkeypatch, staff_client, at(2026, 12, 5, 10, 0))
    assert not re.search(rf'<tr id="thread-{thread.id}" class="[^"]*is-overdue', saturday)
    assert f'id="thread-{thread.id}"' not in shown_at(monkeypatch, staff_client, at(2026, 12, 5, 10, 0), "?overdue=1")
    tuesday = shown_at(monkeypatch, staff_client, at(2026, 12, 8, 10, 0))
    assert re.search(rf'<tr id="thread-{thread.id}" class="[^"]*is-overdue', tuesday)


def test_new_hours_or_response_times_move_the_waiting_threads_due_times(weekday_hours, owner_client):
    thread = waiting_thread(at(2026, 12, 4, 16, 0), priority="urgent")  # Friday 16:00, one opening hour
    assert thread.due_at == at(2026, 12, 4, 17, 0)
    owner_client.post(MESSAGES, data=messaging_form(owner_client, response_urgent="2"))
    db.session.expire_all()
    assert db.session.get(Thread, thread.id).due_at == at(2026, 12, 7, 10, 0)
    owner_client.post(HOURS, data=hours_form(owner_client, [("09:00", "17:00")] * 5 + [None, None],
                                             closed_days="2026-12-07"))
    db.session.expire_all()
    assert db.session.get(Thread, thread.id).due_at == at(2026, 12, 8, 10, 0)
    owner_client.post(HOURS, data=hours_form(owner_client))  # no hours: clock hours again
    db.session.expire_all()
    assert db.session.get(Thread, thread.id).due_at == at(2026, 12, 4, 18, 0)


def test_the_upgrade_keeps_the_shops_bulk_rate_on_every_channel(app):
    db.session.remove()
    downgrade(revision="0010")
    db.session.execute(text("UPDATE shop SET bulk_rate_per_second = 2"))
    db.session.commit()
    db.session.remove()

    upgrade()

    shop = Shop.current()
    assert shop.bulk_rates == {"email": 120, "sms": 120, "portal": 120}
    assert (shop.opening_week, shop.closed_days, shop.panel_attachment_max_mb) == (None, [], 10)
