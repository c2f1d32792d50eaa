"""The outbox's dispatcher: atomic claims, retries with backoff, crash safety, staff actions, the panel, retention.

Runs on SQLite and, with TEST_DATABASE=postgresql, on PostgreSQL. Channels are fakes that count what they send.
"""
from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.channels.base import SendResult
from app.channels.portal import PortalChannel
from app.errors import ValidationFailed
from app.extensions import db
from app.models import (
    Attachment, AuditEvent, Customer, Delivery, DeliveryEvent, Message, Repair, RepairStatus, Shop, Thread, utcnow,
)
from app.outbox import cancel, dismiss, dispatch_pass, hide, purge_outbox, resend
from app.outbox.backoff import retry_delay
from app.outbox.claim import claim_due
from app.commands.outbox import outbox as outbox_cli

OK = SendResult(ok=True, provider_id="provider-1")
BUSY = SendResult(ok=False, error="Server busy, try later", error_raw="451 4.3.0 busy", error_code="451")
NO_SUCH_NUMBER = SendResult(ok=False, error="This number does not exist.", error_raw='{"code": 21211}',
                            error_code="21211", permanent=True)


# ---------------------------------------------------------------- fakes and factories


class FakeChannel:
    """A channel that records every send; `script` holds what the next sends return (or raise), then they succeed."""

    def __init__(self, name: str = "email", script=(), pause: float = 0.0, open_error: Exception | None = None):
        self.name = name
        self.script = list(script)
        self.pause = pause
        self.open_error = open_error
        self.sent: list[int] = []
        self.opened = self.closed = 0
        self._lock = threading.Lock()

    def unreachable_reason(self, customer, shop):
        return None

    def open_session(self):
        self.opened += 1
        if self.open_error:
            raise self.open_error
        return FakeSession(self)


class FakeSession:
    def __init__(self, channel: FakeChannel):
        self.channel = channel

    def send(self, delivery):
        channel = self.channel
        with channel._lock:
            channel.sent.append(delivery.id)
            outcome = channel.script.pop(0) if channel.script else OK
        if channel.pause:
            threading.Event().wait(channel.pause)  # lets two dispatchers interleave
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def close(self):
        self.channel.closed += 1


def make_customer(name="Anna Nowak", email="anna@example.com", phone="+48600100200", panel_state="none") -> Customer:
    customer = Customer(name=name, email=email, phone=phone, panel_state=panel_state)
    db.session.add(customer)
    db.session.commit()
    return customer


def make_repair(customer: Customer, number="R-2026-0042", device="iPhone 12") -> Repair:
    repair = Repair(number=number, customer_id=customer.id, device=device, status_id=RepairStatus.ordered()[0].id)
    db.session.add(repair)
    db.session.commit()
    return repair


def make_message(customer: Customer | None = None, subject="Your phone is ready", body="You can pick it up today.",
                 repair: Repair | None = None, attachments=()) -> Message:
    """An outbound message in a new thread of `customer` (a new customer when none is given)."""
    customer = customer or make_customer()
    thread = Thread(customer_id=customer.id, repair_id=repair.id if repair else None, subject=subject)
    db.session.add(thread)
    db.session.flush()
    message = Message(thread_id=thread.id, direction="out", subject=subject, body_text=body,
                      visible_to_customer=False)
    message.attachments = [Attachment(filename=name) for name in attachments]
    db.session.add(message)
    db.session.commit()
    return message


def make_delivery(message: Message, channel="email", status="queued", due=None, recipient=None, **fields) -> Delivery:
    """A delivery of `message`; `due` is its next_attempt_at (default: now)."""
    default_recipient = {"email": "anna@example.com", "sms": "+48600100200", "portal": str(message.thread.customer_id)}
    delivery = Delivery(message_id=message.id, channel=channel, status=status,
                        recipient=recipient or default_recipient[channel],
                        next_attempt_at=due or utcnow(), **fields)
    db.session.add(delivery)
    db.session.commit()
    return delivery


def reload(delivery: Delivery) -> Delivery:
    db.session.expire_all()
    return db.session.get(Delivery, delivery.id)


def events_of(delivery: Delivery) -> list[str]:
    return list(db.session.scalars(
        select(DeliveryEvent.status).where(DeliveryEvent.delivery_id == delivery.id).order_by(DeliveryEvent.id)
    ))


# ---------------------------------------------------------------- claiming


def test_two_dispatchers_running_at_once_send_every_delivery_exactly_once(app):
    message = make_message()
    db.session.add_all(Delivery(message_id=message.id, channel="email", status="queued", recipient=f"c{n}@example.com",
                                next_attempt_at=utcnow()) for n in range(300))
    db.session.commit()
    channel = FakeChannel(pause=0.001)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def dispatcher(worker: str):
        try:
            with app.app_context():
                start.wait()
                while dispatch_pass({"email": channel}, limit=20, worker_id=worker)["claimed"]:
                    pass
        except BaseException as exc:  # surfaced in the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher, args=(f"worker-{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors

    sends = Counter(channel.sent)
    assert len(sends) == 300 and set(sends.values()) == {1}
    rows = db.session.scalars(select(Delivery)).all()
    assert {row.status for row in rows} == {"sent"} and {row.attempts for row in rows} == {1}
    assert {row.claimed_by for row in rows} == {"worker-1", "worker-2"}  # both really took part


def test_a_scheduled_delivery_is_not_sent_before_its_time(app):
    now = utcnow()
    later = make_delivery(make_message(), status="scheduled", due=now + timedelta(minutes=10))
    channel = FakeChannel()

    assert dispatch_pass({"email": channel}, now=now)["claimed"] == 0
    assert channel.sent == [] and reload(later).status == "scheduled"

    counts = dispatch_pass({"email": channel}, now=now + timedelta(minutes=10))
    assert counts["claimed"] == 1 and counts["sent"] == 1
    assert channel.sent == [later.id] and reload(later).status == "sent"


# ---------------------------------------------------------------- results, retries, failures


def test_a_temporary_failure_goes_back_to_the_queue_after_a_backoff_then_succeeds(app):
    now = utcnow()
    delivery = make_delivery(make_message(), due=now)
    channel = FakeChannel(script=[BUSY])

    counts = dispatch_pass({"email": channel}, now=now)
    assert counts == {"claimed": 1, "sent": 0, "retried": 1, "failed": 0, "uncertain": 0, "requeued": 0}
    row = reload(delivery)
    assert (row.status, row.attempts, row.error, row.error_code) == ("queued", 1, "Server busy, try later", "451")
    assert now + timedelta(seconds=30) <= row.next_attempt_at <= now + timedelta(seconds=60)  # first step: 30–60 s

    assert dispatch_pass({"email": channel}, now=now + timedelta(seconds=20))["claimed"] == 0  # not yet due
    counts = dispatch_pass({"email": channel}, now=now + timedelta(seconds=61))
    assert counts["sent"] == 1
    row = reload(delivery)
    assert (row.status, row.attempts, row.error, row.provider_id) == ("sent", 2, None, "provider-1")
    assert row.sent_at == now + timedelta(seconds=61)
    assert events_of(delivery) == ["retry", "sent"]


def test_a_permanent_failure_fails_at_once_with_the_reason(app):
    delivery = make_delivery(make_message(), channel="sms")
    channel = FakeChannel("sms", script=[NO_SUCH_NUMBER])

    assert dispatch_pass({"sms": channel})["failed"] == 1
    row = reload(delivery)
    assert (row.status, row.attempts, row.error_code) == ("failed", 1, "21211")
    assert row.error == "This number does not exist." and row.error_raw == '{"code": 21211}'
    assert dispatch_pass({"sms": channel})["claimed"] == 0 and channel.sent == [delivery.id]


def test_a_delivery_fails_for_good_after_the_shops_number_of_attempts(app):
    Shop.current().max_attempts = 3
    db.session.commit()
    now = utcnow()
    delivery = make_delivery(make_message(), due=now)
    channel = FakeChannel(script=[BUSY] * 10)

    outcomes = []
    for hour in range(5):
        counts = dispatch_pass({"email": channel}, now=now + timedelta(hours=hour))
        outcomes.append((counts["retried"], counts["failed"]))
    assert outcomes == [(1, 0), (1, 0), (0, 1), (0, 0), (0, 0)]
    row = reload(delivery)
    assert (row.status, row.attempts, row.error) == ("failed", 3, "Server busy, try later")
    assert len(channel.sent) == 3


@pytest.mark.app_config(OUTBOX_BACKOFF_BASE=10, OUTBOX_BACKOFF_CAP=15)
def test_the_backoff_steps_come_from_the_configuration(app):
    delivery = make_delivery(make_message())
    channel = FakeChannel(script=[BUSY] * 3)
    now = utcnow()
    for step in (10, 15, 15):  # 10 s, then 20 s capped at 15 s
        assert dispatch_pass({"email": channel}, now=now)["retried"] == 1
        due = reload(delivery).next_attempt_at
        assert step / 2 <= (due - now).total_seconds() <= step
        now = due


def test_backoff_doubles_with_jitter_up_to_the_cap(app):
    for attempts, step in [(1, 60), (2, 120), (3, 240), (5, 960), (7, 3600), (50, 3600)]:
        delays = {retry_delay(attempts).total_seconds() for _ in range(50)}
        assert all(step / 2 <= delay <= step for delay in delays), (attempts, delays)
        assert len(delays) > 1  # jittered, not one fixed time


def test_a_channel_that_raises_is_a_temporary_failure_and_the_pass_goes_on(app):
    message = make_message()
    broken = make_delivery(message, channel="email")
    fine = make_delivery(message, channel="sms")
    email = FakeChannel("email", script=[RuntimeError("connection reset by peer")])
    sms = FakeChannel("sms")

    counts = dispatch_pass({"email": email, "sms": sms})
    assert (counts["retried"], counts["sent"]) == (1, 1)
    row = reload(broken)
    assert row.status == "queued" and "connection reset by peer" in row.error and "RuntimeError" in row.error_raw
    assert reload(fine).status == "sent"
    assert (email.opened, email.closed, sms.opened, sms.closed) == (1, 1, 1, 1)


def test_a_channel_that_cannot_connect_is_asked_once_per_pass_and_its_deliveries_retry(app):
    message = make_message()
    deliveries = [make_delivery(message) for _ in range(3)]
    channel = FakeChannel(open_error=ConnectionRefusedError("[Errno 111] Connection refused"))

    counts = dispatch_pass({"email": channel})
    assert counts["retried"] == 3 and channel.opened == 1 and channel.sent == []
    assert {reload(d).error for d in deliveries} == {"Sending failed: [Errno 111] Connection refused"}


def test_one_session_per_channel_serves_the_whole_pass(app):
    message = make_message()
    for _ in range(5):
        make_delivery(message)
    channel = FakeChannel()

    assert dispatch_pass({"email": channel})["sent"] == 5
    assert (channel.opened, channel.closed) == (1, 1)


# ---------------------------------------------------------------- crashes


def test_a_crash_after_the_hand_over_began_leaves_the_delivery_uncertain_and_it_is_never_resent_by_itself(
        app, owner):
    delivery = make_delivery(make_message())
    now = utcnow()
    [claim] = claim_due(now, "worker-that-dies", limit=10)
    assert claim.delivery_id == delivery.id and claim.hand_over(now)  # then the worker died mid-send
    channel = FakeChannel()

    assert dispatch_pass({"email": channel}, now=now + timedelta(minutes=5))["uncertain"] == 0  # may still be sending
    counts = dispatch_pass({"email": channel}, now=now + timedelta(minutes=11))
    assert counts["uncertain"] == 1 and counts["claimed"] == 0
    row = reload(delivery)
    assert (row.status, row.uncertain) == ("sending", True)
    assert dispatch_pass({"email": channel}, now=now + timedelta(hours=5)) == dict.fromkeys(
        ("claimed", "sent", "retried", "failed", "uncertain", "requeued"), 0)
    assert channel.sent == []

    resend(row, owner)
    db.session.commit()
    assert dispatch_pass({"email": channel})["sent"] == 1
    assert dispatch_pass({"email": channel})["claimed"] == 0
    assert channel.sent == [delivery.id]  # exactly once more
    row = reload(delivery)
    assert (row.status, row.uncertain, row.attempts) == ("sent", False, 2)
    assert events_of(delivery) == ["uncertain", "resent", "sent"]


def test_a_crash_before_the_hand_over_began_puts_the_delivery_back_in_the_queue_and_it_is_sent_once(app):
    delivery = make_delivery(make_message())
    now = utcnow()
    assert [claim.delivery_id for claim in claim_due(now, "worker-that-dies", limit=10)] == [delivery.id]
    channel = FakeChannel()

    assert dispatch_pass({"email": channel}, now=now + timedelta(minutes=5))["requeued"] == 0  # may still be busy
    counts = dispatch_pass({"email": channel}, now=now + timedelta(minutes=11))

    assert (counts["requeued"], counts["uncertain"], counts["sent"]) == (1, 0, 1)
    assert channel.sent == [delivery.id]
    row = reload(delivery)
    assert (row.status, row.uncertain, row.attempts) == ("sent", False, 1)  # the dead claim's attempt not counted
    assert events_of(delivery) == ["requeued", "sent"]


def test_a_claim_given_back_as_stale_is_skipped_by_the_slow_pass_that_held_it(app):
    delivery = make_delivery(make_message())
    now = utcnow()
    [claim] = claim_due(now, "slow-worker", limit=1)
    assert dispatch_pass({"email": FakeChannel()}, now=now + timedelta(minutes=11))["sent"] == 1

    assert not claim.hand_over(now + timedelta(minutes=12))  # its turn came: the claim is no longer its own
    row = reload(delivery)
    assert (row.status, row.attempts) == ("sent", 1)


def test_a_pass_stopped_mid_way_gives_back_the_deliveries_it_had_not_tried(app):
    message = make_message()
    first, second, third = (make_delivery(message) for _ in range(3))
    channel = FakeChannel(script=[KeyboardInterrupt()])

    with pytest.raises(KeyboardInterrupt):
        dispatch_pass({"email": channel})
    assert channel.sent == [first.id] and channel.closed == 1
    assert reload(first).status == "sending"  # in flight when it stopped: only staff may decide
    for untried in (second, third):
        row = reload(untried)
        assert (row.status, row.attempts, row.claimed_by) == ("queued", 0, None)
    assert dispatch_pass({"email": channel})["sent"] == 2


def test_a_result_arriving_after_staff_resent_the_delivery_does_not_overwrite_the_new_attempt(app, owner):
    from app.outbox.dispatch import record_result

    delivery = make_delivery(make_message())
    now = utcnow()
    [claim] = claim_due(now, "slow-worker", limit=1)
    claim.hand_over(now)  # and it hangs on the server
    dispatch_pass({"email": FakeChannel()}, now=now + timedelta(minutes=11))  # flags it uncertain
    resend(reload(delivery), owner)
    db.session.commit()

    assert record_result(claim, OK, now + timedelta(minutes=12), max_attempts=8) == "late"
    row = reload(delivery)
    assert (row.status, row.sent_at) == ("queued", None)
    assert "late" in events_of(delivery)


# ---------------------------------------------------------------- staff actions


def test_a_cancelled_scheduled_delivery_is_never_sent(app, owner):
    now = utcnow()
    delivery = make_delivery(make_message(), status="scheduled", due=now + timedelta(seconds=30))
    channel = FakeChannel()

    cancel(delivery, owner)
    db.session.commit()
    assert dispatch_pass({"email": channel}, now=now + timedelta(hours=1))["claimed"] == 0
    assert channel.sent == []
    row = reload(delivery)
    assert row.status == "cancelled" and row.cancelled_at is not None
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "outbox.cancel")).one()
    assert (audit.target_id, audit.user_id) == (delivery.id, owner.id)


def test_cancel_is_refused_once_a_dispatcher_has_claimed_the_delivery(app, owner):
    delivery = make_delivery(make_message())
    claim_due(utcnow(), "worker", limit=1)

    with pytest.raises(ValidationFailed) as refused:
        cancel(reload(delivery), owner)
    assert "Too late to cancel" in refused.value.fields["delivery"]
    db.session.rollback()
    assert reload(delivery).status == "sending"


def test_resend_gives_a_failed_delivery_one_more_real_attempt(app, owner):
    delivery = make_delivery(make_message(), channel="sms")
    channel = FakeChannel("sms", script=[NO_SUCH_NUMBER])
    dispatch_pass({"sms": channel})
    assert reload(delivery).status == "failed"

    resend(reload(delivery), owner)
    db.session.commit()
    assert reload(delivery).status == "queued"
    assert dispatch_pass({"sms": channel})["sent"] == 1
    assert channel.sent == [delivery.id, delivery.id]
    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.action == "outbox.resend")) == "outbox.resend"


def test_resend_is_refused_for_a_delivery_that_went_out(app, owner):
    delivery = make_delivery(make_message(), status="sent")
    with pytest.raises(ValidationFailed):
        resend(delivery, owner)


def test_staff_dismiss_an_uncertain_delivery_as_sent(app, owner):
    delivery = make_delivery(make_message())
    now = utcnow()
    [claim] = claim_due(now, "worker-that-dies", limit=1)
    claim.hand_over(now)
    dispatch_pass({"email": FakeChannel()}, now=now + timedelta(minutes=11))

    dismiss(reload(delivery), owner)
    db.session.commit()
    row = reload(delivery)
    assert (row.status, row.uncertain, row.sent_at) == ("sent", False, row.claimed_at)
    event = db.session.scalars(select(DeliveryEvent).where(DeliveryEvent.status == "dismissed")).one()
    assert event.detail == {"by": owner.email, "before": "uncertain"}
    with pytest.raises(ValidationFailed):
        dismiss(row, owner)


def test_hiding_removes_a_finished_delivery_from_the_outbox_only(app, owner):
    message = make_message()
    done = make_delivery(message, status="sent")
    waiting = make_delivery(message)

    hide(done, owner)
    db.session.commit()
    assert reload(done).outbox_hidden_at is not None
    assert db.session.get(Message, message.id) is not None
    with pytest.raises(ValidationFailed):
        hide(waiting, owner)


# ---------------------------------------------------------------- the customer panel channel


def test_the_panel_channel_publishes_the_message_and_records_it_delivered(app):
    message = make_message(make_customer(panel_state="active"))
    delivery = make_delivery(message, channel="portal")

    counts = dispatch_pass()  # the real registry: app.channels.portal
    assert counts["sent"] == 1
    row = reload(delivery)
    assert row.status == "delivered" and row.delivered_at is not None and row.sent_at is not None
    assert db.session.get(Message, message.id).visible_to_customer is True


def test_the_panel_channel_refuses_a_customer_without_panel_access(app):
    customer = make_customer(panel_state="invited")
    assert PortalChannel().unreachable_reason(customer, Shop.current()) == (
        "The panel is not activated for this customer.")
    delivery = make_delivery(make_message(customer), channel="portal")

    assert dispatch_pass()["failed"] == 1
    row = reload(delivery)
    assert row.status == "failed" and row.error == "The panel is not activated for this customer."
    assert PortalChannel().unreachable_reason(make_customer(name="Ola", panel_state="active"), Shop.current()) is None


# ---------------------------------------------------------------- retention and the command


def test_retention_hides_only_finished_deliveries_older_than_the_shops_setting(app):
    now = utcnow()
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    message = make_message()
    old_sent = make_delivery(message, status="sent", created_at=old, sent_at=old)
    old_failed = make_delivery(message, status="failed", created_at=old, claimed_at=old)
    old_cancelled = make_delivery(message, status="cancelled", created_at=old, cancelled_at=old)
    recent_sent = make_delivery(message, status="sent", created_at=old, sent_at=recent)  # asked long ago, sent lately
    old_waiting = make_delivery(message, status="queued", created_at=old)

    assert purge_outbox(now) == 3
    hidden = {d.id for d in db.session.scalars(select(Delivery).where(Delivery.outbox_hidden_at.is_not(None)))}
    assert hidden == {old_sent.id, old_failed.id, old_cancelled.id}
    assert reload(recent_sent).outbox_hidden_at is None and reload(old_waiting).outbox_hidden_at is None
    assert db.session.get(Message, message.id) is not None  # the thread keeps its message


def test_the_dispatch_command_runs_one_pass_and_prints_the_counts(app):
    make_delivery(make_message(make_customer(panel_state="active")), channel="portal")

    result = app.test_cli_runner().invoke(outbox_cli, ["dispatch"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "claimed 1, sent 1, retried 0, failed 0, uncertain 0, requeued 0"
