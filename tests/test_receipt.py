"""The acceptance receipt printed from the repair card: everything the customer and the shop sign, on A4 (two copies)
or an 80 mm roll, with the access code and a QR code that opens the repair in the customer panel, never the phone."""
from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader

from app.customers import create_customer
from app.extensions import db
from app.models import Repair, Shop
from app.repairs import create_repair
from app.shop.settings import update_shop
from helpers import csrf_token

MM = 72 / 25.4  # PDF points per millimetre
TERMS = "Urządzenie nieodebrane w ciągu 90 dni od powiadomienia może zostać zutylizowane."


# Not the shared `repair`: every field a receipt prints, in a shop with an address and terms.
@pytest.fixture
def repair(app):
    update_shop(Shop.current(), name="Serwis Naprawa Plus", address="ul. Długa 5, 30-001 Kraków",
                phone="+48 12 345 67 89", receipt_terms=TERMS)
    customer = create_customer(name="Łucja Żółkiewska", email="lucja@example.com", phone="+48600100234")
    repair = create_repair(customer=customer, device="Samsung Galaxy S23", serial_number="356789104567891",
                           accessories="ładowarka, etui", description="Pęknięty ekran",
                           price_estimate=Decimal("449.00"), pickup_date=date(2026, 12, 18))
    db.session.commit()
    return repair


def text_of(pdf: bytes) -> tuple[str, list]:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages), reader.pages


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.shop_locale("pl")
def test_print_receipt_gives_two_copies_on_one_a4_sheet_with_all_the_repair_s_details(staff_client, repair):
    card = staff_client.get(f"/repairs/{repair.id}").get_data(as_text=True)
    assert f'href="/repairs/{repair.id}/receipt"' in card

    response = staff_client.get(f"/repairs/{repair.id}/receipt")

    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    text, pages = text_of(response.data)
    assert len(pages) == 1
    assert round(float(pages[0].mediabox.width) / MM) == 210 and round(float(pages[0].mediabox.height) / MM) == 297
    words = flat(text)
    for expected in ("Serwis Naprawa Plus", "ul. Długa 5, 30-001 Kraków", repair.number, "Łucja Żółkiewska",
                     "Samsung Galaxy S23", "356789104567891", "ładowarka, etui", "Pęknięty ekran", "449,00 zł",
                     "18.12.2026", repair.access_code, TERMS, "Podpis klienta"):
        assert expected in words, expected
    assert words.count(repair.access_code) >= 2 and "Egzemplarz dla klienta" in words and "Egzemplarz dla serwisu" in words
    assert "600" not in re.sub(r"\s", "", text) and "234" not in text  # never the phone number


@pytest.mark.shop_locale("pl")
def test_the_receipt_s_qr_code_opens_the_panel_with_the_access_code_filled_in(staff_client, client, repair):
    pdf = staff_client.get(f"/repairs/{repair.id}/receipt").data
    text, pages = text_of(pdf)
    # The QR code is also a link in the PDF, to the address it encodes.
    [link] = {annotation.get_object()["/A"]["/URI"] for annotation in pages[0]["/Annots"]}
    assert link.startswith("http://shop.example/p/") and f"code={repair.access_code}" in link
    assert "http://shop.example/p/" in flat(text)  # the address in words, for those without a camera

    page = client.get(link.removeprefix("http://shop.example").split("#")[0]).get_data(as_text=True)

    assert f'value="{repair.access_code}"' in page and "autofocus" in page


def test_a_narrow_receipt_for_an_80_mm_printer_is_one_copy_as_long_as_its_content(staff_client, repair):
    response = staff_client.get(f"/repairs/{repair.id}/receipt?layout=80mm")

    text, pages = text_of(response.data)
    assert len(pages) == 1 and round(float(pages[0].mediabox.width) / MM) == 80
    assert 100 < float(pages[0].mediabox.height) / MM < 300
    assert repair.access_code in text and "356789104567891" in text


def test_a_long_fault_description_moves_the_second_copy_to_its_own_page(staff_client, repair):
    repair.description = "\n".join(f"Usterka {n}: " + "nie działa " * 12 for n in range(25))
    db.session.commit()

    text, pages = text_of(staff_client.get(f"/repairs/{repair.id}/receipt").data)

    assert len(pages) >= 2 and "Usterka 24" in pages[-1].extract_text()


def test_serial_number_and_accessories_are_kept_from_the_repair_forms(staff_client, repair):
    page = f"/repairs/{repair.id}/edit"
    response = staff_client.post(page, data={"csrf_token": csrf_token(staff_client, page), "device": "iPhone 13",
                                              "serial_number": "F2LXK1ABCD", "accessories": "kabel",
                                              "description": "", "price_estimate": "", "pickup_date": ""})
    assert response.status_code == 302
    repair = db.session.get(Repair, repair.id)
    assert (repair.serial_number, repair.accessories) == ("F2LXK1ABCD", "kabel")
    refused = staff_client.post(page, data={"csrf_token": csrf_token(staff_client, page), "device": "iPhone 13",
                                            "serial_number": "A\nB", "accessories": "x" * 300})
    assert refused.status_code == 422
    assert db.session.get(Repair, repair.id).serial_number == "F2LXK1ABCD"


def test_the_shop_s_receipt_terms_are_set_in_settings_by_the_owner(owner_client):
    page = "/settings/shop"
    form = {"csrf_token": csrf_token(owner_client, page), "name": "Serwis", "slug": Shop.current().slug,
            "locale": "pl", "timezone": "Europe/Warsaw", "undo_seconds": "30", "receipt_terms": "Gwarancja 3 miesiące."}
    assert owner_client.post(page, data=form).status_code == 302
    assert Shop.current().receipt_terms == "Gwarancja 3 miesiące."


def test_the_receipt_needs_a_signed_in_member_of_staff(client, repair):
    assert client.get(f"/repairs/{repair.id}/receipt").status_code == 302  # to the sign-in page


def test_the_receipt_of_an_unknown_repair_is_not_found(staff_client):
    assert staff_client.get("/repairs/999999/receipt").status_code == 404
