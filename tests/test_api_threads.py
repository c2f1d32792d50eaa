"""API: the shop's other systems read threads with their timelines, and the inbound items held back."""
from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import db
from app.messaging.compose import compose
from app.models import Attachment, Customer, InboundItem, Message, Thread, utcnow
from app.repairs import create_repair, create_ticket


@pytest.fixture
def anna(app):
    customer = Customer(name="Anna Nowak", email="anna@example.com", panel_state="active")
    db.session.add(customer)
    db.session.commit()
    return customer


@pytest.fixture
def ewa(app):
    customer = Customer(name="Ewa Lis", email="ewa@example.com")
    db.session.add(customer)
    db.session.commit()
    return customer


def make_thread(customer: Customer, subject: str, minutes_ago: int = 0, preview: str = "", **fields) -> Thread:
    thread = Thread(customer_id=customer.id, subject=subject, last_message_preview=preview,
                    last_activity_at=utcnow() - timedelta(minutes=minutes_ago), **fields)
    db.session.add(thread)
    db.session.commit()
    return thread


def listed(api, query: str = "") -> list[int]:
    response = api.get(f"/api/v1/threads{query}")
    assert response.status_code == 200, response.get_json()
    return [t["id"] for t in response.get_json()["threads"]]


def test_requests_without_a_token_or_with_a_wrong_one_are_refused(client):
    wrong = {"Authorization": "Bearer ri_not-the-token"}
    responses = [client.get("/api/v1/threads"), client.get("/api/v1/threads/1", headers=wrong),
                 client.get("/api/v1/held", headers=wrong)]

    assert [r.status_code for r in responses] == [401, 401, 401]


def test_threads_come_newest_activity_first_without_deleted_ones(api, anna, ewa):
    old = make_thread(anna, "Old", minutes_ago=60, preview="Thanks", unread=True)
    new = make_thread(ewa, "New", minutes_ago=1)
    make_thread(anna, "Deleted", deleted_at=utcnow())

    body = api.get("/api/v1/threads").get_json()

    assert [t["id"] for t in body["threads"]] == [new.id, old.id]
    assert body["threads"][1] == {
        "id": old.id, "subject": "Old", "status": "open", "customer_id": anna.id, "repair_id": None,
        "repair_number": None, "ticket_id": None, "ticket_number": None, "last_activity_at": old.last_activity_at.isoformat(), "unread": True, "preview": "Thanks",
    }
    assert (body["page"], body["pages"], body["total"]) == (1, 1, 2)


def test_threads_filter_by_customer_repair_and_ticket(api, anna, ewa):
    repair = create_repair(customer=anna, device="iPhone 12")
    ticket = create_ticket(customer=ewa, subject="Invoice")
    db.session.commit()
    about_repair = make_thread(anna, "Screen", repair_id=repair.id)
    general = make_thread(anna, "Question", minutes_ago=5)
    about_ticket = make_thread(ewa, "Invoice", ticket_id=ticket.id)

    assert listed(api, f"?customer_id={anna.id}") == [about_repair.id, general.id]
    assert listed(api, f"?repair_id={repair.id}") == [about_repair.id]
    assert listed(api, f"?ticket_id={ticket.id}") == [about_ticket.id]
    assert listed(api, f"?customer_id={ewa.id}&repair_id={repair.id}") == []


def test_q_is_the_inboxs_full_text_search(api, anna):
    by_subject = make_thread(anna, "Wymiana EKRANU", minutes_ago=1)
    by_message = make_thread(anna, "Pickup", minutes_ago=2)
    db.session.add(Message(thread_id=by_message.id, direction="in", body_text="Nowy ekran pasuje, wyświetlacz też"))
    db.session.commit()
    make_thread(anna, "Battery", preview="Charging fine")

    assert listed(api, "?q=ekran") == [by_subject.id, by_message.id]
    assert listed(api, "?q=wyswietlacz") == [by_message.id]  # Polish letters folded
    assert listed(api, "?q=%25") == []  # nothing searchable: no thread, and no error


def test_threads_come_50_a_page(api, anna):
    threads = [make_thread(anna, f"Thread {n}", minutes_ago=n) for n in range(51)]

    first = api.get("/api/v1/threads").get_json()
    second = api.get("/api/v1/threads?page=2").get_json()

    assert len(first["threads"]) == 50
    assert [t["id"] for t in second["threads"]] == [threads[-1].id]
    assert (second["page"], second["pages"], second["total"]) == (2, 2, 51)


def test_a_filter_that_is_not_a_whole_number_is_refused_rather_than_ignored(api, anna):
    make_thread(anna, "Anything")

    response = api.get("/api/v1/threads?customer_id=anna&page=0&repair_id=99999999999")

    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"customer_id", "page", "repair_id"}


def test_a_thread_reads_back_with_messages_notes_attachments_and_deliveries(api, anna, staff):
    thread = make_thread(anna, "Screen")
    start = utcnow() - timedelta(minutes=10)
    inbound = Message(thread_id=thread.id, kind="message", direction="in", channel="email",
                      sender="anna@example.com", subject="Screen", body_text="Is it ready?", created_at=start)
    inbound.attachments = [Attachment(filename="photo.jpg", content_type="image/jpeg", size=2048)]
    note = Message(thread_id=thread.id, kind="note", direction="internal", author_user_id=staff.id,
                   body_text="Part ordered.", visible_to_customer=False, created_at=start + timedelta(minutes=1))
    db.session.add_all([inbound, note])
    db.session.flush()
    reply = compose(customer=anna, channels=["portal"], body="Tomorrow.", author=staff, thread=thread)
    db.session.commit()

    body = api.get(f"/api/v1/threads/{thread.id}").get_json()

    assert (body["id"], body["subject"], body["customer_id"]) == (thread.id, "Screen", anna.id)
    first, second, third, taken = body["messages"]
    assert first == {
        "id": inbound.id, "kind": "message", "direction": "in", "channel": "email", "channels": [], "author": None,
        "sender": "anna@example.com", "subject": "Screen", "text": "Is it ready?", "texts": {},
        "created_at": start.isoformat(),
        "attachments": [{"id": inbound.attachments[0].id, "filename": "photo.jpg", "content_type": "image/jpeg",
                         "size": 2048}],
        "deliveries": [],
    }
    assert (second["id"], second["kind"], second["author"], second["text"]) == (
        note.id, "note", "Stefan Staff", "Part ordered.")
    assert (taken["kind"], taken["author"], taken["event"]) == (  # who replies to an unassigned thread takes it
        "event", "Stefan Staff", {"event": "assigned", "to": "Stefan Staff", "to_id": staff.id, "previous": None,
                                  "reply_id": reply.id})
    assert (third["id"], third["direction"], third["channel"], third["channels"]) == (reply.id, "out", None, ["portal"])
    assert third["deliveries"] == [{"id": reply.deliveries[0].id, "channel": "portal", "status": "scheduled"}]


def test_a_deleted_or_missing_thread_is_404_in_json(api, anna):
    deleted = make_thread(anna, "Gone", deleted_at=utcnow())

    for response in (api.get(f"/api/v1/threads/{deleted.id}"), api.get("/api/v1/threads/999")):
        assert response.status_code == 404
        assert response.get_json() == {"error": "thread not found"}


def test_held_lists_only_items_not_accepted_newest_first(api):
    now = utcnow()

    def item(status: str, sender: str, minutes_ago: int, reason: str | None = None) -> InboundItem:
        row = InboundItem(source="email", content_hash=sender, sender=sender, subject=f"From {sender}",
                          status=status, reason=reason, received_at=now - timedelta(minutes=minutes_ago))
        db.session.add(row)
        return row

    older = item("held", "stranger@example.com", 30, "Unknown sender")
    newer = item("held", "+48600999888", 5, "Unknown number")
    item("accepted", "anna@example.com", 1)
    db.session.commit()

    body = api.get("/api/v1/held").get_json()

    assert [h["id"] for h in body["held"]] == [newer.id, older.id]
    assert body["held"][1] == {"id": older.id, "source": "email", "sender": "stranger@example.com",
                               "subject": "From stranger@example.com", "reason": "Unknown sender",
                               "received_at": older.received_at.isoformat()}
