"""The sweep of `/v1/events`: events that never reached the webhook are stored and processed."""

from __future__ import annotations

from sqlalchemy import select

from billing.models import StripeEvent
from billing.sweep import sweep_events
from billing.webhooks import record
from tests.billing.conftest import Shop
from tests.world import mirror_differences


async def _stored(shop: Shop) -> dict[str, str]:
    async with shop.billing.db.session() as session:
        return {row.id: row.status for row in await session.scalars(select(StripeEvent))}


async def test_sweeps_events_never_delivered(shop: Shop) -> None:
    """It stores every event missing here, processes them and fills the mirror."""
    shop.customer()
    events = shop.sandbox.events()
    async with shop.billing.db.session() as session:  # the webhook got only the first one
        await record(session, events[0])
    assert await sweep_events(shop.billing) == len(events) - 1
    assert await _stored(shop) == {event["id"]: "processed" for event in events}
    assert await mirror_differences(shop.sandbox, shop.billing) == []


async def test_a_second_sweep_finds_nothing_new(shop: Shop) -> None:
    """It stores nothing twice."""
    shop.customer()
    assert await sweep_events(shop.billing) > 0
    assert await sweep_events(shop.billing, days=3) == 0


async def test_stores_missed_events_oldest_first(shop: Shop) -> None:
    """It stores missed events in Stripe's order, so they are processed in that order."""
    shop.customer()
    await sweep_events(shop.billing)
    async with shop.billing.db.session() as session:
        rows = list(await session.scalars(select(StripeEvent).order_by(StripeEvent.received_at)))
    created = [row.created for row in rows]
    assert created == sorted(created)
    assert {row.id for row in rows} == {event["id"] for event in shop.sandbox.events()}


async def test_pages_through_many_events(shop: Shop) -> None:
    """It follows the list's pages (100 events a page)."""
    for n in range(25):  # five or more events each
        shop.customer(email=f"u{n}@example.com")
    total = len(shop.sandbox.events())
    assert total > 100
    assert await sweep_events(shop.billing) == total
    assert sum(1 for method, path in shop.sandbox.requests
               if (method, path) == ("GET", "/v1/events")) == -(-total // 100)
