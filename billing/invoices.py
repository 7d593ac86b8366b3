"""A customer's invoices, a page at a time, and paying an open one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing import mirror
from billing.errors import CardDeclined, InvalidRequest, NotYours
from billing.gateway import idempotency_key
from billing.mirror_models import MirrorInvoice
from billing.mirror_values import invoice_values
from billing.models import utcnow
from billing.services import Billing
from billing.shapes import ref_id

PAGE_SIZE = 5


@dataclass(frozen=True)
class InvoiceLine:
    """One invoice as the chat lists it; amounts in minor units."""

    id: str
    number: str | None
    created: datetime
    total: int
    amount_remaining: int
    currency: str
    status: str
    hosted_url: str | None
    pdf_url: str | None


@dataclass(frozen=True)
class InvoicePage:
    """Up to five invoices, newest first, and where the next page starts."""

    items: tuple[InvoiceLine, ...]
    next_after: str | None


def _line(invoice: dict[str, Any]) -> InvoiceLine:
    return _mirrored(MirrorInvoice(**invoice_values(invoice)))


async def _owned(billing: Billing, customer_id: str, invoice_id: str) -> dict[str, Any]:
    invoice = await billing.gateway.invoice(invoice_id)
    if ref_id(invoice.get("customer")) != customer_id:
        raise NotYours("invoice")
    return invoice


def _mirrored(row: MirrorInvoice) -> InvoiceLine:
    return InvoiceLine(
        id=row.id, number=row.number, created=row.created, total=row.total,
        amount_remaining=row.amount_remaining, currency=row.currency, status=row.status,
        hosted_url=row.hosted_url, pdf_url=row.pdf_url)


async def list_invoices(billing: Billing, *, customer_id: str,
                        after: str | None = None) -> InvoicePage:
    """Return a page of the customer's invoices, starting after the given invoice.

    Read from the local mirror when the customer's rows are fresh (see `billing.mirror`),
    which then holds every invoice of theirs; else re-read from Stripe into the mirror first.
    """
    customer, _ = await mirror.view_rows(billing, customer_id)
    cursor = await mirror.invoice_row(billing, after) if after is not None else None
    if customer is None or (after is not None and cursor is None):
        return await _stripe_page(billing, customer_id, after)  # unknown here: ask Stripe
    if cursor is not None and cursor.customer_id != customer_id:
        raise NotYours("invoice")  # a cursor naming someone else's invoice
    rows = await mirror.invoice_rows(billing, customer_id, after=cursor, limit=PAGE_SIZE + 1)
    items = tuple(_mirrored(row) for row in rows[:PAGE_SIZE])
    return InvoicePage(items=items,
                       next_after=items[-1].id if len(rows) > PAGE_SIZE else None)


async def _stripe_page(billing: Billing, customer_id: str, after: str | None) -> InvoicePage:
    if after is not None:
        await _owned(billing, customer_id, after)  # a cursor naming someone else's invoice
    found, more = await billing.gateway.invoice_page(customer_id, limit=PAGE_SIZE,
                                                     starting_after=after)
    items = tuple(_line(inv) for inv in found if inv.get("status") != "draft")
    next_after = found[-1]["id"] if more and found else None
    return InvoicePage(items=items, next_after=next_after)


async def pay_invoice(billing: Billing, *, customer_id: str, invoice_id: str) -> InvoiceLine:
    """Pay the customer's open invoice with the card that pays it, once per payment attempt."""
    invoice = await _owned(billing, customer_id, invoice_id)
    if invoice.get("status") == "paid":
        return _line(invoice)
    if invoice.get("status") != "open":
        raise InvalidRequest("invoice_not_open")
    # The intent is "pay this invoice with this card": a double tap pays once, while a tap
    # after the card was updated is a new attempt (Stripe would replay a cached decline).
    key = idempotency_key("pay", invoice_id, invoice.get("attempt_count"),
                          await _paying_card(billing, customer_id, invoice))
    read_at = utcnow()
    try:
        paid = await billing.gateway.pay_invoice(invoice_id, key=key)
    except CardDeclined as error:
        hosted = invoice.get("hosted_invoice_url")
        if error.reason != "authentication_required" or not hosted:
            raise
        # The bank wants the customer present (3-D Secure): Stripe's invoice page asks them.
        raise CardDeclined(error.reason, str(error), confirm_url=hosted) from error
    await mirror.invoice_written(billing, paid, read_at=read_at)  # /invoices shows it now
    return _line(paid)


async def _paying_card(billing: Billing, customer_id: str, invoice: dict[str, Any]) -> str | None:
    """Return the id of the card Stripe will charge: the invoice's subscription's own
    default (Checkout's), else the customer's default — as the mirror knows them."""
    customer, rows = await mirror.view_rows(billing, customer_id)
    subscription_id = invoice_values(invoice)["subscription_id"]
    own = next((row.card_id for row in rows if row.id == subscription_id), None)
    return own or (customer.card_id if customer is not None else None)
