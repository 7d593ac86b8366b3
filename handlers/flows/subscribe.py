"""Subscribe through Stripe Checkout (SPEC §6.2)."""

from __future__ import annotations

import re

from billing.catalog import Plan, Price
from billing.links import find_link
from billing.subscriptions import get_overview, start_checkout
from handlers import menus
from handlers.context import Ctx
from handlers.replies import Button, Reply, rows
from handlers.router import router


def plan_prices(ctx: Ctx, plan: Plan) -> list[Price]:
    """Return the plan's resolved prices, monthly before yearly."""
    found = [ctx.billing.prices.by_key[k] for k in plan.prices if k in ctx.billing.prices.by_key]
    return sorted(found, key=lambda p: (p.interval != "month", p.interval_count))


def price_label(ctx: Ctx, price: Price) -> str:
    """Say a price the way people read it: "€29.00 per month"."""
    every = ctx.interval(price.interval, price.interval_count)
    return f"{ctx.money(price.unit_amount, price.currency)} {every}"


async def _subscribed(ctx: Ctx) -> bool:
    if ctx.link is None:
        return False
    return await get_overview(ctx.billing, customer_id=ctx.link.customer_id) is not None


@router.button("plans")
async def show_plans(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """List the plans with their prices per interval, each price a button."""
    blocks: list[str] = []
    buttons: list[tuple[Button, ...]] = []
    for plan in ctx.billing.catalog.plans:
        prices = plan_prices(ctx, plan)
        lines = [plan.name + (f" — {plan.description}" if plan.description else "")]
        lines += [f"• {feature}" for feature in plan.features]
        lines.append(" · ".join(price_label(ctx, p) for p in prices))
        blocks.append("\n".join(lines))
        buttons.append(tuple(Button(f"{plan.name} · {price_label(ctx, p)}",
                                    action=f"buy:{plan.key}:{p.interval}") for p in prices))
    return [Reply("\n\n".join(blocks), title=ctx.t("Plans"), buttons=tuple(buttons))]


@router.button(r"buy:([a-z0-9_-]{1,24}):(month|year)")
async def open_checkout(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Create a Checkout Session for the chosen plan and interval and give its link."""
    plan = ctx.billing.catalog.plan(match.group(1))
    price = next((p for p in plan_prices(ctx, plan) if p.interval == match.group(2)),
                 None) if plan else None
    if plan is None or price is None:
        return [Reply(ctx.t("That plan is no longer offered. Nothing was changed."),
                      buttons=rows(menus.see_plans(ctx)))]
    if await _subscribed(ctx):
        return [Reply(ctx.t("You already have a subscription."), buttons=rows(menus.my_plan(ctx)))]
    actor = ctx.actor
    async with ctx.billing.db.session() as session:
        link = await find_link(session, channel=actor.channel, user_id=actor.user_id)
    url = await start_checkout(ctx.billing, channel=actor.channel, user_id=actor.user_id,
                               chat_id=actor.chat_id, price=price,
                               customer_id=link.customer_id if link else None, locale=ctx.locale)
    return [Reply(ctx.t("{plan}, {price}. Pay on Stripe's secure page; I'll message you here "
                        "when it's done.", plan=plan.name, price=price_label(ctx, price)),
                  buttons=rows(Button(ctx.t("Pay with Stripe"), url=url)), private=True)]
