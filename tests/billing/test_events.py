"""Handlers of Stripe events: Checkout links the chat user and greets them once."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from sqlalchemy import select, update

import billing.events  # noqa: F401 - registers the event handlers
from billing.links import find_link
from billing.models import Notice, StripeEvent
from billing.subscriptions import start_checkout
from billing.webhooks import process_pending, record
from tests.billing.conftest import Shop


async def _checkout(shop: Shop, user_id: str = "7", chat_id: str = "70") -> str:
    url = await start_checkout(shop.billing, channel="telegram", user_id=user_id,
                               chat_id=chat_id, price=shop.billing.prices.by_key["basic_monthly"],
                               customer_id=None, locale="en")
    return url.rsplit("/", 1)[1]


def _completed_event(shop: Shop, session_id: str) -> dict[str, Any]:
    found = [e for e in shop.sandbox.events("checkout.session.completed")
             if e["data"]["object"]["id"] == session_id]
    assert len(found) == 1
    return found[0]


async def _deliver(shop: Shop, event: dict[str, Any]) -> None:
    async with shop.billing.db.session() as session:
        await record(session, event)
    await process_pending(shop.billing)


async def _notices(shop: Shop) -> list[Notice]:
    async with shop.billing.db.session() as session:
        return list(await session.scalars(select(Notice)))


async def test_checkout_completed_links_and_welcomes_once(shop: Shop) -> None:
    """It links the chat user named in the session and enqueues one welcome, even twice over."""
    session_id = await _checkout(shop)
    done = await asyncio.to_thread(shop.sandbox.complete_checkout, session_id)
    event = _completed_event(shop, session_id)
    await _deliver(shop, event)
    async with shop.billing.db.session() as session:
        link = await find_link(session, channel="telegram", user_id="7")
        row = await session.get(StripeEvent, event["id"])
    assert link is not None
    assert (link.chat_id, link.customer_id) == ("70", done["customer"])
    assert row is not None and row.status == "processed"
    [welcome] = await _notices(shop)
    assert (welcome.kind, welcome.dedupe_key) == ("welcome", f"welcome:{session_id}")
    assert (welcome.channel, welcome.user_id, welcome.chat_id) == ("telegram", "7", "70")
    item = shop.subscription(done["customer"])["items"]["data"][0]
    assert welcome.params == {"customer": done["customer"], "plan": "Basic", "amount": 900,
                              "currency": "eur", "interval": "month",
                              "renews": item["current_period_end"]}

    # Processed again (a retry after a crash), and delivered again under another id (the sweep).
    async with shop.billing.db.session() as session:
        await session.execute(update(StripeEvent).values(status="pending"))
    await process_pending(shop.billing)
    await _deliver(shop, copy.deepcopy(event) | {"id": "evt_sweep_copy"})
    assert len(await _notices(shop)) == 1


async def test_a_forged_event_for_an_open_session_links_nothing(shop: Shop) -> None:
    """It re-reads the session from Stripe and ignores an event whose session isn't complete."""
    session_id = await _checkout(shop)
    forged = {"id": "evt_forged", "object": "event", "type": "checkout.session.completed",
              "created": 1, "data": {"object": {
                  "id": session_id, "object": "checkout.session", "status": "complete",
                  "customer": shop.customer(plan=None), "client_reference_id": "telegram-7",
                  "metadata": {"portier_channel": "telegram", "portier_user": "7",
                               "portier_chat": "70"}}}}
    await _deliver(shop, forged)
    async with shop.billing.db.session() as session:
        assert await find_link(session, channel="telegram", user_id="7") is None
        row = await session.get(StripeEvent, "evt_forged")
    assert row is not None and row.status == "processed"
    assert await _notices(shop) == []


async def test_a_session_without_portier_metadata_links_nothing(shop: Shop) -> None:
    """It ignores a Checkout Session that Portier did not start."""
    gateway = shop.billing.gateway
    session = await gateway.create_checkout(
        price_id=shop.billing.prices.by_key["pro_monthly"].id, customer_id=None,
        client_reference_id="telegram-7", metadata={"portier_user": "7"},
        success_url="https://shop.example/ok", cancel_url="https://shop.example/no",
        locale="en", key="foreign-checkout")
    await asyncio.to_thread(shop.sandbox.complete_checkout, session["id"])
    await _deliver(shop, _completed_event(shop, session["id"]))
    async with shop.billing.db.session() as session_:
        assert await find_link(session_, channel="telegram", user_id="7") is None
    assert await _notices(shop) == []


async def test_a_reference_naming_another_user_links_nothing(shop: Shop) -> None:
    """It links nobody when the client reference and the metadata disagree."""
    gateway = shop.billing.gateway
    session = await gateway.create_checkout(
        price_id=shop.billing.prices.by_key["pro_monthly"].id, customer_id=None,
        client_reference_id="telegram-8",
        metadata={"portier_channel": "telegram", "portier_user": "7", "portier_chat": "7"},
        success_url="https://shop.example/ok", cancel_url="https://shop.example/no",
        locale="en", key="mismatched-checkout")
    await asyncio.to_thread(shop.sandbox.complete_checkout, session["id"])
    await _deliver(shop, _completed_event(shop, session["id"]))
    async with shop.billing.db.session() as session_:
        for user in ("7", "8"):
            assert await find_link(session_, channel="telegram", user_id=user) is None
