"""The control endpoints and trials, as `portier sandbox` users drive them."""

from __future__ import annotations

import time

import httpx
import stripe

from sandbox import Sandbox
from tests.sandbox.flows import price_id

DAY = 86400


async def test_advance_and_now_over_http(sandbox: Sandbox) -> None:
    """POST /_sandbox/advance moves the clock (form or JSON); GET /_sandbox/now reads it."""
    base = sandbox.public_url
    async with httpx.AsyncClient() as http:
        start = (await http.get(f"{base}/_sandbox/now")).json()["now"]
        await http.post(f"{base}/_sandbox/advance", data={"seconds": "3600"})
        moved = (await http.post(f"{base}/_sandbox/advance", json={"seconds": DAY})).json()["now"]
        bad = await http.post(f"{base}/_sandbox/advance", data={"seconds": "soon"})
        for body in ("{not json", "[1]", "[" * 50_000):  # a 400, not a 500
            assert (await http.post(f"{base}/_sandbox/advance", content=body, headers={
                "content-type": "application/json"})).status_code == 400
    assert moved - start >= 3600 + DAY and bad.status_code == 400


async def test_latency_delays_api_answers(sandbox: Sandbox) -> None:
    """POST /_sandbox/latency makes each /v1 request wait that long (a benchmark's slow
    Stripe); 0 turns it off, a bad value is refused."""
    base, auth = sandbox.public_url, {"Authorization": "Bearer sk_test_sandbox"}
    async with httpx.AsyncClient() as http:
        set_ = await http.post(f"{base}/_sandbox/latency", json={"seconds": 0.2})
        started = time.perf_counter()
        slow = await http.get(f"{base}/v1/prices", headers=auth)
        waited = time.perf_counter() - started
        bad = await http.post(f"{base}/_sandbox/latency", data={"seconds": "-1"})
        await http.post(f"{base}/_sandbox/latency", data={"seconds": "0"})
    assert set_.json() == {"latency": 0.2} and slow.status_code == 200 and waited >= 0.2
    assert bad.status_code == 400 and sandbox.latency == 0


async def test_trial_converts_to_paid(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """A trial bills nothing first, warns before its end, then charges and turns active."""
    customer = await client.v1.customers.create_async(
        {
            "email": "t@example.com",
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    sub = await client.v1.subscriptions.create_async(
        {
            "customer": customer.id,
            "items": [{"price": await price_id(client, "basic_monthly")}],
            "trial_period_days": 14,
            "expand": ["latest_invoice"],
        }
    )
    assert sub.status == "trialing" and sub.latest_invoice.amount_due == 0
    sandbox.advance_time(15 * DAY)
    after = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    assert after.status == "active" and after.latest_invoice.amount_paid == 900
    assert sandbox.events("customer.subscription.trial_will_end")
