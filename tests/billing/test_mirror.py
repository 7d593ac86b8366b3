"""The local mirror: kept by events re-read from Stripe, read by `/plan` and `/invoices`."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from billing import mirror, webhooks
from billing.errors import NotYours
from billing.invoices import PAGE_SIZE, list_invoices
from billing.mirror_models import MirrorCustomer, MirrorSubscription
from billing.models import StripeEvent, utcnow
from billing.services import Billing
from billing.subscriptions import get_overview, live_overview
from billing.webhooks import process_pending, record
from tests.billing.conftest import Shop
from tests.world import busy_shop, mirror_differences


async def deliver(shop: Shop, *, times: int = 1, seed: int | None = None) -> None:
    """Store the sandbox's events as the webhook would (repeated, shuffled) and process them."""
    events = shop.sandbox.events()
    order = [event for event in events for _ in range(times)]
    if seed is not None:
        random.Random(seed).shuffle(order)
    for event in order:
        async with shop.billing.db.session() as session:
            await record(session, event)
    while await process_pending(shop.billing):
        pass


async def _events(billing: Billing) -> list[tuple[str, int]]:
    async with billing.db.session() as session:
        return [(row.status, row.attempts) for row in await session.scalars(select(StripeEvent))]


async def test_events_delivered_thrice_and_shuffled_build_the_sandbox_state(shop: Shop) -> None:
    """It ends with the sandbox's state, each event processed once, whatever the order."""
    await busy_shop(shop.sandbox, shop.billing)
    await deliver(shop, times=3, seed=7)
    assert await mirror_differences(shop.sandbox, shop.billing) == []
    stored = await _events(shop.billing)
    assert len(stored) == len(shop.sandbox.events())
    assert set(stored) == {("processed", 1)}


async def test_the_mirror_answers_plan_like_stripe(shop: Shop) -> None:
    """It builds the same overview from the mirror as from Stripe, for every kind of customer."""
    ids = await busy_shop(shop.sandbox, shop.billing)
    await deliver(shop)
    for name, customer in ids.items():
        assert await get_overview(shop.billing, customer_id=customer) == await live_overview(
            shop.billing, customer_id=customer), name
    scheduled = await get_overview(shop.billing, customer_id=ids["scheduled"])
    assert scheduled is not None and scheduled.scheduled_plan_name == "Basic"
    discounted = await get_overview(shop.billing, customer_id=ids["discounted"])
    assert discounted is not None and discounted.discount_name == "25% off for 3 months"
    assert (await get_overview(shop.billing, customer_id=ids["declined"])).status == "past_due"


async def test_a_fresh_mirror_costs_no_stripe_request(shop: Shop) -> None:
    """It answers `/plan` and `/invoices` from fresh rows without asking Stripe."""
    customer = shop.customer()
    await deliver(shop)
    before = len(shop.sandbox.requests)
    for _ in range(3):
        assert await get_overview(shop.billing, customer_id=customer) is not None
        assert len((await list_invoices(shop.billing, customer_id=customer)).items) == 1
    assert shop.sandbox.requests[before:] == []


async def test_a_customer_missing_from_the_mirror_is_read_from_stripe(shop: Shop) -> None:
    """It reads an unknown customer from Stripe, fills the mirror, then needs Stripe no more."""
    customer = shop.customer()
    overview = await get_overview(shop.billing, customer_id=customer)
    assert overview is not None and overview.plan_name == "Pro"
    assert await mirror_differences(shop.sandbox, shop.billing) == []
    before = len(shop.sandbox.requests)
    assert await get_overview(shop.billing, customer_id=customer) == overview
    assert shop.sandbox.requests[before:] == []


async def test_old_rows_are_read_again(shop: Shop) -> None:
    """It re-reads a customer whose rows are older than the maximum age."""
    customer = shop.customer()
    await deliver(shop)
    async with shop.billing.db.session() as session:
        for model in (MirrorCustomer, MirrorSubscription):
            await session.execute(update(model).values(
                synced_at=utcnow() - mirror.MAX_AGE - timedelta(minutes=1)))
    before = len(shop.sandbox.requests)
    await get_overview(shop.billing, customer_id=customer)
    assert ("GET", f"/v1/customers/{customer}") in shop.sandbox.requests[before:]
    before = len(shop.sandbox.requests)
    await get_overview(shop.billing, customer_id=customer)
    assert shop.sandbox.requests[before:] == []


async def test_a_pending_event_about_the_customer_makes_the_rows_stale(shop: Shop) -> None:
    """It asks Stripe while an event naming the customer waits: the mirror may lag behind."""
    customer = shop.customer()
    await deliver(shop)
    await shop.switch_card(customer, "pm_card_mastercard")
    for event in shop.sandbox.events():  # stored, not processed yet
        async with shop.billing.db.session() as session:
            await record(session, event)
    overview = await get_overview(shop.billing, customer_id=customer)
    assert overview is not None and overview.card is not None
    assert overview.card.brand == "mastercard"


async def test_a_late_old_event_is_not_read_again(shop: Shop) -> None:
    """It skips the re-read for an event older than the newest applied to its object."""
    customer = shop.customer()
    await deliver(shop)
    sub = shop.subscription(customer)["id"]
    first = next(e for e in shop.sandbox.events("customer.subscription.created"))
    old = dict(first, id="evt_late_copy", created=first["created"] - 10)
    async with shop.billing.db.session() as session:
        await session.execute(update(MirrorSubscription).values(
            stripe_seen_at=first["created"]))
        await record(session, old)
    before = len(shop.sandbox.requests)
    await process_pending(shop.billing)
    assert ("GET", f"/v1/subscriptions/{sub}") not in shop.sandbox.requests[before:]


async def test_invoice_pages_from_the_mirror(shop: Shop) -> None:
    """It pages a mirrored customer's invoices five at a time, newest first, like Stripe."""
    customer = shop.customer(plan="basic_monthly")
    await shop.advance(200 * 86400)
    await deliver(shop)
    stored = [i["id"] for i in shop.sandbox.store.all(
        "invoice", lambda i: i["customer"] == customer)]
    before = len(shop.sandbox.requests)
    first = await list_invoices(shop.billing, customer_id=customer)
    second = await list_invoices(shop.billing, customer_id=customer, after=first.next_after)
    assert [line.id for line in first.items + second.items] == stored
    assert len(first.items) == PAGE_SIZE and second.next_after is None
    assert shop.sandbox.requests[before:] == []


async def test_a_cursor_of_another_mirrored_customer_is_refused(shop: Shop) -> None:
    """It refuses a page cursor naming another customer's mirrored invoice."""
    mine, theirs = shop.customer(), shop.customer(email="eve@example.com")
    await deliver(shop)
    their_invoice = (await list_invoices(shop.billing, customer_id=theirs)).items[0].id
    with pytest.raises(NotYours):
        await list_invoices(shop.billing, customer_id=mine, after=their_invoice)


async def test_a_deleted_customer_is_marked(shop: Shop) -> None:
    """It marks a customer deleted in Stripe, and shows no plan for them."""
    customer = shop.customer(plan=None)
    await deliver(shop)
    gateway = shop.billing.gateway
    await gateway.call(gateway.v1.customers.delete_async, customer)
    await deliver(shop)
    async with shop.billing.db.session() as session:
        row = await session.get(MirrorCustomer, customer)
        assert row is not None and row.deleted
        assert await session.scalar(select(func.count()).select_from(MirrorCustomer)) == 1
    assert await get_overview(shop.billing, customer_id=customer) is None


async def test_a_stripe_outage_is_retried_with_backoff(shop: Shop) -> None:
    """It keeps an event whose re-read failed, retries it after the backoff and catches up."""
    customer = shop.customer()
    shop.sandbox.fail_next(status=500, times=100)  # every re-read (and the SDK's retries) fails
    await deliver(shop)
    shop.sandbox._injected.clear()
    async with shop.billing.db.session() as session:
        rows = list(await session.scalars(select(StripeEvent)))
    # Only events that need a re-read wait (a card attached changes no default: no request).
    waiting = {row.type for row in rows if row.status == "pending"}
    assert {"customer.created", "customer.subscription.created", "invoice.paid"} <= waiting
    assert {row.type for row in rows if row.status != "pending"} <= {"payment_method.attached"}
    assert {row.last_error for row in rows if row.status == "pending" and row.attempts} == {
        "StripeUnavailable"}
    assert await process_pending(shop.billing) == 0  # waiting for the backoff
    await process_pending(shop.billing, now=utcnow() + webhooks.backoff(1))
    while await process_pending(shop.billing, now=utcnow() + webhooks.backoff(1)):
        pass
    outcomes = await _events(shop.billing)
    assert {status for status, _ in outcomes} == {"processed"}
    assert max(attempts for _, attempts in outcomes) == 2
    assert await mirror_differences(shop.sandbox, shop.billing) == []
    assert await get_overview(shop.billing, customer_id=customer) is not None
