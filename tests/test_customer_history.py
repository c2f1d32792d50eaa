"""A customer's whole history on their card: repairs and tickets with their status changes, threads with their last
message, consents, panel access and exports; newest first, filtered by kind, a page at a time; erased customers show
only what erasure kept."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from panel_helpers import panel_customer, sign_in_customer
from sqlalchemy import update

from app.customer_history import customer_history
from app.customers import update_customer
from app.extensions import db
from app.messaging.threads import open_thread
from app.models import ConsentEvent, Message, RepairEvent, RepairStatus, Ticket, utcnow
from app.privacy.erasure import erase_customer
from app.repairs import change_status, create_repair, create_ticket, update_ticket


def kinds_on(html: str) -> list[str]:
    return re.findall(r'data-history-kind="([a-z]+)"', html)


@pytest.fixture
def jan(app, staff):
    """Jan with one of everything, a minute apart, in this order: consents (on creation), repair, its status change,
    ticket, its status change, a thread with his e-mail, panel access changes, a sign-in, an export."""
    customer = panel_customer("Jan Kowalski", "jan@example.com")
    repair = create_repair(customer=customer, device="iPhone 12", actor=staff)
    change_status(repair, RepairStatus.ordered()[1], actor=staff)
    ticket = create_ticket(customer=customer, subject="Reklamacja etui", actor=staff)
    update_ticket(ticket, actor=staff, status="pending")
    thread = open_thread(customer, subject="Pęknięty wyświetlacz")
    db.session.add(Message(thread_id=thread.id, direction="in", channel="email", sender="jan@example.com",
                           body_text="Czy telefon jest gotowy?", author_customer_id=customer.id))
    thread.last_message_preview = "Czy telefon jest gotowy?"
    update_customer(customer, actor=staff, marketing_consent=True, consent_note="przez telefon")
    db.session.commit()
    return customer


def test_the_history_tab_shows_every_kind_newest_first(app, jan, owner_client):
    sign_in_customer(app.test_client(), jan)
    assert owner_client.get(f"/customers/{jan.id}/export").status_code == 200
    html = owner_client.get(f"/customers/{jan.id}?tab=history").get_data(as_text=True)
    kinds = kinds_on(html)
    assert set(kinds) == {"repairs", "tickets", "threads", "consents", "panel", "exports"}
    assert kinds[0] == "exports"  # the latest thing that happened
    assert "Czy telefon jest gotowy?" in html and "from the customer" in html and "E-mail" in html
    statuses = RepairStatus.ordered()
    assert f"{statuses[0].name} → {statuses[1].name}" in html
    assert "Open → Pending" in html and "Repair accepted" in html and "Signed in to the panel" in html
    entries = customer_history(jan).entries
    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)


def test_the_filter_links_work_without_javascript_and_as_fragments(jan, staff_client):
    page = staff_client.get(f"/customers/{jan.id}?tab=history&kind=tickets")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html
    assert kinds_on(html) == ["tickets", "tickets"]
    assert 'hx-get="/customers/%d?tab=history&amp;kind=threads"' % jan.id in html or "kind=threads" in html
    fragment = staff_client.get(f"/customers/{jan.id}?tab=history&kind=consents", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and 'id="customer-history"' in body
    assert set(kinds_on(body)) == {"consents"} and "HX-Request" in fragment.headers["Vary"]
    # an unknown kind or page shows everything, page one
    assert staff_client.get(f"/customers/{jan.id}?tab=history&kind=x&page=-3").status_code == 200


def test_the_history_is_paged_thirty_at_a_time_with_an_older_link(jan, staff_client):
    base = utcnow() - timedelta(days=10)
    db.session.add_all([ConsentEvent(customer_id=jan.id, kind="marketing", value=bool(i % 2), source="staff",
                                     created_at=base + timedelta(minutes=i)) for i in range(40)])
    db.session.commit()
    first = staff_client.get(f"/customers/{jan.id}?tab=history&kind=consents").get_data(as_text=True)
    assert len(kinds_on(first)) == 30 and 'data-action="older"' in first
    older = re.search(r'href="([^"]*page=2[^"]*)"', first).group(1).replace("&amp;", "&")
    second = staff_client.get(older).get_data(as_text=True)
    total = len(customer_history(jan, "consents", 1, per_page=100).entries)
    assert total == 40 + 3  # and those of the customer's creation and the fixture's change
    assert len(kinds_on(second)) == total - 30
    assert 'data-action="older"' not in second and 'rel="prev"' in second
    whole = customer_history(jan, "consents", 1, per_page=100).entries
    assert customer_history(jan, "consents", 2).entries == whole[30:]


def test_an_erased_customer_shows_only_dates_and_numbers(jan, owner, owner_client):
    erase_customer(jan, actor=owner, confirmation="Jan Kowalski")
    html = owner_client.get(f"/customers/{jan.id}?tab=history").get_data(as_text=True)
    history = html.split('id="customer-history"')[1]
    assert "repairs" in kinds_on(html) and "threads" in kinds_on(html)
    for personal in ("Czy telefon", "Pęknięty", "Reklamacja etui", "jan@example.com", "Jan Kowalski",
                     "przez telefon"):
        assert personal not in history
    # even a text that escaped erasure somewhere stays out
    db.session.execute(update(Ticket).where(Ticket.customer_id == jan.id).values(subject="Sekret"))
    db.session.execute(update(RepairEvent).values(text="Sekret"))
    db.session.commit()
    assert "Sekret" not in "".join(e.detail + e.label for e in customer_history(jan).entries
                                   if e.what != "status")


def test_a_long_history_is_one_query_that_the_database_cuts(app, jan):
    """However long the history, a page is one statement returning at most a page (plus one) of rows."""
    from sqlalchemy import event
    base = utcnow() - timedelta(days=30)
    db.session.add_all([ConsentEvent(customer_id=jan.id, kind="marketing", value=True, source="staff",
                                     created_at=base + timedelta(minutes=i)) for i in range(300)])
    db.session.commit()
    db.session.refresh(jan)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        page = customer_history(jan, page=3)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(statements) == 1 and "UNION ALL" in statements[0]
    assert len(page.entries) == 30 and page.has_older


def test_a_companys_history_lists_its_contact_people_coming_changing_and_going(staff, staff_client):
    from app.customers import add_contact_person, create_customer, remove_contact_person, update_contact_person
    company = create_customer(name="Serwis Biurowy sp. z o.o.", kind="company", nip="1234563218")
    ewa = add_contact_person(company, name="Ewa Zielińska", email="ewa@serwis-biurowy.pl", actor=staff)
    adam = add_contact_person(company, name="Adam Nowy", phone="602 000 111", actor=staff)
    update_contact_person(ewa, actor=staff, name="Ewa Zielińska", email="ewa.z@serwis-biurowy.pl", phone=None)
    remove_contact_person(adam, actor=staff)
    db.session.commit()

    html = staff_client.get(f"/customers/{company.id}?tab=history&kind=contacts").get_data(as_text=True)

    assert kinds_on(html) == ["contacts"] * 4
    assert 'data-kind="contacts"' in html
    entries = html.split('id="customer-history"')[1]
    assert entries.index("Contact person removed") < entries.index("Contact person changed: Ewa Zielińska") \
        < entries.index("Contact person added")
    assert "(E-mail)" in entries and "Adam Nowy" not in entries  # a removed person's name is not kept
    everything = staff_client.get(f"/customers/{company.id}?tab=history").get_data(as_text=True)
    assert "contacts" in kinds_on(everything)
