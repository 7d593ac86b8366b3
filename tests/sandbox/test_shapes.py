"""Every object the sandbox serves carries every top-level key of Stripe's example."""

from __future__ import annotations

import stripe

from sandbox import Sandbox
from tests.sandbox.flows import price_id, subscribed
from tests.sandbox.shapes import EXAMPLES, kinds, missing_keys


async def test_every_resource_matches_stripes_example(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """One pass over every resource served: none lacks a key of Stripe's example."""
    sub = await subscribed(client)
    customer = str(sub.customer)
    await client.v1.products.list_async()
    await client.v1.prices.list_async({"expand": ["data.product"]})
    await client.v1.customers.retrieve_async(customer)
    await client.v1.customers.payment_methods.list_async(customer)
    await client.v1.subscriptions.list_async({"customer": customer})
    await client.v1.invoices.list_async({"customer": customer})
    await client.v1.invoices.create_preview_async({"subscription": sub.id})
    await client.v1.checkout.sessions.list_async({"customer": customer})
    await client.v1.billing_portal.sessions.create_async(
        {"customer": customer, "return_url": "https://x.example"}
    )
    await client.v1.webhook_endpoints.create_async(
        {"url": "http://127.0.0.1:9/x", "enabled_events": ["*"]}
    )
    coupon = await client.v1.coupons.create_async({"percent_off": 10, "duration": "forever"})
    await client.v1.subscriptions.update_async(
        sub.id, {"discounts": [{"coupon": coupon.id}], "expand": ["discounts"]}
    )
    await client.v1.subscription_schedules.create_async({"from_subscription": sub.id})
    # A declined first payment: its InvoicePayment and PaymentIntent (with last_payment_error).
    declined = await client.v1.subscriptions.create_async(
        {
            "customer": customer,
            "items": [{"price": await price_id(client, "basic_monthly")}],
            "default_payment_method": "pm_card_chargeDeclinedInsufficientFunds",
        }
    )
    invoice = await client.v1.invoices.retrieve_async(
        str(declined.latest_invoice), {"expand": ["payments.data.payment.payment_intent"]}
    )
    await client.v1.invoice_payments.list_async({"invoice": invoice.id})
    await client.v1.payment_intents.retrieve_async(
        invoice.payments.data[0].payment.payment_intent.id
    )
    await client.v1.events.list_async({"limit": 100})
    assert sandbox.responses is not None
    served = set().union(*(kinds(body) for body in sandbox.responses))
    assert set(EXAMPLES) <= served, f"not exercised: {set(EXAMPLES) - served}"
    problems = [p for body in sandbox.responses for p in missing_keys(body)]
    assert problems == []
