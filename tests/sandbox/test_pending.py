"""payment_behavior on plan changes: pending updates, refusals, and incomplete payments."""

from __future__ import annotations

import pytest
import stripe

from sandbox import Sandbox
from tests.sandbox.flows import price_id, subscribed

DAY = 86400


async def _upgrade(
    client: stripe.StripeClient, sub: stripe.Subscription, payment_behavior: str
) -> stripe.Subscription:
    return await client.v1.subscriptions.update_async(
        sub.id,
        {
            "items": [
                {"id": sub["items"].data[0].id, "price": await price_id(client, "pro_monthly")}
            ],
            "proration_behavior": "always_invoice",
            "payment_behavior": payment_behavior,
            "expand": ["latest_invoice"],
        },
    )


async def _declining(client: stripe.StripeClient, sub: stripe.Subscription) -> None:
    await client.v1.subscriptions.update_async(
        sub.id, {"default_payment_method": "pm_card_visa_chargeDeclined"}
    )


async def test_pending_update_waits_for_payment(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """A declined pending_if_incomplete upgrade keeps the plan; paying the invoice applies it."""
    sub = await subscribed(client)
    await _declining(client, sub)
    sandbox.advance_time(5 * DAY)
    updated = await _upgrade(client, sub, "pending_if_incomplete")
    assert updated.status == "active"
    assert updated["items"].data[0].price.lookup_key == "basic_monthly"
    pending = updated.pending_update
    assert pending is not None and pending.expires_at <= sandbox.now() + 23 * 3600
    assert pending.subscription_items[0].price.lookup_key == "pro_monthly"
    assert pending.subscription_items[0].id == sub["items"].data[0].id
    invoice = updated.latest_invoice
    assert invoice.status == "open" and invoice.amount_due > 0

    await client.v1.invoices.pay_async(invoice.id, {"payment_method": "pm_card_visa"})
    after = await client.v1.subscriptions.retrieve_async(sub.id)
    assert after.pending_update is None
    assert after["items"].data[0].price.lookup_key == "pro_monthly"
    assert sandbox.events("customer.subscription.pending_update_applied")


async def test_pending_update_expires(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """Left unpaid, the pending update is discarded after 23 hours and its invoice voided."""
    sub = await subscribed(client)
    await _declining(client, sub)
    updated = await _upgrade(client, sub, "pending_if_incomplete")
    sandbox.advance_time(DAY)
    after = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    assert after.pending_update is None and after.latest_invoice.status == "void"
    assert after["items"].data[0].price.lookup_key == "basic_monthly"
    assert updated.latest_invoice.id == after.latest_invoice.id
    assert sandbox.events("customer.subscription.pending_update_expired")


async def test_pending_update_paid_at_once(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """With a working card the pending_if_incomplete change applies at once."""
    sub = await subscribed(client)
    updated = await _upgrade(client, sub, "pending_if_incomplete")
    assert updated.pending_update is None and updated.latest_invoice.status == "paid"
    assert updated["items"].data[0].price.lookup_key == "pro_monthly"
    assert not sandbox.events("customer.subscription.pending_update_applied")


async def test_error_if_incomplete_refuses(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """error_if_incomplete answers 402 and leaves items and invoices as they were."""
    sub = await subscribed(client)
    await _declining(client, sub)
    invoices = len((await client.v1.invoices.list_async({"subscription": sub.id})).data)
    with pytest.raises(stripe.CardError):
        await _upgrade(client, sub, "error_if_incomplete")
    same = await client.v1.subscriptions.retrieve_async(sub.id)
    assert same["items"].data[0].price.lookup_key == "basic_monthly"
    assert same.pending_update is None and same.status == "active"
    assert len((await client.v1.invoices.list_async({"subscription": sub.id})).data) == invoices


async def test_allow_incomplete_applies_and_goes_past_due(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """allow_incomplete applies the change; the unpaid invoice makes the subscription past_due."""
    sub = await subscribed(client)
    await _declining(client, sub)
    updated = await _upgrade(client, sub, "allow_incomplete")
    assert updated["items"].data[0].price.lookup_key == "pro_monthly"
    assert updated.status == "past_due" and updated.latest_invoice.status == "open"
    assert updated.latest_invoice.next_payment_attempt is not None
