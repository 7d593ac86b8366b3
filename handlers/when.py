"""A moment typed by a user, read in their time zone: `2026-12-24 09:00`, `24.12.2026 9:00`,
`tomorrow 09:00` (`morgen`), `today 18:30` (`heute`) or `09:00` (the next 09:00)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_AHEAD = timedelta(days=366)
_TIME = r"(?P<hour>\d{1,2})[:.](?P<minute>\d{2})"
_FORMS = (
    re.compile(rf"(?P<year>\d{{4}})-(?P<month>\d{{1,2}})-(?P<day>\d{{1,2}})(?:\s+|T){_TIME}",
               re.IGNORECASE),
    re.compile(rf"(?P<day>\d{{1,2}})\.(?P<month>\d{{1,2}})\.(?P<year>\d{{4}}),?\s+{_TIME}"),
    re.compile(rf"(?:(?P<word>today|heute|tomorrow|morgen)\s+)?{_TIME}", re.IGNORECASE),
)
_DAYS = {"today": 0, "heute": 0, "tomorrow": 1, "morgen": 1}


class WhenError(ValueError):
    """A moment that cannot be used; `reason` is unreadable, past, far or missing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_when(text: str, *, zone: str, now: datetime) -> datetime:
    """Return the moment the text means in the zone, in UTC; raise WhenError if it cannot be
    read, does not exist there (a clock change skips it), has passed or is over a year
    ahead."""
    tz = ZoneInfo(zone)
    local_now = now.astimezone(tz)
    found = next((m for form in _FORMS if (m := form.fullmatch(text.strip()))), None)
    if found is None:
        raise WhenError("unreadable")
    parts = found.groupdict()
    try:
        clock = time(int(parts["hour"]), int(parts["minute"]))
        if parts.get("year"):
            day = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
        else:
            word = (parts.get("word") or "").lower()
            day = local_now.date() + timedelta(days=_DAYS.get(word, 0))
    except ValueError:  # 25:00, 31.02.
        raise WhenError("unreadable") from None
    moment = datetime.combine(day, clock, tzinfo=tz)
    if not parts.get("year") and not parts.get("word") and moment <= local_now:
        moment = datetime.combine(day + timedelta(days=1), clock, tzinfo=tz)  # the next one
    if moment.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != moment.replace(tzinfo=None):
        raise WhenError("missing")  # inside the hour a clock change skips
    if moment <= local_now:
        raise WhenError("past")
    if moment - local_now > MAX_AHEAD:
        raise WhenError("far")
    return moment.astimezone(UTC)
