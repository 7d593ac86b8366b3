"""Invoices, five a page, with hosted and PDF links and "Pay now" (SPEC §6.7)."""

from __future__ import annotations

import re

from billing.invoices import InvoiceLine, list_invoices, pay_invoice
from handlers import menus
from handlers.context import Ctx
from handlers.i18n import N_
from handlers.replies import Button, Reply, rows
from handlers.router import router

_ID = r"in_[A-Za-z0-9]{1,60}"
STATUSES = {"paid": N_("Paid"), "open": N_("Open"), "void": N_("Void"),
            "uncollectible": N_("Uncollectible")}


def _line(ctx: Ctx, inv: InvoiceLine) -> str:
    status = ctx.t(STATUSES.get(inv.status, inv.status))
    number = f" · {inv.number}" if inv.number else ""
    return f"{ctx.day(inv.created)} · {ctx.money(inv.total, inv.currency)} · {status}{number}"


def _buttons(ctx: Ctx, inv: InvoiceLine) -> tuple[Button, ...]:
    label = inv.number or ctx.day(inv.created)
    row: list[Button] = []
    if inv.status == "open" and inv.amount_remaining > 0:
        row.append(Button(ctx.t("Pay {amount} now",
                                amount=ctx.money(inv.amount_remaining, inv.currency)),
                          action=f"pay:{inv.id}"))
    if inv.hosted_url:
        row.append(Button(ctx.t("Invoice {label}", label=label), url=inv.hosted_url))
    if inv.pdf_url:
        row.append(Button("PDF", url=inv.pdf_url))
    return tuple(row)


async def _page(ctx: Ctx, after: str | None) -> list[Reply]:
    link = ctx.linked()
    page = await list_invoices(ctx.billing, customer_id=link.customer_id, after=after)
    if not page.items:
        return [Reply(ctx.t("No invoices yet.") if after is None else ctx.t("No more invoices."),
                      buttons=rows(menus.my_plan(ctx)))]
    buttons = [_buttons(ctx, inv) for inv in page.items]
    if page.next_after:
        buttons.append((Button(ctx.t("Older invoices"), action=f"inv:{page.next_after}"),))
    return [Reply("\n".join(_line(ctx, inv) for inv in page.items), title=ctx.t("Invoices"),
                  buttons=tuple(b for b in buttons if b), private=True)]


@router.command("invoices")
async def show_invoices(ctx: Ctx, _args: str) -> list[Reply]:
    """List the newest five invoices."""
    return await _page(ctx, None)


@router.button(rf"inv(?::({_ID}))?")
async def more_invoices(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """List the five invoices after the given one."""
    return await _page(ctx, match.group(1))


@router.button(rf"pay:({_ID})")
async def pay_now(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Pay an open invoice of the user's with their default card."""
    link = ctx.linked()
    paid = await pay_invoice(ctx.billing, customer_id=link.customer_id, invoice_id=match.group(1))
    return [Reply(ctx.t("Paid {amount}. Thank you!", amount=ctx.money(paid.total, paid.currency)),
                  buttons=rows(menus.my_plan(ctx)), toast=ctx.t("Paid"))]
