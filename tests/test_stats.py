"""The owner's statistics: threads opened and closed per day, median response and closing times per member of
staff and per channel, and the backlog by status."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from app.extensions import db
from app.messaging.stats import DAYS, shop_stats
from app.models import Customer, Shop, Thread, utcnow
from helpers import make_user


@pytest.fixture
def anna(app):
    customer = Customer(name="Anna Nowak", email="anna@example.com")
    db.session.add(customer)
    db.session.commit()
    return customer


def thread(customer, created_at, responded_after=None, closed_after=None, **fields) -> Thread:
    row = Thread(
        customer_id=customer.id, subject="S", created_at=created_at, last_activity_at=created_at,
        first_response_at=created_at + responded_after if responded_after else None,
        closed_at=created_at + closed_after if closed_after else None,
        status="closed" if closed_after else fields.pop("status", "open"), **fields,
    )
    db.session.add(row)
    db.session.commit()
    return row


def test_opened_and_closed_are_counted_per_day_in_the_shops_time_zone(app, anna):
    Shop.current().timezone = "Europe/Warsaw"
    now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    thread(anna, now - timedelta(hours=1), closed_after=timedelta(minutes=30))
    thread(anna, now - timedelta(hours=2))
    # 23:30 UTC on the 21st is already the 22nd in Warsaw.
    thread(anna, datetime(2026, 11, 21, 23, 30, tzinfo=timezone.utc))
    thread(anna, now - timedelta(days=DAYS + 5))  # before the window: not counted
    thread(anna, now - timedelta(hours=3), deleted_at=now)  # deleted: not counted

    stats = shop_stats(now)

    assert len(stats.days) == DAYS and stats.days[-1].day.isoformat() == "2026-11-23"
    per_day = {d.day.isoformat(): (d.opened, d.closed) for d in stats.days if d.opened or d.closed}
    assert per_day == {"2026-11-22": (1, 0), "2026-11-23": (2, 1)}
    tallest = max(stats.chart.opened, key=lambda bar: bar.height)
    assert tallest.value == 2 and stats.chart.top_value == 2
    assert [bar.height for bar in stats.chart.opened].count(0) == DAYS - 2


def test_medians_per_member_of_staff_and_channel_and_the_backlog(owner_client, owner, anna):
    anna_staff = make_user("anka@shop.example", name="Anka")
    start = utcnow() - timedelta(days=2)
    thread(anna, start, responded_after=timedelta(hours=1), closed_after=timedelta(hours=10),
           assignee_id=anna_staff.id, source_channel="email")
    thread(anna, start, responded_after=timedelta(hours=3), assignee_id=anna_staff.id, source_channel="sms",
           status="waiting_customer")
    thread(anna, start, responded_after=timedelta(hours=5), closed_after=timedelta(hours=30),
           assignee_id=owner.id, source_channel="email")
    thread(anna, start, status="waiting_us", source_channel="sms")

    html = owner_client.get("/stats/").get_data(as_text=True)

    overall = re.search(r'id="stats-overall".*?</tfoot>', html, re.S).group()
    assert "3 hours" in overall and "20 hours" in overall  # medians of 1/3/5 h and of 10/30 h
    staff = re.search(r'id="stats-staff".*?</tbody>', html, re.S).group()
    assert re.search(r"Anka</td>\s*<td class=\"num\">2 hours</td><td class=\"num\">2</td>\s*"
                     r"<td class=\"num\">10 hours</td><td class=\"num\">1</td>", staff)
    assert "Olga Owner" in staff and "Unassigned" in staff
    channels = re.search(r'id="stats-channels".*?</table>', html, re.S).group()
    assert re.search(r"E-mail</td>\s*<td class=\"num\">3 hours</td><td class=\"num\">2</td>", channels)
    backlog = re.search(r'id="stats-backlog".*?</table>', html, re.S).group()
    assert re.findall(r'<td class="num">(\d+)</td>', backlog) == ["0", "1", "1", "2"]  # open, us, customer, closed
    assert "<svg" in html and html.count('class="bar-opened"') == DAYS


def test_statistics_are_for_owners_only(staff_client, client):
    assert staff_client.get("/stats/").status_code == 403
    assert "/stats/" not in staff_client.get("/").get_data(as_text=True)


def test_statistics_need_a_signed_in_owner(client):
    assert client.get("/stats/").status_code == 302
