"""What each chat action costs in Stripe requests, for customers as Checkout leaves them.

Stripe allows 25 requests a second in test mode and 100 live, for the whole account: that,
not CPU, is the bot's ceiling. The chat path of an action and the webhooks it causes are
counted apart: the events are held back while the user acts, then delivered.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from tests.fakes.telegram_objects import BotMessage, FakeUser
from tests.world import World


def _endpoints(world: World, status: str) -> None:
    for endpoint in world.sandbox.store.all("webhook_endpoint"):
        endpoint["status"] = status


def _since(world: World, before: int) -> list[tuple[str, str]]:
    return world.sandbox.requests[before:]


def _rereads(requests: list[tuple[str, str]]) -> Counter[str]:
    """Count the GETs of single objects by object id (`/v1/subscriptions/sub_…`)."""
    found = (re.fullmatch(r"/v1/\w+/(\w+_\w+)", path) for method, path in requests
             if method == "GET")
    return Counter(m.group(1) for m in found if m)


async def _press(world: World, user: FakeUser, message: BotMessage, label: str) -> BotMessage:
    reply = await world.press(user, message, label)
    assert not isinstance(reply, str), reply
    return reply


async def _deliver_held(world: World, first_event: int) -> None:
    """Deliver the events held back since the `first_event`-th, as Stripe would, and settle."""
    held = [e["id"] for e in world.sandbox.events()[first_event:]]
    _endpoints(world, "enabled")
    world.sandbox.redeliver(held)
    await world.settle()


async def test_plan_asks_stripe_nothing_and_shows_the_card_that_pays(world: World) -> None:
    """`/plan` of a Checkout customer (the card on the subscription, none on the customer)
    is answered from the mirror with that card: 0 Stripe requests."""
    user, customer = await world.linked_user(card="pm_card_mastercard")
    assert world.sandbox.get(customer["id"])["invoice_settings"]["default_payment_method"] is None
    await world.settle()
    before = len(world.sandbox.requests)
    reply = await world.say(user, "/plan")
    assert "Mastercard •••• 4444" in (reply.text or ""), reply.text
    assert _since(world, before) == []


async def test_a_card_saved_in_the_portal_shows_in_plan(world: World) -> None:
    """After the portal's webhooks, `/plan` shows the new card, still without asking Stripe."""
    user, customer = await world.linked_user(card="pm_card_visa")
    await world.switch_card(customer["id"], "pm_card_mastercard")
    await world.settle()
    before = len(world.sandbox.requests)
    reply = await world.say(user, "/plan")
    assert "Mastercard •••• 4444" in (reply.text or ""), reply.text
    assert _since(world, before) == []


async def test_a_confirmed_upgrade_costs_three_requests_and_one_reread_per_object(
        world: World) -> None:
    """Confirm: the subscription, the preview again, the update — 3 requests; the events it
    causes re-read each changed object at most once (the subscription not at all: the mirror
    was written from the update's answer)."""
    user, customer = await world.linked_user("basic_monthly")
    await world.settle()
    plan = await world.say(user, "/plan")
    options = await _press(world, user, plan, "Change plan")
    preview = await _press(world, user, options, "Pro · €29.00 per month · upgrade")
    first_event = len(world.sandbox.events())
    _endpoints(world, "disabled")
    before = len(world.sandbox.requests)
    done = await _press(world, user, preview, "Confirm")
    chat = _since(world, before)
    assert "Pro" in (done.text or ""), done.text
    assert len(chat) <= 3, chat
    print(f"Confirm, chat path: {len(chat)} Stripe requests {chat}")

    before = len(world.sandbox.requests)
    await _deliver_held(world, first_event)
    rereads = _rereads(_since(world, before))
    sub = next(s for s in world.sandbox.store.all("subscription")
               if s["customer"] == customer["id"])
    assert rereads[sub["id"]] == 0, rereads
    assert all(count <= 1 for count in rereads.values()), rereads
    print(f"Confirm, webhooks: {sum(rereads.values())} re-reads {dict(rereads)}")
    before = len(world.sandbox.requests)
    plan = await world.say(user, "/plan")
    assert "Pro" in (plan.text or "") and _since(world, before) == []


async def test_a_scheduled_downgrade_costs_three_requests(world: World) -> None:
    """A downgrade queued for the period end: the subscription, the schedule made and phased;
    /plan then shows it from the mirror."""
    user, _ = await world.linked_user("pro_monthly")
    await world.settle()
    plan = await world.say(user, "/plan")
    options = await _press(world, user, plan, "Change plan")
    preview = await _press(world, user, options, "Basic · €9.00 per month · downgrade")
    await world.settle()
    first_event = len(world.sandbox.events())
    _endpoints(world, "disabled")  # the chat path alone, no webhook re-read among its count
    before = len(world.sandbox.requests)
    await _press(world, user, preview, "Confirm")
    chat: list[Any] = _since(world, before)
    assert len(chat) <= 3, chat
    await _deliver_held(world, first_event)
    before = len(world.sandbox.requests)
    plan = await world.say(user, "/plan")
    assert "Changes to Basic" in (plan.text or ""), plan.text
    assert _since(world, before) == []
