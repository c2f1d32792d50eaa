"""The shop's own details and settings, and the rules for changing them."""
from __future__ import annotations

import re
from zoneinfo import available_timezones

from flask_babel import gettext as _
from sqlalchemy import select

from .customers import normalize_email
from .errors import ValidationFailed
from .extensions import db
from .fields import clean_line, clean_text, gather
from .models import Shop, ShopSlug, User
from .models.audit import record
from .models.users import LOCALES

SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}[a-z0-9]")
MAX_UNDO_SECONDS = 300
MAX_SMS_REPLY_WINDOW_DAYS = 90
# The shop's free texts: the name and phone go into mail headers and one-line layouts; the address and opening hours
# are shown on several lines.
TEXTS = {"name": (clean_line, 200), "phone": (clean_line, 32), "address": (clean_text, 500),
         "opening_hours": (clean_text, 1_000), "receipt_terms": (clean_text, 3_000)}
SHOP_FIELDS = ("name", "slug", "address", "phone", "opening_hours", "receipt_terms", "locale", "timezone",
               "notification_email", "undo_seconds", "sms_reply_window_days", "merge_notifies_customer")


def update_shop(shop: Shop, *, actor: User | str | None = None, **values) -> list[str]:
    """Change the given details of the shop (names from SHOP_FIELDS) and return the fields that changed.

    Refuses an empty name, a slug that is not 2-64 lowercase letters, digits and inner hyphens, an
    unknown language or time zone, a bad notification e-mail, undo seconds outside 0-300, and an SMS reply
    window outside 1-90 days.
    A replaced slug is kept in ShopSlug, so old panel links and receiving addresses keep working.
    """
    unknown = set(values) - set(SHOP_FIELDS)
    if unknown:
        raise TypeError(f"not shop settings: {sorted(unknown)}")
    values = _checked_shop_values(values)

    changed = [field for field, value in values.items() if getattr(shop, field) != value]
    if "slug" in changed and db.session.scalar(select(ShopSlug).where(ShopSlug.slug == shop.slug)) is None:
        db.session.add(ShopSlug(slug=shop.slug))
    for field in changed:
        setattr(shop, field, values[field])
    if changed:
        record("settings.shop", target=shop, changed=changed, by=actor)
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
    if "undo_seconds" in values and not (
        isinstance(values["undo_seconds"], int) and 0 <= values["undo_seconds"] <= MAX_UNDO_SECONDS
    ):
        errors["undo_seconds"] = _("Enter a number of seconds from 0 to %(max)s.", max=MAX_UNDO_SECONDS)
    days = values.get("sms_reply_window_days", 1)
    if not (isinstance(days, int) and 1 <= days <= MAX_SMS_REPLY_WINDOW_DAYS):
        errors["sms_reply_window_days"] = _("Enter a number of days from 1 to %(max)s.", max=MAX_SMS_REPLY_WINDOW_DAYS)
    if errors:
        raise ValidationFailed(errors)
    return values
