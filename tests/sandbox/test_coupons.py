"""Coupons and the discounts they give subscriptions, in invoices and previews."""

from __future__ import annotations

import pytest
import stripe

from sandbox import Sandbox
from tests.sandbox.flows import subscribed

DAY = 86400


async def test_coupon_create_retrieve_list(client: stripe.StripeClient) -> None:
    """Coupons are created with percent or amount off and a duration, then read back."""
    pct = await client.v1.coupons.create_async(
        {"percent_off": 20, "duration": "repeating", "duration_in_months": 3, "id": "SAVE20"}
    )
    amount = await client.v1.coupons.create_async(
        {"amount_off": 500, "currency": "eur", "duration": "once", "name": "Five off"}
    )
    assert (pct.id, pct.percent_off, pct.duration_in_months) == ("SAVE20", 20, 3)
    assert (await client.v1.coupons.retrieve_async(amount.id)).amount_off == 500
    assert {c.id for c in (await client.v1.coupons.list_async()).data} == {pct.id, amount.id}
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.coupons.create_async({"amount_off": 500, "duration": "once"})
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.coupons.create_async({"percent_off": 10, "duration": "repeating"})


async def test_forever_coupon_on_subscription(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """A forever coupon shows in discounts (ids or objects), previews and every renewal."""
    sub = await subscribed(client)
    coupon = await client.v1.coupons.create_async({"percent_off": 25, "duration": "forever"})
    updated = await client.v1.subscriptions.update_async(
        sub.id, {"discounts": [{"coupon": coupon.id}], "expand": ["discounts"]}
    )
    discount = updated.discounts[0]
    assert discount.object == "discount" and discount.source.coupon == coupon.id
    plain = await client.v1.subscriptions.retrieve_async(sub.id)
    assert plain.discounts == [discount.id]
    preview = await client.v1.invoices.create_preview_async({"subscription": sub.id})
    assert preview.amount_due == 675 and preview.subtotal == 900
    assert preview.total_discount_amounts[0].amount == 225
    for _ in range(2):
        sandbox.advance_time(32 * DAY)
        renewed = await client.v1.subscriptions.retrieve_async(
            sub.id, {"expand": ["latest_invoice"]}
        )
        invoice = renewed.latest_invoice
        assert invoice.amount_paid == 675 and invoice.discounts == [discount.id]
        assert invoice.lines.data[0].discount_amounts[0].amount == 225


async def test_once_coupon_applies_to_one_invoice(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """A once coupon takes off one invoice, then leaves the subscription."""
    sub = await subscribed(client)
    coupon = await client.v1.coupons.create_async(
        {"amount_off": 500, "currency": "eur", "duration": "once"}
    )
    await client.v1.subscriptions.update_async(sub.id, {"discounts": [{"coupon": coupon.id}]})
    sandbox.advance_time(32 * DAY)
    first = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    assert first.latest_invoice.amount_paid == 400 and first.discounts == []
    sandbox.advance_time(31 * DAY)
    second = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    assert second.latest_invoice.amount_paid == 900
    assert (await client.v1.coupons.retrieve_async(coupon.id)).times_redeemed == 1


async def test_discount_in_upgrade_preview_and_delete(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """Previews of a change include the discount; DELETE …/discount removes it."""
    sub = await subscribed(client)
    coupon = await client.v1.coupons.create_async({"percent_off": 50, "duration": "forever"})
    await client.v1.subscriptions.update_async(sub.id, {"discounts": [{"coupon": coupon.id}]})
    sandbox.advance_time(DAY)
    preview = await client.v1.invoices.create_preview_async(
        {
            "subscription": sub.id,
            "subscription_details": {
                "items": [
                    {
                        "id": sub["items"].data[0].id,
                        "price": sub["items"].data[0].price.id,
                        "quantity": 2,
                    }
                ],
                "proration_behavior": "always_invoice",
            },
        }
    )
    assert preview.amount_due == round(preview.subtotal / 2)
    removed = await client.v1.subscriptions.delete_discount_async(sub.id)
    assert removed.deleted is True
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).discounts == []
    after = await client.v1.invoices.create_preview_async({"subscription": sub.id})
    assert after.amount_due == 900 and after.total_discount_amounts == []
