"""Benchmark: the renewal-reminder scan over 1,000,000 mirrored subscriptions on SQLite.

Bulk-inserts N subscriptions (renewals spread evenly over the next 31 days, 95 % active,
each customer linked to a chat) and as many chat links into a fresh SQLite database, then
times `scan_renewals` enqueuing the due reminders (target at most 10 s), and a second scan,
which must enqueue none (a scan a minute later adds only what became due in that minute).
The card-expiry scan is timed alongside.

    python bench/reminder_scan.py [--subscriptions 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from billing.catalog import parse_catalog  # noqa: E402
from billing.db import Database  # noqa: E402
from billing.migrate import upgrade  # noqa: E402
from billing.reminders import scan_cards, scan_renewals  # noqa: E402

TARGET = 10.0
CATALOG = parse_catalog({"business": {"name": "Acme"},
                         "plans": [{"key": "pro", "name": "Pro", "prices": ["pro_monthly"]}],
                         "notices": {"renewal_days": [7, 1], "card_expiry_days": 30}})


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DATETIME format


def fill(path: Path, count: int, now: datetime) -> None:
    """Bulk-insert the mirror and the chat links with sqlite3 (what `portier sync` leaves)."""
    rng = random.Random(42)
    db = sqlite3.connect(path)
    created = _stamp(now - timedelta(days=40))
    synced = _stamp(now)
    month = 31 * 86400

    def subscriptions() -> object:
        for n in range(count):
            end = now + timedelta(seconds=rng.uniform(0, month))
            status = "active" if rng.random() < 0.95 else "canceled"
            yield (f"sub_{n}", f"cus_{n}", status, "price_pro", "Pro", 2900, "eur", "month",
                   1, 1, _stamp(end), 0, created, 0, synced)

    def customers() -> object:
        for n in range(count):
            yield (f"cus_{n}", f"pm_{n}", "visa", "4242", rng.randint(1, 12),
                   rng.randint(now.year, now.year + 3), 0, synced)

    def links() -> object:
        for n in range(count):
            yield ("telegram", str(900_000_000 + n), str(900_000_000 + n), f"cus_{n}",
                   synced, synced)

    with db:
        db.executemany(
            "INSERT INTO mirror_subscriptions (id, customer_id, status, price_id, product_name,"
            " unit_amount, currency, interval, interval_count, quantity, current_period_end,"
            " cancel_at_period_end, created, stripe_seen_at, synced_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", subscriptions())
        db.executemany(
            "INSERT INTO mirror_customers (id, card_id, card_brand, card_last4, card_exp_month,"
            " card_exp_year, deleted, synced_at) VALUES (?,?,?,?,?,?,?,?)", customers())
        db.executemany(
            "INSERT INTO chat_links (channel, user_id, chat_id, customer_id, created_at,"
            " updated_at) VALUES (?,?,?,?,?,?)", links())
    db.execute("ANALYZE")
    db.close()


async def bench(count: int) -> bool:
    """Fill a database, scan twice; print the figures; return whether it met the target."""
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="portier-bench-") as folder:
        path = Path(folder) / "mirror.db"
        url = f"sqlite:///{path}"
        await asyncio.to_thread(upgrade, url)
        started = time.perf_counter()
        await asyncio.to_thread(fill, path, count, now)
        print(f"filled {count:,} subscriptions, customers and chat links in "
              f"{time.perf_counter() - started:.1f} s")
        db = Database(url)
        started = time.perf_counter()
        first = await scan_renewals(db, CATALOG, now=now)
        took = time.perf_counter() - started
        started = time.perf_counter()
        second = await scan_renewals(db, CATALOG, now=now)
        again = time.perf_counter() - started
        later = await scan_renewals(db, CATALOG, now=now + timedelta(minutes=1))
        started = time.perf_counter()
        cards = await scan_cards(db, CATALOG, now=now)
        cards_took = time.perf_counter() - started
        started = time.perf_counter()
        cards_again = await scan_cards(db, CATALOG, now=now + timedelta(minutes=1))
        cards_again_took = time.perf_counter() - started
        await db.close()
    print(f"reminder scan over {count:,} mirrored subscriptions: enqueued {first.added:,} due "
          f"reminders in {took:.2f} s (target <= {TARGET:.0f} s); second scan enqueued "
          f"{second.added} in {again:.2f} s; a minute later {later.added} became due")
    print(f"card-expiry scan: enqueued {cards.added:,} in {cards_took:.2f} s; second scan "
          f"enqueued {cards_again.added} in {cards_again_took:.2f} s")
    return took <= TARGET and second.added == 0 and first.added > 0 and cards_again.added == 0


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=1_000_000)
    args = parser.parse_args()
    sys.exit(0 if asyncio.run(bench(args.subscriptions)) else 1)


if __name__ == "__main__":
    main()
