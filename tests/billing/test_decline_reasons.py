"""Why a payment failed, read from the invoice's PaymentIntent as Stripe's current API has it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from billing import notice_events
from billing.links import link_customer
from billing.models import Notice
from billing.webhooks import process_pending, record
from tests.billing.conftest import Shop

DAY = 86400


async def _feed(shop: Shop) -> None:
    for event in shop.sandbox.events():
        async with shop.billing.db.session() as session:
            await record(session, event)
    while await process_pending(shop.billing):
        pass


async def _failures(shop: Shop) -> list[dict[str, Any]]:
    async with shop.billing.db.session() as session:
        found = await session.scalars(
            select(Notice).where(Notice.kind == "payment_failed").order_by(Notice.id))
        return [dict(n.params) for n in found]


async def _renew_with(shop: Shop, card: str) -> tuple[str, str]:
    customer = shop.customer()
    async with shop.billing.db.session() as session:
        await link_customer(session, channel="telegram", user_id="601", chat_id="601",
                            customer_id=customer)
    await shop.switch_card(customer, card)
    end = shop.subscription(customer)["items"]["data"][0]["current_period_end"]
    await shop.advance(end - shop.sandbox.now() + 3600)
    [invoice] = shop.sandbox.store.all(
        "invoice", lambda i: i["customer"] == customer and i["status"] == "open")
    return customer, str(invoice["id"])


async def test_the_gateway_expands_payment_intents_only_when_asked(shop: Shop) -> None:
    """A plain invoice read leaves out `payments`; `payments=True` brings the card error."""
    _, invoice_id = await _renew_with(shop, "pm_card_chargeDeclinedInsufficientFunds")
    plain = await shop.billing.gateway.invoice(invoice_id)
    assert "payments" not in plain
    full = await shop.billing.gateway.invoice(invoice_id, payments=True)
    [payment] = full["payments"]["data"]
    error = payment["payment"]["payment_intent"]["last_payment_error"]
    assert (error["code"], error["decline_code"]) == ("card_declined", "insufficient_funds")
    assert notice_events.decline_code(full) == "insufficient_funds"


async def test_the_failure_notice_names_the_decline_of_each_attempt(shop: Shop) -> None:
    """Each failed attempt's notice carries that attempt's decline code and next retry."""
    customer, invoice_id = await _renew_with(shop, "pm_card_chargeDeclinedInsufficientFunds")
    await _feed(shop)
    await shop.switch_card(customer, "pm_card_chargeDeclinedExpiredCard")
    await shop.advance(3 * DAY + 60)  # the first smart retry, with the other card
    await _feed(shop)
    first, second = await _failures(shop)
    assert (first["invoice"], first["amount"], first["reason"]) == (
        invoice_id, 2900, "insufficient_funds")
    assert (second["invoice"], second["reason"]) == (invoice_id, "expired_card")
    assert second["next_retry"] > first["next_retry"] > 0
