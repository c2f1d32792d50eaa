"""The audit log as owners read it: who did what and when, filtered by person, action, time and target."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import Select, or_, select

from ..extensions import db
from ..models import AuditEvent, Shop
from ..request_input import iso_date, whole_number


@dataclass(frozen=True)
class AuditQuery:
    """The filters, as the page's form and URL carry them; empty means "any"."""

    user: str = ""  # a user's id, or "none" for machines, customers and strangers
    action: str = ""  # an action ("customer.erase") or an area ("customer": every customer.* action)
    since: str = ""  # a day (YYYY-MM-DD) in the shop's time zone, inclusive
    until: str = ""  # likewise, inclusive
    target_type: str = ""  # a table name ("customers")
    target_id: str = ""

    @classmethod
    def from_args(cls, args) -> "AuditQuery":
        return cls(**{name: (args.get(name) or "").strip()[:64] for name in cls.__dataclass_fields__})

    def url_args(self) -> dict:
        """The filters that are set, for links to other pages of the same list."""
        return {name: value for name, value in asdict(self).items() if value}


def audit_events(query: AuditQuery) -> tuple[Select, dict[str, str]]:
    """The audit events `query` selects, newest first, and the problems with its filters by field name (a filter
    that cannot be read is left out and named, never guessed)."""
    statement = select(AuditEvent).order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    problems: dict[str, str] = {}
    if query.user == "none":
        statement = statement.where(AuditEvent.user_id.is_(None))
    elif query.user:
        try:
            statement = statement.where(AuditEvent.user_id == whole_number(query.user))
        except ValueError:
            problems["user"] = _("No such person.")
    if query.action:
        statement = statement.where(or_(AuditEvent.action == query.action,
                                        AuditEvent.action.startswith(query.action + ".", autoescape=True)))
    zone = ZoneInfo(Shop.current().timezone or "Europe/Warsaw")
    for name, day, shift in (("since", query.since, 0), ("until", query.until, 1)):
        if not day:
            continue
        try:
            moment = datetime.combine(iso_date(day) + timedelta(days=shift), time.min, zone)
        except ValueError:
            problems[name] = _("Not a date: %(value)s", value=day)
            continue
        statement = statement.where(AuditEvent.created_at >= moment if name == "since" else
                                    AuditEvent.created_at < moment)
    if query.target_type:
        statement = statement.where(AuditEvent.target_type == query.target_type)
    if query.target_id:
        try:
            statement = statement.where(AuditEvent.target_id == whole_number(query.target_id))
        except ValueError:
            problems["target_id"] = _("The target's number must be a whole number.")
    return statement, problems


def recorded_actions() -> list[str]:
    """Every action the log holds, sorted, for the filter's list."""
    return list(db.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


def recorded_target_types() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.target_type).where(AuditEvent.target_type.is_not(None))
                                   .distinct().order_by(AuditEvent.target_type)))
