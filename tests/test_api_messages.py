"""API: the shop's other systems write to customers over e-mail, SMS and the panel, and follow each delivery."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent, Customer, Delivery, Mailbox, Message, Thread, utcnow
from app.repairs import create_repair
from app.accounts.sms import configure_sms


@pytest.fixture
def channels_set_up(app):
    """A default mailbox and an SMS account, so e-mail and SMS can reach customers (nothing is dispatched)."""
    db.session.add(Mailbox(name="Serwis", email="serwis@shop.example", smtp_host="smtp.shop.example",
                           is_default=True))
    configure_sms("AC" + "1" * 32, "auth-token", from_number="+48500100200")
    db.session.commit()


@pytest.fixture
def anna(app):
    """A customer reachable on every channel once they are set up: e-mail, a Polish mobile, an active panel."""
    customer = Customer(name="Anna Nowak", email="anna@example.com", phone="+48600100200", panel_state="active")
    db.session.add(customer)
    db.session.commit()
    return customer


def message_count() -> int:
    return db.session.scalar(select(func.count(Message.id)))


def post(api, **body):
    return api.post("/api/v1/messages", json=body)


def test_requests_without_a_token_or_with_a_wrong_one_are_refused(client, anna):
    missing = client.post("/api/v1/messages", json={"customer_id": anna.id, "channels": ["portal"], "body": "Hi"})
    wrong = client.get("/api/v1/deliveries/1", headers={"Authorization": "Bearer ri_not-the-token"})

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.get_json() == {"error": "missing or invalid bearer token"}
    assert message_count() == 0


def test_a_system_writes_to_the_customer_panel_and_the_message_waits_out_the_undo_window(api, anna):
    before = utcnow()

    response = post(api, customer_id=anna.id, channels=["portal"], subject="Your phone",
                    body="Your phone is ready for pickup.")

    assert response.status_code == 201
    body = response.get_json()
    message = db.session.get(Message, body["id"])
    delivery = db.session.scalars(select(Delivery)).one()
    assert body == {"id": message.id, "thread_id": message.thread_id,
                    "deliveries": [{"id": delivery.id, "channel": "portal", "status": "scheduled"}]}
    assert (message.thread.customer_id, message.body_text, message.direction) == (
        anna.id, "Your phone is ready for pickup.", "out")
    # Nothing goes before the shop's undo window (30 s) has passed, as when staff send from the UI.
    assert before + timedelta(seconds=30) <= delivery.next_attempt_at <= utcnow() + timedelta(seconds=30)
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "message.send")).one()
    assert (audit.actor, audit.user_id, audit.target_id) == ("api:erp", None, message.id)
    assert response.headers["Location"].endswith(f"/api/v1/threads/{message.thread_id}")
    assert api.get(response.headers["Location"]).get_json()["messages"][0]["id"] == message.id


def test_a_message_about_a_repair_goes_by_email_and_sms_at_the_time_asked(api, anna, channels_set_up):
    repair = create_repair(customer=anna, device="iPhone 12")
    db.session.commit()
    when = (utcnow() + timedelta(days=2)).replace(microsecond=0)

    response = post(api, customer_id=anna.id, repair_id=repair.id, channels=["email", "sms"], body="Gotowe!",
                    cc=["Office@Example.com"], send_at=when.astimezone(timezone(timedelta(hours=2))).isoformat())

    assert response.status_code == 201, response.get_json()
    deliveries = {d.channel: d for d in db.session.scalars(select(Delivery))}
    assert [d["channel"] for d in response.get_json()["deliveries"]] == ["email", "sms"]
    assert (deliveries["email"].recipient, deliveries["email"].cc) == ("anna@example.com", ["office@example.com"])
    assert deliveries["sms"].recipient == "+48600100200"
    assert {d.next_attempt_at for d in deliveries.values()} == {when}
    thread = db.session.get(Thread, response.get_json()["thread_id"])
    assert thread.repair_id == repair.id


def test_a_channel_that_cannot_reach_the_customer_is_named_with_the_reason(api, channels_set_up):
    customer = Customer(name="Jan Kowalski", phone="+48221234567")  # no e-mail, and a Warsaw landline
    db.session.add(customer)
    db.session.commit()

    response = post(api, customer_id=customer.id, channels=["email", "sms"], body="Hello")

    assert response.status_code == 422
    fields = response.get_json()["fields"]
    assert fields["channels.email"] == "The customer has no e-mail address."
    assert "landline" in fields["channels.sms"]
    assert message_count() == 0


def test_an_unknown_customer_or_a_repair_of_another_customer_is_refused(api, anna):
    other = Customer(name="Ewa Lis")
    db.session.add(other)
    db.session.flush()
    repair = create_repair(customer=other, device="Laptop")
    db.session.commit()

    unknown = post(api, customer_id=9999, thread_id=12345, channels=["portal"], body="Hi")
    foreign = post(api, customer_id=anna.id, repair_id=repair.id, channels=["portal"], body="Hi")

    assert unknown.status_code == foreign.status_code == 422
    assert set(unknown.get_json()["fields"]) == {"customer_id", "thread_id"}
    assert list(foreign.get_json()["fields"]) == ["repair_id"]
    assert message_count() == 0


@pytest.mark.parametrize(("send_at", "says"), [
    ("2030-03-01T14:30:00", "time zone"),
    ("tomorrow at noon", "ISO 8601"),
    (1767225600, "ISO 8601"),
])
def test_a_sending_time_must_be_iso_8601_with_a_time_zone(api, anna, send_at, says):
    response = post(api, customer_id=anna.id, channels=["portal"], body="Hi", send_at=send_at)

    assert response.status_code == 422
    assert says in response.get_json()["fields"]["send_at"]
    assert message_count() == 0


def test_a_message_can_be_scheduled_at_most_14_days_ahead(api, anna):
    too_late = (utcnow() + timedelta(days=15)).isoformat().replace("+00:00", "Z")

    response = post(api, customer_id=anna.id, channels=["portal"], body="Hi", send_at=too_late)

    assert response.status_code == 422
    assert "14 days" in response.get_json()["fields"]["send_at"]


def test_wrong_types_and_unknown_fields_are_each_named(api, anna):
    wrong_types = post(api, customer_id=anna.id, channels="portal", body=42, cc="a@example.com", sms_plain="yes")
    unknown = post(api, customer_id=anna.id, channels=["portal"], body="Hi", sendAt="2030-01-01T00:00:00Z")
    missing = post(api, body="Hi")

    assert set(wrong_types.get_json()["fields"]) == {"channels", "body", "cc", "sms_plain"}
    assert unknown.get_json()["fields"] == {"sendAt": "unknown field"}  # never sent at once by a typo
    assert set(missing.get_json()["fields"]) == {"customer_id", "channels"}
    assert {wrong_types.status_code, unknown.status_code, missing.status_code} == {422}
    assert message_count() == 0


def test_a_delivery_reads_back_with_its_state_and_times(api, anna):
    created = post(api, customer_id=anna.id, channels=["portal"], body="Hi").get_json()
    delivery = db.session.get(Delivery, created["deliveries"][0]["id"])

    body = api.get(f"/api/v1/deliveries/{delivery.id}").get_json()

    assert body == {
        "id": delivery.id, "message_id": created["id"], "thread_id": created["thread_id"], "channel": "portal",
        "status": "scheduled", "uncertain": False, "attempts": 0, "error": None, "error_code": None,
        "provider_id": None, "provider": None, "recipient": str(anna.id), "queued_at": delivery.created_at.isoformat(),
        "next_attempt_at": delivery.next_attempt_at.isoformat(), "sent_at": None, "delivered_at": None,
    }
    assert datetime.fromisoformat(body["queued_at"]).utcoffset() == timedelta(0)


def test_an_unknown_delivery_is_404_in_json(api):
    response = api.get("/api/v1/deliveries/999")

    assert response.status_code == 404
    assert response.get_json() == {"error": "delivery not found"}
