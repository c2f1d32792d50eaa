"""The owner's numbers: threads opened and closed per day, response and closing times, the backlog by status."""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select

from ..extensions import db
from ..models import Shop, Thread, User, utcnow
from ..models.conversations import THREAD_STATUSES
from .inbox import live_threads

DAYS = 30
# The chart's drawing box in SVG user units; the template scales it to the page's width.
CHART_WIDTH, CHART_HEIGHT, CHART_TOP, CHART_BOTTOM, CHART_LEFT = 720, 240, 16, 24, 36


@dataclass
class Day:
    day: date
    opened: int
    closed: int


@dataclass
class Bar:
    x: float
    y: float
    height: float
    day: date
    value: int


@dataclass
class Chart:
    """Bars for opened and closed threads per day, already placed in the SVG's coordinates."""

    opened: list[Bar]
    closed: list[Bar]
    bar_width: float
    top_value: int
    labels: list[tuple[float, date]]  # every fifth day under the axis
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    left: int = CHART_LEFT
    baseline: int = CHART_HEIGHT - CHART_BOTTOM
    top: int = CHART_TOP


@dataclass
class Times:
    """Median minutes to the first answer and to closing, and how many threads each median is of."""

    first_response: timedelta | None
    responded: int
    close: timedelta | None
    closed: int


@dataclass
class Stats:
    days: list[Day]
    chart: Chart
    overall: Times
    by_staff: list[tuple[str, Times]]
    by_channel: list[tuple[str, Times]]
    backlog: dict[str, int]


def shop_stats(now: datetime | None = None) -> Stats:
    """The numbers of the last 30 days in the shop's time zone, and the backlog as it stands."""
    now = now or utcnow()
    zone = ZoneInfo(Shop.current().timezone or "Europe/Warsaw")
    today = now.astimezone(zone).date()
    first_day = today - timedelta(days=DAYS - 1)
    since = datetime.combine(first_day, datetime.min.time(), zone)
    # One bounded read: only threads opened or closed in the window, only the columns the numbers need.
    rows = db.session.execute(
        live_threads().with_only_columns(
            Thread.created_at, Thread.first_response_at, Thread.closed_at, Thread.source_channel, Thread.assignee_id
        ).where(or_(Thread.created_at >= since, Thread.closed_at >= since))
    ).all()
    opened, closed = Counter(), Counter()
    for row in rows:
        if row.created_at >= since:
            opened[row.created_at.astimezone(zone).date()] += 1
        if row.closed_at is not None and row.closed_at >= since:
            closed[row.closed_at.astimezone(zone).date()] += 1
    days = [Day(d, opened[d], closed[d]) for d in (first_day + timedelta(days=n) for n in range(DAYS))]

    recent = [row for row in rows if row.created_at >= since]
    names = dict(db.session.execute(select(User.id, User.name)).all())
    by_staff, by_channel = defaultdict(list), defaultdict(list)
    for row in recent:
        by_staff[row.assignee_id].append(row)
        by_channel[row.source_channel].append(row)
    backlog = dict(db.session.execute(
        live_threads().with_only_columns(Thread.status, func.count()).group_by(Thread.status)
    ).all())
    return Stats(
        days=days,
        chart=_chart(days),
        overall=_times(recent),
        by_staff=sorted(((names.get(user_id, ""), _times(group)) for user_id, group in by_staff.items()),
                        key=lambda item: (item[0] == "", item[0])),
        by_channel=sorted((channel, _times(group)) for channel, group in by_channel.items()),
        backlog={status: backlog.get(status, 0) for status in THREAD_STATUSES},
    )


def _times(rows) -> Times:
    responses = [row.first_response_at - row.created_at for row in rows if row.first_response_at]
    closings = [row.closed_at - row.created_at for row in rows if row.closed_at]
    return Times(
        first_response=statistics.median(responses) if responses else None, responded=len(responses),
        close=statistics.median(closings) if closings else None, closed=len(closings),
    )


def _chart(days: list[Day]) -> Chart:
    top_value = max([1] + [max(d.opened, d.closed) for d in days])
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    slot = (CHART_WIDTH - CHART_LEFT) / len(days)
    bar_width = slot * 0.38
    baseline = CHART_HEIGHT - CHART_BOTTOM

    def bar(index: int, offset: float, day: date, value: int) -> Bar:
        height = plot_height * value / top_value
        return Bar(x=round(CHART_LEFT + index * slot + offset, 2), y=round(baseline - height, 2),
                   height=round(height, 2), day=day, value=value)

    return Chart(
        opened=[bar(i, slot * 0.1, d.day, d.opened) for i, d in enumerate(days)],
        closed=[bar(i, slot * 0.1 + bar_width, d.day, d.closed) for i, d in enumerate(days)],
        bar_width=round(bar_width, 2),
        top_value=top_value,
        labels=[(round(CHART_LEFT + i * slot + slot / 2, 2), d.day) for i, d in enumerate(days) if i % 5 == 0],
    )
