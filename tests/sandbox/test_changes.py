"""Plan changes: previews with proration dates equal what the update then charges."""

from __future__ import annotations

import stripe

from sandbox import Sandbox
from tests.sandbox.flows import price_id, subscribed

DAY = 86400


async def _change(
    client: stripe.StripeClient, sub: stripe.Subscription, lookup_key: str, behavior: str, when: int
) -> dict[str, object]:
    return {
        "items": [{"id": sub["items"].data[0].id, "price": await price_id(client, lookup_key)}],
        "proration_behavior": behavior,
        "proration_date": when,
    }


async def test_create_prorations_preview_equals_next_renewal(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """create_prorations previews credit + charge + next period; the renewal bills exactly that."""
    sub = await subscribed(client, "basic_monthly")
    item = sub["items"].data[0]
    sandbox.advance_time(7 * DAY + 1234)
    when = sandbox.now() - 17  # a proration date in the past, to the second
    change = await _change(client, sub, "pro_monthly", "create_prorations", when)
    preview = await client.v1.invoices.create_preview_async(
        {"subscription": sub.id, "subscription_details": change}
    )
    span = item.current_period_end - item.current_period_start
    left = item.current_period_end - when
    prorations = [ln for ln in preview.lines.data if ln.parent.subscription_item_details.proration]
    assert [ln.amount for ln in prorations] == [
        -round(900 * left / span),
        round(2900 * left / span),
    ]
    assert all(ln.period.start == when for ln in prorations)
    assert preview.amount_due == sum(ln.amount for ln in prorations) + 2900

    await client.v1.subscriptions.update_async(sub.id, change)
    sandbox.advance_time(item.current_period_end - sandbox.now() + 60)
    renewed = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    assert renewed.latest_invoice.amount_paid == preview.amount_due
    assert [ln.amount for ln in renewed.latest_invoice.lines.data] == [
        ln.amount for ln in preview.lines.data
    ]


async def test_none_previews_no_proration(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """proration_behavior=none previews only the next period at the new price."""
    sub = await subscribed(client, "basic_monthly")
    sandbox.advance_time(3 * DAY)
    change = await _change(client, sub, "pro_monthly", "none", sandbox.now())
    preview = await client.v1.invoices.create_preview_async(
        {"subscription": sub.id, "subscription_details": change}
    )
    assert preview.amount_due == 2900
    assert not any(ln.parent.subscription_item_details.proration for ln in preview.lines.data)


async def test_month_to_year_resets_the_cycle(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """Switching to yearly charges the year now minus unused time; preview equals the charge."""
    sub = await subscribed(client, "basic_monthly")
    item = sub["items"].data[0]
    sandbox.advance_time(10 * DAY)
    when = sandbox.now()
    change = await _change(client, sub, "basic_yearly", "create_prorations", when)
    preview = await client.v1.invoices.create_preview_async(
        {"subscription": sub.id, "subscription_details": change}
    )
    span = item.current_period_end - item.current_period_start
    credit = round(900 * (item.current_period_end - when) / span)
    assert preview.amount_due == 9000 - credit
    assert preview.billing_reason == "subscription_update"

    updated = await client.v1.subscriptions.update_async(
        sub.id, {**change, "expand": ["latest_invoice"]}
    )
    assert updated.billing_cycle_anchor == when
    assert updated["items"].data[0].current_period_start == when
    assert updated.latest_invoice.amount_paid == preview.amount_due


async def test_year_to_month_always_invoice(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """Yearly to monthly: the month is charged now, the unused year credited (never below 0)."""
    sub = await subscribed(client, "pro_yearly")
    sandbox.advance_time(300 * DAY)
    change = await _change(client, sub, "pro_monthly", "always_invoice", sandbox.now())
    preview = await client.v1.invoices.create_preview_async(
        {"subscription": sub.id, "subscription_details": change}
    )
    updated = await client.v1.subscriptions.update_async(
        sub.id, {**change, "expand": ["latest_invoice"]}
    )
    assert updated.latest_invoice.total == preview.total
    assert updated.latest_invoice.amount_due == preview.amount_due == max(preview.total, 0)
    assert updated["items"].data[0].price.recurring.interval == "month"
