"""The shop's own details and settings, and the rules for changing them."""
from __future__ import annotations

import re
from datetime import date
from zoneinfo import available_timezones

import phonenumbers
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..attachments import max_bytes
from ..customers import normalize_email
from ..errors import ValidationFailed
from ..extensions import db
from ..fields import clean_line, clean_text, gather
from ..labels import CHANNEL_LABELS, PRIORITY_LABELS
from ..models import Shop, ShopSlug, User
from ..models.audit import apply_changes
from ..models.conversations import CHANNELS
from ..models.repairs import PRIORITIES
from ..models.users import LOCALES
from ..opening_hours import END_OF_DAY, WEEKDAYS, parse_hour

SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}[a-z0-9]")
MAX_UNDO_SECONDS = 300
MAX_SMS_REPLY_WINDOW_DAYS = 90
MB = 1024 * 1024
# The documented limits of the numeric settings: field -> (lowest, highest). The settings table in docs/administration.md lists them.
LIMITS = {
    "undo_seconds": (0, MAX_UNDO_SECONDS),
    "sms_reply_window_days": (1, MAX_SMS_REPLY_WINDOW_DAYS),
    "outbox_retention_days": (1, 365),
    "max_attempts": (1, 20),
    "attachment_quota_mb": (10, 1024 * 1024),  # 10 MB to 1 TB
    "response_time": (1, 720),  # hours per priority
    "bulk_rate": (1, 600),  # messages per minute per channel
}
# The settings' names, as the messages about them say them (the settings pages use the same words).
SETTING_LABELS = {
    "sms_countries": _l("Countries for SMS"), "outbox_retention_days": _l("Days finished entries stay in the outbox"),
    "max_attempts": _l("Attempts before a delivery fails"), "attachment_quota_mb": _l("Space for received files (MB)"),
    "response_times": _l("Response time (hours)"), "bulk_rates": _l("Bulk messages per minute"),
    "panel_attachment_max_mb": _l("Largest file from a customer (MB)"), "opening_week": _l("Opening hours"),
    "closed_days": _l("Closed days"),
}
WEEKDAY_LABELS = [_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"),
                  _l("Sunday")]
MAX_SMS_COUNTRIES = 50
MAX_CLOSED_DAYS = 400
# The shop's free texts: the name and phone go into mail headers and one-line layouts; the address and opening hours
# are shown on several lines.
TEXTS = {"name": (clean_line, 200), "phone": (clean_line, 32), "address": (clean_text, 500),
         "opening_hours": (clean_text, 1_000), "receipt_terms": (clean_text, 3_000)}
SHOP_FIELDS = ("name", "slug", "address", "phone", "opening_hours", "receipt_terms", "locale", "timezone",
               "notification_email", "undo_seconds", "sms_reply_window_days", "merge_notifies_customer",
               "sms_countries", "outbox_retention_days", "max_attempts", "attachment_quota_mb", "response_times",
               "bulk_rates", "panel_attachment_max_mb", "opening_week", "closed_days")


def update_shop(shop: Shop, *, actor: User | str | None = None, **values) -> list[str]:
    """Change the given details of the shop (names from SHOP_FIELDS) and return the fields that changed.

    Refuses an empty name, a slug that is not 2-64 lowercase letters, digits and inner hyphens, an
    unknown language or time zone, a bad notification e-mail, and numbers outside LIMITS (the panel's file size:
    1 MB to the upload limit, ATTACHMENT_MAX_BYTES); SMS countries that are not two-letter region codes; opening
    hours that are not seven days of HH:MM pairs opening before they close; closed days that are not dates.
    Each message names its field. A replaced slug is kept in ShopSlug, so old panel links and receiving addresses
    keep working. The audit event lists each changed field with its old and new value.
    """
    unknown = set(values) - set(SHOP_FIELDS)
    if unknown:
        raise TypeError(f"not shop settings: {sorted(unknown)}")
    values = _checked_shop_values(values)

    if values.get("slug", shop.slug) != shop.slug and \
            db.session.scalar(select(ShopSlug).where(ShopSlug.slug == shop.slug)) is None:
        db.session.add(ShopSlug(slug=shop.slug))
    changed = apply_changes(shop, values, "settings.shop", by=actor)
    db.session.flush()
    return changed


def _checked_shop_values(values: dict) -> dict:
    """The values cleaned up (trimmed, e-mail normalised); ValidationFailed lists every broken rule at once."""
    values = {field: value.strip() if isinstance(value, str) else value for field, value in values.items()}
    errors = {}
    for field, (clean, max_length) in TEXTS.items():
        if field in values:
            values[field] = gather(errors, clean, values[field], field, max_length)
    if "name" in values and not values["name"] and "name" not in errors:
        errors["name"] = _("Enter the shop's name.")
    if "slug" in values and not SLUG_PATTERN.fullmatch(values["slug"] or ""):
        errors["slug"] = _("Use 2-64 lowercase letters, digits and hyphens (not at the start or end).")
    if "locale" in values and values["locale"] not in LOCALES:
        errors["locale"] = _("Choose Polish or English.")
    if "timezone" in values and values["timezone"] not in available_timezones():
        errors["timezone"] = _("Choose a time zone from the list.")
    if "notification_email" in values:
        try:
            values["notification_email"] = normalize_email(values["notification_email"])
        except ValidationFailed as exc:
            errors["notification_email"] = exc.message_for("email")
    for field, message in (
        ("undo_seconds", _("Enter a number of seconds from 0 to %(max)s.", max=MAX_UNDO_SECONDS)),
        ("sms_reply_window_days", _("Enter a number of days from 1 to %(max)s.", max=MAX_SMS_REPLY_WINDOW_DAYS)),
        ("outbox_retention_days", _("Enter a number of days from 1 to %(max)s.", max=365)),
        ("max_attempts", _("Enter a number of attempts from %(min)s to %(max)s.", min=1, max=20)),
        ("attachment_quota_mb", _("Enter a number of megabytes from %(min)s to %(max)s.",
                                  min=LIMITS["attachment_quota_mb"][0], max=LIMITS["attachment_quota_mb"][1])),
    ):
        if field in values and not _in_range(values[field], *LIMITS[field]):
            errors[field] = message
    if "panel_attachment_max_mb" in values and not _in_range(values["panel_attachment_max_mb"], 1, max_file_mb()):
        errors["panel_attachment_max_mb"] = _("Enter a number of megabytes from %(min)s to %(max)s.",
                                              min=1, max=max_file_mb())
    if "sms_countries" in values:
        _check(values, errors, "sms_countries", _sms_countries)
    if "response_times" in values:
        _check(values, errors, "response_times", lambda v: _per_key(v, PRIORITIES, "response_times", "response_time",
                                                                     _("Enter hours from %(min)s to %(max)s.")))
    if "bulk_rates" in values:
        _check(values, errors, "bulk_rates", lambda v: _per_key(v, CHANNELS, "bulk_rates", "bulk_rate",
                                                                 _("Enter messages per minute from %(min)s to %(max)s.")))
    if "opening_week" in values:
        _check(values, errors, "opening_week", _opening_week)
    if "closed_days" in values:
        _check(values, errors, "closed_days", _closed_days)
    if errors:
        raise ValidationFailed({name: _named(name, message) for name, message in errors.items()})
    return values


def _named(name: str, message: str) -> str:
    """The message with the setting's name in front, so that it is clear also away from its field (API, CLI)."""
    field, _dot, key = name.partition(".")
    label = SETTING_LABELS.get(field)
    if label is None:
        return message
    if key:
        part = WEEKDAY_LABELS[int(key)] if key.isdigit() else {**PRIORITY_LABELS, **CHANNEL_LABELS}.get(key, key)
        label = f"{label}, {part}"
    return _("%(setting)s: %(problem)s", setting=label, problem=message)


def max_file_mb() -> int:
    """The largest panel file size the owner may choose: the upload limit of one file, in whole MB."""
    return max(1, max_bytes() // MB)


def _in_range(value, lowest: int, highest: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lowest <= value <= highest


def _check(values: dict, errors: dict, field: str, clean) -> None:
    """Replace values[field] by clean(value); a ValidationFailed's messages go into `errors`."""
    try:
        values[field] = clean(values[field])
    except ValidationFailed as exc:
        errors.update(exc.fields)


def _sms_countries(raw) -> list[str]:
    """Region codes ("PL, de" or a list) as a sorted list of upper-case codes phonenumbers knows."""
    codes = raw.replace(";", ",").split(",") if isinstance(raw, str) else list(raw or [])
    codes = sorted({str(code).strip().upper() for code in codes if str(code).strip()})
    unknown = [code for code in codes if code not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValidationFailed({"sms_countries": _("Not a country code: %(codes)s. Use two letters, like PL or DE.",
                                                   codes=", ".join(unknown))})
    if not codes or len(codes) > MAX_SMS_COUNTRIES:
        raise ValidationFailed({"sms_countries": _("Enter from 1 to %(max)s country codes, like PL.",
                                                   max=MAX_SMS_COUNTRIES)})
    return codes


def _per_key(raw, keys, field: str, limit: str, message: str) -> dict:
    """A number for each of `keys`, each within LIMITS[limit]; errors are named "field.key"."""
    lowest, highest = LIMITS[limit]
    raw = raw if isinstance(raw, dict) else {}
    errors = {f"{field}.{key}": message % {"min": lowest, "max": highest}
              for key in keys if not _in_range(raw.get(key), lowest, highest)}
    if errors:
        raise ValidationFailed(errors)
    return {key: raw[key] for key in keys}


def _opening_week(raw) -> list | None:
    """Seven days from Monday, each None (closed) or (open, close) as HH:MM, opening before closing; a close of
    24:00 means midnight. A week with every day closed is stored as None: no hours set."""
    days = list(raw or [])
    if raw is None or not any(days):
        return None
    if len(days) != WEEKDAYS:
        raise ValidationFailed({"opening_week": _("Give the hours of all seven days.")})
    week, errors = [], {}
    for weekday, hours in enumerate(days):
        if not hours:
            week.append(None)
            continue
        try:
            opens, closes = (str(part).strip() for part in hours)
            opening, closing = parse_hour(opens), parse_hour(closes)
            if opening is None or (closing is not None and closing <= opening):
                raise ValueError
        except (TypeError, ValueError):
            errors[f"opening_week.{weekday}"] = _("Enter an opening time before the closing time, like 9:00 and "
                                                  "17:00 (closing at most %(end)s).", end=END_OF_DAY)
            continue
        week.append([opening.strftime("%H:%M"), END_OF_DAY if closing is None else closing.strftime("%H:%M")])
    if errors:
        raise ValidationFailed(errors)
    return week


def _closed_days(raw) -> list[str]:
    """Dates (ISO text, one per line or comma, or a list) as a sorted list of distinct ISO dates."""
    items = raw.replace(",", "\n").split() if isinstance(raw, str) else list(raw or [])
    days, bad = set(), []
    for item in items:
        try:
            days.add(item if isinstance(item, date) else date.fromisoformat(str(item).strip()))
        except ValueError:
            bad.append(str(item)[:20])
    if bad:
        raise ValidationFailed({"closed_days": _("Not a date: %(value)s. Use YYYY-MM-DD.", value=", ".join(bad[:5]))})
    if len(days) > MAX_CLOSED_DAYS:
        raise ValidationFailed({"closed_days": _("At most %(max)s closed days.", max=MAX_CLOSED_DAYS)})
    return [day.isoformat() for day in sorted(days)]
