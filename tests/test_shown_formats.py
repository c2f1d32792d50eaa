"""Dates, moments and money are written one way everywhere people read them: 10.12.2026, 10.12.2026, 10:00 and
149,99 zł in Polish, on the repair card, in messages sent to customers and in what staff are told."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.customers import create_customer
from app.extensions import db
from app.models import Message
from app.repairs import create_repair
from helpers import csrf_token


# Not the shared `repair`: a price and a pickup date, whose shown forms are checked here.
@pytest.fixture
def repair(app):
    customer = create_customer(name="Jan Kowalski", email="jan@example.com")
    repair = create_repair(customer=customer, device="iPhone 12", description="Ekran",
                           price_estimate="149,99", pickup_date="2026-12-10")
    db.session.commit()
    return repair


@pytest.mark.shop_locale("pl")
def test_the_repair_card_shows_the_price_with_its_currency_and_the_date_in_the_one_form(staff_client, repair):
    html = staff_client.get(f"/repairs/{repair.id}").get_data(as_text=True)
    assert "149,99\xa0zł" in html
    assert "10.12.2026" in html and "2026-12-10" not in html.split("<main")[-1].split("<form")[0]


@pytest.mark.shop_locale("pl")
def test_a_message_scheduled_for_later_is_confirmed_with_the_date_in_the_one_form(
        staff_client, mailbox, repair):
    data = {"csrf_token": csrf_token(staff_client, f"/compose?customer_id={repair.customer_id}"),
            "customer_id": repair.customer_id, "channels": ["email"], "body": "Przypomnienie",
            "send_at": "2026-12-10T10:00"}
    page = staff_client.post("/compose", data=data, follow_redirects=True).get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Message.id))) == 1
    notice = page.split('class="flashes"')[1].split("</div>")[0]
    assert "10.12.2026, 10:00" in notice and "2026-12-10" not in notice


@pytest.mark.shop_locale("pl")
def test_a_forwarded_threads_dates_read_as_everywhere_else(repair):
    from app.i18n import shown_datetime
    from flask_babel import force_locale
    with force_locale("pl"):
        assert shown_datetime(datetime(2026, 12, 10, 9, 0, tzinfo=ZoneInfo("UTC"))) == "10.12.2026, 10:00"
