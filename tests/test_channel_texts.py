"""A text per channel: a template's own SMS text and panel text, saved in the editor (with the SMS counter and the
length limit), previewed per channel, and carried by each channel of status notices, bulk messages and compose,
while the e-mail carries the main text."""
from __future__ import annotations

import email
import email.policy
import io
import json
import zipfile
from datetime import timedelta

import pytest

from app.extensions import db
from app.messaging.compose import compose
from app.messaging.templates import save_template
from app.models import Message, RepairStatus, Shop, StatusNotification, utcnow
from app.models.templates import MessageTemplate
from app.outbox import dispatch_pass
from app.repairs import change_status
from helpers import csrf_token
from panel_helpers import panel_path, sign_in_customer

MAIN = "Dzień dobry {{ customer_first_name }}, {{ device }} czeka na odbiór. Zapraszamy w godzinach otwarcia."
SMS = "{{ device }} gotowy do odbioru. Sklep"
PANEL = "**{{ customer_first_name }}**, naprawa {{ repair_number }} gotowa."


def fields(**overrides) -> dict:
    return {"name": "Gotowa", "kind": "message", "language": "pl", "channels": ["email", "sms", "portal"],
            "subject": "Naprawa {{ repair_number }}", "body": MAIN, "sms_body": SMS, "panel_body": PANEL,
            **overrides}


def post_template(client, path="/settings/templates/new", **overrides):
    return client.post(path, data={**fields(**overrides), "csrf_token": csrf_token(client, path)})


@pytest.fixture
def shop(app):
    shop = Shop.current()
    shop.undo_seconds = 0
    shop.quiet_hours_start = shop.quiet_hours_end = "00:00"
    db.session.commit()
    return shop


@pytest.fixture
def template(shop):
    template = save_template(None, actor="test", **fields())
    db.session.commit()
    return template


def test_an_owner_saves_and_clears_a_templates_sms_and_panel_texts(owner_client):
    page = owner_client.get("/settings/templates/new").get_data(as_text=True)
    assert 'name="sms_body"' in page and 'name="panel_body"' in page and 'id="template-sms-counter"' in page
    assert post_template(owner_client, sms_plain="y").status_code == 302
    template = db.session.scalars(db.select(MessageTemplate)).one()
    assert (template.sms_body, template.panel_body, template.sms_plain) == (SMS, PANEL, True)
    edit = owner_client.get(f"/settings/templates/{template.id}").get_data(as_text=True)
    assert "gotowy do odbioru. Sklep</textarea>" in edit and 'id="template-sms-plain" checked' in edit

    assert post_template(owner_client, f"/settings/templates/{template.id}", sms_body="  ", panel_body="")\
        .status_code == 302
    db.session.expire_all()
    assert (template.sms_body, template.panel_body, template.sms_plain) == ("", "", False)


def test_an_sms_text_too_long_or_with_an_unknown_tag_is_refused_at_its_field(owner_client):
    response = post_template(owner_client, sms_body="ą" * 1601)
    assert response.status_code == 422
    assert "An SMS can have at most 1600 characters." in response.get_data(as_text=True)
    assert post_template(owner_client, sms_body="a" * 1601, sms_plain="y").status_code == 422
    response = post_template(owner_client, panel_body="{{ nie_ma }}")
    assert response.status_code == 422 and "there is no tag nie_ma" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(MessageTemplate.id))) == 0
    # Without Polish letters the same length as written fits.
    assert post_template(owner_client, sms_body="ą" * 1600, sms_plain="y").status_code == 302


def test_the_editors_sms_counter_counts_the_sms_text(owner_client):
    token = csrf_token(owner_client, "/settings/templates/new")
    html = owner_client.post("/settings/templates/sms-count", data={"sms_body": "Zażółć", "csrf_token": token})\
        .get_data(as_text=True)
    assert 'data-sms-encoding="UCS-2"' in html
    html = owner_client.post("/settings/templates/sms-count", data={
        "sms_body": "Zażółć", "sms_plain": "y", "csrf_token": token}).get_data(as_text=True)
    assert 'data-sms-encoding="GSM-7"' in html


def test_the_preview_shows_each_channels_text(owner_client, repair):
    token = csrf_token(owner_client, "/settings/templates/new")
    html = owner_client.post("/settings/templates/preview", data={
        **fields(), "preview_repair_id": str(repair.id), "csrf_token": token}).get_data(as_text=True)
    email_part, sms_part, panel_part = (html.split(f'data-preview-channel="{c}"')[1].split("</section>")[0]
                                        for c in ("email", "sms", "portal"))
    assert "Dzień dobry Jan, iPhone 12 czeka na odbiór." in email_part and f"Naprawa {repair.number}" in email_part
    assert "iPhone 12 gotowy do odbioru. Sklep" in sms_part and "data-sms-parts" in sms_part
    assert f"**Jan**, naprawa {repair.number} gotowa." in panel_part

    html = owner_client.post("/settings/templates/preview", data={
        **fields(sms_body="", panel_body="", channels=["sms"]), "preview_repair_id": str(repair.id),
        "csrf_token": token}).get_data(as_text=True)
    assert 'data-preview-channel="email"' not in html and "the main text" in html
    assert "Dzień dobry Jan, iPhone 12 czeka na odbiór." in html


def test_a_status_notice_sends_the_sms_text_by_sms_and_the_main_text_by_email(
        staff_client, mailbox, sms_account, smtp_server, twilio_server, repair, template):
    status = RepairStatus.ordered()[-1]
    db.session.add(StatusNotification(status_id=status.id, template_id=template.id, channels=["email", "sms"]))
    db.session.commit()
    response = staff_client.post(f"/repairs/{repair.id}/status", data={
        "status": status.id, "csrf_token": csrf_token(staff_client, f"/repairs/{repair.id}")})
    assert response.status_code == 302
    assert dispatch_pass()["sent"] == 2
    [mail] = [email.message_from_bytes(m.data, policy=email.policy.default) for m in smtp_server.wait_for(1)]
    assert "iPhone 12 czeka na odbiór" in mail.get_body(("plain",)).get_content()
    assert "gotowy do odbioru" not in mail.get_body(("plain",)).get_content()
    assert [m["body"] for m in twilio_server.messages] == ["iPhone 12 gotowy do odbioru. Sklep"]


def test_a_template_without_an_sms_text_sends_its_main_text_by_sms(
        staff_client, mailbox, sms_account, twilio_server, repair, shop):
    template = save_template(None, actor="test", **fields(sms_body="", panel_body=""))
    status = RepairStatus.ordered()[-1]
    db.session.add(StatusNotification(status_id=status.id, template_id=template.id, channels=["sms"]))
    db.session.commit()
    staff_client.post(f"/repairs/{repair.id}/status", data={
        "status": status.id, "csrf_token": csrf_token(staff_client, f"/repairs/{repair.id}")})
    dispatch_pass()
    assert [m["body"] for m in twilio_server.messages] == [
        "Dzień dobry Jan, iPhone 12 czeka na odbiór. Zapraszamy w godzinach otwarcia."]


def test_compose_with_a_template_sends_its_sms_text_by_sms(
        staff_client, mailbox, sms_account, smtp_server, twilio_server, repair, template):
    token = csrf_token(staff_client, f"/compose?repair_id={repair.id}")
    filled = staff_client.post("/compose/template", data={
        "template_id": str(template.id), "customer_id": str(repair.customer_id), "repair_id": str(repair.id)},
        headers={"X-CSRFToken": token, "HX-Request": "true"}).get_data(as_text=True)
    assert 'data-channel-text="sms"' in filled and "iPhone 12 gotowy do odbioru. Sklep" in filled

    response = staff_client.post("/compose", data={
        "csrf_token": token, "customer_id": str(repair.customer_id), "repair_id": str(repair.id),
        "template_id": str(template.id), "channels": ["email", "sms"], "subject": "Gotowe",
        "body": "Dzień dobry Janie, telefon czeka."})
    assert response.status_code == 302
    dispatch_pass(now=utcnow() + timedelta(seconds=1))
    [mail] = [email.message_from_bytes(m.data, policy=email.policy.default) for m in smtp_server.wait_for(1)]
    assert "Dzień dobry Janie, telefon czeka." in mail.get_body(("plain",)).get_content()
    assert [m["body"] for m in twilio_server.messages] == ["iPhone 12 gotowy do odbioru. Sklep"]
    thread = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-channel-text="sms"' in thread  # staff see what the SMS said


def test_a_template_without_polish_letters_ticks_the_box_in_compose_and_its_sms_goes_so(
        staff_client, mailbox, sms_account, twilio_server, repair, shop):
    template = save_template(None, actor="test", **fields(sms_body="Żółty {{ device }} gotowy", sms_plain=True))
    db.session.commit()
    token = csrf_token(staff_client, f"/compose?repair_id={repair.id}")
    filled = staff_client.post("/compose/template", data={
        "template_id": str(template.id), "customer_id": str(repair.customer_id), "repair_id": str(repair.id)},
        headers={"X-CSRFToken": token, "HX-Request": "true"}).get_data(as_text=True)
    assert 'id="compose-sms-plain" checked' in filled
    staff_client.post("/compose", data={
        "csrf_token": token, "customer_id": str(repair.customer_id), "repair_id": str(repair.id),
        "template_id": str(template.id), "channels": ["sms"], "body": "Tekst główny", "sms_plain": "y"})
    dispatch_pass(now=utcnow() + timedelta(seconds=1))
    assert [m["body"] for m in twilio_server.messages] == ["Zolty iPhone 12 gotowy"]


def test_bulk_sends_each_channel_its_own_text(staff_client, mailbox, sms_account, twilio_server, repair, template):
    token = csrf_token(staff_client, f"/bulk/?repair_id={repair.id}")
    response = staff_client.post("/bulk/", data={"csrf_token": token, "repair_id": [repair.id],
                                                 "template_id": template.id, "channels": ["email", "sms"],
                                                 "confirm": "1"})
    assert response.status_code == 302
    message = db.session.scalars(db.select(Message)).one()
    assert message.body_text.startswith("Dzień dobry Jan, iPhone 12")
    assert message.meta["texts"] == {"sms": "iPhone 12 gotowy do odbioru. Sklep"}  # no panel: not a chosen channel
    dispatch_pass(now=utcnow() + timedelta(hours=1))
    assert [m["body"] for m in twilio_server.messages] == ["iPhone 12 gotowy do odbioru. Sklep"]


def test_the_panel_shows_the_panel_text(client, mailbox, repair, template):
    customer = repair.customer
    customer.panel_state = "active"
    db.session.commit()
    status = RepairStatus.ordered()[-1]
    db.session.add(StatusNotification(status_id=status.id, template_id=template.id, channels=["email", "portal"]))
    db.session.commit()
    change_status(repair, status, actor="test")
    db.session.commit()
    dispatch_pass(now=utcnow() + timedelta(hours=1))
    message = db.session.scalars(db.select(Message).where(Message.automatic.is_(True))).one()

    sign_in_customer(client, customer)
    inbox = client.get(panel_path("/")).get_data(as_text=True)
    assert f"Jan, naprawa {repair.number} gotowa." in inbox
    page = client.get(panel_path(f"/threads/{message.thread_id}")).get_data(as_text=True)
    assert f"<strong>Jan</strong>, naprawa {repair.number} gotowa." in page
    assert "czeka na odbiór" not in page


def test_a_messages_own_texts_are_redacted_with_it_and_exported_with_it(
        owner_client, mailbox, sms_account, repair, template):
    repair.customer.panel_state = "active"
    message = compose(customer=repair.customer, channels=["email", "sms", "portal"], body="Kod blokady 918273.",
                      repair=repair, texts={"sms": "SMS: kod 918273", "portal": "Panel: kod 918273"})
    db.session.commit()
    data = json.loads(zipfile.ZipFile(io.BytesIO(owner_client.get(f"/customers/{repair.customer_id}/export")
                                                 .get_data())).read("customer.json"))
    [exported] = [m for t in data["threads"] for m in t["messages"] if m["id"] == message.id]
    assert exported["channel_texts"] == {"sms": "SMS: kod 918273", "portal": "Panel: kod 918273"}

    path = f"/threads/{message.thread_id}"
    response = owner_client.post(f"{path}/messages/{message.id}/redact",
                                 data={"text": "918273", "csrf_token": csrf_token(owner_client, path)})
    assert response.status_code == 302
    db.session.expire_all()
    message = db.session.get(Message, message.id)
    assert message.meta["texts"] == {"sms": "SMS: kod [redacted]", "portal": "Panel: kod [redacted]"}
    assert "918273" not in owner_client.get(path).get_data(as_text=True)
