"""Stripe's deliveries as they really come: repeated, shuffled, simultaneous, forged or missed.

Whatever the delivery, each event is processed once and the local mirror ends equal to the
sandbox's state, field by field; `/plan` then answers without asking Stripe.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

from sqlalchemy import func, select

from billing.models import StripeEvent
from billing.sweep import sweep_events
from sandbox.webhooks import sign
from tests.world import WEBHOOK_SECRET, World, busy_shop, mirror_differences


async def _events(world: World) -> list[tuple[str, int]]:
    async with world.service.runtime.billing.db.session() as session:
        return [(row.status, row.attempts) for row in await session.scalars(select(StripeEvent))]


async def _settled(world: World) -> None:
    """Wait until every delivery is in and no stored event is pending."""
    # The sandbox posts one delivery at a time (~45 ms each: its client waits on Nagle and
    # delayed ACKs), so hundreds of deliveries take longer than World.settle's 10 s.
    assert await asyncio.to_thread(world.sandbox.wait_webhooks_idle, 90)
    for _ in range(20):
        await world.settle()
        if all(status != "pending" for status, _ in await _events(world)):
            return
    raise AssertionError("events still pending")


async def test_triple_shuffled_deliveries_give_the_sandbox_state(world: World) -> None:
    """Each event delivered three times in shuffled batches is processed once; the mirror
    equals the sandbox."""
    world.sandbox.webhook_mode(duplicate=2, shuffle=True, seed=11)
    await busy_shop(world.sandbox, world.service.runtime.billing)
    await _settled(world)
    delivered = Counter(d.event_id for d in world.sandbox.sender.deliveries)
    assert len(delivered) > 100 and set(delivered.values()) == {3}
    assert sorted(await _events(world)) == [("processed", 1)] * len(delivered)
    assert await mirror_differences(world.sandbox, world.service.runtime.billing) == []


async def test_redelivering_everything_changes_nothing(world: World) -> None:
    """Stripe resending every event (twice, shuffled) stores nothing and asks Stripe nothing."""
    await busy_shop(world.sandbox, world.service.runtime.billing)
    await _settled(world)
    stored = await _events(world)
    before = len(world.sandbox.requests)
    delivered = {d.event_id for d in world.sandbox.sender.deliveries}
    sent = world.sandbox.redeliver(delivered, times=2, shuffle=True, seed=5)
    await _settled(world)
    assert len(sent) == 2 * len(stored)
    assert await _events(world) == stored
    assert world.sandbox.requests[before:] == []
    assert await mirror_differences(world.sandbox, world.service.runtime.billing) == []


async def test_simultaneous_deliveries_of_one_event_store_it_once(world: World) -> None:
    """Ten copies of one event posted at the same moment: one is new, nine are duplicates."""
    world.sandbox.create_customer(email="ada@example.com")
    await world.webhooks_idle()
    event = world.sandbox.events("customer.created")[0]
    payload = json.dumps(dict(event, id="evt_simultaneous"), indent=2)

    async def post() -> bool:
        response = await world.http.post(
            f"{world.url}/stripe/webhook", content=payload.encode(),
            headers={"Stripe-Signature": sign(payload, WEBHOOK_SECRET)})
        assert response.status_code == 200
        return bool(response.json()["duplicate"])

    duplicates = await asyncio.gather(*(post() for _ in range(10)))
    assert sorted(duplicates) == [False] + [True] * 9
    await _settled(world)
    async with world.service.runtime.billing.db.session() as session:
        row = await session.get(StripeEvent, "evt_simultaneous")
        assert row is not None and (row.status, row.attempts) == ("processed", 1)


async def test_forged_copies_of_real_events_change_nothing(world: World) -> None:
    """A real event altered, signed with another secret, replayed late or re-serialized gets a
    400 and neither the events nor the mirror change."""
    customer = await world.customer_with_plan()
    await _settled(world)
    event = world.sandbox.events("customer.created")[-1]
    altered = dict(event, id="evt_forged")
    altered["data"] = {"object": dict(event["data"]["object"], email="eve@example.com")}
    body = json.dumps(altered, indent=2)
    stored = await _events(world)
    cases = [
        (body, sign(body, "whsec_someone_else")),
        (body, sign(body, WEBHOOK_SECRET, int(time.time()) - 600)),
        (json.dumps(altered), sign(body, WEBHOOK_SECRET)),
    ]
    for content, signature in cases:
        response = await world.http.post(f"{world.url}/stripe/webhook", content=content.encode(),
                                         headers={"Stripe-Signature": signature})
        assert response.status_code == 400
    await _settled(world)
    assert await _events(world) == stored
    assert await mirror_differences(world.sandbox, world.service.runtime.billing) == []
    assert world.sandbox.get(customer["id"])["email"] == "ada@example.com"


async def test_the_sweep_picks_up_an_event_never_delivered(world: World) -> None:
    """With the webhook off for one change, the sweep of `/v1/events` brings the mirror up to
    date."""
    user, customer = await world.linked_user()
    await _settled(world)
    endpoints = world.sandbox.store.all("webhook_endpoint")
    for endpoint in endpoints:
        endpoint["status"] = "disabled"
    await world.switch_card(customer["id"], "pm_card_mastercard")  # never delivered
    for endpoint in endpoints:
        endpoint["status"] = "enabled"
    assert await mirror_differences(world.sandbox, world.service.runtime.billing) != []
    assert await sweep_events(world.service.runtime.billing) >= 1
    assert await mirror_differences(world.sandbox, world.service.runtime.billing) == []
    before = len(world.sandbox.requests)
    reply = await world.say(user, "/plan")
    assert "Mastercard" in (reply.text or "")
    assert world.sandbox.requests[before:] == []


async def test_plan_in_steady_state_asks_stripe_nothing(world: World) -> None:
    """`/plan` and `/invoices` read the mirror: no Stripe request once events are processed,
    and a change made in Stripe shows as soon as its event is."""
    user, customer = await world.linked_user()
    await _settled(world)
    before = len(world.sandbox.requests)
    for _ in range(3):
        reply = await world.say(user, "/plan")
        assert "Visa" in (reply.text or "")
    await world.say(user, "/invoices")
    assert world.sandbox.requests[before:] == []
    await world.switch_card(customer["id"], "pm_card_mastercard")
    await _settled(world)
    before = len(world.sandbox.requests)
    reply = await world.say(user, "/plan")
    assert "Mastercard" in (reply.text or "")
    assert world.sandbox.requests[before:] == []
    async with world.service.runtime.billing.db.session() as session:
        failed = await session.scalar(select(func.count()).select_from(StripeEvent).where(
            StripeEvent.status != "processed"))
    assert failed == 0
