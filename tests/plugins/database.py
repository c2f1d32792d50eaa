"""The database of this run: TEST_DATABASE=sqlite (default) or postgresql (TEST_POSTGRES_URL or a throwaway
cluster), a migrated template copied into a fresh database per test (`database_url`), and an empty one for the
migration tests (`empty_database_url`, and `empty_app` on it)."""
from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from app.extensions import db as _db
from helpers import build_app, free_port


@dataclass(frozen=True)
class DatabaseChoice:
    """The database of this run, decided at start-up so the report header can name it.

    TEST_DATABASE=sqlite (default) or postgresql; for PostgreSQL either a server given by TEST_POSTGRES_URL
    or a throwaway cluster from the local server binaries on a free loopback port.
    """

    kind: str
    external_url: str | None = None
    bindir: Path | None = None
    version: str | None = None
    port: int | None = None

    @property
    def is_postgresql(self) -> bool:
        return self.kind == "postgresql"

    def describe(self) -> str:
        if not self.is_postgresql:
            return "SQLite"
        if self.external_url:
            url = make_url(self.external_url)
            return f"PostgreSQL (TEST_POSTGRES_URL, {url.host}:{url.port or 5432})"
        return f"PostgreSQL {self.version} (throwaway cluster on 127.0.0.1:{self.port})"


DATABASE_CHOICE = pytest.StashKey[DatabaseChoice]()


def _choose_database() -> DatabaseChoice:
    """Read TEST_DATABASE; refuses unknown values and PostgreSQL runs without a server to use."""
    kind = os.environ.get("TEST_DATABASE", "sqlite").strip().lower()
    if kind == "sqlite":
        return DatabaseChoice("sqlite")
    if kind != "postgresql":
        raise pytest.UsageError(f"TEST_DATABASE must be 'sqlite' or 'postgresql', not {kind!r}")
    if os.environ.get("TEST_POSTGRES_URL"):
        return DatabaseChoice("postgresql", external_url=os.environ["TEST_POSTGRES_URL"])
    bindir = _postgres_bindir()
    if bindir is None:
        raise pytest.UsageError(
            "TEST_DATABASE=postgresql needs the PostgreSQL server binaries (apt-get install postgresql) "
            "or a server in TEST_POSTGRES_URL"
        )
    version_line = subprocess.run([bindir / "pg_ctl", "--version"], capture_output=True, text=True).stdout
    version = re.search(r"\d+", version_line).group()
    return DatabaseChoice("postgresql", bindir=bindir, version=version, port=free_port())


def _postgres_bindir() -> Path | None:
    """Debian keeps the server binaries out of PATH, one directory per major version: take the newest."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if candidates:
        return candidates[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def pytest_configure(config):
    config.stash[DATABASE_CHOICE] = _choose_database()


def pytest_report_header(config):
    return f"database: {config.stash[DATABASE_CHOICE].describe()}"


def _ram_disk() -> str | None:
    """/dev/shm when it has room: CREATE DATABASE from the template takes ~20 ms there against ~0.5 s on disk."""
    try:
        stats = os.statvfs("/dev/shm")
    except OSError:
        return None
    roomy = stats.f_bavail * stats.f_frsize >= 1 << 30  # Docker's default 64 MB would run out
    return "/dev/shm" if roomy and os.access("/dev/shm", os.W_OK) else None


class PostgresCluster:
    """A throwaway PostgreSQL server: a new data directory in a temp dir, a loopback port, no durability."""

    def __init__(self, bindir: Path, port: int):
        self.bindir = bindir
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="ri-pg-", dir=_ram_disk()))
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self.running = False

    def start(self) -> None:
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to the postgres account
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
        data = self.root / "data"
        self._run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", data, "-l", self.root / "server.log", "-w", "-o", options, "start")
        self.running = True

    def stop(self) -> None:
        """Stop the server and delete its files; safe to call again (the fixture and the atexit guard both do)."""
        try:
            if self.running:
                self.running = False
                self._run("pg_ctl", "-D", self.root / "data", "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args) -> None:
        command = [str(self.bindir / tool), *map(str, args)]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            log = self.root / "server.log"
            raise RuntimeError(
                f"{' '.join(command)} failed with exit code {result.returncode}\n{result.stdout}{result.stderr}"
                + (log.read_text() if log.exists() else "")
            )


class SQLiteDatabases:
    """Databases as files: a migrated one is a copy of the template file."""

    def __init__(self, root: Path):
        self.template_url = f"sqlite:///{root / 'template.db'}"

    def create(self, directory: Path, migrated: bool = True) -> str:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "repair-inbox.db"
        if migrated:
            shutil.copy(make_url(self.template_url).database, path)
        return f"sqlite:///{path}"

    def drop(self, url: str) -> None:
        """Nothing to do: the file lives in the test's tmp_path."""

    def close(self) -> None:
        """Nothing to do: the template lives in the run's temp dir."""


class PostgresDatabases:
    """Databases on one PostgreSQL server: a migrated one is CREATE DATABASE ... TEMPLATE ri_template."""

    TEMPLATE = "ri_template"

    def __init__(self, server_url: str):
        import psycopg

        url = make_url(server_url).set(drivername="postgresql")
        self._server = url.set(database=url.database or "postgres")
        self._admin = psycopg.connect(self._url(self._server.database), autocommit=True)
        self._execute("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.TEMPLATE)
        self._execute("CREATE DATABASE {}", self.TEMPLATE)
        self.template_url = self._url(self.TEMPLATE)
        # Copying the template's files beats WAL-logging every page (the default since PostgreSQL 15).
        self._strategy = " STRATEGY = FILE_COPY" if self._admin.info.server_version >= 150000 else ""

    def create(self, directory: Path, migrated: bool = True) -> str:
        name = f"t_{uuid.uuid4().hex}"
        if migrated:
            self._execute("CREATE DATABASE {} TEMPLATE {}" + self._strategy, name, self.TEMPLATE)
        else:
            self._execute("CREATE DATABASE {}", name)
        return self._url(name)

    def drop(self, url: str) -> None:
        self._execute("DROP DATABASE IF EXISTS {} WITH (FORCE)", make_url(url).database)

    def close(self) -> None:
        self._execute("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.TEMPLATE)
        self._admin.close()

    def _url(self, name: str) -> str:
        return self._server.set(database=name).render_as_string(hide_password=False)

    def _execute(self, statement: str, *names: str) -> None:
        from psycopg import sql

        self._admin.execute(sql.SQL(statement).format(*map(sql.Identifier, names)))


def _migrate(database_url: str, instance: Path) -> None:
    from flask_migrate import upgrade

    app = build_app(instance, database_url)
    with app.app_context():
        upgrade()
        # A fresh shop gets ready-made templates (migration 0008); tests start from a shop without any, as a shop
        # that removed them, and test_starter_templates.py checks a freshly migrated database on its own.
        _db.session.execute(_db.text("DELETE FROM status_notifications"))
        _db.session.execute(_db.text("DELETE FROM message_templates"))
        _db.session.commit()
        _db.engine.dispose()


@pytest.fixture(scope="session")
def databases(pytestconfig, tmp_path_factory):
    """The run's database server with the migrated template ready to copy; torn down at the end of the run."""
    choice = pytestconfig.stash[DATABASE_CHOICE]
    cluster = backend = None
    try:
        if not choice.is_postgresql:
            backend = SQLiteDatabases(tmp_path_factory.mktemp("databases"))
        else:
            server_url = choice.external_url
            if server_url is None:
                cluster = PostgresCluster(choice.bindir, choice.port)
                atexit.register(cluster.stop)  # in case the run dies before this fixture's teardown
                cluster.start()
                server_url = cluster.url
            backend = PostgresDatabases(server_url)
        _migrate(backend.template_url, tmp_path_factory.mktemp("template-instance"))
        yield backend
    finally:
        try:
            if backend is not None:
                backend.close()
        finally:
            if cluster is not None:
                cluster.stop()
                atexit.unregister(cluster.stop)


@pytest.fixture
def database_url(databases, tmp_path):
    """A freshly migrated database of this run's kind for one test, dropped afterwards."""
    url = databases.create(tmp_path / "instance")
    yield url
    databases.drop(url)


@pytest.fixture
def empty_database_url(databases, tmp_path):
    """A brand-new database without any tables (for testing the migrations themselves)."""
    url = databases.create(tmp_path / "empty", migrated=False)
    yield url
    databases.drop(url)


@pytest.fixture
def empty_app(tmp_path, empty_database_url):
    """The app on a brand-new database that has no tables at all."""
    app = build_app(tmp_path / "instance", empty_database_url)
    with app.app_context():
        yield app
        _db.session.remove()
        _db.engine.dispose()
