"""Invoices five a page, newest first, and paying an open one (SPEC §6.7)."""

from __future__ import annotations

import asyncio

import pytest

from billing.errors import CardDeclined, NotFound, NotYours
from billing.invoices import PAGE_SIZE, list_invoices, pay_invoice
from tests.billing.conftest import Shop


def _paid_events(shop: Shop, invoice_id: str) -> int:
    return sum(1 for e in shop.sandbox.events("invoice.paid")
               if e["data"]["object"]["id"] == invoice_id)


async def test_pages_of_five_newest_first(shop: Shop) -> None:
    """It lists five invoices a page, newest first, and the next page after the last."""
    customer = shop.customer(plan="basic_monthly")
    await shop.advance(200 * 86400)  # about seven monthly renewals
    stored = shop.sandbox.store.all("invoice", lambda i: i["customer"] == customer)
    assert len(stored) > PAGE_SIZE
    first = await list_invoices(shop.billing, customer_id=customer)
    assert len(first.items) == PAGE_SIZE
    assert [line.id for line in first.items] == [i["id"] for i in stored[:PAGE_SIZE]]
    assert [line.created for line in first.items] == sorted(
        (line.created for line in first.items), reverse=True)
    assert first.next_after == first.items[-1].id
    line = first.items[0]
    assert (line.status, line.total, line.currency, line.amount_remaining) == (
        "paid", 900, "eur", 0)
    assert line.number and line.hosted_url and line.pdf_url
    second = await list_invoices(shop.billing, customer_id=customer, after=first.next_after)
    assert [line.id for line in second.items] == [i["id"] for i in stored[PAGE_SIZE:]]
    assert second.next_after is None


async def test_a_single_page_has_no_next(shop: Shop) -> None:
    """It gives no next page when every invoice fits on one."""
    customer = shop.customer()
    page = await list_invoices(shop.billing, customer_id=customer)
    assert len(page.items) == 1 and page.next_after is None


async def test_a_cursor_naming_another_customers_invoice(shop: Shop) -> None:
    """It refuses a page cursor that names somebody else's invoice."""
    mine, theirs = shop.customer(), shop.customer(email="eve@example.com")
    their_invoice = (await list_invoices(shop.billing, customer_id=theirs)).items[0].id
    with pytest.raises(NotYours):
        await list_invoices(shop.billing, customer_id=mine, after=their_invoice)


async def test_paying_another_customers_invoice(shop: Shop) -> None:
    """It refuses to pay somebody else's invoice and charges nothing."""
    mine, theirs = shop.customer(), shop.customer(email="eve@example.com")
    invoice = await shop.fail_renewal(theirs)
    with pytest.raises(NotYours):
        await pay_invoice(shop.billing, customer_id=mine, invoice_id=invoice)
    assert shop.sandbox.get(invoice)["status"] == "open"


async def test_paying_an_unknown_invoice(shop: Shop) -> None:
    """It reports an unknown invoice as not found."""
    with pytest.raises(NotFound):
        await pay_invoice(shop.billing, customer_id=shop.customer(), invoice_id="in_nope")


async def test_declined_then_paid_after_a_new_card(shop: Shop) -> None:
    """It reports the decline, and pays once the customer saved a working card."""
    customer = shop.customer()
    invoice = await shop.fail_renewal(customer)
    with pytest.raises(CardDeclined) as caught:
        await pay_invoice(shop.billing, customer_id=customer, invoice_id=invoice)
    assert caught.value.reason == "generic_decline"
    assert shop.sandbox.get(invoice)["status"] == "open"
    await shop.switch_card(customer, "pm_card_visa")
    line = await pay_invoice(shop.billing, customer_id=customer, invoice_id=invoice)
    assert (line.id, line.status, line.amount_remaining) == (invoice, "paid", 0)
    assert shop.subscription(customer)["status"] == "active"


async def test_a_double_pay_charges_once(shop: Shop) -> None:
    """It charges once when the same invoice is paid twice at the same moment."""
    customer = shop.customer()
    invoice = await shop.fail_renewal(customer)
    await shop.switch_card(customer, "pm_card_visa")
    lines = await asyncio.gather(*(pay_invoice(shop.billing, customer_id=customer,
                                               invoice_id=invoice) for _ in range(2)))
    assert [line.status for line in lines] == ["paid", "paid"]
    assert _paid_events(shop, invoice) == 1


async def test_paying_a_paid_invoice_changes_nothing(shop: Shop) -> None:
    """It returns a paid invoice as it is, without asking Stripe to pay it."""
    customer = shop.customer()
    invoice = (await list_invoices(shop.billing, customer_id=customer)).items[0].id
    line = await pay_invoice(shop.billing, customer_id=customer, invoice_id=invoice)
    assert line.status == "paid"
    assert not any(path.endswith("/pay") for _, path in shop.sandbox.requests)
    assert _paid_events(shop, invoice) == 1
