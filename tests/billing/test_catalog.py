"""The catalog file: parsing names the bad entry; lookup keys resolve against Stripe."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from billing.catalog import Catalog, load_catalog, parse_catalog, resolve_prices
from billing.errors import CatalogError
from tests.billing.conftest import CATALOG, Shop


def _data(**changes: Any) -> dict[str, Any]:
    data = tomllib.loads(CATALOG)
    data.update(changes)
    return data


def _plan(key: str = "basic", **extra: Any) -> dict[str, Any]:
    return {"key": key, "name": key.title(), "prices": [f"{key}_monthly"], **extra}


def test_parses_the_catalog() -> None:
    """It reads business, plans in rank order, team prices and defaults."""
    catalog = parse_catalog(tomllib.loads(CATALOG))
    assert catalog.business.name == "Acme Cloud"
    assert [(p.key, p.rank) for p in catalog.plans] == [("basic", 0), ("pro", 1)]
    assert catalog.plan("pro") is not None and catalog.plan("gold") is None
    assert catalog.team_prices == ("team_seat_monthly",)
    assert catalog.downgrade == "period_end"
    assert catalog.renewal_days == (7, 1)
    assert catalog.lookup_keys() == ["basic_monthly", "basic_yearly", "pro_monthly",
                                     "pro_yearly", "team_seat_monthly"]


def test_reads_every_section() -> None:
    """It reads the optional sections of SPEC §4."""
    catalog = parse_catalog(_data(
        changes={"downgrade": "now"},
        cancel={"save_coupon": "STAY25", "pause_days": [30, 60]},
        notices={"renewal_days": [3], "card_expiry_days": 14, "quiet_hours": "21:00-08:00"},
        team={"prices": ["team_seat_monthly"], "min_seats": 2, "max_seats": 50}))
    assert catalog.downgrade == "now"
    assert catalog.save_coupon == "STAY25" and catalog.pause_days == (30, 60)
    assert catalog.renewal_days == (3,) and catalog.card_expiry_days == 14
    assert catalog.quiet_hours == "21:00-08:00"
    assert (catalog.min_seats, catalog.max_seats) == (2, 50)


@pytest.mark.parametrize(("data", "named"), [
    pytest.param({"plans": [_plan()]}, "[business]", id="missing business"),
    pytest.param(_data(business="Acme"), "[business]", id="business not a table"),
    pytest.param(_data(business={"support_url": "x"}), "[business].name", id="no name"),
    pytest.param(_data(plans=[]), "[[plans]]", id="no plans"),
    pytest.param({"business": {"name": "A"}}, "[[plans]]", id="plans missing"),
    pytest.param(_data(plans=[_plan(), _plan()]), "unique", id="duplicate keys"),
    pytest.param(_data(plans=[_plan(), _plan("Pro!")]), "plans[1].key", id="bad key"),
    pytest.param(_data(plans=[_plan("x" * 25)]), "plans[0].key", id="key too long"),
    pytest.param(_data(plans=[{"name": "No key", "prices": ["a"]}]), "plans[0].key",
                 id="missing key"),
    pytest.param(_data(plans=["basic"]), "plans[0]", id="plan not a table"),
    pytest.param(_data(plans=[_plan(prices=[])]), "plans[0].prices", id="no prices"),
    pytest.param(_data(plans=[_plan(prices="basic_monthly")]), "plans[0].prices",
                 id="prices not a list"),
    pytest.param(_data(plans=[_plan(prices=["bad key"])]), "'bad key'", id="bad lookup key"),
    pytest.param(_data(plans=[_plan(features=[1, 2])]), "plans[0].features",
                 id="features not strings"),
    pytest.param(_data(plans=[_plan(name=5)]), "plans[0].name", id="name not a string"),
    pytest.param(_data(changes={"downgrade": "later"}), "[changes].downgrade",
                 id="bad downgrade"),
    pytest.param(_data(cancel={"pause_days": [30, -1]}), "[cancel].pause_days",
                 id="negative pause"),
    pytest.param(_data(notices={"renewal_days": "7"}), "[notices].renewal_days",
                 id="renewal days not a list"),
    pytest.param(_data(team={"prices": "team"}), "[team].prices", id="team prices"),
    pytest.param(_data(cancel={"save_coupon": 25}), "[cancel].save_coupon", id="coupon type"),
])
def test_names_the_bad_entry(data: dict[str, Any], named: str) -> None:
    """It refuses a malformed catalog with an error naming the bad entry."""
    with pytest.raises(CatalogError) as caught:
        parse_catalog(data)
    assert named in str(caught.value)


@pytest.mark.parametrize(("section", "data"), [
    pytest.param("[team]", {"team": {"prices": [], "min_seats": "many"}}, id="min seats"),
    pytest.param("[notices]", {"notices": {"card_expiry_days": [30]}}, id="expiry days"),
    pytest.param("[changes]", {"changes": "now"}, id="changes not a table"),
])
def test_wrong_types_in_sections_are_catalog_errors(section: str, data: dict[str, Any]) -> None:
    """It answers a wrong type in a section with a CatalogError, not a crash."""
    with pytest.raises(CatalogError) as caught:
        parse_catalog(_data(**data))
    assert section in str(caught.value)


def test_load_catalog_reads_a_file(tmp_path: Path) -> None:
    """It loads a catalog file from disk."""
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG, encoding="utf-8")
    assert isinstance(load_catalog(path), Catalog)


def test_load_catalog_missing_file(tmp_path: Path) -> None:
    """It names a missing catalog file."""
    path = tmp_path / "nowhere.toml"
    with pytest.raises(CatalogError, match="not found") as caught:
        load_catalog(path)
    assert str(path) in str(caught.value)


def test_load_catalog_bad_toml(tmp_path: Path) -> None:
    """It refuses a file that is not TOML."""
    path = tmp_path / "catalog.toml"
    path.write_text("[business\nname = ", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog(path)


async def test_resolves_lookup_keys(shop: Shop) -> None:
    """It resolves every lookup key to its Stripe price with amount, interval and product."""
    book = await resolve_prices(shop.billing.gateway, shop.billing.catalog)
    assert set(book.by_key) == set(shop.billing.catalog.lookup_keys())
    pro = book.by_key["pro_yearly"]
    assert (pro.unit_amount, pro.currency, pro.interval, pro.interval_count) == (
        29000, "eur", "year", 1)
    assert pro.product_name == "Pro"
    assert pro.id.startswith("price_") and book.by_id(pro.id) == pro
    assert book.by_id("price_unknown") is None


async def test_unknown_lookup_key_is_named(shop: Shop) -> None:
    """It refuses a catalog naming a price Stripe does not know, and names the key."""
    catalog = parse_catalog(_data(plans=[_plan("gold", prices=["gold_monthly"])]))
    with pytest.raises(CatalogError, match="gold_monthly"):
        await resolve_prices(shop.billing.gateway, catalog)


async def test_one_time_price_is_refused(shop: Shop) -> None:
    """It refuses a lookup key of a price that is not recurring."""
    shop.sandbox.add_price("Setup", "setup_fee", 5000, interval=None)
    catalog = parse_catalog(_data(plans=[_plan("setup", prices=["setup_fee"])]))
    with pytest.raises(CatalogError, match="setup_fee"):
        await resolve_prices(shop.billing.gateway, catalog)
