"""Money and dates for people: through Babel, in the user's locale and time zone."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_currency, get_currency_precision


def money(amount: int, currency: str, locale: str) -> str:
    """Format an amount in minor units, e.g. 123456 EUR → `€1,234.56` or `1.234,56 €`."""
    code = currency.upper()
    value = Decimal(amount).scaleb(-get_currency_precision(code))
    return format_currency(value, code, locale=locale)


def day(moment: datetime, locale: str, zone: str = "UTC") -> str:
    """Format the calendar day of a moment in the user's time zone."""
    return format_date(moment.astimezone(ZoneInfo(zone)), format="medium", locale=locale)
