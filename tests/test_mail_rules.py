"""Rules for incoming mail: the owner lists, orders and switches them in Settings → Rules; every new message a
customer sends (e-mail, SMS, the panel) goes through them, and what they change shows in the thread's timeline."""
from __future__ import annotations

import re

import pytest
from helpers import csrf_token, make_user
from inbound_helpers import make_customer, make_mailbox, plain_mail, receive
from panel_helpers import panel_csrf, panel_customer, panel_path, publish, sign_in_customer
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.inbound.rules import create_rule
from app.messaging.compose import compose
from app.messaging.thread_actions import add_note
from app.models import AuditEvent, MailRule, Message, Queue, Tag, Thread, User
from test_sms_inbound import account, new_repair, replied, text_about  # noqa: F401  (fixture)

PAGE = "/settings/rules/"


@pytest.fixture
def workshop(app):
    queue = Queue(name="Warsztat", position=1)
    db.session.add(queue)
    db.session.commit()
    return queue


@pytest.fixture
def anna(app):
    return make_user("anna@shop.example", name="Anna Nowak")


def post(client, path: str, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, PAGE), **data})


def rule_named(name: str) -> MailRule:
    db.session.expire_all()
    return db.session.scalars(select(MailRule).where(MailRule.name == name)).one()


def add_rule(owner, name: str, **fields) -> MailRule:
    rule = create_rule(actor=owner, name=name, **fields)
    db.session.commit()
    return rule


def events_of(thread_id: int) -> list[Message]:
    db.session.expire_all()
    return list(db.session.scalars(select(Message).where(Message.thread_id == thread_id, Message.kind == "event")
                                   .order_by(Message.created_at, Message.id)))


def thread_of_mail(outcome) -> Thread:
    db.session.expire_all()
    return db.session.get(Thread, outcome.thread.id)


# --- the settings page ------------------------------------------------------------------------------------------


def test_staff_may_not_see_or_change_the_rules(staff_client, owner, workshop):
    rule = add_rule(owner, "Reklamacje", queue_id=workshop.id)
    token = csrf_token(staff_client, "/")

    assert staff_client.get(PAGE).status_code == 403
    assert staff_client.post(PAGE + "new", data={"csrf_token": token, "name": "Mine", "queue_id": workshop.id}
                             ).status_code == 403
    for action in ("move", "switch", "delete"):
        assert staff_client.post(f"{PAGE}{rule.id}/{action}", data={"csrf_token": token}).status_code == 403
    assert [r.name for r in db.session.scalars(select(MailRule))] == ["Reklamacje"]
    assert rule_named("Reklamacje").enabled


def test_the_settings_home_links_the_rules(owner_client):
    page = owner_client.get("/settings/").get_data(as_text=True)
    assert f'href="{PAGE}"' in page and "Rules for incoming mail" in page


def test_the_owner_adds_a_rule_and_it_is_audited(owner_client, workshop, anna):
    response = post(owner_client, PAGE + "new", name="Reklamacje", channel="email", words="reklamacja, gwarancja",
                    sender_domain="@Partner.PL", queue_id=workshop.id, assignee_id=anna.id, priority="high",
                    tags="Reklamacja, pilne", stop="y")

    assert response.status_code == 302, response.get_data(as_text=True)
    rule = rule_named("Reklamacje")
    assert (rule.channel, rule.words, rule.sender_domain) == ("email", "reklamacja, gwarancja", "partner.pl")
    assert (rule.queue_id, rule.assignee_id, rule.priority, rule.stop) == (workshop.id, anna.id, "high", True)
    assert [db.session.get(Tag, tag_id).name for tag_id in rule.tag_ids] == ["reklamacja", "pilne"]
    page = owner_client.get(PAGE).get_data(as_text=True)
    assert "Reklamacje" in page and "Queue: Warsztat" in page and "Assign to: Anna Nowak" in page
    assert "Tag: pilne" in page and "Sender in: partner.pl" in page
    assert db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("mail_rule.%"))).all() == [
        "mail_rule.create"]

    edit = owner_client.get(f"{PAGE}{rule.id}").get_data(as_text=True)
    assert 'value="reklamacja, pilne"' in edit
    response = post(owner_client, f"{PAGE}{rule.id}", name="Reklamacje", channel="email", words="reklamacja",
                    queue_id=workshop.id, tags="reklamacja")
    assert response.status_code == 302
    rule = rule_named("Reklamacje")
    assert (rule.words, rule.assignee_id, rule.priority, rule.stop, rule.sender_domain) == (
        "reklamacja", None, "", False, "")
    changed = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "mail_rule.update")).one()
    assert {"words", "assignee_id", "priority", "stop", "sender_domain", "tag_ids"} <= set(changed.details["changed"])


def test_a_rule_without_the_csrf_token_is_refused(owner_client, workshop):
    owner_client.get(PAGE)
    response = owner_client.post(PAGE + "new", data={"name": "Reklamacje", "queue_id": workshop.id})

    assert response.status_code == 400
    assert db.session.scalars(select(MailRule)).all() == []


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"name": "", "priority": "high"}, "name", "Name the rule."),
    ({"name": "Nic"}, "queue_id", "Choose at least one thing for the rule to do."),
    ({"name": "Zła domena", "priority": "high", "sender_domain": "nie domena"}, "sender_domain",
     "Enter a domain such as partner.pl."),
    ({"name": "Zła kolejka", "queue_id": "999"}, "queue_id", "Choose a queue."),
    ({"name": "Zły kanał", "priority": "high", "channel": "fax"}, "channel", "Choose a channel."),
    ({"name": "Zły priorytet", "priority": "asap"}, "priority", "Choose a priority."),
    ({"name": "Zły", "priority": "high", "mailbox_id": "abc"}, "mailbox_id", "Choose a mailbox."),
])
def test_a_rule_with_mistakes_is_shown_again_with_the_reasons(owner_client, fields, field, message):
    response = post(owner_client, PAGE + "new", **fields)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="field-{field}"' in page and message in page
    assert db.session.scalars(select(MailRule)).all() == []


def test_a_switched_off_account_cannot_be_chosen(owner_client, anna):
    anna.active = False
    db.session.commit()
    response = post(owner_client, PAGE + "new", name="Do Anny", assignee_id=anna.id)
    assert response.status_code == 422 and "Choose an active account." in response.get_data(as_text=True)


def test_the_owner_reorders_switches_off_and_deletes_rules(owner_client, owner, workshop):
    for name in ("Pierwsza", "Druga", "Trzecia"):
        add_rule(owner, name, queue_id=workshop.id)

    assert post(owner_client, f"{PAGE}{rule_named('Trzecia').id}/move", direction="up").status_code == 302
    page = owner_client.get(PAGE).get_data(as_text=True)
    assert re.findall(r'data-rule="([^"]+)"', page) == ["Pierwsza", "Trzecia", "Druga"]
    post(owner_client, f"{PAGE}{rule_named('Pierwsza').id}/move", direction="up")  # already first: nothing
    post(owner_client, f"{PAGE}{rule_named('Pierwsza').id}/move", direction="sideways")
    assert re.findall(r'data-rule="([^"]+)"', owner_client.get(PAGE).get_data(as_text=True)) == [
        "Pierwsza", "Trzecia", "Druga"]

    response = post(owner_client, f"{PAGE}{rule_named('Druga').id}/switch", enabled="0")
    assert response.status_code == 302 and not rule_named("Druga").enabled
    assert "switched off" in owner_client.get(PAGE).get_data(as_text=True)
    post(owner_client, f"{PAGE}{rule_named('Druga').id}/switch", enabled="1")
    assert rule_named("Druga").enabled

    assert post(owner_client, f"{PAGE}{rule_named('Pierwsza').id}/delete").status_code == 302
    assert [r.name for r in db.session.scalars(select(MailRule).order_by(MailRule.position))] == ["Trzecia", "Druga"]
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("mail_rule.%"))
                                 .order_by(AuditEvent.id)).all()
    assert actions[3:] == ["mail_rule.move", "mail_rule.disable", "mail_rule.enable", "mail_rule.delete"]
    log = owner_client.get("/audit/").get_data(as_text=True)
    assert "Rule for incoming mail switched off" in log


# --- applied to new messages -----------------------------------------------------------------------------------


@pytest.mark.shop_locale("pl")
def test_a_received_mail_gets_the_rules_actions_told_in_its_timeline(owner_client, owner, workshop, anna):
    mailbox = make_mailbox()
    make_customer()
    add_rule(owner, "Reklamacje", channel="email", mailbox_id=mailbox.id, words="reklamacja gwarancja",
             queue_id=workshop.id, assignee_id=anna.id, priority="urgent", tags="reklamacja")

    outcome = receive(mailbox, plain_mail(subject="REKLAMACJA telefonu", body="Ekran nie działa."))

    thread = thread_of_mail(outcome)
    assert (thread.queue_id, thread.assignee_id, thread.priority) == (workshop.id, anna.id, "urgent")
    assert [tag.name for tag in thread.tags] == ["reklamacja"]
    texts = [event.body_text for event in events_of(thread.id)]
    assert texts == ["Reguła „Reklamacje” ustawiła kolejkę Warsztat.",
                     "Reguła „Reklamacje” przypisała wątek: Anna Nowak.",
                     "Reguła „Reklamacje” ustawiła priorytet: Pilny.",
                     "Reguła „Reklamacje” dodała tag reklamacja."]
    page = owner_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "Reguła „Reklamacje” ustawiła kolejkę Warsztat." in page
    # the events follow the message they were made for
    timeline = [m.kind for m in db.session.scalars(select(Message).where(Message.thread_id == thread.id)
                                                   .order_by(Message.created_at, Message.id))]
    assert timeline == ["message", "event", "event", "event", "event"]


def test_english_readers_see_the_event_in_english(owner_client, owner, workshop):
    mailbox = make_mailbox()
    make_customer()
    add_rule(owner, "Complaints", words="broken", queue_id=workshop.id)
    outcome = receive(mailbox, plain_mail(body="The screen is broken."))
    page = owner_client.get(f"/threads/{outcome.thread.id}").get_data(as_text=True)
    assert "The rule “Complaints” set the queue Warsztat." in page


def test_conditions_must_all_hold_and_words_fold_polish_letters(owner, workshop):
    mailbox = make_mailbox()
    make_customer()
    make_customer(name="Partner", email="biuro@serwis.partner.pl")
    add_rule(owner, "Łódź", words="lodz", priority="high")
    add_rule(owner, "Partner", sender_domain="partner.pl", tags="partner")
    add_rule(owner, "SMS only", channel="sms", priority="low")

    polish = thread_of_mail(receive(mailbox, plain_mail(subject="Odbiór w ŁODZI?", body="Czy w Łodzi?",
                                                        message_id="<a@example.com>")))
    plain = thread_of_mail(receive(mailbox, plain_mail(subject="Pytanie", body="Kiedy?", message_id="<b@example.com>")))
    partner = thread_of_mail(receive(mailbox, plain_mail(sender="Partner <biuro@serwis.partner.pl>", body="Faktura",
                                                         message_id="<c@example.com>")))

    assert polish.priority == "high" and not polish.tags
    assert plain.priority == "normal" and not plain.tags and events_of(plain.id) == []
    assert partner.priority == "normal" and [tag.name for tag in partner.tags] == ["partner"]


def test_stop_here_ends_the_list_and_continue_goes_on(owner, workshop, anna):
    mailbox = make_mailbox()
    make_customer()
    first = add_rule(owner, "Pierwsza", words="ekran", priority="high")
    add_rule(owner, "Druga", words="ekran", tags="ekran")

    continued = thread_of_mail(receive(mailbox, plain_mail(body="Zbity ekran", message_id="<a@example.com>")))
    assert continued.priority == "high" and [tag.name for tag in continued.tags] == ["ekran"]

    first.stop = True
    db.session.commit()
    stopped = thread_of_mail(receive(mailbox, plain_mail(body="Ekran znowu", message_id="<b@example.com>",
                                                         subject="Inny")))
    assert stopped.id != continued.id
    assert stopped.priority == "high" and not stopped.tags

    first.enabled = False  # a rule switched off is skipped, its "stop" too
    db.session.commit()
    other = thread_of_mail(receive(mailbox, plain_mail(body="Ekran trzeci", message_id="<c@example.com>",
                                                       subject="Trzeci")))
    assert other.priority == "normal" and [tag.name for tag in other.tags] == ["ekran"]


def test_a_rule_whose_queue_person_or_tag_is_gone_does_the_rest(owner, workshop, anna):
    mailbox = make_mailbox()
    make_customer()
    rule = add_rule(owner, "Wszystko", queue_id=workshop.id, assignee_id=anna.id, priority="high", tags="stary, nowy")
    db.session.delete(workshop)
    db.session.delete(db.session.scalars(select(Tag).where(Tag.name == "stary")).one())
    db.session.get(User, anna.id).active = False
    db.session.commit()

    thread = thread_of_mail(receive(mailbox, plain_mail()))

    assert (thread.queue_id, thread.assignee_id, thread.priority) == (None, None, "high")
    assert [tag.name for tag in thread.tags] == ["nowy"]
    assert rule_named("Wszystko").id == rule.id


def test_notes_and_outbound_mail_go_through_no_rules(owner, workshop):
    make_mailbox()
    customer = make_customer()
    add_rule(owner, "Wszystko", priority="high")
    message = compose(customer=customer, channels=["email"], subject="Hej", body="Wycena", author=owner)
    add_note(message.thread, "Notatka", owner)
    db.session.commit()
    assert db.session.get(Thread, message.thread_id).priority == "normal" and events_of(message.thread_id) == []


def test_an_incoming_sms_goes_through_the_rules(staff_client, owner, account, twilio_server, workshop):  # noqa: F811
    customer_row = make_customer(phone="600 100 200")
    repair = new_repair(customer_row, "iPhone 12")
    delivery = text_about(staff_client, customer_row, repair)
    add_rule(owner, "SMS do warsztatu", channel="sms", words="odbiór", queue_id=workshop.id)
    add_rule(owner, "Tylko e-mail", channel="email", priority="urgent")

    assert replied(twilio_server, staff_client, "Kiedy odbior?").status_code == 200

    thread_id = delivery.message.thread_id
    db.session.expire_all()
    thread = db.session.get(Thread, thread_id)
    assert thread.queue_id == workshop.id and thread.priority == "normal"
    assert [event.meta["event"] for event in events_of(thread.id)] == ["rule_queue"]


def test_a_panel_message_goes_through_the_rules(app, owner, workshop):
    customer = panel_customer("Jan Kowalski", "jan.kowalski@example.com")
    published = publish(customer, "Wymieniamy ekran")
    add_rule(owner, "Panel", channel="portal", words="pilne", priority="urgent", tags="panel")
    panel = app.test_client()
    sign_in_customer(panel, customer)
    token = panel_csrf(panel, f"/threads/{published.thread_id}")

    panel.post(panel_path(f"/threads/{published.thread_id}/reply"), data={"body": "To PILNE", "csrf_token": token})

    db.session.expire_all()
    thread = db.session.get(Thread, published.thread_id)
    assert thread.priority == "urgent" and [tag.name for tag in thread.tags] == ["panel"]
    # the customer never sees the rules' events
    assert "The rule" not in panel.get(panel_path(f"/threads/{thread.id}")).get_data(as_text=True)


# --- trying the rules on a past message ---------------------------------------------------------------------------


def test_the_tester_shows_what_would_happen_without_changing_anything(owner_client, owner, workshop):
    mailbox = make_mailbox()
    make_customer()
    outcome = receive(mailbox, plain_mail(subject="Gwarancja", body="Reklamacja ekranu"))
    add_rule(owner, "Reklamacje", words="reklamacja", queue_id=workshop.id, stop=True)
    add_rule(owner, "Później", words="ekran", priority="high")
    add_rule(owner, "Tylko SMS", channel="sms", priority="low")
    message_id = outcome.item.message_id

    page = owner_client.get(PAGE).get_data(as_text=True)
    assert f'<option value="{message_id}"' in page

    tried = owner_client.get(f"{PAGE}?message_id={message_id}")
    assert tried.status_code == 200
    page = tried.get_data(as_text=True)
    assert re.findall(r'data-verdict="([^"]+)"', page) == ["Reklamacje"]
    assert "Queue: Warsztat" in page.split('id="try-result"')[1]
    db.session.expire_all()
    thread = db.session.get(Thread, outcome.thread.id)
    assert thread.queue_id is None and events_of(thread.id) == []

    for bad in ("abc", "999999", "-1", "2147483648", "99999999999999999999999"):
        response = owner_client.get(PAGE, query_string={"message_id": bad})
        assert response.status_code == 200 and "No received message has the number" in response.get_data(as_text=True)


# --- in a browser ------------------------------------------------------------------------------------------------


def test_the_owner_makes_a_rule_in_the_browser_and_the_next_mail_follows_it(owner_page, live_server, workshop):
    page = owner_page
    mailbox = make_mailbox()
    make_customer()
    page.goto(f"{live_server.url}/settings/")
    page.get_by_role("link", name="Rules for incoming mail").click()
    page.get_by_role("link", name="Add a rule").click()
    page.get_by_label("Name", exact=True).fill("Reklamacje")
    page.get_by_label("Arrived through").select_option("email")
    page.get_by_label("The subject or text contains any of these words").fill("reklamacja")
    page.get_by_label("Set the queue").select_option(label="Warsztat")
    page.get_by_label("Add tags").fill("gwarancja")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_contain_text("Reklamacje")
    expect(page.locator('tr[data-rule="Reklamacje"]')).to_contain_text("Queue: Warsztat")

    outcome = receive(mailbox, plain_mail(subject="Reklamacja", body="Nie ładuje."))
    page.goto(f"{live_server.url}/threads/{outcome.thread.id}")
    expect(page.locator(".timeline")).to_contain_text("The rule “Reklamacje” set the queue Warsztat.")
    expect(page.locator(".timeline")).to_contain_text("The rule “Reklamacje” added the tag gwarancja.")
