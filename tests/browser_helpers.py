"""Helpers for browser tests: a page in a fresh browser context, signing in through the real sign-in page, and
the README's pictures (screenshots of pages and of PDFs into $SCREENSHOTS_DIR)."""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.models import User
from helpers import PASSWORD

TEST_FAILED = pytest.StashKey[bool]()  # set when setup or call failed, so page fixtures can keep a screenshot
# Screenshots of failed browser tests land here (ignored by git), for CI logs and local debugging.
TEST_RESULTS = Path(__file__).resolve().parent.parent / "test-results"


@contextmanager
def browser_page(browser, request, **context_options):
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


def submit_sign_in(page, live_server, email: str, password: str):
    """Open the sign-in page, submit the form with these credentials and return the server's response to it."""
    page.goto(live_server.url + "/login")
    form = page.locator("form:has(input[name=password])")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(password)
    with page.expect_response(lambda r: r.request.method == "POST" and r.url == live_server.url + "/login") as answer:
        form.locator("button[type=submit]").click()
    return answer.value


def sign_in_browser(page, live_server, user: User, password: str = PASSWORD):
    """Sign in through the real sign-in page and wait until the top bar greets the user."""
    from playwright.sync_api import expect

    submit_sign_in(page, live_server, user.email, password)
    expect(page.locator(".topbar .whoami")).to_have_text(user.name)
    return page


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
