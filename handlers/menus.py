"""Buttons that several conversations offer."""

from __future__ import annotations

from billing.card_links import card_link
from handlers.context import Ctx
from handlers.replies import Button


def my_plan(ctx: Ctx) -> Button:
    """Return the "My plan" button."""
    return Button(ctx.t("My plan"), action="plan")


def see_plans(ctx: Ctx) -> Button:
    """Return the "See plans" button."""
    return Button(ctx.t("See plans"), action="plans")


def connect(ctx: Ctx) -> Button:
    """Return the "Connect my subscription" button."""
    return Button(ctx.t("Connect my subscription"), action="connect")


def update_card(ctx: Ctx, customer_id: str | None = None) -> Button:
    """Return the "Update card" button: in a private chat linked to a customer (the actor's
    link, or `customer_id` for a pushed notice) one tap opens Stripe's card page through
    Portier's `GET /card/<token>`; elsewhere it asks for that button."""
    customer = customer_id or (ctx.link.customer_id if ctx.link else None)
    if customer is None or not ctx.actor.private or not ctx.billing.link_secret:
        return Button(ctx.t("Update card"), action="card")
    actor = ctx.actor
    return Button(ctx.t("Update card"), url=card_link(
        ctx.billing, customer_id=customer, channel=actor.channel, user_id=actor.user_id,
        chat_id=actor.chat_id, locale=ctx.locale))


def invoices(ctx: Ctx) -> Button:
    """Return the "Invoices" button."""
    return Button(ctx.t("Invoices"), action="inv")


def change_plan(ctx: Ctx) -> Button:
    """Return the "Change plan" button."""
    return Button(ctx.t("Change plan"), action="chg")


def cancel(ctx: Ctx) -> Button:
    """Return the "Cancel subscription" button."""
    return Button(ctx.t("Cancel subscription"), action="cancel")


def settings(ctx: Ctx) -> Button:
    """Return the "Settings" button."""
    return Button(ctx.t("Settings"), action="settings")
