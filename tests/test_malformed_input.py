"""Malformed input is answered like any other mistake: an id no row can have is a 404, a NUL character or a date
off the calendar is refused naming the field, an optional filter that cannot be read is left out. (The sweep in
test_input_sweep.py sends such values to every route; these are the stories behind it.)"""
from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from app.extensions import db
from app.models import Customer, Thread, utcnow
from app.request_input import LARGEST_ID, whole_number
from helpers import csrf_token
from panel_helpers import panel_csrf, panel_path
from route_helpers import TWILIO_TOKEN, set_up_sms


@pytest.fixture
def anna(app):
    customer = Customer(name="Anna Nowak", email="anna@example.com", panel_state="active")
    db.session.add(customer)
    db.session.commit()
    return customer


@pytest.fixture
def threads(anna):
    """Three threads, so that thread 3 exists and "٣" (Arabic-Indic three) could be mistaken for it."""
    rows = [Thread(customer_id=anna.id, subject=f"Thread {n}", last_activity_at=utcnow()) for n in range(3)]
    db.session.add_all(rows)
    db.session.commit()
    return rows


@pytest.mark.parametrize("number", ["99999999999999999999", str(2**31), str(2**63), "²", "٣", "0"])
def test_an_id_no_row_can_have_is_a_404_in_every_route(owner_client, threads, number):
    assert threads[2].id == 3
    assert owner_client.get(f"/threads/{number}").status_code == 404
    assert owner_client.get(f"/customers/{number}").status_code == 404
    token = csrf_token(owner_client, "/")
    assert owner_client.post(f"/threads/{number}/notes", data={"csrf_token": token, "body": "x"}).status_code == 404


def test_the_largest_id_a_column_holds_is_still_an_id(owner_client):
    assert owner_client.get(f"/threads/{LARGEST_ID}").status_code == 404  # routed, looked up, not found
    assert whole_number(str(LARGEST_ID)) == LARGEST_ID
    for text in (str(LARGEST_ID + 1), "٣", "²", " 7", "1_000", "-1", "", "7.0"):
        with pytest.raises(ValueError):
            whole_number(text)


def test_a_number_in_a_query_that_cannot_be_an_id_is_an_ignored_filter(owner_client, threads):
    for value in ("99999999999999999999", "²", "٣"):
        assert owner_client.get(f"/repairs/?status={value}&page={value}").status_code == 200
        assert owner_client.get(f"/threads/{threads[0].id}?before={value}&images={value}").status_code == 200


def test_a_nul_character_is_refused_naming_the_field(owner_client):
    response = owner_client.get("/customers/?q=Anna%00")
    assert response.status_code == 400
    assert "The field q contains a NUL character" in response.get_data(as_text=True)

    token = csrf_token(owner_client, "/customers/new")
    response = owner_client.post("/customers/new", data={"csrf_token": token, "name": "Jan\x00Kowalski"})
    assert response.status_code == 400
    assert "The field name contains a NUL character" in response.get_data(as_text=True)
    assert db.session.query(Customer).count() == 0


def test_the_api_refuses_a_nul_character_in_json_naming_the_field(api):
    response = api.post("/api/v1/customers", json={"name": "Jan\u0000Kowalski"})
    assert response.status_code == 400
    assert "name" in response.get_json()["error"]


def test_the_api_takes_ids_only_as_json_integers(api, anna):
    for value in (str(anna.id), True, 1.0, [anna.id]):
        response = api.post("/api/v1/repairs", json={"customer_id": value, "device": "Phone"})
        assert response.status_code == 422, value
        assert response.get_json()["fields"] == {"customer_id": "Must be a whole number (a JSON integer)."}
    for value in (2**31, 2**63, 10**20, 0, -1):
        response = api.post("/api/v1/messages", json={"customer_id": value, "channels": ["portal"], "body": "Hi"})
        assert response.status_code == 422, value
        assert response.get_json()["fields"] == {"customer_id": "No such id."}
    assert api.post("/api/v1/repairs", json={"customer_id": anna.id, "device": "Phone"}).status_code == 201


def test_the_api_refuses_times_and_dates_off_the_calendar(api, anna):
    for send_at in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        response = api.post("/api/v1/messages", json={"customer_id": anna.id, "channels": ["portal"], "body": "Hi",
                                                      "send_at": send_at})
        assert response.status_code == 422
        assert set(response.get_json()["fields"]) == {"send_at"}
    for day in ("9999-12-31", "0001-01-01"):
        response = api.post("/api/v1/repairs", json={"customer_id": anna.id, "device": "Phone", "pickup_date": day})
        assert response.status_code == 422
        assert set(response.get_json()["fields"]) == {"pickup_date"}


def test_list_filters_with_dates_off_the_calendar_are_named_not_a_crash(owner_client):
    for day in ("9999-12-31", "0001-01-01"):
        page = owner_client.get(f"/audit/?since={day}&until={day}")
        assert page.status_code == 200
        assert f"Not a date: {day}" in page.get_data(as_text=True)
        assert owner_client.get(f"/outbox/?from={day}&to={day}").status_code == 200
    page = owner_client.get("/audit/?user=99999999999999999999&target_id=²")
    assert page.status_code == 200
    assert "No such person." in page.get_data(as_text=True)


def test_a_text_sent_where_a_file_is_expected_is_ignored(owner_client):
    token = csrf_token(owner_client, "/settings/panel/")
    response = owner_client.post("/settings/panel/", data={"csrf_token": token, "logo": "not a file"})
    assert response.status_code < 500


def test_a_panel_sign_in_form_without_the_login_field_asks_for_it(client, anna):
    response = client.post(panel_path("/sign-in"), data={"csrf_token": panel_csrf(client, "/sign-in")})
    assert response.status_code == 200
    assert "Required." in response.get_data(as_text=True)


@pytest.mark.parametrize("path, fields", [
    ("/webhooks/twilio/sms", {"MessageSid": "SM" + "x" * 100, "From": "+48600100200", "Body": "Hi"}),
    ("/webhooks/twilio/sms", {"MessageSid": "SM" + "1" * 32, "From": "+4" + "8" * 400, "Body": "Hi"}),
    ("/webhooks/twilio/status", {"MessageSid": "SM" + "1" * 32, "MessageStatus": "x" * 40}),
    ("/webhooks/twilio/status", {"MessageSid": "SM" + "1" * 32, "MessageStatus": "failed", "ErrorCode": "3" * 40}),
])
def test_a_signed_twilio_call_with_a_field_no_twilio_value_has_is_refused(client, path, fields):
    set_up_sms()
    signature = RequestValidator(TWILIO_TOKEN).compute_signature("http://shop.example" + path, fields)
    response = client.post(path, data=fields, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 400


@pytest.mark.parametrize("body", ["{% autoescape false %}{{ customer_name }}{% endautoescape %}",
                                  "{% autoescape false %}", "{{ 7*7 }}", "{% for x in y %}{% endfor %}"])
def test_template_syntax_beyond_tags_is_refused_naming_the_field(owner_client, body):
    token = csrf_token(owner_client, "/settings/templates/new")
    preview = owner_client.post("/settings/templates/preview", data={"csrf_token": token, "body": body})
    assert preview.status_code == 200
    saved = owner_client.post("/settings/templates/new", data={"csrf_token": token, "name": "Ready", "body": body,
                                                                "channels": "email", "language": "en",
                                                                "kind": "message"})
    assert saved.status_code in (200, 422)
    assert "Line 1" in saved.get_data(as_text=True)
