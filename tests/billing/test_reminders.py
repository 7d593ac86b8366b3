"""Renewal reminders and expiring cards, scanned from the local mirror."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from billing.catalog import Catalog, parse_catalog
from billing.db import Database
from billing.deliveries import mark_unreachable
from billing.mirror_models import MirrorCustomer, MirrorSubscription
from billing.models import ChatLink, Notice
from billing.prefs import save_prefs
from billing.reminders import expiring_months, offsets, scan_cards, scan_renewals

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CATALOG = parse_catalog(tomllib.loads("""
[business]
name = "Acme"
[[plans]]
key = "pro"
name = "Pro"
prices = ["pro_monthly"]
[notices]
renewal_days = [7, 1]
card_expiry_days = 30
"""))


async def _subscription(db: Database, sub_id: str, renews_in: timedelta, *,
                        link: bool = True, **extra: Any) -> None:
    customer = f"cus_{sub_id}"
    extra.setdefault("status", "active")
    async with db.session() as session:
        session.add(MirrorSubscription(
            id=sub_id, customer_id=customer, price_id="price_pro",
            product_name="Pro", unit_amount=2900, currency="eur", interval="month",
            quantity=1, current_period_end=NOW + renews_in, created=NOW - timedelta(days=20),
            **extra))
        if link:
            session.add(ChatLink(channel="telegram", user_id=sub_id[-3:], chat_id=sub_id[-3:],
                                 customer_id=customer))


async def _reminders(db: Database) -> list[Notice]:
    async with db.session() as session:
        return list(await session.scalars(select(Notice).order_by(Notice.dedupe_key)))


def test_offsets_pair_each_with_the_next_smaller() -> None:
    """It pairs reminder days with the next smaller offset, largest first."""
    assert offsets([1, 7]) == [(7, 1), (1, 0)]
    assert offsets([3]) == [(3, 0)]


async def test_due_reminders_once_per_offset_and_period(db: Database) -> None:
    """It reminds subscriptions that reached 7 or 1 days before renewal, once each."""
    await _subscription(db, "sub_101", timedelta(days=6, hours=20))  # 7-day reminder
    await _subscription(db, "sub_102", timedelta(hours=10))  # 1-day reminder
    await _subscription(db, "sub_103", timedelta(days=9))  # not yet
    await _subscription(db, "sub_104", timedelta(days=5), link=False)  # no chat
    await _subscription(db, "sub_105", timedelta(days=6, hours=20),
                        cancel_at_period_end=True)  # will not renew
    await _subscription(db, "sub_106", timedelta(days=6, hours=20), pause_behavior="void")
    await _subscription(db, "sub_107", timedelta(days=6, hours=20), status="past_due")
    first = await scan_renewals(db, CATALOG, now=NOW)
    assert (first.due, first.added) == (2, 2)
    seven, one = await _reminders(db)
    end = int((NOW + timedelta(days=6, hours=20)).timestamp())
    assert seven.dedupe_key == f"renewal_reminder:sub_101:{end}:7d@telegram:101"
    assert seven.params | {"renews": 0} == {
        "subscription": "sub_101", "renews": 0, "days": 7, "plan": "Pro", "amount": 2900,
        "currency": "eur", "interval": "month", "interval_count": 1}
    assert one.params["days"] == 1 and one.chat_id == "102"
    second = await scan_renewals(db, CATALOG, now=NOW + timedelta(minutes=10))
    assert second.added == 0
    later = await scan_renewals(db, CATALOG, now=NOW + timedelta(days=6))
    assert later.added == 1  # sub_101 reached 1 day (sub_103 is within 7 days now too)
    assert {n.params["days"] for n in await _reminders(db)
            if n.params["subscription"] == "sub_101"} == {7, 1}


async def test_reminders_honour_the_users_setting(db: Database) -> None:
    """A user who turned renewal reminders off gets none."""
    await _subscription(db, "sub_201", timedelta(days=6, hours=20))
    async with db.session() as session:
        await save_prefs(session, channel="telegram", user_id="201", reminders=False)
    assert (await scan_renewals(db, CATALOG, now=NOW)).added == 0


async def test_reminders_wait_for_the_end_of_quiet_hours(db: Database) -> None:
    """A reminder found during quiet hours waits until they end, in the user's zone."""
    await _subscription(db, "sub_301", timedelta(days=6, hours=20))
    quiet = replace(CATALOG, quiet_hours="10:00-14:00")
    await scan_renewals(db, quiet, now=NOW)
    [reminder] = await _reminders(db)
    assert reminder.send_after == NOW.replace(hour=14)


async def test_reminders_to_an_unreachable_chat_are_not_sent(db: Database) -> None:
    """A chat that blocked the bot gets its reminder recorded as unreachable."""
    await _subscription(db, "sub_401", timedelta(days=6, hours=20))
    async with db.session() as session:
        await mark_unreachable(session, channel="telegram", chat_id="401", reason="blocked")
    await scan_renewals(db, CATALOG, now=NOW)
    [reminder] = await _reminders(db)
    assert reminder.status == "unreachable"


def test_expiring_months() -> None:
    """A card expires when its month ends: within 30 days of March 10 is March's cards."""
    assert expiring_months(NOW, 30) == [(2026, 3)]
    assert expiring_months(datetime(2026, 12, 20, tzinfo=UTC), 45) == [(2026, 12), (2027, 1)]
    assert expiring_months(NOW, 0) == []


async def _customer(db: Database, customer: str, month: int, year: int,
                    catalog: Catalog = CATALOG) -> None:
    async with db.session() as session:
        session.add(MirrorCustomer(id=customer, card_id=f"pm_{customer}", card_brand="visa",
                                   card_last4="4242", card_exp_month=month,
                                   card_exp_year=year))


async def test_expiring_cards_are_announced_once(db: Database) -> None:
    """Cards of live subscriptions expiring within 30 days get one notice each."""
    await _subscription(db, "sub_501", timedelta(days=20))
    await _customer(db, "cus_sub_501", 3, 2026)
    await _subscription(db, "sub_502", timedelta(days=20))
    await _customer(db, "cus_sub_502", 6, 2026)  # later
    await _subscription(db, "sub_503", timedelta(days=20), status="canceled")
    await _customer(db, "cus_sub_503", 3, 2026)  # no live subscription
    first = await scan_cards(db, CATALOG, now=NOW)
    assert (first.due, first.added) == (1, 1)
    [card] = await _reminders(db)
    assert card.dedupe_key == "card_expiring:pm_cus_sub_501:2026-03@telegram:501"
    assert card.params == {"customer": "cus_sub_501", "brand": "visa", "last4": "4242",
                           "exp_month": 3, "exp_year": 2026}
    assert (await scan_cards(db, CATALOG, now=NOW + timedelta(days=1))).added == 0
