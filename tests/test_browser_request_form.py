"""A stranger fills in the public request form in a browser, on a laptop and on a phone, and the shop gets it."""
from __future__ import annotations

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
