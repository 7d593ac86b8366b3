"""The catalog file (SPEC §4) and its prices resolved against Stripe."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from billing.errors import CatalogError
from billing.gateway import StripeGateway

_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")
_LOOKUP = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
_QUIET = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Business:
    """Who sells: shown in greetings and on the return page."""

    name: str
    support_url: str | None = None
    logo_url: str | None = None
    accent_color: str | None = None


@dataclass(frozen=True)
class Plan:
    """A plan of the catalog; its rank is its position (later is higher)."""

    key: str
    name: str
    rank: int
    prices: tuple[str, ...]
    description: str = ""
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    """What the business sells and how changes, cancels and notices behave."""

    business: Business
    plans: tuple[Plan, ...]
    team_prices: tuple[str, ...] = ()
    min_seats: int = 1
    max_seats: int = 500
    downgrade: str = "period_end"
    save_coupon: str | None = None
    pause_days: tuple[int, ...] = ()
    renewal_days: tuple[int, ...] = (7, 1)
    card_expiry_days: int = 30
    quiet_hours: str | None = None
    renewal_receipts: bool = False  # a "payment received" notice after every paid renewal

    def plan(self, key: str) -> Plan | None:
        """Return the plan with this key, if the catalog has it."""
        return next((p for p in self.plans if p.key == key), None)

    def lookup_keys(self) -> list[str]:
        """Return every price lookup key the catalog names."""
        keys = [k for p in self.plans for k in p.prices] + list(self.team_prices)
        return list(dict.fromkeys(keys))


@dataclass(frozen=True)
class Price:
    """A Stripe price as Portier shows it; amounts in minor units."""

    id: str
    lookup_key: str
    unit_amount: int
    currency: str
    interval: str
    interval_count: int
    product_name: str


@dataclass
class PriceBook:
    """The catalog's lookup keys resolved to Stripe prices."""

    by_key: dict[str, Price] = field(default_factory=dict)

    def by_id(self, price_id: str) -> Price | None:
        """Return the catalog price with this Stripe id."""
        return next((p for p in self.by_key.values() if p.id == price_id), None)


def _str(table: dict[str, Any], name: str, where: str, required: bool = True) -> str | None:
    value = table.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{where}.{name}: expected a non-empty string")
    return value


def _str_list(table: dict[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = table.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{where}.{name}: expected a list of strings")
    return tuple(value)


def _int_list(table: dict[str, Any], name: str, where: str,
              default: tuple[int, ...]) -> tuple[int, ...]:
    value = table.get(name, list(default))
    if not isinstance(value, list) or not all(isinstance(v, int) and v > 0 for v in value):
        raise CatalogError(f"{where}.{name}: expected a list of positive whole numbers")
    return tuple(value)


def _int(table: dict[str, Any], name: str, where: str, default: int) -> int:
    value = table.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CatalogError(f"{where}.{name}: expected a whole number")
    return value


def parse_quiet_hours(value: str) -> tuple[time, time]:
    """Return the start and end of a daily quiet window written `HH:MM-HH:MM` (may wrap)."""
    match = _QUIET.match(value.strip())
    if match is None:
        raise CatalogError(f"[notices].quiet_hours: {value!r} is not HH:MM-HH:MM")
    start = time(int(match[1]), int(match[2]))
    end = time(int(match[3]), int(match[4]))
    if start == end:
        raise CatalogError("[notices].quiet_hours: start and end must differ")
    return start, end


def _quiet(table: dict[str, Any]) -> str | None:
    value = _str(table, "quiet_hours", "[notices]", required=False)
    if value is not None:
        parse_quiet_hours(value)
    return value


def _bool(table: dict[str, Any], name: str, where: str, default: bool) -> bool:
    value = table.get(name, default)
    if not isinstance(value, bool):
        raise CatalogError(f"{where}.{name}: expected true or false")
    return value


def _table(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise CatalogError(f"[{name}]: expected a table")
    return value


def _plan(raw: Any, rank: int) -> Plan:
    where = f"plans[{rank}]"
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: expected a table")
    key = _str(raw, "key", where) or ""
    if not _KEY.match(key):
        raise CatalogError(f"{where}.key: {key!r} must be 1-24 of a-z, 0-9, _ or -")
    prices = _str_list(raw, "prices", where)
    if not prices:
        raise CatalogError(f"{where}.prices: name at least one price lookup key")
    for lookup in prices:
        if not _LOOKUP.match(lookup):
            raise CatalogError(f"{where}.prices: {lookup!r} is not a valid lookup key")
    return Plan(key=key, name=_str(raw, "name", where) or key, rank=rank, prices=prices,
                description=_str(raw, "description", where, required=False) or "",
                features=_str_list(raw, "features", where))


def parse_catalog(data: dict[str, Any]) -> Catalog:
    """Build a Catalog from the parsed TOML, naming the first bad entry."""
    business = data.get("business")
    if not isinstance(business, dict):
        raise CatalogError("[business]: missing")
    raw_plans = data.get("plans")
    if not isinstance(raw_plans, list) or not raw_plans:
        raise CatalogError("[[plans]]: at least one plan is needed")
    plans = tuple(_plan(raw, rank) for rank, raw in enumerate(raw_plans))
    keys = [p.key for p in plans]
    if len(set(keys)) != len(keys):
        raise CatalogError("[[plans]]: plan keys must be unique")
    team, changes = _table(data, "team"), _table(data, "changes")
    cancel, notices = _table(data, "cancel"), _table(data, "notices")
    min_seats = _int(team, "min_seats", "[team]", 1)
    max_seats = _int(team, "max_seats", "[team]", 500)
    if min_seats < 1 or max_seats < min_seats:
        raise CatalogError("[team]: expected 1 <= min_seats <= max_seats")
    downgrade = changes.get("downgrade", "period_end")
    if downgrade not in ("now", "period_end"):
        raise CatalogError("[changes].downgrade: expected 'now' or 'period_end'")
    return Catalog(
        business=Business(
            name=_str(business, "name", "[business]") or "",
            support_url=_str(business, "support_url", "[business]", required=False),
            logo_url=_str(business, "logo_url", "[business]", required=False),
            accent_color=_str(business, "accent_color", "[business]", required=False)),
        plans=plans,
        team_prices=_str_list(team, "prices", "[team]"),
        min_seats=min_seats,
        max_seats=max_seats,
        downgrade=downgrade,
        save_coupon=_str(cancel, "save_coupon", "[cancel]", required=False),
        pause_days=_int_list(cancel, "pause_days", "[cancel]", ()),
        renewal_days=_int_list(notices, "renewal_days", "[notices]", (7, 1)),
        card_expiry_days=_int(notices, "card_expiry_days", "[notices]", 30),
        quiet_hours=_quiet(notices),
        renewal_receipts=_bool(notices, "renewal_receipts", "[notices]", False),
    )


def load_catalog(path: Path) -> Catalog:
    """Read and validate the catalog file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"{path}: catalog file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(f"{path}: not valid TOML ({error})") from None
    return parse_catalog(data)


async def resolve_prices(gateway: StripeGateway, catalog: Catalog) -> PriceBook:
    """Resolve every lookup key of the catalog to a recurring Stripe price."""
    wanted = catalog.lookup_keys()
    found = {p.lookup_key: p for p in await gateway.prices_by_lookup_keys(wanted) if p.lookup_key}
    missing = [k for k in wanted if k not in found]
    if missing:
        raise CatalogError("unknown price lookup key(s): " + ", ".join(missing))
    book = PriceBook()
    for key in wanted:
        price = found[key]
        if price.recurring is None or price.unit_amount is None:
            raise CatalogError(f"price {key}: must be a recurring price with a unit amount")
        product = price.product
        book.by_key[key] = Price(
            id=price.id, lookup_key=key, unit_amount=price.unit_amount, currency=price.currency,
            interval=price.recurring.interval, interval_count=price.recurring.interval_count,
            product_name=getattr(product, "name", "") or "")
    return book
