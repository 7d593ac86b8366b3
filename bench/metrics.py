"""Benchmark: this month's revenue figures over 100,000 subscriptions and a year of history.

Fills a fresh database (SQLite by default) with what a year of Portier leaves: N mirrored
subscriptions (EUR and USD, monthly and yearly, seats, coupons, trials, past-due spells,
cancels) and their revenue history as the daily snapshot stores it — a row per subscription
only on the days its state changed, not N × 365 rows — plus three months of invoices and a
year of save offers. Today's snapshot is not taken yet, and a few subscriptions were read
from Stripe again today: the figures add their live state to the history. Then times
`month_report` for the current month (target at most 2 s) and the chart's 12 month-end MRR
series, beside one plain `SELECT count(*)` over the history table in the same run.

    python bench/metrics.py [--subscriptions 100000] [--database-url postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from billing.db import Database  # noqa: E402
from billing.migrate import upgrade  # noqa: E402
from billing.mirror_models import MirrorInvoice, MirrorSubscription  # noqa: E402
from billing.mrr import Month, mrr_micro  # noqa: E402
from billing.revenue import month_report, overview, snapshot  # noqa: E402
from billing.revenue_models import RevenueState, SaveOffer  # noqa: E402

TARGET = 2.0
BATCH = 20_000
MONTHLY = (900, 2900, 800)  # Basic, Pro, a team seat (bought by the seat)
YEARLY = (9000, 29000)


@dataclass
class Sub:
    """A subscription's terms as they change through the year."""

    status: str
    unit_amount: int
    quantity: int
    interval: str
    currency: str
    discount_percent_off: float | None
    discount_end: datetime | None
    interval_count: int = 1
    discount_amount_off: int | None = None
    discount_currency: str | None = None

    @property
    def discount_duration(self) -> str | None:
        return "repeating" if self.discount_percent_off else None


def _world(count: int, now: datetime, seed: int = 7) -> Iterator[tuple[dict[str, Any],
                                                                       list[dict[str, Any]]]]:
    """Yield each subscription's mirror row and its history rows."""
    rng = random.Random(seed)
    today = now.date()
    first = today - timedelta(days=365)
    for n in range(count):
        yearly = rng.random() < 0.2
        price = rng.choice(YEARLY if yearly else MONTHLY)
        sub = Sub(status="active", unit_amount=price,
                  quantity=rng.randint(2, 12) if price == 800 else 1,
                  interval="year" if yearly else "month",
                  currency="usd" if n % 4 == 0 else "eur",
                  discount_percent_off=25.0 if rng.random() < 0.1 else None,
                  discount_end=now + timedelta(days=rng.randint(-200, 90)))
        start = first if rng.random() < 0.6 else first + timedelta(days=rng.randint(1, 364))
        events: list[tuple[date, str, dict[str, Any]]] = []
        if rng.random() < 0.1:
            events.append((start, "trialing", {}))
            start += timedelta(days=14)
        events.append((start, "active", {}))
        later = (today - start).days
        if later > 2 and rng.random() < 0.2:
            events.append((start + timedelta(days=rng.randint(1, later)), "active",
                           {"unit_amount": rng.choice(YEARLY if yearly else MONTHLY)}))
        if later > 2 and rng.random() < 0.06:
            spell = start + timedelta(days=rng.randint(1, later))
            events.append((spell, "past_due", {}))
            if rng.random() < 0.7:
                events.append((spell + timedelta(days=rng.randint(1, 9)), "active", {}))
        if later > 2 and rng.random() < 0.15:
            events.append((start + timedelta(days=rng.randint(1, later)), "canceled", {}))
        if sub.discount_percent_off and sub.discount_end is not None:
            expiry = sub.discount_end.date() + timedelta(days=1)  # the next day's snapshot
            if start < expiry <= today:
                events.append((expiry, "", {}))  # same status, full price again
        events.sort(key=lambda event: event[0])
        history: list[dict[str, Any]] = []
        ended = False
        for day, status, change in events:
            if day > today or ended:
                continue
            for key, value in change.items():
                setattr(sub, key, value)
            sub.status = status or sub.status
            status = sub.status
            ended = status == "canceled"
            row = {"subscription_id": f"sub_{n}", "customer_id": f"cus_{n}", "day": day,
                   "status": status, "currency": sub.currency,
                   "price_id": f"price_{sub.unit_amount}",
                   "mrr_micro": mrr_micro(sub, datetime.combine(day, datetime.min.time(), UTC)),
                   "source": "snapshot"}
            if history and history[-1]["day"] == day:
                history[-1] = row
            else:
                history.append(row)
        mirror = {
            "id": f"sub_{n}", "customer_id": f"cus_{n}", "status": sub.status,
            "price_id": f"price_{sub.unit_amount}", "product_name": "Pro",
            "unit_amount": sub.unit_amount, "currency": sub.currency, "interval": sub.interval,
            "interval_count": 1, "quantity": sub.quantity, "cancel_at_period_end": False,
            "created": datetime.combine(events[0][0], datetime.min.time(), UTC),
            # read from Stripe when it last changed (an event), a few of them again today
            "stripe_seen_at": 0, "synced_at": now if rng.random() < 0.005 else
            datetime.combine(history[-1]["day"], datetime.min.time(), UTC),
            "discount_percent_off": sub.discount_percent_off,
            "discount_duration": sub.discount_duration,
            "discount_end": sub.discount_end if sub.discount_percent_off else None,
        }
        yield mirror, history


def _invoices(rng: random.Random, mirror: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Three months of a subscription's invoices, a few of them failed and some recovered."""
    if mirror["status"] not in ("active", "past_due"):
        return []
    found = []
    months = 3 if mirror["interval"] == "month" else int(rng.random() < 0.25)
    for back in range(months):
        created = now - timedelta(days=30 * back + rng.uniform(0, 29))
        amount = mirror["unit_amount"] * mirror["quantity"]
        failed = rng.random() < 0.04
        attempts = rng.randint(2, 4) if failed else 1
        paid = not failed or rng.random() < 0.6
        found.append({
            "id": f"in_{mirror['id']}_{back}", "customer_id": mirror["customer_id"],
            "subscription_id": mirror["id"], "status": "paid" if paid else "open",
            "billing_reason": "subscription_cycle", "total": amount, "amount_due": amount,
            "amount_remaining": 0 if paid else amount, "currency": mirror["currency"],
            "attempt_count": attempts, "created": created, "stripe_seen_at": 0,
            "synced_at": now})
    return found


async def fill(db: Database, count: int, now: datetime) -> tuple[int, int, int]:
    """Insert the mirror, the history, invoices and offers; return the row counts."""
    rng = random.Random(11)
    mirrors: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    invoices: list[dict[str, Any]] = []
    totals = [0, 0, 0]

    async def flush(final: bool = False) -> None:
        for model, rows, index in ((MirrorSubscription, mirrors, None),
                                   (RevenueState, states, 1), (MirrorInvoice, invoices, 2)):
            if rows and (final or len(rows) >= BATCH):
                async with db.session() as session:
                    await session.execute(insert(model), rows)
                if index is not None:
                    totals[index] += len(rows)
                rows.clear()

    for mirror, history in _world(count, now):
        mirrors.append(mirror)
        states += history
        invoices += _invoices(rng, mirror, now)
        totals[0] += 1
        await flush()
    await flush(final=True)
    offers = [{"subscription_id": f"sub_{n}", "kind": rng.choice(("coupon", "pause", "plan")),
               "offered_at": now - timedelta(days=rng.uniform(0, 365)),
               "accepted_at": now if rng.random() < 0.3 else None}
              for n in rng.sample(range(count), min(count, 2000))]
    async with db.session() as session:
        await session.execute(insert(SaveOffer), offers)
    return totals[0], totals[1], totals[2]


async def _count(db: Database, table: Any) -> tuple[int, float]:
    started = time.perf_counter()
    async with db.read() as session:
        found = await session.scalar(select(func.count()).select_from(table))
    return int(found or 0), time.perf_counter() - started


async def bench(count: int, url: str | None) -> bool:
    """Fill, then time the month's figures and the chart's series; print; return the verdict."""
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="portier-bench-") as folder:
        url = url or f"sqlite:///{Path(folder) / 'revenue.db'}"
        if url.startswith("postgresql"):
            db = Database(url)
            async with db.engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await db.close()
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        started = time.perf_counter()
        subs, states, invoices = await fill(db, count, now)
        async with db.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
        print(f"filled {subs:,} subscriptions, {states:,} history rows (a year of daily "
              f"snapshots, stored on change; {subs * 365:,} if stored daily), {invoices:,} "
              f"invoices in {time.perf_counter() - started:.1f} s ({url.split(':')[0]})")
        month = Month.of(now.date())
        await month_report(db, month, now=now)  # warm: compiled statements, imports
        rows, count_took = await _count(db, RevenueState.__table__)
        started = time.perf_counter()
        report = await month_report(db, month, now=now)
        took = time.perf_counter() - started
        started = time.perf_counter()
        _, months, series = await overview(db, month, 12, now=now)
        chart_took = time.perf_counter() - started
        started = time.perf_counter()
        changed = await snapshot(db, now=now)
        snapshot_took = time.perf_counter() - started
        await db.close()
    for figures in report.currencies:
        print(f"  {figures.currency}: MRR {figures.mrr / 100:,.2f}, "
              f"{figures.active_subscribers:,} active, new {figures.new_mrr / 100:,.2f}, "
              f"churned {figures.churned_mrr / 100:,.2f}, churn rate "
              f"{float(figures.churn_rate or 0):.2%}, recovery "
              f"{float(figures.recovery_rate or 0):.1%}")
    print(f"month's figures over {subs:,} subscriptions and {rows:,} history rows: "
          f"{took:.2f} s (target <= {TARGET:.0f} s); SELECT count(*) over the history: "
          f"{count_took * 1000:.0f} ms")
    print(f"/stats' read (the month's figures and the chart's 12 month-end MRR series: "
          f"{', '.join(series)}, {months[0]} to {months[-1]}): {chart_took:.2f} s")
    print(f"today's snapshot (the scheduler's daily job): compared {subs:,} subscriptions, "
          f"stored {changed:,} changed in {snapshot_took:.2f} s")
    return took <= TARGET


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    sys.exit(0 if asyncio.run(bench(args.subscriptions, args.database_url)) else 1)


if __name__ == "__main__":
    main()
