"""Backups of a shop: one file holding a consistent snapshot of the database, the stored files and the generated
secret key, and the restore that checks every byte of it before it touches anything.

The file is a gzipped tar. `manifest.json`, its last member, names the format, the migration the database was
at, when it was made, the database's kind, the row count of every table and the SHA-256 of every other member.
The database is copied while the shop runs: SQLite with its online backup API (one step, so the copy is one
moment of the database), PostgreSQL with `pg_dump` in its custom format, whose snapshot the row counts share.
The database is copied before the files, so every file the copy refers to is there. Files kept in the database
(ATTACHMENT_STORAGE=database) travel inside its copy, in the same moment as the rows that use them; files on disk
are added as attachments/xx/<sha256> members, whichever store is configured, so a shop part way through
`flask files move` is backed up whole.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from flask import current_app
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from .attachments import storage_root
from .extensions import db
from . import leases
from .models import utcnow

FORMAT = "repair-inbox-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SECRET_KEY_MEMBER = "secret_key"
NAME = re.compile(r"^repair-inbox-backup-(\d{8}T\d{6}Z)(?:-(\d+))?\.tar\.gz$")
FAILURE = ".last-failure.json"  # in the backup directory while the last backup there failed
LEASE = "backup"
LEASE_TTL = timedelta(hours=3)  # longer than any backup takes; a dead run's lease is taken over after it
DAILY = timedelta(hours=23)  # the daily job makes a backup when the newest one is older than this
# A shop "has data" when any of these has a row; a new instance has none (the migrations only add settings).
DATA_TABLES = ("users", "customers", "threads", "messages", "mailboxes", "inbound_items", "repairs")
CHUNK = 1024 * 1024
_STORED = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}$")
SECRETS_AT_REST = ("Mail and SMS passwords, OAuth tokens and client secrets are encrypted with a key derived from "
                   "SECRET_KEY: without that key, restored secrets cannot be read and must be entered again.")


class BackupRefused(Exception):
    """A backup cannot be made or restored; the message says why, in words for the shop's owner."""


@dataclass(frozen=True)
class BackupFile:
    path: Path
    created_at: datetime
    size: int

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Outcome:
    """What a backup or restore did, and what its user must know (lines to show, last the file's path)."""

    path: Path
    manifest: dict
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- the files in a backup directory


def configured_dir() -> Path | None:
    """BACKUP_DIR, or None when the daily backup is off."""
    value = current_app.config.get("BACKUP_DIR")
    return Path(value).expanduser() if value else None


def keep_count() -> int:
    return max(1, int(current_app.config.get("BACKUP_KEEP") or 7))


def list_backups(directory: Path | None) -> list[BackupFile]:
    """The backup files in `directory`, newest first (files of other names are not ours and are left alone)."""
    if directory is None or not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = NAME.match(path.name)
        if match and path.is_file():
            created = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
            found.append((created, int(match.group(2) or 0), BackupFile(path, created, path.stat().st_size)))
    return [item for *_order, item in sorted(found, key=lambda entry: entry[:2], reverse=True)]


def find_backup(directory: Path | None, name: str) -> BackupFile | None:
    """The backup called `name` in `directory`, or None: only names the listing shows, never a path."""
    return next((backup for backup in list_backups(directory) if backup.name == name), None)


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups in `directory`; returns what was deleted."""
    removed = []
    for backup in list_backups(directory)[keep:]:
        backup.path.unlink(missing_ok=True)
        removed.append(backup.path)
    return removed


# ---------------------------------------------------------------- making a backup


class _Hashing:
    """A file read through SHA-256, for tarfile.addfile."""

    def __init__(self, fh):
        self._fh, self.sha = fh, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.sha.update(data)
        return data


def create_backup(directory: Path, now: datetime | None = None) -> Outcome:
    """Write one backup file into `directory` (mode 0600) and return its path and manifest.

    Safe while the shop runs: the database is copied as one moment of it. Raises BackupRefused when the
    database cannot be copied (e.g. pg_dump missing).
    """
    now = now or utcnow()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    kind = db.engine.dialect.name
    if kind not in ("sqlite", "postgresql"):
        raise BackupRefused(f"backups support SQLite and PostgreSQL, not {kind}")
    with tempfile.TemporaryDirectory(dir=directory, prefix=".backup-") as work:
        work = Path(work)
        if kind == "sqlite":
            database_member = "database/repair-inbox.sqlite3"
            revision, counts, tool = _sqlite_snapshot(work / "database")
        else:
            database_member = "database/repair-inbox.pgdump"
            revision, counts, tool = _postgres_snapshot(work / "database")
        secret = _secret_key_source()
        fallbacks = len(current_app.config.get("SECRET_KEY_FALLBACKS") or [])
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": now.astimezone(timezone.utc).isoformat(),
            "revision": revision,
            "database": {"kind": kind, "member": database_member, "tool": tool},
            "counts": counts,
            "secret_key": secret,
            "secret_key_fallbacks": {"count": fallbacks, "included": False},
            "secrets_at_rest": SECRETS_AT_REST,
        }
        files = {database_member: work / "database"}
        if secret["included"]:
            files[SECRET_KEY_MEMBER] = Path(current_app.instance_path) / "secret_key"
        archive = work / "backup.tar.gz"
        _write_archive(archive, files, manifest, now)
        final = _publish(archive, directory, now)
    notes = [] if secret["included"] else ["SECRET_KEY is NOT in this backup: " + secret["reason"]]
    if fallbacks:
        notes.append(f"SECRET_KEY_FALLBACKS ({fallbacks} old keys) are NOT in this backup; keep them with "
                     "SECRET_KEY, as secrets written before a key change still need them.")
    return Outcome(final, manifest, notes)


def _write_archive(archive: Path, files: dict[str, Path], manifest: dict, now: datetime) -> None:
    """The tar: `files`, then every stored file, then the manifest with all their checksums; synced to disk."""
    members: dict[str, dict] = {}
    fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
            for name, path in files.items():
                _add(tar, name, path, members)
            count = total = 0
            root = storage_root()
            for path in sorted(root.rglob("*")) if root.is_dir() else []:
                # Only stored files (xx/<sha256>): not .upload-* files still arriving, nor anything foreign.
                relative = path.relative_to(root).as_posix()
                if _STORED.match(relative) and path.is_file():
                    try:
                        _add(tar, "attachments/" + relative, path, members)
                    except FileNotFoundError:  # erased since it was listed
                        continue
                    count, total = count + 1, total + members["attachments/" + relative]["size"]
            in_database = manifest["counts"].get("stored_blobs", 0)
            manifest.update(attachments={"files": count + in_database, "bytes": total, "on_disk": count,
                                         "in_database": in_database}, members=members)
            body = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(body), int(now.timestamp()), 0o600
            tar.addfile(info, io.BytesIO(body))
        raw.flush()
        os.fsync(raw.fileno())


def _add(tar: tarfile.TarFile, name: str, path: Path, members: dict) -> None:
    with open(path, "rb") as fh:
        stat = os.fstat(fh.fileno())
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o600
        reader = _Hashing(fh)
        tar.addfile(info, reader)
    members[name] = {"sha256": reader.sha.hexdigest(), "size": stat.st_size}


def _publish(archive: Path, directory: Path, now: datetime) -> Path:
    """Give the finished file its name (never replacing another backup) and return it."""
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for number in range(1000):
        final = directory / (f"repair-inbox-backup-{stamp}" + (f"-{number}" if number else "") + ".tar.gz")
        try:
            os.link(archive, final)
        except FileExistsError:
            continue
        os.chmod(final, 0o600)
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)  # the new name survives a power cut too
        finally:
            os.close(directory_fd)
        return final
    raise BackupRefused(f"too many backups named {stamp} in {directory}")


def _secret_key_source() -> dict:
    """Whether the app secret is the generated instance/secret_key (then it goes into the backup) or set from
    outside (then the shop must keep it itself)."""
    path = Path(current_app.instance_path) / "secret_key"
    if path.is_file() and path.read_text().strip() == current_app.config["SECRET_KEY"]:
        return {"included": True, "member": SECRET_KEY_MEMBER}
    return {"included": False,
            "reason": "it is set in the environment or instance/config.py. Keep a copy of it apart from the backup: "
                      "restored mail and SMS passwords can only be read with it."}


def secret_key_included() -> bool:
    """Whether backups carry the app secret (it is the generated instance/secret_key)."""
    return _secret_key_source()["included"]


def _table_names(connection) -> list[str]:
    return sorted(inspect(connection).get_table_names())


def _counts(connection) -> dict[str, int]:
    preparer = connection.dialect.identifier_preparer
    return {name: connection.execute(text(f"SELECT count(*) FROM {preparer.quote(name)}")).scalar_one()
            for name in _table_names(connection)}


def _revision(connection) -> str | None:
    if "alembic_version" not in _table_names(connection):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _sqlite_path() -> Path:
    return Path(make_url(current_app.config["SQLALCHEMY_DATABASE_URI"]).database)


def _sqlite_snapshot(target: Path) -> tuple[str | None, dict[str, int], str]:
    """Copy the live SQLite database with its online backup API, in one step: one moment of the database, and
    writers are not held up (WAL)."""
    source = sqlite3.connect(_sqlite_path(), timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        source.close()
    try:
        names = [row[0] for row in copy.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        # Tables of the full-text index (thread_search_data ...) are part of it; counting the virtual table
        # itself needs its module, which SQLite has built in.
        counts = {name: copy.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}
        revision = copy.execute("SELECT version_num FROM alembic_version").fetchone() if "alembic_version" in counts \
            else None
    finally:
        copy.close()
    os.chmod(target, 0o600)
    return (revision[0] if revision else None), counts, f"sqlite3 {sqlite3.sqlite_version} online backup"


def postgres_tool(name: str) -> str:
    """A PostgreSQL client program: from POSTGRES_BIN_DIR, else the newest of Debian's
    /usr/lib/postgresql/*/bin (a newer pg_dump reads older servers, not the reverse), else PATH."""
    configured = current_app.config.get("POSTGRES_BIN_DIR")
    if configured:
        candidate = Path(configured) / name
        if candidate.is_file():
            return str(candidate)
        raise BackupRefused(f"{name} not found in POSTGRES_BIN_DIR ({configured})")
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if versions:
        return str(versions[-1])
    found = shutil.which(name)
    if not found:
        raise BackupRefused(f"{name} not found: install the PostgreSQL client (apt-get install postgresql-client) "
                            "or set POSTGRES_BIN_DIR")
    return found


def _libpq_target() -> tuple[str, dict[str, str]]:
    """The database's address for libpq programs, and their environment: the password goes in PGPASSWORD,
    never on a command line other users of the machine can read."""
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode:
        raise BackupRefused(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")


def _postgres_snapshot(target: Path) -> tuple[str | None, dict[str, int], str]:
    """pg_dump in custom format from a snapshot exported by our own transaction, so the row counts in the
    manifest are those of the dump."""
    pg_dump = postgres_tool("pg_dump")
    address, env = _libpq_target()
    version = subprocess.run([pg_dump, "--version"], capture_output=True, text=True).stdout.strip()
    with db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
        snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        counts, revision = _counts(connection), _revision(connection)
        _run([pg_dump, "--format=custom", "--no-owner", "--no-acl", f"--snapshot={snapshot}",
              f"--file={target}", f"--dbname={address}"], env, "pg_dump")
        connection.rollback()
    os.chmod(target, 0o600)
    return revision, counts, version


# ---------------------------------------------------------------- the daily backup


def daily_backup(now: datetime | None = None) -> Path | None:
    """The scheduler's job: when BACKUP_DIR is set and its newest backup is older than a day, make one and keep
    the newest BACKUP_KEEP. Runs under a lease, so of two processes running the job only one backs up."""
    directory = configured_dir()
    if directory is None:
        return None
    now = now or utcnow()
    existing = list_backups(directory)
    if existing and now - existing[0].created_at < DAILY:
        return None
    outcome = backup_under_lease(directory, now, daily=True, keep=keep_count())
    if outcome is None:
        return None
    current_app.logger.info("daily backup written to %s", outcome.path)
    return outcome.path


def backup_under_lease(directory: Path, now: datetime | None = None, *, daily: bool = False,
                       keep: int | None = None) -> Outcome | None:
    """Make a backup unless another process is making one (then None); with `keep`, keep only the newest `keep`
    backups of `directory` afterwards. `daily`: skip when the newest backup is less than a day old."""
    owner = leases.new_owner()
    db.session.rollback()  # acquire() commits: nothing of the caller's may ride along
    if not leases.acquire(LEASE, owner, LEASE_TTL):
        return None
    try:
        _remove_leftovers(directory)
        existing = list_backups(directory)
        if daily and existing and (now or utcnow()) - existing[0].created_at < DAILY:
            return None  # the other process finished one while we waited for the lease
        try:
            outcome = create_backup(directory, now)
        except Exception as exc:
            _record_failure(directory, exc, now or utcnow())
            raise
        (directory / FAILURE).unlink(missing_ok=True)
        if keep:
            prune(directory, keep)
        return outcome
    finally:
        leases.release(LEASE, owner)


def _record_failure(directory: Path, exc: Exception, now: datetime) -> None:
    """Keep why the last backup failed beside the backups, for the owner's page (the log has the details)."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        (directory / FAILURE).write_text(json.dumps({"at": now.isoformat(), "error": str(exc)[:500]}))
    except OSError:
        pass  # a directory that cannot be written to: the error itself says so in the log


def last_failure(directory: Path | None) -> tuple[datetime, str] | None:
    """When the last backup into `directory` failed and why, unless one has succeeded since."""
    try:
        recorded = json.loads((directory / FAILURE).read_text()) if directory else None
        return (datetime.fromisoformat(recorded["at"]), str(recorded["error"])) if recorded else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remove_leftovers(directory: Path) -> None:
    """Work files of a backup whose process was killed; under the lease nobody else is writing them."""
    if directory.is_dir():
        for path in directory.glob(".backup-*"):
            shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- restoring


_MEMBER = re.compile(r"^(database/repair-inbox\.(sqlite3|pgdump)|attachments/[0-9a-f]{2}/[0-9a-f]{64}|secret_key)$")


def read_backup(path: Path, work: Path) -> dict:
    """Unpack `path` into `work` and check it whole: every member named in the manifest with its SHA-256, no
    other member, every stored file named by its own hash. Returns the manifest; BackupRefused otherwise."""
    seen: dict[str, str] = {}
    manifest_bytes = None
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for member in tar:
                if member.name in seen or (member.name == MANIFEST and manifest_bytes is not None):
                    raise BackupRefused(f"{member.name} appears twice in the backup")
                if not member.isfile():
                    raise BackupRefused(f"unexpected entry {member.name!r} in the backup")
                source = tar.extractfile(member)
                if member.name == MANIFEST:
                    manifest_bytes = source.read(16 * 1024 * 1024)
                    continue
                if not _MEMBER.match(member.name):
                    raise BackupRefused(f"unexpected entry {member.name!r} in the backup")
                target = work / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                seen[member.name] = digest.hexdigest()
    except BackupRefused:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BackupRefused(f"{path} is not a readable backup file (damaged or incomplete): {exc}") from None
    if manifest_bytes is None:
        raise BackupRefused(f"{path} has no manifest: not a Repair Inbox backup, or an incomplete one")
    try:
        manifest = json.loads(manifest_bytes)
        members = manifest["members"]
        kind = manifest["database"]["kind"]
    except (ValueError, KeyError, TypeError):
        raise BackupRefused("the backup's manifest is damaged") from None
    if manifest.get("format") != FORMAT:
        raise BackupRefused(f"{path} is not a Repair Inbox backup")
    if not isinstance(manifest.get("format_version"), int) or manifest["format_version"] > FORMAT_VERSION:
        raise BackupRefused("this backup was made by a newer version of Repair Inbox: update the app first")
    if set(members) != set(seen):
        missing, extra = sorted(set(members) - set(seen)), sorted(set(seen) - set(members))
        raise BackupRefused(f"the backup is incomplete or altered (missing: {missing[:5]}, unlisted: {extra[:5]})")
    for name, digest in seen.items():
        if members[name].get("sha256") != digest:
            raise BackupRefused(f"checksum mismatch for {name}: the backup file is damaged")
        if name.startswith("attachments/") and name.rsplit("/", 1)[1] != digest:
            raise BackupRefused(f"checksum mismatch for {name}: the backup file is damaged")
    if kind not in ("sqlite", "postgresql") or manifest["database"].get("member") not in seen:
        raise BackupRefused("the backup's manifest is damaged")
    return manifest


def shop_has_data() -> bool:
    """Whether the database holds a shop (any staff, customer, thread, message, mailbox ...)."""
    with db.engine.connect() as connection:
        names = set(_table_names(connection))
        for table in DATA_TABLES:
            if table in names and connection.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first():
                return True
    return False


def _known_revision(revision: str | None) -> bool:
    from alembic.script import ScriptDirectory

    config = current_app.extensions["migrate"].migrate.get_config()
    script = ScriptDirectory.from_config(config)
    try:
        return revision is None or script.get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown or malformed revision
        return False


def restore_backup(path: Path, force: bool = False) -> Outcome:
    """Restore the backup `path` into this instance, then migrate the database to this app's head.

    Refuses (BackupRefused, nothing changed) a file that fails its checks, a backup of another kind of database
    or of a newer schema, and, unless `force`, an instance whose database already holds a shop.
    """
    path = Path(path)
    if not path.is_file():
        raise BackupRefused(f"{path}: no such file")
    instance = Path(current_app.instance_path)
    with tempfile.TemporaryDirectory(dir=instance, prefix=".restore-") as work:
        work = Path(work)
        manifest = read_backup(path, work)
        kind = db.engine.dialect.name
        if manifest["database"]["kind"] != kind:
            raise BackupRefused(f"this backup holds a {manifest['database']['kind']} database and this instance uses "
                                f"{kind}: restore it into an instance with the same kind of database")
        if not _known_revision(manifest.get("revision")):
            raise BackupRefused(f"the backup's database is at migration {manifest.get('revision')!r}, which this "
                                "version of Repair Inbox does not know (a newer version made it): update the app first")
        if not force and shop_has_data():
            raise BackupRefused("this instance already holds a shop; restoring would replace it. Run the restore "
                                "against an empty instance, or add --force to replace this shop's data")
        db.session.remove()
        db.engine.dispose()
        dump = work / manifest["database"]["member"]
        if kind == "sqlite":
            _restore_sqlite(dump)
        else:
            _restore_postgres(dump)
        db.engine.dispose()
        with db.engine.connect() as connection:
            restored = _counts(connection)
        different = {t: (n, restored.get(t)) for t, n in manifest["counts"].items() if restored.get(t) != n}
        if different:
            raise BackupRefused(f"the restored database differs from the backup's counts: {different}")
        if "leases" in restored:
            with db.engine.begin() as connection:  # their holders were processes of the old server
                connection.execute(text("DELETE FROM leases"))
        files = _restore_files(work / "attachments")
        counts = manifest["counts"]
        notes = [f"restored {counts.get('customers', 0)} customers, {counts.get('threads', 0)} threads, "
                 f"{counts.get('messages', 0)} messages and {files + counts.get('stored_blobs', 0)} files"]
        notes += _restore_secret_key(work, manifest)
    from flask_migrate import upgrade

    upgrade()
    notes.append("database migrated to this version's schema")
    return Outcome(path, manifest, notes)


def _restore_sqlite(copy: Path) -> None:
    """Write the copy over the instance's database with the backup API (the database's own WAL and locks stay
    right, unlike replacing the file under it)."""
    target = _sqlite_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    source = sqlite3.connect(copy)
    destination = sqlite3.connect(target, timeout=30)
    try:
        source.backup(destination)
    finally:
        source.close()
        destination.close()


# Removes everything the app's schema may hold (tables, views, sequences, functions, types) but what an
# extension owns, so the dump can be loaded as it was. Runs with the load in one transaction.
_WIPE_POSTGRES = """
DO $$
DECLARE item record;
BEGIN
  FOR item IN SELECT c.oid::regclass::text AS name, c.relkind FROM pg_class c
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e') LOOP
    EXECUTE format('DROP %s IF EXISTS %s CASCADE',
      CASE item.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                        WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, item.name);
  END LOOP;
  FOR item IN SELECT p.oid::regprocedure::text AS name, p.prokind FROM pg_proc p
      WHERE p.pronamespace = 'public'::regnamespace
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') LOOP
    EXECUTE format('DROP %s IF EXISTS %s CASCADE',
      CASE item.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, item.name);
  END LOOP;
  FOR item IN SELECT t.oid::regtype::text AS name FROM pg_type t
      WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'r', 'm')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e') LOOP
    EXECUTE format('DROP TYPE IF EXISTS %s CASCADE', item.name);
  END LOOP;
END $$;
"""


def _restore_postgres(dump: Path) -> None:
    """Turn the dump into SQL (pg_restore) and run it after the wipe in one transaction (psql): the database
    is either the backup's or, on any error, untouched."""
    address, env = _libpq_target()
    script = dump.with_suffix(".sql")
    _run([postgres_tool("pg_restore"), "--no-owner", "--no-acl", f"--file={script}", str(dump)], env, "pg_restore")
    wipe = dump.with_name("wipe.sql")
    wipe.write_text(_WIPE_POSTGRES)
    _run([postgres_tool("psql"), "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1",
          f"--dbname={address}", f"--file={wipe}", f"--file={script}"], env, "loading the database")


def _restore_files(unpacked: Path) -> int:
    """Move the backup's stored files into place; files already there with the same name are the same bytes."""
    if not unpacked.is_dir():
        return 0
    root = storage_root()
    count = 0
    for path in sorted(unpacked.rglob("*")):
        if path.is_file():
            target = root / path.relative_to(unpacked)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            count += 1
    return count


def _restore_secret_key(work: Path, manifest: dict) -> list[str]:
    if not manifest.get("secret_key", {}).get("included"):
        return ["the backup holds no secret key (SECRET_KEY came from the environment when it was made): set the "
                "same SECRET_KEY here, or the restored mail and SMS passwords cannot be read"]
    target = Path(current_app.instance_path) / "secret_key"
    key = (work / SECRET_KEY_MEMBER).read_text().strip()
    from_file = target.is_file() and target.read_text().strip() == current_app.config["SECRET_KEY"]
    tmp = target.with_name(".secret_key.restoring")
    tmp.unlink(missing_ok=True)
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
        fh.write(key)
    os.replace(tmp, target)
    notes = ["secret key restored into instance/secret_key"]
    if from_file:
        current_app.config["SECRET_KEY"] = key  # this process goes on with the shop's key too
    elif current_app.config["SECRET_KEY"] != key:
        notes.append("SECRET_KEY is set in this instance's environment or config.py and overrides "
                     "instance/secret_key: unset it, or the restored mail and SMS passwords cannot be read")
    return notes
