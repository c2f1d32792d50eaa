"""The e-mail channel against a real SMTP server: what the customer's mail program receives, and how
failures (refusals, bad logins, silent servers, broken mailboxes) are told and handled."""
from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import smtplib
import socket
from datetime import datetime, timedelta, timezone

import pytest
from servers.smtp import free_port
from sqlalchemy import select

from app.attachments import path_for
from app.channels import mime
from app.channels.email import EmailChannel
from app.channels.smtp_failures import describe_failure
from app.formatting import markdown_to_text
from app.extensions import db
from app.mail_ids import (
    extract_ids, instance_id, is_our_instance, make_message_id, parse_message_id, reply_address, thread_index,
    thread_topic, token_from_address,
)
from app.accounts.mailboxes import create_mailbox, update_mailbox
from app.models import (
    Attachment, Customer, Delivery, DeliveryEvent, Mailbox, Message, MessageRef, Repair, RepairStatus, Shop, Thread,
    Ticket,
)
from app.outbox import dispatch_pass

SUBJECT = "Naprawa gotowa – zapraszamy po odbiór"


# --- building rows ------------------------------------------------------------------------------


@pytest.fixture
def trusted_smtp(app, smtp_server):
    """The app trusts the fixture's self-signed certificate, as a shop would with SMTP_CA_FILE."""
    app.config["SMTP_CA_FILE"] = smtp_server.cafile
    return smtp_server


@pytest.fixture
def shop(app):
    shop = Shop.current()
    shop.name = "Serwis Łatka"
    shop.address = "ul. Długa 5\n00-001 Warszawa"
    shop.phone = "+48 22 100 20 30"
    shop.opening_hours = "pn–pt 9–17"
    db.session.commit()
    return shop


@pytest.fixture
def mailbox(trusted_smtp, shop):
    return add_mailbox(trusted_smtp, name="Serwis", email="serwis@shop.example", display_name="Serwis Łatka")


# Not the shared `customer`: e-mail only (no phone).
@pytest.fixture
def customer(app):
    customer = Customer(name="Jan Kowalski", email="jan@example.com")
    db.session.add(customer)
    db.session.commit()
    return customer


def add_mailbox(server, *, port=None, security="starttls", password=None, **values) -> Mailbox:
    mailbox = create_mailbox(smtp_host=server.host, smtp_port=port or server.port, smtp_security=security,
                             username=server.username, password=password or server.password, **values)
    db.session.commit()
    return mailbox


def new_thread(customer: Customer, subject: str = SUBJECT) -> Thread:
    thread = Thread(customer_id=customer.id, subject=subject)
    db.session.add(thread)
    db.session.commit()
    return thread


def new_delivery(thread: Thread, body: str = "Dzień dobry, **telefon** jest gotowy.", *, cc=(), automatic=False,
                 mailbox: Mailbox | None = None, attachments=(), subject: str | None = None) -> Delivery:
    message = Message(thread_id=thread.id, direction="out", subject=subject or thread.subject, body_text=body,
                      body_format="markdown", automatic=automatic)
    message.attachments = list(attachments)
    db.session.add(message)
    db.session.flush()
    delivery = Delivery(message_id=message.id, channel="email", status="sending", recipient="jan@example.com",
                        cc=list(cc), mailbox_id=mailbox.id if mailbox else None)
    db.session.add(delivery)
    db.session.commit()
    return delivery


def send(*deliveries: Delivery) -> list:
    """Send in one session, like one dispatch pass (which commits after each delivery)."""
    session = EmailChannel().open_session()
    results = []
    try:
        for delivery in deliveries:
            result = session.send(delivery)
            db.session.commit()
            results.append(result)
    finally:
        session.close()
    return results


def parse(received) -> email.message.EmailMessage:
    return email.message_from_bytes(received.data, policy=email.policy.default)


def stored_file(content: bytes) -> str:
    sha = hashlib.sha256(content).hexdigest()
    path = path_for(sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return sha


# --- what arrives -------------------------------------------------------------------------------


def test_customer_receives_a_mail_from_the_shop_that_points_replies_back_to_the_thread(mailbox, customer, smtp_server):
    thread = new_thread(customer)
    delivery = new_delivery(thread, cc=["zona@example.com"])

    [result] = send(delivery)

    assert result.ok and result.mailbox_id == mailbox.id
    [received] = smtp_server.wait_for(1)
    assert received.mail_from == "serwis@shop.example"
    assert received.rcpt_tos == ["jan@example.com", "zona@example.com"]
    mail = parse(received)
    assert mail["From"].addresses[0].display_name == "Serwis Łatka"
    assert mail["From"].addresses[0].addr_spec == "serwis@shop.example"
    assert mail["To"] == "jan@example.com"
    assert mail["Cc"] == "zona@example.com"
    assert mail["Reply-To"].addresses[0].addr_spec == f"serwis+{thread.token}@shop.example"
    assert token_from_address(str(mail["Reply-To"])) == thread.token
    assert parse_message_id(mail["Message-ID"]) == (thread.id, delivery.message_id)
    assert mail["Message-ID"].strip("<>") == result.provider_id
    assert abs((mail["Date"].datetime - datetime.now(timezone.utc)).total_seconds()) < 60
    assert mail["In-Reply-To"] is None and mail["References"] is None  # the first mail of the thread
    assert is_our_instance(mail["X-Repair-Inbox-Instance"])


def test_mail_is_text_and_html_with_the_shops_signature_and_a_polish_named_attachment(mailbox, customer, smtp_server):
    pdf = b"%PDF-1.4\n% faktura\n"
    attachment = Attachment(filename="Faktura za naprawę – żółć.pdf", content_type="application/pdf",
                            size=len(pdf), sha256=stored_file(pdf))
    listed_only = Attachment(filename="film.mp4", content_type="video/mp4", size=10**9, sha256=None,
                             skipped_reason="too big")
    body = "Dzień dobry,\n\n**Telefon** jest *gotowy*:\n\n- ekran\n- bateria\n\n[Regulamin](https://shop.example/r)"
    send(new_delivery(new_thread(customer), body, attachments=[attachment, listed_only]))

    received = smtp_server.wait_for(1)[0]
    mail = parse(received)
    assert mail.get_content_type() == "multipart/mixed"
    alternative, *files = mail.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert len(files) == 1  # the file that was only listed is not attached
    assert files[0].get_filename() == "Faktura za naprawę – żółć.pdf"
    assert files[0].get_content_type() == "application/pdf"
    assert files[0].get_content() == pdf
    assert b"filename*0*=utf-8''Faktura%20za%20napraw%C4%99" in received.data  # RFC 2231, not raw UTF-8

    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Telefon jest gotowy:" in text and "**" not in text and "*gotowy*" not in text
    assert "- ekran\n- bateria" in text
    assert "Regulamin (https://shop.example/r)" in text
    html = mail.get_body(("html",)).get_content()
    assert "<strong>Telefon</strong>" in html and "<em>gotowy</em>" in html
    assert "<li>ekran</li>" in html
    assert 'href="https://shop.example/r"' in html
    for part in (text, html):
        for signature_line in ("Serwis Łatka", "Długa 5", "+48 22 100 20 30", "pn–pt 9–17"):
            assert signature_line in part


def test_each_mail_has_its_own_body_and_subject_and_the_signature_as_the_shop_has_it_now(
        mailbox, customer, shop, smtp_server):
    thread = new_thread(customer)
    send(new_delivery(thread, "Pierwsza **wiadomość**.", subject="Wycena <pilne> & ważne"))
    shop.phone = "+48 22 999 88 77"
    db.session.commit()
    send(new_delivery(thread, "Druga wiadomość.", subject="Re: Wycena"))

    first, second = (parse(received) for received in smtp_server.wait_for(2))
    first_html, second_html = (mail.get_body(("html",)).get_content() for mail in (first, second))
    assert "<title>Wycena &lt;pilne&gt; &amp; ważne</title>" in first_html  # the subject escaped, not markup
    assert "<strong>wiadomość</strong>" in first_html and "Druga" not in first_html
    assert "<title>Re: Wycena</title>" in second_html and "Pierwsza" not in second_html
    assert "+48 22 100 20 30" in first_html and "+48 22 999 88 77" in second_html
    second_text = second.get_body(("plain",)).get_content()
    assert second_text.startswith("Druga wiadomość.") and "+48 22 999 88 77" in second_text


def test_polish_subject_travels_encoded_and_decodes_back(mailbox, customer, smtp_server):
    send(new_delivery(new_thread(customer)))

    received = smtp_server.wait_for(1)[0]
    raw_headers = received.data.split(b"\r\n\r\n", 1)[0]
    raw_headers.decode("ascii")  # nothing but 7-bit text in the headers: RFC 2047 words for the Polish letters
    assert b"=?utf-8?" in raw_headers
    assert parse(received)["Subject"] == SUBJECT


def test_second_mail_in_a_thread_replies_to_the_first_so_mail_programs_group_them(mailbox, customer, smtp_server):
    thread = new_thread(customer)
    first, second = new_delivery(thread), new_delivery(thread, "Przypominamy o odbiorze.", subject="Re: " + SUBJECT)
    send(first)
    send(second)

    mail_1, mail_2 = (parse(r) for r in smtp_server.wait_for(2))
    assert mail_2["In-Reply-To"] == mail_1["Message-ID"]
    assert extract_ids(mail_2["References"]) == [mail_1["Message-ID"].strip("<>")]
    index_1, index_2 = (base64.b64decode(m["Thread-Index"]) for m in (mail_1, mail_2))
    assert len(index_1) == 22 and len(index_2) == 27 and index_2[:22] == index_1  # Outlook's conversation key
    assert mail_1["Thread-Topic"] == mail_2["Thread-Topic"] == SUBJECT


def test_references_keep_the_first_mail_and_the_latest_ones_in_a_long_thread(mailbox, customer, smtp_server):
    thread = new_thread(customer)
    earlier = [new_delivery(thread, f"Wiadomość {n}") for n in range(25)]
    for delivery in earlier:
        db.session.add(MessageRef(ref=f"m{delivery.message_id}@example.com", message_id=delivery.message_id,
                                  thread_id=thread.id, kind="received"))
    db.session.commit()

    send(new_delivery(thread, "Ostatnia"))

    references = extract_ids(parse(smtp_server.wait_for(1)[0])["References"])
    assert len(references) == 20
    assert references[-1] == f"m{earlier[0].message_id}@example.com"  # the root, oldest
    assert references[0] == f"m{earlier[-1].message_id}@example.com"  # the parent, newest


def test_subjects_end_with_the_repair_or_ticket_number_so_headerless_replies_find_their_context(
        mailbox, customer, smtp_server):
    repair = Repair(number="R-2026-0042", customer_id=customer.id, device="iPhone 12",
                    status_id=RepairStatus.ordered()[0].id)
    ticket = Ticket(number="Z-2026-0001", customer_id=customer.id, subject="Reklamacja")
    db.session.add_all([repair, ticket])
    db.session.flush()
    about_repair, about_ticket, about_nothing = new_thread(customer), new_thread(customer), new_thread(customer)
    about_repair.repair_id, about_ticket.ticket_id = repair.id, ticket.id
    db.session.commit()

    send(new_delivery(about_repair), new_delivery(about_repair, subject=f"Re: Wycena [#{repair.number}] – pilne"),
         new_delivery(about_ticket, subject="Odpowiedź w sprawie reklamacji"), new_delivery(about_nothing),
         new_delivery(about_repair, subject=f"Naprawa {repair.number} gotowa do odbioru"),
         new_delivery(about_repair, subject="Naprawa R-2026-00421"))

    subjects = sorted(parse(received)["Subject"] for received in smtp_server.wait_for(6))
    assert subjects == sorted([
        f"{SUBJECT} [#R-2026-0042]",
        "Re: Wycena [#R-2026-0042] – pilne",  # named already: not twice
        "Odpowiedź w sprawie reklamacji [#Z-2026-0001]",
        SUBJECT,
        "Naprawa [#R-2026-0042] gotowa do odbioru",  # a template naming the number: marked there, not repeated
        "Naprawa R-2026-00421 [#R-2026-0042]",  # another number that only begins the same
    ])


def test_long_polish_headers_and_names_are_folded_and_parse_back_without_defects(mailbox, customer, smtp_server):
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 40
    long_name = "Protokół przyjęcia urządzenia do naprawy gwarancyjnej – zażółć gęślą jaźń " * 2 + ".pdf"
    attachment = Attachment(filename=long_name, content_type="application/pdf", size=len(pdf),
                            sha256=stored_file(pdf))
    subject = "Zażółć gęślą jaźń – " * 8 + "koniec"
    cc = [f"rodzina{n}@example.com" for n in range(30)]
    body = "Dzień dobry,\n\n" + "Bardzo długa linia bez żadnych przerw " * 20 + "\n\n.\nKropka na początku linii."

    [result] = send(new_delivery(new_thread(customer), body, cc=cc, subject=subject, attachments=[attachment]))

    assert result.ok
    received = smtp_server.wait_for(1)[0]
    assert received.rcpt_tos == ["jan@example.com", *cc]
    assert all(len(line) <= 78 for line in received.data.split(b"\r\n")), "a line longer than 78 characters"
    assert received.data.isascii()
    mail = parse(received)
    assert all(not part.defects for part in mail.walk())
    assert mail["Subject"] == subject
    assert [address.addr_spec for address in mail["Cc"].addresses] == cc
    [file] = [part for part in mail.iter_attachments()]
    assert file.get_filename() == long_name and file.get_content() == pdf
    text = mail.get_body(("plain",)).get_content()
    assert ("Bardzo długa linia bez żadnych przerw " * 20).strip() in text.replace("\r\n", "\n")
    assert "\n.\nKropka na początku linii." in text.replace("\r\n", "\n")  # dot-stuffed on the wire, not in the mail


def test_a_long_polish_sender_name_is_folded_within_the_line_limit_and_names_the_address():
    name = "Serwis Łatka – naprawy telefonów i komputerów, Kraków"
    line = "Reply-To: " + mime.address(name, "kontakt+abc123@serwis-latka.example")

    assert all(len(part) <= 78 for part in line.split("\r\n")) and line.isascii()
    [address] = email.message_from_bytes(f"{line}\r\n\r\n".encode(), policy=email.policy.default)["Reply-To"].addresses
    assert address.addr_spec == "kontakt+abc123@serwis-latka.example"
    # The standard library puts a space between adjacent encoded words of a name; mail programs join them.
    assert address.display_name.replace(" ", "") == name.replace(" ", "")


def test_a_subject_that_looks_like_an_encoded_word_arrives_as_typed(mailbox, customer, smtp_server):
    typed = "Kod =?utf-8?q?Zap=C5=82acono?= z faktury"
    send(new_delivery(new_thread(customer), subject=typed))

    assert parse(smtp_server.wait_for(1)[0])["Subject"] == typed


def test_an_address_with_polish_letters_goes_out_with_smtputf8_or_fails_for_good_without_it(
        mailbox, customer, smtp_server, answerless_smtp_server):
    delivery = new_delivery(new_thread(customer))
    delivery.recipient = "łukasz@example.com"
    db.session.commit()

    [result] = send(delivery)

    assert result.ok  # aiosmtpd offers SMTPUTF8
    received = smtp_server.wait_for(1)[0]
    assert received.rcpt_tos == ["łukasz@example.com"]
    assert "\r\nTo: łukasz@example.com\r\n".encode() in received.data  # UTF-8 headers, as RFC 6532 allows

    plain = create_mailbox(name="Stary", email="stary@shop.example", smtp_host=answerless_smtp_server.host,
                           smtp_port=answerless_smtp_server.port, smtp_security="none")
    delivery.mailbox_id = plain.id
    db.session.commit()
    [result] = send(delivery)

    assert not result.ok and result.permanent and result.error_code == "unsupported"
    assert answerless_smtp_server.mails == 0


def test_only_automatic_notifications_ask_for_no_auto_replies(mailbox, customer, smtp_server):
    thread = new_thread(customer)
    send(new_delivery(thread, "Status: gotowe", automatic=True), new_delivery(thread, "Pisze Anna"))

    automatic, personal = (parse(r) for r in smtp_server.wait_for(2))
    assert automatic["Auto-Submitted"] == "auto-generated"
    assert automatic["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert personal["Auto-Submitted"] is None and personal["X-Auto-Response-Suppress"] is None


def test_scripts_and_javascript_links_in_the_body_do_not_survive_into_the_html(mailbox, customer, smtp_server):
    body = ('Hej <script>alert("x")</script> <img src=x onerror=alert(1)>\n\n'
            "[kliknij](javascript:alert(1)) i <javascript:alert(2)> oraz [ok](https://shop.example)")
    send(new_delivery(new_thread(customer), body))

    html = parse(smtp_server.wait_for(1)[0]).get_body(("html",)).get_content()
    assert "<script" not in html and "<img" not in html
    assert 'href="javascript' not in html.lower()
    assert 'href="https://shop.example"' in html


def test_a_subject_with_a_line_break_is_refused_before_anything_is_sent(mailbox, customer, smtp_server):
    delivery = new_delivery(new_thread(customer), subject="Naprawa\r\nBcc: everyone@example.com")

    with pytest.raises(ValueError):
        EmailChannel().build_mail(delivery)
    [result] = send(delivery)
    assert not result.ok and result.permanent
    assert smtp_server.messages == []


# --- connections --------------------------------------------------------------------------------


def test_a_dispatch_pass_sends_all_its_mail_over_one_connection_and_one_login(mailbox, customer, smtp_server):
    thread = new_thread(customer)
    results = send(*[new_delivery(thread, f"Wiadomość {n}") for n in range(5)])

    server = smtp_server
    assert all(result.ok for result in results)
    assert len(server.wait_for(5)) == 5
    assert server.connections == 1 and server.logins == 1


def test_a_connection_the_server_dropped_is_opened_again_once(mailbox, customer, smtp_server):
    thread = new_thread(customer)
    server = smtp_server
    session = EmailChannel().open_session()
    try:
        assert session.send(new_delivery(thread, "Pierwsza")).ok
        server.wait_for(1)
        server.drop_connections()
        assert session.send(new_delivery(thread, "Druga")).ok
    finally:
        session.close()
    assert len(server.wait_for(2)) == 2
    assert server.connections == 2


def test_a_mailbox_on_implicit_tls_sends_too(trusted_smtp, shop, customer):
    server = trusted_smtp
    add_mailbox(server, name="TLS", email="tls@shop.example", port=server.tls_port, security="tls")

    [result] = send(new_delivery(new_thread(customer)))

    assert result.ok
    assert parse(server.wait_for(1)[0])["From"].addresses[0].addr_spec == "tls@shop.example"


# --- failures -----------------------------------------------------------------------------------


def test_a_recipient_the_server_refuses_fails_for_good_with_the_servers_words(mailbox, customer, smtp_server):
    smtp_server.reject_next_rcpt_with = "550 5.1.1 <jan@example.com>: no such user"

    [result] = send(new_delivery(new_thread(customer)))

    assert not result.ok and result.permanent
    assert result.error_code == "550"
    assert "no such user" in result.error and "jan@example.com" in result.error
    assert result.error_raw.startswith("jan@example.com: 550 5.1.1")
    assert mailbox.consecutive_failures == 0  # the mailbox itself works


def test_a_temporary_refusal_is_retried_later(mailbox, customer, smtp_server):
    smtp_server.reject_next_rcpt_with = "450 4.2.1 mailbox busy, try later"

    [result] = send(new_delivery(new_thread(customer)))

    assert not result.ok and not result.permanent and result.error_code == "450"


def test_a_wrong_password_is_reported_as_failed_authentication(trusted_smtp, shop, customer):
    mailbox = add_mailbox(trusted_smtp, name="Serwis", email="serwis@shop.example", password="wrong password")

    [result] = send(new_delivery(new_thread(customer)))

    assert not result.ok and not result.permanent
    assert result.error_code == "auth"
    assert "authentication" in result.error and "serwis@shop.example" in result.error
    assert result.error_raw.startswith("535")
    assert mailbox.consecutive_failures == 1 and mailbox.last_error == result.error
    assert trusted_smtp.messages == []


@pytest.mark.app_config(SMTP_TIMEOUT=0.5)
@pytest.mark.parametrize("hang_up", [False, True], ids=["silent after the mail", "hangs up after the mail"])
def test_a_mail_the_server_took_in_without_answering_is_uncertain_and_never_sent_again(
        app, shop, customer, answerless_smtp_server, hang_up):
    server = answerless_smtp_server
    server.hang_up = hang_up
    create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host=server.host, smtp_port=server.port,
                   smtp_security="none")
    db.session.commit()
    delivery = new_delivery(new_thread(customer))
    delivery.status, delivery.next_attempt_at = "queued", None
    db.session.commit()

    counts = dispatch_pass()

    assert counts["uncertain"] == 1 and counts["retried"] == 0
    row = db.session.get(Delivery, delivery.id)
    assert (row.status, row.uncertain, row.error_code) == ("sending", True, "no_answer")
    assert "may have been delivered" in row.error
    assert dispatch_pass(now=row.claimed_at + timedelta(hours=2))["claimed"] == 0  # staff decide, not a pass
    assert server.mails == 1
    assert db.session.scalars(select(DeliveryEvent.status).where(DeliveryEvent.delivery_id == delivery.id)).all() \
        == ["uncertain"]


@pytest.mark.app_config(SMTP_TIMEOUT=0.5)
def test_after_a_lost_answer_the_next_mail_of_the_pass_goes_over_a_new_connection(
        app, shop, customer, answerless_smtp_server):
    server = answerless_smtp_server
    server.hang_up = True
    create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host=server.host, smtp_port=server.port,
                   smtp_security="none")
    db.session.commit()
    thread = new_thread(customer)

    first, second = send(new_delivery(thread, "Pierwsza"), new_delivery(thread, "Druga"))

    assert first.uncertain and not first.ok
    assert second.uncertain and server.mails == 2 and server.connections == 2  # tried, not skipped as broken


@pytest.mark.app_config(SMTP_TIMEOUT=0.5)
def test_a_server_that_never_answers_times_out(app, shop, customer, silent_smtp_server):
    mailbox = create_mailbox(name="Cichy", email="serwis@shop.example", smtp_host=silent_smtp_server.host,
                             smtp_port=silent_smtp_server.port, smtp_security="starttls")
    db.session.commit()

    [result] = send(new_delivery(new_thread(customer)))

    assert not result.ok and result.error_code == "timeout"
    assert "timed out" in result.error
    assert mailbox.consecutive_failures == 1


def test_an_unreachable_mailbox_is_tried_once_per_pass(app, shop, customer):
    mailbox = create_mailbox(name="Zepsuty", email="serwis@shop.example", smtp_host="127.0.0.1",
                             smtp_port=free_port(), smtp_security="starttls")
    db.session.commit()
    thread = new_thread(customer)

    results = send(new_delivery(thread), new_delivery(thread))

    assert [r.error_code for r in results] == ["refused", "refused"]
    assert "refused the connection" in results[0].error
    assert mailbox.consecutive_failures == 1


def test_after_three_failed_passes_the_mailbox_is_broken_and_the_default_one_sends(trusted_smtp, shop, customer):
    server = trusted_smtp
    default = add_mailbox(server, name="Główna", email="biuro@shop.example", is_default=True)
    workshop = create_mailbox(name="Warsztat", email="warsztat@shop.example", display_name="Warsztat",
                              smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="starttls")
    db.session.commit()
    thread = new_thread(customer)

    for attempt in range(3):
        [result] = send(new_delivery(thread, f"Próba {attempt}", mailbox=workshop))
        assert not result.ok and result.mailbox_id == workshop.id
    assert workshop.consecutive_failures == 3 and workshop.broken_at is not None
    assert server.messages == []

    [result] = send(new_delivery(thread, "Teraz przez główną", mailbox=workshop))

    assert result.ok and result.mailbox_id == default.id
    mail = parse(server.wait_for(1)[0])
    assert mail["From"].addresses[0].addr_spec == "biuro@shop.example"
    assert mail["Reply-To"].addresses[0].addr_spec == f"warsztat+{thread.token}@shop.example"
    assert workshop.broken_at is not None  # still broken until it works again
    assert default.consecutive_failures == 0 and default.last_send_at is not None


# --- test connection ----------------------------------------------------------------------------


def test_testing_a_working_mailbox_says_it_signed_in(mailbox, smtp_server):
    ok, outcome = EmailChannel().test_connection(mailbox)

    assert ok
    assert "STARTTLS" in outcome and "signed in as serwis@shop.example" in outcome
    assert smtp_server.logins == 1


def test_passwords_with_and_without_polish_letters_both_sign_in(mailbox, smtp_server):
    assert not smtp_server.password.isascii()  # smtplib alone would fail to even send this one
    assert EmailChannel().test_connection(mailbox)[0]

    smtp_server.password = "plain-ascii-password"
    update_mailbox(mailbox, password="plain-ascii-password")

    assert EmailChannel().test_connection(mailbox)[0]
    assert smtp_server.logins == 2


@pytest.mark.parametrize(("change", "words"), [
    ({"password_enc": None}, "authentication failed"),
    ({"smtp_security": "none"}, "does not offer a login"),
    ({"smtp_security": "tls"}, "secure connection (TLS)"),
])
def test_testing_a_misconfigured_mailbox_says_what_is_wrong(mailbox, change, words):
    for field, value in change.items():
        setattr(mailbox, field, value)

    ok, outcome = EmailChannel().test_connection(mailbox)

    assert not ok and words in outcome


def test_testing_a_mailbox_whose_server_is_down_says_the_connection_was_refused(app, shop):
    mailbox = create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host="127.0.0.1",
                             smtp_port=free_port(), smtp_security="tls")

    ok, outcome = EmailChannel().test_connection(mailbox)

    assert not ok and "refused the connection" in outcome


def test_server_answers_become_clear_words(app):
    mailbox = Mailbox(name="Serwis", email="serwis@shop.example", smtp_host="smtp.shop.example", smtp_port=587)

    dns = describe_failure(socket.gaierror(socket.EAI_NONAME, "Name or service not known"), mailbox)
    too_big = describe_failure(smtplib.SMTPSenderRefused(552, b"5.3.4 Message size exceeds fixed limit",
                                                         "serwis@shop.example"), mailbox)

    assert dns.code == "dns" and "not found" in dns.error and dns.mailbox_fault
    assert too_big.permanent and "too big" in too_big.error and too_big.raw.startswith("552 5.3.4")


# --- reachability -------------------------------------------------------------------------------


def test_a_customer_without_an_address_or_a_shop_without_a_mailbox_cannot_be_reached(app, shop, customer):
    channel = EmailChannel()
    assert "mailbox" in channel.unreachable_reason(customer, shop).lower()

    create_mailbox(name="Serwis", email="serwis@shop.example", smtp_host="smtp.shop.example", smtp_port=587,
                   smtp_security="starttls")
    assert channel.unreachable_reason(customer, shop) is None
    customer.email = None
    assert "no e-mail address" in channel.unreachable_reason(customer, shop)


# --- ids ----------------------------------------------------------------------------------------


@pytest.mark.app_config(SECRET_KEY="new-secret", SECRET_KEY_FALLBACKS=["test-secret"])
def test_signed_message_ids_are_checked_and_survive_a_key_rotation(app):
    ours = make_message_id(12, 345, "shop.example")
    local, _, domain = ours.strip("<>").partition("@")

    assert parse_message_id(ours) == (12, 345)
    assert parse_message_id(f"  {local}@SHOP.EXAMPLE ") == (12, 345)
    assert parse_message_id(local.replace("ri.12.", "ri.13.") + "@shop.example") is None  # forged thread
    assert parse_message_id("<CAF=abc@mail.gmail.com>") is None
    app.config["SECRET_KEY"] = "test-secret"
    old_id = make_message_id(7, 8, "shop.example")
    app.config["SECRET_KEY"] = "new-secret"
    assert parse_message_id(old_id) == (7, 8)
    assert is_our_instance(instance_id())


def test_ids_are_found_in_headers_newest_first_and_tokens_in_addresses(app):
    assert extract_ids("<a@x> <b@x>\r\n <c\r\n @x>") == ["c@x", "b@x", "a@x"]
    assert extract_ids(None) == []
    assert reply_address("serwis@shop.example", "0123abcd0123abcd") == "serwis+0123abcd0123abcd@shop.example"
    assert token_from_address('"Serwis" <Serwis+0123ABCD0123ABCD@shop.example>') == "0123abcd0123abcd"
    assert token_from_address("serwis@shop.example") is None
    assert thread_topic("Re: ODP: Fwd:  Naprawa [#R-2026-0001]") == "Naprawa [#R-2026-0001]"
    created = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert base64.b64decode(thread_index("tok", created, 3))[:22] == base64.b64decode(thread_index("tok", created))
    assert base64.b64decode(thread_index("tok", created))[:22] != base64.b64decode(thread_index("other", created))


def test_markdown_becomes_plain_text_a_person_would_type(app):
    text = markdown_to_text("**Uwaga**: _pilne_\n\n1. jeden\n2. dwa\n\nZobacz [cennik](https://shop.example/c) "
                            "lub <https://shop.example>.")

    assert text == ("Uwaga: pilne\n\n1. jeden\n2. dwa\n\n"
                    "Zobacz cennik (https://shop.example/c) lub https://shop.example.")

