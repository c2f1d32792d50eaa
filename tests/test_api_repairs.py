"""The shop's other systems open repairs and move them through the workflow over the HTTP API."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import ApiToken, AuditEvent, Customer, Repair, RepairEvent, RepairStatus
from app.repairs import create_repair

YEAR = datetime.now(ZoneInfo("Europe/Warsaw")).year


# Not the shared `customer`: phone only (no e-mail).
@pytest.fixture
def customer(app):
    customer = Customer(name="Piotr Zieliński", phone="+48600100200")
    db.session.add(customer)
    db.session.commit()
    return customer


@pytest.fixture
def api(client):
    """The client with a valid bearer token (issued to "erp")."""
    _, plain = ApiToken.issue("erp")
    db.session.commit()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {plain}"
    return client


def test_requests_without_a_token_or_with_a_wrong_one_are_refused(client, customer):
    ApiToken.issue("erp")
    db.session.commit()

    missing = client.post("/api/v1/repairs", json={"customer_id": customer.id, "device": "Phone"})
    wrong = client.get("/api/v1/repairs/1", headers={"Authorization": "Bearer ri_not-the-token"})

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert "bearer token" in missing.get_json()["error"]
    assert db.session.scalars(select(Repair)).all() == []


def test_a_system_opens_a_repair_and_gets_it_back_numbered(api, customer):
    response = api.post("/api/v1/repairs", json={"customer_id": customer.id, "device": "iPhone 12",
                                                 "description": "Does not charge"})

    assert response.status_code == 201
    body = response.get_json()
    first = RepairStatus.ordered()[0]
    assert body["number"] == f"R-{YEAR}-0001"
    assert {k: body[k] for k in ("customer_id", "device", "description", "status", "status_id")} == {
        "customer_id": customer.id, "device": "iPhone 12", "description": "Does not charge",
        "status": first.name, "status_id": first.id,
    }
    assert body["created_at"].startswith(str(YEAR))
    assert api.get(response.headers["Location"]).get_json() == body
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "repair.create")).one()
    assert (audit.actor, audit.details["source"]) == ("api:erp", "api")


def test_a_repair_can_start_in_a_status_given_by_name_or_id_and_keep_its_own_number(api, customer):
    by_name = api.post("/api/v1/repairs", json={"customer_id": customer.id, "device": "Laptop",
                                                "status": "Gotowa do odbioru", "number": "ERP-1001"}).get_json()
    second = RepairStatus.ordered()[1]
    by_id = api.post("/api/v1/repairs", json={"customer_id": customer.id, "device": "Tablet",
                                              "status": second.id}).get_json()

    assert (by_name["status"], by_name["number"]) == ("gotowa do odbioru", "ERP-1001")
    assert by_id["status_id"] == second.id


def test_bad_fields_are_refused_with_422_naming_each_of_them(api):
    response = api.post("/api/v1/repairs", json={"customer_id": 999, "device": "", "status": "lost in space",
                                                 "colour": "red"})

    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"colour"}  # an unknown field is named before anything else

    response = api.post("/api/v1/repairs", json={"customer_id": 999, "device": "", "status": "lost in space"})

    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"customer_id", "device", "status"}
    assert db.session.scalars(select(Repair)).all() == []


def test_a_missing_device_alone_is_named(api, customer):
    response = api.post("/api/v1/repairs", json={"customer_id": customer.id})

    assert response.status_code == 422
    assert list(response.get_json()["fields"]) == ["device"]


def test_a_number_already_used_is_refused(api, customer):
    create_repair(customer=customer, device="Phone", number="ERP-7")
    db.session.commit()

    response = api.post("/api/v1/repairs", json={"customer_id": customer.id, "device": "Phone", "number": "ERP-7"})

    assert response.status_code == 422
    assert "number" in response.get_json()["fields"]


def test_a_body_that_is_not_a_json_object_is_refused(api):
    response = api.post("/api/v1/repairs", data="device=Phone", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 422
    assert "body" in response.get_json()["fields"]


def test_a_status_change_by_name_is_logged_like_one_made_by_staff(api, customer):
    repair = create_repair(customer=customer, device="iPad")
    db.session.commit()

    response = api.patch(f"/api/v1/repairs/{repair.id}", json={"status": "W NAPRAWIE"})

    assert response.status_code == 200
    assert response.get_json()["status"] == "w naprawie"
    event = db.session.scalars(select(RepairEvent).where(RepairEvent.kind == "status")).one()
    assert (event.text, event.user_id) == ("przyjęta → w naprawie", None)
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "repair.status")).one()
    assert (audit.actor, audit.details["source"]) == ("api:erp", "api")


def test_a_patch_may_change_the_device_and_description_too(api, customer):
    repair = create_repair(customer=customer, device="iPad")
    db.session.commit()

    body = api.patch(f"/api/v1/repairs/{repair.id}", json={"device": "iPad Air", "description": "Bent"}).get_json()

    assert (body["device"], body["description"]) == ("iPad Air", "Bent")
    assert db.session.scalars(select(RepairEvent).where(RepairEvent.kind == "status")).all() == []


def test_a_patch_to_a_deactivated_status_changes_nothing(api, customer):
    repair = create_repair(customer=customer, device="iPad")
    RepairStatus.ordered()[3].active = False
    db.session.commit()

    response = api.patch(f"/api/v1/repairs/{repair.id}", json={"device": "iPad Pro", "status": "w naprawie"})

    assert response.status_code == 422
    assert list(response.get_json()["fields"]) == ["status"]
    db.session.expire_all()
    assert db.session.get(Repair, repair.id).device == "iPad"


def test_an_unknown_repair_is_404_in_json(api):
    for response in (api.get("/api/v1/repairs/999"), api.patch("/api/v1/repairs/999", json={"status": "diagnoza"})):
        assert response.status_code == 404
        assert response.get_json() == {"error": "repair not found"}
