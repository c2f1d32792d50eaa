"""API: the shop's other systems add customers and read them back, with a bearer token."""
from datetime import datetime

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import ApiToken, AuditEvent, ConsentEvent, Customer


@pytest.fixture
def token(app) -> str:
    _row, plain = ApiToken.issue("test")
    db.session.commit()
    return plain


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def customer_count() -> int:
    return db.session.scalar(select(func.count(Customer.id)))


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer ri_not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
    ids=["missing", "wrong", "not bearer"],
)
def test_a_request_without_a_valid_token_is_refused(client, headers):
    response = client.post("/api/v1/customers", json={"name": "Jan Kowalski"}, headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {"error": "missing or invalid bearer token"}
    assert customer_count() == 0


def test_a_revoked_token_is_refused(client, token):
    from app.models import utcnow

    db.session.scalars(select(ApiToken)).one().revoked_at = utcnow()
    db.session.commit()
    assert client.get("/api/v1/customers/1", headers=bearer(token)).status_code == 401


def test_a_system_adds_a_customer(client, token):
    response = client.post(
        "/api/v1/customers",
        json={"name": "Jan Kowalski", "email": "Jan@Example.com", "phone": "600 100 200",
              "sms_opt_out": True, "marketing_consent": True},
        headers=bearer(token),
    )

    assert response.status_code == 201
    body = response.get_json()
    customer = db.session.get(Customer, body["id"])
    assert customer is not None and customer.name == "Jan Kowalski"
    assert {key: value for key, value in body.items() if key not in ("id", "created_at")} == {
        "name": "Jan Kowalski", "email": "jan@example.com", "phone": "+48600100200",
        "sms_informational": False, "marketing_consent": True, "panel_state": "none",
        "language": None, "vocative": None, "kind": "person", "nip": None, "address": "", "contacts": [],
    }
    assert datetime.fromisoformat(body["created_at"]) == customer.created_at
    assert response.headers["Location"].endswith(f"/api/v1/customers/{customer.id}")


def test_a_misspelt_field_is_refused_rather_than_ignored(client, token):
    response = client.post("/api/v1/customers", json={"name": "Jan", "sms_optout": True}, headers=bearer(token))
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"sms_optout": "unknown field"}
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 0


def test_a_customer_added_by_api_has_its_consents_and_the_token_on_record(client, token):
    body = client.post("/api/v1/customers", json={"name": "Anna Nowak"}, headers=bearer(token)).get_json()

    consents = db.session.scalars(select(ConsentEvent).order_by(ConsentEvent.kind)).all()
    assert [(c.kind, c.value, c.source, c.user_id) for c in consents] == [
        ("marketing", False, "api", None), ("sms_informational", True, "api", None),
    ]
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.create")).one()
    assert (audit.actor, audit.target_id) == ("api:test", body["id"])


def test_bad_fields_are_named_in_a_422(client, token):
    response = client.post(
        "/api/v1/customers",
        json={"email": "jan@localhost", "phone": "123", "sms_opt_out": "yes", "marketing_consent": 1},
        headers=bearer(token),
    )

    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "validation failed"
    assert set(body["fields"]) == {"name", "email", "phone", "sms_opt_out", "marketing_consent"}
    assert customer_count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"name": 42}, "name"), ({"name": "Jan", "email": ["jan@example.com"]}, "email"),
     ({"name": "Jan", "phone": 600100200}, "phone")],
)
def test_fields_of_the_wrong_type_are_refused(client, token, payload, field):
    response = client.post("/api/v1/customers", json=payload, headers=bearer(token))
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {field}
    assert customer_count() == 0


def test_a_body_that_is_not_a_json_object_is_refused(client, token):
    response = client.post("/api/v1/customers", data="name=Jan", headers=bearer(token))
    assert response.status_code == 422
    assert "body" in response.get_json()["fields"]


def test_null_flags_mean_the_defaults(client, token):
    response = client.post("/api/v1/customers", json={"name": "Jan", "sms_opt_out": None, "marketing_consent": None},
                           headers=bearer(token))
    assert response.status_code == 201
    assert (response.get_json()["sms_informational"], response.get_json()["marketing_consent"]) == (True, False)


def test_a_system_reads_a_customer_back(client, token):
    created = client.post("/api/v1/customers", json={"name": "Jan Kowalski", "phone": "+44 20 7946 0958"},
                          headers=bearer(token)).get_json()

    response = client.get(f"/api/v1/customers/{created['id']}", headers=bearer(token))

    assert response.status_code == 200
    assert response.get_json() == created


def test_an_unknown_customer_is_a_json_404(client, token):
    response = client.get("/api/v1/customers/999", headers=bearer(token))
    assert response.status_code == 404
    assert response.get_json() == {"error": "customer not found"}
