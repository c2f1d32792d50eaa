"""Staff acting on a thread: assigning, queues, status, priority, category, tags, following, notes, the CRM note,
deleting, recording a phone call; each change a translated event in the timeline, each POST guarded."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from panel_helpers import panel_customer, panel_path, publish, sign_in_customer
from sqlalchemy import func, select

from app.customers import create_customer
from app.errors import ValidationFailed
from app.extensions import db
from app.messaging.compose import compose, undo
from app.messaging.record import record_conversation
from app.messaging.thread_actions import (
    add_note, add_tag, assign, change_queue, remove_tag, set_category, set_priority, set_status,
)
from app.messaging.threads import open_thread
from app.models import AuditEvent, Delivery, Message, Tag, Thread, ThreadFollower, utcnow
from app.repairs import create_repair
from helpers import csrf_token, make_user, sign_in


@pytest.fixture
def thread(customer):
    thread = open_thread(customer, subject="Pęknięty wyświetlacz")
    db.session.add(Message(thread_id=thread.id, direction="in", channel="email", sender="jan@example.com",
                           body_text="Czy telefon jest gotowy?"))
    thread.status, thread.last_inbound_at = "waiting_us", utcnow()
    db.session.commit()
    return thread


def events(thread: Thread) -> list[dict]:
    return [m.meta for m in db.session.scalars(
        select(Message).where(Message.thread_id == thread.id, Message.kind == "event").order_by(Message.id))]


def post(client, thread: Thread, action: str, htmx: bool = False, **data):
    token = csrf_token(client, f"/threads/{thread.id}")
    headers = {"HX-Request": "true", "HX-Target": "thread-header"} if htmx else {}
    return client.post(f"/threads/{thread.id}/{action}", data={"csrf_token": token, **data}, headers=headers)


# ---------------------------------------------------------------- the rules, without HTTP


def test_changing_the_queue_clears_the_assignee_and_says_so(thread, staff, queues):
    front, workshop = queues
    thread.queue_id, thread.assignee_id = front.id, staff.id
    change_queue(thread, workshop, staff)
    db.session.commit()
    assert thread.queue_id == workshop.id and thread.assignee_id is None
    assert events(thread)[-1] == {"event": "queue", "previous": "Front desk", "to": "Workshop",
                                  "unassigned": "Stefan Staff"}
    assert change_queue(thread, workshop, staff) is None  # no change, no event
    assert len(events(thread)) == 1


def test_whoever_replies_to_an_unassigned_thread_takes_it(mailbox, thread, customer, staff):
    colleague = make_user("ola@shop.example", name="Ola")
    reply = compose(customer=customer, channels=["email"], body="Tak, jest gotowy.", thread=thread, author=staff)
    db.session.commit()
    assert thread.assignee_id == staff.id
    assert events(thread) == [{"event": "assigned", "to": "Stefan Staff", "to_id": staff.id, "previous": None,
                               "reply_id": reply.id}]
    compose(customer=customer, channels=["email"], body="Jeszcze jedno.", thread=thread, author=colleague)
    db.session.commit()
    assert thread.assignee_id == staff.id and len(events(thread)) == 1  # an assigned thread stays with its person


def test_a_reply_taken_back_gives_the_thread_back(mailbox, thread, customer, staff):
    reply = compose(customer=customer, channels=["email"], body="Tak, jest gotowy.", thread=thread, author=staff)
    db.session.commit()
    undo(reply, actor=staff)
    db.session.commit()
    assert thread.assignee_id is None and events(thread) == []


def test_a_thread_opened_by_writing_is_the_writers_without_an_event(mailbox, customer, staff):
    message = compose(customer=customer, channels=["email"], body="Dzień dobry", subject="Wycena", author=staff)
    db.session.commit()
    assert message.thread.assignee_id == staff.id and events(message.thread) == []


def test_closing_stamps_closed_at_reopening_clears_it_and_the_due_time_follows(thread, staff):
    assert thread.due_at is not None  # waiting for us
    set_status(thread, "closed", staff)
    db.session.commit()
    assert thread.closed_at is not None and thread.due_at is None
    set_status(thread, "waiting_us", staff)
    db.session.commit()
    assert thread.closed_at is None and thread.due_at == thread.last_inbound_at + timedelta(hours=8)
    assert [e["to"] for e in events(thread)] == ["closed", "waiting_us"]
    with pytest.raises(ValidationFailed):
        set_status(thread, "archived", staff)


def test_a_reply_to_a_closed_thread_reopens_it_and_clears_closed_at(mailbox, thread, customer, staff):
    set_status(thread, "closed", staff)
    db.session.commit()
    compose(customer=customer, channels=["email"], body="Jeszcze jedno", thread=thread, author=staff)
    db.session.commit()
    assert thread.status == "waiting_customer" and thread.closed_at is None


def test_a_new_priority_moves_the_due_time(thread, staff):
    assert thread.due_at == thread.last_inbound_at + timedelta(hours=8)
    set_priority(thread, "urgent", staff)
    db.session.commit()
    assert thread.due_at == thread.last_inbound_at + timedelta(hours=1)
    assert events(thread)[-1] == {"event": "priority", "previous": "normal", "to": "urgent"}
    with pytest.raises(ValidationFailed):
        set_priority(thread, "whenever", staff)


def test_tags_are_made_on_first_use_normalised_and_shared(thread, customer, staff):
    other = open_thread(customer, subject="Bateria")
    add_tag(thread, "  Warranty   CLAIM ", staff)
    add_tag(other, "warranty claim", staff)
    assert add_tag(thread, "WARRANTY claim", staff) is None  # already there
    db.session.commit()
    assert db.session.scalars(select(Tag.name)).all() == ["warranty claim"]
    assert [t.name for t in thread.tags] == [t.name for t in other.tags] == ["warranty claim"]
    with pytest.raises(ValidationFailed) as refused:
        add_tag(thread, "x" * 61, staff)
    assert "60" in refused.value.fields["tag"]
    with pytest.raises(ValidationFailed):
        add_tag(thread, "   ", staff)
    remove_tag(thread, thread.tags[0].id, staff)
    db.session.commit()
    assert thread.tags == [] and [t.name for t in other.tags] == ["warranty claim"]
    assert [e["event"] for e in events(thread)] == ["tag_added", "tag_removed"]


def test_a_category_is_one_line_of_free_text_up_to_80_characters(thread, staff):
    set_category(thread, " Wymiana   ekranu ", staff)
    assert thread.category == "Wymiana ekranu"
    with pytest.raises(ValidationFailed):
        set_category(thread, "Wymiana\nekranu", staff)
    with pytest.raises(ValidationFailed):
        set_category(thread, "x" * 81, staff)


def test_a_switched_off_account_cannot_be_given_a_thread_but_still_shows_as_its_assignee(staff_client, thread,
                                                                                          staff):
    gone = make_user("gone@shop.example", name="Gone Person")
    thread.assignee_id = gone.id
    gone.active = False
    db.session.commit()
    header = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert f'<option value="{gone.id}" selected>Gone Person</option>' in header
    assert assign(thread, gone, staff) is None  # leaving it with them is no change
    assign(thread, None, staff)
    with pytest.raises(ValidationFailed):
        assign(thread, gone, staff)


def test_recording_a_phone_call_opens_a_thread_and_sends_nothing(customer, staff):
    repair = create_repair(customer=customer, device="iPhone 12")
    message = record_conversation(customer=customer, source="phone", body="Pyta, czy może odebrać w sobotę.",
                                  author=staff, repair=repair, status="waiting_us")
    db.session.commit()
    thread = message.thread
    assert (message.direction, message.channel, message.author_user_id) == ("in", "phone", staff.id)
    assert thread.source_channel == "phone" and thread.subject == repair.device and thread.repair_id == repair.id
    assert thread.status == "waiting_us" and thread.due_at is not None
    assert thread.last_message_preview == "Pyta, czy może odebrać w sobotę."
    assert db.session.scalar(select(func.count(Delivery.id))) == 0


def test_recording_refuses_another_customers_repair_and_empty_text(customer, staff):
    stranger = create_customer(name="Anna Nowak", email="anna@example.com")
    repair = create_repair(customer=stranger, device="Galaxy S21")
    with pytest.raises(ValidationFailed) as refused:
        record_conversation(customer=customer, source="portal", body=" ", author=staff, repair=repair)
    assert set(refused.value.fields) == {"source", "body", "repair_id"}
    assert db.session.scalar(select(func.count(Thread.id))) == 0


def test_a_note_is_never_shown_in_the_customer_panel_nor_sent(app, staff, staff_client):
    customer = panel_customer("Ewa Zielińska", "ewa@example.com")
    published = publish(customer, "Telefon gotowy do odbioru.", author=staff)
    thread = published.thread
    assert post(staff_client, thread, "notes", body="Klientka marudzi, uważać").status_code == 302
    note = db.session.scalars(select(Message).where(Message.kind == "note")).one()
    assert note.visible_to_customer is False and note.deliveries == []
    assert db.session.scalar(select(func.count(Delivery.id))) == 1  # the published message's alone

    panel = app.test_client()
    sign_in_customer(panel, customer)
    page = panel.get(panel_path(f"/threads/{thread.id}")).get_data(as_text=True)
    assert "Telefon gotowy do odbioru." in page and "uważać" not in page
    assert "uważać" not in panel.get(panel_path("/")).get_data(as_text=True)


def test_a_note_is_refused_when_empty(thread, staff):
    with pytest.raises(ValidationFailed):
        add_note(thread, " \n ", staff)


# ---------------------------------------------------------------- over HTTP: what each action does


def test_assign_to_me_then_to_a_colleague_then_to_nobody(staff_client, staff, thread):
    colleague = make_user("piotr@shop.example", name="Piotr")
    post(staff_client, thread, "assign", assignee_id=staff.id)
    post(staff_client, thread, "assign", assignee_id=colleague.id)
    post(staff_client, thread, "assign", assignee_id="")
    assert thread.assignee_id is None
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "Stefan Staff took the thread." in page
    assert "Stefan Staff assigned the thread to Piotr." in page
    assert "Stefan Staff unassigned the thread (it was with Piotr)." in page
    assert db.session.scalar(select(Message.body_text).where(Message.kind == "event").limit(1)) == ""


@pytest.mark.shop_locale("pl")
@pytest.mark.usefixtures("compiled_catalogue")
def test_an_event_is_worded_when_shown_in_each_readers_language(staff_client, staff, thread):
    post(staff_client, thread, "priority", priority="urgent")

    def event_line() -> str:
        page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
        return re.search(r'data-event="priority">(.*?)</li>', page, re.S).group(1)

    assert "Pilny" in event_line() and "Urgent" not in event_line()
    staff.locale = "en"
    db.session.commit()
    assert "changed the priority from Normal to Urgent." in event_line()


@pytest.mark.shop_locale("pl")
@pytest.mark.usefixtures("compiled_catalogue")
def test_polish_events_name_people_and_queues_so_that_no_name_needs_declension(staff_client, staff, thread, queues):
    colleague = make_user("piotr@shop.example", name="Piotr Nowak")
    post(staff_client, thread, "assign", assignee_id=colleague.id)
    post(staff_client, thread, "assign", assignee_id="")
    post(staff_client, thread, "queue", queue_id=queues[1].id)
    post(staff_client, thread, "priority", priority="urgent")
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    lines = [" ".join(line.split()) for line in re.findall(r'data-event="\w+">.*?<span>(.*?)</span>', page, re.S)]
    assert "Stefan Staff: przypisanie wątku. Osoba przypisana: Piotr Nowak." in lines
    assert "Stefan Staff: usunięcie przypisania (było: Piotr Nowak)." in lines
    assert f"Stefan Staff: dodanie wątku do kolejki „{queues[1].name}”." in lines
    assert "Stefan Staff: zmiana priorytetu (było: Normalny, jest: Pilny)." in lines
    assert "do Piotr Nowak" not in page


def test_events_of_other_kinds_keep_their_own_entry(staff_client, thread):
    db.session.add(Message(thread_id=thread.id, kind="event", direction="internal", visible_to_customer=False,
                           body_text="SMS from +48600100200 moved here.", meta={"event": "message_moved"}))
    db.session.commit()
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "SMS from +48600100200 moved here." in page and 'data-event="message_moved"' not in page


def test_htmx_gets_the_header_and_the_event_for_the_timeline(staff_client, staff, thread, queues):
    response = post(staff_client, thread, "queue", htmx=True, queue_id=queues[1].id)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert 'id="thread-header"' in html
    assert 'hx-swap-oob="beforeend:.timeline"' in html
    assert "Stefan Staff put the thread in the queue Workshop." in html


def test_htmx_shows_a_refused_change_in_the_header(staff_client, thread):
    response = post(staff_client, thread, "tags", htmx=True, tag="x" * 61)
    assert response.status_code == 200 and 'role="alert"' in response.get_data(as_text=True)
    assert thread.tags == []


def test_a_person_or_queue_that_does_not_exist_is_404_and_changes_nothing(staff_client, thread):
    for value in ("999", "9" * 30, "-1"):
        assert post(staff_client, thread, "assign", assignee_id=value).status_code == 404
        assert post(staff_client, thread, "queue", queue_id=value).status_code == 404
    assert thread.assignee_id is None and events(thread) == []


def test_a_refused_change_without_javascript_comes_back_with_the_reason(staff_client, thread):
    response = post(staff_client, thread, "priority", priority="asap")
    assert response.status_code == 302
    assert "Choose a priority." in staff_client.get(response.headers["Location"]).get_data(as_text=True)


def test_status_close_and_reopen_buttons(staff_client, thread):
    post(staff_client, thread, "status", status="closed")
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert thread.status == "closed" and 'data-action="reopen"' in page and "closed the thread." in page
    post(staff_client, thread, "status", status="open")
    assert thread.status == "open" and thread.closed_at is None
    assert "reopened the thread (status: Open)." in staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)


def test_category_suggestions_come_from_threads_in_use(staff_client, staff, thread, customer):
    other = open_thread(customer, subject="Inny")
    other.category = "Gwarancja"
    db.session.commit()
    post(staff_client, thread, "category", category="Reklamacja")
    assert thread.category == "Reklamacja"
    options = staff_client.get("/threads/categories", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert re.findall(r'value="([^"]+)"', options) == ["Gwarancja", "Reklamacja"]


def test_following_puts_the_thread_in_the_followed_view_and_lists_the_followers(staff_client, staff, thread,
                                                                                 customer):
    other = open_thread(customer, subject="Nie śledzony")
    db.session.commit()
    post(staff_client, thread, "follow")
    post(staff_client, thread, "follow")  # twice is once
    assert db.session.scalar(select(func.count()).select_from(ThreadFollower)) == 1
    listed = staff_client.get("/?view=followed").get_data(as_text=True)
    assert f'id="thread-{thread.id}"' in listed and f'id="thread-{other.id}"' not in listed
    header = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert re.search(r'class="thread-followers">Stefan Staff<', header) and 'data-action="unfollow"' in header
    post(staff_client, thread, "unfollow")
    assert f'id="thread-{thread.id}"' not in staff_client.get("/?view=followed").get_data(as_text=True)


def test_a_note_added_with_htmx_comes_back_as_a_timeline_entry_and_an_empty_form(staff_client, thread):
    response = post(staff_client, thread, "notes", htmx=True, body="Zamówić **ekran**")
    html = response.get_data(as_text=True)
    assert 'class="entry entry-internal entry-note"' in html and "<strong>ekran</strong>" in html
    assert 'id="note-form"' in html and 'hx-swap-oob="true"' in html
    assert "Internal note" in html


def test_the_side_panel_shows_the_customer_their_other_threads_and_last_repair(staff_client, customer, thread):
    customer.crm_note = "Płaci gotówką"
    older = [open_thread(customer, subject=f"Wątek {n}") for n in range(4)]
    for n, other in enumerate(older):
        other.last_activity_at = utcnow() - timedelta(days=n + 1)
    create_repair(customer=customer, device="Stary Nokia")
    db.session.flush()
    latest = create_repair(customer=customer, device="iPhone 12")
    latest.created_at = utcnow() + timedelta(seconds=1)
    db.session.commit()
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    side = page[page.index('class="thread-side'):]
    assert "jan@example.com" in side and "+48 600 100 200" in side and "Płaci gotówką" in side
    assert [int(n) for n in re.findall(r'href="/threads/(\d+)"', side)] == [t.id for t in older[:3]]
    assert latest.number in side and "Stary Nokia" not in side


def test_the_crm_note_is_saved_in_place_and_audited(staff_client, staff, customer, thread):
    response = post(staff_client, thread, "crm-note", htmx=True, crm_note="Woli SMS niż telefon")
    assert response.status_code == 200 and "Saved." in response.get_data(as_text=True)
    assert customer.crm_note == "Woli SMS niż telefon"
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.update")).one()
    assert audit.user_id == staff.id and audit.details["fields"] == ["crm_note"]


def test_the_owner_deletes_a_thread_after_confirming_and_it_is_gone_for_staff(owner_client, owner, thread):
    confirm = owner_client.get(f"/threads/{thread.id}/delete")
    assert confirm.status_code == 200 and "Pęknięty wyświetlacz" in confirm.get_data(as_text=True)
    assert thread.deleted_at is None  # asking is not deleting
    response = post(owner_client, thread, "delete")
    assert response.status_code == 302 and thread.deleted_at is not None
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "thread.delete")).one()
    assert audit.user_id == owner.id and audit.target_id == thread.id
    assert owner_client.get(f"/threads/{thread.id}").status_code == 404
    assert f'id="thread-{thread.id}"' not in owner_client.get("/").get_data(as_text=True)


def test_recording_a_conversation_from_the_customer_card(staff_client, staff, customer):
    card = staff_client.get(f"/customers/{customer.id}").get_data(as_text=True)
    assert f"/threads/record?customer_id={customer.id}" in card
    form = staff_client.get(f"/threads/record?customer_id={customer.id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
    response = staff_client.post("/threads/record", data={
        "csrf_token": token, "customer_id": customer.id, "source": "in_person", "status": "closed",
        "subject": "Wizyta w serwisie", "body": "Przyniósł ładowarkę."})
    thread = db.session.scalars(select(Thread)).one()
    assert response.headers["Location"].endswith(f"/threads/{thread.id}")
    assert thread.status == "closed" and thread.closed_at is not None and thread.source_channel == "in_person"
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "Przyniósł ładowarkę." in page and "recorded by Stefan Staff" in page
    assert db.session.scalar(select(func.count(Delivery.id))) == 0


def test_recording_a_conversation_sets_its_queue_assignee_and_priority(staff_client, staff, customer, queues):
    colleague = make_user("kasia@example.com", role="staff", name="Kasia Kolega")
    gone = make_user("byly@example.com", role="staff", name="Były Pracownik")
    gone.active = False
    db.session.commit()
    form = staff_client.get(f"/threads/record?customer_id={customer.id}").get_data(as_text=True)
    assert "Workshop" in form and "Kasia Kolega" in form and "Były Pracownik" not in form
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
    data = {"csrf_token": token, "customer_id": customer.id, "source": "phone", "status": "waiting_us",
            "subject": "Telefon w sprawie wyceny", "body": "Prosi o oddzwonienie.",
            "queue_id": queues[1].id, "assignee_id": colleague.id, "priority": "urgent"}
    refused = staff_client.post("/threads/record", data={**data, "assignee_id": gone.id, "priority": "whenever"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "This account is switched off." in html and "Choose a priority." in html
    assert db.session.scalar(select(func.count(Thread.id))) == 0
    assert staff_client.post("/threads/record", data={**data, "queue_id": "99999"}).status_code == 404
    response = staff_client.post("/threads/record", data=data)
    assert response.status_code == 302
    thread = db.session.scalars(select(Thread)).one()
    assert (thread.queue_id, thread.assignee_id, thread.priority) == (queues[1].id, colleague.id, "urgent")
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "thread.record")).one()
    assert audit.details["assignee_id"] == colleague.id and audit.details["priority"] == "urgent"


def test_recording_from_a_repair_card_preselects_the_repair(staff_client, customer):
    repair = create_repair(customer=customer, device="iPhone 12")
    db.session.commit()
    card = staff_client.get(f"/repairs/{repair.id}?tab=messages").get_data(as_text=True)
    link = re.search(r'href="(/threads/record\?[^"]+)"', card).group(1).replace("&amp;", "&")
    form = staff_client.get(link).get_data(as_text=True)
    assert re.search(rf'<option selected value="{repair.id}">|<option value="{repair.id}" selected>', form)


def test_recording_asks_for_a_customer_first_and_shows_refusals_next_to_fields(staff_client, customer):
    assert 'id="customer-search"' in staff_client.get("/threads/record").get_data(as_text=True)
    assert "Record a conversation" in staff_client.get("/").get_data(as_text=True)
    token = csrf_token(staff_client, f"/threads/record?customer_id={customer.id}")
    response = staff_client.post("/threads/record", data={"csrf_token": token, "customer_id": customer.id,
                                                          "source": "phone", "status": "open", "body": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "Write what the customer said." in html and "Write a subject." in html
    assert db.session.scalar(select(func.count(Thread.id))) == 0


# ---------------------------------------------------------------- over HTTP: who may, and the guards

ACTIONS = {  # every thread action and a valid form for it
    "assign": {"assignee_id": ""},
    "queue": {"queue_id": ""},
    "status": {"status": "closed"},
    "priority": {"priority": "urgent"},
    "category": {"category": "Gwarancja"},
    "tags": {"tag": "vip"},
    "tags/{tag}/remove": {},
    "follow": {},
    "unfollow": {},
    "notes": {"body": "Notatka"},
    "crm-note": {"crm_note": "Notatka o kliencie"},
    "delete": {},
}
STAFF_ACTIONS = [action for action in ACTIONS if action != "delete"]


def action_url(thread_id: int, action: str) -> str:
    tag = db.session.scalar(select(Tag.id).where(Tag.name == "vip")) or 0
    return f"/threads/{thread_id}/" + action.format(tag=tag)


@pytest.fixture
def tagged(thread, staff):
    add_tag(thread, "vip", staff)
    db.session.commit()
    return thread


@pytest.mark.parametrize("action", STAFF_ACTIONS)
def test_staff_may_take_every_action_but_delete(staff_client, tagged, action):
    token = csrf_token(staff_client, f"/threads/{tagged.id}")
    response = staff_client.post(action_url(tagged.id, action), data={"csrf_token": token, **ACTIONS[action]})
    assert response.status_code == 302 and response.headers["Location"].startswith(f"/threads/{tagged.id}")
    assert "flash-error" not in staff_client.get(response.headers["Location"]).get_data(as_text=True)


def test_staff_may_not_delete(staff_client, thread):
    assert staff_client.get(f"/threads/{thread.id}/delete").status_code == 403
    assert post(staff_client, thread, "delete").status_code == 403
    assert thread.deleted_at is None
    assert 'data-action="delete"' not in staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)


@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_action_refuses_a_post_without_the_csrf_token(owner_client, tagged, action):
    events_before = len(events(tagged))
    response = owner_client.post(action_url(tagged.id, action), data=ACTIONS[action])
    assert response.status_code == 400
    assert len(events(tagged)) == events_before and tagged.deleted_at is None


@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_action_sends_a_signed_out_visitor_to_sign_in(client, tagged, action):
    token = csrf_token(client, "/login")
    response = client.post(action_url(tagged.id, action), data={"csrf_token": token, **ACTIONS[action]})
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_action_answers_404_for_a_missing_or_deleted_thread(owner_client, owner, tagged, action):
    token = csrf_token(owner_client, f"/threads/{tagged.id}")
    data = {"csrf_token": token, **ACTIONS[action]}
    assert owner_client.post(action_url(tagged.id + 1000, action), data=data).status_code == 404
    tagged.deleted_at = utcnow()
    db.session.commit()
    assert owner_client.post(action_url(tagged.id, action), data=data).status_code == 404


def test_recording_is_guarded_too(client, staff, customer):
    data = {"customer_id": customer.id, "source": "phone", "status": "open", "subject": "Telefon", "body": "Dzwonił"}
    signed_out = client.post("/threads/record", data={"csrf_token": csrf_token(client, "/login"), **data})
    assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
    sign_in(client, staff)
    assert client.post("/threads/record", data=data).status_code == 400
    assert db.session.scalar(select(func.count(Thread.id))) == 0


def test_the_header_shows_each_of_several_tags_once_in_name_order(staff_client, staff, thread):
    for name in ("gwarancja", "bateria", "pilne"):
        add_tag(thread, name, staff)
    db.session.commit()
    thread_id = thread.id
    db.session.expunge_all()  # the page loads the thread and its tags afresh, as in a new request
    page = staff_client.get(f"/threads/{thread_id}").get_data(as_text=True)
    assert re.findall(r'data-tag="([^"]+)"', page) == ["bateria", "gwarancja", "pilne"]
