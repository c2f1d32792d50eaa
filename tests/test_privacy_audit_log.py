"""The audit log page: owners see who did what and when, filtered by person, action, time and target."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import update

from app.customers import create_customer
from app.extensions import db
from app.models import AuditEvent
from app.models.audit import record
from app.staff import PER_PAGE

pytestmark = pytest.mark.usefixtures("app")


def entries(html: str) -> int:
    return html.count("<tr>") - 1  # the header row


def results(client, query: str) -> str:
    """The list of entries alone, as a filter change asks for it."""
    return client.get(f"/audit/?{query}", headers={"HX-Request": "true"}).get_data(as_text=True)


def test_an_owner_sees_sign_ins_and_changes_with_who_and_the_target(owner_client, owner, staff):
    customer = create_customer(name="Jan Kowalski", actor=staff)
    db.session.commit()
    page = owner_client.get("/audit/").get_data(as_text=True)
    assert "auth.login" in page and "Olga Owner" in page
    assert "customer.create" in page and "Stefan Staff" in page
    assert f'href="/customers/{customer.id}"' in page
    assert "/audit/" in owner_client.get("/settings/").get_data(as_text=True)


def test_filters_by_user_action_area_target_and_day_and_the_url_is_the_bookmark(owner_client, owner, staff):
    jan = create_customer(name="Jan Kowalski", actor=staff)
    anna = create_customer(name="Anna Nowak", actor=owner)
    record("customer.export", by=owner, target=anna)
    old = record("customer.erase", by=owner, target=jan)
    db.session.commit()
    db.session.execute(update(AuditEvent).where(AuditEvent.id == old.id)
                       .values(created_at=datetime(2026, 1, 15, 12, tzinfo=timezone.utc)))
    db.session.commit()

    by_staff = results(owner_client, f"user={staff.id}")
    assert "customer.create" in by_staff and "auth.login" not in by_staff and entries(by_staff) == 1
    area = results(owner_client, "action=customer")
    assert entries(area) == 4 and "auth.login" not in area
    exact = results(owner_client, "action=customer.export")
    assert entries(exact) == 1
    target = results(owner_client, f"target_type=customers&target_id={jan.id}")
    assert entries(target) == 2 and "customer.export" not in target
    january = results(owner_client, "since=2026-01-15&until=2026-01-15")
    assert entries(january) == 1 and "customer.erase" in january
    machines = results(owner_client, "user=none")
    assert "customer.create" not in machines


def test_a_filter_change_from_htmx_gets_only_the_list(owner_client):
    response = owner_client.get("/audit/?action=auth", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert "<html" not in body and "auth.login" in body
    assert "HX-Request" in response.headers["Vary"]


def test_a_date_that_cannot_be_read_is_named_and_left_out(owner_client):
    page = owner_client.get("/audit/?since=yesterday&action=auth").get_data(as_text=True)
    assert "Not a date: yesterday" in page and "auth.login" in page


def test_pages_keep_the_filters(owner_client, owner):
    for number in range(PER_PAGE + 1):
        record("settings.shop", by=owner, changed=[f"field{number}"])
    db.session.commit()
    first = results(owner_client, "action=settings")
    assert entries(first) == PER_PAGE
    assert "/audit/?page=2&amp;action=settings" in first or "action=settings&amp;page=2" in first
    second = results(owner_client, "action=settings&page=2")
    assert entries(second) == 1


def test_staff_cannot_read_the_audit_log(staff_client, client):
    assert staff_client.get("/audit/").status_code == 403


def test_the_audit_log_needs_a_signed_in_owner(client):
    response = client.get("/audit/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def _recorded_action_codes() -> set[str]:
    """Every action code the app records: `record("area.verb", …)` calls, and the outbox's `_change(…, "outbox.…")`."""
    import re
    from pathlib import Path

    source = "\n".join(path.read_text(encoding="utf-8") for path in Path("app").rglob("*.py"))
    codes = set(re.findall(r"\brecord\(\s*f?\"([a-z_]+\.[a-z_]+)\"", source))
    codes |= set(re.findall(r"\b_change\([^)]*?\"(outbox\.[a-z_]+)\"", source, flags=re.S))
    return codes


def test_every_action_code_recorded_anywhere_has_a_label_and_its_area_too():
    from app.labels import AUDIT_ACTION_LABELS, AUDIT_AREA_LABELS

    codes = _recorded_action_codes()
    assert {"auth.login", "outbox.resend", "message.undo"} <= codes  # the search finds the calls
    assert codes - set(AUDIT_ACTION_LABELS) == set()
    assert {code.partition(".")[0] for code in codes} - set(AUDIT_AREA_LABELS) == set()


@pytest.mark.shop_locale("pl")
def test_the_filters_and_rows_show_actions_and_areas_in_words_and_an_unknown_code_as_it_is(owner_client, owner):
    record("customer.export", by=owner)
    record("future.thing", by=owner)
    db.session.commit()
    page = owner_client.get("/audit/").get_data(as_text=True)
    assert ">Zalogowano<" in page and ">Wyeksportowano dane klienta<" in page  # options and rows
    assert 'label="Logowanie"' in page and "Klienci: wszystko" in page
    assert ">auth.login<" not in page and 'label="auth"' not in page
    assert ">future.thing<" in page  # no label yet: the code itself
