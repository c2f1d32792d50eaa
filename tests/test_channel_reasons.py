"""A greyed-out channel says its real cause, the same words in compose, the API's 422 and bulk messages; owners get
a link to the page that fixes it, staff just the reason."""
from __future__ import annotations

import re

import pytest

from app.customers import create_customer
from app.extensions import db
from app.accounts.mailboxes import create_mailbox, set_active
from app.models import Message
from app.messaging.templates import save_template
from app.models.users import ApiToken
from helpers import csrf_token

LANDLINE = "+48221234567"
GERMAN_MOBILE = "+4915112345678"


def why(html: str, channel: str) -> str:
    """The reason shown under a channel of the compose form, without tags."""
    found = re.search(rf'id="channel-{channel}-why">(.*?)</p>', html, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split()) if found else ""


def fix_link(html: str, channel: str) -> str | None:
    found = re.search(rf'id="channel-{channel}-why">.*?(?:<a href="([^"]+)" class="fix-link">|</p>)', html, re.S)
    return found.group(1) if found else None


def compose_page(client, customer) -> str:
    return client.get(f"/compose?customer_id={customer.id}").get_data(as_text=True)


def api_reasons(client, customer, channels) -> dict:
    _row, plain = ApiToken.issue("erp")
    db.session.commit()
    response = client.post("/api/v1/messages", json={"customer_id": customer.id, "channels": channels, "body": "Hi"},
                           headers={"Authorization": f"Bearer {plain}"})
    assert response.status_code == 422
    return response.get_json()["fields"]


def test_nothing_set_up_and_a_bare_customer(owner_client):
    customer = create_customer(name="Jan Kowalski")
    db.session.commit()
    html = compose_page(owner_client, customer)
    assert why(html, "email") == "The customer has no e-mail address. Fix it"
    assert fix_link(html, "email") == f"/customers/{customer.id}/edit"
    assert why(html, "sms") == "The SMS account is not configured. Fix it"
    assert fix_link(html, "sms") == "/settings/sms/"
    assert why(html, "portal") == "The panel is not activated for this customer. Fix it"
    assert fix_link(html, "portal") == f"/customers/{customer.id}"


def test_a_switched_off_mailbox_is_named(owner_client):
    box = create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host="smtp.shop.example", smtp_port=587,
                         smtp_security="starttls")
    set_active(box, False)
    customer = create_customer(name="Jan Kowalski", email="jan@example.com")
    db.session.commit()
    html = compose_page(owner_client, customer)
    assert why(html, "email") == "The mailbox Serwis is switched off. Fix it"
    assert fix_link(html, "email") == f"/settings/mailboxes/{box.id}"
    assert api_reasons(owner_client, customer, ["email"]) == {"channels.email": "The mailbox Serwis is switched off."}


@pytest.mark.parametrize("phone, sms_off, expected", [
    (LANDLINE, False, f"The number {LANDLINE} is a landline: it cannot receive SMS."),
    (GERMAN_MOBILE, False, f"The number {GERMAN_MOBILE} is outside the allowed countries (Poland)."),
    ("+48600100200", True, "The customer turned SMS off."),
    (None, False, "The customer has no phone number."),
])
def test_sms_reasons_in_compose_and_the_api(owner_client, sms_account, phone, sms_off, expected):
    customer = create_customer(name="Jan Kowalski", phone=phone, sms_informational=not sms_off)
    db.session.commit()
    html = compose_page(owner_client, customer)
    assert why(html, "sms") == f"{expected} Fix it"
    assert fix_link(html, "sms") in (f"/customers/{customer.id}/edit", f"/customers/{customer.id}")
    assert api_reasons(owner_client, customer, ["sms"]) == {"channels.sms": expected}
    assert db.session.scalar(db.select(db.func.count(Message.id))) == 0


def test_staff_see_the_reason_without_a_link(staff_client):
    customer = create_customer(name="Jan Kowalski")
    db.session.commit()
    html = compose_page(staff_client, customer)
    assert why(html, "sms") == "The SMS account is not configured."
    assert why(html, "email") == "The customer has no e-mail address."
    assert "fix-link" not in html


def test_the_reason_is_the_same_in_bulk_messages(staff_client, mailbox, sms_account):
    template = save_template(None, actor="test", name="Odbiór", kind="message", language="pl",
                             channels=["email", "sms"], subject="Odbiór", body="Zapraszamy po odbiór.")
    landline = create_customer(name="Stefan Stacjonarny", email="s@example.com", phone=LANDLINE)
    db.session.commit()
    token = csrf_token(staff_client, f"/bulk/?customer_id={landline.id}")
    html = staff_client.post("/bulk/", data={"csrf_token": token, "customer_id": [landline.id],
                                             "template_id": template.id, "channels": ["email", "sms"]}
                             ).get_data(as_text=True)
    assert f"Stefan Stacjonarny · SMS: The number {LANDLINE} is a landline: it cannot receive SMS." in html
