"""A fresh shop starts with ready-made Polish and English templates for the usual statuses, their automatic notices
switched off; a shop in use gets nothing by itself but can add them from Settings → Templates."""
from __future__ import annotations

import pytest
from helpers import csrf_token, run_flask
from sqlalchemy import select

from app.customers import create_customer
from app.extensions import db
from app.messaging.starter_templates import starter_rows
from app.models import Message, RepairStatus, StatusNotification, StatusReminder
from app.models.templates import MessageTemplate
from app.repairs import change_status, create_repair


def names() -> set[tuple[str, str]]:
    return set(db.session.execute(select(MessageTemplate.name, MessageTemplate.language)).all())


def notices() -> dict[str, tuple[str, bool]]:
    """Status name → (template name, switched on)."""
    return {status.name: (template.name, rule.enabled) for rule, status, template in db.session.execute(
        select(StatusNotification, RepairStatus, MessageTemplate)
        .join(RepairStatus, RepairStatus.id == StatusNotification.status_id)
        .join(MessageTemplate, MessageTemplate.id == StatusNotification.template_id))}


def reminders() -> dict[str, tuple[str, int, bool]]:
    """Status name → (template name, days, switched on)."""
    return {status.name: (template.name, rule.days, rule.enabled) for rule, status, template in db.session.execute(
        select(StatusReminder, RepairStatus, MessageTemplate)
        .join(RepairStatus, RepairStatus.id == StatusReminder.status_id)
        .join(MessageTemplate, MessageTemplate.id == StatusReminder.template_id))}


def test_a_freshly_migrated_shop_has_the_templates_and_switched_off_notices(empty_app):
    run_flask(empty_app, "db", "upgrade")

    assert names() == {(name, language) for _p, language, name, *_rest in starter_rows("pl")}
    assert ("Gotowa do odbioru", "en") in names()  # one message in two languages: a notice picks the customer's
    assert {language for _name, language in names()} == {"pl", "en"}
    assert notices() == {"przyjęta": ("Przyjęcie naprawy", False), "gotowa do odbioru": ("Gotowa do odbioru", False)}
    # and the reminder for a repair still waiting for pickup after 7 opening days, switched off too
    assert reminders() == {"gotowa do odbioru": ("Przypomnienie o odbiorze", 7, False)}
    db.session.remove()


def test_a_shop_in_use_gets_nothing_from_the_migration(app, owner):
    run_flask(app, "db", "downgrade", "0009")
    run_flask(app, "db", "upgrade")
    assert names() == set() and notices() == {} and reminders() == {}


def test_a_switched_off_notice_sends_nothing(app, owner):
    from app.messaging.starter_templates import add_starter_templates

    add_starter_templates(language="pl", actor=owner)
    customer = create_customer(name="Jan Kowalski", email="jan@example.com")
    repair = create_repair(customer=customer, device="iPhone 12")
    ready = next(s for s in RepairStatus.ordered() if s.name == "gotowa do odbioru")
    change_status(repair, ready, actor=owner)
    db.session.commit()
    assert db.session.scalar(select(db.func.count(Message.id))) == 0


def test_the_owner_adds_the_missing_templates_with_one_button(owner_client):
    page = owner_client.get("/settings/templates/").get_data(as_text=True)
    assert "Add the ready-made templates" in page
    token = csrf_token(owner_client, "/settings/templates/")
    assert owner_client.post("/settings/templates/starter").status_code == 400  # no CSRF token
    response = owner_client.post("/settings/templates/starter", data={"csrf_token": token}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "8 ready-made templates added; their automatic notices are off until you switch them on." in html
    assert "Add the ready-made templates" not in html
    assert len(names()) == 8
    assert notices() == {"przyjęta": ("Repair accepted", False), "gotowa do odbioru": ("Ready for pickup", False)}
    assert reminders() == {"gotowa do odbioru": ("Pickup reminder", 7, False)}
    reminders_page = owner_client.get("/settings/notifications/reminders").get_data(as_text=True)
    assert "Pickup reminder" in reminders_page


@pytest.mark.shop_locale("pl")  # the templates are named in the shop's language: "Gotowa do odbioru" is one
def test_a_shop_that_has_templates_keeps_them_as_they_are(owner_client, owner):
    edited = MessageTemplate(name="Gotowa do odbioru", language="pl", channels=["sms"], subject="",
                             body="Nasz własny tekst", kind="message")
    db.session.add(edited)
    db.session.commit()
    token = csrf_token(owner_client, "/settings/templates/")
    owner_client.post("/settings/templates/starter", data={"csrf_token": token})
    db.session.refresh(edited)
    assert edited.body == "Nasz własny tekst" and edited.channels == ["sms"]
    assert len(names()) == 8  # the seven it lacked were added, not a second "Gotowa do odbioru"
    owner_client.post("/settings/templates/starter", data={"csrf_token": token})
    assert db.session.scalar(select(db.func.count(MessageTemplate.id))) == 8
    assert db.session.scalar(select(db.func.count(StatusReminder.id))) == 1


def test_the_demo_shop_uses_the_ready_made_templates_once(app):
    from app.demo import seed

    seed("demo-password-1")
    counted = db.session.execute(select(MessageTemplate.name, MessageTemplate.language, db.func.count())
                                 .group_by(MessageTemplate.name, MessageTemplate.language)).all()
    assert all(n == 1 for *_key, n in counted)
    assert notices()["gotowa do odbioru"] == ("Gotowa do odbioru", True)
    assert reminders() == {"gotowa do odbioru": ("Przypomnienie o odbiorze", 7, True)}
