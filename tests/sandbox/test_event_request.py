"""An event's `request`: which API request caused it, with the idempotency key it sent.

Stripe: `request.id` is the "ID of the API request that caused the event. If null, the event
was automatic (e.g., Stripe's automatic subscription handling)"; `request.idempotency_key` is
"the idempotency key transmitted during the request, if any"
(https://docs.stripe.com/api/events/object#event_object-request). Portier tells its own
changes from those made elsewhere (the Dashboard, another app) by that key.
"""

from __future__ import annotations

from typing import Any

import stripe

from sandbox import Sandbox


async def _updated(sandbox: Sandbox) -> dict[str, Any]:
    return sandbox.events("customer.subscription.updated")[-1]  # the newest


async def test_an_events_request_names_the_request_and_its_idempotency_key(
        client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """A quantity change sent with a key: its event names the request (its Request-Id) and
    the key; one sent without a key names the request and the key the SDK made up for it
    (stripe-python sends a random one with every POST, as the Dashboard has its own); the
    renewal the clock makes names no request."""
    customer = sandbox.create_customer(email="r@example.com", payment_method="pm_card_visa")
    sub = sandbox.subscribe(customer["id"], "team_seat_monthly", quantity=3)
    item = sub["items"]["data"][0]["id"]
    changed = await client.v1.subscriptions.update_async(
        sub["id"], {"items": [{"id": item, "quantity": 5}]},
        {"idempotency_key": "portier-seats-1"})
    event = await _updated(sandbox)
    assert changed.last_response is not None
    assert event["request"] == {"id": changed.last_response.request_id,
                                "idempotency_key": "portier-seats-1"}
    assert str(event["request"]["id"]).startswith("req_")
    assert event["data"]["previous_attributes"]["items"]["data"][0]["quantity"] == 3

    await client.v1.subscriptions.update_async(sub["id"], {"metadata": {"po": "1"}})
    plain = await _updated(sandbox)
    assert plain["id"] != event["id"] and str(plain["request"]["id"]).startswith("req_")
    assert plain["request"]["idempotency_key"] not in (None, "portier-seats-1")

    end = sub["items"]["data"][0]["current_period_end"]
    sandbox.advance_time(end - sandbox.now() + 60)
    renewal = sandbox.events("invoice.paid")[-1]
    assert renewal["data"]["object"]["billing_reason"] == "subscription_cycle"
    assert renewal["request"] == {"id": None, "idempotency_key": None}
