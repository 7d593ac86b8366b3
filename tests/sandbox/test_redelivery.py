"""Redelivery and out-of-order webhooks, time-driven notices, and the end of smart retries."""

from __future__ import annotations

import json

import stripe

from sandbox import Sandbox
from tests.sandbox.conftest import Receiver
from tests.sandbox.flows import price_id, subscribed

DAY = 86400


def _ids(receiver: Receiver, secret: str) -> list[str]:
    return [stripe.Webhook.construct_event(b, s, secret).id for b, s in receiver.received]


async def test_redeliver_signs_again_and_shuffles(
    client: stripe.StripeClient, sandbox: Sandbox, receiver: Receiver
) -> None:
    """redeliver() sends stored events again, freshly signed, repeated and shuffled by seed."""
    sandbox.set_webhook(receiver.url, "whsec_r")
    await subscribed(client)
    assert sandbox.wait_webhooks_idle(timeout=10)
    first = _ids(receiver, "whsec_r")
    receiver.received.clear()
    order = sandbox.redeliver(times=2, shuffle=True, seed=7)
    assert sandbox.wait_webhooks_idle(timeout=10)
    assert sorted(order) == sorted(first * 2) and order != first * 2
    assert _ids(receiver, "whsec_r") == order
    assert sandbox.redeliver(times=2, shuffle=True, seed=7) == order


async def test_webhook_mode_duplicates_and_shuffles(
    client: stripe.StripeClient, sandbox: Sandbox, receiver: Receiver
) -> None:
    """webhook_mode(duplicate=1, shuffle=True) sends each event twice, a batch mixed up."""
    sandbox.set_webhook(receiver.url, "whsec_m")
    sandbox.webhook_mode(duplicate=1, shuffle=True, seed=3)
    await subscribed(client)
    assert sandbox.wait_webhooks_idle(timeout=10)
    got = _ids(receiver, "whsec_m")
    recorded = [e["id"] for e in sandbox.events()]
    assert sorted(got) == sorted(recorded * 2)
    assert got != [i for i in recorded for _ in range(2)]
    sandbox.webhook_mode()
    receiver.received.clear()
    await client.v1.customers.create_async({"email": "in-order@example.com"})
    assert sandbox.wait_webhooks_idle(timeout=10)
    assert len(receiver.received) == 1


async def test_retries_end_unpaid_when_set(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """With after_final_retry='unpaid' the last failed retry leaves the subscription unpaid."""
    sandbox.after_final_retry = "unpaid"
    sub = await subscribed(client)
    await client.v1.subscriptions.update_async(
        sub.id, {"default_payment_method": "pm_card_visa_chargeDeclined"}
    )
    sandbox.advance_time(32 * DAY)
    invoice = (
        await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    ).latest_invoice
    assert invoice.next_payment_attempt == invoice.status_transitions.finalized_at + 3 * DAY
    sandbox.advance_time(16 * DAY)
    after = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    assert after.status == "unpaid" and after.latest_invoice.attempt_count == 4
    assert after.latest_invoice.next_payment_attempt is None
    await client.v1.invoices.pay_async(after.latest_invoice.id, {"payment_method": "pm_card_visa"})
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).status == "active"


async def test_time_driven_notices(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """trial_will_end 3 days before trial end, invoice.upcoming, payment_action_required."""
    customer = await client.v1.customers.create_async(
        {
            "payment_method": "pm_card_authenticationRequired",
            "invoice_settings": {"default_payment_method": "pm_card_authenticationRequired"},
        }
    )
    sub = await client.v1.subscriptions.create_async(
        {
            "customer": customer.id,
            "items": [{"price": await price_id(client, "basic_monthly")}],
            "trial_period_days": 7,
            "cancel_at_period_end": False,
        }
    )
    sandbox.advance_time(4 * DAY + 60)
    trial = sandbox.events("customer.subscription.trial_will_end")
    assert len(trial) == 1 and trial[0]["created"] == sub.trial_end - 3 * DAY
    assert sandbox.events("invoice.upcoming")
    sandbox.advance_time(3 * DAY)
    required = sandbox.events("invoice.payment_action_required")
    assert required and json.dumps(required[0]["data"]["object"]["status"]) == '"open"'
