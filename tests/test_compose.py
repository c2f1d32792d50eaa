"""Writing to a customer from the staff UI: channels checked up front, the SMS counter, undo, send later, cancel."""
from __future__ import annotations

import email
import email.policy
import io
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from app.customers import create_customer
from app.extensions import db
from app.attachments import store
from app.messaging.compose import compose
from app.messaging.forward import forward_thread
from app.messaging.thread_actions import add_event, add_note
from app.models import Attachment, AuditEvent, Delivery, Message, Shop, Thread, utcnow
from app.outbox import dispatch_pass
from helpers import csrf_token, sign_in

MOBILE = "+48600100200"


def post_compose(client, **fields):
    data = {"csrf_token": csrf_token(client, "/compose?customer_id=%s" % fields["customer_id"]), **fields}
    return client.post("/compose", data=data, content_type="multipart/form-data")


def test_a_message_from_a_repair_card_lands_in_the_repairs_thread_on_email_and_sms(
        staff_client, mailbox, sms_account, customer, repair):
    card = staff_client.get(f"/repairs/{repair.id}").get_data(as_text=True)
    assert f"/compose?repair_id={repair.id}" in card  # the card's "Send message"

    response = post_compose(staff_client, customer_id=customer.id, repair_id=repair.id,
                            channels=["email", "sms"], body="Dzień dobry, telefon jest gotowy do odbioru.")
    assert response.status_code == 302
    thread = db.session.scalars(db.select(Thread)).one()
    assert response.headers["Location"].endswith(f"/threads/{thread.id}")
    assert thread.repair_id == repair.id and thread.customer_id == customer.id
    message = thread.messages[0]
    assert message.subject == repair.device  # the mail adds "[#R-…]" on the way out (test_email_channel), once
    deliveries = {d.channel: d for d in message.deliveries}
    assert set(deliveries) == {"email", "sms"}
    assert deliveries["email"].recipient == "jan@example.com" and deliveries["sms"].recipient == MOBILE
    assert all(d.status == "scheduled" for d in deliveries.values())
    wait = deliveries["sms"].next_attempt_at - utcnow()
    assert timedelta(seconds=20) < wait <= timedelta(seconds=30)  # the shop's undo window

    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "About repair" in page or "naprawy" in page
    assert repair.number in page and "data-undo-toast" in page

    tab = staff_client.get(f"/repairs/{repair.id}?tab=messages").get_data(as_text=True)
    assert "telefon jest gotowy do odbioru" in tab

    # A second message from the card joins the same thread.
    post_compose(staff_client, customer_id=customer.id, repair_id=repair.id, channels=["sms"], body="Przypomnienie")
    assert db.session.scalar(db.select(db.func.count(Thread.id))) == 1


def test_a_channel_that_cannot_reach_the_customer_is_disabled_and_refused_with_the_reason(
        staff_client, mailbox, sms_account):
    customer = create_customer(name="Anna Bez Maila", phone="+48 22 123 45 67")  # a Warsaw landline
    db.session.commit()
    page = staff_client.get(f"/compose?customer_id={customer.id}").get_data(as_text=True)
    email_box = re.search(r'<input type="checkbox" name="channels" value="email"[^>]*>', page).group(0)
    sms_box = re.search(r'<input type="checkbox" name="channels" value="sms"[^>]*>', page).group(0)
    assert "disabled" in email_box and "disabled" in sms_box
    assert 'id="channel-email-why"' in page and 'id="channel-sms-why"' in page

    response = post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Halo")
    assert response.status_code == 422
    assert 'class="error" id="channel-email-why"' in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Message.id))) == 0


def test_nothing_is_stored_without_a_channel_or_a_body(staff_client, mailbox, customer):
    response = post_compose(staff_client, customer_id=customer.id, body="  ")
    assert response.status_code == 422
    assert db.session.scalar(db.select(db.func.count(Message.id))) == 0


def test_the_sms_counter_follows_polish_letters_and_the_plain_switch(staff_client):
    token = csrf_token(staff_client, "/")
    plain = staff_client.post("/compose/sms-count", data={"body": "a" * 100}, headers={"X-CSRFToken": token})
    assert 'data-sms-encoding="GSM-7"' in plain.get_data(as_text=True)
    polish = staff_client.post("/compose/sms-count", data={"body": "ą" * 100}, headers={"X-CSRFToken": token})
    html = polish.get_data(as_text=True)
    assert 'data-sms-encoding="UCS-2"' in html and 'data-sms-parts="2"' in html
    saved = staff_client.post("/compose/sms-count", data={"body": "ą" * 100, "sms_plain": "y"},
                              headers={"X-CSRFToken": token}).get_data(as_text=True)
    assert 'data-sms-encoding="GSM-7"' in saved and 'data-sms-parts="1"' in saved
    assert staff_client.post("/compose/sms-count", data={"body": "x"}).status_code == 400  # CSRF


def test_undo_within_the_window_takes_the_message_back_for_editing(staff_client, mailbox, customer):
    post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Pomyłka w kwocie: 100 zł")
    message = db.session.scalars(db.select(Message)).one()
    response = staff_client.post(f"/messages/{message.id}/undo",
                                 data={"csrf_token": csrf_token(staff_client, f"/threads/{message.thread_id}")})
    assert response.status_code == 302  # Post/Redirect/Get: the address bar shows the compose page, not /undo
    location = response.headers["Location"]
    assert location.startswith("/compose?") and f"customer_id={customer.id}" in location
    page = staff_client.get(location)
    assert page.status_code == 200
    assert "Pomyłka w kwocie: 100 zł" in page.get_data(as_text=True)  # back in the editor
    again = staff_client.get(location).get_data(as_text=True)  # reloading shows the text again, undoes nothing
    assert "Pomyłka w kwocie: 100 zł" in again
    assert db.session.scalar(db.select(db.func.count(Message.id))) == 0
    assert db.session.scalar(db.select(db.func.count(Delivery.id))) == 0
    assert db.session.scalar(db.select(db.func.count(Thread.id))) == 0  # opened for it alone


def test_undo_is_refused_once_the_dispatcher_has_claimed_the_message(staff_client, mailbox, customer):
    post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Już w drodze")
    message = db.session.scalars(db.select(Message)).one()
    message.deliveries[0].status = "sending"
    db.session.commit()
    response = staff_client.post(f"/messages/{message.id}/undo",
                                 data={"csrf_token": csrf_token(staff_client, f"/threads/{message.thread_id}")},
                                 follow_redirects=True)
    assert db.session.get(Message, message.id) is not None
    assert "Too late to undo" in response.get_data(as_text=True) or "Za późno" in response.get_data(as_text=True)


def test_the_draft_taken_back_is_only_its_authors_and_sending_it_again_forgets_it(
        app, staff_client, owner, mailbox, customer):
    post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Tekst do poprawy")
    message = db.session.scalars(db.select(Message)).one()
    location = staff_client.post(f"/messages/{message.id}/undo", data={
        "csrf_token": csrf_token(staff_client, f"/threads/{message.thread_id}")}).headers["Location"]
    draft = re.search(r"draft=([\w-]+)", location).group(1)

    other = app.test_client()
    sign_in(other, owner)
    assert "Tekst do poprawy" not in other.get(location).get_data(as_text=True)  # someone else's draft
    assert "Tekst do poprawy" not in staff_client.get("/compose?customer_id=%s&draft=..%%2F..%%2Fx" % customer.id
                                                      ).get_data(as_text=True)

    page = staff_client.get(location).get_data(as_text=True)
    assert f'name="draft" value="{draft}"' in page
    response = post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Tekst poprawiony",
                            draft=draft)
    assert response.status_code == 302
    assert "Tekst do poprawy" not in staff_client.get(location).get_data(as_text=True)  # sent: forgotten


def test_after_sending_the_thread_shows_the_undo_toast_and_no_empty_notice(staff_client, mailbox, customer):
    response = post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Gotowe")
    message = db.session.scalars(db.select(Message)).one()
    html = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "data-undo-toast" in html
    assert 'class="flashes"' not in html and f">{message.id}</div>" not in html
    later = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "data-undo-toast" not in later  # once


def _undo(client, message_id: int, thread_id: int):
    return client.post(f"/messages/{message_id}/undo",
                       data={"csrf_token": csrf_token(client, f"/threads/{thread_id}")}, follow_redirects=True)


def _undo_audited() -> int:
    return db.session.scalar(db.select(db.func.count(AuditEvent.id)).where(AuditEvent.action == "message.undo"))


def test_undo_cannot_delete_a_customers_mail_a_note_an_event_or_an_automatic_message(
        staff_client, staff, mailbox, customer):
    """Undo takes back only what staff wrote and has not gone: never the customer's words or the thread's history."""
    thread = Thread(customer_id=customer.id, subject="Pytanie o naprawę")
    db.session.add(thread)
    db.session.flush()
    received = Message(thread_id=thread.id, kind="message", direction="in", channel="email",
                       sender="jan@example.com", body_text="Moje słowa, tylko moje")
    db.session.add(received)
    db.session.flush()
    note = add_note(thread, "Notatka zespołu", staff)
    event = add_event(thread, staff, "status", status="closed")
    automatic = compose(customer=customer, channels=["email"], body="Powiadomienie automatyczne",
                        thread=thread, automatic=True, source="notification")
    forwarded = forward_thread(thread, to="rzeczoznawca@example.net", actor=staff)
    db.session.commit()
    messages_before = db.session.scalar(db.select(db.func.count(Message.id)))

    for message in (received, note, event, automatic, forwarded):
        response = _undo(staff_client, message.id, thread.id)
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert "Only a message written by staff" in html or "Cofnąć można tylko" in html
        assert "Moje słowa, tylko moje" not in html.split("<textarea")[-1]  # no compose form filled with them
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(Message.id))) == messages_before
    assert db.session.get(Thread, thread.id) is not None
    assert {d.status for d in db.session.get(Message, automatic.id).deliveries} == {"scheduled"}
    assert _undo_audited() == 0


def test_undo_is_refused_once_the_undo_window_has_passed(staff_client, mailbox, customer):
    post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Po czasie")
    message = db.session.scalars(db.select(Message)).one()
    message.send_at = utcnow() - timedelta(seconds=1)  # due: the next dispatch pass hands it over
    db.session.commit()
    html = _undo(staff_client, message.id, message.thread_id).get_data(as_text=True)
    assert "Too late to undo" in html or "Za późno" in html
    db.session.expire_all()
    assert db.session.get(Message, message.id) is not None and _undo_audited() == 0


def test_a_scheduled_message_can_be_undone_until_it_is_handed_over(staff_client, mailbox, customer):
    local = (datetime.now(ZoneInfo("Europe/Warsaw")) + timedelta(days=1)).replace(second=0, microsecond=0)
    post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Na jutro",
                 send_at=local.strftime("%Y-%m-%dT%H:%M"))
    message = db.session.scalars(db.select(Message)).one()
    html = _undo(staff_client, message.id, message.thread_id).get_data(as_text=True)
    assert "Na jutro" in html
    assert db.session.scalar(db.select(db.func.count(Message.id))) == 0
    event = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "message.undo")).one()
    assert event.details["channels"] == ["email"]


def test_cancel_from_the_thread_refuses_a_customers_mail_and_changes_nothing(staff_client, customer):
    thread = Thread(customer_id=customer.id, subject="Pytanie")
    db.session.add(thread)
    db.session.flush()
    received = Message(thread_id=thread.id, direction="in", channel="email", body_text="Od klienta")
    db.session.add(received)
    db.session.commit()
    response = staff_client.post(f"/threads/{thread.id}/messages/{received.id}/cancel",
                                 data={"csrf_token": csrf_token(staff_client, f"/threads/{thread.id}")},
                                 follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Only a message the shop sends can be cancelled" in html or "Anulować można tylko" in html
    assert db.session.get(Message, received.id) is not None


def test_send_later_is_kept_in_the_shops_time_and_limited_to_fourteen_days(staff_client, mailbox, customer):
    local = (datetime.now(ZoneInfo("Europe/Warsaw")) + timedelta(days=2)).replace(second=0, microsecond=0)
    post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Przypomnienie o odbiorze",
                 send_at=local.strftime("%Y-%m-%dT%H:%M"))
    delivery = db.session.scalars(db.select(Delivery)).one()
    assert delivery.next_attempt_at == local.astimezone(timezone.utc)

    too_far = (datetime.now(ZoneInfo("Europe/Warsaw")) + timedelta(days=15)).strftime("%Y-%m-%dT%H:%M")
    response = post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Za daleko",
                            send_at=too_far)
    assert response.status_code == 422
    assert db.session.scalar(db.select(db.func.count(Delivery.id))) == 1


def test_cancel_from_the_thread_stops_what_waits(staff_client, mailbox, sms_account, customer):
    post_compose(staff_client, customer_id=customer.id, channels=["email", "sms"], body="Do anulowania")
    message = db.session.scalars(db.select(Message)).one()
    response = staff_client.post(f"/threads/{message.thread_id}/messages/{message.id}/cancel",
                                 data={"csrf_token": csrf_token(staff_client, f"/threads/{message.thread_id}")})
    assert response.status_code == 302
    db.session.expire_all()
    assert {d.status for d in db.session.get(Message, message.id).deliveries} == {"cancelled"}
    assert dispatch_pass()["claimed"] == 0


def test_attachments_are_typed_by_content_and_programs_are_refused(app, staff_client, mailbox, customer):
    pdf = io.BytesIO(b"%PDF-1.4\n% kosztorys\n")
    post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Kosztorys w załączniku",
                 attachments=[(pdf, "kosztorys naprawy.jpg")])
    stored = db.session.scalars(db.select(Attachment)).one()
    assert stored.content_type == "application/pdf" and stored.filename == "kosztorys naprawy.jpg"

    program = io.BytesIO(b"MZ\x90\x00" + b"\x00" * 200)
    response = post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Zdjęcie",
                            attachments=[(program, "zdjecie.png")])
    assert response.status_code == 422
    assert "zdjecie.png" in response.get_data(as_text=True)

    app.config["ATTACHMENT_MAX_BYTES"] = 1024
    response = post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Duży plik",
                            attachments=[(io.BytesIO(b"x" * 2048), "duzy.txt")])
    assert response.status_code == 422
    assert db.session.scalar(db.select(db.func.count(Message.id))) == 1


def test_staff_download_the_files_of_a_message_they_sent_and_of_a_customers_panel_message_from_the_thread(
        staff_client, mailbox, customer):
    quote = b"%PDF-1.4\n% wycena naprawy\n"
    post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Wycena w załączniku",
                 attachments=[(io.BytesIO(quote), "wycena.pdf")])
    thread = db.session.scalars(db.select(Thread)).one()
    photo = store(io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64), "ekran.png")
    panel_message = Message(thread_id=thread.id, direction="in", channel="portal", body_text="Zdjęcie ekranu")
    db.session.add(panel_message)
    db.session.flush()
    db.session.add(Attachment(message_id=panel_message.id, filename=photo.filename, content_type=photo.content_type,
                              size=photo.size, sha256=photo.sha256))
    db.session.commit()

    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    for filename, content in (("wycena.pdf", quote), ("ekran.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)):
        link = re.search(r'<a href="([^"]+/attachments/\d+)">' + re.escape(filename) + "</a>", page)
        assert link, filename
        download = staff_client.get(link.group(1))
        assert download.status_code == 200 and download.get_data() == content
        assert download.headers["Content-Disposition"].startswith("attachment")


def test_a_reply_defaults_to_the_channel_the_customer_last_wrote_on(staff_client, mailbox, sms_account, customer):
    thread = Thread(customer_id=customer.id, subject="Pytanie")
    db.session.add(thread)
    db.session.flush()
    db.session.add(Message(thread_id=thread.id, direction="in", channel="sms", body_text="Kiedy odbiór?",
                           sender=MOBILE))
    db.session.commit()
    page = staff_client.get(f"/compose?thread_id={thread.id}").get_data(as_text=True)
    assert re.search(r'value="sms"[^>]*checked', page)
    assert not re.search(r'value="email"[^>]*checked', page)


def test_a_composed_message_reaches_the_smtp_server_and_the_outbox_turns_green(
        owner_client, mailbox, customer, repair, smtp_server):
    Shop.current().undo_seconds = 0
    db.session.commit()
    post_compose(owner_client, customer_id=customer.id, repair_id=repair.id, channels=["email"],
                 subject="Naprawa gotowa", body="Dzień dobry,\n\n**Telefon** jest gotowy.")
    assert dispatch_pass()["sent"] == 1
    mail = email.message_from_bytes(smtp_server.wait_for(1)[0].data, policy=email.policy.default)
    assert mail["Subject"] == f"Naprawa gotowa [#{repair.number}]"
    assert "Telefon jest gotowy." in mail.get_body(("plain",)).get_content()  # no Markdown markers
    assert "<strong>Telefon</strong>" in mail.get_body(("html",)).get_content()
    outbox = owner_client.get("/outbox/").get_data(as_text=True)
    assert "badge-green" in outbox
    log = owner_client.get(f"/repairs/{repair.id}?tab=log").get_data(as_text=True)
    assert "E-mail sent to jan@example.com" in log


def test_resend_now_from_the_outbox_really_sends_a_delivery_waiting_for_its_retry(
        owner_client, mailbox, customer, smtp_server):
    Shop.current().undo_seconds = 0
    db.session.commit()
    post_compose(owner_client, customer_id=customer.id, channels=["email"], subject="Faktura",
                 body="Faktura za naprawę w załączniku.")
    smtp_server.reject_next_rcpt_with = "450 4.2.0 Mailbox busy, try later"
    assert dispatch_pass()["retried"] == 1
    delivery = db.session.scalars(db.select(Delivery)).one()
    assert delivery.status == "queued" and delivery.next_attempt_at > utcnow()  # waiting for its backoff
    assert dispatch_pass()["claimed"] == 0 and smtp_server.messages == []

    response = owner_client.post(f"/outbox/{delivery.id}/resend",
                                 data={"csrf_token": csrf_token(owner_client, "/outbox/")})
    assert response.status_code in (200, 302)
    assert dispatch_pass()["sent"] == 1
    assert len(smtp_server.wait_for(1)) == 1  # the mail reached the server: not just a status flipped
    db.session.expire_all()
    assert db.session.get(Delivery, delivery.id).status == "sent"


def test_the_thread_ends_with_a_reply_box_by_the_threads_channels_and_the_note_as_a_second_tab(
        staff_client, mailbox, customer):
    post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Pierwsza")
    thread = db.session.scalars(db.select(Thread)).one()
    html = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    box = html[html.index('class="composer"'):]
    assert box.index('id="reply-form"') < box.index('id="note-form"')  # Reply first, the note behind a tab
    assert re.search(r'id="composer-tab-reply"[^>]*checked', box)
    reply_form = box[box.index('id="reply-form"'):box.index("</form>", box.index('id="reply-form"'))]
    assert re.search(r'value="email" id="reply-channel-email"\s+checked', reply_form)
    assert f'name="thread_id" value="{thread.id}"' in reply_form

    data = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', reply_form))
    response = staff_client.post("/compose", data={**data, "channels": ["email"], "body": "Druga odpowiedź"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/threads/{thread.id}")
    assert "data-undo-toast" in staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert [m.body_text for m in thread.messages][-1] == "Druga odpowiedź"


def test_a_thread_without_a_customer_nor_an_email_sender_says_why_it_has_no_reply(staff_client):
    thread = Thread(subject="Notatki zespołu")
    db.session.add(thread)
    db.session.commit()
    html = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert 'id="note-form"' in html and 'id="reply-form"' not in html
    assert 'id="reply-unavailable"' in html and "nobody wrote to it by e-mail" in html


def test_a_messages_tools_are_in_a_small_menu_and_redact_is_called_masking_in_polish(
        staff_client, staff, mailbox, customer):
    post_compose(staff_client, customer_id=customer.id, channels=["email"], body="Treść")
    thread = db.session.scalars(db.select(Thread)).one()
    staff.locale = "pl"
    db.session.commit()
    html = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    menu = html[html.index('<details class="entry-menu">'):]
    menu = menu[:menu.index("</details>\n</details>") if "</details>\n</details>" in menu else 2000]
    assert "data-split" in menu and "Wydziel do nowego wątku" in menu
    assert "Zamaskuj fragment…" in menu and "Ukryj" not in html
