"""`portier sync`: the mirror backfilled from Stripe, for customers who came before Portier."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from billing.subscriptions import get_overview
from billing.sync import sync_mirror
from bot.cli import main
from tests.billing.conftest import API_KEY, CATALOG, Shop
from tests.world import busy_shop, mirror_differences


async def test_sync_copies_everything(shop: Shop) -> None:
    """It copies every customer, subscription and invoice, field by field."""
    ids = await busy_shop(shop.sandbox, shop.billing)
    seen: list[tuple[str, int]] = []
    synced = await sync_mirror(shop.billing, progress=lambda kind, n: seen.append((kind, n)))
    assert await mirror_differences(shop.sandbox, shop.billing) == []
    assert synced.customers == len(ids) == len(shop.sandbox.store.all("customer"))
    assert synced.subscriptions == len(shop.sandbox.store.all("subscription"))
    assert synced.invoices == len(shop.sandbox.store.all("invoice"))
    assert ("customers", synced.customers) in seen
    before = len(shop.sandbox.requests)
    for customer in ids.values():
        await get_overview(shop.billing, customer_id=customer)
    assert shop.sandbox.requests[before:] == []  # what sync stored is fresh


async def test_sync_pages_through_long_lists(shop: Shop) -> None:
    """It follows every page of a list longer than 100 objects."""
    for n in range(105):
        shop.customer(plan=None, email=f"u{n}@example.com")
    synced = await sync_mirror(shop.billing)
    assert synced.customers == 105
    assert await mirror_differences(shop.sandbox, shop.billing) == []


async def test_sync_again_changes_nothing(shop: Shop) -> None:
    """It can run again (or while Portier serves) and leaves the same mirror."""
    await busy_shop(shop.sandbox, shop.billing)
    await sync_mirror(shop.billing)
    await sync_mirror(shop.billing)
    assert await mirror_differences(shop.sandbox, shop.billing) == []


async def test_portier_sync_command(shop: Shop, database_url: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`portier sync` backfills a sandbox whose customers were made before Portier ran."""
    shop.customer()
    shop.customer(plan="basic_yearly", email="bob@example.com")
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG, encoding="utf-8")
    for name, value in {"DATABASE_URL": database_url, "STRIPE_SECRET_KEY": API_KEY,
                        "STRIPE_API_BASE": shop.base_url, "PORTIER_CATALOG": str(catalog)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env
    assert await asyncio.to_thread(main, ["sync"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "mirror synced: 2 customer(s), 2 subscription(s), 2 invoice(s)"
    # then the revenue history, from the invoices, and what they cannot tell
    assert lines[1] == ("revenue history: 2 subscription(s) backfilled from invoices (2 "
                        "state(s)); Stripe's invoices cannot tell:")
    assert lines[2].startswith("  - plan, quantity and discount changes before today")
    assert "customers 2" in err
    assert await mirror_differences(shop.sandbox, shop.billing) == []
