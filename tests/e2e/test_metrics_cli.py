"""`portier metrics`: the month's table on the terminal and 12 months of CSV, from the shell."""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from pathlib import Path

from billing.models import utcnow
from billing.movements import CSV_COLUMNS
from billing.mrr import Month
from billing.revenue import snapshot
from tests.e2e.test_revenue import checkout
from tests.world import World


async def _portier(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STRIPE_", "TELEGRAM_", "PORTIER_"))}
    env["DATABASE_URL"] = world.settings.database_url
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot.cli", *args], env=env,
        capture_output=True, text=True, timeout=60, check=False)


async def test_metrics_table_and_csv(world: World, tmp_path: Path) -> None:
    """The table shows this month per currency; the CSV has the documented header, 12 months
    and this month's values in minor units."""
    prices = world.service.runtime.billing.prices.by_key
    await checkout(world, prices["pro_monthly"].id, quantity=2)
    await checkout(world, prices["basic_yearly"].id)
    await snapshot(world.service.runtime.billing.db)
    out = tmp_path / "figures.csv"
    done = await _portier(world, "metrics", "--csv", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    this = str(Month.of(utcnow().date()))
    assert lines[0].split() == [this, "EUR"]
    assert lines[1].split() == ["MRR", "€65.50"]  # 2 × 29.00 + 90.00 / 12
    assert ["active", "subscribers", "2"] == lines[8].split()
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r[0] for r in rows[1:]] == [this]  # months before the history have no rows
    row = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert (row["currency"], row["mrr"], row["new_mrr"], row["churned_mrr"],
            row["active_subscribers"], row["churned_subscribers"], row["churn_rate"],
            row["arpu"]) == ("eur", "6550", "6550", "0", "2", "0", "0.0000", "3275")


async def test_metrics_refuses_a_bad_month(world: World) -> None:
    """A month that is not YYYY-MM, or still to come, is one clear line and exit 1."""
    done = await _portier(world, "metrics", "--month", "2026-13")
    assert (done.returncode, done.stderr.strip()) == (
        1, "portier: not a month (YYYY-MM): '2026-13'")
    later = str(Month.of(utcnow().date()).shift(2))
    done = await _portier(world, "metrics", "--month", later)
    assert (done.returncode, done.stderr.strip()) == (
        1, "portier: a month still to come has no figures")
