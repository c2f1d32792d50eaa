"""Card numbers customers send are masked before anything is stored, and staff can redact any other secret."""
from __future__ import annotations

import base64
import email
import email.policy
import zlib

import pytest
from helpers import csrf_token
from inbound_helpers import make_customer, make_mailbox, plain_mail, receive
from panel_helpers import panel_customer, publish
from sqlalchemy import select

from app.extensions import db
from app.inbound.sms import IncomingSms, receive_sms
from app.panel.conversation import customer_reply
from app.models import AuditEvent, InboundItem, Message
from app.inbound.masking import is_card_number, mask_card_numbers
from app.privacy.redaction import redact_message

pytestmark = pytest.mark.usefixtures("app")

VISA = "4111 1111 1111 1111"
MASKED_VISA = "**** **** **** 1111"


def raw_texts(item: InboundItem) -> str:
    """Everything a kept raw mail says: its bytes, and every part decoded (quoted-printable and base64 too)."""
    raw = zlib.decompress(item.raw)
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    decoded = [str(mail["subject"])]
    for part in mail.walk():
        if not part.is_multipart():
            decoded.append(part.get_content() if part.get_content_maintype() == "text" else "")
    return raw.decode("latin-1") + "\n".join(decoded)


def digits_only(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


# Which numbers are card numbers

@pytest.mark.parametrize("number", ["4111111111111111", "5555 5555 5555 4444", "2223-0031-2200-3222",
                                    "378282246310005", "6011111111111117", "3530111333300000", "4222222222222"])
def test_issuer_numbers_that_pass_luhn_are_card_numbers(number):
    assert is_card_number(digits_only(number))
    assert digits_only(mask_card_numbers(f"numer: {number}.")) == digits_only(number)[-4:]


@pytest.mark.parametrize("text", [
    "IMEI: 490154203237518",  # 15 digits and Luhn-valid, like every IMEI
    "mój telefon 356938035643809",  # an IMEI without the word: 15 digits that are not American Express
    "4111 1111 1111 1112",  # fails Luhn
    "zamówienie 1234567812345670",  # passes Luhn but no issuer starts with 1
    "tel. 600 100 200",
    "zwrot na konto 61 1090 1014 0000 0712 1981 2874",  # a bank account number: 26 digits
    "PL61 1090 1014 0000 0712 1981 2874",
])
def test_imeis_phone_numbers_and_other_digits_are_left_alone(text):
    assert mask_card_numbers(text) == text


def test_a_card_number_followed_by_its_expiry_and_code_is_still_masked():
    assert mask_card_numbers("4111 1111 1111 1111 12 27 123") == "**** **** **** 1111 12 27 123"


# Every inbound channel

def test_a_card_number_in_a_quoted_printable_and_base64_mail_is_masked_in_the_message_and_the_raw_copy():
    mailbox = make_mailbox()
    make_customer()
    html = f"<p>Płacę kartą <b>{VISA}</b></p>".encode()
    raw = (
        "From: Jan Kowalski <jan.kowalski@example.com>\r\nTo: serwis@shop.example\r\n"
        "Subject: =?utf-8?q?P=C5=82atno=C5=9B=C4=87_4111111111111111?=\r\nMessage-ID: <card@example.com>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b1\r\n\r\n"
        "--b1\r\nContent-Type: text/plain; charset=iso-8859-2\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "P=B3ac=EA kart=B1 4111 1111 =\r\n1111 1111, kod do telefonu 1234.\r\n\r\n> Dnia wczoraj: 5555555555554444\r\n"
        "--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{base64.encodebytes(html).decode()}\r\n--b1--\r\n"
    ).encode()

    outcome = receive(mailbox, raw)

    message = db.session.get(Message, outcome.item.message_id)
    assert MASKED_VISA in message.body_text and "Płacę kartą" in message.body_text
    assert "************1111" in message.subject
    assert MASKED_VISA in message.body_html
    stored = " ".join([message.subject, message.body_text, message.quoted_text, message.body_html,
                       message.thread.subject, message.thread.last_message_preview, outcome.item.subject])
    assert "1111 1111 1111 1111" not in stored and "4111" not in stored and "555555555555" not in stored
    kept = raw_texts(outcome.item)
    assert "Płacę kartą" in kept and "kod do telefonu 1234" in kept
    assert "4111" not in kept and "5555555555554444" not in kept and "1111 1111 1111 1111" not in kept


def test_a_held_mail_from_a_stranger_keeps_only_the_masked_number():
    mailbox = make_mailbox()
    outcome = receive(mailbox, plain_mail(sender="obcy@example.com", body=f"Karta {VISA}"))
    assert outcome.status == "held"
    assert MASKED_VISA in raw_texts(outcome.item) and VISA not in raw_texts(outcome.item)


def test_a_card_number_in_an_sms_is_masked_in_the_message_and_the_raw_copy():
    outcome = receive_sms(IncomingSms(sid="SM1", sender="+48600100200", to="+48500100200",
                                      body=f"Moja karta {VISA}, PIN do telefonu 0000"))
    db.session.commit()
    assert zlib.decompress(outcome.item.raw).decode() == f"Moja karta {MASKED_VISA}, PIN do telefonu 0000"


def test_a_card_number_written_in_the_customer_panel_is_masked(staff):
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    thread = publish(customer, "Proszę o płatność", author=staff).thread
    message = customer_reply(thread, customer, f"Proszę obciążyć kartę {VISA}")
    db.session.commit()
    assert message.body_text == f"Proszę obciążyć kartę {MASKED_VISA}"
    assert VISA not in thread.last_message_preview


# Staff redact a secret

def received_mail_with_passcode():
    mailbox = make_mailbox()
    make_customer()
    outcome = receive(mailbox, plain_mail(subject="Kod", body="Dzień dobry,\nkod blokady to\n918273, dziękuję."))
    return db.session.get(Message, outcome.item.message_id), outcome.item


def test_staff_redact_a_passcode_from_the_message_and_its_raw_copy(staff_client, staff):
    message, item = received_mail_with_passcode()
    path = f"/threads/{message.thread_id}"
    assert "data-redact" in staff_client.get(path).get_data(as_text=True)

    response = staff_client.post(f"{path}/messages/{message.id}/redact",
                                 data={"text": "kod blokady to 918273", "csrf_token": csrf_token(staff_client, path)})

    assert response.status_code == 302
    db.session.expire_all()
    message = db.session.get(Message, message.id)
    assert message.body_text == "Dzień dobry,\n[redacted], dziękuję."
    assert message.redacted_at is not None
    kept = raw_texts(db.session.get(InboundItem, item.id))
    assert "918273" not in kept and "[redacted]" in kept
    assert "918273" not in message.thread.last_message_preview
    event = db.session.scalars(select(Message).where(Message.thread_id == message.thread_id,
                                                     Message.kind == "event")).one()
    assert event.meta == {"event": "message_redacted", "message_id": message.id}
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "message.redact")).one()
    assert (audit.user_id, audit.target_id) == (staff.id, message.id)
    assert "918273" not in str(audit.details)
    page = staff_client.get(path).get_data(as_text=True)
    assert "918273" not in page and "redacted part of a message" in page


def test_without_javascript_staff_redact_on_the_messages_own_page(staff_client):
    message, _item = received_mail_with_passcode()
    thread_page = staff_client.get(f"/threads/{message.thread_id}").get_data(as_text=True)
    own_page = f"/threads/{message.thread_id}/messages/{message.id}/redact"
    assert f'href="{own_page}"' in thread_page  # each entry links to its form

    page = staff_client.get(own_page).get_data(as_text=True)
    assert "918273" in page and f'action="{own_page}"' in page
    response = staff_client.post(own_page, data={"text": "918273", "csrf_token": csrf_token(staff_client, own_page)})

    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Message, message.id).body_text == "Dzień dobry,\nkod blokady to\n[redacted], dziękuję."


def test_text_that_is_not_in_the_message_is_refused_and_nothing_changes(staff_client):
    message, _item = received_mail_with_passcode()
    path = f"/threads/{message.thread_id}"
    response = staff_client.post(f"{path}/messages/{message.id}/redact",
                                 data={"text": "123456", "csrf_token": csrf_token(staff_client, path)},
                                 follow_redirects=True)
    assert "This text is not in the message" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Message, message.id).redacted_at is None


def test_redacting_needs_the_csrf_token(staff_client):
    message, _item = received_mail_with_passcode()
    response = staff_client.post(f"/threads/{message.thread_id}/messages/{message.id}/redact", data={"text": "918273"})
    assert response.status_code == 400
    db.session.expire_all()
    assert "918273" in db.session.get(Message, message.id).body_text


def test_a_redacted_subject_in_raw_8bit_headers_stays_readable(staff):
    mailbox = make_mailbox()
    make_customer()
    raw = ("From: Jan Kowalski <jan.kowalski@example.com>\r\nTo: serwis@shop.example\r\n"
           "Subject: Kod blokady 918273 — ważne\r\nMessage-ID: <8bit-code@example.com>\r\n\r\nTreść\r\n"
           ).encode("utf-8")
    outcome = receive(mailbox, raw)
    message = db.session.get(Message, outcome.item.message_id)
    redact_message(message, "918273", staff)
    db.session.commit()
    kept = email.message_from_bytes(zlib.decompress(outcome.item.raw), policy=email.policy.default)
    assert str(kept["subject"]) == "Kod blokady [redacted] — ważne"
    assert message.subject == "Kod blokady [redacted] — ważne"


def test_a_mail_that_cannot_be_read_is_kept_with_the_card_number_masked():
    mailbox = make_mailbox()
    outcome = receive(mailbox, b"no headers at all, karta 4111 1111 1111 1111\r\n")
    assert outcome.status == "error"
    kept = raw_texts(outcome.item)
    assert "no headers at all, karta **** **** **** 1111" in kept and "4111" not in kept


def test_a_mail_too_broken_to_rewrite_is_masked_byte_for_byte(monkeypatch):
    from app.inbound import masking

    def broken(raw, change):
        raise ValueError("cannot rewrite")

    monkeypatch.setattr(masking, "rewrite_raw_mail", broken)
    raw = plain_mail(body="Karta 4111 1111 1111 1111, \xb3 w Latin-2").replace("Ł".encode(), b"\xa3")
    assert masking.mask_raw_mail(raw) == raw.replace(b"4111 1111 1111 1111", MASKED_VISA.encode())
