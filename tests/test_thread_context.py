"""Re-attaching a thread: to a repair or ticket of its customer, detaching it, moving it to another customer (from
the thread's header and through the API); each change an event in the timeline, audited, and the panel follows."""
from __future__ import annotations

import pytest
from panel_helpers import panel_customer, panel_path, publish, sign_in_customer
from sqlalchemy import select

from app.customers import create_customer
from app.extensions import db
from app.messaging.threads import open_thread
from app.models import AuditEvent, Message, Thread
from app.repairs import create_repair, create_ticket
from helpers import csrf_token, sign_in


@pytest.fixture
def jan(app):
    customer = create_customer(name="Jan Kowalski", email="jan@example.com")
    db.session.commit()
    return customer


@pytest.fixture
def ola(app):
    customer = create_customer(name="Ola Nowak", email="ola@example.com")
    db.session.commit()
    return customer


@pytest.fixture
def thread(jan):
    thread = open_thread(jan, subject="Pęknięty wyświetlacz")
    db.session.add(Message(thread_id=thread.id, direction="in", channel="email", sender="jan@example.com",
                           body_text="Czy telefon jest gotowy?", author_customer_id=jan.id))
    db.session.commit()
    return thread


def events(thread: Thread) -> list[dict]:
    return [m.meta for m in db.session.scalars(
        select(Message).where(Message.thread_id == thread.id, Message.kind == "event").order_by(Message.id))]


def post(client, path: str, **data):
    token = csrf_token(client, path.rsplit("/", 1)[0] if path.endswith("/context") else path)
    return client.post(path, data={"csrf_token": token, **data})


def reload(thread: Thread) -> Thread:
    db.session.expire_all()
    return db.session.get(Thread, thread.id)


# ---------------------------------------------------------------- the thread's header


def test_staff_attach_a_thread_to_a_repair_of_its_customer_and_the_timeline_says_so(staff_client, thread, jan):
    repair = create_repair(customer=jan, device="iPhone 12")
    db.session.commit()
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert f'<option value="{repair.id}"' in page and 'data-action="move"' in page

    response = post(staff_client, f"/threads/{thread.id}/context", repair_id=str(repair.id))
    assert response.status_code == 302
    assert reload(thread).repair_id == repair.id
    assert events(thread)[-1] == {"event": "repair", "to": repair.number, "to_id": repair.id, "previous": None}
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert f"attached the thread to {repair.number}" in page and "About repair" in page
    # the repair's Messages tab lists the thread now
    assert "Pęknięty wyświetlacz" in staff_client.get(f"/repairs/{repair.id}?tab=messages").get_data(as_text=True)
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "thread.context")).one()
    assert audit.details["changes"] == {"repair_id": [None, repair.id]}


def test_staff_detach_a_ticket_and_keep_the_repair(staff_client, thread, jan):
    repair = create_repair(customer=jan, device="iPhone 12")
    ticket = create_ticket(customer=jan, subject="Reklamacja")
    thread.repair_id, thread.ticket_id = repair.id, ticket.id
    db.session.commit()
    response = post(staff_client, f"/threads/{thread.id}/context", ticket_id="")
    assert response.status_code == 302
    thread = reload(thread)
    assert thread.ticket_id is None and thread.repair_id == repair.id
    assert events(thread)[-1] == {"event": "ticket", "to": None, "to_id": None, "previous": ticket.number}
    assert f"detached the thread from {ticket.number}" in staff_client.get(
        f"/threads/{thread.id}").get_data(as_text=True)


def test_a_repair_or_ticket_of_another_customer_is_refused_naming_it(staff_client, thread, ola):
    repair = create_repair(customer=ola, device="Samsung")
    ticket = create_ticket(customer=ola, subject="Pytanie")
    db.session.commit()
    response = post(staff_client, f"/threads/{thread.id}/context", repair_id=str(repair.id))
    assert response.status_code == 302
    assert "This repair belongs to another customer" in staff_client.get(
        f"/threads/{thread.id}").get_data(as_text=True)
    post(staff_client, f"/threads/{thread.id}/context", ticket_id=str(ticket.id))
    assert "This ticket belongs to another customer" in staff_client.get(
        f"/threads/{thread.id}").get_data(as_text=True)
    thread = reload(thread)
    assert thread.repair_id is None and thread.ticket_id is None and events(thread) == []


def test_context_changes_need_a_signed_in_user_and_a_csrf_token(client, staff, thread, jan, ola):
    repair = create_repair(customer=jan, device="iPhone 12")
    db.session.commit()
    anonymous = client.post(f"/threads/{thread.id}/context",
                            data={"repair_id": str(repair.id), "csrf_token": csrf_token(client)})
    assert anonymous.status_code == 302 and "/login" in anonymous.location
    sign_in(client, staff)
    assert client.post(f"/threads/{thread.id}/context", data={"repair_id": str(repair.id)}).status_code == 400
    assert client.post(f"/threads/{thread.id}/move", data={"customer_id": str(ola.id)}).status_code == 400
    assert reload(thread).repair_id is None and reload(thread).customer_id == jan.id
    assert post(client, f"/threads/{thread.id}/context", repair_id="99999999999").status_code == 404
    assert post(client, f"/threads/{thread.id}/context", repair_id="abc").status_code == 404
    assert client.get("/threads/999999/move").status_code == 404


def test_moving_a_thread_asks_first_then_moves_detaches_and_the_panels_follow(app, staff_client, staff):
    jan = panel_customer("Jan Kowalski", "jan@example.com")
    ola = panel_customer("Ola Nowak", "ola@example.com")
    repair = create_repair(customer=jan, device="iPhone 12")
    db.session.commit()
    message = publish(jan, "Telefon jest gotowy do odbioru.", repair=repair)
    thread = db.session.get(Thread, message.thread_id)
    assert thread.repair_id == repair.id

    jan_panel, ola_panel = app.test_client(), app.test_client()
    sign_in_customer(jan_panel, jan)
    sign_in_customer(ola_panel, ola)
    assert jan_panel.get(panel_path(f"/threads/{thread.id}")).status_code == 200
    assert ola_panel.get(panel_path(f"/threads/{thread.id}")).status_code == 404

    choose = staff_client.get(f"/threads/{thread.id}/move")
    assert choose.status_code == 200 and "data-customer-picker" in choose.get_data(as_text=True)
    confirm = staff_client.get(f"/threads/{thread.id}/move?customer_id={ola.id}").get_data(as_text=True)
    assert "Ola Nowak will see in their panel" in confirm
    assert "Jan Kowalski will no longer see this thread in their panel" in confirm
    assert "detached from the previous customer" in confirm
    assert reload(thread).customer_id == jan.id  # asking changes nothing

    response = post(staff_client, f"/threads/{thread.id}/move", customer_id=str(ola.id))
    assert response.status_code == 302 and response.location.endswith(f"/threads/{thread.id}")
    thread = reload(thread)
    assert (thread.customer_id, thread.repair_id) == (ola.id, None)
    assert [e["event"] for e in events(thread)][-2:] == ["customer", "repair"]
    assert events(thread)[-2] == {"event": "customer", "to_id": ola.id, "previous_id": jan.id}
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "moved the thread to another customer" in page and "Jan Kowalski" not in page.split("timeline")[-1]

    assert jan_panel.get(panel_path(f"/threads/{thread.id}")).status_code == 404
    assert "Telefon jest gotowy" not in jan_panel.get(panel_path("/")).get_data(as_text=True)
    assert ola_panel.get(panel_path(f"/threads/{thread.id}")).status_code == 200
    assert "Telefon jest gotowy do odbioru." in ola_panel.get(
        panel_path(f"/threads/{thread.id}")).get_data(as_text=True)


def test_a_thread_cannot_move_to_an_erased_customer(staff_client, owner, thread, ola):
    from app.privacy.erasure import erase_customer
    erase_customer(ola, actor=owner, confirmation="Ola Nowak")
    asked = staff_client.get(f"/threads/{thread.id}/move?customer_id={ola.id}").get_data(as_text=True)
    assert "data has been erased" in asked and "data-move-confirm" not in asked
    response = post(staff_client, f"/threads/{thread.id}/move", customer_id=str(ola.id))
    assert response.status_code == 422
    assert "data has been erased" in response.get_data(as_text=True)
    assert reload(thread).customer_id != ola.id


# ---------------------------------------------------------------- the API


def test_api_patch_attaches_detaches_and_moves_and_get_shows_the_context(api, thread, jan, ola):
    repair = create_repair(customer=jan, device="iPhone 12")
    ticket = create_ticket(customer=jan, subject="Reklamacja")
    other_ticket = create_ticket(customer=ola, subject="Pytanie")
    db.session.commit()
    response = api.patch(f"/api/v1/threads/{thread.id}", json={"repair_id": repair.id, "ticket_id": ticket.id})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["customer_id"], body["repair_id"], body["repair_number"], body["ticket_id"],
            body["ticket_number"]) == (jan.id, repair.id, repair.number, ticket.id, ticket.number)
    got = api.get(f"/api/v1/threads/{thread.id}").get_json()
    assert got["repair_number"] == repair.number and got["ticket_id"] == ticket.id
    assert [m["event"]["event"] for m in got["messages"] if m["kind"] == "event"] == ["repair", "ticket"]

    assert api.patch(f"/api/v1/threads/{thread.id}", json={"ticket_id": None}).get_json()["ticket_id"] is None
    moved = api.patch(f"/api/v1/threads/{thread.id}", json={"customer_id": ola.id, "ticket_id": other_ticket.id})
    assert moved.status_code == 200
    assert (moved.get_json()["customer_id"], moved.get_json()["repair_id"], moved.get_json()["ticket_id"]) == \
        (ola.id, None, other_ticket.id)
    audits = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "thread.context")
                                .order_by(AuditEvent.id)).all()
    assert len(audits) == 3 and audits[-1].actor == "api:erp"
    assert audits[-1].details["changes"]["customer_id"] == [jan.id, ola.id]


@pytest.mark.parametrize("body, field", [
    ({"repair_id": "1"}, "repair_id"), ({"ticket_id": True}, "ticket_id"), ({"customer_id": 1.5}, "customer_id"),
    ({"repair_id": 999999}, "repair_id"), ({"customer_id": 10**30}, "customer_id"), ({"ticket_id": 0}, "ticket_id"),
    ({"customer_id": None}, "customer_id"), ({"thread": 1}, "thread"),
])
def test_api_patch_refuses_what_is_not_an_existing_id_naming_the_field(api, thread, body, field):
    response = api.patch(f"/api/v1/threads/{thread.id}", json=body)
    assert response.status_code == 422
    assert list(response.get_json()["fields"]) == [field]


def test_api_patch_refuses_a_repair_or_ticket_of_another_customer(api, thread, jan, ola):
    repair = create_repair(customer=ola, device="Samsung")
    ticket = create_ticket(customer=ola, subject="Pytanie")
    own = create_repair(customer=jan, device="iPhone")
    db.session.commit()
    response = api.patch(f"/api/v1/threads/{thread.id}", json={"repair_id": repair.id, "ticket_id": ticket.id})
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"repair_id", "ticket_id"}
    # a move checks against the new customer
    response = api.patch(f"/api/v1/threads/{thread.id}", json={"customer_id": ola.id, "repair_id": own.id})
    assert response.status_code == 422 and list(response.get_json()["fields"]) == ["repair_id"]
    assert reload(thread).customer_id == jan.id
    assert api.patch("/api/v1/threads/999999", json={"repair_id": None}).status_code == 404
    assert api.patch(f"/api/v1/threads/{thread.id}", data="nope", content_type="application/json").status_code == 422
