"""The owner's side of the panel: its colour and logo, files from customers, and the repair receipt's access code."""
from __future__ import annotations

import email
import email.policy
import io
import re

import pytest
from panel_helpers import dispatch_now, panel_path

from app.customers import create_customer
from app.extensions import db
from app.models import Shop
from app.shop.branding import contrast
from app.repairs import create_repair
from helpers import csrf_token

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def test_the_owner_brands_the_panel_with_a_colour_and_a_logo(owner_client):
    assert "/settings/panel/" in owner_client.get("/settings/").get_data(as_text=True)
    token = csrf_token(owner_client, "/settings/panel/")
    response = owner_client.post("/settings/panel/", content_type="multipart/form-data", data={
        "csrf_token": token, "brand_colour": "#C0392B", "logo": (io.BytesIO(PNG), "logo.png")})
    assert response.status_code == 302
    shop = Shop.current()
    assert shop.panel_brand_colour == "#c0392b" and shop.panel_logo_path and not shop.panel_allows_attachments

    panel = owner_client.application.test_client()
    assert "--brand: #c0392b" in panel.get(panel_path("/brand.css")).get_data(as_text=True)
    page = panel.get(panel_path("/sign-in")).get_data(as_text=True)
    assert 'class="panel-logo"' in page and "style=" not in page
    logo = panel.get(panel_path("/logo"))
    assert logo.data == PNG and logo.mimetype == "image/png"


@pytest.mark.parametrize("colour, text, ink", [
    ("#1f6feb", "#ffffff", "#1b63d3"),  # the default blue: white text; a shade darker to read as text on grey
    ("#ffd23f", "#1d2330", "#866e20"),  # a pale yellow: dark text on it, and much darker as text elsewhere
    ("#ffffff", "#1d2330", "#6c6c6c"),
    ("#777777", "#000000", "#6b6b6b"),  # mid grey: neither white nor the usual dark reads well enough, black does
])
def test_the_panels_text_stays_readable_on_any_brand_colour_the_shop_picks(app, colour, text, ink):
    Shop.current().panel_brand_colour = colour
    db.session.commit()
    css = app.test_client().get(panel_path("/brand.css")).get_data(as_text=True)
    assert f"--brand: {colour};" in css and f"--on-brand: {text};" in css and f"--brand-ink: {ink};" in css
    assert contrast(colour, text) >= 4.5 and contrast(ink, "#f5f6f8") >= 4.5


def test_the_panel_invitations_button_in_a_pale_brand_colour_carries_dark_text(app, staff_client, mailbox, smtp_server):
    Shop.current().panel_brand_colour = "#ffd23f"
    customer = create_customer(name="Jan Kowalski", email="jan@example.com")
    db.session.commit()
    card = f"/customers/{customer.id}"
    staff_client.post(f"{card}/panel/invite", data={"channel": "email", "csrf_token": csrf_token(staff_client, card)})
    assert dispatch_now()["sent"] == 1
    [received] = smtp_server.wait_for(1)
    html = email.message_from_bytes(received.data, policy=email.policy.default).get_body(("html",)).get_content()
    assert re.search(r"background: #ffd23f;\s*color: #1d2330 !important;", html)


def test_panel_settings_refuse_a_bad_colour_and_a_logo_that_is_no_picture(owner_client):
    token = csrf_token(owner_client, "/settings/panel/")
    response = owner_client.post("/settings/panel/", content_type="multipart/form-data", data={
        "csrf_token": token, "brand_colour": "red; background:url(x)", "allows_attachments": "y",
        "logo": (io.BytesIO(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"), "logo.png")})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Choose a colour like #1f6feb." in page and "must be a PNG, JPEG, WebP or GIF" in page
    assert Shop.current().panel_brand_colour == "#1f6feb" and Shop.current().panel_logo_path is None


def test_staff_cannot_change_the_panel_settings(staff_client):
    assert staff_client.get("/settings/panel/").status_code == 403


def test_a_new_repair_gets_an_access_code_shown_on_its_card(staff_client):
    customer = create_customer(name="Jan Kowalski", phone="+48600100200")
    repair = create_repair(customer=customer, device="iPhone 12")
    db.session.commit()
    assert len(repair.access_code) == 8 and repair.access_code.isalnum()
    card = staff_client.get(f"/repairs/{repair.id}").get_data(as_text=True)
    assert repair.access_code in card and "/p/serwis/sign-in" in card
