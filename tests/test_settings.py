"""Settings: only owners get in; the shop's details change under the rules, old panel addresses keep working."""
import pytest
from helpers import csrf_token
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Shop, ShopSlug


def shop_form(client, **changes) -> dict:
    """The shop form as the page fills it, with some fields changed."""
    shop = Shop.current()
    data = {
        "csrf_token": csrf_token(client, "/settings/shop"),
        "name": shop.name, "slug": shop.slug, "address": shop.address, "phone": shop.phone,
        "opening_hours": shop.opening_hours, "locale": shop.locale, "timezone": shop.timezone,
        "notification_email": shop.notification_email or "", "undo_seconds": str(shop.undo_seconds),
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("path", ["/settings/", "/settings/shop", "/settings/users", "/settings/users/new"])
def test_staff_cannot_open_the_settings(staff_client, path):
    assert staff_client.get(path).status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/settings/shop")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_owner_sees_the_sections_that_exist(owner_client):
    page = owner_client.get("/settings/").get_data(as_text=True)
    assert 'href="/settings/shop"' in page
    assert 'href="/settings/users"' in page


def test_owner_renames_the_shop_and_the_old_slug_keeps_working(owner_client, owner):
    old_slug = Shop.current().slug
    response = owner_client.post("/settings/shop", data=shop_form(
        owner_client, name="Serwis Naprawa Plus", slug="naprawaplus", timezone="Europe/Berlin",
        notification_email="Biuro@Shop.example", undo_seconds="60",
    ))
    assert response.status_code == 302

    db.session.expire_all()
    shop = Shop.current()
    assert (shop.name, shop.slug, shop.timezone, shop.undo_seconds) == ("Serwis Naprawa Plus", "naprawaplus",
                                                                         "Europe/Berlin", 60)
    assert shop.notification_email == "biuro@shop.example"
    assert db.session.scalars(select(ShopSlug.slug)).all() == [old_slug]
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "settings.shop")).one()
    assert audit.user_id == owner.id
    assert set(audit.details["changed"]) == {"name", "slug", "timezone", "notification_email", "undo_seconds"}
    assert "Serwis Naprawa Plus" in owner_client.get("/settings/shop").get_data(as_text=True)


@pytest.mark.parametrize("field, value, message", [
    ("slug", "Naprawa Plus", "lowercase letters"),
    ("slug", "-naprawa", "lowercase letters"),
    ("slug", "n", "lowercase letters"),
    ("timezone", "Mars/Olympus", "time zone"),
    ("notification_email", "biuro@", "valid e-mail"),
    ("undo_seconds", "301", "from 0 to 300"),
    ("name", "  ", "shop&#39;s name"),
])
def test_owner_gets_field_errors_for_bad_shop_settings(owner_client, field, value, message):
    before = Shop.current().slug, Shop.current().name
    response = owner_client.post("/settings/shop", data=shop_form(owner_client, **{field: value}))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="{field}-error"' in page and message in page
    db.session.expire_all()
    assert (Shop.current().slug, Shop.current().name) == before
    assert db.session.scalars(select(ShopSlug)).all() == []


def test_settings_refuse_a_post_without_csrf_token(owner_client):
    data = shop_form(owner_client, name="Hacked")
    del data["csrf_token"]
    assert owner_client.post("/settings/shop", data=data).status_code == 400
    db.session.expire_all()
    assert Shop.current().name != "Hacked"


def test_going_back_to_an_old_slug_does_not_record_it_twice(owner_client):
    original = Shop.current().slug
    for slug in ("nowy-adres", original, "nowy-adres"):
        assert owner_client.post("/settings/shop", data=shop_form(owner_client, slug=slug)).status_code == 302
    assert sorted(db.session.scalars(select(ShopSlug.slug))) == sorted([original, "nowy-adres"])


def test_the_time_zone_list_starts_with_the_shops_own_continent(owner_client):
    import re

    def zones() -> list[str]:
        page = owner_client.get("/settings/shop").get_data(as_text=True)
        select_html = re.search(r'<select[^>]*name="timezone".*?</select>', page, re.S).group(0)
        return re.findall(r'<option[^>]*value="([^"]+)"', select_html)

    listed = zones()
    assert listed[0].startswith("Europe/") and listed[0] != "Africa/Abidjan"
    europe = [zone for zone in listed if zone.startswith("Europe/")]
    assert listed[:len(europe)] == europe and "Europe/Warsaw" in europe and "Africa/Abidjan" in listed

    Shop.current().timezone = "America/Chicago"
    db.session.commit()
    assert zones()[0].startswith("America/")
