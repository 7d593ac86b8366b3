"""Cancel with a reason and one save offer; resume and unpause (SPEC §6.5; see cancel.mmd).

The reason, the comment and an intent id (one per cancel conversation, so a double tap
cancels once while a later cancel is a new intent) wait in the pending state between steps.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from billing import cancellation
from billing.cancellation import ASKS_COMMENT, REASONS, Offer
from billing.errors import NoSubscription
from billing.state import Pending, clear, expect, take
from billing.subscriptions import Overview, get_overview
from handlers import menus
from handlers.context import Ctx
from handlers.flows.change import customer_of
from handlers.flows.subscribe import price_label
from handlers.i18n import N_
from handlers.replies import Button, Reply, rows
from handlers.router import router

KIND, COMMENT = "cancel", "cancel_comment"
_SUB = r"(sub_[A-Za-z0-9]{1,40})"
LABELS = {
    "too_expensive": N_("It's too expensive"),
    "missing_features": N_("Features are missing"),
    "switched_service": N_("I switched to another service"),
    "unused": N_("I don't use it enough"),
    "customer_service": N_("Customer service was lacking"),
    "too_complex": N_("It's too complicated"),
    "low_quality": N_("Quality was too low"),
    "other": N_("Something else"),
}
MAX_COMMENT = 500


async def _remember(ctx: Ctx, kind: str, data: dict[str, Any]) -> None:
    async with ctx.billing.db.session() as session:
        await expect(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id, kind=kind,
                     data=data)


async def _take(ctx: Ctx) -> dict[str, Any]:
    """Take this conversation's pending data; leave anything else waiting."""
    async with ctx.billing.db.session() as session:
        pending: Pending | None = await take(session, channel=ctx.actor.channel,
                                             user_id=ctx.actor.user_id)
        if pending is not None and pending.kind not in (KIND, COMMENT):
            await expect(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id,
                         kind=pending.kind, data=pending.data)
            return {}
    return pending.data if pending is not None else {}


def resume_button(ctx: Ctx, subscription_id: str) -> Button:
    """Return the button that undoes a pending cancel."""
    return Button(ctx.t("Resume subscription"), action=f"resume:{subscription_id}")


async def _current(ctx: Ctx) -> Overview:
    """Return the user's current subscription from the mirror (no Stripe request)."""
    overview = await get_overview(ctx.billing, customer_id=await customer_of(ctx))
    if overview is None:
        raise NoSubscription("none")
    return overview


def _end(ctx: Ctx, subscription: Overview) -> str:
    end = subscription.current_period_end
    return ctx.day(end) if end else ""


@router.command("cancel")
async def ask_cancel_reason(ctx: Ctx, _args: str) -> list[Reply]:
    """Ask why the user wants to cancel, with Stripe's feedback values as buttons."""
    subscription = await _current(ctx)
    if subscription.cancel_at_period_end:
        return [Reply(ctx.t("Your subscription already ends on {date}.",
                            date=_end(ctx, subscription)),
                      buttons=rows(resume_button(ctx, subscription.subscription_id),
                                   menus.my_plan(ctx)),
                      private=True)]
    await _remember(ctx, KIND, {"intent": secrets.token_hex(8)})
    buttons = [Button(ctx.t(LABELS[r]), action=f"cxl:why:{r}") for r in REASONS]
    return [Reply(ctx.t("Sorry to see you go. What is the main reason?"),
                  title=ctx.t("Cancel subscription"), private=True,
                  buttons=rows(*buttons, Button(ctx.t("Keep my plan"), action="cxl:keep")))]


@router.button("cancel")
async def cancel_button(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Start cancelling from a button."""
    return await ask_cancel_reason(ctx, "")


@router.button(f"cxl:why:({'|'.join(REASONS)})")
async def pick_reason(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Take the reason; ask for a comment where it helps, else go on to the offer."""
    reason = match.group(1)
    data = await _take(ctx)
    intent = str(data.get("intent") or secrets.token_hex(8))
    if reason in ASKS_COMMENT:
        await _remember(ctx, COMMENT, {"intent": intent, "reason": reason})
        return [Reply(ctx.t("Anything you would like to tell us? Type a few words, or tap "
                            "Skip."), expect_text=True,
                      buttons=rows(Button(ctx.t("Skip"), action=f"cxl:skip:{reason}")))]
    return await offer_to_stay(ctx, intent, reason, None)


@router.answer(COMMENT)
async def take_comment(ctx: Ctx, text: str, data: dict[str, object]) -> list[Reply]:
    """Record the free-text comment and go on to the offer."""
    reason = str(data.get("reason"))
    if reason not in REASONS:
        return [Reply(ctx.t("Please start again with /cancel. Nothing was changed."))]
    return await offer_to_stay(ctx, str(data.get("intent")), reason, text[:MAX_COMMENT] or None)


@router.button(f"cxl:skip:({'|'.join(ASKS_COMMENT)})")
async def skip_comment(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Go on to the offer without a comment."""
    data = await _take(ctx)
    return await offer_to_stay(ctx, str(data.get("intent") or secrets.token_hex(8)),
                               match.group(1), None)


def _coupon_text(ctx: Ctx, offer: Offer) -> str:
    if offer.percent_off:
        off = ctx.t("{percent}% off", percent=f"{offer.percent_off:g}")
    else:
        off = ctx.t("{amount} off", amount=ctx.money(offer.amount_off or 0,
                                                     offer.currency or "eur"))
    if offer.duration == "repeating" and offer.duration_in_months:
        return ctx.t("Stay and get {off} for {months} months.", off=off,
                     months=offer.duration_in_months)
    if offer.duration == "forever":
        return ctx.t("Stay and get {off}, for as long as you stay.", off=off)
    return ctx.t("Stay and get {off} your next invoice.", off=off)


async def offer_to_stay(ctx: Ctx, intent: str, reason: str, comment: str | None
                        ) -> list[Reply]:
    """Make the one save offer fitted to the reason, or go straight to the confirm."""
    offer = await cancellation.make_offer(ctx.billing, customer_id=await customer_of(ctx),
                                          reason=reason)
    await _remember(ctx, KIND, {"intent": intent, "reason": reason, "comment": comment})
    decline = Button(ctx.t("No thanks, cancel"), action="cxl:no")
    if offer.kind == "coupon":
        return [Reply(_coupon_text(ctx, offer), title=ctx.t("Before you go"), private=True,
                      buttons=rows(Button(ctx.t("Stay with the discount"), action="cxl:coupon"),
                                   decline))]
    if offer.kind == "pause":
        pauses = [Button(ctx.t("Pause for {days} days", days=d), action=f"cxl:pause:{d}")
                  for d in offer.pause_days]
        return [Reply(ctx.t("Take a break instead? While paused you are not charged."),
                      title=ctx.t("Before you go"), private=True,
                      buttons=rows(*pauses, decline))]
    if offer.kind == "plan" and offer.price is not None:
        see = Button(ctx.t("See {plan}", plan=offer.plan_name),
                     action=f"chg:{offer.plan_key}:{offer.price.interval}")
        return [Reply(ctx.t("Would {plan} at {price} suit you better?", plan=offer.plan_name,
                            price=price_label(ctx, offer.price)),
                      title=ctx.t("Before you go"), private=True, buttons=rows(see, decline))]
    return await _ask_confirm(ctx)


async def _ask_confirm(ctx: Ctx) -> list[Reply]:
    subscription = await _current(ctx)
    return [Reply(ctx.t("Your subscription will end on {date}; you keep everything until "
                        "then, and you can resume any time before.",
                        date=_end(ctx, subscription)),
                  title=ctx.t("Cancel subscription?"), private=True,
                  buttons=rows(Button(ctx.t("Cancel subscription"), action="cxl:yes"),
                               Button(ctx.t("Keep my plan"), action="cxl:keep")))]


@router.button("cxl:no")
async def decline_offer(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Go on to the confirm after the offer was declined."""
    return await _ask_confirm(ctx)


@router.button("cxl:yes")
async def confirm_cancel(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Cancel at the period end with the reason and comment given."""
    customer_id = await customer_of(ctx)
    data = await _take(ctx)
    reason = str(data.get("reason"))
    if reason not in REASONS:
        subscription = await _current(ctx)
        if not subscription.cancel_at_period_end:
            return [Reply(ctx.t("That question has expired. Nothing was changed; send /cancel "
                                "to start again."))]
        data = {"intent": "", "reason": "other", "comment": None}
    outcome = await cancellation.cancel_at_period_end(
        ctx.billing, customer_id=customer_id, reason=str(data["reason"]),
        comment=str(data["comment"]) if data.get("comment") else None,
        intent=str(data.get("intent")))
    until = ctx.day(outcome.until) if outcome.until else ""
    return [Reply(ctx.t("Your subscription is canceled. Active until {date}.", date=until),
                  buttons=rows(resume_button(ctx, outcome.subscription_id), menus.my_plan(ctx)),
                  edit=True, toast=ctx.t("Canceled"))]


@router.button("cxl:keep")
async def keep_plan(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Leave everything as it is."""
    async with ctx.billing.db.session() as session:
        await clear(session, channel=ctx.actor.channel, user_id=ctx.actor.user_id)
    return [Reply(ctx.t("Glad you're staying. Nothing was changed."),
                  buttons=rows(menus.my_plan(ctx)), edit=True)]


@router.button("cxl:coupon")
async def accept_discount(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Apply the offered coupon instead of cancelling."""
    await cancellation.accept_coupon(ctx.billing, customer_id=await customer_of(ctx))
    await _take(ctx)
    return [Reply(ctx.t("Thank you for staying! The discount is applied to your "
                        "subscription."), buttons=rows(menus.my_plan(ctx)), edit=True,
                  toast=ctx.t("Discount applied"))]


@router.button(r"cxl:pause:(\d{1,4})")
async def accept_pause(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Pause collection for the chosen number of days instead of cancelling."""
    outcome = await cancellation.accept_pause(ctx.billing, customer_id=await customer_of(ctx),
                                              days=int(match.group(1)))
    await _take(ctx)
    until = ctx.day(outcome.until) if outcome.until else ""
    return [Reply(ctx.t("Paused until {date}. You won't be charged meanwhile.", date=until),
                  buttons=rows(Button(ctx.t("Resume now"),
                                      action=f"unpause:{outcome.subscription_id}"),
                               menus.my_plan(ctx)), edit=True, toast=ctx.t("Paused"))]


@router.answer(KIND)
async def use_the_buttons(ctx: Ctx, _text: str, data: dict[str, object]) -> list[Reply]:
    """Keep the cancel question waiting and point at its buttons."""
    await _remember(ctx, KIND, dict(data))
    return [Reply(ctx.t("Please answer with the buttons above. Nothing was changed."))]


@router.button(f"resume:{_SUB}")
async def resume(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """Undo a pending cancel."""
    outcome = await cancellation.resume(ctx.billing, customer_id=await customer_of(ctx),
                                        subscription_id=match.group(1))
    until = ctx.day(outcome.until) if outcome.until else ""
    return [Reply(ctx.t("Welcome back! Your subscription continues and renews on {date}.",
                        date=until), buttons=rows(menus.my_plan(ctx)),
                  toast=ctx.t("Resumed"))]


@router.button(f"unpause:{_SUB}")
async def resume_now(ctx: Ctx, match: re.Match[str]) -> list[Reply]:
    """End a pause early: collection resumes now."""
    await cancellation.unpause(ctx.billing, customer_id=await customer_of(ctx),
                               subscription_id=match.group(1))
    return [Reply(ctx.t("Resumed. Your subscription is active again."),
                  buttons=rows(menus.my_plan(ctx)), toast=ctx.t("Resumed"))]

