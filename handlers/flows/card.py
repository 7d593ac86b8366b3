"""Update card through Stripe's billing portal (SPEC §6.6)."""

from __future__ import annotations

import re

from billing.subscriptions import card_update_url
from handlers.context import Ctx
from handlers.replies import Button, Reply, rows
from handlers.router import router


@router.command("card")
async def update_card(ctx: Ctx, _args: str) -> list[Reply]:
    """Give a fresh link to Stripe's page for updating the card (private chats only)."""
    link = ctx.linked()
    # Made at the tap and never stored: the portal link logs the customer in.
    url = await card_update_url(ctx.billing, customer_id=link.customer_id, locale=ctx.locale)
    return [Reply(ctx.t("Update your card on Stripe's secure page. The link works for a few "
                        "minutes and only for you."),
                  buttons=rows(Button(ctx.t("Open the secure page"), url=url)), private=True)]


@router.button("card")
async def card_button(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Give the card link from a button."""
    return await update_card(ctx, "")
