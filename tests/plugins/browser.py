"""Browser tests: the `browser` marker (SQLite runs only), a live server of the test's app, one headless Chromium
for the run, desktop and phone pages (a failed test leaves a screenshot in test-results/), signed-in pages."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from browser_helpers import TEST_FAILED, browser_page, sign_in_browser
from plugins.database import DATABASE_CHOICE

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]


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


@pytest.fixture
def page(browser, request):
    """A desktop-sized page (1280x800)."""
    with browser_page(browser, request, viewport={"width": 1280, "height": 800}) as page:
        yield page


@pytest.fixture
def phone_page(browser, request):
    """A phone-sized touch page (390x844), for layout checks."""
    with browser_page(
        browser, request, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
        device_scale_factor=3,
    ) as page:
        yield page


@pytest.fixture
def owner_page(page, live_server, owner):
    """A desktop page signed in as the owner."""
    return sign_in_browser(page, live_server, owner)


@pytest.fixture
def staff_page(page, live_server, staff):
    """A desktop page signed in as a member of staff."""
    return sign_in_browser(page, live_server, staff)
