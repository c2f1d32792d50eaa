"""Business time: the shop's weekly opening hours, Polish public holidays and the owner's closed days.

`OpeningHours.add()` moves a moment forward by an amount of open time, so a response time of 8 hours given on
Friday evening runs out on Monday, not on Saturday morning. Days are the shop's local days (its time zone), and
hours are real elapsed hours: a shop open 9:00-17:00 has 8 open hours on the day the clocks change, too.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from babel.dates import get_day_names

HOLIDAY_COUNTRY = "PL"
WEEKDAYS = 7  # Monday is 0, as in date.weekday()
END_OF_DAY = "24:00"  # a close time: open until midnight
# How far ahead to look for open time before giving up (a week with no hours at all, a year of closed days).
SEARCH_DAYS = 800


def parse_hour(text: str) -> time | None:
    """'9:00' or '09:00' as a time; '24:00' as None (midnight at the end of the day). ValueError when not a time."""
    text = (text or "").strip()
    if text == END_OF_DAY:
        return None
    return datetime.strptime(text, "%H:%M").time()


@lru_cache(maxsize=8)
def _public_holidays(years: tuple[int, ...]) -> holidays.HolidayBase:
    return holidays.country_holidays(HOLIDAY_COUNTRY, years=years)


def public_holiday(day: date) -> str | None:
    """The name of the Polish public holiday on `day`, or None."""
    return _public_holidays((day.year,)).get(day)


@dataclass(frozen=True)
class OpeningHours:
    """When the shop is open: per weekday an (open, close) pair of 'HH:MM' texts or None (closed), in `zone`.

    Public holidays and `closed_days` (the owner's own, e.g. a holiday break) are closed whatever the weekday says.
    A close of '24:00' means open until midnight.
    """

    week: Sequence[tuple[str, str] | None]
    zone: ZoneInfo
    closed_days: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def from_settings(cls, week: Sequence | None, timezone: str | None, closed_days: Iterable[str] = ()
                      ) -> "OpeningHours | None":
        """The hours as stored on the shop (JSON), or None when the shop has not set weekly hours."""
        if not week:
            return None
        days = [tuple(entry) if entry else None for entry in list(week)[:WEEKDAYS]]
        days += [None] * (WEEKDAYS - len(days))
        return cls(days, ZoneInfo(timezone or "Europe/Warsaw"), frozenset(date.fromisoformat(d) for d in closed_days))

    def is_open_day(self, day: date) -> bool:
        return (self.week[day.weekday()] is not None and day not in self.closed_days
                and public_holiday(day) is None)

    def open_span(self, day: date) -> tuple[datetime, datetime] | None:
        """The open time of the local `day` as a pair of UTC moments, or None when the shop is closed that day."""
        if not self.is_open_day(day):
            return None
        opens, closes = self.week[day.weekday()]
        start = datetime.combine(day, parse_hour(opens), self.zone)
        close_time = parse_hour(closes)
        end = (datetime.combine(day + timedelta(days=1), time.min, self.zone) if close_time is None
               else datetime.combine(day, close_time, self.zone))
        # A wall time the clocks skip (02:30 on the spring change) is read as if the change had not happened yet;
        # converting to UTC settles it either way.
        return start.astimezone(UTC), end.astimezone(UTC)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment when `duration` of open time has passed after `start` (an aware or naive-UTC datetime).

        Closed time does not count: a start outside the hours begins at the next opening. When the shop has no
        open time at all within SEARCH_DAYS days, the plain clock time is returned, so that a broken setting never
        hides a waiting customer.
        """
        aware = start if start.tzinfo else start.replace(tzinfo=UTC)
        left = duration
        day = aware.astimezone(self.zone).date()
        for _ in range(SEARCH_DAYS):
            span = self.open_span(day)
            day += timedelta(days=1)
            if span is None or span[1] <= aware:
                continue
            begin = max(span[0], aware)
            if begin + left <= span[1]:
                return _like(start, begin + left)
            left -= span[1] - begin
        return start + duration

    def add_open_days(self, start: datetime, days: int) -> datetime:
        """The same local time `days` opening days after `start`'s day (for reminders: "in 3 opening days")."""
        aware = start if start.tzinfo else start.replace(tzinfo=UTC)
        local = aware.astimezone(self.zone)
        day, counted = local.date(), 0
        for _ in range(SEARCH_DAYS):
            if counted == days:
                break
            day += timedelta(days=1)
            counted += self.is_open_day(day)
        else:
            day = local.date() + timedelta(days=days)
        moved = datetime.combine(day, local.time().replace(tzinfo=None), self.zone)
        return _like(start, moved.astimezone(UTC))

    def describe(self, locale: str) -> str:
        """The weekly hours as a short line in `locale`, equal neighbouring days joined: 'pon.–pt. 9:00–18:00'."""
        names = get_day_names("abbreviated", locale=locale)
        groups: list[list] = []
        for weekday, hours in enumerate(self.week):
            if groups and groups[-1][2] == hours:
                groups[-1][1] = weekday
            else:
                groups.append([weekday, weekday, hours])
        parts = []
        for first, last, hours in groups:
            if hours is None:
                continue
            days = names[first] if first == last else f"{names[first]}–{names[last]}"
            parts.append(f"{days} {_short(hours[0])}–{_short(hours[1])}")
        return ", ".join(parts)


def _short(hour: str) -> str:
    return hour[1:] if hour.startswith("0") else hour


def _like(original: datetime, moment: datetime) -> datetime:
    """`moment` (aware UTC) in the form of `original`: naive UTC if it was naive."""
    return moment.replace(tzinfo=None) if original.tzinfo is None else moment.astimezone(original.tzinfo)


def opening_text(text: str | None, week: Sequence | None, timezone: str | None, locale: str) -> str:
    """What customers read as the shop's hours: the owner's own text when there is one, else the weekly hours
    described in `locale`, else nothing."""
    if text and text.strip():
        return text.strip()
    hours = OpeningHours.from_settings(week, timezone)
    return hours.describe(locale) if hours else ""
