"""The owner shapes the repair workflow (statuses: names, colours, order, retiring) and the ticket queues."""
from __future__ import annotations

import pytest
from helpers import csrf_token
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Customer, Queue, Repair, RepairStatus
from app.repairs import create_repair, create_ticket

PAGE = "/settings/workflow/"


# Not the shared `customer`: phone only (no e-mail).
@pytest.fixture
def customer(app):
    customer = Customer(name="Ewa Wiśniewska", phone="+48600100200")
    db.session.add(customer)
    db.session.commit()
    return customer


def post(client, path: str, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, PAGE), **data})


def status_named(name: str) -> RepairStatus:
    return db.session.scalars(select(RepairStatus).where(RepairStatus.name == name)).one()


def offered_in_new_repair_form(client) -> str:
    page = client.get("/repairs/new").get_data(as_text=True)
    return page[page.index('name="status"'):page.index("</select>", page.index('name="status"'))]


def test_staff_may_not_change_the_workflow(staff_client):
    token = csrf_token(staff_client, "/repairs/")

    assert staff_client.get(PAGE).status_code == 403
    assert staff_client.post(PAGE + "statuses", data={"csrf_token": token, "name": "Mine", "colour": "red"}
                             ).status_code == 403
    assert db.session.scalar(select(RepairStatus).where(RepairStatus.name == "Mine")) is None


def test_the_owner_sees_every_status_with_how_many_repairs_use_it(owner_client, customer):
    create_repair(customer=customer, device="Phone")
    create_repair(customer=customer, device="Tablet")
    db.session.commit()

    page = owner_client.get(PAGE).get_data(as_text=True)

    assert "przyjęta" in page and "wydana" in page
    assert '<td class="num">2</td>' in page


def test_the_owner_adds_a_status_and_it_is_offered_for_new_repairs(owner_client):
    response = post(owner_client, PAGE + "statuses", name="Wycena", colour="amber")

    assert response.status_code == 302
    added = status_named("Wycena")
    assert (added.colour, added.active) == ("amber", True)
    assert RepairStatus.ordered()[-1] == added
    assert "Wycena" in offered_in_new_repair_form(owner_client)
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "status.create")).one()


def test_a_status_name_in_use_in_any_letter_case_is_refused(owner_client):
    response = post(owner_client, PAGE + "statuses", name="DIAGNOZA", colour="blue")

    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)
    assert len(RepairStatus.ordered(active_only=False)) == 6


def test_the_owner_renames_a_status_and_repairs_in_it_show_the_new_name(owner_client, customer):
    repair = create_repair(customer=customer, device="Phone", status="diagnoza")
    db.session.commit()
    status = status_named("diagnoza")

    response = post(owner_client, f"{PAGE}statuses/{status.id}", name="Diagnosis", colour="violet", is_final="")

    assert response.status_code == 302
    assert (status.name, status.colour) == ("Diagnosis", "violet")
    assert "Diagnosis" in owner_client.get(f"/repairs/{repair.id}").get_data(as_text=True)


def test_the_owner_moves_a_status_up(owner_client):
    before = [s.name for s in RepairStatus.ordered()]
    status = status_named("diagnoza")

    post(owner_client, f"{PAGE}statuses/{status.id}/move", direction="up")

    assert [s.name for s in RepairStatus.ordered()] == [before[1], before[0], *before[2:]]


def test_moving_the_first_status_up_changes_nothing(owner_client):
    before = [s.name for s in RepairStatus.ordered()]

    post(owner_client, f"{PAGE}statuses/{RepairStatus.ordered()[0].id}/move", direction="up")

    assert [s.name for s in RepairStatus.ordered()] == before


def test_a_deactivated_status_is_no_longer_offered_but_its_repairs_keep_it(owner_client, customer):
    repair = create_repair(customer=customer, device="Phone", status="czeka na części")
    db.session.commit()
    status = status_named("czeka na części")

    post(owner_client, f"{PAGE}statuses/{status.id}/deactivate")

    assert status.active is False
    assert "czeka na części" not in offered_in_new_repair_form(owner_client)
    assert db.session.get(Repair, repair.id).status_id == status.id

    post(owner_client, f"{PAGE}statuses/{status.id}/reactivate")

    assert "czeka na części" in offered_in_new_repair_form(owner_client)


def test_the_last_active_status_cannot_be_deactivated(owner_client):
    *others, last = RepairStatus.ordered()
    for status in others:
        status.active = False
    db.session.commit()

    response = post(owner_client, f"{PAGE}statuses/{last.id}/deactivate")

    assert last.active is True
    page = owner_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "at least one active status" in page


def test_the_owner_adds_renames_and_deletes_an_unused_queue(owner_client):
    post(owner_client, PAGE + "queues", name="Workshop")
    queue = db.session.scalars(select(Queue)).one()

    post(owner_client, f"{PAGE}queues/{queue.id}", name="Warranty")
    assert queue.name == "Warranty"

    post(owner_client, f"{PAGE}queues/{queue.id}/delete")
    assert db.session.scalars(select(Queue)).all() == []


def test_a_queue_with_tickets_cannot_be_deleted(owner_client, customer):
    queue = Queue(name="Front desk")
    db.session.add(queue)
    db.session.flush()
    create_ticket(customer=customer, subject="Question", queue=queue)
    db.session.commit()

    response = post(owner_client, f"{PAGE}queues/{queue.id}/delete")

    assert db.session.get(Queue, queue.id) is not None
    assert "still has tickets" in owner_client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_queue_cannot_take_a_name_another_queue_has(owner_client):
    db.session.add_all([Queue(name="Workshop"), Queue(name="Warranty")])
    db.session.commit()

    response = post(owner_client, PAGE + "queues", name="warranty")

    assert response.status_code == 422
    assert len(db.session.scalars(select(Queue)).all()) == 2


def test_in_the_browser_deleting_a_queue_asks_first_and_updates_the_page(owner_page, live_server):
    from playwright.sync_api import expect

    db.session.add(Queue(name="Workshop"))
    db.session.commit()
    owner_page.goto(live_server.url + PAGE)
    questions: list[str] = []

    def answer(dialog):
        questions.append(dialog.message)
        dialog.accept()

    owner_page.on("dialog", answer)
    owner_page.locator("#queues form[action$='/delete'] button").click()

    expect(owner_page.locator("#queues tbody tr")).to_have_count(0)
    expect(owner_page.locator(".flash-success")).to_contain_text("Workshop")
    assert questions and "Workshop" in questions[0]
    assert db.session.scalars(select(Queue)).all() == []
