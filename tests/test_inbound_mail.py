"""What received mail is and where it may go: customers and trusted partners in, strangers and loops held,
automatic replies and bounces kept on their thread without waking it, attachments stored or listed."""
from __future__ import annotations

import base64

import pytest
from inbound_helpers import (
    deliveries_of, make_customer, make_mailbox, make_repair, plain_mail, receive, sample, send_mail,
)
from sqlalchemy import select

from app.attachments import path_for
from app.extensions import db
from app.inbound.parse import decompress
from app.inbound.poll import poll_mailbox
from app.mail_ids import INSTANCE_HEADER, instance_id
from app.models import Attachment, Customer, CustomerEmail, DeliveryEvent, InboundItem, Message, Shop, Thread, TrustedDomain
from app.inbound.record import record_fetch_error, record_mail


@pytest.fixture
def mailbox(app):
    return make_mailbox()


# Not the shared `customer`: the address the sample mails of tests/mail come from, no phone.
@pytest.fixture
def customer(app):
    return make_customer()


def thread_state(thread_id: int) -> tuple[bool, str, object]:
    db.session.expire_all()
    thread = db.session.get(Thread, thread_id)
    return thread.unread, thread.status, thread.last_activity_at


def test_a_stranger_is_held_with_the_reason_and_nothing_is_threaded(mailbox):
    outcome = receive(mailbox, plain_mail(sender="Obcy <obcy@example.net>"))

    assert outcome.status == "held" and outcome.thread is None
    item = outcome.item
    assert item.status == "held" and "Unknown sender" in item.reason
    assert item.sender == "obcy@example.net" and item.subject == "Pytanie"
    assert b"Dzie\xc5\x84 dobry" in decompress(item.raw)
    assert db.session.scalar(select(Message.id)) is None


def test_a_customers_second_address_is_accepted_like_the_first(mailbox, customer):
    customer.extra_emails.append(CustomerEmail(address="jan.praca@example.com"))
    db.session.commit()

    outcome = receive(mailbox, plain_mail(sender="Jan <Jan.Praca@Example.com>"))

    assert outcome.status == "new_thread" and outcome.thread.customer_id == customer.id


def test_a_partner_from_a_trusted_domain_opens_a_thread_without_a_customer(mailbox):
    db.session.add(TrustedDomain(domain="partner.pl"))
    db.session.commit()

    direct = receive(mailbox, plain_mail(sender="Hurtownia <biuro@partner.pl>", message_id="<p1@partner.pl>"))
    subdomain = receive(mailbox, plain_mail(sender="Magazyn <mag@dzial.partner.pl>", message_id="<p2@partner.pl>"))
    lookalike = receive(mailbox, plain_mail(sender="Oszust <x@notpartner.pl>", message_id="<p3@partner.pl>"))

    assert direct.status == "new_thread" and direct.thread.customer_id is None
    assert subdomain.status == "new_thread"
    assert lookalike.status == "held"


def test_mail_from_our_own_address_is_held_as_a_loop(mailbox, customer):
    outcome = receive(mailbox, plain_mail(sender="Serwis GSM <Serwis@shop.example>"))

    assert outcome.status == "held" and "loop" in outcome.item.reason


def test_our_own_mail_coming_back_is_held_even_from_a_customers_address(mailbox, customer):
    raw = plain_mail(extra=f"{INSTANCE_HEADER}: {instance_id()}")

    outcome = receive(mailbox, raw)

    assert outcome.status == "held" and "loop" in outcome.item.reason


def test_an_out_of_office_reply_is_kept_on_the_thread_without_waking_it(mailbox, customer):
    customer.email = "m.wisniewska@example.com"
    db.session.commit()
    sent = send_mail(customer)
    thread = db.session.get(Thread, sent.thread_id)
    thread.status = "closed"
    db.session.commit()
    before = thread_state(thread.id)

    outcome = receive(mailbox, sample("autoreply_pl.eml", sent))

    assert outcome.status == "threaded" and outcome.thread.id == sent.thread_id
    assert thread_state(sent.thread_id) == before == (False, "closed", before[2])
    auto = db.session.get(Message, outcome.item.message_id)
    assert auto.kind == "auto_reply" and auto.direction == "in" and not auto.visible_to_customer


@pytest.mark.parametrize("header", [
    "Auto-Submitted: auto-replied", "X-Autoreply: yes", "X-Autorespond: yes", "Precedence: bulk",
    "Precedence: junk", "List-Id: <lista.example.com>", "List-Unsubscribe: <mailto:u@example.com>",
    "X-Auto-Response-Suppress: All", "Return-Path: <>",
])
def test_automatic_mail_that_belongs_to_no_thread_is_held(mailbox, customer, header):
    outcome = receive(mailbox, plain_mail(extra=header))

    assert outcome.status == "held" and "automatic" in outcome.item.reason


@pytest.mark.parametrize("subject", ["Automatic reply: Naprawa", "Automatyczna odpowiedź: Naprawa",
                                     "Out of Office: wracam w poniedziałek", "Nieobecność: urlop"])
def test_automatic_replies_are_known_by_their_subject_too(mailbox, customer, subject):
    assert receive(mailbox, plain_mail(subject=subject)).status == "held"


def test_ordinary_outlook_headers_do_not_make_a_person_a_robot(mailbox, customer):
    raw = plain_mail(extra="X-Auto-Response-Suppress: DR, RN, NRN\nAuto-Submitted: no\nPrecedence: normal")

    assert receive(mailbox, raw).status == "new_thread"


def test_a_read_receipt_is_kept_on_its_thread_as_automatic(mailbox, customer):
    sent = send_mail(customer)

    outcome = receive(mailbox, sample("read_receipt.eml", sent))

    message = db.session.get(Message, outcome.item.message_id)
    assert outcome.status == "threaded" and message.kind == "auto_reply" and message.meta["read_receipt"]
    assert thread_state(sent.thread_id)[0] is False


def test_a_bounce_marks_the_delivery_bounced_and_warns_on_the_customers_card(mailbox, owner_client):
    customer = make_customer(name="Jan Nieistniejący", email="jan.nieistniejacy@example.com")
    sent = send_mail(customer, repair=make_repair(customer))
    before = thread_state(sent.thread_id)

    outcome = receive(mailbox, sample("bounce_postfix.eml", sent))

    assert outcome.status == "threaded" and outcome.thread.id == sent.thread_id
    [delivery] = deliveries_of(sent)
    assert delivery.status == "bounced" and "5.1.1" in (delivery.error_code or "")
    assert "does not exist" in delivery.error_raw.lower() or delivery.error_raw
    event = db.session.scalar(select(DeliveryEvent).where(DeliveryEvent.delivery_id == delivery.id))
    assert event.status == "bounced"
    bounce = db.session.get(Message, outcome.item.message_id)
    assert bounce.kind == "bounce" and thread_state(sent.thread_id) == before
    customer = db.session.get(Customer, customer.id)
    assert customer.email_bounced_at is not None and customer.email_bounce_reason

    page = owner_client.get(f"/customers/{customer.id}").get_data(as_text=True)
    assert "bounced" in page.lower()


def test_the_same_bounce_twice_is_recorded_once(mailbox):
    customer = make_customer(name="Jan Nieistniejący", email="jan.nieistniejacy@example.com")
    sent = send_mail(customer)
    raw = sample("bounce_postfix.eml", sent)

    receive(mailbox, raw)
    again = receive(mailbox, raw)

    assert again.status == "duplicate"
    assert len(db.session.scalars(select(DeliveryEvent)).all()) == 1


@pytest.mark.parametrize("name", ["bounce_exchange.eml", "bounce_gmail.eml"])
def test_bounces_from_other_servers_find_their_delivery(mailbox, name):
    customer = make_customer(name="Adresat", email="placeholder@example.com")
    sent = send_mail(customer)
    raw = sample(name, sent)
    outcome = receive(mailbox, raw)
    assert outcome.status == "threaded" and outcome.thread.id == sent.thread_id
    assert db.session.get(Message, outcome.item.message_id).kind == "bounce"


def test_a_bounce_for_mail_we_never_sent_is_held(mailbox):
    raw = sample("bounce_postfix.eml").replace(b"TOKEN", b"0123456789abcdef")

    outcome = receive(mailbox, raw)

    assert outcome.status == "held" and "bounce" in outcome.item.reason.lower()


def test_a_polish_iso_8859_2_subject_is_read(mailbox, customer):
    raw = plain_mail(subject="=?ISO-8859-2?Q?Odbi=F3r_telefonu_-_za=BF=F3=B3=E6_g=EA=B6l=B1_ja=BC=F1?=")

    outcome = receive(mailbox, raw)

    assert outcome.thread.subject == "Odbiór telefonu - zażółć gęślą jaźń"
    assert outcome.item.subject == "Odbiór telefonu - zażółć gęślą jaźń"


def test_a_mail_that_cannot_be_read_is_kept_raw_with_the_error(mailbox):
    outcome = receive(mailbox, b"\r\n\r\n   ")

    assert outcome.status == "error"
    assert outcome.item.status == "error" and outcome.item.error and decompress(outcome.item.raw) == b"\r\n\r\n   "


def test_a_fetch_error_keeps_the_mail_with_what_can_be_read_of_its_headers(mailbox):
    item = record_fetch_error(mailbox, plain_mail(sender="Ktoś <ktos@example.com>"), 1, 77, error="boom")
    db.session.commit()

    assert (item.status, item.sender, item.subject, item.uid, item.error) == (
        "error", "ktos@example.com", "Pytanie", 77, "boom")


def test_record_mail_never_commits(mailbox, customer):
    record_mail(mailbox, plain_mail(), uidvalidity=1, uid=5)
    db.session.rollback()

    assert db.session.scalar(select(InboundItem.id)) is None


# --- attachments -------------------------------------------------------------------------------------------


def with_attachment(size: int, name: str = "zdjecie.jpg", content: bytes | None = None,
                    message_id: str = "<att@example.com>") -> bytes:
    payload = content if content is not None else b"\xff\xd8\xff\xe0" + b"\x00JFIF" + bytes(size - 9)
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    head = (
        "From: Jan Kowalski <jan.kowalski@example.com>\r\nTo: serwis@shop.example\r\nSubject: Zdjęcie\r\n"
        f"Message-ID: {message_id}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n'
        "W załączniku zdjęcie.\r\n--b1\r\n"
        f'Content-Type: image/jpeg; name="{name}"\r\nContent-Disposition: attachment; filename="{name}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("utf-8")
    return head + encoded + b"\r\n--b1--\r\n"


def attachments_of(outcome) -> list[Attachment]:
    return db.session.get(Message, outcome.item.message_id).attachments


def test_attachments_are_only_listed_when_the_mailbox_does_not_store_them(mailbox, customer):
    outcome = receive(mailbox, with_attachment(2048))

    [attachment] = attachments_of(outcome)
    assert (attachment.filename, attachment.size, attachment.sha256, attachment.skipped_reason) == (
        "zdjecie.jpg", 2048, None, "not stored")


def test_a_30_mb_attachment_is_stored_when_the_mailbox_stores_attachments(app, customer):
    mailbox = make_mailbox(store_attachments=True)
    size = 30 * 1024 * 1024

    outcome = receive(mailbox, with_attachment(size))

    [attachment] = attachments_of(outcome)
    assert attachment.sha256 and attachment.size == size and attachment.skipped_reason is None
    assert attachment.content_type == "image/jpeg"
    assert path_for(attachment.sha256).stat().st_size == size


def test_attachments_over_the_shop_quota_are_skipped_and_the_message_says_so(app, customer):
    mailbox = make_mailbox(store_attachments=True)
    Shop.current().attachment_quota_mb = 1
    db.session.commit()

    small = receive(mailbox, with_attachment(700 * 1024, message_id="<a1@example.com>"))
    large = receive(mailbox, with_attachment(700 * 1024, content=b"\x89PNG\r\n\x1a\n" + bytes(700 * 1024),
                                             name="b.png", message_id="<a2@example.com>"))
    same_again = receive(mailbox, with_attachment(700 * 1024, message_id="<a3@example.com>"))

    assert attachments_of(small)[0].sha256
    [skipped] = attachments_of(large)
    assert skipped.sha256 is None and skipped.skipped_reason == "over quota"
    assert db.session.get(Message, large.item.message_id).meta["over_quota"] == 1
    assert attachments_of(same_again)[0].sha256 == attachments_of(small)[0].sha256  # already kept: costs nothing


def test_a_program_is_listed_and_never_stored(app, customer):
    mailbox = make_mailbox(store_attachments=True)
    program = b"MZ\x90\x00" + bytes(200)

    outcome = receive(mailbox, with_attachment(0, name="faktura.pdf", content=program))

    [attachment] = attachments_of(outcome)
    assert attachment.sha256 is None and attachment.skipped_reason == "program"


# --- the thread view ---------------------------------------------------------------------------------------


def test_the_thread_shows_the_real_sender_the_new_part_and_the_quote_folded(mailbox, owner_client):
    customer = make_customer()
    sent = send_mail(customer)
    receive(mailbox, sample("gmail_pl_reply.eml", sent))

    page = owner_client.get(f"/threads/{sent.thread_id}").get_data(as_text=True)

    assert "Jan Kowalski" in page and "&lt;jan.kowalski@example.com&gt;" in page
    new_part, _, folded = page.partition('<details class="mail-quote">')
    assert "450 zł mi odpowiada" in new_part and "napisał(a)" in folded


def timeline_of(response) -> str:
    return response.get_data(as_text=True).partition('<ol class="timeline">')[2]


def test_hostile_html_is_shown_without_scripts_or_handlers_and_images_load_only_on_request(app, owner_client):
    make_customer(name="Adam Nowicki", email="adam.nowicki@example.com")
    mailbox = make_mailbox(store_attachments=True)
    outcome = receive(mailbox, sample("html_only_hostile.eml"))
    thread_id, message_id = outcome.thread.id, outcome.item.message_id

    response = owner_client.get(f"/threads/{thread_id}")
    page = timeline_of(response)

    assert "Reklamacja zamówienia" in page and "uszkodzonego ekranu" in page
    for hostile in ("<script", "onerror", "onload", "onclick", "javascript:", "<iframe", "<form action=\"https",
                    ' src="https://tracker.example.com'):
        assert hostile not in page
    assert 'data-remote-src="https://tracker.example.com/open.gif?id=123"' in page
    assert "https:" not in response.headers["Content-Security-Policy"]
    [image] = [a for a in attachments_of(outcome) if a.content_id]
    inline_url = f"/threads/{thread_id}/attachments/{image.id}/inline"
    assert f'src="{inline_url}"' in page
    shown = owner_client.get(inline_url)
    assert shown.status_code == 200 and shown.mimetype == "image/png"
    assert shown.headers["X-Content-Type-Options"] == "nosniff"

    loaded = owner_client.get(f"/threads/{thread_id}?images={message_id}")
    page = timeline_of(loaded)
    assert ' src="https://tracker.example.com/open.gif?id=123"' in page
    assert "img-src 'self' data: https:" in loaded.headers["Content-Security-Policy"]
    assert "<script" not in page and "onerror" not in page


def test_a_stored_attachment_downloads_with_safe_headers_and_only_through_its_own_thread(app, owner_client):
    customer = make_customer()
    mailbox = make_mailbox(store_attachments=True)
    outcome = receive(mailbox, with_attachment(4096))
    [attachment] = attachments_of(outcome)
    other_thread = send_mail(customer, body="Inny wątek").thread_id

    page = owner_client.get(f"/threads/{outcome.thread.id}").get_data(as_text=True)
    url = f"/threads/{outcome.thread.id}/attachments/{attachment.id}"
    assert f'href="{url}"' in page
    response = owner_client.get(url)
    assert response.status_code == 200 and len(response.data) == 4096
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "zdjecie.jpg" in response.headers["Content-Disposition"]
    assert response.mimetype == "image/jpeg" and response.headers["X-Content-Type-Options"] == "nosniff"

    assert owner_client.get(f"/threads/{other_thread}/attachments/{attachment.id}").status_code == 404
    assert owner_client.get(f"/threads/{outcome.thread.id}/attachments/{attachment.id + 99}").status_code == 404


def test_a_listed_attachment_is_named_with_why_it_was_not_stored(mailbox, owner_client):
    make_customer()
    outcome = receive(mailbox, with_attachment(2048))
    [attachment] = attachments_of(outcome)

    page = owner_client.get(f"/threads/{outcome.thread.id}").get_data(as_text=True)

    assert "zdjecie.jpg" in page and "lists attachments only" in page
    assert owner_client.get(f"/threads/{outcome.thread.id}/attachments/{attachment.id}").status_code == 404


def test_automatic_replies_and_bounces_are_labelled_in_the_thread(mailbox, owner_client):
    customer = make_customer(name="Jan Nieistniejący", email="jan.nieistniejacy@example.com")
    sent = send_mail(customer)
    receive(mailbox, sample("bounce_postfix.eml", sent))
    receive(mailbox, sample("autoreply_pl.eml", sent))

    page = owner_client.get(f"/threads/{sent.thread_id}").get_data(as_text=True)

    assert "Returned mail" in page and "Automatic reply" in page


def test_a_mail_without_from_is_threaded_by_its_reply_to_and_says_so(mailbox, owner_client):
    customer = make_customer(name="Ewa Lis", email="ewa.lis@example.com")

    outcome = receive(mailbox, sample("no_from_reply_to.eml"))

    assert outcome.status == "new_thread" and outcome.thread.customer_id == customer.id
    page = owner_client.get(f"/threads/{outcome.thread.id}").get_data(as_text=True)
    assert "&lt;ewa.lis@example.com&gt;" in page and "No From header: sender taken from Reply-To" in page


def test_a_ukrainian_reply_shows_the_new_part_with_the_history_folded(mailbox, owner_client):
    customer = make_customer(name="Олена Шевченко", email="olena.shevchenko@example.com")
    sent = send_mail(customer)
    receive(mailbox, sample("gmail_uk_reply.eml", sent))

    page = owner_client.get(f"/threads/{sent.thread_id}").get_data(as_text=True)

    new_part, _, folded = page.partition('<details class="mail-quote">')
    assert "ціна 180 zł мені підходить" in new_part and "пише:" not in new_part
    assert "пише:" in folded and "wymiana gniazda" in folded


def test_a_uuencoded_file_is_stored_as_an_attachment(app, owner_client):
    make_customer(name="Biuro", email="biuro@example.com")
    outcome = receive(make_mailbox(store_attachments=True), sample("uuencode_in_text.eml"))

    [attachment] = attachments_of(outcome)
    assert (attachment.filename, attachment.content_type, attachment.skipped_reason) == (
        "faktura_1057.pdf", "application/pdf", None)
    page = owner_client.get(f"/threads/{outcome.thread.id}").get_data(as_text=True)
    assert "faktura_1057.pdf" in page and "begin 644" not in page


def test_a_sender_address_with_encoded_words_is_held_and_kept_as_it_came(mailbox):
    make_customer(name="Serwis", email="serwis@shop.example.com")

    outcome = receive(mailbox, sample("encoded_word_address.eml"))

    assert outcome.status == "held"
    assert outcome.item.sender == "=?utf-8?q?serwis=40shop.example?=@evil.example"


# --- through a real IMAP server -------------------------------------------------------------------------------


def test_real_clients_mail_polled_from_dovecot_lands_where_it_belongs(app, imap_server):
    mailbox = imap_server.make_mailbox()
    db.session.add(TrustedDomain(domain="partner.pl"))
    jan = make_customer()
    bouncing = make_customer(name="Jan Nieistniejący", email="jan.nieistniejacy@example.com")
    sent = send_mail(jan, repair=make_repair(jan))
    returned = send_mail(bouncing)
    gmail = sample("gmail_pl_reply.eml", sent)
    imap_server.append_many([
        gmail,
        gmail,  # the same mail twice
        sample("gmail_forward.eml").replace(b"serwis+TOKEN@", b"serwis@"),
        sample("bounce_postfix.eml", returned),
        plain_mail(sender="Obcy <obcy@example.net>", message_id="<stranger@example.net>"),
        plain_mail(sender="Hurtownia <biuro@partner.pl>", message_id="<partner@partner.pl>"),
        plain_mail(sender="Serwis <serwis@shop.example>", message_id="<loop@shop.example>"),
    ])

    result = poll_mailbox(mailbox)

    assert result.error is None
    assert result.counts == {"fetched": 7, "threaded": 2, "new_threads": 2, "held": 2, "duplicates": 1, "errors": 0}
    db.session.expire_all()
    assert [m.kind for m in db.session.get(Thread, sent.thread_id).messages] == ["message", "message"]
    assert deliveries_of(returned)[0].status == "bounced"
    held = db.session.scalars(select(InboundItem.sender).where(InboundItem.status == "held")
                              .order_by(InboundItem.id)).all()
    assert held == ["obcy@example.net", "serwis@shop.example"]


def test_a_30_mb_attachment_polled_from_dovecot_is_stored_and_downloads(app, imap_server, owner_client):
    mailbox = imap_server.make_mailbox(store_attachments=True)
    make_customer()
    imap_server.append(with_attachment(30 * 1024 * 1024, message_id="<big@example.com>"))

    assert poll_mailbox(mailbox).counts["new_threads"] == 1

    attachment = db.session.scalar(select(Attachment))
    response = owner_client.get(f"/threads/{attachment.message.thread_id}/attachments/{attachment.id}")
    assert response.status_code == 200 and len(response.data) == 30 * 1024 * 1024
    assert response.headers["Content-Disposition"].startswith("attachment;")


def test_changing_a_bounced_address_clears_the_warning(mailbox, owner_client):
    from app.customers import update_customer

    customer = make_customer(name="Jan Nieistniejący", email="jan.nieistniejacy@example.com")
    receive(mailbox, sample("bounce_postfix.eml", send_mail(customer)))
    customer = db.session.get(Customer, customer.id)
    assert customer.email_bounced_at is not None

    update_customer(customer, actor="test", name="Jan Nieistniejący", email="jan@example.com")
    db.session.commit()

    assert customer.email_bounced_at is None and customer.email_bounce_reason is None
    assert "bounced" not in owner_client.get(f"/customers/{customer.id}").get_data(as_text=True)


def test_nul_characters_in_a_mail_do_not_stop_it_being_stored(mailbox, customer):
    raw = plain_mail(subject="Zero\x00bajt", body="Tekst\x00z zerem", sender="Jan\x00 <jan.kowalski@example.com>")

    outcome = receive(mailbox, raw)

    assert outcome.status == "new_thread"
    message = db.session.get(Message, outcome.item.message_id)
    assert "\x00" not in message.body_text + message.subject and "Tekst" in message.body_text


def test_a_subject_reference_to_a_repair_without_a_thread_opens_that_repairs_thread(mailbox, customer):
    repair = make_repair(customer)

    outcome = receive(mailbox, plain_mail(subject=f"Pytanie o naprawę [#{repair.number}]"))

    assert outcome.status == "new_thread" and outcome.thread.repair_id == repair.id


def test_a_partners_thread_without_a_customer_shows_in_the_inbox_and_opens(mailbox, owner_client):
    db.session.add(TrustedDomain(domain="partner.pl"))
    db.session.commit()
    outcome = receive(mailbox, plain_mail(sender="Hurtownia <biuro@partner.pl>", subject="Dostawa części"))

    assert "Dostawa części" in owner_client.get("/").get_data(as_text=True)
    page = owner_client.get(f"/threads/{outcome.thread.id}").get_data(as_text=True)
    assert "Hurtownia" in page and "biuro@partner.pl" in page
