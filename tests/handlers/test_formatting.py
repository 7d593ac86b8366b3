"""Money and dates through Babel, in the user's locale and time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handlers.formatting import day, money


@pytest.mark.parametrize(("amount", "currency", "locale", "expected"), [
    (123456, "eur", "en", "€1,234.56"),
    (123456, "EUR", "de", "1.234,56\xa0€"),
    (2900, "eur", "de", "29,00\xa0€"),
    (2900, "usd", "en", "$29.00"),
    (500, "jpy", "en", "¥500"),  # no minor unit: 500 yen, not 5
])
def test_money_in_the_users_locale(amount: int, currency: str, locale: str,
                                   expected: str) -> None:
    """It formats minor units with the currency's precision, the way the locale writes it."""
    assert money(amount, currency, locale) == expected


def test_days_read_naturally_in_each_language() -> None:
    """It writes a day as English and German readers expect: Mar 12, 2026 and 12. März 2026."""
    moment = datetime(2026, 3, 12, 12, 0, tzinfo=UTC)
    assert day(moment, "en") == "Mar 12, 2026"
    assert day(moment, "de") == "12. März 2026"


def test_day_follows_the_users_time_zone() -> None:
    """It names the calendar day in the user's time zone, not in UTC."""
    late = datetime(2026, 3, 12, 23, 30, tzinfo=UTC)
    assert day(late, "de", "Europe/Berlin") == "13. März 2026"
    assert day(late, "en", "America/New_York") == "Mar 12, 2026"
