"""An invoice's payments: the InvoicePayment and PaymentIntent each charge attempt updates."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from sandbox import Sandbox
from tests.sandbox.flows import price_id, subscribed

DAY = 86400
EXPAND = ["payments.data.payment.payment_intent"]


async def _declined_renewal(
    client: stripe.StripeClient,
    sandbox: Sandbox,
    card: str = "pm_card_chargeDeclinedInsufficientFunds",
) -> tuple[stripe.Subscription, str]:
    """Subscribe with a good card, switch to `card`, renew: return the sub and open invoice."""
    sub = await subscribed(client)
    await client.v1.subscriptions.update_async(sub.id, {"default_payment_method": card})
    sandbox.advance_time(sub["items"].data[0].current_period_end - sandbox.now() + 60)
    after = await client.v1.subscriptions.retrieve_async(sub.id)
    return after, str(after.latest_invoice)


def _intent(invoice: stripe.Invoice) -> Any:
    [payment] = invoice.payments.data
    return payment.payment.payment_intent


async def test_payments_are_includable_not_default(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """Like Stripe, an invoice shows `payments` only when expanded; events never carry it."""
    _, invoice_id = await _declined_renewal(client, sandbox)
    plain = await client.v1.invoices.retrieve_async(invoice_id)
    assert "payments" not in plain
    listed = await client.v1.invoices.retrieve_async(invoice_id, {"expand": ["payments"]})
    [payment] = listed.payments.data
    assert listed.payments.url == "/v1/invoice_payments"
    assert isinstance(payment.payment.payment_intent, str)
    assert payment.payment.payment_intent.startswith("pi_")
    failed = sandbox.events("invoice.payment_failed")[-1]["data"]["object"]
    assert failed["id"] == invoice_id and "payments" not in failed
    many = await client.v1.invoices.list_async(
        {"customer": plain.customer, "expand": ["data.payments"]}
    )
    assert all(len(inv.payments.data) == 1 for inv in many.data)


async def test_a_declined_renewal_records_the_decline_on_its_payment_intent(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """The renewal's PaymentIntent keeps the card error: code, decline_code, message, card."""
    _, invoice_id = await _declined_renewal(client, sandbox)
    invoice = await client.v1.invoices.retrieve_async(invoice_id, {"expand": EXPAND})
    [payment] = invoice.payments.data
    assert payment.object == "invoice_payment" and payment.is_default
    assert payment.invoice == invoice.id and payment.payment.type == "payment_intent"
    assert (payment.status, payment.amount_paid) == ("open", None)
    assert payment.amount_requested == invoice.amount_due == 900
    intent = payment.payment.payment_intent
    assert intent.object == "payment_intent" and intent.status == "requires_payment_method"
    assert (intent.amount, intent.currency, intent.customer) == (900, "eur", invoice.customer)
    error = intent.last_payment_error
    assert (error.type, error.code, error.decline_code) == (
        "card_error",
        "card_declined",
        "insufficient_funds",
    )
    assert error.message == "Your card has insufficient funds."
    assert error.payment_method.card.last4 == "9995" and intent.payment_method is None
    assert (await client.v1.payment_intents.retrieve_async(intent.id)).status == (
        "requires_payment_method"
    )


async def test_retries_reuse_the_payment_intent_until_it_succeeds(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """Smart retries confirm the same PaymentIntent; paying clears the error and marks it paid."""
    sub, invoice_id = await _declined_renewal(client, sandbox)
    first = _intent(await client.v1.invoices.retrieve_async(invoice_id, {"expand": EXPAND}))
    sandbox.advance_time(3 * DAY + 60)  # the first smart retry, still declined
    again = await client.v1.invoices.retrieve_async(invoice_id, {"expand": EXPAND})
    assert again.attempt_count == 2 and _intent(again).id == first.id
    assert _intent(again).last_payment_error.decline_code == "insufficient_funds"
    await client.v1.subscriptions.update_async(sub.id, {"default_payment_method": "pm_card_visa"})
    sandbox.advance_time(5 * DAY + 60)  # the second retry pays with the new card
    paid = await client.v1.invoices.retrieve_async(invoice_id, {"expand": EXPAND})
    [payment] = paid.payments.data
    assert paid.status == "paid" and payment.status == "paid"
    assert payment.amount_paid == 900 and payment.status_transitions.paid_at
    intent = payment.payment.payment_intent
    assert (intent.status, intent.amount_received, intent.last_payment_error) == (
        "succeeded",
        900,
        None,
    )
    assert intent.id == first.id and intent.payment_method.startswith("pm_")


async def test_pay_now_declined_names_its_payment_intent(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    """POST /v1/invoices/{id}/pay that declines answers with the PaymentIntent it confirmed."""
    _, invoice_id = await _declined_renewal(client, sandbox, "pm_card_visa_chargeDeclined")
    with pytest.raises(stripe.CardError) as caught:
        await client.v1.invoices.pay_async(invoice_id)
    assert caught.value.error is not None and caught.value.error.payment_intent is not None
    intent = caught.value.error.payment_intent
    assert intent.last_payment_error.decline_code == "generic_decline"
    assert (
        intent.id
        == _intent(await client.v1.invoices.retrieve_async(invoice_id, {"expand": EXPAND})).id
    )
    paid = await client.v1.invoices.pay_async(invoice_id, {"payment_method": "pm_card_visa"})
    assert paid.status == "paid"
    assert (await client.v1.payment_intents.retrieve_async(intent.id)).status == "succeeded"


@pytest.mark.parametrize(
    ("card", "code", "decline_code"),
    [
        ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
        ("pm_card_chargeDeclinedLostCard", "card_declined", "lost_card"),
        ("pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
        ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc"),
        ("pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error"),
        ("pm_card_chargeCustomerFail", "card_declined", "generic_decline"),
    ],
)
async def test_decline_test_cards(
    client: stripe.StripeClient, card: str, code: str, decline_code: str
) -> None:
    """Stripe's decline test cards attach, then every charge fails with their codes."""
    customer = await client.v1.customers.create_async({"email": "d@example.com"})
    sub = await client.v1.subscriptions.create_async(
        {
            "customer": customer.id,
            "items": [{"price": await price_id(client, "basic_monthly")}],
            "default_payment_method": card,
        }
    )
    with pytest.raises(stripe.CardError) as caught:
        await client.v1.invoices.pay_async(str(sub.latest_invoice))
    assert (caught.value.code, caught.value.error.decline_code) == (code, decline_code)
    invoice = await client.v1.invoices.retrieve_async(str(sub.latest_invoice), {"expand": EXPAND})
    error = _intent(invoice).last_payment_error
    assert (error.code, error.decline_code) == (code, decline_code)


async def test_invoice_payments_endpoints(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """GET /v1/invoice_payments filters by invoice and status; retrieve expands the intent."""
    _, invoice_id = await _declined_renewal(client, sandbox)
    listed = await client.v1.invoice_payments.list_async({"invoice": invoice_id})
    [payment] = listed.data
    assert payment.invoice == invoice_id
    by_intent = await client.v1.invoice_payments.list_async(
        {"payment": {"type": "payment_intent", "payment_intent": payment.payment.payment_intent}}
    )
    assert [p.id for p in by_intent.data] == [payment.id]
    assert (
        await client.v1.invoice_payments.list_async({"invoice": invoice_id, "status": "paid"})
    ).data == []
    one = await client.v1.invoice_payments.retrieve_async(
        payment.id, {"expand": ["payment.payment_intent"]}
    )
    assert one.payment.payment_intent.last_payment_error.decline_code == "insufficient_funds"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.payment_intents.retrieve_async("pi_unknown")


async def test_voided_and_free_invoices(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    """A voided invoice's payment is canceled; an invoice with nothing due has no payment."""
    sub = await subscribed(client)
    await client.v1.subscriptions.update_async(sub.id, {"pause_collection": {"behavior": "void"}})
    sandbox.advance_time(sub["items"].data[0].current_period_end - sandbox.now() + 60)
    voided = await client.v1.invoices.retrieve_async(
        str((await client.v1.subscriptions.retrieve_async(sub.id)).latest_invoice),
        {"expand": EXPAND},
    )
    [payment] = voided.payments.data
    assert voided.status == "void" and payment.status == "canceled"
    assert payment.status_transitions.canceled_at
    assert payment.payment.payment_intent.status == "canceled"
    customer = await client.v1.customers.create_async({"email": "t@example.com"})
    trial = await client.v1.subscriptions.create_async(
        {
            "customer": customer.id,
            "items": [{"price": await price_id(client, "basic_monthly")}],
            "trial_period_days": 7,
        }
    )
    free = await client.v1.invoices.retrieve_async(str(trial.latest_invoice), {"expand": EXPAND})
    assert free.amount_due == 0 and free.payments.data == []
