"""Consents: staff and the shop's other systems change them, and every change is on record with source, who and why."""
from __future__ import annotations

import pytest
from helpers import csrf_token
from sqlalchemy import select

from app.extensions import db
from app.inbound.sms import IncomingSms, receive_sms
from app.models import AuditEvent, ConsentEvent, Customer

pytestmark = pytest.mark.usefixtures("app")


def changes(customer) -> list[ConsentEvent]:
    """The consent changes after the initial ones recorded with the customer."""
    return list(db.session.scalars(select(ConsentEvent).where(ConsentEvent.customer_id == customer.id)
                                   .order_by(ConsentEvent.id).offset(2)))


def test_staff_record_a_marketing_consent_with_a_note_and_the_card_shows_the_history(staff_client, staff, customer):
    path = f"/customers/{customer.id}?tab=consents"
    response = staff_client.post(f"/customers/{customer.id}/consents", data={
        "sms_informational": "y", "marketing_consent": "y", "consent_note": "Zgoda ustna przy odbiorze",
        "csrf_token": csrf_token(staff_client, path)})

    assert response.status_code == 302
    [event] = changes(customer)
    assert (event.kind, event.value, event.source, event.user_id, event.note) == (
        "marketing", True, "staff", staff.id, "Zgoda ustna przy odbiorze")
    assert db.session.get(Customer, customer.id).marketing_consent is True
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.update")).one()
    assert audit.details["fields"] == ["marketing_consent"] and audit.user_id == staff.id
    card = staff_client.get(path).get_data(as_text=True)
    assert "Zgoda ustna przy odbiorze" in card and "Stefan Staff" in card


def test_turning_informational_sms_off_is_recorded_once(staff_client, customer):
    path = f"/customers/{customer.id}?tab=consents"
    for _ in range(2):
        staff_client.post(f"/customers/{customer.id}/consents", data={"csrf_token": csrf_token(staff_client, path)})
    assert [(e.kind, e.value) for e in changes(customer)] == [("sms_informational", False)]


def test_an_overlong_note_is_refused_and_nothing_changes(staff_client, customer):
    path = f"/customers/{customer.id}?tab=consents"
    response = staff_client.post(f"/customers/{customer.id}/consents", data={
        "marketing_consent": "y", "sms_informational": "y", "consent_note": "x" * 501,
        "csrf_token": csrf_token(staff_client, path)})
    assert response.status_code == 422
    assert "at most 500 characters" in response.get_data(as_text=True).lower()
    db.session.expire_all()
    assert changes(customer) == [] and db.session.get(Customer, customer.id).marketing_consent is False


def test_changing_consents_needs_the_csrf_token(staff_client, customer):
    response = staff_client.post(f"/customers/{customer.id}/consents", data={"marketing_consent": "y"})
    assert response.status_code == 400
    assert changes(customer) == []


def test_the_api_records_consent_changes_with_the_source_api(api, customer):
    response = api.patch(f"/api/v1/customers/{customer.id}", json={
        "marketing_consent": True, "sms_opt_out": True, "consent_note": "Formularz w sklepie internetowym"})

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["marketing_consent"] is True and response.get_json()["sms_informational"] is False
    assert sorted((e.kind, e.value, e.source, e.user_id, e.note) for e in changes(customer)) == [
        ("marketing", True, "api", None, "Formularz w sklepie internetowym"),
        ("sms_informational", False, "api", None, "Formularz w sklepie internetowym")]
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.update")).one()
    assert audit.actor == "api:erp"


def test_the_api_refuses_a_consent_that_is_not_a_boolean_and_an_unknown_customer(api, customer):
    response = api.patch(f"/api/v1/customers/{customer.id}", json={"marketing_consent": "yes"})
    assert response.status_code == 422 and "marketing_consent" in response.get_json()["fields"]
    assert changes(customer) == []
    assert api.patch("/api/v1/customers/999", json={"marketing_consent": True}).status_code == 404


def test_the_api_needs_a_token_to_change_a_customer(client, customer):
    assert client.patch(f"/api/v1/customers/{customer.id}", json={"marketing_consent": True}).status_code == 401


def test_a_stop_reply_is_recorded_with_the_customers_own_word(customer):
    receive_sms(IncomingSms(sid="SM-stop", sender="+48600100200", to="+48500100200", body=" Nie! "))
    db.session.commit()
    [event] = changes(customer)
    assert (event.kind, event.value, event.source, event.note) == ("sms_informational", False, "sms_keyword", "Nie!")
