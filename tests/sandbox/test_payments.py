"""Card declines, attach failures, paying invoices and idempotency keys."""

from __future__ import annotations

import pytest
import stripe

from sandbox import Sandbox
from tests.sandbox.flows import price_id


async def test_card_that_fails_to_attach(client: stripe.StripeClient) -> None:
    """pm_card_chargeDeclined cannot be attached: 402 card_declined."""
    customer = await client.v1.customers.create_async({"email": "x@example.com"})
    with pytest.raises(stripe.CardError) as caught:
        await client.v1.payment_methods.attach_async(
            "pm_card_chargeDeclined", {"customer": customer.id}
        )
    assert caught.value.code == "card_declined"
    assert caught.value.error.decline_code == "generic_decline"
    assert (await client.v1.customers.payment_methods.list_async(customer.id)).data == []


async def test_declined_charge_refuses_a_strict_subscription(client: stripe.StripeClient) -> None:
    """With error_if_incomplete a declining card raises CardError and creates nothing."""
    customer = await client.v1.customers.create_async({"email": "y@example.com"})
    pm = await client.v1.payment_methods.attach_async(
        "pm_card_chargeDeclinedInsufficientFunds", {"customer": customer.id}
    )
    with pytest.raises(stripe.CardError) as caught:
        await client.v1.subscriptions.create_async(
            {
                "customer": customer.id,
                "items": [{"price": await price_id(client, "pro_monthly")}],
                "default_payment_method": pm.id,
                "payment_behavior": "error_if_incomplete",
            }
        )
    assert caught.value.error.decline_code == "insufficient_funds"
    assert (
        await client.v1.subscriptions.list_async({"customer": customer.id, "status": "all"})
    ).data == []


async def test_allow_incomplete_leaves_an_open_invoice(client: stripe.StripeClient) -> None:
    """A declined first payment leaves the subscription incomplete until the invoice is paid."""
    customer = await client.v1.customers.create_async({"email": "z@example.com"})
    sub = await client.v1.subscriptions.create_async(
        {
            "customer": customer.id,
            "items": [{"price": await price_id(client, "basic_monthly")}],
            "default_payment_method": "pm_card_visa_chargeDeclined",
            "expand": ["latest_invoice"],
        }
    )
    assert sub.status == "incomplete" and sub.latest_invoice.status == "open"
    with pytest.raises(stripe.CardError):
        await client.v1.invoices.pay_async(sub.latest_invoice.id)
    paid = await client.v1.invoices.pay_async(
        sub.latest_invoice.id, {"payment_method": "pm_card_visa"}
    )
    assert paid.status == "paid" and paid.attempt_count == 3
    assert (await client.v1.subscriptions.retrieve_async(sub.id)).status == "active"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.invoices.pay_async(paid.id)


async def test_same_idempotency_key_replays(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """A repeated key with the same params answers the stored object and creates nothing."""
    first = await client.v1.customers.create_async(
        {"email": "k@example.com"}, {"idempotency_key": "intent-1"}
    )
    again = await client.v1.customers.create_async(
        {"email": "k@example.com"}, {"idempotency_key": "intent-1"}
    )
    assert again.id == first.id
    assert len((await client.v1.customers.list_async({"email": "k@example.com"})).data) == 1
    assert len(sandbox.events("customer.created")) == 1


async def test_same_key_other_params_is_an_idempotency_error(client: stripe.StripeClient) -> None:
    """A repeated key with different params is refused with 400 idempotency_error."""
    await client.v1.customers.create_async(
        {"email": "k@example.com"}, {"idempotency_key": "intent-2"}
    )
    with pytest.raises(stripe.IdempotencyError) as caught:
        await client.v1.customers.create_async(
            {"email": "other@example.com"}, {"idempotency_key": "intent-2"}
        )
    assert caught.value.http_status == 400


async def test_card_errors_replay_too(client: stripe.StripeClient) -> None:
    """A declined request replays its 402 rather than charging again."""
    customer = await client.v1.customers.create_async({})
    options: stripe.RequestOptions = {"idempotency_key": "attach-1"}
    for _ in range(2):
        with pytest.raises(stripe.CardError):
            await client.v1.payment_methods.attach_async(
                "pm_card_chargeDeclined", {"customer": customer.id}, options
            )


async def test_subscribe_from_python(sandbox: Sandbox, client: stripe.StripeClient) -> None:
    """Sandbox.create_customer and subscribe make a paid subscription without Checkout."""
    customer = sandbox.create_customer(email="py@example.com", name="Py")
    sub = sandbox.subscribe(customer["id"], "team_seat_monthly", "pm_card_visa", quantity=3)
    assert sub["status"] == "active" and sub["items"]["data"][0]["quantity"] == 3
    invoice = await client.v1.invoices.retrieve_async(sub["latest_invoice"])
    assert invoice.amount_paid == 2400
