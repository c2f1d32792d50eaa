"""Backups a shop can trust: a backup made while mail comes in and goes out restores into a new instance with every
row and every file; damaged or foreign files are refused before anything is touched; a shop is never overwritten
without --force; the daily job keeps the newest files; the owner's page backs up and hands the files out."""
from __future__ import annotations

import io
import json
import stat
import tarfile
import threading
from contextlib import contextmanager
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from helpers import build_app, csrf_token
from sqlalchemy import func, inspect, select, text

from app.attachments import path_for, storage_root, store
from app.backups import LEASE, daily_backup
from app.crypto import decrypt, encrypt
from app.customers import create_customer
from app.extensions import db
from app import leases
from app.inbound.poll import poll_mailbox
from app.jobs import JOBS
from app.messaging.compose import compose
from app.models import AuditEvent, Customer, Mailbox, Message, Shop, utcnow
from app.outbox import dispatch_pass


# ---------------------------------------------------------------- helpers


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


@pytest.fixture
def new_instance(databases, tmp_path):
    """Makes apps on new, empty instances (an empty database of this run's kind), dropped afterwards."""
    made = []

    def make(name: str, **overrides):
        directory = tmp_path / name
        url = databases.create(directory, migrated=False)
        made.append(url)
        return build_app(directory, url, **overrides)

    yield make
    for url in made:
        databases.drop(url)


def backup(cli, directory: Path) -> Path:
    result = cli.invoke(args=["backup", "create", "--output", str(directory)])
    assert result.exit_code == 0, result.output
    return Path(result.output.strip().splitlines()[-1])


def restore(instance, file: Path, *args: str):
    with instance.app_context():
        result = instance.test_cli_runner().invoke(args=["backup", "restore", str(file), *args])
        db.session.remove()
        db.engine.dispose()
    return result


def all_rows() -> dict[str, list[tuple]]:
    """Every row of every table of the current app's database, in a stable order; the audit log without the
    backup's own entries (written after the copy was taken)."""
    db.session.remove()
    with db.engine.connect() as connection:
        tables = sorted(inspect(connection).get_table_names())
        found = {}
        for table in tables:
            where = " WHERE action NOT LIKE 'backup.%'" if table == "audit_events" else ""
            rows = [tuple(json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v for v in row)
                    for row in connection.execute(text(f'SELECT * FROM "{table}"{where}'))]
            found[table] = sorted(rows, key=lambda row: [(v is None, repr(v)) for v in row])
    return found


def stored_files(app) -> dict[str, bytes]:
    with app.app_context():
        root = storage_root()
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()} \
            if root.is_dir() else {}


def mail_with_photo(number: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Jan Kowalski <jan@example.com>"
    mail["To"] = "serwis@shop.example"
    mail["Subject"] = f"Zdjęcie pęknięcia {number}"
    mail["Message-ID"] = f"<photo-{number}@example.com>"
    mail.set_content(f"Dzień dobry, przesyłam zdjęcie nr {number}.")
    mail.add_attachment(b"\x89PNG\r\n\x1a\n" + bytes([number % 256]) * (2000 + number), maintype="image",
                        subtype="png", filename=f"zdjęcie-{number}.png")
    return mail.as_bytes()


def photo(number: int):
    return store(io.BytesIO(b"%PDF-1.4\n" + f"wycena {number}\n".encode() * 50), f"wycena-{number}.pdf")


@contextmanager
def shop_at_work(app, mailbox_id: int, customer_id: int, imap):
    """Two threads, as the scheduler runs them: one receives mail (a new mail with a photo, then a poll), the
    other sends (a new message with a file, then an outbox pass), until told to stop; each at least twice."""
    stop, errors = threading.Event(), []
    started = [threading.Event(), threading.Event()]

    def receive(n):
        imap.append(mail_with_photo(n))
        poll_mailbox(db.session.get(Mailbox, mailbox_id))

    def send(n):
        compose(customer=db.session.get(Customer, customer_id), channels=["email"], subject=f"Wycena {n}",
                body=f"Wycena naprawy nr {n}: 450 zł.", attachments=[photo(1000 + n)], source="test")
        db.session.commit()
        dispatch_pass()

    def run(work, ready):
        with app.app_context():
            try:
                n = 0
                while n < 2 or not stop.is_set():
                    work(n)
                    n += 1
                    if n == 2:
                        ready.set()
            except Exception as exc:  # shown by the test
                errors.append(exc)
                ready.set()
            finally:
                db.session.remove()

    workers = [threading.Thread(target=run, args=(receive, started[0])),
               threading.Thread(target=run, args=(send, started[1]))]
    for worker in workers:
        worker.start()
    try:
        for ready in started:
            assert ready.wait(120), "the shop did not get to work"
        yield
    finally:
        stop.set()
        for worker in workers:
            worker.join(120)
    assert not errors, errors


# ---------------------------------------------------------------- backup and restore


def test_a_backup_of_a_shop_at_work_restores_every_customer_thread_message_and_file(
        app, cli, new_instance, imap_server, smtp_server, tmp_path):
    app.config["SMTP_CA_FILE"] = smtp_server.cafile
    Shop.current().undo_seconds = 0
    mailbox = imap_server.make_mailbox(smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                                       smtp_security="starttls", store_attachments=True)
    mailbox.smtp_username, mailbox.smtp_password_enc = smtp_server.username, encrypt(smtp_server.password)
    customer = create_customer(name="Jan Kowalski", email="jan@example.com", phone="600100200")
    create_customer(name="Ewa Nowak", email="ewa@example.com")
    db.session.commit()
    compose(customer=customer, channels=["email"], subject="Przyjęcie", body="Telefon przyjęty.",
            attachments=[photo(0)], source="test")
    db.session.commit()
    before = db.session.scalar(select(func.count(Message.id)))

    with shop_at_work(app, mailbox.id, customer.id, imap_server):
        during = backup(cli, tmp_path / "backups")

    # The copy taken mid-traffic: one consistent moment, whole and restorable.
    manifest = json.loads(tarfile.open(during).extractfile("manifest.json").read())
    assert manifest["counts"]["messages"] > before
    first = new_instance("restored-during")
    result = restore(first, during)
    assert result.exit_code == 0, result.output
    source_rows = all_rows()
    with first.app_context():
        restored_rows = all_rows()
        if db.engine.dialect.name == "sqlite":
            with db.engine.connect() as connection:
                assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
        stored = [(sha, size) for sha, size in db.session.execute(
            text("SELECT sha256, size FROM attachments WHERE sha256 IS NOT NULL"))]
        assert len(stored) >= 3
        for sha, size in stored:  # every file the copy refers to came along, byte for byte
            assert path_for(sha).stat().st_size == size
    for table in ("customers", "messages", "attachments", "message_refs"):  # what was there then, as it was
        assert restored_rows[table], table
        assert set(restored_rows[table]) <= set(source_rows[table]), table
    assert restored_rows["messages"] and len(restored_rows["messages"]) == manifest["counts"]["messages"]
    source_files = stored_files(app)
    for name, data in stored_files(first).items():
        assert source_files[name] == data

    # Once the shop is quiet, a backup and its restore are the shop: every row of every table, every file.
    after = backup(cli, tmp_path / "backups")
    second = new_instance("restored-after")
    result = restore(second, after)
    assert result.exit_code == 0, result.output
    source_rows = all_rows()
    with second.app_context():
        restored_rows = all_rows()
    assert restored_rows.keys() == source_rows.keys()
    for table in source_rows:
        assert restored_rows[table] == source_rows[table], table
    assert stored_files(second) == stored_files(app)
    assert len(source_rows["messages"]) > manifest["counts"]["messages"] >= before

    # The restored shop goes on: new rows get new ids, its mailbox password still reads.
    with second.app_context():
        shop_customer = db.session.scalar(select(Customer).where(Customer.email == "jan@example.com"))
        message = compose(customer=shop_customer, channels=["email"], body="Dalej działamy.", source="test")
        db.session.commit()
        assert message.id > max(row[0] for row in source_rows["messages"])
        assert decrypt(db.session.scalar(select(Mailbox.smtp_password_enc))) == smtp_server.password
        assert db.session.scalar(select(AuditEvent.actor).where(AuditEvent.action == "backup.restore")) == "cli"
        db.session.remove()
        db.engine.dispose()


def test_the_backup_file_is_private_and_prints_its_path_last(cli, tmp_path):
    result = cli.invoke(args=["backup", "create", "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    path = Path(result.output.strip().splitlines()[-1])
    assert path.parent == tmp_path / "out" and path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in (tmp_path / "out").iterdir()] == [path.name]  # no work files left behind


def test_a_secret_key_from_the_environment_is_named_as_missing_from_the_backup(cli, tmp_path):
    result = cli.invoke(args=["backup", "create", "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "SECRET_KEY is NOT in this backup" in result.output
    with tarfile.open(result.output.strip().splitlines()[-1]) as tar:
        assert "secret_key" not in tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert manifest["secret_key"]["included"] is False
    assert "SECRET_KEY" in manifest["secrets_at_rest"]


@pytest.mark.app_config(SECRET_KEY=None)
def test_the_generated_secret_key_travels_with_the_backup_so_mailbox_passwords_still_read(
        app, cli, new_instance, tmp_path):
    assert (Path(app.instance_path) / "secret_key").is_file()
    box = mailbox_with_password()
    file = backup(cli, tmp_path / "b")
    with tarfile.open(file) as tar:
        assert json.loads(tar.extractfile("manifest.json").read())["secret_key"] == {"included": True,
                                                                                     "member": "secret_key"}
        assert tar.extractfile("secret_key").read() == (Path(app.instance_path) / "secret_key").read_bytes()
    fresh = new_instance("fresh", SECRET_KEY=None)
    assert (Path(fresh.instance_path) / "secret_key").read_text() != (Path(app.instance_path) / "secret_key").read_text()
    result = restore(fresh, file)
    assert result.exit_code == 0, result.output
    assert "secret key restored" in result.output
    assert (Path(fresh.instance_path) / "secret_key").read_text() == (Path(app.instance_path) / "secret_key").read_text()
    restarted = build_app(Path(fresh.instance_path), fresh.config["DATABASE_URL"], SECRET_KEY=None)
    with restarted.app_context():
        assert decrypt(db.session.get(Mailbox, box).password_enc) == "hasło-skrzynki"
        db.session.remove()
        db.engine.dispose()


def mailbox_with_password() -> int:
    from app.accounts.mailboxes import create_mailbox

    box = create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host="smtp.shop.example", smtp_port=587,
                         smtp_security="starttls", username="serwis", password="hasło-skrzynki")
    db.session.commit()
    return box.id


def test_a_shop_with_data_is_not_overwritten_without_force(app, cli, tmp_path):
    create_customer(name="Jan Kowalski", email="jan@example.com")
    db.session.commit()
    file = backup(cli, tmp_path)
    create_customer(name="Ewa Nowak", email="ewa@example.com")
    db.session.commit()

    refused = cli.invoke(args=["backup", "restore", str(file)])
    assert refused.exit_code == 1
    assert "already holds a shop" in refused.output and "--force" in refused.output
    db.session.remove()
    assert sorted(db.session.scalars(select(Customer.name))) == ["Ewa Nowak", "Jan Kowalski"]

    forced = cli.invoke(args=["backup", "restore", str(file), "--force"])
    assert forced.exit_code == 0, forced.output
    db.session.remove()
    assert list(db.session.scalars(select(Customer.name))) == ["Jan Kowalski"]


def repack(file: Path, target: Path, change) -> Path:
    """A copy of the backup with `change(name, data) -> data` applied to each member."""
    with tarfile.open(file) as tar, tarfile.open(target, "w:gz") as out:
        for member in tar:
            data = change(member.name, tar.extractfile(member).read())
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    return target


def manifest_changed(**changes):
    def change(name, data):
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        for key, value in changes.items():
            if key == "kind":
                manifest["database"]["kind"] = value
            else:
                manifest[key] = value
        return json.dumps(manifest).encode()
    return change


@pytest.mark.parametrize("damage, message", [
    (lambda file, tmp: repack(file, tmp / "flipped.tar.gz", lambda name, data: data[:-1] + bytes([data[-1] ^ 1])
                              if name.startswith("database/") else data), "checksum mismatch"),
    (lambda file, tmp: (tmp / "cut.tar.gz").write_bytes(file.read_bytes()[: file.stat().st_size // 2])
     and tmp / "cut.tar.gz", "not a readable backup file"),
    (lambda file, tmp: repack(file, tmp / "future.tar.gz", manifest_changed(revision="9999_from_the_future")),
     "update the app first"),
    (lambda file, tmp: repack(file, tmp / "format.tar.gz", manifest_changed(format_version=99)),
     "newer version"),
    (lambda file, tmp: repack(file, tmp / "nomanifest.tar.gz",
                              lambda name, data: data if name != "manifest.json" else b"{not json"),
     "manifest is damaged"),
], ids=["flipped-byte", "truncated", "newer-schema", "newer-format", "broken-manifest"])
def test_a_damaged_or_newer_backup_is_refused_before_anything_is_touched(app, cli, new_instance, tmp_path, damage,
                                                                         message):
    create_customer(name="Jan Kowalski", email="jan@example.com")
    db.session.commit()
    file = damage(backup(cli, tmp_path / "b"), tmp_path)
    fresh = new_instance("fresh")
    result = restore(fresh, file)
    assert result.exit_code == 1
    assert message in result.output
    with fresh.app_context():
        with db.engine.connect() as connection:
            assert inspect(connection).get_table_names() == []  # not even migrated
        assert not storage_root().exists()


def test_a_backup_of_another_kind_of_database_is_refused(app, cli, new_instance, tmp_path):
    file = backup(cli, tmp_path / "b")
    other = "postgresql" if db.engine.dialect.name == "sqlite" else "sqlite"
    result = restore(new_instance("fresh"), repack(file, tmp_path / "other.tar.gz", manifest_changed(kind=other)))
    assert result.exit_code == 1
    assert f"holds a {other} database" in result.output


# ---------------------------------------------------------------- the daily job


def test_the_daily_backup_is_off_without_a_directory(app):
    assert [func.__name__ for func, _trigger in JOBS].count("daily_backup") == 1
    assert daily_backup() is None


def test_the_daily_backup_keeps_the_newest_files_and_skips_a_day_already_backed_up(app, tmp_path):
    directory = tmp_path / "backups"
    directory.mkdir()
    for stamp in ("20261101T020000Z", "20261102T020000Z", "20261103T020000Z"):
        (directory / f"repair-inbox-backup-{stamp}.tar.gz").write_bytes(b"old")
    (directory / "notes.txt").write_text("not ours")
    (directory / ".backup-killed").mkdir()  # the work files of a backup whose process was killed
    (directory / ".backup-killed" / "database").write_bytes(b"half")
    app.config.update(BACKUP_DIR=str(directory), BACKUP_KEEP=2)

    made = daily_backup()
    assert made is not None and made.parent == directory
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["notes.txt", "repair-inbox-backup-20261103T020000Z.tar.gz", made.name])
    assert daily_backup() is None  # one a day
    assert daily_backup(now=utcnow() + timedelta(days=1)) is not None
    assert len([p for p in directory.iterdir() if p.name.startswith("repair-inbox")]) == 2


def test_two_processes_running_the_daily_backup_make_one(app, tmp_path):
    app.config.update(BACKUP_DIR=str(tmp_path / "backups"))
    assert leases.acquire(LEASE, "other-process", timedelta(hours=1))  # the other process is backing up
    assert daily_backup() is None
    assert not (tmp_path / "backups").exists()
    leases.release(LEASE, "other-process")
    assert daily_backup() is not None


# ---------------------------------------------------------------- Settings → Backups


def test_staff_cannot_see_make_or_download_backups(app, staff_client, tmp_path):
    directory = tmp_path / "backups"
    directory.mkdir()
    app.config["BACKUP_DIR"] = str(directory)
    (directory / "repair-inbox-backup-20261101T020000Z.tar.gz").write_bytes(b"secret")
    token = csrf_token(staff_client, "/")
    assert staff_client.get("/settings/backups/").status_code == 403
    assert staff_client.post("/settings/backups/", data={"csrf_token": token}).status_code == 403
    assert staff_client.get("/settings/backups/repair-inbox-backup-20261101T020000Z.tar.gz").status_code == 403
    assert len(list(directory.iterdir())) == 1


def test_the_owner_sees_that_backups_are_off(owner_client):
    page = owner_client.get("/settings/backups/")
    assert page.status_code == 200
    assert "BACKUP_DIR" in page.get_data(as_text=True)
    assert "Back up now" not in page.get_data(as_text=True)
    assert "/settings/backups/" in owner_client.get("/settings/").get_data(as_text=True)


def test_the_owner_backs_up_now_and_downloads_the_file(app, owner, owner_client, tmp_path):
    directory = tmp_path / "backups"
    app.config.update(BACKUP_DIR=str(directory), BACKUP_KEEP=3)
    page = owner_client.get("/settings/backups/").get_data(as_text=True)
    assert "No backup yet." in page and str(directory) in page and "Back up now" in page

    assert owner_client.post("/settings/backups/").status_code == 400  # no CSRF token
    assert not directory.exists()
    response = owner_client.post("/settings/backups/", data={"csrf_token": csrf_token(owner_client, "/settings/backups/")})
    assert response.status_code == 302
    [file] = directory.iterdir()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    page = owner_client.get("/settings/backups/").get_data(as_text=True)
    assert f"Backup {file.name} made." in page and file.name in page and "No backup yet." not in page
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "backup.create"))
    assert event.user_id == owner.id and event.details["file"] == file.name

    download = owner_client.get(f"/settings/backups/{file.name}")
    assert download.status_code == 200
    assert "no-store" in download.headers["Cache-Control"]
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.is_streamed
    assert download.get_data() == file.read_bytes()
    download.close()
    for name in ("..%2F..%2Fsecret_key", "repair-inbox-backup-20991231T000000Z.tar.gz", "manifest.json"):
        assert owner_client.get(f"/settings/backups/{name}").status_code == 404


def test_a_backup_of_an_older_version_is_migrated_to_this_ones_schema(new_instance, tmp_path):
    from flask_migrate import upgrade

    old = new_instance("old-version")
    with old.app_context():
        upgrade(revision="0004")
        # The rows as that version wrote them: today's models have columns its schema does not.
        db.session.execute(text(
            "INSERT INTO customers (name, email, crm_note, sms_informational, marketing_consent, panel_state,"
            " panel_session_version, created_at, updated_at) VALUES ('Jan Kowalski', 'jan@example.com', '', true,"
            " false, 'none', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        db.session.commit()
        file = backup(old.test_cli_runner(), tmp_path / "b")
        db.session.remove()
        db.engine.dispose()
    assert json.loads(tarfile.open(file).extractfile("manifest.json").read())["revision"] == "0004"

    fresh = new_instance("fresh")
    result = restore(fresh, file)
    assert result.exit_code == 0, result.output
    with fresh.app_context():
        script = ScriptDirectory.from_config(fresh.extensions["migrate"].migrate.get_config())
        assert db.session.scalar(text("SELECT version_num FROM alembic_version")) == script.get_current_head()
        assert list(db.session.scalars(select(Customer.name))) == ["Jan Kowalski"]
        db.session.remove()
        db.engine.dispose()


@pytest.mark.app_config(SECRET_KEY=None)
def test_restoring_a_key_under_a_secret_key_from_the_environment_says_it_is_overridden(cli, new_instance, tmp_path):
    file = backup(cli, tmp_path / "b")
    result = restore(new_instance("fresh", SECRET_KEY="set-in-the-environment"), file)
    assert result.exit_code == 0, result.output
    assert "overrides instance/secret_key" in result.output


def test_a_failed_daily_backup_is_shown_to_the_owner_until_one_succeeds(app, owner_client, tmp_path, monkeypatch):
    from app import backups

    directory = tmp_path / "backups"
    app.config["BACKUP_DIR"] = str(directory)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(backups, "create_backup", disk_full)
        with pytest.raises(OSError):
            daily_backup()
    page = owner_client.get("/settings/backups/").get_data(as_text=True)
    assert "The last backup failed" in page and "No space left on device" in page
    assert leases.acquire(LEASE, "someone", timedelta(hours=1))  # the failed run gave the lease back
    leases.release(LEASE, "someone")

    assert daily_backup() is not None
    assert "The last backup failed" not in owner_client.get("/settings/backups/").get_data(as_text=True)
