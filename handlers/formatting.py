"""Money and dates for people: through Babel, in the user's locale and time zone."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from babel.numbers import format_currency, format_decimal, get_currency_precision


# Babel reads and applies CLDR patterns on every call; the same few amounts and days come back
# on every `/plan`, so their text is kept (the functions are pure).
@lru_cache(maxsize=4096)
def money(amount: int, currency: str, locale: str) -> str:
    """Format an amount in minor units, e.g. 123456 EUR → `€1,234.56` or `1.234,56 €`."""
    code = currency.upper()
    value = Decimal(amount).scaleb(-get_currency_precision(code))
    return format_currency(value, code, locale=locale)


@lru_cache(maxsize=4096)
def day(moment: datetime, locale: str, zone: str = "UTC") -> str:
    """Format the day of a moment in the user's time zone: `Mar 12, 2026`, `12. März 2026`."""
    # A CLDR skeleton (year, abbreviated month, day) lets each locale order and punctuate it.
    return format_skeleton("yMMMd", moment, tzinfo=ZoneInfo(zone), locale=locale)


def clock(moment: datetime, locale: str, zone: str = "UTC") -> str:
    """Format the time of day of a moment in the user's time zone: `09:00`."""
    return format_skeleton("Hm", moment, tzinfo=ZoneInfo(zone), locale=locale)


def weekday(moment: datetime, locale: str, zone: str = "UTC") -> str:
    """Format the day of a moment with its weekday: `Thu, Dec 24, 2026`, `Do., 24. Dez. 2026`."""
    return format_skeleton("yMMMEd", moment, tzinfo=ZoneInfo(zone), locale=locale)


def number(value: int, locale: str) -> str:
    """Format a count: `1,000`, `1.000`."""
    return format_decimal(value, locale=locale)
