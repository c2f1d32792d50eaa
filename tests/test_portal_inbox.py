"""The customer panel's inbox: what a customer sees, replies and new threads, files, notices, and isolation."""
from __future__ import annotations

import email
import email.policy
import io
import re

import pytest
from panel_helpers import (dispatch_now, link_in, mail_text, open_link, panel_csrf, panel_customer, panel_path,
                           publish, sign_in_customer)

from app.attachments import store
from app.extensions import db
from app.messaging.compose import compose
from app.models import Delivery, Message, Shop, Thread
from app.repairs import create_repair

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def two_customers(app, staff):
    """Jan and Anna, each with a repair, a published message with a file, and a panel session of their own."""
    people = {}
    for name, address, device in (("Jan Kowalski", "jan@example.com", "iPhone 12"),
                                  ("Anna Nowak", "anna@example.com", "Galaxy S21")):
        customer = panel_customer(name, address)
        repair = create_repair(customer=customer, device=device)
        db.session.commit()
        photo = store(io.BytesIO(PNG), f"{device}.png")
        message = publish(customer, f"Zdjęcie {device}", repair=repair, author=staff, attachments=[photo])
        people[name.split()[0].lower()] = {"customer": customer, "repair": repair, "message": message}
    return people


def test_a_customer_sees_their_threads_newest_first_with_context_and_unread(app, staff):
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    old_repair = create_repair(customer=customer, device="iPad")
    repair = create_repair(customer=customer, device="iPhone 12")
    db.session.commit()
    publish(customer, "iPad gotowy", repair=old_repair, author=staff)
    publish(customer, "Wymieniamy ekran", repair=repair, author=staff)
    client = app.test_client()
    sign_in_customer(client, customer)
    page = client.get(panel_path("/")).get_data(as_text=True)
    assert page.index(f"{repair.number} · iPhone 12") < page.index(f"{old_repair.number} · iPad")
    assert page.count("panel-thread is-unread") == 2
    assert repair.status.name in page

    thread_id = db.session.scalar(db.select(Thread.id).where(Thread.repair_id == repair.id))
    assert "Wymieniamy ekran" in client.get(panel_path(f"/threads/{thread_id}")).get_data(as_text=True)
    assert client.get(panel_path("/")).get_data(as_text=True).count("panel-thread is-unread") == 1


def test_the_thread_shows_only_what_was_meant_for_the_customer(app, staff, mailbox):
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    repair = create_repair(customer=customer, device="iPhone 12")
    db.session.commit()
    shown = publish(customer, "Widoczne w panelu", repair=repair, author=staff)
    publish(customer, "Tylko e-mailem", repair=repair, author=staff, channels=("email",))
    db.session.add(Message(thread_id=shown.thread_id, kind="note", direction="internal", body_text="Notatka wewnętrzna",
                           visible_to_customer=False))
    waiting = compose(customer=customer, channels=["portal"], body="Jeszcze w oknie cofania", repair=repair,
                      author=staff)  # not dispatched: still inside the undo window
    db.session.commit()
    client = app.test_client()
    sign_in_customer(client, customer)
    page = client.get(panel_path(f"/threads/{shown.thread_id}")).get_data(as_text=True)
    assert "Widoczne w panelu" in page and "Tylko e-mailem" in page  # what went by e-mail shows too, once sent
    for hidden in ("Notatka wewnętrzna", "Jeszcze w oknie cofania", "jan@example.com"):
        assert hidden not in page
    assert waiting.thread_id == shown.thread_id


def test_every_panel_url_of_another_customer_is_404(app, two_customers):
    jan, anna = two_customers["jan"], two_customers["anna"]
    client = app.test_client()
    sign_in_customer(client, jan["customer"])
    own_thread = jan["message"].thread_id
    assert client.get(panel_path(f"/threads/{own_thread}")).status_code == 200
    own_file = jan["message"].attachments[0].id
    assert client.get(panel_path(f"/attachments/{own_file}")).status_code == 200

    token = panel_csrf(client, f"/threads/{own_thread}")
    theirs = anna["message"]
    for path in (f"/threads/{theirs.thread_id}", f"/threads/{theirs.thread_id}?seen=0&wait=10",
                 f"/attachments/{theirs.attachments[0].id}", f"/new?repair_id={anna['repair'].id}"):
        assert client.get(panel_path(path)).status_code == 404, path
    for path, data in ((f"/threads/{theirs.thread_id}/reply", {"body": "Cudzy wątek"}),
                       (f"/new?repair_id={anna['repair'].id}", {"body": "Cudza naprawa"})):
        assert client.post(panel_path(path), data={**data, "csrf_token": token}).status_code == 404, path
    assert db.session.scalar(db.select(db.func.count(Message.id)).where(Message.direction == "in")) == 0
    assert "Galaxy" not in client.get(panel_path("/")).get_data(as_text=True)


def test_a_reply_reaches_the_staff_inbox_unread_and_the_shop_by_mail(app, staff, staff_client, mailbox, smtp_server):
    shop = Shop.current()
    shop.notification_email = "biuro@shop.example"
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    repair = create_repair(customer=customer, device="iPhone 12")
    db.session.commit()
    message = publish(customer, "Telefon gotowy", repair=repair, author=staff)
    thread = message.thread
    thread.status, thread.unread = "closed", False
    db.session.commit()
    dispatch_now()
    smtp_server.wait_for(1)
    smtp_server.messages.clear()  # the panel notice about the shop's message

    panel = app.test_client()
    sign_in_customer(panel, customer)
    token = panel_csrf(panel, f"/threads/{thread.id}")
    response = panel.post(panel_path(f"/threads/{thread.id}/reply"), content_type="multipart/form-data",
                          data={"body": "Dziękuję, odbiorę jutro.", "csrf_token": token,
                                "attachments": [(io.BytesIO(PNG), "paragon.png")]})
    assert response.status_code == 303
    reply = db.session.scalars(db.select(Message).where(Message.direction == "in")).one()
    assert (reply.channel, reply.author_customer_id, reply.kind) == ("portal", customer.id, "message")
    assert [a.content_type for a in reply.attachments] == ["image/png"]
    assert thread.unread and thread.status == "waiting_us"
    assert "Dziękuję, odbiorę jutro." in thread.last_message_preview

    inbox = staff_client.get("/").get_data(as_text=True)
    assert "Dziękuję, odbiorę jutro." in inbox
    assert "Dziękuję, odbiorę jutro." in panel.get(panel_path(f"/threads/{thread.id}")).get_data(as_text=True)

    dispatch_now()
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["biuro@shop.example"]
    parsed = email.message_from_bytes(mail.data, policy=email.policy.default)
    assert "Jan Kowalski" in parsed["Subject"] and repair.number in parsed["Subject"]
    assert parsed["Auto-Submitted"] == "auto-generated"
    text = mail_text(mail)
    for expected in ("Jan Kowalski", "jan@example.com", repair.number, "Dziękuję, odbiorę jutro.",
                     f"http://shop.example/threads/{thread.id}", "paragon.png"):
        assert expected in text


def test_a_message_to_the_panel_tells_the_customer_by_mail_with_a_link_to_the_thread(app, staff, mailbox, smtp_server,
                                                                                     owner_client):
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    repair = create_repair(customer=customer, device="iPhone 12")
    db.session.commit()
    message = publish(customer, "Wycena: 350 zł", repair=repair, author=staff)
    assert dispatch_now()["sent"] == 1
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["jan@example.com"]
    parsed = email.message_from_bytes(mail.data, policy=email.policy.default)
    assert repair.number in parsed["Subject"]
    assert f"+{message.thread.token}@" in parsed["Reply-To"]
    text = mail_text(mail)
    assert "350" not in text  # the notice says a message waits; the message stays in the panel
    client = app.test_client()
    response = open_link(client, link_in(text))
    assert response.status_code == 302
    assert response.headers["Location"] == panel_path(f"/threads/{message.thread_id}")
    assert "Wycena: 350 zł" in client.get(response.headers["Location"]).get_data(as_text=True)

    # Used once: later the same link leads to the sign-in page, which comes back to the thread.
    expired = open_link(app.test_client(), link_in(text))
    assert expired.status_code == 410
    assert f"next=/p/serwis/threads/{message.thread_id}" in expired.get_data(as_text=True).replace("%2F", "/")

    # Staff see the notice as such, in the thread and in the outbox.
    assert "E-mail (notice of a panel message):" in owner_client.get(f"/threads/{message.thread_id}").get_data(as_text=True)
    assert "notice of a panel message" in owner_client.get("/outbox/").get_data(as_text=True)


def test_no_notice_when_the_message_also_went_by_email(app, staff, mailbox, smtp_server):
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    publish(customer, "Gotowe", author=staff, channels=("portal", "email"))
    dispatch_now()
    assert db.session.scalar(db.select(db.func.count(Delivery.id)).where(Delivery.purpose == "panel_notice")) == 0
    assert len(smtp_server.wait_for(1)) == 1


def test_a_customer_starts_a_thread_about_their_repair(app, staff):
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    repair = create_repair(customer=customer, device="iPhone 12")
    db.session.commit()
    client = app.test_client()
    sign_in_customer(client, customer)
    assert f"/new?repair_id={repair.id}" in client.get(panel_path("/")).get_data(as_text=True)
    token = panel_csrf(client, f"/new?repair_id={repair.id}")
    empty = client.post(panel_path(f"/new?repair_id={repair.id}"), data={"body": " ", "csrf_token": token})
    assert empty.status_code == 400 and "Write a message." in empty.get_data(as_text=True)
    response = client.post(panel_path(f"/new?repair_id={repair.id}"), data={"body": "Kiedy będzie gotowy?",
                                                                           "csrf_token": token})
    assert response.status_code == 303
    thread = db.session.scalars(db.select(Thread)).one()
    assert thread.repair_id == repair.id and thread.customer_id == customer.id and thread.unread
    assert response.headers["Location"] == panel_path(f"/threads/{thread.id}")


def test_files_are_refused_when_the_shop_does_not_take_them(app, staff):
    Shop.current().panel_allows_attachments = False
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    message = publish(customer, "Gotowe", author=staff)
    client = app.test_client()
    sign_in_customer(client, customer)
    token = panel_csrf(client, f"/threads/{message.thread_id}")
    response = client.post(panel_path(f"/threads/{message.thread_id}/reply"), content_type="multipart/form-data",
                           data={"body": "Zdjęcie", "csrf_token": token, "attachments": [(io.BytesIO(PNG), "a.png")]})
    assert response.status_code == 400
    assert "does not accept files" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Message.id)).where(Message.direction == "in")) == 0


def test_a_download_is_an_attachment_that_is_not_sniffed(app, two_customers):
    jan = two_customers["jan"]
    client = app.test_client()
    sign_in_customer(client, jan["customer"])
    response = client.get(panel_path(f"/attachments/{jan['message'].attachments[0].id}"))
    assert response.data == PNG
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_thread_polls_for_new_messages_less_often_while_nothing_changes(app, staff):
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    message = publish(customer, "Pierwsza", author=staff)
    client = app.test_client()
    sign_in_customer(client, customer)
    page = client.get(panel_path(f"/threads/{message.thread_id}")).get_data(as_text=True)
    assert 'hx-trigger="load delay:10s"' in page
    headers = {"HX-Request": "true"}
    quiet = client.get(panel_path(f"/threads/{message.thread_id}?seen={message.id}&wait=10"), headers=headers)
    assert 'hx-trigger="load delay:20s"' in quiet.get_data(as_text=True)
    longest = client.get(panel_path(f"/threads/{message.thread_id}?seen={message.id}&wait=120"), headers=headers)
    assert 'hx-trigger="load delay:120s"' in longest.get_data(as_text=True)

    newer = publish(customer, "Druga", author=staff, thread=message.thread)
    fresh = client.get(panel_path(f"/threads/{message.thread_id}?seen={message.id}&wait=80"), headers=headers)
    body = fresh.get_data(as_text=True)
    assert "Druga" in body and 'hx-trigger="load delay:10s"' in body and "<html" not in body
    assert db.session.get(Message, newer.id).read_by_customer_at is not None


def test_every_panel_form_needs_its_csrf_token(app, staff):
    app.config["WTF_CSRF_ENABLED"] = True
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    message = publish(customer, "Gotowe", author=staff)
    client = app.test_client()
    sign_in_customer(client, customer)
    response = client.post(panel_path(f"/threads/{message.thread_id}/reply"), data={"body": "Bez tokenu"})
    assert response.status_code == 400
    assert db.session.scalar(db.select(db.func.count(Message.id)).where(Message.direction == "in")) == 0


def test_the_inbox_refreshes_itself_and_slows_down_while_nothing_changes(app, staff):
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    publish(customer, "Pierwsza", author=staff)
    client = app.test_client()
    sign_in_customer(client, customer)
    page = client.get(panel_path("/")).get_data(as_text=True)
    poll = re.search(r'hx-get="([^"]+)" hx-trigger="load delay:10s"', page).group(1).replace("&amp;", "&")
    headers = {"HX-Request": "true"}
    quiet = client.get(poll, headers=headers).get_data(as_text=True)
    assert 'hx-trigger="load delay:20s"' in quiet and "<html" not in quiet

    publish(customer, "Druga wiadomość", author=staff)
    fresh = client.get(poll, headers=headers).get_data(as_text=True)
    assert "Druga wiadomość" in fresh and 'hx-trigger="load delay:10s"' in fresh
