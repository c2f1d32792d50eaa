"""Every free text has a length limit and no control characters, wherever it comes from (staff pages, the API,
the domain functions the CLI uses): a 2 MB note is refused, a shop name with a line break never reaches a mail."""
from __future__ import annotations

import pytest
from helpers import csrf_token
from inbound_helpers import make_mailbox
from sqlalchemy import func, select

from app.customers import create_customer, update_customer
from app.errors import ValidationFailed
from app.extensions import db
from app.fields import clean_line, clean_text
from app.accounts.mailboxes import create_mailbox
from app.messaging.compose import compose
from app.messaging.record import record_conversation
from app.messaging.templates import checked_fields
from app.messaging.thread_actions import add_note, add_tag, set_category
from app.models import ApiToken, Customer, Message, Shop, Thread
from app.repairs import create_repair, create_ticket
from app.shop.workflow import add_queue, add_status
from app.shop.settings import update_shop
from app.accounts.sms import configure_sms
from app.shop.users import create_user

HUGE = "x" * (2 * 1024 * 1024)  # 2 MB


def test_the_rules_themselves():
    assert clean_text("  Dzień dobry,\r\n\tdrugi wiersz \r", "body", 100) == "Dzień dobry,\n\tdrugi wiersz"
    assert clean_line("  Serwis   GSM ", "name", 100) == "Serwis GSM"
    for bad in ("Serwis\nGSM", "Serwis\rBcc: x@example.com", "Serwis\u2028GSM", "Serwis\x85GSM"):
        with pytest.raises(ValidationFailed) as refused:
            clean_line(bad, "name", 100)
        assert refused.value.fields == {"name": "Must be on one line."}
    for bad in ("Serwis\tGSM", "Serwis\x00", "Serwis\x1b[31m", "Serwis\x7f"):
        with pytest.raises(ValidationFailed) as refused:
            clean_line(bad, "name", 100)
        assert "control character" in refused.value.fields["name"]
    with pytest.raises(ValidationFailed) as refused:
        clean_text("a\x00b", "body", 100)
    assert "U+0000" in refused.value.fields["body"]
    with pytest.raises(ValidationFailed) as refused:
        clean_text("x" * 101, "body", 100)
    assert refused.value.fields == {"body": "At most 100 characters."}
    with pytest.raises(ValidationFailed):
        clean_line(["a list"], "name", 100)


def _refused(write, field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        write()
    assert field in refused.value.fields, refused.value.fields
    db.session.rollback()


def test_every_domain_function_refuses_overlong_text_and_control_characters(customer, owner):
    """The same rules for the UI, the API and the CLI, since they all call these."""
    make_mailbox()
    repair = create_repair(customer=customer, device="iPhone 12")
    thread = compose(customer=customer, channels=["email"], body="Dzień dobry", author=owner).thread
    db.session.commit()
    texts = {  # a write of a huge text, the field it must name
        "customer name": (lambda v: create_customer(name=v), "name"),
        "crm note": (lambda v: update_customer(customer, actor=owner, crm_note=v), "crm_note"),
        "consent note": (lambda v: update_customer(customer, actor=owner, consent_note=v, marketing_consent=True),
                         "consent_note"),
        "repair device": (lambda v: create_repair(customer=customer, device=v), "device"),
        "repair fault": (lambda v: create_repair(customer=customer, device="Moto", description=v), "description"),
        "ticket subject": (lambda v: create_ticket(customer=customer, subject=v), "subject"),
        "ticket category": (lambda v: create_ticket(customer=customer, subject="A", category=v), "category"),
        "message body": (lambda v: compose(customer=customer, channels=["email"], body=v), "body"),
        "message subject": (lambda v: compose(customer=customer, channels=["email"], body="B", subject=v),
                            "subject"),
        "note": (lambda v: add_note(thread, v, owner), "body"),
        "recorded conversation": (lambda v: record_conversation(customer=customer, source="phone", body=v,
                                                                author=owner, subject="Telefon"), "body"),
        "tag": (lambda v: add_tag(thread, v, owner), "tag"),
        "category": (lambda v: set_category(thread, v, owner), "category"),
        "template name": (lambda v: checked_fields(name=v, channels=["email"], subject="S", body="B",
                                                   language="pl", kind="message"), "name"),
        "template body": (lambda v: checked_fields(name="N", channels=["email"], subject="S", body=v,
                                                   language="pl", kind="message"), "body"),
        "shop name": (lambda v: update_shop(Shop.current(), name=v), "name"),
        "shop address": (lambda v: update_shop(Shop.current(), address=v), "address"),
        "shop opening hours": (lambda v: update_shop(Shop.current(), opening_hours=v), "opening_hours"),
        "mailbox name": (lambda v: create_mailbox(name=v, email="b@shop.example", smtp_host="smtp.shop.example",
                                                  smtp_port=587, smtp_security="starttls"), "name"),
        "staff name": (lambda v: create_user(email="nowy@shop.example", name=v, role="staff",
                                             password="długie hasło 123"), "name"),
        "status name": (lambda v: add_status(v, "blue"), "name"),
        "queue name": (lambda v: add_queue(v), "name"),
    }
    for what, (write, field) in texts.items():
        _refused(lambda: write(HUGE), field)
    assert db.session.scalar(select(func.count(Customer.id))) == 1
    assert db.session.get(Customer, customer.id).crm_note == ""
    assert db.session.scalar(select(func.count(Message.id))) == 1


SINGLE_LINE = {  # every single-line setting and name, written with a line break
    "shop name": (lambda v, owner: update_shop(Shop.current(), name=v), "name"),
    "shop phone": (lambda v, owner: update_shop(Shop.current(), phone=v), "phone"),
    "mailbox name": (lambda v, owner: create_mailbox(name=v, email="b@shop.example", smtp_host="smtp.shop.example",
                                                     smtp_port=587, smtp_security="starttls"), "name"),
    "mailbox sender name": (lambda v, owner: create_mailbox(
        name="Serwis", display_name=v, email="b@shop.example", smtp_host="smtp.shop.example", smtp_port=587,
        smtp_security="starttls"), "display_name"),
    "SMS sender name": (lambda v, owner: configure_sms("AC" + "0" * 32, "token", from_number=v, actor="test"),
                        "from_number"),
    "customer name": (lambda v, owner: create_customer(name=v), "name"),
    "staff name": (lambda v, owner: create_user(email="nowy@shop.example", name=v, role="staff",
                                                password="długie hasło 123"), "name"),
    "template name": (lambda v, owner: checked_fields(name=v, channels=["email"], subject="S", body="B",
                                                      language="pl", kind="message"), "name"),
    "template subject": (lambda v, owner: checked_fields(name="N", channels=["email"], subject=v, body="B",
                                                         language="pl", kind="message"), "subject"),
    "status name": (lambda v, owner: add_status(v, "blue"), "name"),
    "queue name": (lambda v, owner: add_queue(v), "name"),
}


@pytest.mark.parametrize("value", ["Serwis\r\nBcc: all@example.com", "Serwis\x07GSM", "Serwis\u2028GSM"],
                         ids=["CRLF", "BEL", "line separator"])
def test_single_line_settings_and_names_refuse_control_characters(app, owner, value):
    for what, (write, field) in SINGLE_LINE.items():
        _refused(lambda: write(value, owner), field)
    assert "\n" not in Shop.current().name and "\x07" not in Shop.current().name


# Over HTTP

def test_a_two_megabyte_crm_note_is_refused_and_never_shown_on_the_thread(staff_client, customer, staff):
    make_mailbox()
    thread = compose(customer=customer, channels=["email"], body="Dzień dobry", author=staff).thread
    db.session.commit()
    response = staff_client.post(f"/threads/{thread.id}/crm-note", data={
        "crm_note": HUGE, "csrf_token": csrf_token(staff_client, f"/threads/{thread.id}")}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "At most 5000 characters" in html or "5000" in html
    assert len(html) < 1024 * 1024
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).crm_note == ""

    path = f"/customers/{customer.id}/edit"
    response = staff_client.post(path, data={"name": "Jan Kowalski", "email": "jan@example.com",
                                             "phone": "600 100 200", "crm_note": HUGE,
                                             "csrf_token": csrf_token(staff_client, path)})
    assert response.status_code == 422
    assert db.session.get(Customer, customer.id).crm_note == ""


def test_a_shop_name_with_a_line_break_is_refused_on_the_settings_page(owner_client):
    shop = Shop.current()
    data = {"csrf_token": csrf_token(owner_client, "/settings/shop"), "name": "Serwis\r\nBcc: all@example.com",
            "slug": shop.slug, "address": shop.address, "phone": shop.phone, "opening_hours": shop.opening_hours,
            "locale": shop.locale, "timezone": shop.timezone, "notification_email": shop.notification_email or "",
            "undo_seconds": str(shop.undo_seconds)}
    response = owner_client.post("/settings/shop", data=data)
    assert response.status_code == 422
    assert "Must be on one line" in response.get_data(as_text=True) or "jednym wierszu" in response.get_data(
        as_text=True)
    db.session.expire_all()
    assert "\n" not in Shop.current().name


def test_the_api_names_the_field_of_an_overlong_or_broken_text(client, app, customer):
    make_mailbox()
    _row, plain = ApiToken.issue("test")
    db.session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    response = client.post("/api/v1/customers", json={"name": "Jan\nKowalski"}, headers=headers)
    assert response.status_code == 422 and "name" in response.get_json()["fields"]
    response = client.post("/api/v1/messages", json={
        "customer_id": customer.id, "channels": ["email"], "subject": "Hej\r\nBcc: all@example.com", "body": "B"},
        headers=headers)
    assert response.status_code == 422 and "subject" in response.get_json()["fields"]
    response = client.post("/api/v1/messages", json={"customer_id": customer.id, "channels": ["email"],
                                                     "body": HUGE}, headers=headers)
    assert response.status_code in (413, 422)
    assert db.session.scalar(select(func.count(Thread.id))) == 0
