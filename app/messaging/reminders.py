"""Reminders: when a repair has stayed in a status for N of the shop's opening days, its template goes out once.

"In the status since" is the repair's `status_changed_at`, set by every status change (change_status; a change
another system applies later carries its real time), so it is always the last change to the current status. A
reminder is due N opening days after it, at the same time of day (OpeningHours.add_open_days): weekends, Polish
public holidays and the owner's closed days do not count. It goes at most once per repair and reminder: the
SentReminder row is written first in the transaction that sends, under a unique key, so a second pass (a
restart, another process) fails to write it and sends nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..errors import ValidationFailed
from ..extensions import db
from ..models import Repair, RepairStatus, Shop, utcnow
from ..models.audit import record
from ..models.conversations import CHANNELS
from ..models.templates import MessageTemplate, SentReminder, StatusReminder
from ..opening_hours import OpeningHours
from .compose import channel_problems
from .due import shop_rules
from .notifications import send_automatic

MAX_DAYS = 365
# When the owner has not set weekly hours: Monday to Friday count (holidays and closed days still do not).
WORKING_WEEK = [["00:00", "24:00"]] * 5 + [None, None]


def opening_days(shop: Shop) -> OpeningHours:
    """The shop's opening days: its weekly hours when set and readable, else Monday to Friday."""
    return shop_rules(shop).opening_hours or OpeningHours.from_settings(WORKING_WEEK, shop.timezone,
                                                                         shop.closed_days or ())


def due_at(repair: Repair, reminder: StatusReminder, hours: OpeningHours) -> datetime:
    """When `reminder` is due for `repair` (if it is still in the reminder's status)."""
    return hours.add_open_days(repair.status_changed_at, reminder.days)


def reminders() -> list[StatusReminder]:
    """Every reminder, by status order and days."""
    return list(db.session.scalars(
        select(StatusReminder).join(RepairStatus, StatusReminder.status_id == RepairStatus.id)
        .options(selectinload(StatusReminder.template), selectinload(StatusReminder.status))
        .order_by(RepairStatus.position, StatusReminder.days, StatusReminder.id)))


@dataclass(frozen=True)
class Due:
    reminder: StatusReminder
    repair: Repair
    due_at: datetime


def due_reminders(until: datetime, *, shop: Shop | None = None) -> list[Due]:
    """The (reminder, repair) pairs due by `until` that have not had their go, for switched-on reminders.

    A repair waiting long enough for two reminders of its status at once (a reminder added late) gets only the
    later one: the earlier is passed over (see send_due_reminders).
    """
    hours = opening_days(shop or Shop.current())
    found = []
    for reminder in reminders():
        if not reminder.enabled or not reminder.channels:
            continue
        had = select(SentReminder.id).where(SentReminder.reminder_id == reminder.id,
                                            SentReminder.repair_id == Repair.id)
        # N opening days are at least N calendar days: the database leaves out the repairs that cannot be due.
        candidates = db.session.scalars(
            select(Repair).where(Repair.status_id == reminder.status_id,
                                 Repair.status_changed_at <= until - timedelta(days=reminder.days),
                                 ~had.exists())
            .options(selectinload(Repair.customer)).order_by(Repair.id))
        found += [Due(reminder, repair, at) for repair in candidates
                  if (at := due_at(repair, reminder, hours)) <= until]
    return found


def _latest_per_repair(due: list[Due]) -> tuple[list[Due], list[Due]]:
    """(the pairs to send, the earlier reminders of the same status and repair to pass over)."""
    latest: dict[tuple[int, int], Due] = {}
    for item in due:
        key = (item.repair.id, item.reminder.status_id)
        if key not in latest or item.reminder.days > latest[key].reminder.days:
            latest[key] = item
    send = list(latest.values())
    return send, [item for item in due if item not in send]


def send_due_reminders(now: datetime | None = None) -> dict[str, int]:
    """Send every reminder due at `now`, one transaction per repair and reminder; counts of sent and skipped.

    Safe to run again or in several processes at once: each go starts by writing its SentReminder row (on SQLite
    that takes the write lock; on PostgreSQL a second insert of the pair waits for the first and then fails), and
    the repair is read again under that row's protection, so a status changed meanwhile sends nothing.
    """
    now = now or utcnow()
    shop = Shop.current()
    send, passed_over = _latest_per_repair(due_reminders(now, shop=shop))
    pairs = [(item.reminder.id, item.repair.id, False) for item in send]
    pairs += [(item.reminder.id, item.repair.id, True) for item in passed_over]
    db.session.commit()  # end the read; each go below is its own transaction
    counts = {"sent": 0, "skipped": 0}
    for reminder_id, repair_id, superseded in pairs:
        outcome = _go(reminder_id, repair_id, now, superseded=superseded)
        if outcome:
            counts[outcome] += 1
    return counts


def _go(reminder_id: int, repair_id: int, now: datetime, *, superseded: bool) -> str | None:
    """One reminder's go for one repair, committed: "sent", "skipped", or None when it was not (or no longer) due
    or another pass had it."""
    try:
        sent = SentReminder(reminder_id=reminder_id, repair_id=repair_id, status_since=now, outcome="skipped")
        db.session.add(sent)
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return None
    shop = Shop.current()
    reminder = db.session.get(StatusReminder, reminder_id)
    repair = db.session.get(Repair, repair_id, with_for_update=True, populate_existing=True)
    if (reminder is None or repair is None or not reminder.enabled or repair.status_id != reminder.status_id
            or due_at(repair, reminder, opening_days(shop)) > now):
        db.session.rollback()  # the status changed (or the reminder did) since the list was read
        return None
    sent.status_since = repair.status_changed_at
    with force_locale(shop.locale or "pl"):
        if superseded:
            sent.reason = _("A later reminder of the same status went instead.")
        else:
            message, reason = send_automatic(
                repair, reminder.template, reminder.channels, shop=shop,
                about=lambda name: _("Reminder “%(template)s” after %(days)d days in %(status)s",
                                     template=name, days=reminder.days, status=reminder.status.name),
                meta={"status_id": reminder.status_id, "reminder_id": reminder.id})
            if message is not None:
                sent.outcome, sent.message_id = "sent", message.id
            else:
                sent.reason = reason
    db.session.commit()
    return sent.outcome


def sent_reminders(repair: Repair) -> list[SentReminder]:
    """The reminders a repair has had (sent or skipped), oldest first."""
    return list(db.session.scalars(
        select(SentReminder).where(SentReminder.repair_id == repair.id)
        .options(selectinload(SentReminder.reminder).selectinload(StatusReminder.template),
                 selectinload(SentReminder.reminder).selectinload(StatusReminder.status),
                 selectinload(SentReminder.message))
        .order_by(SentReminder.id)))


# --- the preview ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    repair: Repair
    due_at: datetime
    channels: list[str]  # the reminder's channels that reach the customer
    skipped: dict[str, str]  # channel: why it cannot reach them


def preview(now: datetime | None = None) -> dict[int, list[Recipient]]:
    """Per reminder id, who would get it today: the repairs due by the end of the shop's day, with the channels
    that reach each customer and why the others do not."""
    now = now or utcnow()
    shop = Shop.current()
    hours = opening_days(shop)
    local = now.astimezone(hours.zone)
    end_of_day = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), hours.zone)
    send, _passed_over = _latest_per_repair(due_reminders(end_of_day.astimezone(now.tzinfo), shop=shop))
    found: dict[int, list[Recipient]] = {}
    for item in send:
        problems = channel_problems(item.repair.customer, item.reminder.channels, shop)
        skipped = {name: problems[f"channels.{name}"] for name in item.reminder.channels
                   if f"channels.{name}" in problems}
        found.setdefault(item.reminder.id, []).append(Recipient(
            item.repair, item.due_at, [c for c in item.reminder.channels if c not in skipped], skipped))
    return found


# --- settings --------------------------------------------------------------------------------------


def add_reminder(*, status_id, days, template_id, channels, actor) -> StatusReminder:
    """Add a reminder: after `days` (1 to 365) opening days in the status, the message template on the channels.

    Refuses an unknown status or template, no channel, and a second reminder for the same status and days
    (ValidationFailed keyed by the field).
    """
    errors = {}
    status = db.session.get(RepairStatus, status_id) if isinstance(status_id, int) else None
    template = db.session.get(MessageTemplate, template_id) if isinstance(template_id, int) else None
    channels = [c for c in CHANNELS if c in (channels or [])]
    if status is None:
        errors["status_id"] = _("Choose one of the statuses.")
    if not (isinstance(days, int) and 1 <= days <= MAX_DAYS):
        errors["days"] = _("Enter a number of days from 1 to %(max)s.", max=MAX_DAYS)
    if template is None or template.kind != "message":
        errors["template_id"] = _("Choose one of the templates.")
    if not channels:
        errors["channels"] = _("Choose at least one channel.")
    if not errors and db.session.scalar(select(StatusReminder.id).where(StatusReminder.status_id == status.id,
                                                                        StatusReminder.days == days)):
        errors["days"] = _("This status already has a reminder after %(days)d days.", days=days)
    if errors:
        raise ValidationFailed(errors)
    reminder = StatusReminder(status_id=status.id, days=days, template_id=template.id, channels=channels,
                              enabled=True)
    db.session.add(reminder)
    db.session.flush()
    record("settings.reminders", by=actor, added=reminder.id, status=status.name, days=days,
           template=template.name, channels=channels)
    return reminder


def switch_reminder(reminder: StatusReminder, enabled: bool, *, actor) -> None:
    reminder.enabled = bool(enabled)
    record("settings.reminders", by=actor, reminder=reminder.id, enabled=reminder.enabled)
    db.session.flush()


def delete_reminder(reminder: StatusReminder, *, actor) -> None:
    """Delete a reminder and the record of whom it went to (a new one with the same days starts afresh)."""
    record("settings.reminders", by=actor, deleted=reminder.id, days=reminder.days)
    db.session.execute(delete(SentReminder).where(SentReminder.reminder_id == reminder.id))
    db.session.delete(reminder)
    db.session.flush()
