"""pause_collection behaviours and cancel at period end with feedback, and undoing both."""

from __future__ import annotations

import pytest
import stripe

from sandbox import Sandbox
from tests.sandbox.flows import subscribed

DAY = 86400


@pytest.mark.parametrize(
    ("behavior", "status"),
    [("void", "void"), ("keep_as_draft", "draft"), ("mark_uncollectible", "uncollectible")],
)
async def test_pause_handles_renewal_invoice(
    client: stripe.StripeClient, sandbox: Sandbox, behavior: str, status: str
) -> None:
    """A renewal during a pause is voided, kept as draft or marked uncollectible; nothing paid."""
    sub = await subscribed(client)
    paused = await client.v1.subscriptions.update_async(
        sub.id, {"pause_collection": {"behavior": behavior}}
    )
    assert paused.pause_collection.behavior == behavior
    sandbox.advance_time(32 * DAY)
    after = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    assert after.latest_invoice.status == status and after.latest_invoice.amount_paid == 0
    assert after.status == "active"
    cleared = await client.v1.subscriptions.update_async(sub.id, {"pause_collection": ""})
    assert cleared.pause_collection is None


async def test_pause_resumes_at(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """At resumes_at collection resumes by itself and later renewals are charged."""
    sub = await subscribed(client)
    await client.v1.subscriptions.update_async(
        sub.id,
        {"pause_collection": {"behavior": "void", "resumes_at": sandbox.now() + 40 * DAY}},
    )
    sandbox.advance_time(41 * DAY)
    resumed = await client.v1.subscriptions.retrieve_async(sub.id)
    assert resumed.pause_collection is None
    sandbox.advance_time(31 * DAY)
    renewed = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    assert renewed.latest_invoice.status == "paid"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.subscriptions.update_async(
            sub.id, {"pause_collection": {"behavior": "sleep"}}
        )


async def test_cancel_at_period_end_and_undo(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """Cancel with feedback and comment, undo it (cancel_at and reason cleared), cancel again."""
    sub = await subscribed(client)
    end = sub["items"].data[0].current_period_end
    canceling = await client.v1.subscriptions.update_async(
        sub.id,
        {
            "cancel_at_period_end": True,
            "cancellation_details": {"feedback": "switched_service", "comment": "cheaper"},
        },
    )
    details = canceling.cancellation_details
    assert canceling.cancel_at == end and canceling.canceled_at
    assert (details.feedback, details.comment, details.reason) == (
        "switched_service",
        "cheaper",
        "cancellation_requested",
    )
    undone = await client.v1.subscriptions.update_async(sub.id, {"cancel_at_period_end": False})
    assert undone.cancel_at is None and undone.canceled_at is None
    assert undone.cancellation_details.reason is None and not undone.cancel_at_period_end
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.subscriptions.update_async(
            sub.id, {"cancellation_details": {"feedback": "bored"}}
        )
    await client.v1.subscriptions.update_async(
        sub.id, {"cancel_at_period_end": True, "cancellation_details": {"feedback": "unused"}}
    )
    sandbox.advance_time(end - sandbox.now() + 1)
    ended = await client.v1.subscriptions.retrieve_async(sub.id)
    assert ended.status == "canceled" and ended.ended_at == end
    assert ended.cancellation_details.feedback == "unused"
    deleted = sandbox.events("customer.subscription.deleted")
    assert deleted[-1]["data"]["object"]["id"] == sub.id
