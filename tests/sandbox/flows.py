"""Steps shared by the sandbox tests, done the way Portier does them."""

from __future__ import annotations

import httpx
import stripe


async def price_id(client: stripe.StripeClient, lookup_key: str) -> str:
    """Return the id of the price with this lookup key."""
    prices = await client.v1.prices.list_async({"lookup_keys": [lookup_key]})
    return prices.data[0].id


async def checkout(
    client: stripe.StripeClient,
    lookup_key: str = "basic_monthly",
    payment_method: str = "pm_card_visa",
    email: str = "ada@example.com",
) -> tuple[stripe.checkout.Session, httpx.Response]:
    """Create a Checkout Session and complete its hosted page by POST."""
    session = await client.v1.checkout.sessions.create_async(
        {
            "mode": "subscription",
            "line_items": [{"price": await price_id(client, lookup_key), "quantity": 1}],
            "customer_email": email,
            "client_reference_id": "tg:42",
            "metadata": {"chat": "42"},
            "success_url": "https://portier.example/return?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://portier.example/return?canceled=1",
        }
    )
    assert session.url
    async with httpx.AsyncClient() as http:
        answer = await http.post(session.url, data={"payment_method": payment_method})
    return session, answer


async def subscribed(
    client: stripe.StripeClient,
    lookup_key: str = "basic_monthly",
    payment_method: str = "pm_card_visa",
) -> stripe.Subscription:
    """Subscribe through Checkout and return the subscription, default card expanded."""
    session, answer = await checkout(client, lookup_key, payment_method)
    assert answer.status_code == 303
    done = await client.v1.checkout.sessions.retrieve_async(session.id)
    return await client.v1.subscriptions.retrieve_async(
        str(done.subscription), {"expand": ["default_payment_method", "latest_invoice"]}
    )
