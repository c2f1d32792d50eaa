"""Full-text search of the inbox: Polish words without diacritics, phones, e-mails, repair numbers, and
hostile search text that must never break the page (on SQLite and on PostgreSQL)."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.extensions import db
from app.models import Customer, Message, Thread
from app.repairs import create_repair
from app.search import fold, parse_query, search_thread_ids


@pytest.fixture
def lukasz(app):
    customer = Customer(name="Łukasz Wójcik", email="lukasz.wojcik@example.com", phone="+48601234567")
    db.session.add(customer)
    db.session.commit()
    return customer


@pytest.fixture
def ewa(app):
    customer = Customer(name="Ewa Lis", email="ewa@example.com", phone="+48500111222")
    db.session.add(customer)
    db.session.commit()
    return customer


def thread_with(customer: Customer, subject: str, *bodies: str, **fields) -> Thread:
    thread = Thread(customer_id=customer.id, subject=subject, **fields)
    db.session.add(thread)
    db.session.flush()
    for body in bodies:
        db.session.add(Message(thread_id=thread.id, direction="in", channel="email", sender=customer.email or "",
                               body_text=body))
    db.session.commit()
    return thread


def found(text: str) -> set[int]:
    return set(db.session.scalars(select(Thread.id).where(Thread.id.in_(search_thread_ids(text)))))


def test_polish_words_are_found_without_their_diacritics(lukasz, ewa):
    screen = thread_with(lukasz, "Naprawa", "Wyświetlacz pękł po upadku.")
    city = thread_with(ewa, "Odbiór", "Odbiorę telefon w Łodzi, jestem z Łódź-Bałuty.")

    assert found("wyswietlacz") == {screen.id}
    assert found("WYŚWIETLACZ") == {screen.id}
    assert found("pekl") == {screen.id}
    assert found("lodz") == {city.id}
    assert found("Łódź") == {city.id}
    assert found("lukasz") == {screen.id}  # the customer's name, "Ł" folded too


def test_every_word_must_match_somewhere_in_the_thread_and_the_last_one_may_be_unfinished(lukasz, ewa):
    both = thread_with(lukasz, "Bateria", "Bateria puchnie, proszę o wycenę wymiany.")
    thread_with(ewa, "Bateria", "Nowa bateria działa.")

    assert found("wojcik bateria") == {both.id}  # a name and a word of a message
    assert found("wymia") == {both.id}
    assert found("bat") == {both.id, both.id + 1}


def test_a_phone_is_found_by_any_way_of_typing_its_digits(lukasz, ewa):
    thread = thread_with(lukasz, "Telefon", "Proszę o kontakt.")

    for typed in ("+48601234567", "601 234 567", "601-234-567", "(+48) 601 234", "234567"):
        assert found(typed) == {thread.id}, typed
    assert found("500 111") != {thread.id}


def test_the_customers_e_mail_and_the_repair_number_find_the_thread(lukasz, ewa):
    repair = create_repair(customer=lukasz, device="iPhone 12", number="R-2026-0042")
    db.session.commit()
    about_repair = thread_with(lukasz, "Naprawa", "Kiedy odbiór?", repair_id=repair.id)
    thread_with(ewa, "Inne", "R-2026-0041 to nie ten numer")

    assert found("lukasz.wojcik@example.com") == {about_repair.id}
    assert found("R-2026-0042") == {about_repair.id}
    assert found("iphone") == {about_repair.id}


def test_the_index_follows_edits_moves_and_deletions(lukasz, ewa):
    thread = thread_with(lukasz, "Naprawa", "Ekran do wymiany")
    other = thread_with(ewa, "Inne")
    message = db.session.scalars(select(Message).where(Message.thread_id == thread.id)).one()

    lukasz.name = "Łucja Kowalczyk"
    db.session.commit()
    assert found("lucja kowalczyk") == {thread.id}

    message.thread_id = other.id
    db.session.commit()
    assert found("ekran") == {other.id}

    db.session.delete(message)
    db.session.commit()
    assert found("ekran") == set()


@pytest.mark.parametrize("hostile", [
    '"', '""', "'", "*", "-", "NEAR(a b)", "a OR b", "AND", "NOT", "col:value", "^start", "ekran*",
    "(ekran", "ekran)", "\\", "'; DROP TABLE threads; --", "a & b | !c", "<->", ":*", "%_", "\x00", "ek\x00ran", "😀",
    " ".join(["słowo"] * 200),
])
def test_hostile_search_text_never_raises(lukasz, hostile):
    thread_with(lukasz, "Ekran", "Ekran pękł")

    assert isinstance(found(hostile), set)


def test_a_query_with_nothing_searchable_matches_nothing(lukasz):
    thread_with(lukasz, "Ekran", "Ekran pękł")

    assert found('"*" -- !!') == set()


def test_the_query_parser_quotes_phrases_and_makes_only_the_last_word_a_prefix():
    assert fold("Żółć Łukasza") == "zolc lukasza"
    assert [(t.text, t.prefix) for t in parse_query('ekran "nowa bateria" wym')] == [
        ("ekran", False), ("nowa bateria", False), ("wym", True)]
    assert [(t.text, t.prefix) for t in parse_query("+48 601-234")] == [("48601234", True)]
    assert [(t.text, t.prefix) for t in parse_query("ekran w")] == [("ekran", False), ("w", False)]
    assert [(t.text, t.prefix) for t in parse_query("anna@example.c")] == [("anna@example.c", False)]
    assert [(t.text, t.prefix) for t in parse_query("anna@example")] == [("anna@example", True)]
    assert [(t.text, t.prefix) for t in parse_query("anna@example.com")] == [("anna@example.com", False)]


def test_two_messages_stored_at_once_in_one_thread_are_both_kept_and_both_found(lukasz):
    """Two web machines storing a message in the same thread at the same moment (two SMS at once): the second
    transaction waits for the first's refresh of the search document instead of failing with a duplicate key,
    and the document holds both messages. (SQLite writes one transaction at a time; PostgreSQL is the case.)"""
    thread = thread_with(lukasz, "Ekran")
    first, second = Session(db.engine), Session(db.engine)
    try:
        first.add(Message(thread_id=thread.id, direction="in", channel="sms", sender="+48601234567",
                          body_text="pierwszywyraz"))
        first.flush()  # holds the thread's search refresh until it commits
        failure = []

        def store_second():
            try:
                second.add(Message(thread_id=thread.id, direction="in", channel="sms", sender="+48601234567",
                                   body_text="drugiwyraz"))
                second.commit()
            except Exception as exc:  # the test's thread reports it below
                failure.append(exc)

        worker = threading.Thread(target=store_second)
        worker.start()
        if db.engine.dialect.name == "postgresql":
            # Until the first commits, the second waits on the thread's lock (it is not done, not failed).
            wait_for_lock_wait(second)
        first.commit()
        worker.join(timeout=30)
        assert not worker.is_alive() and failure == []
    finally:
        first.close()
        second.close()
    db.session.rollback()
    assert db.session.scalar(select(func.count(Message.id)).where(Message.thread_id == thread.id)) == 2
    assert found("pierwszywyraz") == found("drugiwyraz") == {thread.id}


def wait_for_lock_wait(session, timeout: float = 10) -> None:
    """Until some PostgreSQL backend waits on a lock (the second transaction reached the first's lock)."""
    deadline = time.monotonic() + timeout
    with db.engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )).scalar()
            if waiting:
                return
            connection.rollback()
            time.sleep(0.02)
    raise AssertionError("the second transaction never waited for the first")
