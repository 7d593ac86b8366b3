"""Team notices (SPEC §7), rendered for one billing admin in their DM, in their language.

billing.team_notices writes one copy per admin of the customer notices a team gets, as the
team's kinds; their buttons act for the admin's team (`team:card`, `team:pay:<invoice>`,
`team:inv`, `team:plan`), each checking again at the press that the presser is an admin of
the linked team: button data carries no authority.
"""

from __future__ import annotations

from typing import Any

from handlers.context import Ctx
from handlers.notices import RENDERERS
from handlers.notices import _brand as brand_name  # the customer notices' own helpers,
from handlers.notices import _money as money_of  # so that a team's amounts, dates and
from handlers.notices import _price as price_of  # prices read alike
from handlers.notices import _when as when
from handlers.problems import decline_reason
from handlers.replies import Button, Reply, rows

Params = dict[str, Any]


def update_card(ctx: Ctx) -> Button:
    """Return the team's Update card button (the card link is given at the press)."""
    return Button(ctx.t("Update card"), action="team:card")


def view_invoices(ctx: Ctx) -> Button:
    """Return the team's invoices button."""
    return Button(ctx.t("View invoices"), action="team:inv")


def team_plan(ctx: Ctx) -> Button:
    """Return the team plan button."""
    return Button(ctx.t("Team plan"), action="team:plan")


def pay_now(ctx: Ctx, invoice: str, amount: str) -> Button:
    """Return Pay now for one of the team's open invoices."""
    return Button(ctx.t("Pay {amount} now", amount=amount), action=f"team:pay:{invoice}")


def _payment_failed(ctx: Ctx, params: Params) -> Reply:
    amount = money_of(ctx, params)
    lines = [ctx.t("We could not charge {amount} for your team plan.", amount=amount),
             decline_reason(ctx, str(params.get("reason") or "card_declined"))]
    retry = when(params.get("next_retry"))
    if retry:
        lines.append(ctx.t("We will try again on {date}. Update the card or pay now to keep "
                           "the team plan.", date=ctx.day(retry)))
    else:
        lines.append(ctx.t("Update the card or pay now to keep the team plan."))
    return Reply("\n".join(lines), title=ctx.t("Payment failed"), private=True,
                 buttons=rows(update_card(ctx), pay_now(ctx, str(params["invoice"]), amount),
                              view_invoices(ctx)))


def _action_required(ctx: Ctx, params: Params) -> Reply:
    text = ctx.t("The bank asks to confirm the payment of {amount} for your team plan. It "
                 "takes a moment on Stripe's secure page.", amount=money_of(ctx, params))
    return Reply(text, title=ctx.t("Please confirm your payment"), private=True,
                 buttons=rows(Button(ctx.t("Complete payment"), url=str(params["hosted_url"])),
                              view_invoices(ctx)))


def _payment_received(ctx: Ctx, params: Params) -> Reply:
    text = ctx.t("We received the payment of {amount} for your team plan. Thank you!",
                 amount=money_of(ctx, params))
    hosted = params.get("hosted_url")
    label = ctx.t("Invoice {label}", label=params["number"]) if params.get("number") \
        else ctx.t("Invoice")
    button = Button(label, url=str(hosted)) if hosted else view_invoices(ctx)
    return Reply(text, title=ctx.t("Payment received"), buttons=rows(button), private=True)


def _renewal_reminder(ctx: Ctx, params: Params) -> Reply:
    renews = when(params.get("renews"))
    text = ctx.t("Your team plan ({plan}) renews on {date}: {amount} will be charged.",
                 plan=params.get("plan") or "", date=ctx.day(renews) if renews else "",
                 amount=money_of(ctx, params))
    return Reply(text, title=ctx.t("Renewal reminder"), private=True,
                 buttons=rows(team_plan(ctx), view_invoices(ctx)))


def _card_expiring(ctx: Ctx, params: Params) -> Reply:
    text = ctx.t("The team's card {brand} •••• {last4} expires at the end of "
                 "{month:02d}/{year}. Update it so the team plan continues without a hitch.",
                 brand=brand_name(params), last4=params.get("last4") or "",
                 month=int(params.get("exp_month") or 0), year=int(params.get("exp_year") or 0))
    return Reply(text, title=ctx.t("The team's card expires soon"), private=True,
                 buttons=rows(update_card(ctx)))


def _card_updated(ctx: Ctx, params: Params) -> Reply:
    text = ctx.t("{brand} •••• {last4}, expires {month:02d}/{year}, pays your team plan from "
                 "now on.", brand=brand_name(params), last4=params.get("last4") or "",
                 month=int(params.get("exp_month") or 0), year=int(params.get("exp_year") or 0))
    button = team_plan(ctx)
    if params.get("invoice"):
        amount = money_of(ctx, params)
        text += "\n" + ctx.t("An invoice of {amount} is still open.", amount=amount)
        button = pay_now(ctx, str(params["invoice"]), amount)
    return Reply(text, title=ctx.t("Card updated: {brand} •••• {last4}",
                                   brand=brand_name(params), last4=params.get("last4") or ""),
                 buttons=rows(button), private=True)


def _seats(ctx: Ctx, params: Params) -> str:
    """Say a seat change, before → after, and who made it or that it was made elsewhere."""
    before, after = int(params.get("before") or 0), int(params.get("after") or 0)
    if params.get("by"):
        return ctx.t("{by} changed the team plan's seats: {before} → {after}.",
                     by=params["by"], before=before, after=after)
    if params.get("outside"):
        return ctx.t("The team plan's seats were changed outside the chat: {before} → "
                     "{after}.", before=before, after=after)
    return ctx.t("The team plan's seats changed: {before} → {after}.", before=before,
                 after=after)


def _seats_changed(ctx: Ctx, params: Params) -> Reply:
    lines = [_seats(ctx, params)]
    if params.get("currency"):
        lines.append(ctx.t("From the next renewal the team plan costs {price}.",
                           price=price_of(ctx, params)))
    return Reply("\n".join(lines), title=ctx.t("Seats changed"), private=True,
                 buttons=rows(team_plan(ctx)))


def _seats_line(ctx: Ctx, params: Params) -> Reply:
    """The billing channel's line of a seat change made outside Portier (no buttons, like
    the audit lines of changes made in Portier)."""
    return Reply(_seats(ctx, params))


RENDERERS.update({
    "team_payment_failed": _payment_failed,
    "team_action_required": _action_required,
    "team_payment_received": _payment_received,
    "team_renewal_reminder": _renewal_reminder,
    "team_card_expiring": _card_expiring,
    "team_card_updated": _card_updated,
    "team_seats_changed": _seats_changed,
    "team_seats_line": _seats_line,
})
