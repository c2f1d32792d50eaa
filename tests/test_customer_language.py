"""A customer's language: set on the card, through the API and by the customer in the panel; the panel's pages,
the sign-in messages and the automatic notifications follow it (Ukrainian included), falling back to the shop's
language; and Polish greetings call the customer by the vocative of their first name."""
from __future__ import annotations

import io
import re
import zipfile
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from panel_helpers import dispatch_now, mail_text, panel_csrf, panel_customer, panel_path, publish, sign_in_customer

from app.customers import create_customer
from app.extensions import db
from app.i18n import datetime_pattern
from app.messaging.templates import save_template
from app.models import Customer, Message, RepairStatus, Shop, StatusNotification
from app.repairs import create_repair
from helpers import csrf_token

pytestmark = [pytest.mark.shop_locale("pl")]
MOBILE = "+48600100200"


def ukrainian(name="Оксана Шевченко", email="oksana@example.com", phone=None) -> Customer:
    customer = panel_customer(name, email, phone)
    customer.language = "uk"
    db.session.commit()
    return customer


# ---------------------------------------------------------------- the panel


def test_a_ukrainian_customers_panel_is_in_ukrainian_with_ukrainian_dates(app, client):
    customer = ukrainian()
    message = publish(customer, "Ваш телефон готовий.")
    sign_in_customer(client, customer)

    inbox = client.get(panel_path("/")).get_data(as_text=True)
    assert '<html lang="uk">' in inbox
    assert "Ваші повідомлення" in inbox and "Вийти" in inbox
    assert "Twoje wiadomości" not in inbox and "Wyloguj" not in inbox

    thread = client.get(panel_path(f"/threads/{message.thread_id}")).get_data(as_text=True)
    zone = ZoneInfo(Shop.current().timezone)
    shown = format_datetime(message.created_at, datetime_pattern("uk"), tzinfo=zone, locale="uk")
    assert shown in thread  # 07.12.2026, 13:42: the day with its zero, unlike Polish and English
    assert shown != format_datetime(message.created_at, datetime_pattern("en"), tzinfo=zone, locale="en")
    assert "Надіслати" in thread  # the reply button


def test_a_customer_without_a_language_reads_the_shops_and_is_greeted_by_the_vocative(client):
    customer = panel_customer("Katarzyna Nowak", "kasia@example.com")
    sign_in_customer(client, customer)
    html = client.get(panel_path("/")).get_data(as_text=True)
    assert '<html lang="pl">' in html and "Wyloguj" in html
    assert "Dzień dobry, Katarzyno" in client.get(panel_path("/account")).get_data(as_text=True)


def test_the_customer_sets_their_language_in_the_panel(client):
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    sign_in_customer(client, customer)
    account = client.get(panel_path("/account")).get_data(as_text=True)
    assert 'value="uk"' in account and "Українська" in account

    response = client.post(panel_path("/account/language"),
                           data={"language": "uk", "csrf_token": panel_csrf(client, "/account")})
    assert response.status_code == 302
    assert db.session.get(Customer, customer.id).language == "uk"
    page = client.get(panel_path("/account")).get_data(as_text=True)
    assert "Тепер кабінет розмовляє вашою мовою." in page and "Мова" in page

    refused = client.post(panel_path("/account/language"),
                          data={"language": "de", "csrf_token": panel_csrf(client, "/account")})
    assert refused.status_code == 302
    assert db.session.get(Customer, customer.id).language == "uk"

    no_token = client.post(panel_path("/account/language"), data={"language": "en"})
    assert no_token.status_code == 400 and db.session.get(Customer, customer.id).language == "uk"


def test_a_receipts_access_code_cannot_change_the_language(client):
    customer = create_customer(name="Jan Kowalski", email="jan@example.com", phone=MOBILE)
    repair = create_repair(customer=customer, device="iPhone 12")
    db.session.commit()
    client.post(panel_path("/access"), data={"code": repair.access_code, "digits": "200",
                                             "csrf_token": panel_csrf(client, "/sign-in")})
    client.post(panel_path("/account/language"), data={"language": "uk", "csrf_token": panel_csrf(client, "/")})
    assert db.session.get(Customer, customer.id).language is None


# ---------------------------------------------------------------- sign-in messages


def test_a_ukrainian_customers_sign_in_mail_is_ukrainian(client, mailbox, smtp_server):
    ukrainian()
    client.post(panel_path("/sign-in"), data={"login": "oksana@example.com",
                                              "csrf_token": panel_csrf(client, "/sign-in")})
    dispatch_now()
    received = smtp_server.wait_for(1)[0]
    text = mail_text(received)
    assert "Вітаємо, Оксана!" in text
    assert "Або введіть цей код на сторінці входу:" in text
    assert re.search(r"\b\d{6}\b", text)
    assert "Dzień dobry" not in text


def test_a_ukrainian_customers_sign_in_sms_is_ukrainian(client, sms_account, twilio_server):
    ukrainian(phone=MOBILE)
    client.post(panel_path("/sign-in"), data={"login": "600 100 200", "csrf_token": panel_csrf(client, "/sign-in")})
    dispatch_now()
    body = twilio_server.messages[0]["body"]
    assert "ваш код для входу" in body and re.search(r"\b\d{6}\b", body)


def test_a_polish_sign_in_mail_greets_by_the_vocative(client, mailbox, smtp_server):
    panel_customer("Katarzyna Nowak", "kasia@example.com")
    client.post(panel_path("/sign-in"), data={"login": "kasia@example.com",
                                              "csrf_token": panel_csrf(client, "/sign-in")})
    dispatch_now()
    assert "Dzień dobry, Katarzyno," in mail_text(smtp_server.wait_for(1)[0])


# ---------------------------------------------------------------- automatic notifications


@pytest.fixture
def ready(app):
    """"Gotowe do odbioru" written in Polish and Ukrainian (no English), notified by e-mail."""
    shop = Shop.current()
    shop.undo_seconds = 0
    shop.quiet_hours_start = shop.quiet_hours_end = "00:00"
    status = RepairStatus.ordered()[-1]
    polish = save_template(None, actor="test", name="Gotowe do odbioru", kind="message", language="pl",
                           channels=["email"], subject="Naprawa {{ repair_number }} gotowa",
                           body="Dzień dobry {{ customer_first_name_vocative }}, {{ device }} czeka na odbiór.")
    save_template(None, actor="test", name="Gotowe do odbioru", kind="message", language="uk",
                  channels=["email"], subject="Ремонт {{ repair_number }} готовий",
                  body="Вітаємо, {{ customer_first_name }}! {{ device }} чекає на вас.")
    db.session.add(StatusNotification(status_id=status.id, template_id=polish.id, channels=["email"]))
    db.session.commit()
    return status


def notify(api, customer, status) -> Message:
    repair = create_repair(customer=customer, device="iPhone 12")
    db.session.commit()
    assert api.patch(f"/api/v1/repairs/{repair.id}", json={"status": status.name}).status_code == 200
    return db.session.scalars(db.select(Message).where(Message.automatic.is_(True))
                              .order_by(Message.id.desc())).first()


def test_a_notification_picks_the_ukrainian_version_of_the_template(api, mailbox, ready):
    customer = create_customer(name="Оксана Шевченко", email="oksana@example.com", language="uk")
    db.session.commit()
    message = notify(api, customer, ready)
    assert message.body_text == "Вітаємо, Оксана! iPhone 12 чекає на вас."
    assert message.subject.startswith("Ремонт ")


def test_a_notification_falls_back_to_the_shops_language_without_a_version(api, mailbox, ready):
    customer = create_customer(name="John Smith", email="john@example.com", language="en")
    db.session.commit()
    message = notify(api, customer, ready)
    assert message.body_text == "Dzień dobry Johnie, iPhone 12 czeka na odbiór."


# ---------------------------------------------------------------- the API


def test_the_api_sets_and_shows_the_language(api):
    created = api.post("/api/v1/customers", json={"name": "Оксана Шевченко", "language": "uk"})
    assert created.status_code == 201 and created.get_json()["language"] == "uk"
    customer_id = created.get_json()["id"]

    changed = api.patch(f"/api/v1/customers/{customer_id}", json={"language": "en"})
    assert changed.status_code == 200 and changed.get_json()["language"] == "en"
    assert api.get(f"/api/v1/customers/{customer_id}").get_json()["language"] == "en"

    for wrong in ("de", 5, ["uk"]):
        refused = api.patch(f"/api/v1/customers/{customer_id}", json={"language": wrong})
        assert refused.status_code == 422 and "language" in refused.get_json()["fields"]
    assert api.get(f"/api/v1/customers/{customer_id}").get_json()["language"] == "en"


# ---------------------------------------------------------------- the vocative


def compose_text(client, customer, template) -> str:
    token = csrf_token(client, f"/compose?customer_id={customer.id}")
    return client.post("/compose/template", data={"template_id": str(template.id), "customer_id": str(customer.id)},
                       headers={"X-CSRFToken": token, "HX-Request": "true"}).get_data(as_text=True)


@pytest.mark.parametrize("name, greeting", [
    ("Katarzyna Nowak", "Dzień dobry Katarzyno!"),
    ("Tomasz Wiśniewski", "Panie Tomaszu!"),
    ("Anna Kowalska", "Dzień dobry Anno!"),
    ("Xqzwyn Brtk", "Dzień dobry Xqzwyn!"),
])
def test_the_vocative_tag(staff_client, mailbox, name, greeting):
    customer = create_customer(name=name, email="klient@example.com")
    prefix = "Panie" if name.startswith("Tomasz") else "Dzień dobry"
    template = save_template(None, actor="test", name="Powitanie", kind="message", language="pl", channels=["email"],
                             subject="", body=prefix + " {{ customer_first_name_vocative }}!")
    db.session.commit()
    assert greeting in compose_text(staff_client, customer, template)


def test_staff_correct_the_vocative_on_the_card_and_it_wins(staff_client, mailbox):
    customer = create_customer(name="Kuba Nowak", email="kuba@example.com")
    template = save_template(None, actor="test", name="Powitanie", kind="message", language="pl", channels=["email"],
                             subject="", body="Cześć {{ customer_first_name_vocative }}!")
    db.session.commit()
    assert "Cześć Kubo!" in compose_text(staff_client, customer, template)

    form = {"name": "Kuba Nowak", "email": "kuba@example.com", "sms_informational": "y", "language": "",
            "csrf_token": csrf_token(staff_client, f"/customers/{customer.id}/edit")}
    broken = staff_client.post(f"/customers/{customer.id}/edit", data={**form, "vocative": "Kuba\nNowak"})
    assert broken.status_code == 422 and db.session.get(Customer, customer.id).vocative is None
    saved = staff_client.post(f"/customers/{customer.id}/edit", data={**form, "vocative": "Kubusiu"})
    assert saved.status_code == 302
    assert "Cześć Kubusiu!" in compose_text(staff_client, customer, template)


def test_the_card_sets_the_language_and_the_staff_switch_offers_no_ukrainian(staff_client):
    customer = create_customer(name="Оксана Шевченко", email="oksana@example.com")
    db.session.commit()
    page = staff_client.get(f"/customers/{customer.id}/edit").get_data(as_text=True)
    assert "Українська" in page
    form = {"name": customer.name, "email": customer.email, "language": "uk",
            "csrf_token": csrf_token(staff_client, f"/customers/{customer.id}/edit")}
    assert staff_client.post(f"/customers/{customer.id}/edit", data=form).status_code == 302
    assert db.session.get(Customer, customer.id).language == "uk"

    account = staff_client.get("/account/").get_data(as_text=True)
    assert 'value="uk"' not in account and "Українська" not in account
    token = csrf_token(staff_client, "/account/")
    staff_client.post("/account/language", data={"locale": "uk", "next": "/account/", "csrf_token": token})
    assert "Українська" not in staff_client.get("/account/").get_data(as_text=True)
    assert "Moje konto" in staff_client.get("/account/").get_data(as_text=True)


def test_erasing_a_customer_drops_their_vocative_and_the_export_shows_both_fields(owner_client):
    customer = create_customer(name="Kuba Nowak", email="kuba@example.com", language="uk", vocative="Kubusiu")
    db.session.commit()
    exported = owner_client.get(f"/customers/{customer.id}/export")
    assert exported.status_code == 200 and b'"vocative": "Kubusiu"' in _archive_text(exported.data)

    token = csrf_token(owner_client, f"/customers/{customer.id}/erase")
    owner_client.post(f"/customers/{customer.id}/erase", data={"confirmation": "Kuba Nowak", "csrf_token": token})
    assert db.session.get(Customer, customer.id).vocative is None


def _archive_text(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return b"".join(archive.read(name) for name in archive.namelist() if name.endswith(".json"))
