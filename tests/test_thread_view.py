"""A long thread's page: the latest messages at once, earlier ones on request, links to any message still work,
and the page asks the database the same few questions however long the thread is."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import event

from app.customers import create_customer
from app.extensions import db
from app.messaging.threads import open_thread
from app.models import Attachment, Delivery, Message, utcnow
from app.staff.threads import PAGE_MESSAGES


def long_thread(count: int, *, customer=None):
    """A thread of `count` messages a minute apart: ours by e-mail (with a delivery and a file), notes, replies."""
    customer = customer or create_customer(name="Jan Kowalski", email="jan@example.com")
    thread = open_thread(customer, subject="Naprawa iPhone 12")
    start = utcnow() - timedelta(days=3)
    messages = []
    for n in range(count):
        kind, direction = [("message", "out"), ("note", "internal"), ("message", "in")][n % 3]
        incoming = direction == "in"
        message = Message(thread_id=thread.id, kind=kind, direction=direction, body_text=f"Wiadomość numer {n}.",
                          channel="sms" if incoming else None, sender="+48600100200" if incoming else "",
                          body_format="text" if incoming else "markdown", created_at=start + timedelta(minutes=n))
        if direction == "out":
            message.deliveries = [Delivery(channel="email", status="delivered", recipient=customer.email)]
            message.attachments = [Attachment(filename=f"wycena-{n}.pdf", size=2048)]
        messages.append(message)
    db.session.add_all(messages)
    db.session.commit()
    return thread, messages


def shown_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'id="message-(\d+)"', html)]


def test_a_long_thread_shows_its_latest_messages_and_loads_earlier_ones_on_request(staff_client):
    thread, messages = long_thread(PAGE_MESSAGES + 12)
    html = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert shown_ids(html) == [m.id for m in messages[-PAGE_MESSAGES:]]
    assert "Wiadomość numer 11." not in html and "Wiadomość numer 12." in html
    earlier = re.search(r'hx-get="([^"]+)"', html[html.index("data-earlier"):])[1].replace("&amp;", "&")
    assert earlier == f"/threads/{thread.id}/earlier?before={messages[12].id}"

    fragment = staff_client.get(earlier, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert shown_ids(fragment) == [m.id for m in messages[:12]]
    assert "data-earlier" not in fragment and "<html" not in fragment
    assert "Wiadomość numer 0." in fragment and "wycena-0.pdf" in fragment


def test_each_entry_shows_its_time_exactly_and_in_the_readers_words(app, staff_client):
    thread, messages = long_thread(3)
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    with app.test_request_context():
        shown = app.jinja_env.filters["datetime"](messages[0].created_at)
    assert f'<time datetime="{messages[0].created_at.isoformat()}">{shown}</time>' in page


def test_earlier_messages_come_a_page_at_a_time_until_the_first(staff_client):
    thread, messages = long_thread(2 * PAGE_MESSAGES + 5)
    url = f"/threads/{thread.id}/earlier?before={messages[-PAGE_MESSAGES].id}"
    fragment = staff_client.get(url).get_data(as_text=True)
    assert shown_ids(fragment) == [m.id for m in messages[5:PAGE_MESSAGES + 5]]
    assert f"before={messages[5].id}" in fragment  # the next link asks for what is left


def test_a_link_to_an_early_message_finds_it_in_the_whole_thread(staff_client):
    thread, messages = long_thread(PAGE_MESSAGES + 3)
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert f'href="/threads/{thread.id}?all=1"' in page  # where thread.js sends a #message-N it cannot find
    assert "js/thread.js" in page
    html = staff_client.get(f"/threads/{thread.id}?all=1").get_data(as_text=True)
    assert shown_ids(html) == [m.id for m in messages]
    assert "data-earlier" not in html


def test_a_short_thread_has_no_earlier_link(staff_client):
    thread, messages = long_thread(PAGE_MESSAGES)
    html = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert shown_ids(html) == [m.id for m in messages]
    assert "data-earlier" not in html


def test_earlier_messages_are_only_asked_for_within_their_own_thread(staff_client):
    thread, _messages = long_thread(3)
    other, others = long_thread(3, customer=create_customer(name="Anna Nowak", email="anna@example.com"))
    assert staff_client.get(f"/threads/{thread.id}/earlier?before={others[-1].id}").status_code == 404
    assert staff_client.get(f"/threads/{thread.id}/earlier?before=999999").status_code == 404
    assert staff_client.get(f"/threads/{thread.id}/earlier").status_code == 404


def test_earlier_messages_need_a_signed_in_member_of_staff(client):
    thread, messages = long_thread(3)
    response = client.get(f"/threads/{thread.id}/earlier?before={messages[-1].id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def statements_for(client, url: str) -> int:
    """The SQL statements of one request to `url` (after a first one: a session's first request does more)."""
    client.get(url)
    seen = []
    listener = lambda *args: seen.append(1)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return len(seen)


def test_the_page_asks_the_database_the_same_few_questions_however_long_the_thread(staff_client):
    short, _ = long_thread(4)
    long, _ = long_thread(40, customer=create_customer(name="Anna Nowak", email="anna@example.com"))
    assert statements_for(staff_client, f"/threads/{long.id}?all=1") == statements_for(
        staff_client, f"/threads/{short.id}?all=1")


@pytest.mark.browser
def test_in_a_browser_earlier_messages_load_on_click_and_a_deep_link_finds_an_old_message(
        app, staff_page, live_server):
    page = staff_page
    thread, messages = long_thread(PAGE_MESSAGES + 5)
    page.goto(f"{live_server.url}/threads/{thread.id}")
    expect(page.locator(f"#message-{messages[-1].id}")).to_be_visible()
    expect(page.locator(f"#message-{messages[0].id}")).to_have_count(0)
    page.get_by_role("link", name="Show earlier messages").click()
    expect(page.locator(f"#message-{messages[0].id}")).to_be_visible()
    expect(page.locator("[data-earlier]")).to_have_count(0)
    assert page.locator(".timeline > li.entry").count() == PAGE_MESSAGES + 5

    page.goto(f"{live_server.url}/")  # then open the link afresh, as from an e-mail or another page
    page.goto(f"{live_server.url}/threads/{thread.id}#message-{messages[1].id}")
    expect(page.locator(f"#message-{messages[1].id}")).to_be_visible()
    assert page.url.endswith(f"/threads/{thread.id}?all=1#message-{messages[1].id}")
