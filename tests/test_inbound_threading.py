"""Received mail finds its thread the way real mail programs answer: the reply token, our Message-ID, a stored
Message-ID, a subject reference from the thread's own customer; and never someone else's thread."""
from __future__ import annotations

import pytest
from inbound_helpers import (
    make_customer, make_mailbox, make_repair, plain_mail, receive, sample, send_mail, without_headers,
)
from sqlalchemy import select

from app.extensions import db
from app.inbound.threading import subject_references
from app.models import InboundItem, Message, MessageRef, Thread


@pytest.fixture
def mailbox(app):
    return make_mailbox()


# Not the shared `customer`: the address the sample mails of tests/mail come from, no phone.
@pytest.fixture
def customer(app):
    return make_customer()


@pytest.fixture
def sent(mailbox, customer):
    """The shop's mail about a repair, which the customer answers."""
    return send_mail(customer, repair=make_repair(customer))


def inbound(thread: Thread) -> list[Message]:
    db.session.expire_all()
    return [m for m in db.session.get(Thread, thread.id).messages if m.direction == "in"]


def test_customer_reply_from_gmail_lands_in_the_repair_thread_with_only_the_new_part(mailbox, sent):
    outcome = receive(mailbox, sample("gmail_pl_reply.eml", sent))

    assert outcome.status == "threaded" and outcome.thread.id == sent.thread_id
    [reply] = inbound(sent.thread)
    assert reply.kind == "message" and reply.channel == "email"
    assert reply.author_customer_id == sent.thread.customer_id
    assert reply.sender == "jan.kowalski@example.com" and reply.meta["from_name"] == "Jan Kowalski"
    assert "450 zł mi odpowiada" in reply.body_text and "napisał(a)" not in reply.body_text
    assert reply.quoted_text  # the history is kept, folded in the view
    thread = db.session.get(Thread, sent.thread_id)
    assert thread.unread and thread.status == "waiting_us" and thread.last_inbound_at is not None
    assert "450 zł" in thread.last_message_preview
    assert outcome.item.status == "accepted" and outcome.item.message_id == reply.id
    assert db.session.scalar(select(MessageRef.message_id).where(MessageRef.ref.like("CAHx3fTq8Lw2%"))) == reply.id


def test_outlook_reply_with_only_thread_index_and_a_new_subject_is_threaded_by_the_token(mailbox, sent):
    raw = without_headers(sample("outlook_pl_reply.eml", sent), "In-Reply-To", "References")
    raw = raw.replace(b"RE:_Laptop_Lenovo_=96_diagnoza_[#R-1044]", b"Pytanie_o_co=B6_innego")

    outcome = receive(mailbox, raw)

    assert b"In-Reply-To" not in raw and outcome.status == "threaded"
    assert outcome.thread.id == sent.thread_id
    assert inbound(sent.thread)[0].subject == "Pytanie o coś innego"


def test_thunderbird_reply_to_the_plain_address_is_threaded_by_references(mailbox, sent):
    raw = sample("thunderbird_pl_reply.eml", sent).replace(b"serwis+" + sent.thread.token.encode(), b"serwis")
    raw = raw.replace(b"k.zielinski@example.com", b"jan.kowalski@example.com")

    outcome = receive(mailbox, raw)

    assert outcome.status == "threaded" and outcome.thread.id == sent.thread_id


def test_reply_to_a_mail_we_received_is_threaded_by_its_stored_message_id(mailbox, sent):
    receive(mailbox, sample("gmail_pl_reply.eml", sent))
    follow_up = plain_mail(subject="Jeszcze jedno", message_id="<second@example.com>",
                           extra="In-Reply-To: <CAHx3fTq8Lw2Xz7c0vYk1mJb9uN4pQ+5r6sT7uV8wX9yZ0aB1cD@mail.gmail.com>")

    outcome = receive(mailbox, follow_up)

    assert outcome.status == "threaded" and outcome.thread.id == sent.thread_id


def test_a_forwarded_mail_from_the_customer_opens_a_new_thread(mailbox, customer):
    outcome = receive(mailbox, sample("gmail_forward.eml").replace(b"serwis+TOKEN@", b"serwis@"))

    assert outcome.status == "new_thread"
    thread = outcome.thread
    assert thread.customer_id == customer.id and thread.source_channel == "email" and thread.unread
    assert thread.subject == "Fwd: Faktura za naprawę"
    assert thread.repair_id is None


def test_subject_reference_from_the_repairs_customer_finds_its_thread(mailbox, sent, customer):
    repair = sent.thread.repair
    raw = plain_mail(subject=f"Odp: RE: pytanie [#{repair.number}]", message_id="<subj@example.com>")

    outcome = receive(mailbox, raw)

    assert outcome.status == "threaded" and outcome.thread.id == sent.thread_id


def test_subject_reference_from_another_customer_never_enters_that_repair(mailbox, sent):
    make_customer(name="Ewa Obca", email="ewa@example.com")
    repair = sent.thread.repair
    raw = plain_mail(sender="Ewa Obca <ewa@example.com>", subject=f"Re: [#{repair.number}] moja naprawa",
                     message_id="<ewa@example.com>")

    outcome = receive(mailbox, raw)

    assert outcome.status == "new_thread" and outcome.thread.id != sent.thread_id
    assert outcome.thread.repair_id is None
    assert inbound(sent.thread) == []


def test_a_person_in_cc_who_answers_with_the_token_joins_the_thread_as_themselves(mailbox, sent):
    raw = sample("gmail_en_reply.eml", sent)  # John Smith, not a customer of the shop

    outcome = receive(mailbox, raw)

    assert outcome.status == "threaded" and outcome.thread.id == sent.thread_id
    [reply] = inbound(sent.thread)
    assert reply.sender == "john.smith@example.com" and reply.author_customer_id is None
    assert reply.recipients["cc"] == ["anna.smith@example.com"]


def test_a_token_on_another_domain_is_not_ours(mailbox, sent):
    raw = plain_mail(sender="Obcy <obcy@example.net>", to=f"someone+{sent.thread.token}@example.org",
                     message_id="<other-domain@example.net>")

    outcome = receive(mailbox, raw)

    assert outcome.status == "held"


def test_mail_to_a_merged_thread_lands_in_the_thread_it_was_merged_into(mailbox, sent, customer):
    other = send_mail(customer, body="Inny wątek")
    target = db.session.get(Thread, other.thread_id)
    db.session.get(Thread, sent.thread_id).merged_into_id = target.id
    db.session.commit()

    outcome = receive(mailbox, sample("gmail_pl_reply.eml", sent))

    assert outcome.thread.id == target.id


def test_a_closed_thread_is_reopened_by_a_reply(mailbox, sent):
    thread = db.session.get(Thread, sent.thread_id)
    thread.status = "closed"
    db.session.commit()

    receive(mailbox, sample("gmail_pl_reply.eml", sent))

    db.session.expire_all()
    assert db.session.get(Thread, sent.thread_id).status == "waiting_us"


def test_an_unknown_thread_from_a_customer_is_held_when_the_mailbox_opens_no_new_threads(app, customer):
    mailbox = make_mailbox(imap_host="imap.shop.example", username="serwis", password="tajne", allow_new_threads=False)

    outcome = receive(mailbox, plain_mail())

    assert outcome.status == "held" and "new threads" in outcome.item.reason


@pytest.mark.parametrize("subject, numbers", [
    ("Re: Naprawa gotowa [#R-2026-0042]", ["R-2026-0042"]),
    ("RE: [EXTERNAL] Odp: AW: Fwd: PD: sprawa [#Z-2026-0001]", ["Z-2026-0001"]),
    ("bez numeru", []),
    ("[# R-1] [#] [#R-1]", ["R-1"]),
])
def test_subject_references_are_read_anywhere_in_the_subject(subject, numbers):
    assert subject_references(subject) == numbers


def test_the_same_message_arriving_twice_is_stored_once(mailbox, sent):
    raw = sample("gmail_pl_reply.eml", sent)

    first = receive(mailbox, raw)
    again_same_uid = receive(mailbox, raw, uid=first.item.uid)
    again_other_uid = receive(mailbox, raw)

    assert (first.status, again_same_uid.status, again_other_uid.status) == ("threaded", "duplicate", "duplicate")
    assert len(inbound(sent.thread)) == 1
    assert again_other_uid.thread.id == sent.thread_id
    items = db.session.scalars(select(InboundItem).order_by(InboundItem.id)).all()
    assert [i.status for i in items] == ["accepted", "duplicate"]  # the same UID adds nothing


def test_a_reused_message_id_with_other_content_is_stored_as_a_new_mail(mailbox, customer):
    first = receive(mailbox, plain_mail(body="Pierwsza"))
    second = receive(mailbox, plain_mail(body="Druga, inna treść"))

    assert first.status == "new_thread" and second.status in ("threaded", "new_thread")
    assert second.item.message_id != first.item.message_id


def test_mail_without_message_id_is_stored_and_an_identical_copy_is_not(mailbox, customer):
    raw = plain_mail(message_id=None)

    first, second = receive(mailbox, raw), receive(mailbox, raw)

    assert first.status == "new_thread" and second.status == "duplicate"


def test_a_reply_arriving_turns_the_inbox_row_bold_and_the_thread_shows_the_new_part(staff_page, live_server,
                                                                                     mailbox, sent):
    from playwright.sync_api import expect

    page = staff_page
    page.goto(f"{live_server.url}/")
    row = page.locator("tr", has_text=sent.thread.subject)
    expect(row).not_to_have_class("is-unread")

    receive(mailbox, sample("gmail_pl_reply.eml", sent))
    page.reload()

    expect(row).to_have_class("is-unread")
    expect(row.locator("td").nth(1)).to_have_css("font-weight", "650")
    expect(row).to_contain_text("450 zł mi odpowiada")
    row.get_by_role("link", name=sent.thread.subject).click()

    reply = page.locator(".entry-in").last
    expect(reply.locator(".entry-body").first).to_contain_text("450 zł mi odpowiada")
    quote = reply.locator("details.mail-quote")
    expect(quote.locator(".entry-body")).not_to_be_visible()
    expect(reply).to_contain_text("Jan Kowalski")
    quote.locator("summary").click()
    expect(quote.locator(".entry-body")).to_be_visible()
    expect(quote.locator(".entry-body")).to_contain_text("napisał(a)")
