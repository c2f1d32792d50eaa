"""Export: a customer's data as a ZIP, from the card (owners) and through the API, with nothing of anyone else."""
from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import pytest
from inbound_helpers import make_mailbox, receive
from sqlalchemy import select

from app.customers import create_customer, update_customer
from app.extensions import db
from app.messaging.compose import compose
from app.messaging.reminders import send_due_reminders
from app.messaging.templates import save_template
from app.models import AuditEvent, Message, Repair, RepairStatus, StatusReminder, utcnow
from app.repairs import change_status, create_repair

pytestmark = pytest.mark.usefixtures("app")

PDF = b"%PDF-1.4\n%\xc3\xa4\xc3\xbc\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


def mail_with_file(sender: str, body: str, filename: str) -> bytes:
    import base64
    return (
        f"From: {sender}\r\nTo: serwis@shop.example\r\nSubject: Zdjęcia\r\nMessage-ID: <{filename}@example.com>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        f"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{base64.b64encode(PDF).decode()}\r\n--b--\r\n"
    ).encode()


@pytest.fixture
def customers(staff):
    """Jan with a repair, a mail with a file, a reply, a staff note and a consent change; Anna with her own mail."""
    mailbox = make_mailbox(store_attachments=True)
    jan = create_customer(name="Jan Kowalski", email="jan@example.com", actor=staff)
    anna = create_customer(name="Anna Nowak", email="anna@example.com", actor=staff)
    create_repair(customer=jan, device="iPhone 12", description="Pęknięta szybka")
    update_customer(jan, actor=staff, consent_note="Zgoda w sklepie", marketing_consent=True)
    db.session.commit()
    thread = receive(mailbox, mail_with_file("jan@example.com", "Przesyłam fakturę", "../../faktura jan.pdf")).thread
    compose(customer=jan, channels=["email"], body="Dziękujemy, naprawa ruszyła.", thread=thread, author=staff)
    db.session.add(Message(thread_id=thread.id, kind="note", direction="internal", visible_to_customer=False,
                           author_user_id=staff.id, body_text="Notatka wewnętrzna: klient marudzi"))
    receive(mailbox, mail_with_file("anna@example.com", "Wiadomość Anny", "anna.pdf"))
    db.session.commit()
    return jan, anna


def open_zip(response) -> tuple[zipfile.ZipFile, dict]:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].startswith("attachment")
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    return archive, json.loads(archive.read("customer.json"))


def test_an_owner_exports_every_message_of_the_customer_and_nothing_of_another(owner_client, owner, customers):
    jan, anna = customers
    card = owner_client.get(f"/customers/{jan.id}").get_data(as_text=True)
    assert f"/customers/{jan.id}/export" in card

    archive, data = open_zip(owner_client.get(f"/customers/{jan.id}/export"))

    assert data["customer"]["name"] == "Jan Kowalski" and data["customer"]["email"] == "jan@example.com"
    [thread] = data["threads"]
    texts = [message["text"] for message in thread["messages"]]
    assert texts == ["Przesyłam fakturę", "Dziękujemy, naprawa ruszyła."]
    assert thread["messages"][1]["deliveries"][0]["recipient"] == "jan@example.com"
    [file] = thread["messages"][0]["attachments"]
    assert file["path"] == f"attachments/{db.session.scalars(select(Message.id)).first()}/faktura jan.pdf"
    assert archive.read(file["path"]) == PDF
    assert [r["description"] for r in data["repairs"]] == ["Pęknięta szybka"]
    assert data["repairs"][0]["log"]
    assert {"kind": "marketing", "value": True, "source": "staff", "note": "Zgoda w sklepie"}.items() <= \
        data["consents"][-1].items()
    everything = b"".join(archive.read(name) for name in archive.namelist()).decode("utf-8", errors="replace")
    assert "Anna" not in everything and "anna@example.com" not in everything and "Wiadomość Anny" not in everything
    assert "Notatka wewnętrzna" not in everything  # the shop's internal notes are not the customer's data
    assert not any(".." in name for name in archive.namelist())
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.export")).one()
    assert (audit.user_id, audit.target_id) == (owner.id, jan.id)


def test_staff_cannot_export_a_customer(staff_client, customers):
    jan, _anna = customers
    assert f"/customers/{jan.id}/export" not in staff_client.get(f"/customers/{jan.id}").get_data(as_text=True)
    assert staff_client.get(f"/customers/{jan.id}/export").status_code == 403
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.export")).all() == []


def test_the_api_exports_a_customer_with_a_token(api, customers):
    jan, _anna = customers
    _archive, data = open_zip(api.get(f"/api/v1/customers/{jan.id}/export"))
    assert data["customer"]["id"] == jan.id and len(data["threads"][0]["messages"]) == 2
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.export")).one()
    assert audit.actor == "api:erp"
    assert api.get("/api/v1/customers/999/export").status_code == 404


def test_the_api_export_needs_a_token(client, customers):
    jan, _anna = customers
    assert client.get(f"/api/v1/customers/{jan.id}/export").status_code == 401


def test_the_export_lists_the_reminders_each_repair_had(owner_client, customers):
    jan, _anna = customers
    ready = RepairStatus.ordered()[-1]
    template = save_template(None, actor="test", name="Czeka na odbiór", kind="message", language="pl",
                             channels=["email"], subject="Czeka", body="{{ device }} czeka na odbiór.")
    db.session.add(StatusReminder(status_id=ready.id, days=3, template_id=template.id, channels=["email"]))
    repair = db.session.scalars(select(Repair).where(Repair.customer_id == jan.id)).one()
    change_status(repair, ready, actor="test")
    repair.status_changed_at = utcnow() - timedelta(days=30)
    db.session.commit()
    assert send_due_reminders()["sent"] == 1

    _archive, data = open_zip(owner_client.get(f"/customers/{jan.id}/export"))

    [reminder] = data["repairs"][0]["reminders"]
    assert reminder["template"] == "Czeka na odbiór" and reminder["days"] == 3 and reminder["status"] == ready.name
    assert reminder["outcome"] == "sent" and reminder["reason"] is None
    exported = {message["id"]: message for thread in data["threads"] for message in thread["messages"]}
    assert exported[reminder["message_id"]]["text"] == "iPhone 12 czeka na odbiór."
