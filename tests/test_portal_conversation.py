"""The panel shows the whole conversation: what the shop wrote to the customer by e-mail, SMS or the panel once it
reached them, what they wrote back by any channel, how each travelled; never notes, events, messages that did not
go, private threads or anyone else's; files only of what the customer sees."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from inbound_helpers import make_mailbox, plain_mail, receive, sample, send_mail
from panel_helpers import panel_csrf, panel_customer, panel_path, publish, sign_in_customer
from sqlalchemy import event, select

from app.attachments import store
from app.extensions import db
from app.inbound.sms import accept_held_sms
from app.messaging.compose import compose, undo
from app.messaging.thread_actions import add_event, add_note
from app.models import Attachment, InboundItem, Message, Shop, Thread, utcnow
from app.outbox import dispatch_pass
from app.outbox.actions import cancel
from app.panel import credentials
from app.repairs import create_repair
from app.accounts.sms import configure_sms
from test_portal_inbox import PNG

MOBILE = "+48600100200"
SHOP_NUMBER = "+48500100200"
INBOUND_SMS_URL = "http://shop.example/webhooks/twilio/sms"


@pytest.fixture
def jan(app):
    """Jan with an e-mail address the sample mails come from, a phone, an active panel and a repair."""
    customer = panel_customer("Jan Kowalski", "jan.kowalski@example.com", phone=MOBILE)
    repair = create_repair(customer=customer, device="iPhone 12")
    db.session.commit()
    return repair


@pytest.fixture
def sms(twilio_server):
    configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number=SHOP_NUMBER,
                  api_base_url=twilio_server.url, actor="test")
    db.session.commit()
    return twilio_server


def dispatch_after_undo() -> dict:
    return dispatch_pass(now=utcnow() + timedelta(seconds=Shop.current().undo_seconds + 1))


def thread_page(client, thread_id: int) -> str:
    response = client.get(panel_path(f"/threads/{thread_id}"))
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def entries(page: str) -> list[str]:
    """The panel thread's messages as text, in order, one string each (header and body)."""
    found = re.findall(r'<article class="panel-message[^"]*"[^>]*>(.*?)</article>', page, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", entry).split()) for entry in found]


def test_an_email_and_sms_conversation_shows_in_the_panel_with_how_each_travelled(app, client, jan, sms):
    repair = jan
    customer = repair.customer
    mailbox = make_mailbox()
    quote = send_mail(customer, repair=repair, body="Wycena naprawy: 450 zł.")
    receive(mailbox, sample("gmail_pl_reply.eml", quote))  # Jan answers by e-mail, quoting the shop's mail
    texted = compose(customer=customer, channels=["sms"], body="Telefon gotowy do odbioru.", repair=repair)
    db.session.commit()
    assert dispatch_after_undo()["sent"] == 1
    assert sms.text(client, INBOUND_SMS_URL, MOBILE, "Dziękuję, będę o 17.", SHOP_NUMBER).status_code == 200
    assert texted.thread_id == quote.thread_id

    panel = app.test_client()
    sign_in_customer(panel, customer)
    inbox = panel.get(panel_path("/")).get_data(as_text=True)
    assert "No messages yet" not in inbox
    assert f"{repair.number} · iPhone 12" in inbox and "Dziękuję, będę o 17." in inbox  # the newest is the preview
    assert "panel-thread is-unread" in inbox  # the SMS from the shop is not read yet

    page = thread_page(panel, quote.thread_id)
    shown = entries(page)
    assert len(shown) == 4
    assert "sent by e-mail" in shown[0] and "Wycena naprawy: 450 zł." in shown[0]
    assert "You · your e-mail" in shown[1] and "cena 450 zł mi odpowiada" in shown[1]
    assert "sent as SMS" in shown[2] and "Telefon gotowy do odbioru." in shown[2]
    assert "You · your SMS" in shown[3] and "Dziękuję, będę o 17." in shown[3]
    # The mail shows as text: its HTML never, the quoted history folded away as on the staff page.
    assert "gmail_quote" not in page and "<blockquote" not in page
    quoted = re.search(r'<details class="panel-quote">(.*?)</details>', page, re.S).group(1)
    assert "Show quoted text" in quoted and "2 dni robocze" in quoted
    assert "2 dni robocze" not in page.replace(quoted, "")
    # Neither the customer's address nor their number is printed back at them.
    assert "jan.kowalski@example.com" not in page and MOBILE not in page

    # Reading the thread marks the shop's messages read, whichever channel carried them.
    assert "panel-thread is-unread" not in panel.get(panel_path("/")).get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Message, texted.id).read_by_customer_at is not None
    assert db.session.get(Message, quote.id).read_by_customer_at is not None


def test_panel_messages_are_labelled_written_in_the_panel(app, jan, staff, sms):
    published = publish(jan.customer, "Wymieniamy ekran", repair=jan, author=staff)
    both = publish(jan.customer, "Gotowe", repair=jan, author=staff, channels=("portal", "sms"))
    panel = app.test_client()
    sign_in_customer(panel, jan.customer)
    token = panel_csrf(panel, f"/threads/{published.thread_id}")
    panel.post(panel_path(f"/threads/{published.thread_id}/reply"), data={"body": "Dobrze", "csrf_token": token})
    shown = entries(thread_page(panel, published.thread_id))
    assert both.thread_id == published.thread_id and len(shown) == 3
    assert "written in the panel" in shown[0] and "sent as SMS" not in shown[0]
    assert "sent as SMS · written in the panel" in shown[1]
    assert "You · written in the panel" in shown[2] and "Dobrze" in shown[2]


def test_the_panel_never_shows_notes_events_or_messages_that_did_not_go(app, jan, staff, sms):
    repair = jan
    customer = repair.customer
    mailbox = make_mailbox()
    sent = send_mail(customer, repair=repair, body="Widoczna wycena")
    thread = sent.thread
    add_note(thread, "Notatka: klient marudzi", staff)
    add_event(thread, staff, "status", status="closed")
    undone = compose(customer=customer, channels=["sms"], body="Cofnięta wiadomość", repair=repair, author=staff)
    db.session.commit()
    undo(undone, staff)
    db.session.commit()
    cancelled = compose(customer=customer, channels=["sms"], body="Anulowana wiadomość", repair=repair, author=staff)
    db.session.commit()
    cancel(cancelled.deliveries[0], staff)
    db.session.commit()
    compose(customer=customer, channels=["email", "sms"], body="Jeszcze w oknie cofania", repair=repair, author=staff)
    compose(customer=customer, channels=["sms"], body="Zaplanowana na jutro", repair=repair, author=staff,
            send_at=utcnow() + timedelta(days=1))
    failed = compose(customer=customer, channels=["email"], body="Nieudana wysyłka", repair=repair, author=staff)
    failed.deliveries[0].status = "failed"
    bounced = compose(customer=customer, channels=["email"], body="Odbita wysyłka", repair=repair, author=staff)
    bounced.deliveries[0].status = "bounced"
    db.session.commit()
    # A supplier's answer to a forward of the thread, and the customer's out-of-office, come into it too.
    receive(mailbox, plain_mail(sender="Hurtownia <zamowienia@hurtownia.example.com>",
                                to=f"serwis+{thread.token}@shop.example", subject="Re: Fwd",
                                body="Część dostępna od ręki", message_id="<supplier-1@hurtownia.example.com>"))
    receive(mailbox, sample("autoreply_pl.eml", sent))
    # Mail from a stranger is held, never threaded.
    receive(mailbox, plain_mail(sender="Obcy <obcy@example.net>", body="Wiadomość od obcego",
                                message_id="<stranger-1@example.net>"))
    db.session.expire_all()
    assert any("Część dostępna" in m.body_text for m in thread.messages if m.direction == "in")

    panel = app.test_client()
    sign_in_customer(panel, customer)
    page = thread_page(panel, thread.id)
    assert [entry for entry in entries(page) if "Widoczna wycena" in entry]
    assert len(entries(page)) == 1
    for hidden in ("Notatka", "klient marudzi", "Cofnięta", "Anulowana", "Jeszcze w oknie cofania",
                   "Zaplanowana", "Nieudana", "Odbita", "Część dostępna", "Wiadomość od obcego",
                   "zamowienia@hurtownia", "automatyczna", "Automatic"):
        assert hidden not in page, hidden
    inbox = panel.get(panel_path("/")).get_data(as_text=True)
    assert "Widoczna wycena" in inbox and "Wiadomość od obcego" not in inbox


def test_private_threads_and_other_customers_threads_never_show(app, jan, staff):
    customer = jan.customer
    other_repair = create_repair(customer=customer, device="iPad")
    anna = panel_customer("Anna Nowak", "anna@example.com")
    make_mailbox()
    shown = send_mail(customer, repair=jan, body="Wycena dla Jana")
    private = send_mail(customer, repair=other_repair, body="Prywatna sprawa")
    private.thread.private = True
    photo = store(io.BytesIO(PNG), "prywatne.png")
    private.attachments.append(Attachment(filename="prywatne.png", content_type="image/png", size=len(PNG),
                                          sha256=photo.sha256))
    theirs = send_mail(anna, body="Wycena dla Anny")
    db.session.commit()

    panel = app.test_client()
    sign_in_customer(panel, customer)
    inbox = panel.get(panel_path("/")).get_data(as_text=True)
    assert "Wycena dla Jana" in inbox
    assert "Prywatna sprawa" not in inbox and "Wycena dla Anny" not in inbox and "iPad" not in inbox.split(
        "Write to the shop")[0]
    for path in (f"/threads/{private.thread_id}", f"/threads/{theirs.thread_id}",
                 f"/attachments/{private.attachments[0].id}"):
        assert panel.get(panel_path(path)).status_code == 404, path
    assert thread_page(panel, shown.thread_id)

    # Writing about the repair whose thread is private opens a new thread: nothing of the private one shows.
    token = panel_csrf(panel, f"/new?repair_id={other_repair.id}")
    response = panel.post(panel_path(f"/new?repair_id={other_repair.id}"),
                          data={"body": "Co z iPadem?", "csrf_token": token})
    assert response.status_code == 303
    new_thread = db.session.scalars(select(Thread).where(Thread.repair_id == other_repair.id,
                                                         Thread.private.is_(False))).one()
    assert response.headers["Location"] == panel_path(f"/threads/{new_thread.id}")
    page = thread_page(panel, new_thread.id)
    assert "Co z iPadem?" in page and "Prywatna sprawa" not in page


def test_an_access_code_session_sees_only_its_repairs_conversation(app, jan, sms, client):
    customer = jan.customer
    other_repair = create_repair(customer=customer, device="iPad")
    db.session.commit()
    mailbox = make_mailbox(store_attachments=True)
    mail = send_mail(customer, repair=jan, body="O iPhonie")
    other = send_mail(customer, repair=other_repair, body="O iPadzie")
    receive(mailbox, sample("attachment_rfc2231_pl.eml", other))  # Jan's files about the iPad
    other_file = db.session.scalars(select(Attachment).join(Message).where(
        Message.thread_id == other.thread_id, Attachment.sha256.is_not(None))).first()
    assert other_file is not None
    code = credentials.ensure_access_code(jan)
    db.session.commit()

    panel = app.test_client()
    token = panel_csrf(panel, "/sign-in")
    response = panel.post(panel_path("/access"), data={"code": code, "digits": MOBILE[-3:], "csrf_token": token})
    assert response.status_code == 302
    inbox = panel.get(panel_path("/")).get_data(as_text=True)
    assert "O iPhonie" in inbox and "O iPadzie" not in inbox and "Faktura" not in inbox
    assert "O iPhonie" in thread_page(panel, mail.thread_id)
    assert panel.get(panel_path(f"/threads/{other.thread_id}")).status_code == 404
    assert panel.get(panel_path(f"/attachments/{other_file.id}")).status_code == 404

    full = app.test_client()
    sign_in_customer(full, customer)
    assert full.get(panel_path(f"/attachments/{other_file.id}")).status_code == 200


def test_files_of_visible_mail_download_and_nothing_else_does(app, jan, staff):
    customer = jan.customer
    mailbox = make_mailbox(store_attachments=True)
    sent = send_mail(customer, repair=jan, body="Prosimy o zdjęcia")
    receive(mailbox, sample("attachment_rfc2231_pl.eml", sent))
    files = list(db.session.scalars(select(Attachment).join(Message).where(
        Message.thread_id == sent.thread_id, Message.direction == "in", Attachment.sha256.is_not(None))))
    assert files
    photo = store(io.BytesIO(PNG), "notatka.png")
    note = add_note(sent.thread, "Zdjęcie do notatki", staff)
    note.attachments.append(Attachment(filename="notatka.png", content_type="image/png", size=len(PNG),
                                       sha256=photo.sha256))
    waiting = compose(customer=customer, channels=["email"], body="Z plikiem, w oknie cofania", repair=jan,
                      author=staff, attachments=[store(io.BytesIO(PNG), "czeka.png")])
    anna = panel_customer("Anna Nowak", "anna@example.com")
    theirs = send_mail(anna, body="Dla Anny")
    theirs.attachments.append(Attachment(filename="anny.png", content_type="image/png", size=len(PNG),
                                         sha256=photo.sha256))
    db.session.commit()

    panel = app.test_client()
    sign_in_customer(panel, customer)
    page = thread_page(panel, sent.thread_id)
    for file in files:
        assert f"/attachments/{file.id}" in page
        response = panel.get(panel_path(f"/attachments/{file.id}"))
        assert response.status_code == 200 and response.headers["Content-Disposition"].startswith("attachment")
    for refused in (note.attachments[0], waiting.attachments[0], theirs.attachments[0]):
        assert f"/attachments/{refused.id}" not in page
        assert panel.get(panel_path(f"/attachments/{refused.id}")).status_code == 404, refused.filename


def test_staff_see_the_customers_name_on_their_sms_and_panel_messages(app, jan, staff, staff_client, sms):
    customer = jan.customer
    published = publish(customer, "Gotowe", repair=jan, author=staff, channels=("portal", "sms"))
    thread = published.thread
    assert sms.text(staff_client, INBOUND_SMS_URL, MOBILE, "SMS od Jana", SHOP_NUMBER).status_code == 200
    panel = app.test_client()
    sign_in_customer(panel, customer)
    token = panel_csrf(panel, f"/threads/{thread.id}")
    panel.post(panel_path(f"/threads/{thread.id}/reply"), data={"body": "Z panelu", "csrf_token": token})
    db.session.expire_all()
    [by_sms, in_panel] = db.session.scalars(select(Message).where(Message.direction == "in")
                                            .order_by(Message.id)).all()
    assert by_sms.thread_id == thread.id and in_panel.thread_id == thread.id

    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    for message in (by_sms, in_panel):
        head = re.search(rf'id="message-{message.id}">\s*<div class="entry-head">\s*<strong>(.*?)</strong>', page,
                         re.S).group(1)
        assert head.strip() == "Jan Kowalski", head
    printed = staff_client.get(f"/threads/{thread.id}/print?show=1&m={by_sms.id}&m={in_panel.id}")
    froms = re.findall(r"<dt>From</dt><dd>(.*?)</dd>", printed.get_data(as_text=True))
    assert froms == ["Jan Kowalski", "Jan Kowalski"]
    choose = staff_client.get(f"/threads/{thread.id}/print").get_data(as_text=True)
    assert MOBILE not in choose and "jan.kowalski@example.com" not in choose


def test_the_panel_inbox_is_one_query_however_many_threads(app, staff):
    customer = panel_customer("Jan Kowalski", "jan@example.com")

    def statements_for_inbox() -> int:
        client = app.test_client()
        sign_in_customer(client, customer)
        seen: list[str] = []

        def count(conn, cursor, statement, *args):
            if statement.lstrip().upper().startswith("SELECT") and "messages" in statement:
                seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert client.get(panel_path("/"), headers={"HX-Request": "true"}).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    for number in range(2):
        repair = create_repair(customer=customer, device=f"Telefon {number}")
        db.session.commit()
        publish(customer, f"Wiadomość {number}", repair=repair, author=staff)
    few = statements_for_inbox()
    for number in range(2, 7):
        repair = create_repair(customer=customer, device=f"Telefon {number}")
        db.session.commit()
        publish(customer, f"Wiadomość {number}", repair=repair, author=staff, attachments=[
            store(io.BytesIO(PNG), f"plik{number}.png")])
    assert statements_for_inbox() == few == 1


def test_an_sms_from_another_number_accepted_for_a_customer_is_named_for_them(app, jan, staff, staff_client, sms):
    """A held SMS staff put into a customer's conversation opens a thread named for the customer, not the number."""
    other_number = "+48600999888"
    assert sms.text(staff_client, INBOUND_SMS_URL, other_number, "Piszę z telefonu żony", SHOP_NUMBER).status_code \
        == 200
    item = db.session.scalars(select(InboundItem).where(InboundItem.status == "held")).one()
    thread = accept_held_sms(item, jan.customer, actor=staff)
    db.session.commit()
    assert thread.subject == "SMS from Jan Kowalski"
    row = re.search(rf'<tr id="thread-{thread.id}".*?</tr>', staff_client.get("/?view=open").get_data(as_text=True),
                    re.S).group(0)
    assert "SMS from Jan Kowalski" in row and other_number not in row
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert re.search(r'<div class="entry-head">\s*<strong>Jan Kowalski</strong>', page)
