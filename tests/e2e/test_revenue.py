"""Revenue figures over customers who subscribed through Checkout, as real customers do."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import func, select

from billing.mirror_models import MirrorInvoice
from billing.models import utcnow
from billing.mrr import Month
from billing.revenue import backfill, month_report, snapshot
from billing.revenue_models import RevenueState
from tests.e2e.test_cancel import _reason
from tests.e2e.test_change import _press
from tests.world import World

DAY = 86400


async def checkout(world: World, price_id: str, *, quantity: int = 1,
                   trial_days: int | None = None, card: str = "pm_card_visa") -> dict[str, Any]:
    """Subscribe a new customer through a Checkout page; return the subscription."""
    gateway = world.service.runtime.billing.gateway
    params: dict[str, Any] = {
        "mode": "subscription", "line_items": [{"price": price_id, "quantity": quantity}],
        "customer_email": "shop@example.com", "success_url": f"{world.url}/return"}
    if trial_days:
        params["subscription_data"] = {"trial_period_days": trial_days}
    session = await gateway.call(gateway.v1.checkout.sessions.create_async, params)
    done = await asyncio.to_thread(world.sandbox.complete_checkout, session.id, card)
    await world.settle()
    return world.sandbox.get(done["subscription"])


def _at(world: World) -> datetime:
    return datetime.fromtimestamp(world.sandbox.now(), UTC)


async def shop(world: World) -> dict[str, dict[str, Any]]:
    """A small shop in EUR and USD: monthly and yearly, three seats, a coupon taken in the
    cancel flow, trials, a renewal that declines, one that is paid late, a cancel."""
    prices = world.service.runtime.billing.prices.by_key
    usd_monthly = world.sandbox.add_price("Pro", "pro_monthly_usd", 3200, "month", "usd")
    usd_yearly = world.sandbox.add_price("Pro", "pro_yearly_usd", 12000, "year", "usd")
    subs = {
        "monthly": await checkout(world, prices["pro_monthly"].id),
        "yearly": await checkout(world, prices["basic_yearly"].id),
        "seats": await checkout(world, prices["team_seat_monthly"].id, quantity=3),
        "trial": await checkout(world, prices["pro_monthly"].id, trial_days=14),
        "long_trial": await checkout(world, prices["pro_monthly"].id, trial_days=60),
        "declines": await checkout(world, prices["basic_monthly"].id),
        "paid_late": await checkout(world, prices["pro_monthly"].id),
        "leaves": await checkout(world, prices["pro_monthly"].id),
        "usd_seats": await checkout(world, usd_monthly["id"], quantity=2),
        "usd_yearly": await checkout(world, usd_yearly["id"]),
    }
    # The coupon comes from Portier's own cancel flow: too expensive → 25% off for 3 months.
    user, customer = await world.linked_user("pro_monthly")
    offer = await _reason(world, user, "It's too expensive")
    await _press(world, user, offer, "Stay with the discount")
    (subs["coupon"],) = world.sandbox.store.all("subscription",
                                                lambda s: s["customer"] == customer["id"])
    gateway = world.service.runtime.billing.gateway
    await gateway.call(gateway.v1.subscriptions.update_async, subs["leaves"]["id"],
                       {"cancel_at_period_end": True})
    for key in ("declines", "paid_late"):
        await world.switch_card(subs[key]["customer"], "pm_card_chargeDeclinedInsufficientFunds")
    await world.settle()
    return subs


async def test_mrr_and_the_months_movements(world: World) -> None:
    """Two snapshots a month apart give MRR per currency and the month's movements, as
    summed by hand; the failed renewal paid later counts as recovered."""
    billing = world.service.runtime.billing
    subs = await shop(world)
    first = _at(world)
    assert await snapshot(billing.db, now=first) == 11
    world.sandbox.advance_time(32 * DAY)  # every monthly renewal; the short trial ends
    await world.settle()
    late = subs["paid_late"]
    await world.switch_card(late["customer"], "pm_card_visa")
    invoice = world.sandbox.get(world.sandbox.get(late["id"])["latest_invoice"])
    assert invoice["status"] == "open"
    await asyncio.to_thread(world.sandbox.pay_invoice, invoice["id"])
    await world.settle()
    assert world.sandbox.get(subs["declines"]["id"])["status"] == "past_due"
    second = _at(world)
    await snapshot(billing.db, now=second)

    report = await month_report(billing.db, Month.of(second.date()), now=second)
    eur, usd = report.currencies
    # EUR: 29.00 + 90.00/12 + 3 × 8.00 + 29.00 × 75% + 29.00 (trial converted) + 9.00 past due
    #      + 29.00 (paid late); the long trial adds nothing; the cancel has ended.
    assert (eur.currency, eur.mrr) == ("eur", 2900 + 750 + 2400 + 2175 + 2900 + 900 + 2900)
    assert eur.mrr_at_start == 2900 + 750 + 2400 + 2175 + 900 + 2900 + 2900
    assert (eur.new_mrr, eur.churned_mrr, eur.expansion_mrr, eur.contraction_mrr,
            eur.reactivation_mrr) == (2900, 2900, 0, 0, 0)
    assert (eur.active_at_start, eur.active_subscribers, eur.new_subscribers,
            eur.churned_subscribers) == (7, 7, 1, 1)
    assert eur.churn_rate == Fraction(1, 7 + 1)
    assert (eur.trials_ended, eur.trials_converted) == (1, 1)
    # USD: 2 × 32.00 + 120.00/12, never added to the euros.
    assert (usd.currency, usd.mrr, usd.active_subscribers) == ("usd", 6400 + 1000, 2)
    # Recovery: the month the renewals failed in; 29.00 of 29.00 + 9.00 was paid later.
    failed_on = Month.of(datetime.fromtimestamp(invoice["created"], UTC).date())
    failed = await month_report(billing.db, failed_on, now=second)
    eur_failed = next(f for f in failed.currencies if f.currency == "eur")
    assert (eur_failed.failed_amount, eur_failed.recovered_amount) == (2900 + 900, 2900)
    # The coupon offer made and taken in the chat, counted in the month it was made.
    offered = await month_report(billing.db, Month.of(utcnow().date()), now=second)
    assert (offered.offers.made, offered.offers.accepted) == (1, 1)


async def test_the_snapshot_stores_only_changes(world: World) -> None:
    """A second snapshot on the same state stores nothing; the offer taken is recorded."""
    billing = world.service.runtime.billing
    user, customer = await world.linked_user("pro_monthly")
    offer = await _reason(world, user, "It's too expensive")
    await _press(world, user, offer, "Stay with the discount")
    now = _at(world)
    assert await snapshot(billing.db, now=now) == 1
    assert await snapshot(billing.db, now=now) == 0
    assert await snapshot(billing.db, now=now + timedelta(days=1)) == 0  # nothing changed
    report = await month_report(billing.db, Month.of(now.date()), now=now)
    (eur,) = report.currencies
    assert (eur.mrr, eur.new_mrr, eur.new_subscribers) == (2175, 2175, 1)
    assert (report.offers.made, report.offers.accepted) == (1, 1)
    # Canceled after the snapshot: the figures read it from the mirror at once.
    gateway = billing.gateway
    (sub,) = world.sandbox.store.all("subscription", lambda s: s["customer"] == customer["id"])
    await gateway.call(gateway.v1.subscriptions.cancel_async, sub["id"])
    await world.settle()
    later = await month_report(billing.db, Month.of(now.date()), now=_at(world))
    assert [(f.currency, f.mrr, f.active_subscribers) for f in later.currencies] == [
        ("eur", 0, 0)]


async def test_backfill_from_invoices(world: World) -> None:
    """`portier sync`'s backfill dates each subscription from its first paid invoice and
    leaves subscriptions the history knows alone."""
    billing = world.service.runtime.billing
    prices = billing.prices.by_key
    sub = await checkout(world, prices["pro_yearly"].id)
    await checkout(world, prices["pro_monthly"].id, trial_days=30)
    done = await backfill(billing.db, now=_at(world))
    assert (done.subscriptions, done.rows) == (2, 2)
    assert done.unknown  # what invoices cannot tell is said
    async with billing.db.read() as session:
        first_paid = await session.scalar(select(func.min(MirrorInvoice.created)).where(
            MirrorInvoice.subscription_id == sub["id"], MirrorInvoice.status == "paid"))
        row = (await session.execute(select(RevenueState).where(
            RevenueState.subscription_id == sub["id"]))).scalar_one()
    assert first_paid is not None
    assert (row.day, row.status, row.mrr_micro, row.source) == (
        first_paid.date(), "active", 29000 * 1_000_000 // 12 + 1, "invoices")
    again = await backfill(billing.db, now=_at(world))
    assert (again.subscriptions, again.rows) == (0, 0)


async def test_a_cheaper_plan_taken_counts_as_an_accepted_offer(world: World) -> None:
    """Without a save coupon the cancel flow offers a cheaper plan; confirming it is an
    accepted save offer, a declined offer is one made and not taken."""
    billing = world.service.runtime.billing
    billing.catalog = dataclasses.replace(billing.catalog, save_coupon=None)
    user, _ = await world.linked_user("pro_monthly")
    offer = await _reason(world, user, "It's too expensive")
    preview = await _press(world, user, offer, "See Basic")
    await _press(world, user, preview, "Confirm")
    other, _ = await world.linked_user("pro_monthly")
    offer = await _reason(world, other, "It's too expensive")
    await _press(world, other, offer, "No thanks, cancel")
    report = await month_report(billing.db, Month.of(utcnow().date()))
    assert (report.offers.made, report.offers.accepted) == (2, 1)


async def test_the_scheduler_takes_the_daily_snapshot(world: World) -> None:
    """The leader takes the snapshot at start and then daily; its job stores what changed."""
    scheduler = world.service.scheduler
    assert scheduler is not None
    deadline = asyncio.get_running_loop().time() + 10
    while scheduler.runs["revenue"] < 1:  # the start-up run, on the scheduler's own task
        assert asyncio.get_running_loop().time() < deadline, "no snapshot at start"
        await asyncio.sleep(0.05)
    prices = world.service.runtime.billing.prices.by_key
    sub = await checkout(world, prices["basic_monthly"].id)
    await scheduler.snapshot_revenue()
    async with world.service.runtime.billing.db.read() as session:
        stored = (await session.execute(select(RevenueState).where(
            RevenueState.subscription_id == sub["id"]))).scalar_one()
    assert (stored.status, stored.mrr_micro) == ("active", 900_000_000)
