"""A stranger fills in the public request form in a browser, on a laptop and on a phone, and the shop gets it."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from browser_helpers import browser_page
from playwright.sync_api import expect

from app.extensions import db
from app.models import Shop, Thread

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.mark.shop_locale("pl")
@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop-1366", "phone-390"])
def test_a_stranger_sends_a_request_with_a_photo(browser, request, live_server, viewport):
    Shop.current().request_form_enabled = True
    db.session.commit()
    with browser_page(browser, request, viewport=viewport, is_mobile=viewport is PHONE) as page:
        page.goto(f"{live_server.url}/p/{Shop.current().slug}/zapytanie")
        expect(page.locator("h1")).to_have_text("Wyślij zapytanie")
        page.get_by_label("Imię i nazwisko").fill("Jan Kowalski")
        page.get_by_label("E-mail", exact=True).fill("jan@example.com")
        page.get_by_label("Urządzenie").fill("Pralka Bosch")
        page.get_by_label("Co się dzieje?").fill("Nie wiruje.")
        page.get_by_label("Zdjęcia (opcjonalnie)").set_input_files(
            files=[{"name": "pralka.png", "mimeType": "image/png", "buffer": PNG}])
        page.get_by_role("button", name="Wyślij zapytanie").click()
        expect(page.locator(".field.has-error")).to_have_count(1)  # the consent is required
        page.get_by_label("Zdjęcia (opcjonalnie)").set_input_files(
            files=[{"name": "pralka.png", "mimeType": "image/png", "buffer": PNG}])
        page.get_by_label("Zgadzam się").check()
        page.get_by_role("button", name="Wyślij zapytanie").click()
        expect(page.locator("h1")).to_have_text("Dziękujemy: serwis otrzymał Twoje zapytanie")
    db.session.expire_all()
    [thread] = db.session.scalars(db.select(Thread).where(Thread.source_channel == "request_form")).all()
    assert thread.customer.name == "Jan Kowalski" and thread.ticket.subject == "Pralka Bosch"
    assert [a.filename for a in thread.messages[0].attachments] == ["pralka.png"]


@contextmanager
def website(html: bytes):
    """A one-page website at http://localhost:<port>/ for as long as the block runs."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.shop_locale("pl")
def test_another_site_shows_the_form_in_a_frame_but_not_the_panel(browser, request, live_server):
    """The shop's website (here a page of another origin) frames the form; the panel's sign-in stays out of frames.
    Over plain HTTP the browser keeps no cookie in a frame of another site, so sending fails safely (CSRF) and
    the framed error page offers the form in a new window."""
    Shop.current().request_form_enabled = True
    db.session.commit()
    form_url = f"{live_server.url}/p/{Shop.current().slug}/zapytanie"
    sign_in_url = f"{live_server.url}/p/{Shop.current().slug}/sign-in"
    with browser_page(browser, request, viewport=PHONE, is_mobile=True) as page:
        # The shop's website: another site on this machine (a public one may not frame a local server at all,
        # Chromium's Private Network Access), served by its own little server at "localhost".
        page_html = (f'<iframe id="form" src="{form_url}" width="380" height="800"></iframe>'
                     f'<iframe id="panel" src="{sign_in_url}" width="380" height="400"></iframe>').encode()
        with website(page_html) as url:
            page.goto(url)
            framed = page.frame_locator("#form")
            expect(framed.locator("h1")).to_have_text("Wyślij zapytanie")
            expect(page.frame_locator("#panel").locator("body")).to_contain_text("127.0.0.1")  # the browser's refusal
            expect(page.frame_locator("#panel").locator("input[name=login]")).to_have_count(0)
            framed.get_by_label("Imię i nazwisko").fill("Jan Kowalski")
            framed.get_by_label("E-mail", exact=True).fill("jan@example.com")
            framed.get_by_label("Urządzenie").fill("Pralka")
            framed.get_by_label("Co się dzieje?").fill("Nie wiruje.")
            framed.get_by_label("Zgadzam się").check()
            framed.get_by_role("button", name="Wyślij zapytanie").click()
            expect(framed.get_by_role("link", name="Otwórz formularz zapytania w nowym oknie")).to_be_visible()
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(Thread.id))) == 0
