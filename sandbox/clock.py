"""Calendar arithmetic for billing periods (UTC, month ends clamped like Stripe)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

DAY = 86400


def add_interval(ts: int, interval: str, count: int = 1, anchor_day: int | None = None) -> int:
    """Return `ts` moved forward by `count` intervals, keeping the anchor's day of month."""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    if interval == "day":
        return ts + count * DAY
    if interval == "week":
        return ts + count * 7 * DAY
    months = count * (12 if interval == "year" else 1)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(anchor_day or moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def day_of(ts: int) -> int:
    """Return the UTC day of month of a timestamp."""
    return datetime.fromtimestamp(ts, tz=UTC).day


def date_label(ts: int) -> str:
    """Return a short human date such as `26 Nov 2026`."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%d %b %Y")


def as_days(seconds: int) -> timedelta:
    """Return seconds as a timedelta (for messages)."""
    return timedelta(seconds=seconds)
