"""Programs and scripts never get in: refused by content and by name from staff compose, panel uploads and
template files, listed but never kept from received mail, and never served even when kept before."""
from __future__ import annotations

import hashlib
import io
from email.message import EmailMessage

import program_files as files
import pytest
from inbound_helpers import make_customer, make_mailbox, receive
from panel_helpers import panel_csrf, panel_customer, panel_path, publish, sign_in_customer

from app.attachments import path_for, refusal
from app.extensions import db
from app.models import Attachment, Message, Thread
from app.models.templates import MessageTemplate
from helpers import csrf_token

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

# What a program looks like when someone tries to slip it in: its content under an innocent name, or an innocent
# content under a name that runs.
PROGRAMS = {
    "a Windows program named .jpg": (files.windows_program, "zdjecie.jpg"),
    "a Linux program named .png": (files.elf_program, "ekran.png"),
    "a shell script named .txt": (files.shell_script, "opis.txt"),
    "a Java program named .zip": (files.jar, "zdjecia.zip"),
    "an Android app named .zip": (files.apk, "zdjecia.zip"),
    "a Windows Installer package named .doc": (lambda: files.ole_file(files.WINDOWS_INSTALLER), "umowa.doc"),
    "a zip carrying a program": (files.zip_with_a_program, "zdjecia.zip"),
    "an HTML application": (lambda: b"<html><script>new ActiveXObject('WScript.Shell')</script></html>",
                            "faktura.hta"),
    "a batch file": (lambda: b"@echo off\r\ndel /q C:\\*\r\n", "faktura.bat"),
    "a PowerShell script": (lambda: b"Remove-Item -Recurse C:\\\n", "faktura.ps1"),
    "a VBScript": (lambda: b'CreateObject("WScript.Shell").Run "cmd"\n', "faktura.vbs"),
    "a JScript file": (lambda: b"WScript.Echo(1);\n", "Faktura.PDF.JS"),
    "a shortcut": (lambda: b"L\x00\x00\x00", "faktura.lnk"),
    "a program name ending in a dot": (lambda: PNG, "zdjecie.exe."),
    "a name that ends in .exe once shortened": (lambda: PNG, "z" * 195 + ".exe." + "b" * 20),
}
# What shops need stays allowed: images, PDF, Office and OpenDocument files (zips, but no Java), old Word files
# (OLE, but not installers), zips of photos, text.
ALLOWED = {
    "a photo": (lambda: PNG, "zdjecie.png"),
    "a PDF": (lambda: b"%PDF-1.4\n% kosztorys\n", "kosztorys.pdf"),
    "a Word document": (files.docx, "umowa.docx"),
    "an OpenDocument text": (files.odt, "umowa.odt"),
    "an old Word document": (lambda: files.ole_file(files.WORD_97), "umowa.doc"),
    "a zip of photos": (lambda: files.zip_of_photos(PNG), "zdjecia.zip"),
    "a text file": (lambda: "Numer seryjny: 12345\n".encode(), "numer.txt"),
}


@pytest.mark.parametrize("kind", PROGRAMS)
def test_the_policy_refuses_every_kind_of_program(kind):
    make, name = PROGRAMS[kind]
    assert refusal(name, io.BytesIO(make())) is not None


@pytest.mark.parametrize("kind", ALLOWED)
def test_the_policy_keeps_what_shops_need(kind):
    make, name = ALLOWED[kind]
    assert refusal(name, io.BytesIO(make())) is None


def compose_with(client, customer, content: bytes, name: str):
    data = {"csrf_token": csrf_token(client, f"/compose?customer_id={customer.id}"), "customer_id": customer.id,
            "channels": ["email"], "body": "W załączniku", "attachments": [(io.BytesIO(content), name)]}
    return client.post("/compose", data=data, content_type="multipart/form-data")


@pytest.mark.parametrize("kind", PROGRAMS)
def test_staff_cannot_attach_a_program(staff_client, mailbox, customer, kind):
    make, name = PROGRAMS[kind]
    response = compose_with(staff_client, customer, make(), name)
    assert response.status_code == 422
    assert "is a program or script" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Message.id))) == 0
    assert db.session.scalar(db.select(db.func.count(Attachment.id))) == 0


def test_staff_attach_documents_photos_and_zips(staff_client, mailbox, customer):
    for kind, (make, name) in ALLOWED.items():
        assert compose_with(staff_client, customer, make(), name).status_code == 302, kind
    assert db.session.scalar(db.select(db.func.count(Attachment.id))) == len(ALLOWED)


def test_a_customer_cannot_upload_a_program_in_the_panel(app, staff):
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    message = publish(customer, "Gotowe", author=staff)
    client = app.test_client()
    sign_in_customer(client, customer)
    for make, name in (PROGRAMS["a Linux program named .png"], PROGRAMS["a batch file"]):
        token = panel_csrf(client, f"/threads/{message.thread_id}")
        response = client.post(panel_path(f"/threads/{message.thread_id}/reply"),
                               content_type="multipart/form-data",
                               data={"body": "Zdjęcie", "csrf_token": token,
                                     "attachments": [(io.BytesIO(make()), name)]})
        assert response.status_code == 400
        assert "is a program or script" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Message.id)).where(Message.direction == "in")) == 0


def test_a_template_cannot_carry_a_program(owner_client):
    data = {"name": "Cennik", "kind": "message", "language": "pl", "channels": ["email"], "subject": "Cennik",
            "body": "Cennik w załączniku", "csrf_token": csrf_token(owner_client, "/settings/templates/new"),
            "attachments": [(io.BytesIO(files.windows_program()), "cennik.pdf")]}
    response = owner_client.post("/settings/templates/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "is a program or script" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(MessageTemplate.id))) == 0


def mail_with(attachments: list[tuple[bytes, str]]) -> bytes:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "Jan Kowalski <jan.kowalski@example.com>", "serwis@shop.example", "Pliki"
    mail["Message-ID"], mail["Date"] = "<pliki@example.com>", "Mon, 23 Nov 2026 10:00:00 +0100"
    mail.set_content("W załączniku pliki.")
    for content, name in attachments:
        mail.add_attachment(content, maintype="application", subtype="octet-stream", filename=name)
    return mail.as_bytes()


def test_received_programs_are_listed_with_the_reason_and_never_kept(app, owner_client):
    make_customer()
    mailbox = make_mailbox(store_attachments=True)
    sent = [(make(), name) for make, name in PROGRAMS.values()] + [(PNG, "zdjecie.png")]

    outcome = receive(mailbox, mail_with(sent))

    message = db.session.get(Message, outcome.item.message_id)
    kept = {a.filename: a for a in message.attachments}
    assert len(kept) == len({name for _, name in sent})
    assert kept["zdjecie.png"].sha256 is not None
    for name, attachment in kept.items():
        if name != "zdjecie.png":
            assert (attachment.sha256, attachment.skipped_reason) == (None, "program"), name
    page = owner_client.get(f"/threads/{message.thread_id}").get_data(as_text=True)
    assert "faktura.hta" in page and "programs and scripts are never kept" in page
    assert page.count("/attachments/") == 1  # only the photo can be downloaded


def test_a_program_kept_before_the_policy_is_never_served(app, owner_client, staff):
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    message = publish(customer, "Pliki", author=staff)
    program = files.elf_program()
    sha = hashlib.sha256(program).hexdigest()
    path_for(sha).parent.mkdir(parents=True, exist_ok=True)
    path_for(sha).write_bytes(program)
    old = Attachment(message_id=message.id, filename="ekran.png", content_type="image/png", size=len(program),
                     sha256=sha)
    db.session.add(old)
    db.session.commit()

    assert owner_client.get(f"/threads/{message.thread_id}/attachments/{old.id}").status_code == 404
    panel = app.test_client()
    sign_in_customer(panel, customer)
    assert panel.get(panel_path(f"/attachments/{old.id}")).status_code == 404
    assert db.session.get(Thread, message.thread_id) is not None
