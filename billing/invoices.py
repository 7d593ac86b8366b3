"""A customer's invoices, a page at a time, and paying an open one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import stripe

from billing import mirror
from billing.errors import CardDeclined, InvalidRequest, NotYours
from billing.gateway import idempotency_key
from billing.mirror_models import MirrorInvoice
from billing.services import Billing

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


def _line(invoice: stripe.Invoice) -> InvoiceLine:
    return InvoiceLine(
        id=invoice.id or "", number=invoice.number,
        created=datetime.fromtimestamp(invoice.created, UTC), total=invoice.total,
        amount_remaining=invoice.amount_remaining, currency=invoice.currency,
        status=invoice.status or "draft", hosted_url=invoice.hosted_invoice_url,
        pdf_url=invoice.invoice_pdf)


async def _owned(billing: Billing, customer_id: str, invoice_id: str) -> stripe.Invoice:
    invoice = await billing.gateway.invoice(invoice_id)
    owner = invoice.customer if isinstance(invoice.customer, str) else getattr(
        invoice.customer, "id", None)
    if owner != customer_id:
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
    page = await billing.gateway.invoices(customer_id, limit=PAGE_SIZE, starting_after=after)
    items = tuple(_line(inv) for inv in page.data if inv.status != "draft")
    next_after = page.data[-1].id if page.has_more and page.data else None
    return InvoicePage(items=items, next_after=next_after)


async def pay_invoice(billing: Billing, *, customer_id: str, invoice_id: str) -> InvoiceLine:
    """Pay the customer's open invoice with their default card, once per payment attempt."""
    invoice = await _owned(billing, customer_id, invoice_id)
    if invoice.status == "paid":
        return _line(invoice)
    if invoice.status != "open":
        raise InvalidRequest("invoice_not_open")
    # The intent is "pay this invoice with this card": a double tap pays once, while a tap
    # after the card was updated is a new attempt (Stripe would replay a cached decline).
    customer = await billing.gateway.customer(customer_id)
    method = customer.invoice_settings.default_payment_method if customer.invoice_settings else None
    card = method if isinstance(method, str) or method is None else method.id
    key = idempotency_key("pay", invoice_id, invoice.attempt_count, card)
    try:
        paid = _line(await billing.gateway.pay_invoice(invoice_id, key=key))
    except CardDeclined as error:
        if error.reason != "authentication_required" or not invoice.hosted_invoice_url:
            raise
        # The bank wants the customer present (3-D Secure): Stripe's invoice page asks them.
        raise CardDeclined(error.reason, str(error),
                           confirm_url=invoice.hosted_invoice_url) from error
    await mirror.refresh_customer(billing, customer_id)  # /plan and /invoices show it now
    return paid
