"""Format minor-unit amounts for descriptions and hosted pages."""

from __future__ import annotations

_SYMBOLS = {"eur": "€", "usd": "$", "gbp": "£", "chf": "CHF ", "jpy": "¥"}
_ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp"}


def format_amount(amount: int, currency: str) -> str:
    """Return e.g. `€9.00` for 900 EUR or `-€1.50` for -150."""
    currency = currency.lower()
    sign = "-" if amount < 0 else ""
    symbol = _SYMBOLS.get(currency, currency.upper() + " ")
    if currency in _ZERO_DECIMAL:
        return f"{sign}{symbol}{abs(amount)}"
    return f"{sign}{symbol}{abs(amount) // 100}.{abs(amount) % 100:02d}"


def interval_label(price: dict[str, object]) -> str:
    """Return `month`, `year` or `3 months` for a recurring price."""
    recurring = price.get("recurring")
    if not isinstance(recurring, dict):
        return "once"
    count, interval = int(recurring.get("interval_count") or 1), str(recurring["interval"])
    return interval if count == 1 else f"{count} {interval}s"
