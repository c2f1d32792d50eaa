"""Settings → SMS in a real browser: the owner switches the shop to SMSAPI.pl, copies the callback addresses, makes
new ones after confirming, and checks the balance against a threshold."""
from __future__ import annotations

from playwright.sync_api import expect

from app.accounts.sms import active_account, callback_secret
from app.extensions import db


def test_the_owner_sets_up_smsapi_rotates_its_addresses_and_checks_the_balance(owner_page, live_server,
                                                                               smsapi_server):
    page = owner_page
    page.goto(f"{live_server.url}/settings/sms/")
    form = page.locator("#smsapi")
    form.locator("#smsapi-token").fill(smsapi_server.token)
    form.locator("#smsapi-from_number").fill("2way")
    form.locator("#smsapi-api_base_url").fill(smsapi_server.url)
    form.locator("button[type=submit]").click()

    expect(page.locator("#sms-provider")).to_contain_text("SMS go out through SMSAPI.")
    inbound = page.locator("#smsapi-inbound-url")
    expect(inbound).to_contain_text("/webhooks/smsapi/")
    first = inbound.inner_text()
    db.session.expire_all()
    assert first.endswith(f"/webhooks/smsapi/{callback_secret(active_account())}/sms")

    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.locator("#smsapi-addresses button[type=submit]").click()
    expect(inbound).not_to_have_text(first)
    assert dialogs == ["The current addresses stop working at once. Make new ones?"]
    db.session.expire_all()
    assert inbound.inner_text().endswith(f"/{callback_secret(active_account())}/sms")

    page.locator("#balance-low_balance_threshold").fill("30")
    page.locator("#sms-balance button[type=submit]").click()
    expect(page.locator("#sms-balance-amount")).to_contain_text("25 points left")
    expect(page.locator("#sms-balance-banner")).to_contain_text("25 points left")  # below 30: staff are warned
