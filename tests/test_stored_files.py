"""Stored files on several machines: with ATTACHMENT_STORAGE=database every web machine reaches every file
(staff compose, the panel's uploads, downloads streamed in pieces), `flask files move` carries existing files
between disk and database and checks every byte, backups hold them, and presence and Undo's drafts are seen
from any machine sharing the database."""
from __future__ import annotations

import hashlib
import io
import zipfile
from email.message import EmailMessage
from contextlib import contextmanager
from pathlib import Path

import pytest
from inbound_helpers import make_customer, make_mailbox, receive
from panel_helpers import panel_csrf, panel_customer, panel_path, publish, sign_in_customer
from sqlalchemy import event, func, select, update
from sqlalchemy.engine import Engine

from app.attachments import DB_CHUNK, DatabaseStore, path_for, send_stored, store
from app.extensions import db
from app.messaging.receipt import _logo as receipt_logo
from app.messaging.threads import open_thread
from app.privacy.erasure import erase_customer
from app.models import Attachment, KeptDraft, Message, Shop, StoredBlob, StoredBlobChunk
from helpers import build_app, csrf_token, make_user, sign_in

DATABASE = pytest.mark.app_config(ATTACHMENT_STORAGE="database")
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def pdf(size: int, seed: int = 1) -> bytes:
    """A PDF-looking file of `size` bytes whose content differs from piece to piece."""
    body = b"".join(hashlib.sha256(f"{seed}-{n}".encode()).digest() for n in range(size // 32 + 1))
    return (b"%PDF-1.4\n" + body)[:size]


def files_on_disk(app) -> list[str]:
    root = Path(app.instance_path) / "attachments"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def blob_count() -> int:
    return db.session.scalar(select(func.count()).select_from(StoredBlob))


def compose_with_file(client, customer, content: bytes, name: str):
    data = {"csrf_token": csrf_token(client, f"/compose?customer_id={customer.id}"), "customer_id": customer.id,
            "channels": ["email"], "body": "W załączniku wycena", "attachments": [(io.BytesIO(content), name)]}
    response = client.post("/compose", data=data, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return db.session.scalars(select(Attachment).order_by(Attachment.id.desc())).first()


def streamed_pieces(response) -> list[bytes]:
    """The body as the server hands it to the client, piece by piece (not joined)."""
    assert response.is_streamed
    return list(response.response)


@contextmanager
def counting_piece_reads():
    """The pieces of stored files read from the database while inside, by number, in order."""
    reads = []

    def note(_conn, _cursor, statement, parameters, _context, _many):
        if "FROM stored_blob_chunks" in statement:
            reads.append(parameters["seq"] if isinstance(parameters, dict) else parameters[-1])

    event.listen(Engine, "before_cursor_execute", note)  # every app's engine
    try:
        yield reads
    finally:
        event.remove(Engine, "before_cursor_execute", note)


@pytest.fixture
def second_machine(app, database_url, tmp_path):
    """Another web machine: the same database and settings, its own instance folder (nothing on disk shared)."""
    return build_app(tmp_path / "second", database_url, ATTACHMENT_STORAGE=app.config["ATTACHMENT_STORAGE"])


@DATABASE
def test_a_staff_file_is_kept_in_the_database_and_downloaded_in_pieces_from_another_machine(
        app, staff, staff_client, mailbox, customer, second_machine):
    content = pdf(2 * DB_CHUNK + 1234)
    attachment = compose_with_file(staff_client, customer, content, "wycena.pdf")
    assert attachment.sha256 == hashlib.sha256(content).hexdigest()
    assert files_on_disk(app) == []  # nothing on this machine's disk
    assert db.session.scalar(select(func.count()).select_from(StoredBlobChunk)) == 3

    url = f"/threads/{attachment.message.thread_id}/attachments/{attachment.id}"
    other = second_machine.test_client()
    sign_in(other, staff)
    response = other.get(url, buffered=False)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(content))
    assert "attachment" in response.headers["Content-Disposition"]
    pieces = streamed_pieces(response)
    response.close()
    assert len(pieces) > 3 and max(map(len, pieces)) <= DB_CHUNK  # never the whole file at once
    assert b"".join(pieces) == content
    assert staff_client.get(url).data == content  # and from the first machine

    with second_machine.test_request_context(url), counting_piece_reads() as reads:
        sent = send_stored(attachment.sha256, mimetype="application/pdf", as_attachment=True, download_name="w.pdf")
        assert reads == []  # nothing read before the body is sent
        body = iter(sent.response)
        first = next(body)
        assert reads == [0] and len(first) < DB_CHUNK  # the first piece: one row of the file read, not the file
        assert first + b"".join(body) == content
        sent.close()
    assert reads == [0, 1, 2]
    part = other.get(url, headers={"Range": f"bytes={DB_CHUNK - 10}-{DB_CHUNK + 9}"})
    assert part.status_code == 206 and part.data == content[DB_CHUNK - 10:DB_CHUNK + 10]
    again = other.get(url, headers={"If-None-Match": f'"{attachment.sha256}"'})
    assert again.status_code == 304 and again.data == b""


@DATABASE
def test_a_customers_panel_upload_is_kept_in_the_database_and_served_to_staff_and_customer(
        app, staff, staff_client, second_machine):
    Shop.current().panel_allows_attachments = True
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    message = publish(customer, "Proszę o zdjęcie", author=staff)
    db.session.commit()
    photo = b"\x89PNG\r\n\x1a\n" + pdf(DB_CHUNK + 10)[9:]

    panel = second_machine.test_client()
    sign_in_customer(panel, customer)
    token = panel_csrf(panel, f"/threads/{message.thread_id}")
    response = panel.post(panel_path(f"/threads/{message.thread_id}/reply"), content_type="multipart/form-data",
                          data={"body": "Proszę", "csrf_token": token, "attachments": [(io.BytesIO(photo), "a.png")]})
    assert response.status_code == 303
    db.session.remove()
    reply = db.session.scalars(select(Message).where(Message.direction == "in")).one()
    upload = reply.attachments[0]
    assert blob_count() == 1 and files_on_disk(second_machine) == [] and files_on_disk(app) == []

    from_staff = staff_client.get(f"/threads/{reply.thread_id}/attachments/{upload.id}", buffered=False)
    assert b"".join(streamed_pieces(from_staff)) == photo
    from_staff.close()
    from_panel = panel.get(panel_path(f"/attachments/{upload.id}"), buffered=False)
    assert from_panel.status_code == 200 and from_panel.headers["X-Content-Type-Options"] == "nosniff"
    assert b"".join(streamed_pieces(from_panel)) == photo
    from_panel.close()


@DATABASE
def test_a_file_stays_kept_when_the_message_it_came_with_is_refused(app, staff_client, mailbox, customer):
    """A message refused (no channel) rolls its transaction back; the file stays kept all the same, as on disk
    (a reply held back because the customer wrote meanwhile carries its files to the form shown again)."""
    data = {"csrf_token": csrf_token(staff_client, f"/compose?customer_id={customer.id}"), "customer_id": customer.id,
            "channels": [], "body": "Bez kanału", "attachments": [(io.BytesIO(pdf(5000)), "wycena.pdf")]}
    response = staff_client.post("/compose", data=data, content_type="multipart/form-data")
    assert response.status_code == 422
    db.session.remove()
    assert blob_count() == 1


def kept_on_disk(content: bytes, name: str = "plik.pdf") -> str:
    kept = store(io.BytesIO(content), name)
    assert path_for(kept.sha256).is_file()
    return kept.sha256


def move(app, to: str, *extra: str):
    db.session.remove()
    return app.test_cli_runner().invoke(args=["files", "move", "--to", to, *extra])


def test_files_move_to_the_database_and_back_checks_every_file_and_can_run_again(
        app, staff, staff_client, mailbox, customer):
    contents = [pdf(DB_CHUNK * 2 + 7, seed=1), pdf(100, seed=2)]
    attachment = compose_with_file(staff_client, customer, contents[0], "duzy.pdf")
    second = kept_on_disk(contents[1])
    url = f"/threads/{attachment.message.thread_id}/attachments/{attachment.id}"

    result = move(app, "database")
    assert result.exit_code == 0, result.output
    assert "moved 2, already there 0, damaged 0" in result.output
    assert "set ATTACHMENT_STORAGE=database on every machine" in result.output
    assert files_on_disk(app) == []
    assert blob_count() == 2
    # ATTACHMENT_STORAGE still says filesystem: reads find the files in the database all the same.
    assert staff_client.get(url).data == contents[0]

    again = move(app, "database")
    assert again.exit_code == 0 and "moved 0, already there 0, damaged 0" in again.output

    back = move(app, "filesystem")
    assert back.exit_code == 0, back.output
    assert "moved 2, already there 0, damaged 0" in back.output and "note:" not in back.output
    assert blob_count() == 0
    assert path_for(attachment.sha256).read_bytes() == contents[0] and path_for(second).read_bytes() == contents[1]
    assert staff_client.get(url).data == contents[0]


def test_an_interrupted_move_is_finished_by_running_it_again(app):
    """Killed after the copy was committed but before the source was removed: both copies exist; the rerun
    checks the target's copy and only then removes the source's."""
    content = pdf(DB_CHUNK + 3)
    sha = kept_on_disk(content)
    assert move(app, "database").exit_code == 0
    kept_on_disk(content)  # the disk copy as an interrupted run leaves it

    result = move(app, "database")
    assert result.exit_code == 0 and "moved 0, already there 1, damaged 0" in result.output
    assert files_on_disk(app) == [] and blob_count() == 1
    assert sha in {row for row in db.session.scalars(select(StoredBlob.sha256))}


def test_a_damaged_copy_is_never_moved_and_a_damaged_target_copy_is_replaced(app):
    good = pdf(3000, seed=7)
    sha = kept_on_disk(good)
    assert move(app, "database").exit_code == 0
    db.session.execute(update(StoredBlobChunk).where(StoredBlobChunk.sha256 == sha).values(data=b"X" * 3000))
    db.session.commit()
    kept_on_disk(good)  # a good copy on disk, a damaged one in the database

    result = move(app, "database")
    assert result.exit_code == 0 and "moved 1" in result.output, result.output
    assert files_on_disk(app) == []
    joined = b"".join(db.session.scalars(select(StoredBlobChunk.data).where(StoredBlobChunk.sha256 == sha)
                                         .order_by(StoredBlobChunk.seq)))
    assert joined == good

    rotten = pdf(2000, seed=8)
    rotten_sha = hashlib.sha256(rotten).hexdigest()
    path = path_for(rotten_sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not what its name says")
    refused = move(app, "database")
    assert refused.exit_code == 1
    assert f"damaged: {rotten_sha}" in refused.output and "damaged 1" in refused.output
    assert path.is_file()  # left where it is, never deleted
    assert db.session.get(StoredBlob, rotten_sha) is None


@DATABASE
def test_a_backup_in_database_mode_holds_the_files_and_restores_them(app, staff, staff_client, mailbox, customer,
                                                                       databases, tmp_path):
    content = pdf(DB_CHUNK + 99)
    attachment = compose_with_file(staff_client, customer, content, "wycena.pdf")
    url = f"/threads/{attachment.message.thread_id}/attachments/{attachment.id}"
    db.session.remove()
    result = app.test_cli_runner().invoke(args=["backup", "create", "--output", str(tmp_path / "backups")])
    assert result.exit_code == 0, result.output
    assert "1 in the database copy" in result.output
    file = Path(result.output.strip().splitlines()[-1])

    url_new = databases.create(tmp_path / "restored", migrated=False)
    try:
        restored = build_app(tmp_path / "restored", url_new, ATTACHMENT_STORAGE="database")
        with restored.app_context():
            done = restored.test_cli_runner().invoke(args=["backup", "restore", str(file)])
            assert done.exit_code == 0, done.output
            assert "and 1 files" in done.output
            db.session.remove()
            client = restored.test_client()
            sign_in(client, staff)
            assert client.get(url).data == content
            assert files_on_disk(restored) == []
            db.session.remove()
            db.engine.dispose()
    finally:
        databases.drop(url_new)


def test_presence_is_seen_across_two_machines_sharing_the_database(app, staff, staff_client, customer,
                                                                    second_machine):
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    anna = make_user("anna@shop.example", name="Anna")
    other = second_machine.test_client()
    sign_in(other, anna)
    token = csrf_token(other, f"/threads/{thread.id}")
    beat = other.post(f"/threads/{thread.id}/presence", data={"replying": "1", "csrf_token": token})
    assert beat.status_code == 200
    assert "Anna is replying" in staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)


def test_undo_on_one_machine_gives_the_text_back_on_another(app, staff, staff_client, mailbox, customer,
                                                             second_machine):
    response = staff_client.post("/compose", content_type="multipart/form-data", data={
        "csrf_token": csrf_token(staff_client, f"/compose?customer_id={customer.id}"), "customer_id": customer.id,
        "channels": ["email"], "body": "Pomyłka w kwocie: 100 zł"})
    assert response.status_code == 302
    message = db.session.scalars(select(Message)).one()
    undone = staff_client.post(f"/messages/{message.id}/undo",
                               data={"csrf_token": csrf_token(staff_client, f"/threads/{message.thread_id}")})
    assert undone.status_code == 302
    other = second_machine.test_client()
    sign_in(other, staff)
    assert "Pomyłka w kwocie: 100 zł" in other.get(undone.headers["Location"]).get_data(as_text=True)
    assert not (Path(app.instance_path) / "drafts").exists()


def test_the_storage_setting_refuses_an_unknown_kind(tmp_path, database_url):
    with pytest.raises(ValueError, match="ATTACHMENT_STORAGE"):
        build_app(tmp_path / "bad", database_url, ATTACHMENT_STORAGE="s3")


@DATABASE
def test_a_received_mails_file_is_kept_in_the_database_with_the_mail(app, staff, staff_client, second_machine):
    """Received mail stores its files in the middle of its own transaction (on SQLite, they go into it)."""
    make_customer()
    mailbox = make_mailbox(store_attachments=True)
    content = b"\xff\xd8\xff\xe0\x00JFIF" + pdf(DB_CHUNK + 500)[9:]
    outcome = receive(mailbox, mail_with(content))
    [attachment] = db.session.get(Message, outcome.item.message_id).attachments
    assert attachment.sha256 == hashlib.sha256(content).hexdigest() and attachment.skipped_reason is None
    assert files_on_disk(app) == [] and blob_count() == 1

    other = second_machine.test_client()
    sign_in(other, staff)
    assert other.get(f"/threads/{outcome.thread.id}/attachments/{attachment.id}").data == content


def mail_with(content: bytes) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Jan Kowalski <jan.kowalski@example.com>"
    mail["To"] = "serwis@shop.example"
    mail["Subject"] = "Zdjęcie"
    mail["Message-ID"] = "<photo-in-db@example.com>"
    mail.set_content("W załączniku zdjęcie.")
    mail.add_attachment(content, maintype="image", subtype="jpeg", filename="zdjecie.jpg")
    return mail.as_bytes()


@DATABASE
def test_the_panel_logo_kept_in_the_database_is_shown_by_every_machine_and_on_the_receipt(
        app, owner_client, second_machine):
    token = csrf_token(owner_client, "/settings/panel/")
    response = owner_client.post("/settings/panel/", content_type="multipart/form-data", data={
        "csrf_token": token, "brand_colour": "#C0392B", "logo": (io.BytesIO(PNG), "logo.png")})
    assert response.status_code == 302
    assert files_on_disk(app) == [] and blob_count() == 1
    logo = second_machine.test_client().get(panel_path("/logo"))
    assert logo.status_code == 200 and logo.data == PNG and logo.mimetype == "image/png"
    assert receipt_logo(Shop.current()) is not None


@DATABASE
def test_an_export_carries_and_an_erasure_deletes_a_file_kept_in_the_database(
        app, owner, owner_client, mailbox, customer):
    content = pdf(DB_CHUNK + 77)
    compose_with_file(owner_client, customer, content, "wycena.pdf")
    export = owner_client.get(f"/customers/{customer.id}/export")
    assert export.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(export.data))
    [name] = [name for name in archive.namelist() if name.startswith("attachments/")]
    assert archive.read(name) == content

    erase_customer(customer, actor=owner, confirmation=customer.name)
    db.session.commit()
    assert blob_count() == 0


def test_erasing_the_customer_deletes_a_draft_undo_kept_of_a_message_to_them(app, owner, owner_client, mailbox,
                                                                            customer):
    response = owner_client.post("/compose", content_type="multipart/form-data", data={
        "csrf_token": csrf_token(owner_client, f"/compose?customer_id={customer.id}"), "customer_id": customer.id,
        "channels": ["email"], "body": "Cena dla pana Kowalskiego: 450 zł"})
    assert response.status_code == 302
    message = db.session.scalars(select(Message)).one()
    owner_client.post(f"/messages/{message.id}/undo",
                      data={"csrf_token": csrf_token(owner_client, f"/threads/{message.thread_id}")})
    assert db.session.scalar(select(func.count()).select_from(KeptDraft)) == 1
    erase_customer(customer, actor=owner, confirmation=customer.name)
    assert db.session.scalar(select(func.count()).select_from(KeptDraft)) == 0


def test_a_move_that_fails_before_the_copy_is_committed_leaves_the_source_whole(app, monkeypatch):
    content = pdf(DB_CHUNK + 5)
    sha = kept_on_disk(content)

    def power_cut(*_args, **_kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(DatabaseStore, "keep", power_cut)
    failed = move(app, "database")
    assert failed.exit_code != 0
    assert path_for(sha).read_bytes() == content and blob_count() == 0
    monkeypatch.undo()
    assert "moved 1" in move(app, "database").output
    assert files_on_disk(app) == [] and blob_count() == 1
