"""Team intents (billing.team_intents): recorded once, resumed only when left pending a while,
settled once with the intent's idempotency key; no answer from Stripe waits for the next pass,
a refusal fails it and tells the admin. Against the Stripe sandbox."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from sqlalchemy import select, update

from billing import seats, team_intents
from billing.gateway import StripeGateway
from billing.models import Notice
from billing.slack_models import TeamIntent
from tests.billing.conftest import API_KEY, Shop

TEAM, ADMIN = "T0001", "U0001"


async def _team(shop: Shop, count: int = 2) -> str:
    url = await seats.start_team_checkout(shop.billing, team_id=TEAM, user_id=ADMIN,
                                          seats=count, locale="en")
    done = await asyncio.to_thread(shop.sandbox.complete_checkout, url.rsplit("/", 1)[1])
    return str(done["customer"])


async def _seat_change(shop: Shop, customer: str, seats_to: int = 3,
                       ref: str | None = None) -> team_intents.Intent | None:
    """Record the Confirm of a previewed change, as handlers.flows.team does."""
    preview = await seats.preview_seats(shop.billing, customer_id=customer, seats=seats_to,
                                        assigned=0)
    async with shop.billing.db.session() as session:
        return await team_intents.record(
            session, channel="slack", team_id=TEAM, kind=team_intents.SEATS, ref=ref,
            params={"customer": customer, "seats": seats_to,
                    "proration_date": preview.proration_date, "amount": preview.prorated,
                    "before": preview.current_seats, "by": "ada", "actor": ADMIN})


def _quantity(shop: Shop, customer: str) -> int:
    return int(shop.subscription(customer)["items"]["data"][0]["quantity"])


def _updates(shop: Shop, customer: str) -> int:
    return len(shop.sandbox.store.quantity_updates.get(shop.subscription(customer)["id"], []))


async def _rows(shop: Shop) -> list[tuple[str, int]]:
    async with shop.billing.db.session() as session:
        found = (await session.scalars(select(TeamIntent).order_by(TeamIntent.id))).all()
        return [(row.status, row.attempts) for row in found]


async def _told(shop: Shop) -> list[tuple[str, dict[str, Any]]]:
    async with shop.billing.db.session() as session:
        found = (await session.scalars(select(Notice).where(
            Notice.kind.in_([team_intents.INTENT_DONE, team_intents.INTENT_FAILED]))
            .order_by(Notice.id))).all()
        return [(n.kind, dict(n.params)) for n in found]


async def test_one_confirm_names_one_intent(shop: Shop) -> None:
    """A second record under the same name (a double tap) records nothing."""
    customer = await _team(shop)
    first = await _seat_change(shop, customer, ref="seats:T0001:3")
    assert first is not None
    assert await _seat_change(shop, customer, ref="seats:T0001:3") is None
    async with shop.billing.db.session() as session:
        assert (await team_intents.named(session, "seats:T0001:3")) == first
    assert await _rows(shop) == [("pending", 0)]


async def test_the_resumer_waits_then_settles_a_pending_change_once(shop: Shop) -> None:
    """An intent younger than `older_than` is the chat path's, still at work: left alone.
    Older, it is applied once (one quantity update) and the admin is told it is done."""
    customer = await _team(shop)
    assert await _seat_change(shop, customer) is not None
    assert await team_intents.resume(shop.billing, older_than=30) == 0
    assert _quantity(shop, customer) == 2 and await _rows(shop) == [("pending", 0)]
    assert await team_intents.resume(shop.billing, older_than=0) == 1
    assert _quantity(shop, customer) == 3 and _updates(shop, customer) == 1
    assert await _rows(shop) == [("done", 1)]
    assert [kind for kind, _ in await _told(shop)] == [team_intents.INTENT_DONE]
    assert await team_intents.resume(shop.billing, older_than=0) == 0


async def test_an_update_stripe_applied_is_sent_again_and_replayed(shop: Shop) -> None:
    """The update went through before the crash: the resumer sends it again with the
    intent's key and Stripe answers the saved result (docs.stripe.com/api/idempotent_requests)
    — one quantity update, one saved key, the intent done with the seats it had before."""
    customer = await _team(shop)
    intent = await _seat_change(shop, customer)
    assert intent is not None
    params = intent.params
    await seats.confirm_seats(shop.billing, customer_id=customer, seats=3,
                              proration_date=params["proration_date"],
                              amount=params["amount"], key=intent.key)
    assert await team_intents.resume(shop.billing, older_than=0) == 1
    assert _quantity(shop, customer) == 3 and _updates(shop, customer) == 1
    keys = [k for (_, k) in shop.sandbox.store.idempotency if k == intent.key]
    assert keys == [intent.key]
    assert await _rows(shop) == [("done", 1)]


async def test_no_answer_waits_for_the_next_pass_then_fails(
        shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stripe answering 500 (the update may have been done) leaves the intent pending for
    the next pass; after MAX_ATTEMPTS passes it fails and the admin is told."""
    customer = await _team(shop)
    assert await _seat_change(shop, customer) is not None
    monkeypatch.setattr(team_intents, "MAX_ATTEMPTS", 2)
    # A gateway that does not retry by itself: each pass meets the 500 once.
    gateway = StripeGateway(API_KEY, api_base=shop.base_url, max_retries=0)
    billing = dataclasses.replace(shop.billing, gateway=gateway)
    try:
        shop.sandbox.fail_next(500, path_prefix="/v1/subscriptions/")
        assert await team_intents.resume(billing, older_than=0) == 0
        assert await _rows(shop) == [("pending", 1)]
        shop.sandbox.fail_next(500, path_prefix="/v1/subscriptions/")
        assert await team_intents.resume(billing, older_than=0) == 1
    finally:
        await gateway.close()
    assert await _rows(shop) == [("failed", 2)]
    assert _quantity(shop, customer) == 2
    told = await _told(shop)
    assert [(kind, p["reason"], p["seats"]) for kind, p in told] == [
        (team_intents.INTENT_FAILED, "stripe_unavailable", 3)]


async def test_a_moved_price_fails_the_resumed_change(shop: Shop) -> None:
    """The preview's amount no longer holds (another change since): nothing is changed, the
    intent fails as moved, and its name is free for a new try."""
    customer = await _team(shop)
    intent = await _seat_change(shop, customer, ref="seats:T0001:moved")
    assert intent is not None
    async with shop.billing.db.session() as session:
        await session.execute(update(TeamIntent).values(
            params={**intent.params, "amount": intent.params["amount"] + 1}))
    assert await team_intents.resume(shop.billing, older_than=0) == 1
    assert _quantity(shop, customer) == 2 and _updates(shop, customer) == 0
    assert await _rows(shop) == [("failed", 1)]
    assert [p["reason"] for _, p in await _told(shop)] == [team_intents.MOVED]
    async with shop.billing.db.session() as session:
        assert await team_intents.named(session, "seats:T0001:moved") is None
