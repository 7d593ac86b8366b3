"""Subscription schedules: a price change queued for the period end, release and cancel."""

from __future__ import annotations

import stripe

from sandbox import Sandbox
from tests.sandbox.flows import price_id, subscribed

DAY = 86400


async def _scheduled_downgrade(
    client: stripe.StripeClient, sub: stripe.Subscription
) -> stripe.SubscriptionSchedule:
    schedule = await client.v1.subscription_schedules.create_async({"from_subscription": sub.id})
    phase = schedule.phases[0]
    return await client.v1.subscription_schedules.update_async(
        schedule.id,
        {
            "end_behavior": "release",
            "phases": [
                {
                    "items": [{"price": phase["items"][0].price, "quantity": 1}],
                    "start_date": phase.start_date,
                    "end_date": phase.end_date,
                },
                {"items": [{"price": await price_id(client, "basic_monthly"), "quantity": 1}]},
            ],
        },
    )


async def test_phase_switches_price_at_period_end(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """At the phase boundary the item takes the next phase's price and the renewal bills it."""
    sub = await subscribed(client, "pro_monthly")
    item = sub["items"].data[0]
    schedule = await _scheduled_downgrade(client, sub)
    assert schedule.status == "active" and len(schedule.phases) == 2
    assert schedule.current_phase.end_date == item.current_period_end
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).schedule == schedule.id
    preview = await client.v1.invoices.create_preview_async({"subscription": sub.id})
    assert preview.amount_due == 900

    sandbox.advance_time(item.current_period_end - sandbox.now() + 60)
    after = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    assert after["items"].data[0].price.lookup_key == "basic_monthly"
    assert after.latest_invoice.amount_paid == 900
    assert sandbox.events("subscription_schedule.updated")
    updated = [
        e
        for e in sandbox.events("customer.subscription.updated")
        if e["data"]["object"]["items"]["data"][0]["price"]["lookup_key"] == "basic_monthly"
    ]
    assert updated

    sandbox.advance_time(32 * DAY)
    released = await client.v1.subscription_schedules.retrieve_async(schedule.id)
    assert released.status == "released" and released.released_subscription == sub.id
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).schedule is None
    assert sandbox.events("subscription_schedule.released")


async def test_release_and_list(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """Releasing keeps the subscription as it is; schedules list by customer."""
    sub = await subscribed(client, "pro_monthly")
    schedule = await _scheduled_downgrade(client, sub)
    listed = await client.v1.subscription_schedules.list_async({"customer": str(sub.customer)})
    assert [s.id for s in listed.data] == [schedule.id]
    released = await client.v1.subscription_schedules.release_async(schedule.id)
    assert released.status == "released" and released.subscription is None
    sandbox.advance_time(40 * DAY)
    after = await client.v1.subscriptions.retrieve_async(sub.id)
    assert after.schedule is None and after["items"].data[0].price.lookup_key == "pro_monthly"


async def test_cancel_schedule_cancels_subscription(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """Canceling a schedule cancels its subscription at once."""
    sub = await subscribed(client, "pro_monthly")
    schedule = await client.v1.subscription_schedules.create_async({"from_subscription": sub.id})
    canceled = await client.v1.subscription_schedules.cancel_async(schedule.id)
    assert canceled.status == "canceled" and canceled.canceled_at
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).status == "canceled"


async def test_schedule_create_is_idempotent(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """The same Idempotency-Key returns the same schedule instead of a second one."""
    sub = await subscribed(client, "pro_monthly")
    options: stripe.RequestOptions = {"idempotency_key": "sched-1"}
    first = await client.v1.subscription_schedules.create_async(
        {"from_subscription": sub.id}, options
    )
    again = await client.v1.subscription_schedules.create_async(
        {"from_subscription": sub.id}, options
    )
    assert first.id == again.id
    coupon_options: stripe.RequestOptions = {"idempotency_key": "coupon-1"}
    one = await client.v1.coupons.create_async(
        {"percent_off": 10, "duration": "once"}, coupon_options
    )
    two = await client.v1.coupons.create_async(
        {"percent_off": 10, "duration": "once"}, coupon_options
    )
    assert one.id == two.id and len((await client.v1.coupons.list_async()).data) == 1
