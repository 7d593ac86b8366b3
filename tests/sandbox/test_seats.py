"""Per-seat subscriptions: Checkout with a quantity, quantity changes, previews and limits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from sandbox import Sandbox
from tests.sandbox.flows import price_id

DAY = 86400
SEAT = 800  # the demo catalog's team_seat_monthly, EUR 8.00 a month


async def _team(client: stripe.StripeClient, seats: int) -> stripe.Subscription:
    """Buy `seats` team seats through Checkout's hosted page, as a Slack admin does."""
    session = await client.v1.checkout.sessions.create_async({
        "mode": "subscription",
        "line_items": [{"price": await price_id(client, "team_seat_monthly"),
                        "quantity": seats}],
        "metadata": {"portier_channel": "slack", "portier_team": "T1"},
        "subscription_data": {"metadata": {"portier_channel": "slack"}},
        "success_url": "https://portier.example/return?session={CHECKOUT_SESSION_ID}",
    })
    assert session.amount_total == SEAT * seats
    async with httpx.AsyncClient() as http:
        answer = await http.post(str(session.url), data={"payment_method": "pm_card_visa"})
    assert answer.status_code == 303
    done = await client.v1.checkout.sessions.retrieve_async(session.id)
    return await client.v1.subscriptions.retrieve_async(
        str(done.subscription), {"expand": ["latest_invoice"]})


def _seats(sub: stripe.Subscription, seats: int, behavior: str, when: int) -> dict[str, Any]:
    return {"items": [{"id": sub["items"].data[0].id, "quantity": seats}],
            "proration_behavior": behavior, "proration_date": when}


def _prorations(invoice: Any) -> list[Any]:
    return [ln for ln in invoice.lines.data if ln.parent.subscription_item_details.proration]


async def _invoices(client: stripe.StripeClient, sub: stripe.Subscription) -> list[Any]:
    page = await client.v1.invoices.list_async({"subscription": sub.id, "limit": 100})
    return list(page.data)


async def test_checkout_with_a_quantity_bills_every_seat(client: stripe.StripeClient) -> None:
    """Checkout line_items[quantity] becomes the item's quantity; the first invoice is unit × qty.

    API reference, Checkout Session `line_items.quantity` ("The quantity of the line item being
    purchased") and docs.stripe.com/billing/subscriptions/quantities ("per-seat licensing":
    the invoice charges unit_amount × quantity).
    """
    sub = await _team(client, 5)
    item = sub["items"].data[0]
    assert (item.quantity, item.price.lookup_key) == (5, "team_seat_monthly")
    invoice = sub.latest_invoice
    assert (invoice.billing_reason, invoice.amount_paid) == ("subscription_create", 5 * SEAT)
    [first] = invoice.lines.data
    assert (first.quantity, first.amount) == (5, 5 * SEAT)
    assert first.description.startswith("5 × Team")


async def test_added_seats_wait_for_the_next_invoice(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """create_prorations makes no invoice now; the preview with the same proration_date equals
    the renewal, which carries the prorations and the new quantity.

    docs.stripe.com/billing/subscriptions/prorations ("create_prorations … invoice items are
    created … and included in the next invoice"); docs.stripe.com/billing/subscriptions/
    prorations#preview-proration (`invoices.create_preview` with `subscription_details.
    proration_date` "previews exactly what an update with the same proration_date charges").
    """
    sub = await _team(client, 3)
    item = sub["items"].data[0]
    sandbox.advance_time(11 * DAY + 321)
    when = sandbox.now() - 5
    change = _seats(sub, 5, "create_prorations", when)
    preview = await client.v1.invoices.create_preview_async(
        {"subscription": sub.id, "subscription_details": change})
    span = item.current_period_end - item.current_period_start
    left = item.current_period_end - when
    assert [(ln.quantity, ln.amount) for ln in _prorations(preview)] == [
        (3, -round(3 * SEAT * left / span)), (5, round(5 * SEAT * left / span))]
    assert all(ln.period.start == when for ln in _prorations(preview))
    assert preview.amount_due == sum(ln.amount for ln in _prorations(preview)) + 5 * SEAT
    assert preview.billing_reason == "subscription_cycle"

    updated = await client.v1.subscriptions.update_async(sub.id, change)
    assert updated["items"].data[0].quantity == 5
    assert updated["items"].data[0].id == item.id
    assert len(await _invoices(client, sub)) == 1  # no invoice for the change itself

    sandbox.advance_time(item.current_period_end - sandbox.now() + 60)
    renewed = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    invoice = renewed.latest_invoice
    assert invoice.billing_reason == "subscription_cycle"
    assert invoice.amount_paid == preview.amount_due
    assert [(ln.quantity, ln.amount) for ln in invoice.lines.data] == [
        (ln.quantity, ln.amount) for ln in preview.lines.data]


async def test_two_changes_pile_up_on_the_next_invoice(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """Pending proration items of an earlier change appear in the next preview and invoice.

    API reference, `invoices.create_preview`: the preview includes the customer's pending
    invoice items; docs.stripe.com/billing/subscriptions/prorations (prorations of
    create_prorations wait as pending invoice items for the next invoice).
    """
    sub = await _team(client, 2)
    sandbox.advance_time(5 * DAY)
    await client.v1.subscriptions.update_async(
        sub.id, _seats(sub, 4, "create_prorations", sandbox.now()))
    sandbox.advance_time(5 * DAY)
    change = _seats(sub, 3, "create_prorations", sandbox.now())
    preview = await client.v1.invoices.create_preview_async(
        {"subscription": sub.id, "subscription_details": change})
    assert [ln.quantity for ln in _prorations(preview)] == [2, 4, 4, 3]  # oldest first
    await client.v1.subscriptions.update_async(sub.id, change)
    after = await client.v1.invoices.create_preview_async({"subscription": sub.id})
    assert after.amount_due == preview.amount_due
    assert len(await _invoices(client, sub)) == 1


async def test_removed_seats_credit_the_next_invoice(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """Fewer seats with create_prorations: the unused time is credited on the next invoice;
    a credit larger than that invoice is left on the customer's balance for the one after.

    docs.stripe.com/billing/subscriptions/prorations ("downgrade … credit for unused time");
    docs.stripe.com/billing/customer/balance ("Prorations from downgrading a subscription can
    indirectly create credits to reduce the amount due on the next invoice"; the balance
    "automatically applies toward the next invoice finalized").
    """
    sub = await _team(client, 6)
    sandbox.advance_time(15 * DAY)
    change = _seats(sub, 2, "create_prorations", sandbox.now())
    preview = await client.v1.invoices.create_preview_async(
        {"subscription": sub.id, "subscription_details": change})
    credit = sum(ln.amount for ln in _prorations(preview))
    assert credit < 0
    assert preview.total == 2 * SEAT + credit
    assert preview.amount_due == max(preview.total, 0)
    updated = await client.v1.subscriptions.update_async(sub.id, change)
    assert updated["items"].data[0].quantity == 2
    assert len(await _invoices(client, sub)) == 1

    end = updated["items"].data[0].current_period_end
    sandbox.advance_time(end - sandbox.now() + 60)
    renewed = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    invoice = renewed.latest_invoice
    assert (invoice.total, invoice.amount_due, invoice.status) == (preview.total, 0, "paid")
    customer = await client.v1.customers.retrieve_async(str(sub.customer))
    assert customer.balance == invoice.ending_balance == preview.total < 0
    following = await client.v1.invoices.create_preview_async({"subscription": sub.id})
    assert following.starting_balance == customer.balance
    assert following.amount_due == 2 * SEAT + customer.balance


async def test_always_invoice_bills_the_seats_now(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """always_invoice invoices the prorations at once (billing_reason subscription_update).

    API reference, `subscription.update` `proration_behavior=always_invoice` ("Always invoice
    immediately for prorations").
    """
    sub = await _team(client, 1)
    sandbox.advance_time(10 * DAY)
    change = _seats(sub, 3, "always_invoice", sandbox.now())
    preview = await client.v1.invoices.create_preview_async(
        {"subscription": sub.id, "subscription_details": change})
    assert preview.billing_reason == "subscription_update"
    updated = await client.v1.subscriptions.update_async(
        sub.id, {**change, "expand": ["latest_invoice"]})
    invoice = updated.latest_invoice
    assert invoice.billing_reason == "subscription_update"
    assert invoice.amount_paid == preview.amount_due > 0
    assert len(await _invoices(client, sub)) == 2


async def test_none_changes_seats_without_prorations(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """proration_behavior=none: the next invoice is simply the new quantity.

    API reference, `subscription.update` `proration_behavior=none` ("Disable creating
    prorations in this request").
    """
    sub = await _team(client, 2)
    sandbox.advance_time(4 * DAY)
    change = _seats(sub, 7, "none", sandbox.now())
    preview = await client.v1.invoices.create_preview_async(
        {"subscription": sub.id, "subscription_details": change})
    assert not _prorations(preview) and preview.amount_due == 7 * SEAT
    await client.v1.subscriptions.update_async(sub.id, change)
    after = await client.v1.invoices.create_preview_async({"subscription": sub.id})
    assert after.amount_due == 7 * SEAT


async def test_a_negative_quantity_is_refused(client: stripe.StripeClient) -> None:
    """A negative item quantity is an invalid_request_error that changes nothing.

    API reference, subscription item `quantity`: "The quantity of the plan to which the
    customer should be subscribed" (a non-negative integer).
    """
    sub = await _team(client, 2)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.v1.subscriptions.update_async(
            sub.id, {"items": [{"id": sub["items"].data[0].id, "quantity": -1}]})
    assert raised.value.param == "items[0][quantity]"
    same = await client.v1.subscriptions.retrieve_async(sub.id)
    assert same["items"].data[0].quantity == 2


async def test_too_many_quantity_updates_are_rate_limited(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """The 201st quantity update of a subscription within an hour is answered 429 rate_limit.

    docs.stripe.com/rate-limits: Subscriptions API, "200 quantity updates per subscription,
    per hour"; exceeding a limit answers "429 Too Many Requests" (error code `rate_limit`,
    docs.stripe.com/error-codes#rate-limit). An hour later updates are accepted again.
    """
    sub = await _team(client, 1)
    item_id = sub["items"].data[0].id
    for n in range(200):
        await client.v1.subscriptions.update_async(
            sub.id, {"items": [{"id": item_id, "quantity": 2 + n % 2}],
                     "proration_behavior": "none"})
    with pytest.raises(stripe.RateLimitError) as raised:
        await client.v1.subscriptions.update_async(
            sub.id, {"items": [{"id": item_id, "quantity": 9}], "proration_behavior": "none"})
    assert raised.value.http_status == 429
    assert (raised.value.json_body or {})["error"]["code"] == "rate_limit"
    same = await client.v1.subscriptions.retrieve_async(sub.id)
    assert same["items"].data[0].quantity == 3
    # Other writes to the subscription are not quantity updates.
    await client.v1.subscriptions.update_async(sub.id, {"metadata": {"note": "still fine"}})
    sandbox.advance_time(3601)
    later = await client.v1.subscriptions.update_async(
        sub.id, {"items": [{"id": item_id, "quantity": 9}], "proration_behavior": "none"})
    assert later["items"].data[0].quantity == 9


async def test_invoicing_every_change_hits_the_invoice_limit(client: stripe.StripeClient) -> None:
    """Past 10 new invoices a minute for one subscription, an always_invoice update gets 429.

    docs.stripe.com/rate-limits: Subscriptions API, "10 new invoices per subscription, per
    minute" and "20 new invoices per subscription, per day". create_prorations, which makes no
    invoice, is still accepted.
    """
    sub = await _team(client, 1)  # its first invoice counts too
    item_id = sub["items"].data[0].id
    for n in range(9):
        await client.v1.subscriptions.update_async(
            sub.id, {"items": [{"id": item_id, "quantity": 2 + n}],
                     "proration_behavior": "always_invoice"})
    with pytest.raises(stripe.RateLimitError):
        await client.v1.subscriptions.update_async(
            sub.id, {"items": [{"id": item_id, "quantity": 20}],
                     "proration_behavior": "always_invoice"})
    assert len(await _invoices(client, sub)) == 10
    queued = await client.v1.subscriptions.update_async(
        sub.id, {"items": [{"id": item_id, "quantity": 20}],
                 "proration_behavior": "create_prorations"})
    assert queued["items"].data[0].quantity == 20
