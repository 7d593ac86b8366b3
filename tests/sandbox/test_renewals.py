"""Advancing the clock: renewals that pay, renewals that fail, recovery, cancellations."""

from __future__ import annotations

import httpx
import stripe

from sandbox import Sandbox
from tests.sandbox.flows import price_id, subscribed

DAY = 86400


async def test_renewal_is_invoiced_and_paid(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """Past the period end a subscription_cycle invoice is paid and the period moves on."""
    sub = await subscribed(client)
    first = sub["items"].data[0]
    sandbox.advance_time(first.current_period_end - sandbox.now() + 60)
    after = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    item = after["items"].data[0]
    assert item.current_period_start == first.current_period_end
    assert after.status == "active"
    assert after.latest_invoice.billing_reason == "subscription_cycle"
    assert after.latest_invoice.status == "paid" and after.latest_invoice.amount_paid == 900
    assert sandbox.events("invoice.upcoming"), "an upcoming-invoice notice precedes the renewal"


async def test_failed_renewal_then_recovery(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """A declining card makes the subscription past_due; paying the invoice restores it."""
    sub = await subscribed(client)
    await client.v1.customers.update_async(
        str(sub.customer), {"invoice_settings": {"default_payment_method": ""}}
    )
    declining = await client.v1.payment_methods.attach_async(
        "pm_card_visa_chargeDeclined", {"customer": str(sub.customer)}
    )
    await client.v1.subscriptions.update_async(sub.id, {"default_payment_method": declining.id})
    sandbox.advance_time(32 * DAY)

    after = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    invoice = after.latest_invoice
    assert after.status == "past_due"
    assert (invoice.status, invoice.attempt_count, invoice.billing_reason) == (
        "open",
        1,
        "subscription_cycle",
    )
    assert invoice.next_payment_attempt and invoice.next_payment_attempt > sandbox.now()
    failed = await client.v1.events.list_async({"type": "invoice.payment_failed"})
    assert failed.data[0].data.object.id == invoice.id

    paid = await client.v1.invoices.pay_async(invoice.id, {"payment_method": "pm_card_visa"})
    assert paid.status == "paid" and paid.next_payment_attempt is None
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).status == "active"


async def test_hosted_invoice_page_pays(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """The hosted invoice page pays an open invoice with the chosen card."""
    sub = await subscribed(client, payment_method="pm_card_visa")
    methods = await client.v1.customers.payment_methods.list_async(str(sub.customer))
    await client.v1.payment_methods.detach_async(methods.data[0].id)
    sandbox.advance_time(32 * DAY)
    after = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    assert after.status == "past_due"
    async with httpx.AsyncClient() as http:
        page = await http.post(
            after.latest_invoice.hosted_invoice_url, data={"payment_method": "pm_card_visa"}
        )
    assert page.status_code == 200 and "paid" in page.text
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).status == "active"


async def test_retries_end_in_cancellation(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """Smart retries try again for about two weeks, then the subscription is canceled."""
    sub = await subscribed(client, payment_method="pm_card_visa")
    await client.v1.subscriptions.update_async(
        sub.id, {"default_payment_method": "pm_card_visa_chargeDeclined"}
    )
    sandbox.advance_time(32 * DAY + 16 * DAY)
    after = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    assert after.status == "canceled"
    assert after.latest_invoice.attempt_count == 4


async def test_cancel_at_period_end(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """A subscription set to cancel at period end ends there, with the feedback kept."""
    sub = await subscribed(client)
    updated = await client.v1.subscriptions.update_async(
        sub.id,
        {"cancel_at_period_end": True, "cancellation_details": {"feedback": "too_expensive"}},
    )
    assert updated.cancel_at == sub["items"].data[0].current_period_end
    sandbox.advance_time(40 * DAY)
    ended = await client.v1.subscriptions.retrieve_async(sub.id)
    assert ended.status == "canceled" and ended.cancellation_details.feedback == "too_expensive"
    assert sandbox.events("customer.subscription.deleted")
    assert (await client.v1.subscriptions.list_async({"customer": str(sub.customer)})).data == []
    assert (
        len(
            (
                await client.v1.subscriptions.list_async(
                    {"customer": str(sub.customer), "status": "all"}
                )
            ).data
        )
        == 1
    )


async def test_preview_then_upgrade(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """The preview of an upgrade matches the invoice the upgrade then charges."""
    sub = await subscribed(client, "basic_monthly")
    item = sub["items"].data[0]
    sandbox.advance_time(10 * DAY)
    when = sandbox.now()
    pro = await price_id(client, "pro_monthly")
    change = {
        "items": [{"id": item.id, "price": pro}],
        "proration_behavior": "always_invoice",
        "proration_date": when,
    }
    preview = await client.v1.invoices.create_preview_async(
        {"customer": str(sub.customer), "subscription": sub.id, "subscription_details": change}
    )
    remaining = (item.current_period_end - when) / (
        item.current_period_end - item.current_period_start
    )
    assert preview.amount_due == round(2900 * remaining) - round(900 * remaining)
    assert all(line.parent.subscription_item_details.proration for line in preview.lines.data)

    updated = await client.v1.subscriptions.update_async(
        sub.id, {**change, "payment_behavior": "error_if_incomplete", "expand": ["latest_invoice"]}
    )
    assert updated["items"].data[0].price.lookup_key == "pro_monthly"
    assert updated["items"].data[0].id == item.id
    assert updated.latest_invoice.amount_paid == preview.amount_due
    assert updated.latest_invoice.billing_reason == "subscription_update"

    upcoming = await client.v1.invoices.create_preview_async({"subscription": sub.id})
    assert upcoming.amount_due == 2900 and upcoming.next_payment_attempt == item.current_period_end


async def test_upgrade_that_cannot_be_paid_changes_nothing(client: stripe.StripeClient) -> None:
    """With error_if_incomplete a declined proration leaves the plan as it was."""
    sub = await subscribed(client, "basic_monthly")
    await client.v1.subscriptions.update_async(
        sub.id, {"default_payment_method": "pm_card_visa_chargeDeclined"}
    )
    try:
        await client.v1.subscriptions.update_async(
            sub.id,
            {
                "items": [
                    {"id": sub["items"].data[0].id, "price": await price_id(client, "pro_yearly")}
                ],
                "proration_behavior": "always_invoice",
                "payment_behavior": "error_if_incomplete",
            },
        )
    except stripe.CardError as err:
        assert err.code == "card_declined"
    else:
        raise AssertionError("the upgrade should have been declined")
    same = await client.v1.subscriptions.retrieve_async(sub.id)
    assert same["items"].data[0].price.lookup_key == "basic_monthly"
