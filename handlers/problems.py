"""Billing errors in plain words: what happened, and that nothing was changed."""

from __future__ import annotations

from billing.cancellation import OfferNotMade
from billing.changes import AlreadyOnPlan
from billing.errors import (
    BillingError,
    CardDeclined,
    NoSubscription,
    NotFound,
    NotLinked,
    NotYours,
    RateLimited,
    StripeUnavailable,
    TokenInvalid,
)
from handlers import menus
from handlers.context import Ctx
from handlers.i18n import N_
from handlers.replies import Button, Reply, rows

DECLINES = {
    "insufficient_funds": N_("The card has insufficient funds."),
    "expired_card": N_("The card has expired."),
    "incorrect_cvc": N_("The card's security code is incorrect."),
    "lost_card": N_("The card was reported lost."),
    "stolen_card": N_("The card was reported stolen."),
    "processing_error": N_("The card could not be processed."),
    "authentication_required": N_("The bank asks you to confirm the payment."),
}
TOKENS = {
    "malformed": N_("That link is not valid. Ask for a new one."),
    "unknown": N_("That link is not valid. Ask for a new one."),
    "used": N_("That link was already used. Ask for a new one."),
    "expired": N_("That link has expired. Ask for a new one."),
}
DECLINED = N_("The card was declined.")


def decline_reason(ctx: Ctx, reason: str) -> str:
    """Say in plain words why a card was declined."""
    return ctx.t(DECLINES.get(reason, DECLINED))


def explain(ctx: Ctx, error: BillingError) -> Reply:
    """Turn a billing error into a reply that says nothing was changed."""
    unchanged = ctx.t("Nothing was changed.")
    if isinstance(error, TokenInvalid):
        return Reply(ctx.t(TOKENS.get(error.reason, TOKENS["unknown"])) + " " + unchanged)
    if isinstance(error, NotLinked):
        return Reply(ctx.t("This chat is not connected to a subscription yet."),
                     buttons=rows(Button(ctx.t("See plans"), action="plans"),
                                  Button(ctx.t("Connect my subscription"), action="connect")))
    if isinstance(error, NoSubscription):
        return Reply(ctx.t("You have no active subscription."),
                     buttons=rows(Button(ctx.t("See plans"), action="plans")))
    if isinstance(error, NotYours):
        return Reply(ctx.t("That button belongs to someone else's account.") + " " + unchanged)
    if isinstance(error, NotFound):
        return Reply(ctx.t("That is no longer available.") + " " + unchanged)
    if isinstance(error, AlreadyOnPlan):
        return Reply(ctx.t("You are already on that plan.") + " " + unchanged,
                     buttons=rows(Button(ctx.t("My plan"), action="plan")))
    if isinstance(error, OfferNotMade):
        return Reply(ctx.t("That offer is not available.") + " " + unchanged,
                     buttons=rows(Button(ctx.t("My plan"), action="plan")))
    if isinstance(error, CardDeclined):
        confirm = (Button(ctx.t("Complete payment"), url=error.confirm_url)
                   if error.confirm_url else None)
        return Reply(decline_reason(ctx, error.reason) + " " + unchanged, private=bool(confirm),
                     buttons=rows(confirm, menus.update_card(ctx)))
    if isinstance(error, RateLimited | StripeUnavailable):
        return Reply(ctx.t("Payments are busy right now. Please try again in a minute.") + " "
                     + unchanged)
    return Reply(ctx.t("Something went wrong.") + " " + unchanged)
