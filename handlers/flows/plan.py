"""My plan (SPEC §6.3)."""

from __future__ import annotations

import re

from billing.errors import NoSubscription
from billing.subscriptions import Overview, get_overview
from handlers import menus
from handlers.context import Ctx
from handlers.replies import Button, Reply, rows
from handlers.router import router


def status_line(ctx: Ctx, o: Overview) -> str:
    """Say the subscription's state: active, trialing, past due, ending, paused."""
    if o.status == "paused":
        if o.paused_until:
            return ctx.t("Paused until {date}", date=ctx.day(o.paused_until))
        return ctx.t("Paused")
    if o.ends_at is not None:
        return ctx.t("Ends on {date}", date=ctx.day(o.ends_at))
    if o.status == "trialing" and o.trial_end:
        return ctx.t("Free trial until {date}", date=ctx.day(o.trial_end))
    if o.status in ("past_due", "unpaid"):
        return ctx.t("Past due: the last payment failed")
    if o.status == "incomplete":
        return ctx.t("Waiting for the first payment")
    return ctx.t("Active")


def describe(ctx: Ctx, o: Overview) -> str:
    """Describe plan, price, status, renewal, card and next invoice, one per line."""
    every = ctx.interval(o.interval, o.interval_count)
    price = f"{ctx.money(o.amount * o.quantity, o.currency)} {every}"
    lines = [price, ctx.t("Status: {status}", status=status_line(ctx, o))]
    if o.ends_at is None and o.status != "paused" and o.current_period_end:
        lines.append(ctx.t("Renews on {date}", date=ctx.day(o.current_period_end)))
    if o.card:
        lines.append(ctx.t("Card: {brand} •••• {last4}, expires {month:02d}/{year}",
                           brand=o.card.brand.title(), last4=o.card.last4,
                           month=o.card.exp_month, year=o.card.exp_year))
    else:
        lines.append(ctx.t("No card on file"))
    if o.scheduled_plan_name and o.scheduled_at:
        lines.append(ctx.t("Changes to {plan} on {date}", plan=o.scheduled_plan_name,
                           date=ctx.day(o.scheduled_at)))
    if o.discount_name:
        lines.append(ctx.t("Discount applied: {name}", name=o.discount_name))
    if o.next_amount is not None and o.next_currency and o.current_period_end:
        lines.append(ctx.t("Next invoice: {amount} on {date}",
                           amount=ctx.money(o.next_amount, o.next_currency),
                           date=ctx.day(o.current_period_end)))
    return "\n".join(lines)


@router.command("plan", mirror=True)
async def show_plan(ctx: Ctx, _args: str) -> list[Reply]:
    """Show the user's plan, status, renewal, card and next invoice."""
    overview = await get_overview(ctx.billing, customer_id=ctx.linked().customer_id,
                                  read=ctx.view)
    if overview is None:
        raise NoSubscription("none")
    return [Reply(describe(ctx, overview), title=overview.plan_name, private=True,
                  buttons=rows(*plan_buttons(ctx, overview)))]


def plan_buttons(ctx: Ctx, o: Overview) -> list[Button]:
    """Return My plan's buttons for the subscription's state."""
    ending = o.ends_at is not None
    buttons: list[Button] = []
    if o.status == "paused":
        buttons.append(Button(ctx.t("Resume now"), action=f"unpause:{o.subscription_id}"))
    elif not ending:
        buttons.append(menus.change_plan(ctx))
    if o.schedule_id and o.scheduled_plan_name:
        buttons.append(Button(ctx.t("Undo change"), action=f"chgundo:{o.schedule_id}"))
    buttons += [menus.update_card(ctx), menus.invoices(ctx)]
    if ending:
        buttons.append(Button(ctx.t("Resume subscription"), action=f"resume:{o.subscription_id}"))
    else:
        buttons.append(menus.cancel(ctx))
    buttons.append(menus.settings(ctx))
    return buttons


@router.button("plan", mirror=True)
async def plan_button(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Show the plan from a button."""
    return await show_plan(ctx, "")
