"""`POST /stripe/webhook`: verified on the raw body, stored once, nothing stored otherwise."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from sqlalchemy import func, select

from billing.models import StripeEvent
from tests.world import WEBHOOK_SECRET, World


def _sign(body: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _event(event_id: str = "evt_test_1") -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": "customer.updated",
                       "created": int(time.time()), "livemode": False,
                       "data": {"object": {"id": "cus_1", "object": "customer"}}}).encode()


async def _stored(world: World) -> int:
    async with world.service.runtime.billing.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(StripeEvent)) or 0)


async def test_signed_event_is_stored_once(world: World) -> None:
    """A signed event is stored and answered 2xx; its duplicate changes nothing."""
    body = _event()
    url = f"{world.url}/stripe/webhook"
    first = await world.http.post(url, content=body, headers={"Stripe-Signature": _sign(body)})
    second = await world.http.post(url, content=body, headers={"Stripe-Signature": _sign(body)})
    assert first.status_code == 200 and first.json()["duplicate"] is False
    assert second.status_code == 200 and second.json()["duplicate"] is True
    assert await _stored(world) == 1


async def test_forged_stale_and_reserialized_events_are_refused(world: World) -> None:
    """Unsigned, wrongly signed, stale or re-serialized bodies get 400 and nothing is stored."""
    body = _event()
    url = f"{world.url}/stripe/webhook"
    reserialized = json.dumps(json.loads(body), indent=2).encode()
    cases = [
        {},
        {"Stripe-Signature": _sign(body, secret="whsec_someone_else")},
        {"Stripe-Signature": _sign(body, at=int(time.time()) - 3600)},
        {"Stripe-Signature": "t=1,v1=deadbeef"},
    ]
    for headers in cases:
        assert (await world.http.post(url, content=body, headers=headers)).status_code == 400
    forged = await world.http.post(url, content=reserialized,
                                   headers={"Stripe-Signature": _sign(body)})
    assert forged.status_code == 400
    garbage = await world.http.post(url, content=b"not json",
                                    headers={"Stripe-Signature": _sign(b"not json")})
    assert garbage.status_code == 400
    assert await _stored(world) == 0


async def test_sandbox_checkout_events_arrive_signed(world: World) -> None:
    """The sandbox's own deliveries of a Checkout are verified and recorded, each once."""
    customer = await world.customer_with_plan()
    await world.settle()
    assert customer["id"]
    deliveries = world.sandbox.sender.deliveries
    assert deliveries and all(d.status == 200 for d in deliveries)
    assert await _stored(world) == len({d.event_id for d in deliveries})
