"""The Outbox page over HTTP: who may see it, its rows and filters, the row actions, and its self-refreshing rows."""
from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from helpers import csrf_token, sign_in
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Delivery, Shop, utcnow
from test_outbox_dispatch import make_customer, make_delivery, make_message, make_repair, reload

HTMX = {"HX-Request": "true"}
ROWS = {"HX-Request": "true", "HX-Target": "outbox-rows"}


@pytest.fixture
def outbox(app):
    """A repair's e-mail that went out, a failed SMS, a queued e-mail and one left uncertain by a crash."""
    anna = make_customer()
    repair = make_repair(anna)
    message = make_message(anna, subject="Your iPhone is ready", body="Odbiór dziś do 18:00.", repair=repair,
                           attachments=["invoice.pdf"])
    return {
        "sent": make_delivery(message, status="sent", sent_at=utcnow(), cc=["office@shop.example"]),
        "failed": make_delivery(message, channel="sms", status="failed", attempts=1,
                                error="This number does not exist."),
        "queued": make_delivery(make_message(make_customer(name="Bartek", email="bartek@example.com",
                                                           phone="+48511222333")),
                                recipient="bartek@example.com"),
        "uncertain": make_delivery(message, status="sending", uncertain=True, attempts=1, claimed_at=utcnow()),
    }


def row_of(html: str, delivery: Delivery) -> str:
    match = re.search(rf'<tr id="delivery-{delivery.id}">.*?</tr>', html, re.S)
    assert match, f"no row for delivery {delivery.id}"
    return match.group()


def listed(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'<tr id="delivery-(\d+)">', html)}


# ---------------------------------------------------------------- access


def test_staff_without_the_grant_get_403_and_with_it_see_the_outbox(client, staff, outbox):
    sign_in(client, staff)
    assert client.get("/outbox/").status_code == 403
    assert client.post(f"/outbox/{outbox['queued'].id}/cancel", headers={
        "X-CSRFToken": csrf_token(client, "/customers/")}).status_code == 403
    assert reload(outbox["queued"]).status == "queued"

    staff.can_see_outbox = True
    db.session.commit()
    response = client.get("/outbox/")
    assert response.status_code == 200 and len(listed(response.get_data(as_text=True))) == 4


def test_the_outbox_asks_anonymous_visitors_to_sign_in(client):
    response = client.get("/outbox/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# ---------------------------------------------------------------- rows and filters


def test_the_owner_sees_each_deliverys_channel_recipient_content_repair_and_coloured_status(owner_client, outbox):
    html = owner_client.get("/outbox/").get_data(as_text=True)

    sent = row_of(html, outbox["sent"])
    assert "badge-green" in sent and "Sent" in sent
    assert "anna@example.com" in sent and "office@shop.example" in sent
    assert "Your iPhone is ready" in sent and "invoice.pdf" in sent
    assert 'href="/repairs/' in sent and "R-2026-0042" in sent
    failed = row_of(html, outbox["failed"])
    assert "badge-red" in failed and "This number does not exist." in failed
    assert "+48 600 100 200" in failed and "Odbiór dziś do 18:00." in failed  # an SMS shows its text
    assert "Resend now" in failed and "Delete from outbox" in failed and "Cancel" not in failed
    queued = row_of(html, outbox["queued"])
    assert "badge-grey" in queued and "Cancel" in queued and "Delete from outbox" not in queued
    uncertain = row_of(html, outbox["uncertain"])
    assert "badge-amber" in uncertain and "Uncertain" in uncertain and "Mark as sent" in uncertain


def test_filters_narrow_the_list_by_channel_status_and_recipient(owner_client, outbox):
    def ids(query: str) -> set[int]:
        return listed(owner_client.get(f"/outbox/?{query}").get_data(as_text=True))

    assert ids("channel=sms") == {outbox["failed"].id}
    assert ids("status=failed") == {outbox["failed"].id}
    assert ids("status=uncertain") == {outbox["uncertain"].id}
    assert ids("status=sending") == set()  # the uncertain one is not "sending"
    assert ids("recipient=BARTEK@") == {outbox["queued"].id}
    assert ids("recipient=600+100") == {outbox["failed"].id}  # phone digits, as people type them
    assert ids("channel=email&status=sent") == {outbox["sent"].id}
    assert ids("channel=fax&status=nonsense") == {d.id for d in outbox.values()}  # nonsense is ignored


def test_the_time_range_filter_uses_the_day_the_delivery_was_requested(owner_client, outbox):
    old = outbox["failed"]
    old.created_at = utcnow() - timedelta(days=10)
    db.session.commit()
    today = utcnow().astimezone(ZoneInfo(Shop.current().timezone)).date()  # the shop's day, not UTC's
    ten_days_ago = (today - timedelta(days=10)).isoformat()

    html = owner_client.get(f"/outbox/?from={ten_days_ago}&to={ten_days_ago}").get_data(as_text=True)
    assert listed(html) == {old.id}
    html = owner_client.get(f"/outbox/?from={(today - timedelta(days=1)).isoformat()}").get_data(as_text=True)
    assert old.id not in listed(html) and len(listed(html)) == 3


def test_an_htmx_filter_change_gets_the_results_alone_and_pages_have_50_rows(owner_client, app):
    message = make_message()
    for n in range(55):
        make_delivery(message, status="sent", recipient=f"c{n}@example.com")

    response = owner_client.get("/outbox/?status=sent", headers=HTMX)
    html = response.get_data(as_text=True)
    assert "<html" not in html and len(listed(html)) == 50 and "Page 1 of 2" in html
    assert "HX-Request" in response.headers["Vary"]
    html = owner_client.get("/outbox/?status=sent&page=2").get_data(as_text=True)
    assert len(listed(html)) == 5 and "<html" in html


# ---------------------------------------------------------------- row actions


def test_resend_now_from_the_outbox_queues_the_delivery_and_swaps_its_row(owner_client, owner, outbox):
    token = csrf_token(owner_client, "/outbox/")
    failed = outbox["failed"]

    response = owner_client.post(f"/outbox/{failed.id}/resend", headers={**HTMX, "X-CSRFToken": token})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.strip().startswith(f'<tr id="delivery-{failed.id}">') and "Queued" in html
    assert response.headers["HX-Trigger-After-Swap"] == "outbox-changed"  # the rows start polling again
    row = reload(failed)
    assert row.status == "queued" and row.next_attempt_at <= utcnow()
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "outbox.resend")).one()
    assert (audit.user_id, audit.target_id) == (owner.id, failed.id)


def test_cancel_from_a_plain_form_redirects_back_to_the_filtered_list(owner_client, outbox):
    token = csrf_token(owner_client, "/outbox/")
    queued = outbox["queued"]

    response = owner_client.post(f"/outbox/{queued.id}/cancel",
                                 data={"csrf_token": token, "next": "/outbox/?channel=email"})
    assert response.status_code == 302 and response.headers["Location"] == "/outbox/?channel=email"
    assert reload(queued).status == "cancelled"
    assert "The delivery was cancelled." in owner_client.get("/outbox/").get_data(as_text=True)


def test_a_refused_action_shows_why_in_the_row(owner_client, outbox):
    token = csrf_token(owner_client, "/outbox/")
    sent = outbox["sent"]

    response = owner_client.post(f"/outbox/{sent.id}/cancel", headers={**HTMX, "X-CSRFToken": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Too late to cancel" in html and "badge-green" in html
    assert reload(sent).status == "sent"


def test_delete_from_outbox_hides_the_row_and_the_list_forgets_it(owner_client, outbox):
    token = csrf_token(owner_client, "/outbox/")
    sent = outbox["sent"]
    page = owner_client.get("/outbox/").get_data(as_text=True)
    assert 'hx-confirm="Remove this entry from the outbox?' in row_of(page, sent)

    response = owner_client.post(f"/outbox/{sent.id}/hide", headers={**HTMX, "X-CSRFToken": token})
    assert response.status_code == 200 and response.get_data(as_text=True) == ""
    assert reload(sent).outbox_hidden_at is not None
    assert sent.id not in listed(owner_client.get("/outbox/").get_data(as_text=True))


def test_row_actions_without_a_csrf_token_are_refused(owner_client, outbox):
    failed = outbox["failed"]
    assert owner_client.post(f"/outbox/{failed.id}/resend", headers=HTMX).status_code == 400
    assert owner_client.post(f"/outbox/{failed.id}/hide").status_code == 400
    assert reload(failed).status == "failed" and reload(failed).outbox_hidden_at is None


def test_an_unknown_delivery_is_404(owner_client, outbox):
    token = csrf_token(owner_client, "/outbox/")
    assert owner_client.post("/outbox/999999/resend", headers={**HTMX, "X-CSRFToken": token}).status_code == 404


# ---------------------------------------------------------------- polling


def test_the_rows_poll_while_something_waits_and_stop_when_nothing_does(owner_client, app):
    message = make_message()
    waiting = make_delivery(message, status="scheduled", due=utcnow() + timedelta(seconds=30))
    make_delivery(message, status="sent")

    page = owner_client.get("/outbox/").get_data(as_text=True)
    assert re.search(r'<tbody id="outbox-rows"[^>]*hx-trigger="every 5s, outbox-changed from:body"', page)
    response = owner_client.get("/outbox/", headers=ROWS)
    rows = response.get_data(as_text=True)
    assert rows.lstrip().startswith("<tbody") and "every 5s" in rows and len(listed(rows)) == 2

    waiting.status = "sent"
    db.session.commit()
    rows = owner_client.get("/outbox/", headers=ROWS).get_data(as_text=True)
    assert rows.lstrip().startswith("<tbody") and "every 5s" not in rows
    assert 'hx-trigger="outbox-changed from:body"' in rows  # a resend can still wake it up


def test_an_uncertain_delivery_does_not_keep_the_rows_polling(owner_client, outbox):
    # Only what the page shows counts: the queued delivery exists, but this filter hides it.
    rows = owner_client.get("/outbox/?status=uncertain", headers=ROWS).get_data(as_text=True)
    assert len(listed(rows)) == 1 and "every 5s" not in rows


def test_a_scheduled_entry_offers_send_now_and_a_failed_one_resend_now(owner_client, outbox):
    later = make_delivery(make_message(make_customer(name="Celina", email="celina@example.com")),
                          recipient="celina@example.com", status="scheduled", due=utcnow() + timedelta(hours=5))
    html = owner_client.get("/outbox/").get_data(as_text=True)
    assert ">Send now<" in row_of(html, later) and "Resend now" not in row_of(html, later)
    assert ">Send now<" in row_of(html, outbox["queued"])  # waiting its first turn
    assert ">Resend now<" in row_of(html, outbox["failed"])


def test_an_sms_sent_without_polish_letters_is_shown_as_it_went(owner_client):
    message = make_message(make_customer(name="Żaneta", email="z@example.com", phone="+48511222444"),
                           body="Zażółć gęślą jaźń: telefon gotowy.")
    message.meta = {**(message.meta or {}), "sms_plain": True}
    plain = make_delivery(message, channel="sms", status="sent", sent_at=utcnow(), recipient="+48511222444")
    polish = make_delivery(make_message(make_customer(name="Ola", email="o@example.com", phone="+48511222555"),
                                        body="Źdźbło gotowe."), channel="sms", recipient="+48511222555")
    html = owner_client.get("/outbox/").get_data(as_text=True)
    assert "Zazolc gesla jazn: telefon gotowy." in row_of(html, plain) and "Zażółć" not in row_of(html, plain)
    assert "Źdźbło gotowe." in row_of(html, polish)
