"""Automatic repair notifications: when a repair enters a status, its template goes out through the outbox.

The message joins the repair's thread (context_thread), so the customer's reply comes back there; SMS due in the
shop's quiet hours wait for their end; channels that cannot reach the customer are skipped and noted on the
repair's log, never an error for the status change itself.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from flask_babel import force_locale
from flask_babel import gettext as _
from jinja2 import TemplateError
from sqlalchemy import select

from ..errors import ValidationFailed
from ..extensions import db
from ..labels import CHANNEL_LABELS
from ..models import Message, Repair, RepairEvent, RepairStatus, Shop, Thread, utcnow
from ..models.audit import apply_changes, record
from ..models.conversations import CHANNELS
from ..models.templates import MessageTemplate, StatusNotification
from .compose import channel_problems, compose
from .templates import refusal_for, render, version_for

MAX_AGE_HOURS = 24 * 30
HOUR_FORMAT = "%H:%M"


def quiet_until(shop: Shop, when: datetime) -> datetime | None:
    """The end of the shop's quiet hours (aware UTC) when `when` falls inside them, else None.

    The window is read in the shop's time zone and may cross midnight (20:00-08:00); equal ends mean no window.
    """
    start, end = time.fromisoformat(shop.quiet_hours_start), time.fromisoformat(shop.quiet_hours_end)
    if start == end:
        return None
    zone = ZoneInfo(shop.timezone or "Europe/Warsaw")
    local = when.astimezone(zone)
    now = local.time().replace(tzinfo=None)
    if start < end:
        inside, end_day = start <= now < end, local.date()
    else:
        inside = now >= start or now < end
        end_day = local.date() + timedelta(days=1) if now >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(timezone.utc)


def hold_sms_in_quiet_hours(message: Message, shop: Shop) -> None:
    """Move the SMS deliveries of an automatic message that would go out in quiet hours to the window's end."""
    for delivery in message.deliveries:
        if delivery.channel == "sms" and (end := quiet_until(shop, delivery.next_attempt_at)):
            delivery.next_attempt_at = end
    if message.deliveries and all(d.channel == "sms" for d in message.deliveries):
        message.send_at = message.deliveries[0].next_attempt_at


def _note(repair: Repair, text: str) -> None:
    db.session.add(RepairEvent(repair_id=repair.id, kind="notification", text=text))


def _last_notified_status(repair: Repair) -> int | None:
    """The status the repair's newest automatic notification was about."""
    last = db.session.scalar(
        select(Message).join(Thread, Message.thread_id == Thread.id)
        .where(Thread.repair_id == repair.id, Message.automatic.is_(True))
        .order_by(Message.id.desc()).limit(1))
    return (last.meta or {}).get("status_id") if last is not None else None


def notify_status_change(repair: Repair, status: RepairStatus, *, changed_at: datetime) -> Message | None:
    """Queue the notification the shop set for `status` to the repair's customer; the message, or None.

    Nothing is sent (and the repair's log says why) when the change is older than the shop's limit, when the
    customer's last notification about this repair was for the same status, when the template is marketing and
    the customer has not agreed, or when no chosen channel can reach the customer.
    """
    rule = db.session.scalar(select(StatusNotification).where(StatusNotification.status_id == status.id,
                                                              StatusNotification.enabled.is_(True)))
    if rule is None or not rule.channels:
        return None
    shop = Shop.current()
    with force_locale(shop.locale or "pl"):
        if utcnow() - changed_at > timedelta(hours=shop.notify_max_age_hours):
            template = version_for(db.session.get(MessageTemplate, rule.template_id), repair.customer, shop)
            about = _("Automatic notification “%(template)s”", template=template.name)
            _note(repair, _("%(about)s not sent: the status change is older than %(hours)d hours.",
                            about=about, hours=shop.notify_max_age_hours))
            return None
        if _last_notified_status(repair) == status.id:
            return None  # the customer already knows; a repeated status is no news
    message, _reason = send_automatic(
        repair, db.session.get(MessageTemplate, rule.template_id), rule.channels, shop=shop,
        about=lambda name: _("Automatic notification “%(template)s”", template=name), meta={"status_id": status.id})
    return message


def send_automatic(repair: Repair, template: MessageTemplate, channels: list[str], *, shop: Shop, about,
                   meta: dict) -> tuple[Message | None, str]:
    """Queue `template` (in the customer's language) to the repair's customer on the `channels` that reach them,
    in the repair's thread, SMS held out of quiet hours; returns (the message, "") or (None, why not).

    Each skipped channel and the outcome are noted on the repair's log, worded in the shop's language; `about`
    names the notice from the template's name ("Automatic notification “Ready”"). `meta` goes on the message.
    """
    customer = repair.customer
    template = version_for(template, customer, shop)
    with force_locale(shop.locale or "pl"):
        about = about(template.name)
        if refusal := refusal_for(template, customer):
            _note(repair, f"{about}: {refusal}")
            return None, refusal
        problems = channel_problems(customer, channels, shop, repair.contact)  # a company's: its contact's
        for name in channels:
            if reason := problems.get(f"channels.{name}"):
                _note(repair, _("%(about)s: %(channel)s skipped: %(reason)s",
                                about=about, channel=CHANNEL_LABELS[name], reason=reason))
        usable = [name for name in channels if f"channels.{name}" not in problems]
        if not usable:
            return None, " ".join(str(reason) for reason in problems.values())
        try:
            rendered = render(template, shop=shop, customer=customer, repair=repair)
        except TemplateError as exc:  # only a template stored without the check at save could get here
            _note(repair, _("%(about)s not sent: %(reason)s", about=about, reason=str(exc)))
            return None, str(exc)
        try:
            with db.session.begin_nested():
                message = compose(customer=customer, channels=usable, body=rendered.body, subject=rendered.subject,
                                  repair=repair, contact=repair.contact, automatic=True, source="automatic",
                                  template=template,
                                  texts=rendered.texts, sms_plain=rendered.sms_plain)
        except ValidationFailed as exc:
            reason = " ".join(str(text) for text in exc.fields.values())
            _note(repair, _("%(about)s not sent: %(reason)s", about=about, reason=reason))
            return None, reason
        message.meta = {**message.meta, **meta}
        hold_sms_in_quiet_hours(message, shop)
        _note(repair, _("%(about)s queued: %(channels)s.", about=about,
                        channels=", ".join(str(CHANNEL_LABELS[name]) for name in usable)))
    db.session.flush()
    return message, ""


# --- settings --------------------------------------------------------------------------------------


def rules_by_status() -> dict[int, StatusNotification]:
    return {rule.status_id: rule for rule in db.session.scalars(select(StatusNotification))}


def save_rules(rules: dict[int, tuple], *, actor) -> None:
    """Set each status's notification: (template id or None for none, channels[, switched on]); a rule saved
    without the third value is switched on. Refuses unknown statuses, templates and channels, and a template
    without channels (ValidationFailed keyed by `rule.<status id>`)."""
    statuses = {s.id for s in RepairStatus.ordered(active_only=False)}
    existing = rules_by_status()
    errors = {}
    for status_id, (template_id, channels, *switch) in rules.items():
        enabled = bool(switch[0]) if switch else True
        if status_id not in statuses:
            errors[f"rule.{status_id}"] = _("Unknown status.")
            continue
        rule = existing.get(status_id)
        if template_id is None:
            if rule is not None:
                db.session.delete(rule)
            continue
        template = db.session.get(MessageTemplate, template_id)
        channels = [c for c in CHANNELS if c in channels]
        if template is None or template.kind != "message":
            errors[f"rule.{status_id}"] = _("Choose one of the templates.")
        elif not channels:
            errors[f"rule.{status_id}"] = _("Choose at least one channel.")
        elif rule is None:
            db.session.add(StatusNotification(status_id=status_id, template_id=template_id, channels=channels,
                                              enabled=enabled))
        else:
            rule.template_id, rule.channels, rule.enabled = template_id, channels, enabled
    if errors:
        raise ValidationFailed(errors)
    record("settings.notifications", by=actor, rules={str(k): v[0] for k, v in rules.items()})
    db.session.flush()


def save_timing(shop: Shop, *, quiet_hours_start: str, quiet_hours_end: str, notify_max_age_hours, actor) -> None:
    """Set the quiet hours (HH:MM, shop time) and the age limit of notified status changes (1 to 720 hours)."""
    errors = {}
    values = {}
    for field, raw in (("quiet_hours_start", quiet_hours_start), ("quiet_hours_end", quiet_hours_end)):
        try:
            values[field] = datetime.strptime((raw or "").strip(), HOUR_FORMAT).strftime(HOUR_FORMAT)
        except ValueError:
            errors[field] = _("Enter a time like 20:00.")
    if not (isinstance(notify_max_age_hours, int) and 1 <= notify_max_age_hours <= MAX_AGE_HOURS):
        errors["notify_max_age_hours"] = _("Enter a number of hours from 1 to %(max)s.", max=MAX_AGE_HOURS)
    if errors:
        raise ValidationFailed(errors)
    values["notify_max_age_hours"] = notify_max_age_hours
    apply_changes(shop, values, "settings.shop", by=actor)
    db.session.flush()


def save_settings(shop: Shop, *, rules, quiet_hours_start, quiet_hours_end, notify_max_age_hours, actor) -> None:
    """Save the notification rules and the timing together; ValidationFailed lists the problems of both."""
    errors = {}
    for save in (lambda: save_rules(rules, actor=actor),
                 lambda: save_timing(shop, quiet_hours_start=quiet_hours_start, quiet_hours_end=quiet_hours_end,
                                     notify_max_age_hours=notify_max_age_hours, actor=actor)):
        try:
            save()
        except ValidationFailed as exc:
            errors.update(exc.fields)
    if errors:
        raise ValidationFailed(errors)
