"""Shared fixtures: the database of this run (SQLite or PostgreSQL), the app on a freshly migrated database
per test, clients and signed-in staff, and for browser tests a live server and a headless Chromium."""
from __future__ import annotations

import atexit
import logging.config
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient
from jinja2 import BytecodeCache
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from app import create_app
from app.extensions import db as _db
from app.models import ApiToken, Shop, User
from app.models.users import hash_password

PASSWORD = "correct horse battery"
TEST_CONFIG = {
    "TESTING": True,
    "SCHEDULER_ENABLED": False,
    "SECRET_KEY": "test-secret",
    "PUBLIC_BASE_URL": "http://shop.example",
}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]
# Screenshots of failed browser tests land here (ignored by git), for CI logs and local debugging.
TEST_RESULTS = Path(__file__).resolve().parent.parent / "test-results"


# ---------------------------------------------------------------- which database this run uses


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
TEST_FAILED = pytest.StashKey[bool]()  # set when setup or call failed, so page fixtures can keep a screenshot


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


def free_port() -> int:
    """A loopback TCP port nothing listens on (right now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pytest_configure(config):
    config.stash[DATABASE_CHOICE] = _choose_database()


def pytest_report_header(config):
    return f"database: {config.stash[DATABASE_CHOICE].describe()}"


def pytest_collection_modifyitems(config, items):
    """Tests that use the browser are marked `browser`; a PostgreSQL run skips them."""
    postgresql = config.stash[DATABASE_CHOICE].is_postgresql
    skip = pytest.mark.skip(reason="browser tests run on SQLite only; the PostgreSQL run covers all below the browser")
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker("browser")
        if postgresql and item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and report.when in ("setup", "call"):
        item.stash[TEST_FAILED] = True
    return report


# ---------------------------------------------------------------- database servers and databases


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


class SharedTemplateCache(BytecodeCache):
    """Compiled templates shared by the run's apps: each app has its own Jinja environment, and compiling the
    templates of one page anew costs more than the rest of a test's setup. Jinja checks each template's source
    checksum, so an edited template is compiled again."""

    def __init__(self):
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self._code:
            bucket.bytecode_from_string(self._code[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CACHE = SharedTemplateCache()


def build_app(instance: Path, database_url: str, **overrides) -> Flask:
    """The app as tests run it: no scheduler, a fixed secret, the given database, then any overrides."""
    app = create_app({**TEST_CONFIG, "INSTANCE_PATH": str(instance), "DATABASE_URL": database_url, **overrides})
    app.jinja_env.bytecode_cache = TEMPLATE_CACHE
    return app


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


# ---------------------------------------------------------------- the app, users, clients


@pytest.fixture(scope="session", autouse=True)
def logging_left_to_pytest():
    """Migrations run in-process here, and Alembic's env.py then calls logging.config.fileConfig(alembic.ini),
    which disables every logger that exists (the app's module loggers: caplog would see nothing) and swaps the
    root logger's handlers. Tests leave logging as pytest set it up."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logging.config, "fileConfig", lambda *args, **kwargs: None)
        yield


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing():
    """Argon2id at minimal cost: the production parameters take ~0.4 s a hash, and most tests hash twice."""
    from argon2 import PasswordHasher

    from app.models import users

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        yield


def count_password_checks(monkeypatch) -> list[str]:
    """From now on, every password check (the hash checked against) is added to the returned list: a failed sign-in
    must do the same work whether or not the account exists, and this shows it without measuring time."""
    from argon2 import PasswordHasher

    from app.models import users

    calls: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash, password):  # noqa: A002  (argon2's own parameter name)
            calls.append(hash)
            return super().verify(hash, password)

    monkeypatch.setattr(users, "_hasher", CountingHasher(time_cost=1, memory_cost=1024, parallelism=1))
    return calls


class FreshGlobalsClient(FlaskClient):
    """Every request starts with an empty `g`, as in production.

    Requests reuse the app context the `app` fixture pushed (so they share the test's database session), and
    without this its `g` would carry the signed-in user, the shop and the locale over from the last request.
    """

    def open(self, *args, **kwargs):
        if has_app_context():
            for name in list(g):
                g.pop(name)
        return super().open(*args, **kwargs)


@pytest.fixture
def app(request, tmp_path, database_url):
    """The app on this test's own migrated database, with an app context pushed.

    `@pytest.mark.app_config(KEY=value, ...)` overrides settings for one test. The shop speaks English in
    tests so that assertions read plainly; `@pytest.mark.shop_locale("pl")` keeps the product's Polish.
    """
    marker = request.node.get_closest_marker("app_config")
    locale = request.node.get_closest_marker("shop_locale")
    app = build_app(tmp_path / "instance", database_url, **(marker.kwargs if marker else {}))
    app.test_client_class = FreshGlobalsClient
    with app.app_context():
        Shop.current().locale = locale.args[0] if locale else "en"
        _db.session.commit()
        yield app
        _db.session.remove()
        _db.engine.dispose()  # the database is dropped next; no pooled connection may hold it


@pytest.fixture
def client(app):
    return app.test_client()


def make_user(email: str, role: str = "staff", password: str = PASSWORD, name: str | None = None) -> User:
    """A committed staff account (role "staff" or "owner"); the name defaults to the e-mail's local part."""
    user = User(email=email, name=name or email.split("@")[0].title(), role=role, password_hash=hash_password(password))
    _db.session.add(user)
    _db.session.commit()
    return user


@pytest.fixture
def owner(app):
    return make_user("owner@shop.example", role="owner", name="Olga Owner")


@pytest.fixture
def staff(app):
    return make_user("staff@shop.example", role="staff", name="Stefan Staff")


def csrf_token(client, path: str = "/login", **request) -> str:
    """The CSRF token a page of the app hands out (from the body's hx-headers or a form).

    `request` goes to `client.get` (e.g. base_url="https://shop.example").
    """
    html = client.get(path, **request).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'"X-CSRFToken": "([^"]+)"', html
    )
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, user: User, password: str = PASSWORD, remember: bool = False, **request):
    """Sign in through the form and insist that it worked; `request` goes to both requests (base_url, headers)."""
    token = csrf_token(client, "/login", **request)
    data = {"email": user.email, "password": password, "csrf_token": token}
    if remember:
        data["remember"] = "y"
    response = client.post("/login", data=data, **request)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


@pytest.fixture
def api(client):
    """The test client with a valid API bearer token (issued to "erp")."""
    _row, plain = ApiToken.issue("erp")
    _db.session.commit()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {plain}"
    return client


@pytest.fixture
def owner_client(client, owner):
    sign_in(client, owner)
    return client


@pytest.fixture
def staff_client(client, staff):
    sign_in(client, staff)
    return client


# ---------------------------------------------------------------- live server and browser


class LiveServer:
    """The test's app served over real HTTP on a free loopback port, from a background thread."""

    def __init__(self, app: Flask):
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="live-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def live_server(app):
    """The same app (config and database) as the test's `app` fixture, reachable at `live_server.url`."""
    server = LiveServer(app)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the run: the system's package, never a Playwright download."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the chromium package (`make test` does)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=10_000)  # as patient as the pages' own default timeout, for busy CI machines
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@contextmanager
def _browser_page(browser, request, **context_options):
    """A page in a fresh browser context (own cookies); a failed test leaves a screenshot in test-results/."""
    from playwright.sync_api import Error as PlaywrightError

    context = browser.new_context(**context_options)
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        yield page
        if request.node.stash.get(TEST_FAILED, False):
            TEST_RESULTS.mkdir(exist_ok=True)
            try:
                page.screenshot(path=TEST_RESULTS / (re.sub(r"[^\w.-]+", "_", request.node.nodeid) + ".png"),
                                full_page=True)
            except PlaywrightError:
                pass  # a crashed page has nothing to show; the test's own error says what went wrong
    finally:
        context.close()


@pytest.fixture
def page(browser, request):
    """A desktop-sized page (1280x800)."""
    with _browser_page(browser, request, viewport={"width": 1280, "height": 800}) as page:
        yield page


@pytest.fixture
def phone_page(browser, request):
    """A phone-sized touch page (390x844), for layout checks."""
    with _browser_page(
        browser, request, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
        device_scale_factor=3,
    ) as page:
        yield page


def submit_sign_in(page, live_server: LiveServer, email: str, password: str):
    """Open the sign-in page, submit the form with these credentials and return the server's response to it."""
    page.goto(live_server.url + "/login")
    form = page.locator("form:has(input[name=password])")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(password)
    with page.expect_response(lambda r: r.request.method == "POST" and r.url == live_server.url + "/login") as answer:
        form.locator("button[type=submit]").click()
    return answer.value


def sign_in_browser(page, live_server: LiveServer, user: User, password: str = PASSWORD):
    """Sign in through the real sign-in page and wait until the top bar greets the user."""
    from playwright.sync_api import expect

    submit_sign_in(page, live_server, user.email, password)
    expect(page.locator(".topbar .whoami")).to_have_text(user.name)
    return page


@pytest.fixture
def owner_page(page, live_server, owner):
    """A desktop page signed in as the owner."""
    return sign_in_browser(page, live_server, owner)


@pytest.fixture
def staff_page(page, live_server, staff):
    """A desktop page signed in as a member of staff."""
    return sign_in_browser(page, live_server, staff)


def pdf_screenshot(pdf: bytes, name: str) -> Path | None:
    """The first page of a PDF as $SCREENSHOTS_DIR/<name>.png, like screenshot(); without the variable, nothing."""
    directory = os.environ.get("SCREENSHOTS_DIR")
    if not directory:
        return None
    import pypdfium2

    path = Path(directory) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    pypdfium2.PdfDocument(pdf)[0].render(scale=1.5).to_pil().save(path)
    return path


def screenshot(page, name: str) -> Path | None:
    """Save a full-page PNG as $SCREENSHOTS_DIR/<name>.png (the README's pictures); without the variable, nothing."""
    directory = os.environ.get("SCREENSHOTS_DIR")
    if not directory:
        return None
    path = Path(directory) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # a full-page picture of a scrolled page shows the sticky bar mid-page
    page.screenshot(path=path, full_page=True)
    return path
