"""A thread's tools: merging a customer's threads (and replies to the old one finding the new home), splitting a
message out, forwarding the conversation to a supplier whose answer comes back, printing, and two people on one
thread (who is viewing or replying, and a warning before a reply crosses the customer's new message)."""
from __future__ import annotations

import email
import email.policy
import io
import re
from datetime import timedelta

import pytest
from inbound_helpers import make_customer, make_mailbox, make_repair, plain_mail, receive, sample, send_mail
from panel_helpers import panel_path, sign_in_customer
from sqlalchemy import func, select

from app.attachments import store
from app.extensions import db
from app.inbound.sms import IncomingSms, receive_sms
from app.messaging.merge import merge_threads
from app.messaging.presence import heartbeat
from app.messaging.split import split_message
from app.messaging.threads import open_thread
from app.models import (
    Attachment, AuditEvent, Delivery, Message, MessageRef, Shop, Thread, ThreadPresence, utcnow,
)
from app.outbox import dispatch_pass
from helpers import csrf_token, make_user, sign_in

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture
def smtp_mailbox(mailbox):
    """The shop's mailbox on the test SMTP server, named apart from the IMAP mailboxes of inbound_helpers."""
    return mailbox


# Not the shared `customer`: the address the sample mails of tests/mail come from, no phone.
@pytest.fixture
def customer():
    return make_customer()


def customer_wrote(thread: Thread, text: str, *, channel: str = "email", minutes_ago: int = 0) -> Message:
    """A message from the thread's customer, as inbound mail (or SMS) stores it: unread, waiting for us."""
    when = utcnow() - timedelta(minutes=minutes_ago)
    customer = thread.customer
    message = Message(thread_id=thread.id, kind="message", direction="in", channel=channel,
                      author_customer_id=customer.id, sender=customer.email if channel == "email" else customer.phone,
                      subject=thread.subject, body_text=text, created_at=when)
    db.session.add(message)
    thread.unread, thread.status, thread.last_inbound_at, thread.last_activity_at = True, "waiting_us", when, when
    db.session.commit()
    return message


def note(thread: Thread, text: str, author) -> Message:
    message = Message(thread_id=thread.id, kind="note", direction="internal", visible_to_customer=False,
                      author_user_id=author.id, body_text=text, created_at=utcnow())
    db.session.add(message)
    db.session.commit()
    return message


def post(client, url: str, **kwargs):
    """A POST as the page's htmx or forms send it: with the session's CSRF token."""
    headers = {"X-CSRFToken": csrf_token(client, "/"), **kwargs.pop("headers", {})}
    return client.post(url, headers=headers, **kwargs)


def fresh(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def events(thread: Thread) -> list[dict]:
    return [m.meta for m in fresh(Thread, thread.id).messages if m.kind == "event"]


# --- merge ----------------------------------------------------------------------------------------


def test_merging_the_customers_other_thread_moves_its_messages_and_old_links_lead_to_the_target(
        staff_client, staff, customer):
    target = open_thread(customer, subject="Naprawa iPhone 12")
    source = open_thread(customer, subject="Pytanie o etui")
    db.session.commit()
    customer_wrote(target, "Kiedy będzie gotowy?", minutes_ago=60)
    target.status, target.unread = "waiting_customer", False
    question = customer_wrote(source, "A macie etui do iPhone 12?", minutes_ago=5)
    db.session.add(MessageRef(ref="etui-1@example.com", message_id=question.id, thread_id=source.id, kind="received"))
    db.session.commit()

    page = staff_client.get(f"/threads/{target.id}").get_data(as_text=True)
    assert f'<option value="{source.id}">' in page  # offered in the merge picker

    response = post(staff_client, f"/threads/{target.id}/merge", data={"source_id": source.id})
    assert response.status_code == 302 and response.location.endswith(f"/threads/{target.id}")

    target, source = fresh(Thread, target.id), fresh(Thread, source.id)
    assert source.merged_into_id == target.id
    assert fresh(Message, question.id).thread_id == target.id
    assert db.session.scalar(select(MessageRef.thread_id).where(MessageRef.ref == "etui-1@example.com")) == target.id
    # The customer's latest word came from the other thread: the target waits for us again, unread, due.
    assert target.status == "waiting_us" and target.unread and target.due_at is not None
    assert target.last_message_preview == "A macie etui do iPhone 12?"
    assert [e["event"] for e in events(target)] == ["merged_from"] and events(target)[0]["thread_id"] == source.id
    assert [e["event"] for e in events(source)] == ["merged_into"]
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "thread.merge")) is not None

    old = staff_client.get(f"/threads/{source.id}")
    assert old.status_code == 302 and old.location.endswith(f"/threads/{target.id}")
    inbox = staff_client.get("/").get_data(as_text=True)
    assert f"/threads/{target.id}" in inbox and f"/threads/{source.id}\"" not in inbox
    shown = staff_client.get(f"/threads/{target.id}").get_data(as_text=True)
    assert "A macie etui do iPhone 12?" in shown and "“Pytanie o etui” was merged into this thread" in shown


def test_threads_of_another_customer_or_already_merged_ones_are_refused(staff_client, staff, customer):
    target = open_thread(customer, subject="Naprawa")
    stranger = open_thread(make_customer("Anna Nowak", "anna@example.com"), subject="Obca sprawa")
    merged = open_thread(customer, subject="Stara sprawa")
    db.session.commit()
    customer_wrote(stranger, "To moja wiadomość")
    merged.merged_into_id = target.id
    db.session.commit()

    response = post(staff_client, f"/threads/{target.id}/merge", data={"source_id": stranger.id},
                                 follow_redirects=True)
    assert "Only threads of the same customer can be merged." in response.get_data(as_text=True)
    assert fresh(Thread, stranger.id).merged_into_id is None
    assert all(m.thread_id == stranger.id for m in fresh(Thread, stranger.id).messages)

    other = open_thread(customer, subject="Druga")
    db.session.commit()
    response = post(staff_client, f"/threads/{other.id}/merge", data={"source_id": merged.id}, follow_redirects=True)
    assert "already been merged" in response.get_data(as_text=True)
    assert fresh(Thread, merged.id).merged_into_id == target.id


def test_a_reply_to_mail_of_the_merged_thread_lands_in_the_thread_it_was_merged_into(staff, customer):
    mailbox = make_mailbox()
    repair = make_repair(customer)
    sent = send_mail(customer, repair=repair)  # the old thread, which the customer answers later
    target = open_thread(customer, subject="Naprawa — wszystko w jednym")
    db.session.commit()
    merge_threads(target, sent.thread, staff)
    db.session.commit()

    by_token = receive(mailbox, sample("gmail_pl_reply.eml", sent))
    assert by_token.status == "threaded" and by_token.thread.id == target.id

    by_reference = receive(mailbox, plain_mail(
        to="serwis@shop.example", message_id="<later@example.com>",
        extra=f"In-Reply-To: <{sent.deliveries[0].provider_id}>\nReferences: <{sent.deliveries[0].provider_id}>"))
    assert by_reference.status == "threaded" and by_reference.thread.id == target.id


def test_an_sms_reply_after_a_merge_and_a_panel_link_to_the_old_thread_reach_the_target(app, client, staff):
    customer = make_customer("Jan Kowalski", "jan@example.com", phone="+48600100200")
    customer.panel_state = "active"
    source = open_thread(customer, subject="Wycena")
    target = open_thread(customer, subject="Naprawa")
    db.session.commit()
    for thread, channel in ((source, "sms"), (source, "portal")):
        message = Message(thread_id=thread.id, kind="message", direction="out", body_text="Wycena: 300 zł",
                          created_at=utcnow())
        message.deliveries = [Delivery(channel=channel, status="delivered" if channel == "portal" else "sent",
                                       recipient=customer.phone if channel == "sms" else str(customer.id),
                                       sent_at=utcnow())]
        db.session.add(message)
    db.session.commit()
    merge_threads(target, source, staff)
    db.session.commit()

    outcome = receive_sms(IncomingSms(sid="SM1", sender="+48600100200", to="+48500100200", body="Zgoda"))
    db.session.commit()
    assert outcome.status == "threaded" and outcome.message.thread_id == target.id

    sign_in_customer(client, customer)
    response = client.get(panel_path(f"/threads/{source.id}"))
    assert response.status_code == 302 and response.location.endswith(f"/threads/{target.id}")


def test_the_customer_is_told_of_a_merge_on_their_last_channel_when_the_shop_wants_it(staff, customer):
    make_mailbox()
    Shop.current().merge_notifies_customer = True
    target = open_thread(customer, subject="Naprawa")
    source = open_thread(customer, subject="Pytanie")
    db.session.commit()
    customer_wrote(source, "Czy jest gotowy?")

    merge_threads(target, source, staff)
    db.session.commit()

    target = fresh(Thread, target.id)
    notice = [m for m in target.messages if m.direction == "out"]
    assert len(notice) == 1 and notice[0].automatic and "“Naprawa”" in notice[0].body_text
    assert [(d.channel, d.recipient) for d in notice[0].deliveries] == [("email", customer.email)]
    assert target.status == "waiting_us"  # a notice is no answer: the question still waits for us
    assert events(target)[0]["notified"] == "email"


def test_the_merge_notice_setting_is_on_the_shop_settings_page(owner_client):
    page = owner_client.get("/settings/shop").get_data(as_text=True)
    assert 'name="merge_notifies_customer"' in page
    data = {"name": "Serwis", "slug": Shop.current().slug, "locale": "en", "timezone": "Europe/Warsaw",
            "undo_seconds": "30", "merge_notifies_customer": "y", "csrf_token": csrf_token(owner_client,
                                                                                        "/settings/shop")}
    assert owner_client.post("/settings/shop", data=data).status_code == 302
    assert fresh(Shop, Shop.current().id).merge_notifies_customer is True


# --- split ----------------------------------------------------------------------------------------


def test_splitting_a_message_copies_it_with_its_files_into_a_new_thread_of_the_same_customer(
        staff_client, staff, customer):
    repair = make_repair(customer)
    thread = open_thread(customer, subject="Naprawa iPhone 12", repair=repair)
    db.session.commit()
    customer_wrote(thread, "Ekran gotowy?", minutes_ago=30)
    question = customer_wrote(thread, "Przy okazji: ile kosztuje bateria do iPada?")
    photo = store(io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * 64), "ipad.png")
    question.attachments = [Attachment(filename="ipad.png", content_type=photo.content_type, size=photo.size,
                                       sha256=photo.sha256)]
    db.session.commit()

    response = post(staff_client, "/threads/split", data={"message_id": question.id})
    new = db.session.scalar(select(Thread).where(Thread.id != thread.id))
    assert response.status_code == 302 and response.location.endswith(f"/threads/{new.id}")

    assert (new.customer_id, new.repair_id, new.status) == (customer.id, repair.id, "waiting_us")
    copy = next(m for m in new.messages if m.kind == "message")
    assert copy.id != question.id and copy.body_text == question.body_text and copy.direction == "in"
    assert [(a.filename, a.sha256) for a in copy.attachments] == [("ipad.png", photo.sha256)]
    assert copy.attachments[0].id != question.attachments[0].id
    assert fresh(Message, question.id).thread_id == thread.id  # the original stays
    assert events(thread) == [dict(events(thread)[0], event="split_to", thread_id=new.id)]
    assert events(new)[0]["event"] == "split_from" and events(new)[0]["thread_id"] == thread.id
    download = staff_client.get(f"/threads/{new.id}/attachments/{copy.attachments[0].id}")
    assert download.status_code == 200 and download.data.startswith(b"\x89PNG")


def test_each_message_s_split_button_submits_the_timeline_s_one_split_form(staff_client, customer):
    thread = open_thread(customer, subject="Naprawa iPhone 12")
    db.session.commit()
    first, second = customer_wrote(thread, "Ekran gotowy?", minutes_ago=5), customer_wrote(thread, "A bateria?")

    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)

    form = re.search(r'<form method="post" action="/threads/split" id="split-form-%d"[^>]*>(.*?)</form>' % thread.id,
                     page, re.S)
    assert form and 'name="csrf_token"' in form.group(1)  # the token once, for every button
    for message in (first, second):  # without JavaScript too, the button's form= names it, its value the message
        assert re.search(r'<button type="submit" form="split-form-%d" name="message_id" value="%d"'
                         % (thread.id, message.id), page)


def test_a_note_cannot_be_split_out(staff_client, staff, customer):
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    internal = note(thread, "Zamówić część", staff)
    response = post(staff_client, "/threads/split", data={"message_id": internal.id}, follow_redirects=True)
    assert "Only a message (not a note or an event) can be split out." in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Thread.id))) == 1


def test_split_events_name_the_other_thread_in_each(staff, customer):
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    message = customer_wrote(thread, "Druga sprawa")
    new = split_message(message, staff)
    db.session.commit()
    page = [m.body_text for m in fresh(Thread, thread.id).messages if m.kind == "event"]
    assert page == [f"A message was split out into the new thread “{new.subject}”."]


# --- forward --------------------------------------------------------------------------------------


def test_a_forward_reaches_the_supplier_and_their_answer_comes_back_into_the_thread(
        staff_client, staff, customer, smtp_mailbox, smtp_server):
    thread = open_thread(customer, subject="Naprawa iPhone 12")
    db.session.commit()
    question = customer_wrote(thread, "Czy wymienicie ekran na oryginalny?")
    db.session.add(MessageRef(ref="q-1@example.com", message_id=question.id, thread_id=thread.id, kind="received"))
    note(thread, "Klient marudzi o cenę", staff)

    response = post(staff_client, f"/threads/{thread.id}/forward", data={
        "to": "Zamowienia@Supplier.example", "note": "Czy macie ekran na stanie?"})
    assert response.status_code == 302
    assert dispatch_pass()["sent"] == 1
    mail = email.message_from_bytes(smtp_server.wait_for(1)[0].data, policy=email.policy.default)
    assert mail["To"] == "zamowienia@supplier.example"
    assert thread.token in mail["Reply-To"] and "<q-1@example.com>" in mail["References"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert text.index("Czy macie ekran na stanie?") < text.index("Czy wymienicie ekran na oryginalny?")
    assert "Klient marudzi" not in text  # notes stay inside unless asked for
    forward = db.session.scalar(select(Message).where(Message.direction == "out"))
    assert not forward.visible_to_customer and forward.deliveries[0].recipient == "zamowienia@supplier.example"
    shown = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "Forwarded to zamowienia@supplier.example" in shown and "1 message forwarded" in shown

    their_answer = plain_mail(sender="Hurtownia <zamowienia@supplier.example>", to=mail["Reply-To"],
                              subject=f"Re: {mail['Subject']}", body="Mamy, wysyłamy jutro.",
                              message_id="<answer-1@supplier.example>",
                              extra=f"In-Reply-To: {mail['Message-ID']}")
    outcome = receive(smtp_mailbox, their_answer)
    assert outcome.status == "threaded" and outcome.thread.id == thread.id
    answer = fresh(Message, outcome.item.message_id)
    assert answer.sender == "zamowienia@supplier.example" and answer.author_customer_id is None

    # A mail program that drops the Reply-To still threads by References to the forward.
    by_reference = receive(smtp_mailbox, plain_mail(
        sender="zamowienia@supplier.example", to="serwis@shop.example", message_id="<answer-2@supplier.example>",
        body="Jeszcze jedno.", extra=f"References: {mail['Message-ID']}"))
    assert by_reference.status == "threaded" and by_reference.thread.id == thread.id


def test_a_forward_with_notes_carries_them_and_the_files(staff, customer, smtp_mailbox, smtp_server):
    from app.messaging.forward import forward_thread

    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    message = customer_wrote(thread, "Zdjęcie w załączniku")
    photo = store(io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\1" * 64), "pęknięcie.png")
    message.attachments = [Attachment(filename="pęknięcie.png", content_type=photo.content_type, size=photo.size,
                                      sha256=photo.sha256)]
    note(thread, "Sprawdzić gwarancję", staff)
    forward_thread(thread, to="serwis@partner.example", actor=staff, include_notes=True)
    db.session.commit()

    assert dispatch_pass()["sent"] == 1
    mail = email.message_from_bytes(smtp_server.wait_for(1)[0].data, policy=email.policy.default)
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Internal note by Stefan Staff" in text and "Sprawdzić gwarancję" in text
    assert [part.get_filename() for part in mail.iter_attachments()] == ["pęknięcie.png"]


def test_a_forward_to_a_bad_address_is_refused_next_to_the_field_and_nothing_is_queued(
        staff_client, customer, smtp_mailbox):
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    customer_wrote(thread, "Pytanie")
    response = post(staff_client, f"/threads/{thread.id}/forward", data={"to": "hurtownia@", "note": "Pilne"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Enter a valid e-mail address" in page and "Pilne" in page
    assert db.session.scalar(select(func.count(Delivery.id))) == 0


# --- print ----------------------------------------------------------------------------------------


def test_print_offers_every_message_ticked_and_notes_unticked_and_prints_only_the_chosen(
        staff_client, staff, customer):
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    first = customer_wrote(thread, "Pierwsza wiadomość", minutes_ago=10)
    first.attachments = [Attachment(filename="faktura.pdf", size=2048), Attachment(filename="uwagi.txt", size=13),
                         Attachment(filename="zdjecie.jpg", size=2_700_000)]
    second = customer_wrote(thread, "Druga wiadomość")
    internal = note(thread, "Notatka wewnętrzna", staff)

    choose = staff_client.get(f"/threads/{thread.id}/print").get_data(as_text=True)
    assert re.search(rf'value="{first.id}" checked', choose) and re.search(rf'value="{second.id}" checked', choose)
    assert re.search(rf'value="{internal.id}" >', choose)

    printed = staff_client.get(f"/threads/{thread.id}/print?show=1&m={first.id}").get_data(as_text=True)
    assert "Pierwsza wiadomość" in printed and "faktura.pdf" in printed and "2 kB" in printed
    assert "13 B" in printed and "2.6 MB" in printed  # a small file is never "0 kB"
    assert "Druga wiadomość" not in printed and "Notatka wewnętrzna" not in printed
    assert 'class="print-view"' in printed and customer.email in printed
    with_note = staff_client.get(f"/threads/{thread.id}/print?show=1&m={internal.id}").get_data(as_text=True)
    assert "Notatka wewnętrzna" in with_note and "Internal note" in with_note


# --- presence and crossing replies ----------------------------------------------------------------


def test_another_staff_member_sees_who_is_viewing_and_who_is_replying(app, staff_client, staff, customer):
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    anna = make_user("anna@shop.example", name="Anna")
    other = app.test_client()
    sign_in(other, anna)

    post(other, f"/threads/{thread.id}/presence", data={"replying": "0"})
    assert "Anna is viewing" in staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    post(other, f"/threads/{thread.id}/presence", data={"replying": "1"})
    beat = post(staff_client, f"/threads/{thread.id}/presence", data={"replying": "0"}).get_data(as_text=True)
    assert "Anna is replying" in beat and "Stefan" not in beat  # nobody sees themselves

    stale = fresh(ThreadPresence, (thread.id, anna.id))
    stale.seen_at = utcnow() - timedelta(seconds=60)
    db.session.commit()
    assert "Anna" not in post(staff_client, f"/threads/{thread.id}/presence").get_data(as_text=True)
    assert fresh(ThreadPresence, (thread.id, anna.id)) is None  # purged, not only hidden


def test_a_reply_begun_before_the_customer_wrote_again_is_held_back_with_the_new_message(
        staff_client, staff, customer):
    make_mailbox()
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    customer_wrote(thread, "Czy jest gotowy?", minutes_ago=5)
    form = staff_client.get(f"/compose?thread_id={thread.id}").get_data(as_text=True)
    seen = re.search(r'name="seen_message_id" value="(\d+)"', form)[1]
    assert "data-reply-form" in form

    newer = customer_wrote(thread, "Albo nie, proszę najpierw zadzwonić!")
    data = {"customer_id": customer.id, "thread_id": thread.id, "channels": "email", "body": "Tak, gotowy.",
            "seen_message_id": seen, "attachments": (io.BytesIO(b"%PDF-1.4 faktura"), "faktura.pdf")}
    held = post(staff_client, "/compose", data=data, content_type="multipart/form-data")
    page = held.get_data(as_text=True)
    assert held.status_code == 409
    assert "Albo nie, proszę najpierw zadzwonić!" in page and "Send anyway" in page and "Tak, gotowy." in page
    assert "faktura.pdf" in page
    assert not [m for m in fresh(Thread, thread.id).messages if m.direction == "out"]

    again = {"customer_id": customer.id, "thread_id": thread.id, "channels": "email", "body": "Tak, gotowy.",
             "seen_message_id": re.search(r'name="seen_message_id" value="(\d+)"', page)[1],
             "kept_files": re.search(r'name="kept_files" value="([^"]+)"', page)[1]}
    assert int(again["seen_message_id"]) == newer.id
    assert post(staff_client, "/compose", data=again).status_code == 302
    sent = [m for m in fresh(Thread, thread.id).messages if m.direction == "out"]
    assert len(sent) == 1 and [a.filename for a in sent[0].attachments] == ["faktura.pdf"]


def test_a_tampered_list_of_kept_files_attaches_nothing(staff_client, customer):
    make_mailbox()
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    data = {"customer_id": customer.id, "thread_id": thread.id, "channels": "email", "body": "Dzień dobry",
            "kept_files": "W3sic2hhMjU2IjoiMDAwIn1d.forged"}
    assert post(staff_client, "/compose", data=data).status_code == 302
    assert [m.attachments for m in fresh(Thread, thread.id).messages if m.kind == "message"] == [[]]


# --- who may use the tools ------------------------------------------------------------------------


def tool_requests(thread: Thread, message: Message) -> list[tuple[str, str]]:
    return [("post", f"/threads/{thread.id}/merge"), ("post", "/threads/split"),
            ("post", f"/threads/{thread.id}/forward"), ("post", f"/threads/{thread.id}/presence"),
            ("get", f"/threads/{thread.id}/forward"), ("get", f"/threads/{thread.id}/print")]


def test_anonymous_visitors_are_sent_to_sign_in_for_every_tool(client, customer):
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    message = customer_wrote(thread, "Pytanie")
    token = csrf_token(client, "/login")
    for method, url in tool_requests(thread, message):
        response = getattr(client, method)(url, headers={"X-CSRFToken": token})
        assert response.status_code == 302 and "/login" in response.location, url


def test_staff_members_may_use_every_tool(staff_client, customer):
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    message = customer_wrote(thread, "Pytanie")
    other = open_thread(customer, subject="Druga")
    db.session.commit()
    make_mailbox()
    answers = [post(staff_client, url, data={"source_id": other.id, "to": "biuro@supplier.example",
                                             "message_id": message.id})
               if method == "post" else staff_client.get(url) for method, url in tool_requests(thread, message)]
    assert [r.status_code for r in answers] == [302, 302, 302, 200, 200, 200]
    assert fresh(Thread, other.id).merged_into_id == thread.id


def test_every_tool_refuses_a_post_without_its_csrf_token(app, staff, customer):
    client = app.test_client()
    sign_in(client, staff)
    other = open_thread(customer, subject="Druga")
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    message = customer_wrote(thread, "Pytanie")
    for method, url in tool_requests(thread, message):
        if method == "post":
            response = client.post(url, data={"source_id": other.id, "to": "a@supplier.example",
                                              "message_id": message.id})
            assert response.status_code == 400, url
    assert fresh(Thread, other.id).merged_into_id is None
    assert db.session.scalar(select(func.count(Thread.id))) == 2
    assert db.session.scalar(select(func.count(Delivery.id))) == 0
    assert db.session.scalar(select(func.count()).select_from(ThreadPresence)) == 0
    token = csrf_token(client, f"/threads/{thread.id}")
    assert client.post(f"/threads/{thread.id}/presence", headers={"X-CSRFToken": token}).status_code == 200


def test_a_heartbeat_twice_in_a_row_keeps_one_row(staff, customer):
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    heartbeat(thread, staff)
    heartbeat(thread, staff, replying=True)
    db.session.commit()
    rows = db.session.scalars(select(ThreadPresence)).all()
    assert [(r.user_id, r.replying) for r in rows] == [(staff.id, True)]


def test_a_reply_begun_in_a_thread_merged_meanwhile_goes_to_the_thread_it_was_merged_into(
        staff_client, staff, customer):
    make_mailbox()
    target = open_thread(customer, subject="Naprawa")
    source = open_thread(customer, subject="Pytanie")
    db.session.commit()
    customer_wrote(source, "Czy jest gotowy?")
    form = staff_client.get(f"/compose?thread_id={source.id}").get_data(as_text=True)
    seen = re.search(r'name="seen_message_id" value="(\d+)"', form)[1]
    merge_threads(target, source, staff)
    db.session.commit()

    response = post(staff_client, "/compose", data={"customer_id": customer.id, "thread_id": source.id,
                                                    "channels": "email", "body": "Tak", "seen_message_id": seen})
    assert response.status_code == 302 and response.location.endswith(f"/threads/{target.id}")
    assert [m.body_text for m in fresh(Thread, target.id).messages if m.direction == "out"] == ["Tak"]


def test_the_merge_picker_offers_only_the_customers_other_open_threads(staff, customer):
    from app.messaging.merge import merge_candidates

    thread = open_thread(customer, subject="Naprawa")
    other = open_thread(customer, subject="Pytanie")
    closed = open_thread(customer, subject="Zamknięta")
    merged = open_thread(customer, subject="Połączona")
    stranger = open_thread(make_customer("Anna Nowak", "anna@example.com"), subject="Obca")
    db.session.commit()
    closed.status, merged.merged_into_id = "closed", other.id
    db.session.commit()
    assert merge_candidates(thread) == [other]
    assert stranger not in merge_candidates(thread)


def test_the_thread_page_offers_an_old_open_thread_to_merge_beside_the_latest_three_it_lists(staff_client, customer):
    thread = open_thread(customer, subject="Naprawa")
    old_open = open_thread(customer, subject="Stare pytanie")
    recent_closed = [open_thread(customer, subject=f"Zamknięta {n}") for n in range(3)]
    db.session.flush()
    old_open.last_activity_at = utcnow() - timedelta(days=30)
    for n, closed in enumerate(recent_closed):
        closed.status, closed.last_activity_at = "closed", utcnow() - timedelta(days=n + 1)
    db.session.commit()
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    picker = page[page.index('id="merge-source"'):page.index("</select>", page.index('id="merge-source"'))]
    assert re.findall(r'<option value="(\d+)"', picker) == [str(old_open.id)]
    side = page[page.index('class="thread-side'):]
    assert [int(n) for n in re.findall(r'href="/threads/(\d+)"', side)] == [t.id for t in recent_closed]


def test_a_second_forward_carries_the_conversation_not_the_first_forward(staff, customer):
    from app.messaging.forward import forward_thread

    make_mailbox()
    thread = open_thread(customer, subject="Naprawa")
    db.session.commit()
    customer_wrote(thread, "Pytanie klienta")
    first = forward_thread(thread, to="a@supplier.example", actor=staff, note="Pierwsza notka")
    second = forward_thread(thread, to="b@supplier.example", actor=staff)
    db.session.commit()
    assert second.meta["forward"]["messages"] == first.meta["forward"]["messages"]
    assert "Pytanie klienta" in second.body_text and "Pierwsza notka" not in second.body_text


def test_merge_offers_the_same_repairs_threads_first_and_asks_plainly_before_joining_two_repairs(
        staff_client, customer):
    phone, tablet = make_repair(customer, "iPhone 12"), make_repair(customer, "iPad Air")
    thread = open_thread(customer, subject="Ekran", repair=phone)
    same = open_thread(customer, subject="Etui do iPhone'a", repair=phone)
    other = open_thread(customer, subject="Bateria", repair=tablet)
    db.session.flush()
    same.last_activity_at = utcnow() - timedelta(days=3)  # older, still first: it is about this repair
    db.session.commit()

    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    picker = page[page.index('id="merge-source"'):page.index("</select>", page.index('id="merge-source"'))]
    assert re.findall(r'<option value="(\d+)"', picker) == [str(same.id), str(other.id)]
    assert "Other repairs: their conversations would be joined" in picker
    assert "joins the two repairs' conversations" in page

    token = csrf_token(staff_client, f"/threads/{thread.id}")
    asked = staff_client.post(f"/threads/{thread.id}/merge", data={"source_id": other.id, "csrf_token": token})
    html = asked.get_data(as_text=True)
    assert asked.status_code == 200 and asked.headers["HX-Push-Url"] == "false"
    assert (f"This joins the conversation about {tablet.label} to the conversation about {phone.label}."
            in html.replace("&amp;", "&").replace("&#39;", "'"))
    assert db.session.get(Thread, other.id).merged_into_id is None  # nothing merged yet

    done = staff_client.post(f"/threads/{thread.id}/merge",
                             data={"source_id": other.id, "csrf_token": token, "other_repair": "confirmed"})
    assert done.status_code == 302 and db.session.get(Thread, other.id).merged_into_id == thread.id

    plain = staff_client.post(f"/threads/{thread.id}/merge", data={"source_id": same.id, "csrf_token": token})
    assert plain.status_code == 302 and db.session.get(Thread, same.id).merged_into_id == thread.id  # same repair
