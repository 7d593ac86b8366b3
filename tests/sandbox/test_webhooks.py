"""Events: recorded for GET /v1/events and delivered, signed, to webhook endpoints."""

from __future__ import annotations

import json

import stripe

from sandbox import Sandbox
from tests.sandbox.conftest import Receiver
from tests.sandbox.flows import subscribed


async def test_webhooks_are_signed_and_ordered(
    client: stripe.StripeClient, sandbox: Sandbox, receiver: Receiver
) -> None:
    """Every event reaches the endpoint in order, verifiable with construct_event, after a retry."""
    sandbox.set_webhook(receiver.url, "whsec_portier")
    await subscribed(client)
    assert sandbox.wait_webhooks_idle(timeout=10)
    delivered = [
        stripe.Webhook.construct_event(body, sig, "whsec_portier")
        for body, sig in receiver.received
    ]
    recorded = await client.v1.events.list_async({"limit": 100})
    assert [e.id for e in delivered] == [e.id for e in reversed(recorded.data)]
    assert delivered[-1].type == "checkout.session.completed"
    assert sandbox.sender.deliveries[0].attempts == 2
    raw = json.loads(receiver.received[0][0])
    assert raw["object"] == "event" and raw["api_version"] == "2026-10-28.endive"


async def test_wrong_secret_fails_verification(
    sandbox: Sandbox, receiver: Receiver, client: stripe.StripeClient
) -> None:
    """A signature made with another secret does not verify."""
    sandbox.set_webhook(receiver.url, "whsec_right")
    await client.v1.customers.create_async({"email": "w@example.com"})
    assert sandbox.wait_webhooks_idle(timeout=10)
    body, sig = receiver.received[0]
    try:
        stripe.Webhook.construct_event(body, sig, "whsec_wrong")
    except stripe.SignatureVerificationError:
        pass
    else:
        raise AssertionError("a wrong secret must not verify")


async def test_webhook_endpoints_api(
    client: stripe.StripeClient, sandbox: Sandbox, receiver: Receiver
) -> None:
    """Endpoints made over the API get a secret and only the events they asked for."""
    endpoint = await client.v1.webhook_endpoints.create_async(
        {"url": receiver.url, "enabled_events": ["customer.created"]}
    )
    assert endpoint.secret and endpoint.secret.startswith("whsec_")
    await client.v1.customers.create_async(
        {"email": "e@example.com", "payment_method": "pm_card_visa"}
    )
    assert sandbox.wait_webhooks_idle(timeout=10)
    types = [
        stripe.Webhook.construct_event(b, s, endpoint.secret).type for b, s in receiver.received
    ]
    assert types == ["customer.created"]
    listed = await client.v1.webhook_endpoints.list_async()
    assert [e.id for e in listed.data] == [endpoint.id]
    await client.v1.webhook_endpoints.delete_async(endpoint.id)
    assert (await client.v1.webhook_endpoints.list_async()).data == []


async def test_events_filter_and_page(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """GET /v1/events filters by type, types[] and created, newest first, with cursors."""
    before = sandbox.now()
    await subscribed(client)
    invoices = await client.v1.events.list_async({"types": ["invoice.paid", "invoice.created"]})
    assert {e.type for e in invoices.data} == {"invoice.paid", "invoice.created"}
    wildcard = await client.v1.events.list_async({"type": "invoice.*"})
    assert len(wildcard.data) >= 4
    sandbox.advance_time(3600)
    later = await client.v1.events.list_async({"created": {"gt": before + 1800}})
    assert later.data == []
    page = await client.v1.events.list_async({"limit": 3})
    rest = await client.v1.events.list_async({"limit": 100, "starting_after": page.data[-1].id})
    assert page.has_more and len(page.data) + len(rest.data) == len(sandbox.events())
    one = await client.v1.events.retrieve_async(page.data[0].id)
    assert one.type == page.data[0].type
