"""API: templates with each channel's own text. A system lists the shop's templates (SMS and panel texts
included) and sends one with POST /messages {template_id}: e-mail carries the main text, SMS and the panel their
own texts, and the thread's JSON shows what each channel carried."""
from __future__ import annotations

import email
import email.policy

import pytest

from app.customers import create_customer
from app.extensions import db
from app.messaging.templates import save_template
from app.models import Message, MessageTemplate, Shop
from app.outbox import dispatch_pass
from app.repairs import create_repair

MAIN = "Dzień dobry {{ customer_first_name }}, {{ device }} czeka na odbiór."
SMS = "{{ device }} gotowy. Serwis"
PANEL = "**{{ customer_first_name }}**, naprawa {{ repair_number }} gotowa."


@pytest.fixture
def shop(app):
    shop = Shop.current()
    shop.undo_seconds = 0
    shop.quiet_hours_start = shop.quiet_hours_end = "00:00"
    db.session.commit()
    return shop


@pytest.fixture
def jan(shop):
    customer = create_customer(name="Jan Kowalski", email="jan@example.com", phone="+48600100200")
    customer.panel_state = "active"
    db.session.commit()
    return customer


@pytest.fixture
def template(shop):
    template = save_template(None, actor="test", name="Gotowa", kind="message", language="pl",
                             channels=["email", "sms", "portal"], subject="Naprawa {{ repair_number }}", body=MAIN,
                             sms_body=SMS, panel_body=PANEL, sms_plain=True)
    db.session.commit()
    return template


def test_the_api_lists_templates_with_their_own_sms_and_panel_texts(api, template):
    plain = save_template(None, actor="test", name="Zwykła", kind="message", language="pl", channels=["email"],
                          subject="", body="Dziękujemy.")
    db.session.add(MessageTemplate(name="Stopka", kind="footer", body="Serwis"))
    db.session.commit()
    listed = api.get("/api/v1/templates").get_json()["templates"]
    assert [t["name"] for t in listed] == ["Gotowa", "Zwykła"]  # reply headers and footers are not sent alone
    assert listed[0]["texts"] == {"sms": SMS, "portal": PANEL} and listed[0]["sms_plain"] is True
    assert listed[0]["body"] == MAIN
    assert listed[1]["texts"] == {}
    assert api.get(f"/api/v1/templates/{plain.id}").get_json()["name"] == "Zwykła"
    footer = db.session.scalar(db.select(MessageTemplate.id).where(MessageTemplate.kind == "footer"))
    assert api.get(f"/api/v1/templates/{footer}").status_code == 404
    assert api.get("/api/v1/templates/999999").status_code == 404


def test_a_message_sent_with_a_template_carries_each_channels_own_text(
        api, mailbox, sms_account, smtp_server, twilio_server, jan, template):
    repair = create_repair(customer=jan, device="iPhone 12")
    db.session.commit()
    response = api.post("/api/v1/messages", json={"customer_id": jan.id, "repair_id": repair.id,
                                                  "channels": ["email", "sms", "portal"], "template_id": template.id})
    assert response.status_code == 201, response.get_json()
    message = db.session.get(Message, response.get_json()["id"])
    assert message.subject == f"Naprawa {repair.number}"
    assert message.body_text == "Dzień dobry Jan, iPhone 12 czeka na odbiór."
    assert message.meta["texts"] == {"sms": "iPhone 12 gotowy. Serwis",
                                     "portal": f"**Jan**, naprawa {repair.number} gotowa."}

    dispatch_pass()
    [mail] = [email.message_from_bytes(m.data, policy=email.policy.default) for m in smtp_server.wait_for(1)]
    assert "iPhone 12 czeka na odbi" in mail.get_body(("plain",)).get_content()
    assert [m["body"] for m in twilio_server.messages] == ["iPhone 12 gotowy. Serwis"]

    thread = api.get(f"/api/v1/threads/{message.thread_id}").get_json()
    [shown] = [m for m in thread["messages"] if m["id"] == message.id]
    assert shown["text"] == "Dzień dobry Jan, iPhone 12 czeka na odbiór."
    assert shown["texts"] == message.meta["texts"]


def test_the_callers_own_subject_text_and_channel_texts_win_over_the_templates(api, mailbox, jan, template):
    response = api.post("/api/v1/messages", json={
        "customer_id": jan.id, "channels": ["email", "sms", "portal"], "template_id": template.id,
        "body": "Inny tekst", "texts": {"sms": "Krótko"}, "sms_plain": False})
    assert response.status_code == 422  # no SMS account: the SMS channel cannot reach Jan
    assert "channels.sms" in response.get_json()["fields"]
    response = api.post("/api/v1/messages", json={
        "customer_id": jan.id, "channels": ["email", "portal"], "template_id": template.id,
        "body": "Inny tekst", "texts": {"portal": "Tylko w panelu"}})
    assert response.status_code == 201
    message = db.session.get(Message, response.get_json()["id"])
    assert message.body_text == "Inny tekst"
    assert message.subject == "Naprawa"  # the template's, filled in without a repair
    assert message.meta["texts"] == {"portal": "Tylko w panelu"}  # only the chosen channels' texts are kept


def test_channel_texts_without_a_template_and_refusals(api, mailbox, jan, template):
    response = api.post("/api/v1/messages", json={"customer_id": jan.id, "channels": ["email", "portal"],
                                                  "body": "Dzień dobry", "texts": {"portal": "Panel"}})
    assert response.status_code == 201
    assert db.session.get(Message, response.get_json()["id"]).meta["texts"] == {"portal": "Panel"}

    for texts in ({"email": "x"}, ["sms"], {"sms": 5}, "tekst"):
        bad = api.post("/api/v1/messages", json={"customer_id": jan.id, "channels": ["email"], "body": "x",
                                                 "texts": texts})
        assert bad.status_code == 422 and "texts" in bad.get_json()["fields"], texts
    footer = MessageTemplate(name="Stopka", kind="footer", body="Serwis")
    marketing = save_template(None, actor="test", name="Promocja", kind="message", language="pl",
                              channels=["email"], subject="Promocja", body="Rabat", marketing=True)
    db.session.add(footer)
    db.session.commit()
    for template_id in (footer.id, 999999, marketing.id):
        bad = api.post("/api/v1/messages", json={"customer_id": jan.id, "channels": ["email"],
                                                 "template_id": template_id})
        assert bad.status_code == 422 and "template_id" in bad.get_json()["fields"], template_id
    assert "marketing" in bad.get_json()["fields"]["template_id"]
