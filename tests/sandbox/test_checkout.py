"""Checkout and the billing portal, completed through their hosted pages."""

from __future__ import annotations

import httpx
import stripe

from sandbox import Sandbox
from tests.sandbox.flows import checkout, subscribed


async def test_checkout_page_creates_a_paid_subscription(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """Posting the hosted page makes customer, card, subscription, paid invoice and events."""
    since = sandbox.now()
    session, answer = await checkout(client, "pro_monthly")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"https://portier.example/return?session={session.id}"

    done = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["subscription"]}
    )
    assert (done.status, done.payment_status, done.client_reference_id) == (
        "complete",
        "paid",
        "tg:42",
    )
    sub = done.subscription
    assert isinstance(sub, stripe.Subscription) and sub.status == "active"
    item = sub["items"].data[0]
    assert item.price.lookup_key == "pro_monthly" and item.quantity == 1
    assert 28 * 86400 <= item.current_period_end - item.current_period_start <= 31 * 86400

    customer = await client.v1.customers.retrieve_async(str(done.customer))
    assert customer.email == "ada@example.com"
    # Checkout (mode=subscription) puts the card on the subscription and attaches it to the
    # customer, leaving the customer's invoice default empty: setting that is a separate step
    # (docs.stripe.com/payments/checkout/subscriptions/update-payment-details).
    assert customer.invoice_settings.default_payment_method is None
    assert isinstance(sub.default_payment_method, str)
    methods = await client.v1.customers.payment_methods.list_async(customer.id)
    assert [m.id for m in methods.data] == [sub.default_payment_method]

    invoices = await client.v1.invoices.list_async({"customer": customer.id})
    [invoice] = invoices.data
    assert (invoice.status, invoice.billing_reason, invoice.amount_paid) == (
        "paid",
        "subscription_create",
        2900,
    )
    assert invoice.parent.subscription_details.subscription == sub.id
    assert invoice.number and invoice.hosted_invoice_url and invoice.invoice_pdf
    assert invoice.lines.data[0].amount == 2900
    async with httpx.AsyncClient() as http:
        pdf = await http.get(invoice.invoice_pdf)
    assert pdf.content.startswith(b"%PDF")

    events = await client.v1.events.list_async({"created": {"gte": since}, "limit": 100})
    types = [e.type for e in reversed(events.data)]
    expected = [
        "customer.created",
        "payment_method.attached",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "checkout.session.completed",
    ]
    assert [t for t in types if t in expected] == expected
    completed = events.data[0]
    assert completed.type == "checkout.session.completed"
    assert completed.data.object.subscription == sub.id


async def test_checkout_page_shows_the_plan(client: stripe.StripeClient) -> None:
    """The hosted page shows product, amount and a test-card choice."""
    session = await client.v1.checkout.sessions.create_async(
        {
            "mode": "subscription",
            "line_items": [
                {
                    "price": (await client.v1.prices.list_async({"lookup_keys": ["basic_yearly"]}))
                    .data[0]
                    .id
                }
            ],
            "success_url": "https://x.example/ok",
        }
    )
    async with httpx.AsyncClient() as http:
        page = await http.get(session.url)
    assert page.status_code == 200
    assert "Basic" in page.text and "€90.00" in page.text and "pm_card_visa" in page.text


async def test_declined_card_on_checkout_changes_nothing(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """A declining card gets the page again with the reason; the session stays open."""
    session, answer = await checkout(client, payment_method="pm_card_visa_chargeDeclined")
    assert answer.status_code == 402 and "declined" in answer.text
    again = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert again.status == "open" and again.subscription is None
    assert (await client.v1.subscriptions.list_async({"status": "all"})).data == []


async def test_portal_sets_a_new_default_card(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """The portal page saves the card as the customer's and the subscription's default."""
    sub = await subscribed(client)
    portal = await client.v1.billing_portal.sessions.create_async(
        {
            "customer": sub.customer,
            "return_url": "https://portier.example/return",
            "flow_data": {"type": "payment_method_update"},
        }
    )
    assert (
        portal.url.endswith(f"/pay/portal/{portal.id}")
        and portal.flow.type == "payment_method_update"
    )
    async with httpx.AsyncClient() as http:
        answer = await http.post(portal.url, data={"payment_method": "pm_card_mastercard"})
    assert (
        answer.status_code == 303 and answer.headers["location"] == "https://portier.example/return"
    )
    customer = await client.v1.customers.retrieve_async(
        str(sub.customer), {"expand": ["invoice_settings.default_payment_method"]}
    )
    card = customer.invoice_settings.default_payment_method.card
    assert (card.brand, card.last4) == ("mastercard", "4444")
    after = await client.v1.subscriptions.retrieve_async(
        sub.id, {"expand": ["default_payment_method"]}
    )
    assert after.default_payment_method.card.last4 == "4444"
    methods = await client.v1.customers.payment_methods.list_async(str(sub.customer))
    assert len(methods.data) == 2


async def test_complete_checkout_from_python(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """Sandbox.complete_checkout does what the hosted page does."""
    price = (await client.v1.prices.list_async({"lookup_keys": ["basic_monthly"]})).data[0]
    customer = await client.v1.customers.create_async({"email": "bo@example.com"})
    session = await client.v1.checkout.sessions.create_async(
        {
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id}],
            "success_url": "https://x.example/ok",
        }
    )
    done = sandbox.complete_checkout(session.id)
    assert done["customer"] == customer.id and done["status"] == "complete"
    subs = await client.v1.subscriptions.list_async(
        {"customer": customer.id, "expand": ["data.default_payment_method"]}
    )
    assert subs.data[0].default_payment_method.card.last4 == "4242"


async def test_checkout_subscription_renews_with_its_own_card(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """A Checkout subscription's renewal is charged to the subscription's card, not a newer
    customer default: `subscription.default_payment_method` overrides the customer's
    `invoice_settings.default_payment_method` (API reference, subscription object; the bug
    this causes is laravel/cashier-stripe issue 1650)."""
    sub = await subscribed(client, payment_method="pm_card_visa")
    declining = await client.v1.payment_methods.attach_async(
        "pm_card_visa_chargeDeclined", {"customer": str(sub.customer)}
    )
    await client.v1.customers.update_async(
        str(sub.customer), {"invoice_settings": {"default_payment_method": declining.id}}
    )
    sandbox.advance_time(32 * 86400)
    invoices = await client.v1.invoices.list_async({"subscription": sub.id})
    renewal = invoices.data[0]
    assert renewal.billing_reason == "subscription_cycle" and renewal.status == "paid"
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).status == "active"


async def test_api_subscription_pays_with_the_customer_default(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """A subscription without a card of its own is charged to the customer's invoice default
    (API reference, `subscription.default_payment_method`: "If not set, invoices will use the
    default payment method in the customer's invoice settings")."""
    customer = sandbox.create_customer(email="cy@example.com", payment_method="pm_card_visa")
    made = sandbox.subscribe(customer["id"], "basic_monthly", payment_method=None)
    assert made["default_payment_method"] is None and made["status"] == "active"
    declining = await client.v1.payment_methods.attach_async(
        "pm_card_visa_chargeDeclined", {"customer": customer["id"]}
    )
    await client.v1.customers.update_async(
        customer["id"], {"invoice_settings": {"default_payment_method": declining.id}}
    )
    sandbox.advance_time(32 * 86400)
    assert (await client.v1.subscriptions.retrieve_async(made["id"])).status == "past_due"
