"""The staff inbox list: views, filters, sorting, paging, counts, due times, search, "Next unanswered" and the
unread counter."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import select

from app.extensions import db
from app.messaging import inbox
from app.messaging.due import due_time
from app.messaging.inbox import PER_PAGE
from app.models import Customer, Message, Shop, Thread, utcnow
from app.repairs import create_repair
from app.search import search_thread_ids
from helpers import make_user


@pytest.fixture
def anna(app):
    customer = Customer(name="Anna Nowak", email="anna@example.com", phone="+48601234567")
    db.session.add(customer)
    db.session.commit()
    return customer


def make_thread(customer: Customer, subject: str, minutes_ago: int = 0, **fields) -> Thread:
    thread = Thread(customer_id=customer.id, subject=subject,
                    last_activity_at=utcnow() - timedelta(minutes=minutes_ago), **fields)
    db.session.add(thread)
    db.session.commit()
    return thread


def listed(client, query: str = "") -> list[int]:
    """Thread ids in the order the inbox page shows them."""
    response = client.get(f"/{query}")
    assert response.status_code == 200
    return [int(n) for n in re.findall(r'<tr id="thread-(\d+)"', response.get_data(as_text=True))]


def row(html: str, thread_id: int) -> str:
    return re.search(rf'<tr id="thread-{thread_id}".*?</tr>', html, re.S).group(0)


def count(html: str, name: str) -> int:
    match = re.search(rf'id="count-{name}">([\d\s\u00a0,]+)<', html)
    assert match, f"no count {name}"
    return int(re.sub(r"\D", "", match.group(1)))


def test_views_split_the_day_mine_unassigned_open_waiting_and_closed(staff_client, staff, anna):
    colleague = make_user("ola@shop.example")
    mine = make_thread(anna, "Mine", assignee_id=staff.id, minutes_ago=1)
    theirs = make_thread(anna, "Theirs", assignee_id=colleague.id, minutes_ago=2)
    nobodys = make_thread(anna, "Nobody's", minutes_ago=3)
    waiting = make_thread(anna, "Waiting", status="waiting_customer", minutes_ago=4)
    closed = make_thread(anna, "Closed", status="closed", assignee_id=staff.id, minutes_ago=5)
    make_thread(anna, "Deleted", deleted_at=utcnow())
    make_thread(anna, "Merged", merged_into_id=mine.id)

    assert listed(staff_client) == [mine.id, theirs.id, nobodys.id, waiting.id]  # All open is the default
    assert listed(staff_client, "?view=mine") == [mine.id]
    assert listed(staff_client, "?view=unassigned") == [nobodys.id, waiting.id]
    assert listed(staff_client, "?view=waiting_customer") == [waiting.id]
    assert listed(staff_client, "?view=closed") == [closed.id]
    assert listed(staff_client, "?view=bogus") == listed(staff_client)


def test_counts_per_view_status_and_queue_come_at_the_top(staff_client, staff, anna, queues):
    front, workshop = queues
    make_thread(anna, "A", assignee_id=staff.id, queue_id=front.id)
    make_thread(anna, "B", status="waiting_us", queue_id=front.id)
    make_thread(anna, "C", status="waiting_us", queue_id=workshop.id)
    make_thread(anna, "D", status="closed", queue_id=workshop.id)

    html = staff_client.get("/").get_data(as_text=True)

    assert [count(html, v) for v in ("mine", "unassigned", "open", "waiting_customer")] == [1, 2, 3, 0]
    assert [count(html, f"status-{s}") for s in ("open", "waiting_us", "waiting_customer")] == [1, 2, 0]
    assert 'id="count-closed"' not in html  # closed threads are not counted: years of them would slow every page
    assert (count(html, f"queue-{front.id}"), count(html, f"queue-{workshop.id}")) == (2, 1)  # open threads only
    assert "badge-amber" in html and "Waiting for us" in html  # the legend names each status colour


def test_counts_follow_changes_made_here_at_once_and_elsewhere_within_seconds(staff_client, anna, monkeypatch):
    thread = make_thread(anna, "Ekran")
    assert count(staff_client.get("/").get_data(as_text=True), "open") == 1

    thread.status = "closed"  # a change this process commits: the next page counts again
    db.session.commit()
    assert count(staff_client.get("/").get_data(as_text=True), "open") == 0

    db.session.execute(Thread.__table__.insert().values(  # as another worker or the mail poller would write it
        token="elsewhere", customer_id=anna.id, subject="Bateria", status="open", priority="normal", category="",
        source_channel="email", private=False, unread=False, last_message_preview="", last_activity_at=utcnow(),
        created_at=utcnow()))
    db.session.commit()
    assert count(staff_client.get("/").get_data(as_text=True), "open") == 0  # this process's tally, for now
    monkeypatch.setattr(inbox, "COUNTS_SECONDS", 0)  # ...until it is older than COUNTS_SECONDS
    assert count(staff_client.get("/").get_data(as_text=True), "open") == 1


def test_filters_by_column_combine(staff_client, staff, anna, queues):
    front, _workshop = queues
    repair = create_repair(customer=anna, device="iPhone 12")
    db.session.commit()
    sms = make_thread(anna, "SMS", source_channel="sms", queue_id=front.id, minutes_ago=1)
    about_repair = make_thread(anna, "Repair", repair_id=repair.id, assignee_id=staff.id, minutes_ago=2)
    private = make_thread(anna, "Private", private=True, status="waiting_us", minutes_ago=3)

    assert listed(staff_client, "?channel=sms") == [sms.id]
    assert listed(staff_client, f"?queue={front.id}") == [sms.id]
    assert listed(staff_client, f"?assignee={staff.id}") == [about_repair.id]
    assert listed(staff_client, "?assignee=none") == [sms.id, private.id]
    assert listed(staff_client, "?context=repair") == [about_repair.id]
    assert listed(staff_client, "?context=none") == [sms.id, private.id]
    assert listed(staff_client, "?private=yes") == [private.id]
    assert listed(staff_client, "?private=no&assignee=none") == [sms.id]
    assert listed(staff_client, "?status=waiting_us") == [private.id]
    assert listed(staff_client, "?channel=fax&queue=x&assignee=-1") == [sms.id, about_repair.id, private.id]


def test_sorting_by_a_column_both_ways_with_the_number_breaking_ties(staff_client, anna):
    zofia = Customer(name="Zofia Zielińska")
    db.session.add(zofia)
    db.session.commit()
    first = make_thread(anna, "Same minute", minutes_ago=5)
    second = make_thread(anna, "Same minute", minutes_ago=5)
    zofias = make_thread(zofia, "Later", minutes_ago=1)
    for thread in (first, second):
        thread.last_activity_at = zofias.last_activity_at - timedelta(minutes=5)
    db.session.commit()

    assert listed(staff_client) == [zofias.id, second.id, first.id]
    assert listed(staff_client, "?sort=activity&dir=asc") == [first.id, second.id, zofias.id]
    assert listed(staff_client, "?sort=customer") == [first.id, second.id, zofias.id]
    assert listed(staff_client, "?sort=customer&dir=desc") == [zofias.id, second.id, first.id]
    assert listed(staff_client, "?sort=number&dir=desc") == [zofias.id, second.id, first.id]


def test_a_bogus_sort_is_ignored(staff_client, anna):
    old = make_thread(anna, "Old", minutes_ago=10)
    new = make_thread(anna, "New", minutes_ago=1)

    for bogus in ("?sort=password_hash", "?sort=id;DROP%20TABLE%20threads", "?sort=customer&dir=sideways"):
        response = staff_client.get("/" + bogus)
        assert response.status_code == 200
    assert listed(staff_client, "?sort=password_hash") == [new.id, old.id]
    assert listed(staff_client, "?sort=customer&dir=sideways")  # the column's own direction, not an error


def test_pages_of_fifty_without_overlap(staff_client, anna):
    threads = [make_thread(anna, f"T{n}", minutes_ago=n) for n in range(PER_PAGE + 3)]

    first, second = listed(staff_client), listed(staff_client, "?page=2")

    assert first == [t.id for t in threads[:PER_PAGE]]
    assert second == [t.id for t in threads[PER_PAGE:]]
    html = staff_client.get("/?page=2").get_data(as_text=True)
    assert "page=3" not in html and "Previous" in html
    assert listed(staff_client, "?page=9999") == []
    assert listed(staff_client, "?page=999999999999") == first  # unreadable: the first page


def test_unread_threads_are_bold_and_the_counter_refreshes_itself(staff_client, anna):
    unread = make_thread(anna, "New question", unread=True)
    make_thread(anna, "Read", minutes_ago=1)

    html = staff_client.get("/").get_data(as_text=True)
    assert re.search(rf'<tr id="thread-{unread.id}" class="is-unread', html)
    # Not told by boldness alone: a screen reader hears it, and only on the unread row.
    assert "Unread</span>" in row(html, unread.id) and html.count("Unread</span>") == 1

    fragment = staff_client.get("/inbox/unread").get_data(as_text=True)
    assert 'data-unread="1"' in fragment and 'hx-trigger="every 20s"' in fragment
    assert "<html" not in fragment
    make_thread(anna, "Another", unread=True)
    assert 'data-unread="2"' in staff_client.get("/inbox/unread").get_data(as_text=True)


def test_the_unread_counter_answers_nothing_once_signed_out(client):
    response = client.get("/inbox/unread")

    assert response.status_code == 204 and response.data == b""


def test_a_thread_waiting_for_us_is_due_by_its_prioritys_response_time(app, anna):
    Shop.current().response_times = {"urgent": 1, "high": 4, "normal": 8, "low": 24}
    asked = utcnow() - timedelta(hours=2)
    urgent = make_thread(anna, "Urgent", status="waiting_us", priority="urgent", last_inbound_at=asked)
    normal = make_thread(anna, "Normal", status="waiting_us", last_inbound_at=asked)
    answered = make_thread(anna, "Answered", status="waiting_customer", last_inbound_at=asked)

    assert urgent.due_at == asked + timedelta(hours=1)
    assert normal.due_at == asked + timedelta(hours=8)
    assert answered.due_at is None

    normal.priority = "low"
    db.session.commit()
    assert normal.due_at == asked + timedelta(hours=24)
    urgent.status = "closed"
    db.session.commit()
    assert urgent.due_at is None


def test_a_broken_response_time_setting_still_gives_a_due_time(app, anna):
    thread = Thread(status="waiting_us", priority="urgent", last_inbound_at=utcnow())

    assert due_time(thread, {"urgent": "soon"}) == thread.last_inbound_at + timedelta(hours=8)


def test_overdue_threads_are_highlighted_filtered_and_sorted(staff_client, anna):
    late = make_thread(anna, "Late", status="waiting_us", priority="urgent", minutes_ago=1,
                       last_inbound_at=utcnow() - timedelta(hours=3))
    soon = make_thread(anna, "Soon", status="waiting_us", priority="normal", minutes_ago=2,
                       last_inbound_at=utcnow() - timedelta(hours=1))
    other = make_thread(anna, "No rush", minutes_ago=3)

    html = staff_client.get("/").get_data(as_text=True)

    assert re.search(rf'<tr id="thread-{late.id}" class="[^"]*is-overdue', html)
    assert not re.search(rf'<tr id="thread-{soon.id}" class="[^"]*is-overdue', html)
    # Said in words and a sign, not by the red colour alone.
    assert "Overdue:</span>" in row(html, late.id) and "⚠" in row(html, late.id)
    assert "Overdue" not in row(html, soon.id)
    assert count(html, "overdue") == 1
    assert listed(staff_client, "?overdue=1") == [late.id]
    assert listed(staff_client, "?sort=due") == [late.id, soon.id, other.id]


def test_next_unanswered_opens_the_thread_that_waited_longest(staff_client, anna):
    make_thread(anna, "Recent", status="waiting_us", last_inbound_at=utcnow() - timedelta(minutes=5))
    oldest = make_thread(anna, "Oldest", status="waiting_us", last_inbound_at=utcnow() - timedelta(hours=5))
    make_thread(anna, "Closed", status="closed", last_inbound_at=utcnow() - timedelta(days=5))

    response = staff_client.get("/inbox/next")

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/threads/{oldest.id}")


def test_next_unanswered_skips_a_thread_without_a_customer_that_nobody_can_reply_to(staff_client, anna):
    supplier = make_thread(anna, "Order confirmation", status="waiting_us",
                           last_inbound_at=utcnow() - timedelta(hours=9))
    supplier.customer_id = None  # a trusted supplier's mail: no customer, no Reply
    customers = make_thread(anna, "Screen", status="waiting_us", last_inbound_at=utcnow() - timedelta(hours=1))
    db.session.commit()

    response = staff_client.get("/inbox/next")

    assert response.headers["Location"].endswith(f"/threads/{customers.id}")


def test_next_unanswered_says_so_when_nobody_waits(staff_client, anna):
    make_thread(anna, "Done", status="closed")

    response = staff_client.get("/inbox/next", follow_redirects=True)

    assert "No customer is waiting for an answer." in response.get_data(as_text=True)


def test_search_box_finds_polish_words_without_diacritics_and_keeps_the_filters(staff_client, anna):
    screen = make_thread(anna, "Naprawa")
    db.session.add(Message(thread_id=screen.id, direction="in", body_text="Wyświetlacz nie działa"))
    closed = make_thread(anna, "Stara naprawa", status="closed")
    db.session.add(Message(thread_id=closed.id, direction="in", body_text="Wyświetlacz wymieniony"))
    make_thread(anna, "Bateria")
    db.session.commit()

    assert listed(staff_client, "?q=wyswietlacz") == [screen.id]
    assert listed(staff_client, "?q=wyswietlacz&view=closed") == [closed.id]
    assert "Nothing matches" in staff_client.get("/?q=klawiatura").get_data(as_text=True)
    for hostile in ('"', "NEAR(", "a*b*", "'); --", "\\", "%"):
        assert staff_client.get("/", query_string={"q": hostile}).status_code == 200


def test_a_search_lists_the_newest_threads_first_and_a_heading_sorts_it_otherwise(staff_client, anna):
    older = make_thread(anna, "Bateria do wymiany", minutes_ago=1)
    newer = make_thread(anna, "Bateria puchnie", minutes_ago=30)
    make_thread(anna, "Ekran")

    assert listed(staff_client, "?q=bateria") == [newer.id, older.id]  # by number, not by activity
    assert listed(staff_client, "?q=bateria&sort=activity") == [older.id, newer.id]
    assert listed(staff_client, "?q=bateria&sort=number&dir=asc") == [older.id, newer.id]
    html = staff_client.get("/?q=bateria").get_data(as_text=True)
    assert 'name="sort"' not in html  # the box keeps no order of its own: a new search is newest first again


def test_pages_of_search_results_follow_each_other(staff_client, anna):
    threads = [make_thread(anna, f"Wyświetlacz {n}") for n in range(PER_PAGE + 3)]
    make_thread(anna, "Bateria")

    first, second = listed(staff_client, "?q=wyswietlacz"), listed(staff_client, "?q=wyswietlacz&page=2")

    newest_first = [t.id for t in reversed(threads)]
    assert first + second == newest_first
    assert len(first) == PER_PAGE


def test_the_search_box_answers_htmx_with_the_results_only(staff_client, anna):
    thread = make_thread(anna, "Wyświetlacz")

    response = staff_client.get("/?q=wyswietl", headers={"HX-Request": "true", "HX-Target": "inbox-results"})

    html = response.get_data(as_text=True)
    assert f'id="thread-{thread.id}"' in html
    assert "<html" not in html and 'class="tabs"' not in html


def test_the_search_form_works_without_javascript_and_is_bookmarkable(staff_client):
    html = staff_client.get("/?q=ekran&status=open").get_data(as_text=True)

    assert re.search(r'<form class="toolbar inbox-filters" method="get" action="/"', html)
    assert 'name="q" value="ekran"' in html
    assert 'hx-push-url="true"' in html
    assert re.search(r'<option value="open" selected>', html)


def test_the_inbox_needs_a_signed_in_member_of_staff(client):
    assert client.get("/").status_code == 302
    assert client.get("/inbox/next").status_code == 302


def test_the_upgrade_indexes_existing_threads_and_gives_those_waiting_their_due_time(app, anna):
    customer_id = anna.id
    db.session.remove()
    downgrade(revision="0003")  # the schema before the search index
    asked = utcnow() - timedelta(hours=1)
    db.session.execute(Thread.__table__.insert().values(  # as rows were before: no due time, no search index
        token="t1", customer_id=customer_id, subject="Wyświetlacz", status="waiting_us", priority="high",
        category="", source_channel="email", private=False, unread=True, last_message_preview="",
        last_activity_at=asked, last_inbound_at=asked, created_at=asked))
    db.session.commit()
    db.session.remove()

    upgrade()

    thread = db.session.scalars(select(Thread)).one()
    assert thread.due_at == asked + timedelta(hours=4)
    assert db.session.scalars(search_thread_ids("wyswietlacz")).all() == [thread.id]
