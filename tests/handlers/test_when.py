"""Moments typed by an admin, read in their time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handlers.when import WhenError, parse_when

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)  # 11:00 in Berlin


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-24 09:00", datetime(2026, 12, 24, 8, 0, tzinfo=UTC)),
    ("2026-12-24T09:00", datetime(2026, 12, 24, 8, 0, tzinfo=UTC)),
    ("24.12.2026 9:00", datetime(2026, 12, 24, 8, 0, tzinfo=UTC)),
    ("tomorrow 09:00", datetime(2026, 12, 4, 8, 0, tzinfo=UTC)),
    ("Morgen 9.30", datetime(2026, 12, 4, 8, 30, tzinfo=UTC)),
    ("today 18:30", datetime(2026, 12, 3, 17, 30, tzinfo=UTC)),
    ("12:00", datetime(2026, 12, 3, 11, 0, tzinfo=UTC)),  # still ahead today
    ("09:00", datetime(2026, 12, 4, 8, 0, tzinfo=UTC)),  # passed today: tomorrow's
    ("2027-07-01 09:00", datetime(2027, 7, 1, 7, 0, tzinfo=UTC)),  # summer time: UTC+2
])
def test_a_moment_is_read_in_the_zone(text: str, expected: datetime) -> None:
    """Dates, today/tomorrow (English or German) and a bare time, in Berlin's time."""
    assert parse_when(text, zone="Europe/Berlin", now=NOW) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("2026-12-01 09:00", "past"), ("today 09:00", "past"), ("2028-01-01 09:00", "far"),
    ("25:00", "unreadable"), ("31.02.2027 09:00", "unreadable"), ("next week", "unreadable"),
    ("2027-03-28 02:30", "missing"),  # the clocks go from 02:00 to 03:00 that night
])
def test_a_moment_that_cannot_be_used_says_why(text: str, reason: str) -> None:
    """Past, over a year ahead, unreadable, or skipped by a clock change."""
    with pytest.raises(WhenError) as raised:
        parse_when(text, zone="Europe/Berlin", now=NOW)
    assert raised.value.reason == reason
