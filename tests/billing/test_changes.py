"""Plan changes: options, previews with a fixed proration date, and applying exactly them."""

from __future__ import annotations

import dataclasses

import pytest

from billing import changes
from billing.changes import DOWNGRADE, NOW, PERIOD_END, UPGRADE, AlreadyOnPlan
from billing.errors import NoSubscription, NotFound, NotYours
from billing.subscriptions import live_overview
from tests.billing.conftest import Shop

DAY = 86400


async def test_options_rank_then_price(shop: Shop) -> None:
    """Other prices are marked by catalog rank, then by price; upgrades come first."""
    customer = shop.customer(plan="basic_yearly")
    current, options = await changes.list_options(shop.billing, customer_id=customer)
    assert current.lookup_key == "basic_yearly"
    marked = [(o.price.lookup_key, o.direction) for o in options]
    assert set(marked) == {("pro_monthly", UPGRADE), ("pro_yearly", UPGRADE),
                           ("basic_monthly", DOWNGRADE)}
    assert marked[-1] == ("basic_monthly", DOWNGRADE)


async def test_upgrade_preview_then_confirm_charges_it(shop: Shop) -> None:
    """An upgrade previews today's prorated charge; confirming with its date charges exactly it."""
    customer = shop.customer(plan="basic_monthly")
    await shop.advance(9 * DAY)
    preview = await changes.preview(shop.billing, customer_id=customer, plan_key="pro",
                                    interval="month")
    assert (preview.direction, preview.timing) == (UPGRADE, NOW)
    assert 0 < preview.amount_today < 2000 and preview.next_amount == 2900
    assert preview.proration_date <= shop.sandbox.now()
    result = await changes.confirm(
        shop.billing, customer_id=customer, plan_key="pro", interval="month",
        proration_date=preview.proration_date, amount_today=preview.amount_today,
        next_amount=preview.next_amount)
    assert result.outcome == "applied" and result.amount_paid == preview.amount_today
    sub = shop.subscription(customer)
    assert sub["items"]["data"][0]["price"]["lookup_key"] == "pro_monthly"
    invoice = shop.sandbox.get(sub["latest_invoice"])
    assert invoice["amount_paid"] == preview.amount_today


async def test_confirm_twice_writes_once(shop: Shop) -> None:
    """The update's idempotency key comes from subscription, price and proration date."""
    customer = shop.customer(plan="basic_monthly")
    preview = await changes.preview(shop.billing, customer_id=customer, plan_key="pro",
                                    interval="month")
    args = dict(customer_id=customer, plan_key="pro", interval="month",
                proration_date=preview.proration_date, amount_today=preview.amount_today,
                next_amount=preview.next_amount)
    await changes.confirm(shop.billing, **args)  # type: ignore[arg-type]
    with pytest.raises(AlreadyOnPlan):
        await changes.confirm(shop.billing, **args)  # type: ignore[arg-type]
    updates = [i for i in shop.sandbox.store.all("invoice", lambda i: i["customer"] == customer)
               if i["billing_reason"] == "subscription_update"]
    assert len(updates) == 1


async def test_moved_amount_returns_a_fresh_preview(shop: Shop) -> None:
    """A confirm whose amounts no longer match returns a new preview and changes nothing."""
    customer = shop.customer(plan="basic_monthly")
    preview = await changes.preview(shop.billing, customer_id=customer, plan_key="pro",
                                    interval="month")
    await shop.advance(35 * DAY)
    result = await changes.confirm(
        shop.billing, customer_id=customer, plan_key="pro", interval="month",
        proration_date=preview.proration_date, amount_today=preview.amount_today,
        next_amount=preview.next_amount)
    assert result.outcome == "moved"
    assert result.preview.proration_date > preview.proration_date
    sub = shop.subscription(customer)
    assert sub["items"]["data"][0]["price"]["lookup_key"] == "basic_monthly"


async def test_declined_upgrade_stays_pending(shop: Shop) -> None:
    """A declined upgrade leaves the plan; Stripe keeps a pending update and an open invoice."""
    customer = shop.customer(plan="basic_monthly")
    await shop.switch_card(customer, "pm_card_visa_chargeDeclined")
    preview = await changes.preview(shop.billing, customer_id=customer, plan_key="pro",
                                    interval="month")
    result = await changes.confirm(
        shop.billing, customer_id=customer, plan_key="pro", interval="month",
        proration_date=preview.proration_date, amount_today=preview.amount_today,
        next_amount=preview.next_amount)
    assert result.outcome == "declined" and result.invoice_id
    sub = shop.subscription(customer)
    assert sub["items"]["data"][0]["price"]["lookup_key"] == "basic_monthly"
    assert sub["pending_update"] is not None and sub["status"] == "active"
    assert shop.sandbox.get(result.invoice_id)["status"] == "open"


async def test_period_end_downgrade_schedules_and_undo_releases(shop: Shop) -> None:
    """A downgrade at period end makes a schedule; the overview names it; undo releases it."""
    customer = shop.customer(plan="pro_monthly")
    preview = await changes.preview(shop.billing, customer_id=customer, plan_key="basic",
                                    interval="month")
    end = shop.subscription(customer)["items"]["data"][0]["current_period_end"]
    assert (preview.timing, preview.proration_date, preview.amount_today) == (PERIOD_END, end, 0)
    result = await changes.confirm(
        shop.billing, customer_id=customer, plan_key="basic", interval="month",
        proration_date=end, amount_today=0, next_amount=preview.next_amount)
    assert result.outcome == "scheduled"
    overview = await live_overview(shop.billing, customer_id=customer)
    assert overview is not None and overview.scheduled_plan_name == "Basic"
    assert overview.scheduled_at is not None and int(overview.scheduled_at.timestamp()) == end
    assert overview.schedule_id == shop.subscription(customer)["schedule"]
    price = await changes.undo_scheduled(shop.billing, customer_id=customer,
                                         schedule_id=overview.schedule_id)
    assert price.lookup_key == "pro_monthly"
    assert shop.subscription(customer)["schedule"] is None


async def test_undo_refuses_someone_elses_schedule(shop: Shop) -> None:
    """Undo naming another customer's schedule raises NotYours and releases nothing."""
    owner = shop.customer(plan="pro_monthly")
    preview = await changes.preview(shop.billing, customer_id=owner, plan_key="basic",
                                    interval="month")
    await changes.confirm(shop.billing, customer_id=owner, plan_key="basic", interval="month",
                          proration_date=preview.proration_date, amount_today=0,
                          next_amount=preview.next_amount)
    schedule = shop.subscription(owner)["schedule"]
    other = shop.customer(plan="pro_monthly", email="bob@example.com")
    with pytest.raises(NotYours):
        await changes.undo_scheduled(shop.billing, customer_id=other, schedule_id=schedule)
    assert shop.subscription(owner)["schedule"] == schedule


async def test_downgrade_now_credits_on_the_next_invoice(shop: Shop) -> None:
    """With downgrade = "now" the price changes at once and the credit waits for renewal."""
    shop.billing.catalog = dataclasses.replace(shop.billing.catalog, downgrade="now")
    customer = shop.customer(plan="pro_monthly")
    await shop.advance(10 * DAY)
    preview = await changes.preview(shop.billing, customer_id=customer, plan_key="basic",
                                    interval="month")
    assert (preview.timing, preview.amount_today) == (NOW, 0)
    assert preview.next_amount < 900  # the unused Pro time is credited
    result = await changes.confirm(
        shop.billing, customer_id=customer, plan_key="basic", interval="month",
        proration_date=preview.proration_date, amount_today=0, next_amount=preview.next_amount)
    assert result.outcome == "applied"
    sub = shop.subscription(customer)
    assert sub["items"]["data"][0]["price"]["lookup_key"] == "basic_monthly"
    end = sub["items"]["data"][0]["current_period_end"]
    await shop.advance(end - shop.sandbox.now() + 60)
    renewal = shop.sandbox.get(shop.subscription(customer)["latest_invoice"])
    assert renewal["amount_due"] == preview.next_amount


async def test_interval_switch_restarts_the_period(shop: Shop) -> None:
    """Monthly → yearly is invoiced now and the yearly price runs from a year later."""
    customer = shop.customer(plan="pro_monthly")
    preview = await changes.preview(shop.billing, customer_id=customer, plan_key="pro",
                                    interval="year")
    assert preview.direction == UPGRADE and 29000 - 2900 <= preview.amount_today <= 29000
    assert preview.starts_at.timestamp() > shop.sandbox.now() + 360 * DAY


async def test_unknown_plan_and_no_subscription(shop: Shop) -> None:
    """A tampered plan key is NotFound; a customer without a subscription has nothing to change."""
    customer = shop.customer(plan="pro_monthly")
    with pytest.raises(NotFound):
        await changes.preview(shop.billing, customer_id=customer, plan_key="gold",
                              interval="month")
    with pytest.raises(AlreadyOnPlan):
        await changes.preview(shop.billing, customer_id=customer, plan_key="pro",
                              interval="month")
    bare = shop.customer(plan=None, email="nobody@example.com")
    with pytest.raises(NoSubscription):
        await changes.list_options(shop.billing, customer_id=bare)
