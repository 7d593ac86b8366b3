"""A team's invoices (SPEC §6b.7), for its admins only: newest first, five a page, with the
hosted invoice and PDF links and Pay now for an open one; dates in the admin's time zone.

Who acts is asked afresh at every press (`team_access.team_action`: billing admins an admin
added count): a member, a guest, or an admin of another team (the invoice id in a button
names someone else's) changes nothing and is told so.
"""

from __future__ import annotations

import re
from dataclasses import replace

from billing.invoices import InvoiceLine, list_invoices, pay_invoice
from handlers import team_notices
from handlers.context import Ctx
from handlers.flows.invoices import STATUSES
from handlers.flows.team_access import Who, team_action
from handlers.replies import Button, Reply, rows
from handlers.router import router

_ID = r"in_[A-Za-z0-9]{1,50}"


async def _in_zone(ctx: Ctx, acting: Who) -> Ctx:
    """Return the context in the admin's time zone, as the chat app has it."""
    zone_of = getattr(acting.app, "team_zone", None)
    zone = await zone_of(ctx.actor) if zone_of is not None else None
    return replace(ctx, zone=zone) if zone else ctx


def _line(ctx: Ctx, inv: InvoiceLine) -> str:
    status = ctx.t(STATUSES.get(inv.status, inv.status))
    number = f" · {inv.number}" if inv.number else ""
    return f"{ctx.day(inv.created)} · {ctx.money(inv.total, inv.currency)} · {status}{number}"


def _buttons(ctx: Ctx, inv: InvoiceLine) -> tuple[Button, ...]:
    row: list[Button] = []
    if inv.status == "open" and inv.amount_remaining > 0:
        row.append(team_notices.pay_now(ctx, inv.id, ctx.money(inv.amount_remaining,
                                                               inv.currency)))
    if inv.hosted_url:
        row.append(Button(ctx.t("Invoice {label}", label=inv.number or ctx.day(inv.created)),
                          url=inv.hosted_url))
    if inv.pdf_url:
        row.append(Button("PDF", url=inv.pdf_url))
    return tuple(row)


@router.button(rf"team:inv(?::({_ID}))?")
@team_action(admin=True, linked=True)
async def show_team_invoices(ctx: Ctx, acting: Who, match: re.Match[str]) -> list[Reply]:
    """List the team's newest five invoices (or the five after the given one) to an admin."""
    ctx = await _in_zone(ctx, acting)
    page = await list_invoices(ctx.billing, customer_id=acting.linked.customer_id,
                               after=match.group(1))
    if not page.items:
        text = ctx.t("No invoices yet.") if match.group(1) is None else ctx.t("No more invoices.")
        return [Reply(text, private=True, buttons=rows(team_notices.team_plan(ctx)))]
    buttons = [b for b in (_buttons(ctx, inv) for inv in page.items) if b]
    if page.next_after:
        buttons.append((Button(ctx.t("Older invoices"), action=f"team:inv:{page.next_after}"),))
    buttons.append((team_notices.team_plan(ctx),))
    return [Reply("\n".join(_line(ctx, inv) for inv in page.items), title=ctx.t("Invoices"),
                  buttons=tuple(buttons), private=True)]


@router.button(rf"team:pay:({_ID})")
@team_action(admin=True, linked=True)
async def pay_team_invoice(ctx: Ctx, acting: Who, match: re.Match[str]) -> list[Reply]:
    """Pay an open invoice of the admin's team with the team's card."""
    paid = await pay_invoice(ctx.billing, customer_id=acting.linked.customer_id,
                             invoice_id=match.group(1))
    return [Reply(ctx.t("Paid {amount}. Thank you!", amount=ctx.money(paid.total, paid.currency)),
                  buttons=rows(team_notices.team_plan(ctx)), toast=ctx.t("Paid"))]
