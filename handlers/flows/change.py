"""Change plan with a charge preview (SPEC §6.4); the conversation is drawn in change.mmd.

The preview's proration date travels in the Confirm button and in the pending state; the
button alone is never trusted: Confirm applies only when both agree, re-resolving the
subscription from the acting user's own link and previewing again with that date.
"""

from __future__ import annotations

import re
from typing import Any

from billing import changes, revenue
from billing.changes import ChangePreview, ChangeResult
from billing.state import expect, take
from handlers import menus
from handlers.context import Ctx
from handlers.flows.subscribe import price_label
from handlers.i18n import N_
from handlers.replies import Button, Reply, rows
from handlers.router import router

KIND = "change"
_PLAN = r"([a-z0-9][a-z0-9_-]{0,23}):(month|year)"
DIRECTIONS = {changes.UPGRADE: N_("upgrade"), changes.DOWNGRADE: N_("downgrade")}


async def customer_of(ctx: Ctx) -> str:
    """Return the Stripe customer the acting chat user is linked to (NotLinked otherwise)."""
    link = ctx.linked()
    return link.customer_id


@router.button("chg")
async def show_change_options(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """List the other plans and intervals, each marked upgrade or downgrade."""
    current, options = await changes.list_options(ctx.billing, customer_id=await customer_of(ctx))
    buttons = [Button(f"{o.plan.name} · {price_label(ctx, o.price)} · "
                      f"{ctx.t(DIRECTIONS[o.direction])}",
                      action=f"chg:{o.plan.key}:{o.price.interval}") for o in options]
    text = ctx.t("You are on {plan}, {price}. Choose a plan to see what it costs:",
                 plan=current.product_name, price=price_label(ctx, current))
    if not options:
        text = ctx.t("There is no other plan to switch to.")
    return [Reply(text, title=ctx.t("Change plan"), private=True,
                  buttons=rows(*buttons, menus.my_plan(ctx)))]


def describe_preview(ctx: Ctx, p: ChangePreview) -> str:
    """Say what the change costs today and from when the new price runs."""
    every = ctx.interval(p.price.interval, p.price.interval_count)
    recurring = ctx.money(p.price.unit_amount, p.currency)
    date = ctx.day(p.starts_at)
    if p.timing == changes.PERIOD_END:
        return ctx.t("No charge today. You keep your current plan until {date}, then {plan} "
                     "at {amount} {every}.", date=date, plan=p.plan.name, amount=recurring,
                     every=every)
    if p.amount_today or p.direction == changes.UPGRADE:
        return ctx.t("{today} today (prorated), then {amount} {every} from {date}.",
                     today=ctx.money(p.amount_today, p.currency), amount=recurring,
                     every=every, date=date)
    return ctx.t("No charge today: the unused time on your current plan is credited. Your "
                 "next invoice on {date} is {next}, then {amount} {every}.", date=date,
                 next=ctx.money(p.next_amount, p.currency), amount=recurring, every=every)


def _state(p: ChangePreview) -> dict[str, Any]:
    return {"plan": p.plan.key, "interval": p.price.interval, "date": p.proration_date,
            "today": p.amount_today, "next": p.next_amount}


async def _show(ctx: Ctx, p: ChangePreview, note: str | None = None) -> list[Reply]:
    async with ctx.billing.db.session() as session:
        await expect(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id, kind=KIND,
                     data=_state(p))
    title = ctx.t("Switch to {plan}, {price}?", plan=p.plan.name,
                  price=price_label(ctx, p.price))
    text = describe_preview(ctx, p)
    confirm = f"chgok:{p.plan.key}:{p.price.interval}:{p.proration_date}"
    return [Reply(f"{note}\n\n{text}" if note else text, title=title, private=True,
                  buttons=rows(Button(ctx.t("Confirm"), action=confirm),
                               Button(ctx.t("Back"), action="chg")))]


@router.button(f"chg:{_PLAN}")
async def preview_change(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Show what switching to the chosen plan and interval costs, from Stripe's preview."""
    preview = await changes.preview(ctx.billing, customer_id=await customer_of(ctx),
                                    plan_key=match.group(1), interval=match.group(2))
    return await _show(ctx, preview)


@router.button(rf"chgok:{_PLAN}:(\d{{1,12}})")
async def confirm_change(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Apply the previewed change, or show the current preview if this one is out of date."""
    plan_key, interval, date = match.group(1), match.group(2), int(match.group(3))
    customer_id = await customer_of(ctx)
    async with ctx.billing.db.session() as session:
        pending = await take(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id)
        if pending is not None and pending.kind != KIND:  # not ours: leave it waiting
            await expect(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id,
                         kind=pending.kind, data=pending.data)
    data = pending.data if pending is not None and pending.kind == KIND else {}
    if (data.get("plan"), data.get("interval"), data.get("date")) != (plan_key, interval, date):
        fresh = await changes.preview(ctx.billing, customer_id=customer_id, plan_key=plan_key,
                                      interval=interval)
        return await _show(ctx, fresh, ctx.t("That preview is out of date. Here is the "
                                             "current one; nothing was changed."))
    result = await changes.confirm(
        ctx.billing, customer_id=customer_id, plan_key=plan_key, interval=interval,
        proration_date=date, amount_today=int(data["today"]), next_amount=int(data["next"]))
    if result.outcome in ("applied", "scheduled"):  # the cancel flow's cheaper plan, taken?
        await revenue.offer_accepted(ctx.billing.db, kind="plan",
                                     subscription_id=result.preview.subscription_id)
    if result.outcome == "moved":
        return await _show(ctx, result.preview, ctx.t("The amount changed since your preview, "
                                                      "so nothing was changed. Here is the "
                                                      "new one."))
    return _outcome(ctx, result)


def _outcome(ctx: Ctx, result: ChangeResult) -> list[Reply]:
    p = result.preview
    plan = f"{p.plan.name}, {price_label(ctx, p.price)}"
    if result.outcome == "scheduled":
        return [Reply(ctx.t("Done. You switch to {plan} on {date}; until then nothing changes.",
                            plan=plan, date=ctx.day(p.starts_at)),
                      buttons=rows(menus.my_plan(ctx)), edit=True, toast=ctx.t("Scheduled"))]
    if result.outcome == "declined":
        return [Reply(ctx.t("The card was declined, so your plan stays as it was and {amount} "
                            "was not charged. The unpaid upgrade invoice stays open for up to "
                            "a day: pay it under Invoices after updating your card to finish "
                            "the switch, or leave it and Stripe voids it.",
                            amount=ctx.money(p.amount_today, p.currency)),
                      buttons=rows(menus.update_card(ctx), menus.invoices(ctx),
                                   menus.my_plan(ctx)), private=True)]
    charged = ""
    if result.amount_paid:
        charged = " " + ctx.t("Charged {amount}.", amount=ctx.money(result.amount_paid,
                                                                    p.currency))
    return [Reply(ctx.t("Done. You are now on {plan}.", plan=plan) + charged,
                  buttons=rows(menus.my_plan(ctx)), edit=True, toast=ctx.t("Changed"))]


@router.answer(KIND)
async def use_the_buttons(ctx: Ctx, _text: str, data: dict[str, object]) -> list[Reply]:
    """Keep the preview waiting and point at its buttons when free text arrives instead."""
    async with ctx.billing.db.session() as session:
        await expect(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id, kind=KIND,
                     data=dict(data))
    return [Reply(ctx.t("Please answer with the buttons: Confirm or Back. Nothing was "
                        "changed."))]


@router.button(r"chgundo:(sub_sched_[A-Za-z0-9]{1,40})")
async def undo_change(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Drop a change queued for the period end: the plan stays as it is."""
    price = await changes.undo_scheduled(ctx.billing, customer_id=await customer_of(ctx),
                                         schedule_id=match.group(1))
    return [Reply(ctx.t("Undone. You stay on {plan}, {price}.", plan=price.product_name,
                        price=price_label(ctx, price)),
                  buttons=rows(menus.my_plan(ctx)), toast=ctx.t("Undone"))]
