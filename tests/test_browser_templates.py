"""Templates in a real browser: the owner writes one with the tag picker, previews it for a real repair, then uses
it in the compose form, where it fills the subject and the text and the SMS counter follows."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.accounts.mailboxes import create_mailbox
from app.models import Message
from app.models.templates import MessageTemplate


@pytest.fixture
def repair(app, smtp_server, repair):  # the shared repair, in a shop with a mailbox on the test SMTP server
    app.config["SMTP_CA_FILE"] = smtp_server.cafile
    create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host=smtp_server.host,
                   smtp_port=smtp_server.port, smtp_security="starttls", username=smtp_server.username,
                   password=smtp_server.password)
    db.session.commit()
    return repair


def test_a_template_written_with_the_tag_picker_previews_and_fills_the_compose_form(owner_page, live_server, repair):
    page = owner_page
    page.goto(f"{live_server.url}/settings/templates/new")
    page.locator("#name").fill("Gotowa do odbioru")
    page.locator("#template-channel-email").check()
    page.locator("#template-channel-sms").check()
    page.locator("#subject").fill("Naprawa ")
    page.locator(".tag-picker button[data-tag=repair_number]").click()  # into the subject, the field last used
    expect(page.locator("#subject")).to_have_value("Naprawa {{ repair_number }}")
    body = page.locator("#body")
    body.fill("Dzień dobry ")
    page.locator(".tag-picker button[data-tag=customer_first_name]").click()
    body.press("End")
    body.press_sequentially(", urządzenie ")
    page.locator(".tag-picker button[data-tag=device]").click()
    expect(body).to_have_value("Dzień dobry {{ customer_first_name }}, urządzenie {{ device }}")

    page.locator("#preview-repair").select_option(str(repair.id))
    page.locator("#preview-button").click()
    preview = page.locator("#template-preview")
    expect(preview).to_contain_text("Dzień dobry Jan, urządzenie iPhone 12")
    expect(preview).to_contain_text(f"Naprawa {repair.number}")
    expect(preview.locator("[data-sms-encoding]")).to_have_attribute("data-sms-encoding", "UCS-2")

    page.locator("#template-form button[type=submit]").click()
    expect(page.locator("table")).to_contain_text("Gotowa do odbioru")
    template = db.session.scalars(db.select(MessageTemplate)).one()

    page.goto(f"{live_server.url}/compose?repair_id={repair.id}")
    page.locator("#compose-template").select_option(str(template.id))
    expect(page.locator("#compose-body")).to_have_value("Dzień dobry Jan, urządzenie iPhone 12")
    expect(page.locator("#subject")).to_have_value(f"Naprawa {repair.number}")
    page.locator("#compose-body").press("End")
    page.locator("#compose-body").press_sequentially(" :)")  # still editable, and the counter still follows
    expect(page.locator("#sms-counter [data-sms-encoding]")).to_contain_text("40 characters")
    page.locator("#channel-email").check()
    page.locator("#compose-form button[type=submit]").click()
    expect(page.locator("[data-undo-toast]")).to_be_visible()
    message = db.session.scalars(db.select(Message)).one()
    assert message.body_text == "Dzień dobry Jan, urządzenie iPhone 12 :)"
    assert message.meta["template_id"] == template.id


def test_text_typed_the_moment_a_template_fills_the_form_still_updates_the_sms_counter(owner_page, live_server, repair):
    """The filled-in part of the form listens for typing as soon as it is on the page: input that arrives before
    htmx's settle step (here: in the same task as the swap, through a MutationObserver) must not be lost."""
    template = MessageTemplate(name="Gotowa", channels=["email", "sms"], subject="Naprawa", body="Gotowe")
    db.session.add(template)
    db.session.commit()
    page = owner_page
    page.goto(f"{live_server.url}/compose?repair_id={repair.id}")
    page.evaluate("""() => {
        const form = document.getElementById("compose-form");
        new MutationObserver((_, observer) => {
            const body = document.getElementById("compose-body");
            if (body.value !== "Gotowe") return;
            observer.disconnect();
            body.value += " :)";
            body.dispatchEvent(new Event("input", { bubbles: true }));
        }).observe(form, { childList: true, subtree: true });
    }""")
    page.locator("#compose-template").select_option(str(template.id))
    expect(page.locator("#compose-body")).to_have_value("Gotowe :)")
    expect(page.locator("#sms-counter [data-sms-encoding]")).to_contain_text("9 characters")
