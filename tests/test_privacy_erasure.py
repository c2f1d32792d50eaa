"""Erasure: an owner anonymises a customer, after which nothing they said or are called remains in the database,
while the statistics still count their conversations."""
from __future__ import annotations

import json
import zlib

import pytest
from helpers import csrf_token
from inbound_helpers import make_mailbox, plain_mail, receive
from sqlalchemy import inspect, select, text

from app.attachments import logo_reference, path_for
from app.customers import create_customer, update_customer
from app.errors import ValidationFailed
from app.extensions import db
from app.inbound.sms import IncomingSms, receive_sms
from app.messaging.compose import compose
from app.inbound.record import accept_held
from app.messaging.merge import merge_threads
from app.messaging.move import move_message
from app.messaging.record import record_conversation
from app.messaging.thread_actions import add_note
from app.messaging.threads import open_thread
from app.messaging.stats import shop_stats
from app.models import (
    Attachment, AuditEvent, Customer, CustomerEmail, Delivery, InboundItem, KeptDraft, Mailbox, Message, PanelToken,
    Repair, Shop, Thread, Ticket,
)
from app.models.audit import record
from app.panel.credentials import issue_link, set_panel_state
from app.privacy.erasure import erase_customer
from app.repairs import create_repair, create_ticket, update_repair, update_ticket
from app.search import fold, search_thread_ids
from app.accounts.sms import configure_sms

pytestmark = pytest.mark.usefixtures("app")

NAME, EMAIL, EXTRA, PHONE = "Zbigniew Wróblewski", "zbyszek@example.com", "zw.praca@example.com", "600 700 800"
WORD, FILENAME = "Xylofonowy", "faktura-wroblewski.pdf"
# Every text that must be gone: whole and in parts, as stored and as the search index folds it.
TRACES = ["Zbigniew", "Wróblewski", "wroblewski", "zbyszek", "zw.praca", "600700800", WORD, "VIP-gaduła",
          "faktura-wrob", "szybka pękła"]


def mail_with_attachment(body: str) -> bytes:
    return (
        f"From: {NAME} <{EMAIL}>\r\nTo: serwis@shop.example\r\nSubject: Naprawa {WORD}\r\n"
        "Message-ID: <erase1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        f"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename={FILENAME}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDM+PgpzdHJlYW0KeJwDAAAAAAEKZW5kc3RyZWFtCmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK\r\n"
        "--b--\r\n"
    ).encode()


# Not the shared `customer`: one with everything a shop collects, to see all of it erased.
@pytest.fixture
def customer(staff):
    """A customer with everything a shop collects: mail with a file, SMS, a held SMS and mail, a STOP keyword,
    extra address, panel link, repair with its log, ticket, a staff note, messages waiting in the outbox."""
    mailbox = make_mailbox(store_attachments=True)
    configure_sms("AC" + "0" * 32, "token", from_number="+48500100200", actor="test")  # nothing is sent
    customer = create_customer(name=NAME, email=EMAIL, phone=PHONE, crm_note="VIP-gaduła", actor=staff)
    db.session.add(CustomerEmail(customer_id=customer.id, address=EXTRA))
    repair = create_repair(customer=customer, device="iPhone 12", description=f"szybka pękła, {WORD}")
    create_ticket(customer=customer, subject=f"Reklamacja {NAME}", description=WORD)
    customer.panel_password_hash = "$argon2id$secret"
    issue_link(customer, "login")
    db.session.commit()

    mail = receive(mailbox, mail_with_attachment(f"Dzień dobry, tu {NAME}. {WORD} telefon, tel. {PHONE}."))
    assert mail.status == "new_thread"
    thread = mail.thread
    thread.repair_id = repair.id
    compose(customer=customer, channels=["email", "sms"], body=f"Panie Zbigniewie, {WORD} gotowy.", thread=thread,
            author=staff)
    db.session.add(Message(thread_id=thread.id, kind="note", direction="internal", visible_to_customer=False,
                           author_user_id=staff.id, body_text=f"{NAME} dzwonił, {WORD}"))
    receive_sms(IncomingSms(sid="SM-held", sender="+48600700800", to="+48500100200", body=f"{WORD} sms"))
    receive_sms(IncomingSms(sid="SM-stop", sender="+48600700800", to="+48500100200", body="STOP"))
    receive(mailbox, plain_mail(sender=f"{NAME} <{EXTRA}>", subject=f"Auto: {WORD}", body=WORD, message_id=None,
                                extra="Auto-Submitted: auto-replied"))
    record("inbound.discard", by=staff, sender=EXTRA)
    update_customer(customer, actor=staff, consent_note=f"{NAME} zgodził się", marketing_consent=True)
    db.session.commit()
    return customer


@pytest.fixture
def other():
    """Another customer, whose data must survive the erasure untouched."""
    other = create_customer(name="Anna Nowak", email="anna@example.com", phone="600 100 300")
    db.session.commit()
    compose(customer=other, channels=["email"], body="Pani Anno, telefon Nokia gotowy.")
    db.session.commit()
    return other


def every_text_in_the_database() -> str:
    """Every text and binary column of every table the database has (the search index's own tables included),
    read raw, compressed raw copies decompressed, lower-cased and also folded as the search index folds."""
    found = []
    with db.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, memoryview):
                        value = bytes(value)
                    if isinstance(value, bytes):
                        try:
                            value = zlib.decompress(value)
                        except zlib.error:
                            pass
                        found.append(value.decode("utf-8", errors="replace"))
                    elif isinstance(value, (dict, list)):
                        found.append(json.dumps(value, ensure_ascii=False))
                    elif value is not None:
                        found.append(str(value))
    everything = "\n".join(found)
    return everything.lower() + "\n" + fold(everything)


def stats_page(client) -> str:
    """What the statistics page shows (its main part: the menu counts held mail, which erasure deletes)."""
    html = client.get("/stats/").get_data(as_text=True)
    return html[html.index("<main"):html.index("</main>")]


def stored_files(customer) -> list:
    return [path_for(sha) for sha in db.session.scalars(
        select(Attachment.sha256).join(Message).join(Thread).where(Thread.customer_id == customer.id))]


def erase(customer, owner):
    erase_customer(customer, actor=owner, confirmation=NAME)
    db.session.expire_all()


def test_after_erasure_no_text_of_the_customer_remains_anywhere_and_the_stats_still_count_the_threads(
        customer, other, owner, owner_client):
    before = every_text_in_the_database()
    assert all(trace.lower() in before for trace in TRACES)  # the scan sees what it looks for
    files = stored_files(customer)
    assert files and all(path.is_file() for path in files)
    stats_before, stats_page_before = shop_stats(), stats_page(owner_client)
    threads = db.session.scalar(select(db.func.count()).select_from(Thread).where(Thread.customer_id == customer.id))

    erase(customer, owner)

    after = every_text_in_the_database()
    left = [trace for trace in TRACES if trace.lower() in after or fold(trace) in after]
    assert left == []
    assert "anna nowak" in after and "nokia gotowy" in after  # nobody else's data went
    assert not any(path.exists() for path in files)
    stats_after = shop_stats()
    assert sum(day.opened for day in stats_after.days) == sum(day.opened for day in stats_before.days)
    assert stats_after.backlog == stats_before.backlog
    assert stats_page(owner_client) == stats_page_before
    assert db.session.scalar(select(db.func.count()).select_from(Thread)
                             .where(Thread.customer_id == customer.id)) == threads
    erased = db.session.get(Customer, customer.id)
    assert erased.name == f"Anonymised customer #{customer.id}" and erased.anonymized_at is not None
    assert (erased.email, erased.phone, erased.panel_password_hash) == (None, None, None)
    assert db.session.scalars(select(PanelToken).where(PanelToken.customer_id == customer.id)).all() == []
    messages = db.session.scalars(select(Message).join(Thread).where(Thread.customer_id == customer.id)).all()
    assert {(m.direction, m.channel) for m in messages} >= {("in", "email"), ("out", None), ("internal", None)}
    assert all(m.body_text == "" and m.created_at is not None for m in messages)
    waiting = db.session.scalars(select(Delivery).join(Message).join(Thread)
                                 .where(Thread.customer_id == customer.id)).all()
    assert {d.status for d in waiting} == {"cancelled"} and {d.recipient for d in waiting} == {""}
    assert db.session.get(Repair, db.session.scalars(select(Repair.id)).first()).number.startswith("R-")
    assert search_threads_for(WORD) == [] and search_threads_for("Nokia") != []
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.erase")).one()
    assert (audit.user_id, audit.target_id) == (owner.id, customer.id)


def search_threads_for(words: str) -> list:
    return db.session.scalars(search_thread_ids(words)).all()


def test_a_file_another_message_also_has_is_kept(customer, other, owner):
    [path] = stored_files(customer)
    [attachment] = db.session.scalars(select(Attachment)).all()
    message = db.session.scalars(select(Message).join(Thread).where(Thread.customer_id == other.id)).first()
    db.session.add(Attachment(message_id=message.id, filename="kopia.pdf", sha256=attachment.sha256, size=1))
    db.session.commit()
    erase(customer, owner)
    assert path.is_file()


@pytest.mark.parametrize("holder", ["logo", "draft"])
def test_a_file_the_shop_logo_or_an_undo_draft_also_has_is_kept(customer, owner, holder):
    """A customer's reply can carry the shop's logo back inline; Undo keeps a draft's files by their digest."""
    [path] = stored_files(customer)
    [attachment] = db.session.scalars(select(Attachment)).all()
    if holder == "logo":
        Shop.current().panel_logo_path = logo_reference(attachment.sha256)
    else:
        db.session.add(KeptDraft(token="t" * 64, user_id=owner.id, customer_id=None,
                                 data=json.dumps({"files": [{"sha256": attachment.sha256}]})))
    db.session.commit()
    erase(customer, owner)
    assert path.is_file()


def test_held_mail_and_sms_from_the_customers_address_and_number_are_deleted(customer, owner):
    held = db.session.scalars(select(InboundItem).where(InboundItem.message_id.is_(None))).all()
    assert {item.sender for item in held} >= {"+48600700800", EXTRA}
    erase(customer, owner)
    assert db.session.scalars(select(InboundItem).where(InboundItem.message_id.is_(None))).all() == []


def test_the_name_must_be_typed_to_confirm(customer, owner):
    with pytest.raises(ValidationFailed) as refused:
        erase_customer(customer, actor=owner, confirmation="Zbigniew")
    assert "confirmation" in refused.value.fields
    db.session.rollback()
    assert db.session.get(Customer, customer.id).name == NAME


# Over HTTP

def test_an_owner_erases_a_customer_from_the_card_by_typing_the_name(owner_client, customer):
    card = owner_client.get(f"/customers/{customer.id}").get_data(as_text=True)
    assert f"/customers/{customer.id}/erase" in card
    path = f"/customers/{customer.id}/erase"
    wrong = owner_client.post(path, data={"confirmation": "someone", "csrf_token": csrf_token(owner_client, path)})
    assert wrong.status_code == 422 and "Type the customer" in wrong.get_data(as_text=True)

    response = owner_client.post(path, data={"confirmation": "  zbigniew   wróblewski ",
                                             "csrf_token": csrf_token(owner_client, path)})

    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).anonymized_at is not None
    assert "Anonymised customer" in owner_client.get(f"/customers/{customer.id}").get_data(as_text=True)


def test_staff_cannot_erase_a_customer(staff_client, customer):
    assert f"/customers/{customer.id}/erase" not in staff_client.get(f"/customers/{customer.id}").get_data(as_text=True)
    assert staff_client.get(f"/customers/{customer.id}/erase").status_code == 403
    token = csrf_token(staff_client, f"/customers/{customer.id}")
    response = staff_client.post(f"/customers/{customer.id}/erase", data={"confirmation": NAME, "csrf_token": token})
    assert response.status_code == 403
    assert db.session.get(Customer, customer.id).anonymized_at is None


def test_erasing_needs_the_csrf_token(owner_client, customer):
    response = owner_client.post(f"/customers/{customer.id}/erase", data={"confirmation": NAME})
    assert response.status_code == 400
    assert db.session.get(Customer, customer.id).anonymized_at is None


def test_an_anonymised_customers_consents_cannot_be_switched_back_on(owner_client, owner, customer):
    erase(customer, owner)
    path = f"/customers/{customer.id}?tab=consents"
    response = owner_client.post(f"/customers/{customer.id}/consents", data={
        "marketing_consent": "y", "csrf_token": csrf_token(owner_client, path)})
    assert response.status_code == 404
    assert db.session.get(Customer, customer.id).marketing_consent is False


# Nothing writes an erased customer back: one guard in the domain, every door refused

@pytest.fixture
def erased(owner, staff):
    """A customer with a repair, a ticket and a thread, then erased."""
    make_mailbox()
    customer = create_customer(name=NAME, email=EMAIL, phone=PHONE, crm_note="VIP")
    repair = create_repair(customer=customer, device="iPhone 12", description="szybka")
    ticket = create_ticket(customer=customer, subject="Reklamacja")
    compose(customer=customer, channels=["email"], body="Dzień dobry", repair=repair, author=staff)
    db.session.commit()
    erase(customer, owner)
    return db.session.get(Customer, customer.id), db.session.get(Repair, repair.id), ticket.id


def _unchanged(customer_id: int) -> None:
    db.session.rollback()
    db.session.expire_all()
    customer = db.session.get(Customer, customer_id)
    assert customer.name.startswith("Anonymised customer") and customer.email is None and customer.crm_note == ""
    assert customer.extra_emails == [] and customer.panel_state in ("none", "disabled")
    assert NAME.lower() not in every_text_in_the_database()


def test_every_domain_write_to_an_erased_customer_is_refused(erased, staff, owner):
    customer, repair, ticket_id = erased
    thread = db.session.scalars(select(Thread).where(Thread.customer_id == customer.id)).first()
    held = receive(db.session.scalars(select(Mailbox)).first(),
                   plain_mail(sender="Ktoś Nowy <nowy@example.com>", message_id="<new@example.com>"))
    other = create_customer(name="Anna Nowak", email="anna@example.com")
    arrived = receive(db.session.scalars(select(Mailbox)).first(),
                      plain_mail(sender="Anna Nowak <anna@example.com>", message_id="<anna@example.com>"))
    db.session.commit()
    assert arrived.thread.customer_id == other.id
    held_message = arrived.thread.messages[0]
    writes = {
        "edit": lambda: update_customer(customer, actor=staff, name=NAME),
        "crm note": lambda: update_customer(customer, actor=staff, crm_note=NAME),
        "consent": lambda: update_customer(customer, actor=staff, marketing_consent=True),
        "thread": lambda: open_thread(customer, subject=NAME),
        "message": lambda: compose(customer=customer, channels=["portal"], body=NAME, author=staff),
        "conversation": lambda: record_conversation(customer=customer, source="phone", body=NAME, author=staff,
                                                    subject=NAME),
        "note": lambda: add_note(thread, NAME, staff),
        "repair": lambda: create_repair(customer=customer, device=NAME),
        "repair edit": lambda: update_repair(repair, actor=staff, description=NAME),
        "ticket": lambda: create_ticket(customer=customer, subject=NAME),
        "ticket edit": lambda: update_ticket(db.session.get(Ticket, ticket_id), actor=staff,
                                                description=NAME),
        "held mail and its address": lambda: accept_held(held.item, customer, actor=staff, add_address=True),
        "panel": lambda: set_panel_state(customer, "active", actor=staff),
        "merge": lambda: merge_threads(thread, Thread(customer_id=customer.id, subject=NAME), staff),
        "move a message in": lambda: move_message(held_message, thread, staff),
    }
    for what, write in writes.items():
        with pytest.raises(ValidationFailed) as refused:
            write()
        assert any("erased" in message for message in refused.value.fields.values()), what
        _unchanged(customer.id)
        customer = db.session.get(Customer, customer.id)
        thread, repair = db.session.get(Thread, thread.id), db.session.get(Repair, repair.id)


def test_the_staff_edit_form_and_the_crm_note_cannot_write_an_erased_customer_back(staff_client, erased):
    customer, _repair, _ticket = erased
    path = f"/customers/{customer.id}/edit"
    response = staff_client.post(path, data={"name": NAME, "email": EMAIL, "phone": PHONE, "crm_note": "VIP",
                                             "csrf_token": csrf_token(staff_client, path)})
    assert response.status_code == 422
    assert "erased" in response.get_data(as_text=True) or "usunięte" in response.get_data(as_text=True)
    _unchanged(customer.id)

    thread = db.session.scalars(select(Thread).where(Thread.customer_id == customer.id)).first()
    response = staff_client.post(f"/threads/{thread.id}/crm-note", data={
        "crm_note": NAME, "csrf_token": csrf_token(staff_client, f"/threads/{thread.id}")}, follow_redirects=True)
    assert response.status_code == 200
    _unchanged(customer.id)

    response = staff_client.post("/compose", data={
        "customer_id": customer.id, "channels": ["portal"], "body": NAME,
        "csrf_token": csrf_token(staff_client, f"/threads/{thread.id}")}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "erased" in response.get_data(as_text=True) or "usunięte" in response.get_data(as_text=True)
    _unchanged(customer.id)
