"""A new owner's first hour: the setup checklist on Settings ticks itself as the shop's data appears, and the
banner on staff pages shows it to owners only, until an owner hides it for themselves."""
from __future__ import annotations

import re

import pytest
from helpers import csrf_token, make_user, sign_in

from app.extensions import db
from app.models import RepairStatus, Shop, StatusNotification
from app.shop.settings import update_shop

STEPS = ["shop", "mailbox", "sms", "panel", "notification_address", "notices", "staff"]


def ticked(client) -> dict[str, bool]:
    """Each step of the checklist on the Settings page: done or not."""
    html = client.get("/settings/").get_data(as_text=True)
    return {key: state == "done" for state, key in re.findall(r'<li class="(done|todo)" data-step="(\w+)"', html)}


def missing_text(client, step: str) -> str:
    html = client.get("/settings/").get_data(as_text=True)
    item = re.search(rf'data-step="{step}">(.*?)</li>', html, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", item).split())


def post(client, path: str, data: dict | None = None, **kwargs):
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, "/settings/")}, **kwargs)


def test_a_fresh_shop_has_everything_to_do_and_each_item_says_what_is_missing(owner_client):
    assert ticked(owner_client) == dict.fromkeys(STEPS, False)
    assert "Missing: the address, the phone number, the opening hours." in missing_text(owner_client, "shop")
    assert "No mailbox is set up" in missing_text(owner_client, "mailbox")
    assert "No SMS account is set up." in missing_text(owner_client, "sms")
    assert "Only owners can sign in: add your staff." in missing_text(owner_client, "staff")
    html = owner_client.get("/settings/").get_data(as_text=True)
    for path in ("/settings/shop", "/settings/mailboxes/", "/settings/sms/", "/settings/panel/",
                 "/settings/notifications/", "/settings/users"):
        assert f'href="{path}"' in html


def test_items_tick_themselves_as_the_shop_is_set_up(owner_client, mailbox, imap_server, sms_account, staff):
    assert ticked(owner_client)["sms"] and ticked(owner_client)["staff"]  # an SMS account and a staff account

    update_shop(Shop.current(), address="ul. Długa 1, Gdańsk", phone="+48 58 123 45 67", opening_hours="")
    db.session.commit()
    assert missing_text(owner_client, "shop").endswith("Missing: the opening hours.")
    update_shop(Shop.current(), opening_hours="pn–pt 9–17", notification_email="szef@shop.example")
    db.session.commit()
    assert ticked(owner_client)["shop"] and ticked(owner_client)["notification_address"]

    # Sending: the SMTP test passes; receiving still missing.
    assert not ticked(owner_client)["mailbox"]
    assert post(owner_client, f"/settings/mailboxes/{mailbox.id}/test").status_code in (200, 302)
    assert "No mailbox has a receiving (IMAP) server." in missing_text(owner_client, "mailbox")
    receiving = imap_server.make_mailbox()
    db.session.commit()
    assert "No mailbox has received mail or passed the receiving (IMAP) test yet." in \
        missing_text(owner_client, "mailbox")
    post(owner_client, f"/settings/mailboxes/{receiving.id}/test-imap")
    assert ticked(owner_client)["mailbox"]

    Shop.current().panel_logo_path = "logo.png"
    db.session.commit()
    assert ticked(owner_client)["panel"]

    # The ready-made notices come switched off; switching them on ticks the last item.
    post(owner_client, "/settings/templates/starter")
    assert "“przyjęta”, “gotowa do odbioru”" in missing_text(owner_client, "notices")
    rules = {r.status_id: r for r in db.session.scalars(db.select(StatusNotification))}
    form = {"switches": "1", "quiet_hours_start": "20:00", "quiet_hours_end": "08:00", "notify_max_age_hours": "24"}
    for status in RepairStatus.ordered(active_only=False):
        if status.id in rules:
            form |= {f"template_{status.id}": str(rules[status.id].template_id),
                     f"channels_{status.id}": rules[status.id].channels, f"enabled_{status.id}": "1"}
    assert post(owner_client, "/settings/notifications/", form).status_code == 302
    assert ticked(owner_client) == dict.fromkeys(STEPS, True)
    assert "setup-banner" not in owner_client.get("/").get_data(as_text=True)  # nothing left to do


def test_the_banner_shows_to_owners_only_and_stays_away_once_an_owner_hides_it(app, client, owner, staff):
    sign_in(client, staff)
    assert "setup-banner" not in client.get("/").get_data(as_text=True)
    assert post(client, "/settings/setup/dismiss").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})

    sign_in(client, owner)
    html = client.get("/").get_data(as_text=True)
    assert "setup-banner" in html and "Finish setting up the shop: 1 of 7 steps done." in html
    assert client.post("/settings/setup/dismiss").status_code == 400  # no CSRF token
    response = post(client, "/settings/setup/dismiss")
    assert response.status_code == 302
    assert "setup-banner" not in client.get("/").get_data(as_text=True)
    assert ticked(client)["staff"]  # the checklist itself stays in Settings

    # Hiding is per owner: a second owner still sees it.
    other = make_user("second@shop.example", role="owner")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    sign_in(client, other)
    assert "setup-banner" in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/settings/", "/settings/templates/", "/settings/notifications/"])
def test_staff_cannot_open_the_owner_pages(staff_client, path):
    assert staff_client.get(path).status_code == 403


def test_staff_cannot_add_the_ready_made_templates(staff_client):
    assert staff_client.post("/settings/templates/starter",
                             data={"csrf_token": csrf_token(staff_client, "/")}).status_code == 403
