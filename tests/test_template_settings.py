"""Settings → Templates and Settings → Notifications over HTTP: owners only, CSRF, errors at the field, the
preview against a real repair with the SMS counter, and the template choice in the compose form."""
from __future__ import annotations

import io
import re

import pytest

from app.extensions import db
from app.messaging.templates import save_template
from app.models import Message, RepairStatus, Shop, StatusNotification, Thread
from app.models.templates import MessageTemplate
from app.repairs import create_repair
from helpers import csrf_token

MOBILE = "+48600100200"


# Not the shared `repair`: with a price estimate, which the templates fill in.
@pytest.fixture
def repair(customer):
    repair = create_repair(customer=customer, device="iPhone 12", description="Pęknięty wyświetlacz",
                           price_estimate="450")
    db.session.commit()
    return repair


def template_fields(**overrides) -> dict:
    return {"name": "Gotowa", "kind": "message", "language": "pl", "channels": ["email", "sms"],
            "subject": "Naprawa {{ repair_number }}", "body": "Dzień dobry {{ customer_first_name }}!", **overrides}


def test_staff_cannot_open_or_change_the_template_and_notification_settings(staff_client):
    assert staff_client.get("/settings/templates/").status_code == 403
    assert staff_client.get("/settings/notifications/").status_code == 403
    token = csrf_token(staff_client, "/")
    response = staff_client.post("/settings/templates/new", data={**template_fields(), "csrf_token": token})
    assert response.status_code == 403
    assert db.session.scalar(db.select(db.func.count(MessageTemplate.id))) == 0


def test_saving_without_the_csrf_token_is_refused(owner_client):
    assert owner_client.post("/settings/templates/new", data=template_fields()).status_code == 400
    assert owner_client.post("/settings/notifications/", data={}).status_code == 400
    assert db.session.scalar(db.select(db.func.count(MessageTemplate.id))) == 0


def test_an_owner_creates_edits_and_deletes_a_template_with_a_file(owner_client):
    page = owner_client.get("/settings/templates/new").get_data(as_text=True)
    assert 'data-tag="repair_number"' in page and 'data-tag="panel_link"' in page  # the tag picker
    data = {**template_fields(), "receipt": "y", "csrf_token": csrf_token(owner_client, "/settings/templates/new"),
            "attachments": [(io.BytesIO(b"%PDF-1.4\n% cennik\n"), "cennik.pdf")]}
    response = owner_client.post("/settings/templates/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 302
    template = db.session.scalars(db.select(MessageTemplate)).one()
    assert template.channels == ["email", "sms"] and template.subject == "Naprawa {{ repair_number }}"
    assert sorted(a.filename for a in template.attachments) == ["cennik.pdf", "receipt.pdf"]
    assert "Gotowa" in owner_client.get("/settings/templates/").get_data(as_text=True)

    file_id = next(a.id for a in template.attachments if a.kind == "file")
    edit = {**template_fields(name="Gotowa do odbioru"), "remove_attachment": str(file_id),
            "csrf_token": csrf_token(owner_client, f"/settings/templates/{template.id}")}
    assert owner_client.post(f"/settings/templates/{template.id}", data=edit).status_code == 302
    db.session.expire_all()
    assert template.name == "Gotowa do odbioru" and template.attachments == []  # the receipt box was left empty

    response = owner_client.post(f"/settings/templates/{template.id}/delete",
                                 data={"csrf_token": csrf_token(owner_client, "/settings/templates/")})
    assert response.status_code == 302
    assert db.session.scalar(db.select(db.func.count(MessageTemplate.id))) == 0


def test_a_hostile_template_is_shown_with_its_line_next_to_the_text(owner_client):
    data = {**template_fields(body="Dzień dobry\n{{ ''.__class__.__mro__ }}"),
            "csrf_token": csrf_token(owner_client, "/settings/templates/new")}
    response = owner_client.post("/settings/templates/new", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="field-body".*?class="error"[^>]*>Line 2:', html, re.S)
    assert db.session.scalar(db.select(db.func.count(MessageTemplate.id))) == 0


@pytest.mark.shop_locale("pl")
def test_the_preview_renders_a_real_repair_with_the_sms_counter(owner_client, repair):
    token = csrf_token(owner_client, "/settings/templates/new")
    data = {**template_fields(body="Dzień dobry {{ customer_first_name }}, koszt: {{ price_estimate }}"),
            "preview_repair_id": str(repair.id)}
    html = owner_client.post("/settings/templates/preview", data=data,
                             headers={"X-CSRFToken": token, "HX-Request": "true"}).get_data(as_text=True)
    assert "Dzień dobry Jan, koszt: 450,00\xa0zł" in html
    assert f"Naprawa {repair.number}" in html
    assert 'data-sms-encoding="UCS-2"' in html  # "ń" and "ł" make it UCS-2

    broken = owner_client.post("/settings/templates/preview", data={**data, "body": "{{ nope }}"},
                               headers={"X-CSRFToken": token}).get_data(as_text=True)
    assert "Wiersz 1:" in broken and "nope" in broken


def test_notification_settings_save_a_rule_per_status_and_the_quiet_hours(owner_client):
    template = save_template(None, actor="test", **template_fields())
    db.session.commit()
    ready = RepairStatus.ordered()[-1]
    data = {f"template_{ready.id}": str(template.id), f"channels_{ready.id}": ["sms", "portal"],
            "quiet_hours_start": "21:30", "quiet_hours_end": "07:00", "notify_max_age_hours": "12",
            "csrf_token": csrf_token(owner_client, "/settings/notifications/")}
    assert owner_client.post("/settings/notifications/", data=data).status_code == 302
    rule = db.session.scalars(db.select(StatusNotification)).one()
    assert (rule.status_id, rule.template_id, rule.channels) == (ready.id, template.id, ["sms", "portal"])
    shop = Shop.current()
    assert (shop.quiet_hours_start, shop.quiet_hours_end, shop.notify_max_age_hours) == ("21:30", "07:00", 12)

    bad = {**data, f"channels_{ready.id}": [], "quiet_hours_end": "25:99",
           "csrf_token": csrf_token(owner_client, "/settings/notifications/")}
    response = owner_client.post("/settings/notifications/", data=bad)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Choose at least one channel." in html and "Enter a time like 20:00." in html
    db.session.expire_all()
    assert db.session.scalars(db.select(StatusNotification)).one().channels == ["sms", "portal"]


def test_choosing_a_template_in_compose_fills_subject_and_body_for_the_repair(staff_client, mailbox, repair):
    template = save_template(None, actor="test", **template_fields(channels=["email"]))
    db.session.commit()
    token = csrf_token(staff_client, f"/compose?repair_id={repair.id}")
    html = staff_client.post("/compose/template", data={
        "template_id": str(template.id), "customer_id": str(repair.customer_id), "repair_id": str(repair.id)},
        headers={"X-CSRFToken": token, "HX-Request": "true"}).get_data(as_text=True)
    assert f'value="Naprawa {repair.number}"' in html and "Dzień dobry Jan!" in html


def test_a_marketing_template_is_refused_in_compose_with_the_reason(staff_client, mailbox, customer):
    template = save_template(None, actor="test", **template_fields(channels=["email"], marketing=True))
    db.session.commit()
    data = {"csrf_token": csrf_token(staff_client, f"/compose?customer_id={customer.id}"),
            "customer_id": customer.id, "channels": ["email"], "body": "Promocja", "template_id": template.id}
    response = staff_client.post("/compose", data=data, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "has not agreed to marketing messages" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Message.id))) == 0


def test_every_reply_starts_with_the_header_and_ends_with_the_footer(staff_client, customer):
    for kind, body in (("header", "Dzień dobry {{ customer_first_name }},"), ("footer", "Pozdrawiamy\n{{ shop_name }}")):
        save_template(None, actor="test", **template_fields(kind=kind, name=kind, body=body, channels=[],
                                                            language=Shop.current().locale))
    thread = Thread(customer_id=customer.id, subject="Pytanie")
    db.session.add(thread)
    db.session.commit()
    html = staff_client.get(f"/compose?thread_id={thread.id}").get_data(as_text=True)
    body = re.search(r'<textarea id="compose-body"[^>]*>(.*?)</textarea>', html, re.S).group(1)
    assert body.startswith("Dzień dobry Jan,") and body.rstrip().endswith(Shop.current().name)
