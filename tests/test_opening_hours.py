"""Business time: response times count only the hours the shop is open, in its own time zone."""
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from app.messaging.due import ResponseRules
from app.opening_hours import OpeningHours, public_holiday

WARSAW = ZoneInfo("Europe/Warsaw")
WEEKDAYS_9_TO_17 = [("09:00", "17:00")] * 5 + [None, None]


def hours(week=WEEKDAYS_9_TO_17, closed=()):
    return OpeningHours.from_settings(week, "Europe/Warsaw", closed)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=WARSAW)


def test_friday_evening_mail_is_due_on_monday():
    # Friday 4 December 2026, 19:00: closed until Monday 9:00; 8 open hours end Monday 17:00.
    due = hours().add(local(2026, 12, 4, 19, 0), timedelta(hours=8))
    assert due == local(2026, 12, 7, 17, 0)
    assert hours().add(local(2026, 12, 4, 16, 0), timedelta(hours=2)) == local(2026, 12, 7, 10, 0)


def test_the_result_is_in_the_form_of_the_start():
    start = local(2026, 12, 7, 10, 0).astimezone(UTC)
    due = hours().add(start, timedelta(hours=1))
    assert due.tzinfo == UTC and due == local(2026, 12, 7, 11, 0)


def test_polish_public_holidays_are_closed():
    assert public_holiday(datetime(2026, 11, 11).date()) is not None
    # Tuesday 10 November 16:00 + 4 h: one hour on Tuesday, Wednesday 11 November is Independence Day.
    assert hours().add(local(2026, 11, 10, 16, 0), timedelta(hours=4)) == local(2026, 11, 12, 12, 0)
    # Easter Monday, 6 April 2026: a mail on Easter Saturday is due on Tuesday.
    assert hours().add(local(2026, 4, 4, 12, 0), timedelta(hours=1)) == local(2026, 4, 7, 10, 0)


def test_the_owners_closed_days_are_closed():
    shop = hours(closed=["2026-12-07", "2026-12-08"])
    assert shop.add(local(2026, 12, 4, 19, 0), timedelta(hours=1)) == local(2026, 12, 9, 10, 0)


def test_a_day_without_opening_hours_is_skipped():
    week = [("09:00", "17:00"), None, ("10:00", "14:00"), None, None, None, None]
    shop = hours(week)
    # Monday 16:00 + 3 h: one hour on Monday, Tuesday is closed, two hours on Wednesday from 10:00.
    assert shop.add(local(2026, 12, 7, 16, 0), timedelta(hours=3)) == local(2026, 12, 9, 12, 0)


def test_a_due_time_crosses_midnight_into_the_next_opening():
    # Open until midnight: Monday 23:00 + 2 h = one hour until midnight, then Tuesday from 9:00.
    week = [("09:00", "24:00")] * 7
    assert hours(week).add(local(2026, 12, 7, 23, 0), timedelta(hours=2)) == local(2026, 12, 8, 10, 0)
    # Ends exactly at midnight.
    assert hours(week).add(local(2026, 12, 7, 23, 0), timedelta(hours=1)) == local(2026, 12, 8, 0, 0)
    # After closing, late in the evening: the next day's opening.
    assert hours().add(local(2026, 12, 7, 23, 30), timedelta(hours=1)) == local(2026, 12, 8, 10, 0)


def test_the_clock_change_weekends_count_open_hours_in_local_time():
    every_day = [("09:00", "17:00")] * 7
    # Clocks go forward on Sunday 29 March 2026: Saturday 16:00 + 2 h is Sunday 10:00 summer time.
    due = hours(every_day).add(local(2026, 3, 28, 16, 0), timedelta(hours=2))
    assert due == local(2026, 3, 29, 10, 0)
    assert due.astimezone(UTC) == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    # Clocks go back on Sunday 25 October 2026: Sunday is still 9:00 to 17:00 local, eight open hours.
    due = hours(every_day).add(local(2026, 10, 24, 16, 0), timedelta(hours=9))
    assert due == local(2026, 10, 25, 17, 0)
    assert due.astimezone(UTC) == datetime(2026, 10, 25, 16, 0, tzinfo=UTC)  # winter time again: UTC+1
    # Across the weekend of a working week: Friday 27 March 16:00 + 2 h = Monday 30 March 10:00 CEST.
    assert hours().add(local(2026, 3, 27, 16, 0), timedelta(hours=2)) == local(2026, 3, 30, 10, 0)


def test_no_open_time_at_all_falls_back_to_clock_time():
    shop = OpeningHours.from_settings([None] * 7, "Europe/Warsaw")
    start = local(2026, 12, 7, 10, 0)
    assert shop.add(start, timedelta(hours=8)) == start + timedelta(hours=8)
    assert OpeningHours.from_settings(None, "Europe/Warsaw") is None


def test_opening_days_for_reminders():
    # Thursday 10 December + 2 opening days = Monday 14 December, same local time.
    assert hours().add_open_days(local(2026, 12, 10, 11, 0), 2) == local(2026, 12, 14, 11, 0)
    # 23 December + 1 = 28 December (24-26 December are holidays, 27 is a Sunday).
    assert hours().add_open_days(local(2026, 12, 23, 9, 0), 1) == local(2026, 12, 28, 9, 0)


def test_described_in_the_shops_language():
    week = [("09:00", "18:00")] * 5 + [("10:00", "14:00"), None]
    assert hours(week).describe("en") == "Mon–Fri 9:00–18:00, Sat 10:00–14:00"
    assert hours(week).describe("pl") == "pon.–pt. 9:00–18:00, sob. 10:00–14:00"


def test_unreadable_stored_hours_give_clock_hours_instead_of_an_error():
    for week, zone, closed in ((["nonsense"] * 7, "Europe/Warsaw", []), ([["9", "17"]] * 7, "Europe/Warsaw", []),
                               ([["09:00", "17:00"]] * 7, "Mars/Olympus", []),
                               ([["09:00", "17:00"]] * 7, "Europe/Warsaw", ["jutro"])):
        assert ResponseRules.of({"normal": 8}, week, zone, closed).opening_hours is None
    assert ResponseRules.of(None, [["09:00", "17:00"]] * 7, "Europe/Warsaw", None).opening_hours is not None
