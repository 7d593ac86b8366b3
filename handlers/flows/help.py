"""`/help`: what the bot can do."""

from __future__ import annotations

import re

from handlers.context import Ctx
from handlers.replies import Reply
from handlers.router import router


@router.command("help", private=False)
async def show_help(ctx: Ctx, _args: str) -> list[Reply]:
    """List the commands, and where to get human help."""
    lines = [
        "/start — " + ctx.t("Start and see your options"),
        "/plan — " + ctx.t("Your plan, renewal and card"),
        "/invoices — " + ctx.t("Your invoices"),
        "/card — " + ctx.t("Update your card"),
        "/forget — " + ctx.t("Forget this chat"),
    ]
    support = ctx.billing.catalog.business.support_url
    if support:
        lines.append("")
        lines.append(ctx.t("Need a person? {url}", url=support))
    return [Reply("\n".join(lines), title=ctx.t("What I can do"))]


@router.button("help", private=False)
async def help_button(ctx: Ctx, _match: re.Match[str]) -> list[Reply]:
    """Show the help from a button."""
    return await show_help(ctx, "")
